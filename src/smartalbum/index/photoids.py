"""A set of photo ids that is also an array: what a filter allows, as the retrievers read it."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import numpy as np


class PhotoIds(frozenset[int]):
    """Photo ids as a frozenset (for `in`) that keeps them as an int64 array too (`array`, in the order
    given): the vector index reads a filter's photos as an array, and a city's 90,000 photos cost ~10 ms to
    turn from a set into one. Immutable, so what is derived from it can be kept while it lives."""

    array: np.ndarray

    def __new__(cls, ids: np.ndarray) -> PhotoIds:
        ids = np.asarray(ids, dtype=np.int64)
        made = super().__new__(cls, ids.tolist())
        made.array = ids
        return made


def id_array(ids: AbstractSet[int]) -> np.ndarray:
    """The ids as an int64 array (a PhotoIds' own, else converted)."""
    if isinstance(ids, PhotoIds):
        return ids.array
    return np.fromiter(ids, dtype=np.int64, count=len(ids))

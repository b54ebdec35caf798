"""Sets of photo ids that are also arrays: what a filter allows, as the retrievers read it."""

from __future__ import annotations

from collections.abc import Iterator
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
    if isinstance(ids, PhotoMask):
        return np.concatenate([np.flatnonzero(ids.mask), np.array(sorted(ids.extra), dtype=np.int64)])
    return np.fromiter(ids, dtype=np.int64, count=len(ids))


class PhotoMask(AbstractSet[int]):
    """Photo ids as a bool array indexed by id (`mask`): a filter that allows a large share of a library (a
    season of a million photos) without a Python set of all of them. The vector index turns it into a
    bitmap of its labels for the graph walk."""

    def __init__(self, mask: np.ndarray, extra: frozenset[int] = frozenset()) -> None:
        self.mask = np.asarray(mask, dtype=bool)
        self.extra = frozenset(i for i in extra if not 0 <= i < len(self.mask))  # ids past the mask (moments)
        self._len = int(self.mask.sum()) + len(self.extra)

    def __contains__(self, photo_id: object) -> bool:
        if not isinstance(photo_id, int | np.integer):
            return False
        if 0 <= photo_id < len(self.mask):
            return bool(self.mask[photo_id])
        return photo_id in self.extra

    def __iter__(self) -> Iterator[int]:
        yield from np.flatnonzero(self.mask).tolist()
        yield from sorted(self.extra)

    def __len__(self) -> int:
        return self._len

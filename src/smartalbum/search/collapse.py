"""One result per group of near-duplicates (bursts, edited copies, screenshots of the same thing).

The best-ranked photo of a group stays where it ranked and carries the others that matched the question
(`SimilarPhotos`: the group, how many, their ids in rank order); they leave the list, so `total` and paging
count groups. `SearchFilters.all_similar` keeps every photo. Groups come from the `similar` index stage
(catalog/similar.py); a photo in no group is left as it is.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from smartalbum.catalog import Catalog
from smartalbum.catalog.similar import SimilarStore
from smartalbum.search.results import SimilarPhotos


class _Ranked(Protocol):
    photo_id: int


R = TypeVar("R", bound=_Ranked)


def collapse_similar(
    catalog: Catalog, ranked: list[R], *, keep_all: bool = False
) -> tuple[list[R], dict[int, SimilarPhotos]]:
    """`ranked` with each group's later members folded into its first; and what each kept one carries."""
    if keep_all or len(ranked) < 2:
        return ranked, {}
    group_of = SimilarStore(catalog).groups_of([r.photo_id for r in ranked])
    if not group_of:
        return ranked, {}
    kept: list[R] = []
    first: dict[int, int] = {}  # group -> the photo that stands for it
    folded: dict[int, list[int]] = {}
    for r in ranked:
        group = group_of.get(r.photo_id)
        if group is None:
            kept.append(r)
        elif group not in first:
            first[group] = r.photo_id
            kept.append(r)
        else:
            folded.setdefault(first[group], []).append(r.photo_id)
    groups = {photo: group for group, photo in first.items()}
    return kept, {
        photo: SimilarPhotos(group_id=groups[photo], count=len(ids), photo_ids=ids)
        for photo, ids in folded.items()
    }

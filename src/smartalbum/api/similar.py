"""Near-duplicate groups over HTTP: the groups, largest first, and one group's photos (what a search hit's
"+4 similar" expands to). Plain `def` endpoints, as in routes.py (thread pool). Nothing here deletes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from smartalbum.api import models as m
from smartalbum.api.events import photo_card
from smartalbum.api.routes import ERRORS
from smartalbum.library import Library

MAX_GROUPS = 1000
GroupId = Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="a group's id")]


def group_out(library: Library, group: dict[str, Any]) -> m.DuplicateGroup:
    ids = [p["photo_id"] for p in group["photos"]]
    rows = {r["id"]: r for r in library.catalog.search_rows(ids)}
    photos = [
        m.DuplicatePhoto(**photo_card(rows[p["photo_id"]]).model_dump(), path=p["path"], files=p["files"])
        for p in group["photos"]
        if p["photo_id"] in rows
    ]
    return m.DuplicateGroup(id=group["id"], size=len(photos), photos=photos)


def build_similar_router(library: Library) -> APIRouter:
    api = APIRouter(prefix="/api", responses=ERRORS, tags=["duplicates"])

    @api.get("/duplicates")
    def duplicates(
        min_size: Annotated[int, Query(ge=2, le=100_000, description="groups of at least this many")] = 2,
        limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 100,
    ) -> list[m.DuplicateGroup]:
        """Groups of near-identical photos (bursts, edited copies, screenshots of the same thing), largest
        first, each photo with a caption, time and one existing path."""
        return [group_out(library, g) for g in library.duplicates(min_size=min_size, limit=limit)]

    @api.get("/duplicates/{group_id}")
    def duplicate_group(group_id: GroupId) -> m.DuplicateGroup:
        """One group of near-identical photos, oldest first: what a hit's `similar` stands for."""
        return group_out(library, library.duplicate_group(group_id))

    return api

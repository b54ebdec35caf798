"""The JSON API under /api. Endpoints that touch the library are plain `def`: FastAPI runs them in its thread
pool, so a slow search or a catalog write never blocks the event loop (indexing runs in its own thread)."""

from __future__ import annotations

import os
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response

from smartalbum import __version__
from smartalbum.api import models as m
from smartalbum.api import views
from smartalbum.api.files import PHOTO_TYPES, VIDEO_TYPES, photo_file_response
from smartalbum.errors import InputError, NotFoundError, SmartAlbumError
from smartalbum.library import MAX_QUERY_CHARS, Library
from smartalbum.search.query import STEP_KINDS
from smartalbum.search.results import SearchFilters

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ErrorBody, "description": text}
    for code, text in {
        400: "bad input (message and hint say what and why)",
        401: "a token is needed",
        404: "not found",
        409: "conflicts with what the server is doing",
        413: "request body too large",
        422: "a parameter or the body does not fit its constraints",
        503: "a model or the catalog cannot be used now",
    }.items()
}
IMAGE = {"content": {"image/jpeg": {}}, "description": "the image"}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "not modified (If-None-Match)"}}

PhotoId = Annotated[int, Path(ge=1, le=m.MAX_ID, description="a photo's id")]
IfNoneMatch = Annotated[str | None, Header(max_length=2000)]


class ConflictError(SmartAlbumError):
    """The request cannot be done now because of what the server is doing (HTTP 409)."""


def build_router(library: Library) -> APIRouter:
    api = APIRouter(prefix="/api", responses=ERRORS)

    def photo_row(photo_id: int) -> dict[str, Any]:
        """The catalog row of exactly this id (the catalog would also take a hash prefix of digits)."""
        photo = library.catalog.photo(photo_id)
        if photo["id"] != photo_id:
            raise NotFoundError(f"no photo {photo_id} in the catalog")
        return photo

    @api.get("/health", tags=["status"])
    def health() -> m.Health:
        """Whether the server is up (and the token is right)."""
        return m.Health(version=__version__)

    @api.get("/stats", tags=["status"])
    def stats() -> m.Stats:
        """Counts of photos, files, errors and analyses; the indexing job running now."""
        job = library.jobs.current()
        return m.Stats(**library.stats(), job=views.job_out(job) if job else None)

    @api.get("/search", tags=["search"])
    def search_photos(
        q: Annotated[
            str, Query(max_length=MAX_QUERY_CHARS, description="the question, Chinese or English")
        ] = "",
        limit: Annotated[int, Query(ge=1, le=m.MAX_PAGE)] = 30,
        offset: Annotated[int, Query(ge=0, le=m.MAX_OFFSET)] = 0,
        after: Annotated[date | None, Query(description="taken on or after this day")] = None,
        before: Annotated[date | None, Query(description="taken on or before this day")] = None,
        place: Annotated[str | None, Query(max_length=100, pattern=m.NO_CONTROL)] = None,
        sort: Literal["relevance", "date"] = "relevance",
        min_score: Annotated[float | None, Query(ge=0, le=1, description="relevance cut-off")] = None,
        verify: Annotated[
            bool | None,
            Query(description="let the vision model check the best results (default: the server's setting)"),
        ] = None,
        ignore: Annotated[
            list[m.StepKind] | None,
            Query(
                max_length=len(STEP_KINDS), description="parts of the reading to take back (`steps` kinds)"
            ),
        ] = None,
        all_similar: Annotated[
            bool, Query(description="every near-duplicate as a hit of its own (default: one per group)")
        ] = False,
    ) -> m.SearchOut:
        """Search in Chinese or English; time and place in the question are understood; filters add to it."""
        if after and before and after > before:
            raise InputError("'after' is later than 'before'", "swap the two dates")
        filters = SearchFilters(
            after,
            before,
            place.strip() or None if place else None,
            sort,
            min_score,
            verify,
            tuple(dict.fromkeys(ignore or ())),
            all_similar=all_similar,
        )
        return views.search_out(library.search(q, filters, limit, offset))

    @api.get("/photos/{photo_id}", tags=["photos"])
    def photo(photo_id: PhotoId) -> m.PhotoDetail:
        """Everything known about a photo: descriptions (zh, en), tags, objects, text, time, place, camera."""
        photo_row(photo_id)
        return views.photo_detail(library.photo(photo_id))

    @api.get("/photos/{photo_id}/similar", tags=["search"])
    def similar(photo_id: PhotoId, limit: Annotated[int, Query(ge=1, le=m.MAX_PAGE)] = 30) -> m.SearchOut:
        """Photos that look like this one (by their descriptions)."""
        photo_row(photo_id)
        return views.search_out(library.similar(photo_id, limit))

    @api.get(
        "/photos/{photo_id}/thumbnail",
        tags=["photos"],
        response_class=Response,
        responses={200: IMAGE, **NOT_MODIFIED},
    )
    def thumbnail(
        photo_id: PhotoId, size: m.ThumbSize = m.ThumbSize.small, if_none_match: IfNoneMatch = None
    ) -> Response:
        """An upright JPEG, at most 256 or 1024 pixels on the long side (a 12-MP photo's large one: 1000)."""
        photo = photo_row(photo_id)
        path = library.thumbnail(photo_id, int(size))
        return photo_file_response(path, f"{photo['hash']}-{int(size)}", "image/jpeg", if_none_match)

    @api.get(
        "/photos/{photo_id}/original",
        tags=["photos"],
        response_class=Response,
        responses={
            200: {
                "content": {t: {} for t in sorted({*PHOTO_TYPES.values(), *VIDEO_TYPES.values()})},
                "description": "the file",
            },
            206: {"description": "the byte range asked for (a video player seeking)"},
            416: {"description": "the range lies outside the file"},
            **NOT_MODIFIED,
        },
    )
    def original(
        photo_id: PhotoId,
        if_none_match: IfNoneMatch = None,
        range_: Annotated[str | None, Header(alias="range", max_length=200)] = None,
        if_range: Annotated[str | None, Header(max_length=2000)] = None,
    ) -> Response:
        """The photo's or video's own file, if it still lies inside a registered folder. One byte range
        (`Range: bytes=a-b`) is answered with 206, so a video plays from any time."""
        photo = photo_row(photo_id)
        path = library.original(photo_id)
        types = VIDEO_TYPES if photo.get("media") == "video" else PHOTO_TYPES
        media_type = types.get(photo["format"] or "", "application/octet-stream")
        return photo_file_response(
            path,
            photo["hash"],
            media_type,
            if_none_match,
            filename=path.name,
            range_header=range_,
            if_range=if_range,
        )

    @api.get(
        "/photos/{photo_id}/motion",
        tags=["photos"],
        response_class=Response,
        responses={
            200: {"content": {t: {} for t in sorted(set(VIDEO_TYPES.values()))}, "description": "the video"},
            206: {"description": "the byte range asked for"},
            404: {"model": m.ErrorBody, "description": "not a live or motion photo"},
        },
    )
    def motion(
        photo_id: PhotoId,
        if_none_match: IfNoneMatch = None,
        range_: Annotated[str | None, Header(alias="range", max_length=200)] = None,
        if_range: Annotated[str | None, Header(max_length=2000)] = None,
    ) -> Response:
        """A live photo's video (the file beside the still) or a motion photo's (inside the JPEG)."""
        photo = photo_row(photo_id)
        path, window, kind = library.motion(photo_id)
        return photo_file_response(
            path,
            f"{photo['hash']}-motion",
            VIDEO_TYPES.get(kind, "video/mp4"),
            if_none_match,
            range_header=range_,
            if_range=if_range,
            window=window,
        )

    @api.get(
        "/photos/{photo_id}/frames/{index}",
        tags=["photos"],
        response_class=Response,
        responses={200: IMAGE, **NOT_MODIFIED},
    )
    def frame(
        photo_id: PhotoId,
        index: Annotated[int, Path(ge=0, le=100_000)],
        size: m.ThumbSize = m.ThumbSize.small,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        """One analysed frame of a video (its `video.keyframes[index]`), as an upright JPEG."""
        photo_row(photo_id)
        path, frame_hash = library.frame_thumbnail(photo_id, index, int(size))
        return photo_file_response(path, f"{frame_hash}-{int(size)}", "image/jpeg", if_none_match)

    @api.post("/feedback", tags=["feedback"], status_code=201)
    def add_feedback(body: m.FeedbackIn) -> m.FeedbackOut:
        """Say a photo is right ('good') or wrong ('bad') for a query; 'bad' hides it from that query."""
        photo_row(body.photo_id)
        return views.feedback_out(library.add_feedback(body.query, body.photo_id, body.verdict))

    @api.get("/feedback", tags=["feedback"])
    def list_feedback(include_undone: bool = False) -> list[m.FeedbackOut]:
        """Verdicts given on results, newest first."""
        return [views.feedback_out(f) for f in library.list_feedback(include_undone=include_undone)]

    @api.delete("/feedback/{feedback_id}", tags=["feedback"])
    def undo_feedback(feedback_id: Annotated[int, Path(ge=1, le=m.MAX_ID)]) -> m.FeedbackOut:
        """Take a verdict back."""
        return views.feedback_out(library.undo_feedback(feedback_id))

    @api.get("/libraries", tags=["libraries"])
    def roots() -> list[m.RootOut]:
        """The registered folders, with their file and error counts."""
        return [m.RootOut(**r) for r in library.roots()]

    @api.post("/libraries", tags=["libraries"], status_code=201)
    def add_root(body: m.LibraryIn) -> m.RootOut:
        """Register a folder on the server; start a job to index it."""
        try:
            return m.RootOut(**library.add_root(body.path))
        except (OSError, ValueError) as exc:  # a name too long, a path the OS refuses
            detail = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
            raise InputError(f"cannot use {body.path[:200]!r}: {detail}", "give an existing folder") from exc

    @api.post("/jobs", tags=["jobs"], status_code=202)
    def start_job() -> m.Job:
        """Start indexing every registered folder in the background (one job at a time)."""
        if not library.roots():
            raise InputError("no folders registered", "add a folder first (POST /api/libraries)")
        running = library.jobs.current()
        if running is not None:
            raise ConflictError(f"indexing job {running.id} is already running", "wait for it or cancel it")
        return views.job_out(library.jobs.start())

    @api.get("/jobs", tags=["jobs"])
    def jobs() -> list[m.Job]:
        """Indexing jobs since the server started, newest first."""
        return [views.job_out(j) for j in library.jobs.list()]

    @api.get("/jobs/{job_id}", tags=["jobs"])
    def job(job_id: Annotated[int, Path(ge=1, le=m.MAX_ID)]) -> m.Job:
        """One indexing job: state, stage, progress, errors, result."""
        return views.job_out(library.jobs.get(job_id))

    @api.post("/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(job_id: Annotated[int, Path(ge=1, le=m.MAX_ID)]) -> m.Job:
        """Stop a job; what it read is kept and the next job resumes."""
        return views.job_out(library.jobs.cancel(job_id))

    return api

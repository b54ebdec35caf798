"""The events and trips endpoints: trips (nights away from home) newest first, one trip with its events,
events (of a trip), one event with its photos, and the event a photo belongs to. Plain `def` endpoints, as in
routes.py (thread pool). Events are regrouped first whenever photos, their times or their places changed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from smartalbum.api import models as m
from smartalbum.api import views
from smartalbum.api.routes import ERRORS
from smartalbum.errors import NotFoundError
from smartalbum.library import Library

TripId = Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="a trip's id")]
EventId = Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="an event's id")]


def _cover(photo_id: int | None) -> str | None:
    return views.urls(photo_id).thumbnail if photo_id else None


def trip_out(row: dict[str, Any]) -> m.TripOut:
    return m.TripOut(
        id=row["id"],
        start_local=row["start_local"],
        end_local=row["end_local"],
        days=row["days"],
        photos=row["photos"],
        places=row["places"],
        title=m.Bilingual(zh=row["title_zh"] or "", en=row["title_en"] or ""),
        cover_photo_id=row["cover_photo_id"],
        cover=_cover(row["cover_photo_id"]),
    )


def event_out(row: dict[str, Any]) -> m.EventOut:
    return m.EventOut(
        id=row["id"],
        trip_id=row["trip_id"],
        start_local=row["start_local"],
        end_local=row["end_local"],
        start_utc=row["start_utc"],
        end_utc=row["end_utc"],
        photos=row["photos"],
        lat=row["lat"],
        lon=row["lon"],
        home_km=row["home_km"],
        places=row["places"],
        title=m.Bilingual(zh=row["title_zh"] or "", en=row["title_en"] or ""),
        cover_photo_id=row["cover_photo_id"],
        cover=_cover(row["cover_photo_id"]),
    )


def photo_card(row: dict[str, Any]) -> m.EventPhoto:
    desc, _ = views.description_of(row)
    return m.EventPhoto(
        photo_id=row["id"],
        hash=row["hash"],
        taken_at=row["taken_at"],
        tz_offset=row["tz_offset"],
        time_source=row["time_source"],
        width=row["width"],
        height=row["height"],
        place=views.place_out(row),
        caption=m.Bilingual(zh=desc.caption.zh, en=desc.caption.en),
        urls=views.urls(row["id"]),
        media="video" if row.get("media") == "video" else "photo",
        duration_s=row.get("duration_s"),
    )


def build_events_router(library: Library) -> APIRouter:
    api = APIRouter(prefix="/api", responses=ERRORS, tags=["events"])

    @api.get("/trips")
    def trips(limit: Annotated[int, Query(ge=1, le=m.MAX_EVENTS)] = 1000) -> list[m.TripOut]:
        """Trips (nights away from home), newest first, with bilingual titles, places and a cover photo."""
        return [trip_out(t) for t in library.trips()[:limit]]

    @api.get("/trips/{trip_id}")
    def trip(trip_id: TripId) -> m.TripDetail:
        """One trip with its events in time order (one event a day and place, roughly)."""
        events = library.events(trip_id=trip_id)  # regroups if need be; no such trip: 404
        row = library.catalog.events.trip(trip_id)
        return m.TripDetail(**trip_out(row).model_dump(), events=[event_out(e) for e in reversed(events)])

    @api.get("/events")
    def events(
        trip: Annotated[int | None, Query(ge=1, le=m.MAX_ID, description="only this trip's events")] = None,
        limit: Annotated[int, Query(ge=1, le=m.MAX_EVENTS)] = 500,
    ) -> list[m.EventOut]:
        """Events, newest first: those of one trip, or all (days at home and days out included)."""
        return [event_out(e) for e in library.events(trip_id=trip, limit=limit)]

    @api.get("/events/{event_id}")
    def event(
        event_id: EventId,
        limit: Annotated[int, Query(ge=0, le=m.MAX_EVENT_PHOTOS, description="photos on this page")] = 200,
        offset: Annotated[int, Query(ge=0, le=m.MAX_OFFSET)] = 0,
    ) -> m.EventDetail:
        """One event with a page of its photos in time order (caption, time, place, thumbnail links)."""
        ids = library.event_photos(event_id=event_id)[offset : offset + limit]  # regroups; no such event: 404
        row = library.catalog.events.event(event_id)
        rows = {r["id"]: r for r in library.catalog.search_rows(ids)} if ids else {}
        cards = [photo_card(rows[i]) for i in ids if i in rows]
        return m.EventDetail(**event_out(row).model_dump(), offset=offset, photo_list=cards)

    @api.get("/photos/{photo_id}/event", tags=["photos"])
    def photo_event(
        photo_id: Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="a photo's id")],
    ) -> m.EventOut | None:
        """The event a photo belongs to; null when it has none (no time taken)."""
        photo = library.catalog.photo(photo_id)
        if photo["id"] != photo_id:  # an id only, never a path or hash prefix
            raise NotFoundError(f"no photo {photo_id} in the catalog")
        found = library.event_of_photo(photo_id)  # regroups if need be
        return event_out(found) if found is not None else None

    return api

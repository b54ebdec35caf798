"""Events and trips in the catalog: derived from photos' times and places, rebuilt as a whole in one
transaction when those change (events/sync.py), read by the CLI, the API and the question parser."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from smartalbum.catalog.db import Catalog, utcnow
from smartalbum.errors import NotFoundError
from smartalbum.events.grouping import Grouping, Shot

EVENTS = "events"


class EventStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    def token(self) -> str:
        """Changes whenever a visible photo, its time or its place changes."""
        row = self.db.execute(
            f"""SELECT count(*), max(p.updated_at), total(p.id) FROM photos p WHERE {self.catalog._VISIBLE}"""
        ).fetchone()
        return json.dumps(list(row))

    def built_token(self) -> str | None:
        row = self.db.execute("SELECT token FROM derived_state WHERE name = ?", (EVENTS,)).fetchone()
        return row[0] if row else None

    def shots(self) -> list[Shot]:
        """Every visible photo with a time, as grouping sees it."""
        rows = self.db.execute(
            f"""SELECT p.id, p.taken_at, p.tz_offset, p.lat, p.lon, p.place_city, p.place_region,
                       p.place_country, p.place_city_zh, p.place_region_zh, p.place_country_zh, p.country_code
                FROM photos p WHERE {self.catalog._VISIBLE} AND p.taken_at IS NOT NULL"""
        )
        out = []
        for r in rows:
            try:
                local = datetime.fromisoformat(r["taken_at"]).replace(tzinfo=None)
            except ValueError:
                continue
            out.append(
                Shot(
                    r["id"],
                    local,
                    _offset_minutes(r["tz_offset"]),
                    r["lat"],
                    r["lon"],
                    {
                        "city": r["place_city"],
                        "region": r["place_region"],
                        "country": r["place_country"],
                        "city_zh": r["place_city_zh"],
                        "region_zh": r["place_region_zh"],
                        "country_zh": r["place_country_zh"],
                        "country_code": r["country_code"],
                    },
                )
            )
        return out

    def replace(self, grouping: Grouping, titles: list[tuple[dict[str, Any], str, str]], token: str) -> None:
        """Store a grouping: `titles` has (places, zh, en) per trip, then per event, in order."""
        trip_titles, event_titles = titles[: len(grouping.trips)], titles[len(grouping.trips) :]
        with self.catalog.transaction():
            self.db.execute("DELETE FROM event_photos")
            self.db.execute("DELETE FROM events")
            self.db.execute("DELETE FROM trips")
            trip_ids = []
            for trip, (where, zh, en) in zip(grouping.trips, trip_titles, strict=True):
                shots = trip.shots
                cur = self.db.execute(
                    """INSERT INTO trips(start_local, end_local, days, photos, places, title_zh, title_en,
                                         cover_photo_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        shots[0].local.isoformat(),
                        shots[-1].local.isoformat(),
                        len(trip.days),
                        len(shots),
                        json.dumps(where, ensure_ascii=False),
                        zh,
                        en,
                        shots[len(shots) // 2].photo_id,
                    ),
                )
                trip_ids.append(int(cur.lastrowid or 0))
            for event, (where, zh, en) in zip(grouping.events, event_titles, strict=True):
                shots = event.shots
                cur = self.db.execute(
                    """INSERT INTO events(trip_id, start_local, end_local, start_utc, end_utc, photos,
                                          lat, lon, home_km, places, title_zh, title_en, cover_photo_id)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        trip_ids[event.trip] if event.trip is not None else None,
                        shots[0].local.isoformat(),
                        shots[-1].local.isoformat(),
                        (shots[0].utc or shots[0].local).isoformat(),
                        (shots[-1].utc or shots[-1].local).isoformat(),
                        len(shots),
                        event.lat,
                        event.lon,
                        round(event.home_km, 1) if event.home_km is not None else None,
                        json.dumps(where, ensure_ascii=False),
                        zh,
                        en,
                        shots[len(shots) // 2].photo_id,
                    ),
                )
                event_id = int(cur.lastrowid or 0)
                self.db.executemany(
                    "INSERT INTO event_photos(photo_id, event_id) VALUES (?, ?)",
                    [(s.photo_id, event_id) for s in shots],
                )
            self.db.execute(
                "INSERT OR REPLACE INTO derived_state(name, token, built_at) VALUES (?, ?, ?)",
                (EVENTS, token, utcnow()),
            )

    # -- reading ----------------------------------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        out = []
        for r in self.db.execute(sql, tuple(args)):
            d = dict(r)
            d["places"] = json.loads(d["places"])
            out.append(d)
        return out

    def trips(self) -> list[dict[str, Any]]:
        """Trips, newest first."""
        return self._rows("SELECT * FROM trips ORDER BY start_local DESC, id DESC")

    def events(self, *, trip_id: int | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        """Events (of one trip), newest first."""
        if trip_id is not None:
            return self._rows(
                "SELECT * FROM events WHERE trip_id = ? ORDER BY start_utc DESC LIMIT ?", (trip_id, limit)
            )
        return self._rows("SELECT * FROM events ORDER BY start_utc DESC, id DESC LIMIT ?", (limit,))

    def trip(self, trip_id: int) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM trips WHERE id = ?", (trip_id,))
        if not rows:
            raise NotFoundError(f"no trip {trip_id}", "see `smartalbum trips`")
        return rows[0]

    def event(self, event_id: int) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM events WHERE id = ?", (event_id,))
        if not rows:
            raise NotFoundError(f"no event {event_id}", "see `smartalbum events`")
        return rows[0]

    def event_of_photo(self, photo_id: int) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT e.* FROM events e JOIN event_photos ep ON ep.event_id = e.id WHERE ep.photo_id = ?",
            (photo_id,),
        )
        return rows[0] if rows else None

    def photo_ids(self, *, trip_id: int | None = None, event_id: int | None = None) -> list[int]:
        """Photos of a trip or an event, in time order, with their local time."""
        if trip_id is not None:
            sql = """SELECT ep.photo_id FROM event_photos ep JOIN events e ON e.id = ep.event_id
                     JOIN photos p ON p.id = ep.photo_id WHERE e.trip_id = ? ORDER BY p.taken_at, p.id"""
            args: tuple[Any, ...] = (trip_id,)
        else:
            sql = """SELECT ep.photo_id FROM event_photos ep JOIN photos p ON p.id = ep.photo_id
                     WHERE ep.event_id = ? ORDER BY p.taken_at, p.id"""
            args = (event_id,)
        return [r[0] for r in self.db.execute(sql, args)]

    def days(self, trip_id: int) -> list[list[int]]:
        """A trip's photos per local day, in order."""
        rows = self.db.execute(
            """SELECT substr(p.taken_at, 1, 10), ep.photo_id FROM event_photos ep
               JOIN events e ON e.id = ep.event_id JOIN photos p ON p.id = ep.photo_id
               WHERE e.trip_id = ? ORDER BY p.taken_at, p.id""",
            (trip_id,),
        )
        by_day: dict[str, list[int]] = {}
        for day, pid in rows:
            by_day.setdefault(day, []).append(pid)
        return list(by_day.values())


def _offset_minutes(text: str | None) -> int | None:
    if not text:
        return None
    try:
        sign = -1 if text.startswith("-") else 1
        hours, minutes = text.lstrip("+-").split(":")
        return sign * (int(hours) * 60 + int(minutes))
    except ValueError:
        return None

"""Events, home and trips from when and where photos were taken. Pure functions over `Shot`s.

- Time: each photo's local wall-clock time and its EXIF offset give a UTC instant; a photo without an offset
  takes the offset of the nearest earlier photo that has one (the camera's clock stays in one zone while the
  photographer does), else UTC.
- Place: a photo without GPS takes the position of its nearest located neighbour in time within
  `FILL_H` hours, so it joins the event around it.
- Events: photos in time order; a gap of more than `GAP_H` hours or a jump of more than `JUMP_KM` between
  consecutive located photos starts a new event. A day at the beach is one event; a night's sleep splits a
  long stay into days.
- Home, per month: the 0.25-degree cell (about 25 km) photographed in the most distinct weeks within
  `HOME_WINDOW_MONTHS` months on either side (the month itself counting twice), so a move changes home
  within a month or two, and a long trip (one or two weeks) does not become home.
- Trips: consecutive events whose centre lies more than `AWAY_KM` from that month's home, with less than
  `TRIP_GAP_DAYS` between them and no event at home in between, spanning at least two local days (a night
  away). One away day is an outing event, not a trip.

Every threshold is measured by `bench/questions.py --grouping` on generated streams with known boundaries.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

GAP_H = 6.0
JUMP_KM = 30.0
FILL_H = 6.0
AWAY_KM = 50.0
TRIP_GAP_DAYS = 2.0
HOME_WINDOW_MONTHS = 2  # months on each side
CELL_DEG = 0.25


@dataclass(slots=True)
class Shot:
    """One photo as grouping sees it."""

    photo_id: int
    local: datetime  # wall-clock time where it was taken
    offset_min: int | None  # EXIF offset from UTC in minutes, when known
    lat: float | None = None
    lon: float | None = None
    place: dict[str, str | None] = field(default_factory=dict)  # city, region, country (+ _zh), country_code
    utc: datetime | None = None  # filled by `group`
    filled: bool = False  # the position came from a neighbour


@dataclass
class Event:
    shots: list[Shot]
    lat: float | None
    lon: float | None
    home_km: float | None  # distance from that month's home; None without any position
    trip: int | None = None  # index into the trips list

    @property
    def start(self) -> Shot:
        return self.shots[0]

    @property
    def end(self) -> Shot:
        return self.shots[-1]

    @property
    def away(self) -> bool:
        return self.home_km is not None and self.home_km > AWAY_KM


@dataclass
class Trip:
    events: list[Event]

    @property
    def shots(self) -> list[Shot]:
        return [s for e in self.events for s in e.shots]

    @property
    def days(self) -> list[date]:
        return sorted({s.local.date() for s in self.shots})


@dataclass
class Grouping:
    events: list[Event]
    trips: list[Trip]
    homes: dict[tuple[int, int], tuple[float, float]]  # (year, month) -> home cell centre


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12742.0 * math.asin(min(1.0, math.sqrt(a)))


def _utc(shots: list[Shot]) -> None:
    shots.sort(key=lambda s: (s.local, s.photo_id))
    last: int | None = None
    for s in shots:
        if s.offset_min is not None:
            last = s.offset_min
        s.utc = s.local - timedelta(minutes=s.offset_min if s.offset_min is not None else (last or 0))
    shots.sort(key=lambda s: (s.utc or s.local, s.photo_id))


def _fill_positions(shots: list[Shot]) -> None:
    located = [i for i, s in enumerate(shots) if s.lat is not None and s.lon is not None]
    if not located:
        return
    j = 0
    for i, s in enumerate(shots):
        if s.lat is not None:
            continue
        while j + 1 < len(located) and located[j + 1] < i:
            j += 1
        best, best_h = None, FILL_H
        for k in (located[j], located[min(j + 1, len(located) - 1)]):
            hours = abs(((shots[k].utc or shots[k].local) - (s.utc or s.local)).total_seconds()) / 3600
            if hours <= best_h:
                best, best_h = shots[k], hours
        if best is not None:
            s.lat, s.lon, s.filled = best.lat, best.lon, True
            if not any(s.place.values()):
                s.place = dict(best.place)


def _split(shots: list[Shot], gap_h: float, jump_km: float) -> list[list[Shot]]:
    events: list[list[Shot]] = []
    last_located: Shot | None = None
    for s in shots:
        new = not events
        if events:
            prev = events[-1][-1]
            if ((s.utc or s.local) - (prev.utc or prev.local)).total_seconds() > gap_h * 3600 or (
                s.lat is not None
                and last_located is not None
                and km(s.lat, s.lon or 0.0, last_located.lat or 0.0, last_located.lon or 0.0) > jump_km
            ):
                new = True
        if new:
            events.append([s])
            last_located = None
        else:
            events[-1].append(s)
        if s.lat is not None:
            last_located = s
    return events


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG)


def _homes(shots: list[Shot]) -> dict[tuple[int, int], tuple[float, float]]:
    """Per month: the cell photographed in the most distinct weeks within the months around it (its own month
    counting twice). Weeks, not days or photos: a six-day trip is one or two weeks, home is all of them."""
    weeks_by_month: dict[tuple[int, int], Counter[tuple[int, int]]] = {}
    seen: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    for s in shots:
        if s.lat is None or s.lon is None or s.filled:
            continue
        cell = _cell(s.lat, s.lon)
        day = s.local.date()
        week = day.isocalendar()[:2]
        if (week, cell) in seen:
            continue
        seen.add((week, cell))
        weeks_by_month.setdefault((day.year, day.month), Counter())[cell] += 1
    months = sorted(weeks_by_month)
    homes: dict[tuple[int, int], tuple[float, float]] = {}
    if not months:
        return homes
    (y, m), last = months[0], months[-1]
    while (y, m) <= last:
        total: Counter[tuple[int, int]] = Counter()
        index = y * 12 + m
        for k in range(-HOME_WINDOW_MONTHS, HOME_WINDOW_MONTHS + 1):
            yy, mm = divmod(index + k - 1, 12)
            counts = weeks_by_month.get((yy, mm + 1))
            if counts:
                for cell, n in counts.items():
                    total[cell] += n * (2 if k == 0 else 1)
        if total:
            (cy, cx), _ = max(total.items(), key=lambda kv: (kv[1], kv[0]))
            homes[(y, m)] = ((cy + 0.5) * CELL_DEG, (cx + 0.5) * CELL_DEG)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return homes


def _centre(shots: Sequence[Shot]) -> tuple[float | None, float | None]:
    located = [s for s in shots if s.lat is not None and s.lon is not None]
    if not located:
        return None, None
    lats = sorted(s.lat for s in located if s.lat is not None)
    lons = sorted(s.lon for s in located if s.lon is not None)
    return lats[len(lats) // 2], lons[len(lons) // 2]


def group(
    shots: list[Shot], *, gap_h: float = GAP_H, jump_km: float = JUMP_KM, away_km: float = AWAY_KM
) -> Grouping:
    """Events, trips and homes of these photos (the list is sorted in place by time)."""
    if not shots:
        return Grouping([], [], {})
    _utc(shots)
    _fill_positions(shots)
    homes = _homes(shots)
    events = []
    for part in _split(shots, gap_h, jump_km):
        lat, lon = _centre(part)
        month = (part[0].local.year, part[0].local.month)
        home = homes.get(month)
        dist = km(lat, lon, *home) if lat is not None and lon is not None and home else None
        events.append(Event(part, lat, lon, dist))
    trips: list[Trip] = []
    run: list[Event] = []

    def close() -> None:
        if run and len({s.local.date() for e in run for s in e.shots}) >= 2:
            for e in run:
                e.trip = len(trips)
            trips.append(Trip(list(run)))
        run.clear()

    for e in events:
        away = e.home_km is not None and e.home_km > away_km
        if not away:
            if e.home_km is not None:  # an event at home ends a trip; one without a position does not
                close()
            elif run:
                run.append(e)  # no position: between two away events it belongs to the trip
            continue
        if run:
            prev = run[-1].end
            if ((e.start.utc or e.start.local) - (prev.utc or prev.local)).days >= TRIP_GAP_DAYS:
                close()
        run.append(e)
    close()
    # a trailing event without position does not belong to a trip it merely follows
    for t in trips:
        while t.events and t.events[-1].home_km is None:
            t.events.pop().trip = None
    return Grouping(events, trips, homes)

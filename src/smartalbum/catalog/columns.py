"""The visible photos' time and place in memory, for filters over a million photos in milliseconds.

A question with a time or a place ("Tokyo at night", "2019年的雪山") needs the photos that pass it. Read
from SQLite, a city's 90,000 photos of a million cost 20-40 ms (each row handed to Python), and checking a
question's candidates against a season 5-20 ms. Here the same fields are held as arrays indexed by photo id
(~30 MB for a million photos, read in about 2 s), and a filter is a few numpy comparisons over the photos of
its place or its time span. They are read again only when the catalog's filter counter moves (a photo added
or removed, its time, place or visibility changed), not when photos are analysed. `FilterColumns` answers
the same four questions as `Catalog` (filter_photo_ids, filter_among, newest_blocks, newest_first), with the
same answers: the tests hold the two to it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from smartalbum.catalog.db import Catalog, PhotoFilter

_UNDATED = b"0000-00-00"
_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9)  # the digits of YYYY-MM-DD


def _ints(text: str | None) -> np.ndarray:
    """A group_concat of integers as an int64 array."""
    if not text:
        return np.empty(0, dtype=np.int64)
    return np.array(text.split(","), dtype=np.int64)


def _days(text: str | None) -> tuple[np.ndarray, bool]:
    """A concatenation of 'YYYY-MM-DD' (or _UNDATED) as YYYYMMDD ints (-1 undated), and whether every one
    was a real date written that way (else a date filter is left to SQLite)."""
    raw = np.frombuffer((text or "").encode("ascii", "replace"), dtype=np.uint8)  # a byte a character
    if len(raw) % 10:
        return np.empty(0, dtype=np.int32), False
    chars = raw.reshape(-1, 10)
    digits = chars.astype(np.int32) - ord("0")
    ok = (chars[:, 4] == ord("-")) & (chars[:, 7] == ord("-"))
    day = np.zeros(len(chars), dtype=np.int32)
    for k in _DIGITS:
        ok &= (digits[:, k] >= 0) & (digits[:, k] <= 9)
        day = day * 10 + digits[:, k]
    undated = (chars == np.frombuffer(_UNDATED, dtype=np.uint8)).all(axis=1)
    day[undated] = -1
    dated = ok & ~undated
    # a real calendar day: month 1-12 and a day that month has (the weekday is computed from it)
    as_date = _as_datetime(day[dated])
    real = (as_date.astype("datetime64[M]").astype(np.int64) % 12 + 1 == day[dated] // 100 % 100) & (
        (as_date - as_date.astype("datetime64[M]")).astype(np.int64) + 1 == day[dated] % 100
    )
    return day, bool((ok | undated).all() and real.all())


def _as_datetime(day: np.ndarray) -> np.ndarray:
    """YYYYMMDD ints as datetime64[D] (out-of-range months and days roll over)."""
    years = (day // 10000 - 1970).astype("datetime64[Y]")
    months = years.astype("datetime64[M]") + (day // 100 % 100 - 1)
    return months.astype("datetime64[D]") + (day % 100 - 1)


@dataclass(frozen=True, eq=False)
class FilterColumns:
    """What a time or place filter reads, for every visible photo, as of `token` (Catalog.filter_token)."""

    token: str
    order: np.ndarray  # the visible photos' ids, newest first (as Catalog orders them), int64
    day: np.ndarray  # by photo id: taken on YYYYMMDD (local), -1 undated or not visible, int32
    place: np.ndarray  # by photo id: its index in `places`, -1 not visible, int32
    rank: np.ndarray  # by photo id: its place in `order`, -1 not visible, int64
    places: list[tuple[str | None, str | None, str | None]]  # (city, country code, region)
    at_place: list[np.ndarray]  # by index in `places`: its photos' ids, newest first
    dates_ok: bool  # every date as Catalog writes it (else a time filter is answered by SQLite)

    @classmethod
    def read(cls, catalog: Catalog) -> FilterColumns:
        """Read from one state of the catalog (its token and rows in one read transaction)."""
        with catalog.snapshot():
            token = catalog.filter_token()
            ids_text, days_text = catalog.db.execute(
                f"""SELECT group_concat(id), group_concat(coalesce(substr(taken_at, 1, 10), ?), '')
                    FROM (SELECT p.id, p.taken_at FROM photos p INDEXED BY photos_visible_taken
                          WHERE {Catalog._VISIBLE} ORDER BY p.taken_at DESC, p.id DESC)""",
                (_UNDATED.decode(),),
            ).fetchone()
            by_place = catalog.db.execute(
                f"""SELECT p.place_city, p.country_code, p.place_region, group_concat(p.id)
                    FROM photos p INDEXED BY photos_visible_city WHERE {Catalog._VISIBLE}
                    GROUP BY p.place_city, p.country_code, p.place_region"""
            ).fetchall()
        order = _ints(ids_text)
        days, dates_ok = _days(days_text)
        size = int(order.max()) + 1 if len(order) else 0
        day = np.full(size, -1, dtype=np.int32)
        if len(days) == len(order):  # each day 10 characters (substr's at most): one per photo
            day[order] = days
        else:
            dates_ok = False
        rank = np.full(size, -1, dtype=np.int64)
        rank[order] = np.arange(len(order))
        place = np.full(size, -1, dtype=np.int32)
        places, at_place = [], []
        for n, (city, cc, region, text) in enumerate(by_place):
            ids = _ints(text)
            place[ids] = n
            places.append((city, cc, region))
            at_place.append(ids[np.argsort(rank[ids])])
        return cls(token, order, day, place, rank, places, at_place, dates_ok)

    def __len__(self) -> int:
        return len(self.order)

    def answers(self, photo_filter: PhotoFilter) -> bool:
        """Whether this copy can answer the filter (a date not written as Catalog writes it cannot)."""
        dated = (
            photo_filter.date_from
            or photo_filter.date_before
            or photo_filter.months
            or photo_filter.month_days
            or photo_filter.weekend
        )
        return self.dates_ok or not dated

    def passes(self, photo_filter: PhotoFilter, ids: np.ndarray) -> np.ndarray:
        """Whether each of `ids` (int64 photo ids) is visible and passes the filter."""
        f = photo_filter
        ok = (ids >= 0) & (ids < len(self.day))
        ids = np.where(ok, ids, 0)
        ok &= self.place[ids] >= 0
        day = self.day[ids]
        if f.date_from:
            ok &= day >= _yyyymmdd(f.date_from)
        if f.date_before:
            ok &= (day >= 0) & (day < _yyyymmdd(f.date_before))
        if f.months:
            ok &= (day >= 0) & np.isin(day // 100 % 100, [int(m) for m in f.months])
        if f.month_days:
            wanted = [int(md[:2]) * 100 + int(md[3:5]) for md in f.month_days if len(md) == 5]
            ok &= (day >= 0) & np.isin(day % 10000, wanted)
        if f.weekend:
            ok &= self.weekend[ids]
        if f.place:
            ok &= self._in_place(f.place)[self.place[ids] + 1]
        if f.without:
            ok &= ~np.isin(ids, np.array(f.without, dtype=np.int64))
        return ok

    @cached_property
    def weekend(self) -> np.ndarray:
        """By photo id: taken on a Saturday or a Sunday (the day as written, a local time)."""
        out = np.zeros(len(self.day), dtype=bool)
        dated = np.flatnonzero(self.day >= 0)
        sunday_is_0 = (_as_datetime(self.day[dated]).astype(np.int64) + 4) % 7  # 1970-01-01 was a Thursday
        out[dated[(sunday_is_0 == 0) | (sunday_is_0 == 6)]] = True
        return out

    def _in_place(self, place: tuple[str, str, str | None, str | None]) -> np.ndarray:
        """By index in `places` + 1 (0: not visible): whether it is the place, by the conditions of
        Catalog._filter_where (a missing value never equals anything, as NULL in SQL)."""
        field_, name, cc, region = place
        wanted = np.zeros(len(self.places) + 1, dtype=bool)
        for n, (p_city, p_cc, p_region) in enumerate(self.places):
            if field_ == "country":
                wanted[n + 1] = cc is not None and p_cc == cc
            else:
                wanted[n + 1] = (
                    (p_city if field_ == "city" else p_region) == name
                    and (not cc or p_cc == cc)
                    and (not region or field_ != "city" or p_region == region)
                )
        return wanted

    @cached_property
    def _newest_days(self) -> np.ndarray:
        """Minus the day of each photo in `order`: ascending (undated last), to find a time span in."""
        return -self.day[self.order].astype(np.int64)

    def _narrowed(self, f: PhotoFilter) -> np.ndarray:
        """Photos newest first that include every one passing the filter: its place's, or its time span's
        (one run of `order`), or all."""
        if f.place:
            wanted = np.flatnonzero(self._in_place(f.place)[1:])
            if len(wanted) == 1:
                return self.at_place[int(wanted[0])]
            ids = np.concatenate([self.at_place[n] for n in wanted] or [np.empty(0, dtype=np.int64)])
            return ids[np.argsort(self.rank[ids], kind="stable")]
        lo, hi = 0, len(self.order)
        if f.date_before and self.dates_ok:
            lo = int(np.searchsorted(self._newest_days, -_yyyymmdd(f.date_before), side="right"))
        if f.date_from and self.dates_ok:
            hi = int(np.searchsorted(self._newest_days, -_yyyymmdd(f.date_from), side="right"))
        return self.order[lo:hi]

    # -- the answers Catalog gives, from memory ----------------------------------------------------------

    def filter_photo_ids(self, photo_filter: PhotoFilter, *, ordered: bool = True) -> list[int]:
        """Catalog.filter_photo_ids (newest first either way)."""
        return self.filter_array(photo_filter).tolist()

    def filter_array(self, photo_filter: PhotoFilter) -> np.ndarray:
        """filter_photo_ids as an int64 array, newest first."""
        ids = self._narrowed(photo_filter)
        return ids[self.passes(photo_filter, ids)]

    def mask(self, photo_filter: PhotoFilter) -> np.ndarray:
        """By photo id: whether it is visible and passes the filter."""
        out = np.zeros(len(self.day), dtype=bool)
        out[self.filter_array(photo_filter)] = True
        return out

    def filter_among(self, photo_filter: PhotoFilter, photo_ids: Iterable[int]) -> set[int]:
        """Catalog.filter_among."""
        ids = np.fromiter(photo_ids, dtype=np.int64)
        return set(ids[self.passes(photo_filter, ids)].tolist())

    def newest_blocks(
        self, photo_filter: PhotoFilter | None = None, first: int = 1024, most: int = 16_384
    ) -> Generator[list[int]]:
        """Catalog.newest_blocks: the filter checked on the way, as far as the blocks asked for (a season's
        first page reads a few thousand photos, not the million)."""
        order = self.order if photo_filter is None else self._narrowed(photo_filter)
        start, size = 0, first
        passing = np.empty(0, dtype=np.int64)  # read and checked, not yet handed out
        while True:
            chunk = 2 * size
            while len(passing) < size and start < len(order):
                read = order[start : start + chunk]
                start, chunk = start + len(read), min(2 * chunk, 65_536)
                if photo_filter is not None:
                    read = read[self.passes(photo_filter, read)]
                passing = np.concatenate([passing, read])
            if not len(passing):
                return
            yield passing[:size].tolist()
            passing, size = passing[size:], min(size * 2, most)

    def newest_first(self, photo_ids: Sequence[int]) -> list[int]:
        """Catalog.newest_first."""
        ids = np.unique(np.array(photo_ids, dtype=np.int64))
        ids = ids[(ids >= 0) & (ids < len(self.day))]
        rank = self.rank[ids]
        return ids[rank >= 0][np.argsort(rank[rank >= 0])].tolist()


def _yyyymmdd(iso: str) -> int:
    """'YYYY-MM-DD' (a filter's bound) as YYYYMMDD."""
    return int(iso[:4]) * 10000 + int(iso[5:7]) * 100 + int(iso[8:10])

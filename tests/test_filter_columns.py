"""The photos' time and place in memory (catalog/columns.py) answer every filter as the catalog's SQL does."""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path

import pytest

from smartalbum.catalog import Catalog
from smartalbum.catalog.columns import FilterColumns
from smartalbum.catalog.db import PhotoFilter
from smartalbum.config import Settings
from smartalbum.search import engine as search_engine
from smartalbum.search.engine import SearchEngine
from smartalbum.vision.base import AnalysisResult

CITIES = [
    ("Hangzhou", "Zhejiang", "CN"),
    ("Ningbo", "Zhejiang", "CN"),
    ("Springfield", "Illinois", "US"),
    ("Springfield", "Missouri", "US"),  # one name, two regions
    ("Kyoto", "Kyoto", "JP"),
    (None, "Zhejiang", "CN"),  # a region without a city
    (None, None, "FR"),
    (None, None, None),  # no place
]


def _fill(db: sqlite3.Connection, n: int, seed: int = 7) -> None:
    """n photos with times (some undated, many sharing a second), places, and files (some gone)."""
    rng = random.Random(seed)
    db.execute("INSERT INTO roots(id, path, added_at) VALUES (1, '/photos', 'now')")
    for pid in range(1, n + 1):
        if rng.random() < 0.08:
            taken = None
        else:  # few distinct seconds: ties are ordered by id
            year, month, day = rng.choice([2016, 2019, 2020, 2024]), rng.randint(1, 12), rng.randint(1, 28)
            taken = f"{year}-{month:02d}-{day:02d}T{rng.choice([8, 20]):02d}:00:00"
        city, region, cc = rng.choice(CITIES)
        db.execute(
            """INSERT INTO photos(id, hash, size, taken_at, time_source, place_city, place_region,
                                  country_code, created_at, updated_at)
               VALUES (?, ?, 1, ?, 'exif_original', ?, ?, ?, 'now', 'now')""",
            (pid, f"h{pid}", taken, city, region, cc),
        )
        status = "gone" if rng.random() < 0.1 else "ok"
        db.execute(
            """INSERT INTO files(path, root_id, photo_id, size, mtime_ns, status, first_seen, last_seen)
               VALUES (?, 1, ?, 1, 0, ?, 'now', 'now')""",
            (f"/photos/{pid}.jpg", pid, status),
        )


FILTERS = [
    PhotoFilter(),
    PhotoFilter(date_from="2019-01-01", date_before="2020-01-01"),
    PhotoFilter(date_from="2019-03-05"),
    PhotoFilter(date_before="2016-06-15"),
    PhotoFilter(date_from="2030-01-01"),
    PhotoFilter(months=(12, 1, 2)),
    PhotoFilter(month_days=("07-04", "12-25", "02-14")),
    PhotoFilter(weekend=True),
    PhotoFilter(place=("city", "Hangzhou", "CN", "Zhejiang")),
    PhotoFilter(place=("city", "Springfield", "US", None)),
    PhotoFilter(place=("city", "Springfield", "US", "Missouri")),
    PhotoFilter(place=("city", "Springfield", None, None)),
    PhotoFilter(place=("region", "Zhejiang", "CN", None)),
    PhotoFilter(place=("country", "Japan", "JP", None)),
    PhotoFilter(place=("country", "France", "FR", None), weekend=True, months=(6, 7, 8)),
    PhotoFilter(place=("city", "Atlantis", None, None)),
    PhotoFilter(date_from="2020-01-01", date_before="2025-01-01", place=("region", "Zhejiang", "CN", None)),
    PhotoFilter(months=(7,), without=(3, 5, 8, 13, 21, 34)),
]


@pytest.fixture()
def filled(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    with catalog.transaction():
        _fill(catalog.db, 600)
    return catalog


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_every_answer_is_the_catalogs(filled: Catalog, where: PhotoFilter) -> None:
    columns = FilterColumns.read(filled)
    assert columns.dates_ok and columns.answers(where)
    ids = filled.filter_photo_ids(where)
    assert columns.filter_photo_ids(where) == ids  # the same photos, newest first
    if where in (FILTERS[0], FILTERS[5], FILTERS[8]):
        assert len(ids) > 20
    asked = list(range(-3, 700, 3))
    assert columns.filter_among(where, asked) == filled.filter_among(where, asked)
    walk = [list(b) for b in columns.newest_blocks(where, 8, 32)]
    assert walk == [list(b) for b in filled.newest_blocks(where, 8, 32)]
    assert [len(b) for b in walk[:-1]] == [min(8 * 2**k, 32) for k in range(len(walk) - 1)]
    some = random.Random(1).sample(range(1, 640), 200)
    assert columns.newest_first(some) == filled.newest_first(some)


def test_a_weekend_is_the_local_day_written(filled: Catalog) -> None:
    """2024-06-01 was a Saturday, 06-03 a Monday: late at night in a time zone east of UTC too."""
    filled.db.execute("UPDATE photos SET taken_at = '2024-06-01T23:30:00', tz_offset = '+08:00' WHERE id = 1")
    filled.db.execute("UPDATE photos SET taken_at = '2024-06-03T00:10:00', tz_offset = '-05:00' WHERE id = 2")
    filled.db.execute("UPDATE files SET status = 'ok' WHERE photo_id IN (1, 2)")
    columns = FilterColumns.read(filled)
    weekend = PhotoFilter(weekend=True, date_from="2024-06-01", date_before="2024-06-04")
    assert 1 in columns.filter_photo_ids(weekend) and 2 not in columns.filter_photo_ids(weekend)
    assert columns.filter_photo_ids(weekend) == filled.filter_photo_ids(weekend)


def test_a_date_not_written_as_the_catalog_writes_it_is_left_to_sqlite(filled: Catalog) -> None:
    filled.db.execute("UPDATE photos SET taken_at = '2019:07:04 10:00:00' WHERE id = 4")
    filled.db.execute("UPDATE files SET status = 'ok' WHERE photo_id = 4")
    columns = FilterColumns.read(filled)
    assert not columns.dates_ok
    assert not columns.answers(PhotoFilter(months=(7,)))
    place = PhotoFilter(place=("city", "Hangzhou", "CN", None))
    assert columns.answers(place) and columns.filter_photo_ids(place) == filled.filter_photo_ids(place)


def test_the_filter_token_moves_with_what_filters_read_and_not_with_analyses(filled: Catalog) -> None:
    token = filled.filter_token()
    state = filled.state_token()
    filled.record_analyses("qwen_vl", "v1", [AnalysisResult("h1", "ok", {"caption": {"en": "a wall"}}, "{}")])
    assert filled.state_token() != state and filled.filter_token() == token  # described: filters unchanged
    changes = [
        "UPDATE photos SET taken_at = '2001-01-01T00:00:00' WHERE id = 1",
        "UPDATE photos SET place_city = 'Ningbo' WHERE id = 1",
        "UPDATE files SET status = 'gone' WHERE photo_id = 7 AND status = 'ok'",  # visibility, by a trigger
        """INSERT INTO photos(id, hash, size, time_source, created_at, updated_at)
           VALUES (9999, 'new', 1, 'mtime', 'now', 'now')""",
        "DELETE FROM photos WHERE id = 9999",
    ]
    for sql in changes:
        before = filled.filter_token()
        assert filled.db.execute(sql).rowcount == 1, sql
        assert filled.filter_token() != before, sql
    filled.db.execute("UPDATE photos SET camera_model = 'X100' WHERE id = 1")
    assert filled.filter_token() == filled.filter_token()


def test_a_search_reads_the_columns_again_only_when_filters_changed(
    filled: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine keeps one copy per filter token (SearchEngine._filters); while reads are slow and come
    often (an ingestion under way), SQLite answers between two reads."""
    engine = SearchEngine(Settings(library_dir=filled.path.parent))
    first = engine._filters(filled)
    assert isinstance(first, FilterColumns)
    filled.record_analyses("qwen_vl", "v1", [AnalysisResult("h2", "ok", {"caption": {"en": "a door"}}, "{}")])
    assert engine._filters(filled) is first
    filled.db.execute("UPDATE photos SET place_city = 'Kyoto' WHERE id = 2")
    second = engine._filters(filled)
    assert second is not first and isinstance(second, FilterColumns)
    kyoto = PhotoFilter(place=("city", "Kyoto", None, None))
    assert second.filter_photo_ids(kyoto) == filled.filter_photo_ids(kyoto)
    assert list(itertools.chain(*second.newest_blocks(None))) == filled.filter_photo_ids(PhotoFilter())

    monkeypatch.setattr(search_engine, "REREAD_SLOW_S", -1.0)  # every read counts as slow
    filled.db.execute("UPDATE photos SET place_city = 'Hangzhou' WHERE id = 2")
    assert engine._filters(filled) is filled  # read a moment ago: SQLite answers
    monkeypatch.setattr(search_engine, "REREAD_GAP_S", 0.0)
    third = engine._filters(filled)
    assert isinstance(third, FilterColumns) and third.token == filled.filter_token()

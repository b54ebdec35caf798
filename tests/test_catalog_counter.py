"""The catalog's change counter: what tells the search indexes, in O(1), that the catalog changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smartalbum.catalog import Catalog
from smartalbum.catalog.db import PhotoFilter
from smartalbum.config import Settings
from smartalbum.vision.base import AnalysisResult
from tests.helpers import index, make_photo


def test_token_moves_with_every_change_search_reads_and_not_with_a_rerun(
    tmp_path: Path, settings: Settings, catalog: Catalog
) -> None:
    src = tmp_path / "photos"
    a = make_photo(src / "a.jpg", seed=1)
    make_photo(src / "b.jpg", seed=2)
    catalog.add_root(src)
    empty = catalog.state_token()
    index(catalog, settings)
    indexed = catalog.state_token()
    assert indexed != empty
    index(catalog, settings)  # nothing changed: every file's last_seen is written, the token stays
    assert catalog.state_token() == indexed

    photo = catalog.photo(str(a))
    catalog.record_analyses(
        "qwen_vl", "v1", [AnalysisResult(photo["hash"], "ok", {"caption": {"en": "a red wall"}}, "{}")]
    )
    described = catalog.state_token()
    assert described != indexed

    a.unlink()
    index(catalog, settings)  # the file is gone: search must drop the photo
    assert catalog.state_token() != described


def test_a_catalog_made_afresh_never_repeats_an_old_token(tmp_path: Path) -> None:
    with Catalog(tmp_path / "one.sqlite3") as one, Catalog(tmp_path / "two.sqlite3") as two:
        assert one.state_token() != two.state_token()  # same count of changes (none), different catalogs


def test_a_write_from_another_connection_moves_it(tmp_path: Path, catalog: Catalog) -> None:
    before = catalog.state_token()
    other = sqlite3.connect(catalog.path)
    with other:
        other.execute(
            "INSERT INTO analyses(hash, producer, producer_version, status, data, raw, created_at) "
            "VALUES ('h', 'ocr', 'v', 'ok', '{}', '', '2026-01-01')"
        )
    other.close()
    assert catalog.state_token() != before


def _files_ok_agree(catalog: Catalog) -> list[int]:
    """Visible photo ids; asserts the trigger-kept count equals the count of existing files for each photo."""
    rows = catalog.db.execute(
        """SELECT p.id, p.files_ok,
                  (SELECT count(*) FROM files f WHERE f.photo_id = p.id AND f.status = 'ok') FROM photos p"""
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(r[0], r[2]) for r in rows]
    return sorted(r[0] for r in rows if r[1] > 0)


def test_visible_photos_follow_their_files(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src, other = tmp_path / "photos", tmp_path / "other"
    a = make_photo(src / "a.jpg", seed=1, taken="2024:07:01 10:00:00")
    copy = src / "sub" / "a-copy.jpg"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())  # the same photo twice
    b = make_photo(src / "b.jpg", seed=2, taken="2023:07:01 10:00:00")
    make_photo(other / "c.jpg", seed=3, taken="2022:07:01 10:00:00")
    catalog.add_root(src)
    catalog.add_root(other)
    index(catalog, settings)
    pa, pb, pc = (catalog.photo(str(p))["id"] for p in (a, b, other / "c.jpg"))
    assert _files_ok_agree(catalog) == sorted([pa, pb, pc])
    assert catalog.filter_photo_ids(PhotoFilter(months=[7])) == [pa, pb, pc]  # newest first

    a.unlink()
    index(catalog, settings)  # one of two copies gone: still visible
    assert _files_ok_agree(catalog) == sorted([pa, pb, pc])
    copy.unlink()
    b.write_bytes(b"now a corrupt file")  # the path stays, as an error: b's photo has no file left
    index(catalog, settings)
    assert _files_ok_agree(catalog) == [pc]
    assert catalog.filter_photo_ids(PhotoFilter(months=[7])) == [pc]

    catalog.remove_root(other)  # removing a folder deletes its files (a cascade)
    assert _files_ok_agree(catalog) == []
    assert catalog.filter_photo_ids(PhotoFilter()) == []


def test_a_month_filter_reads_the_month_index_not_every_photo(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.sqlite3") as cat:
        where, args = cat._filter_where(PhotoFilter(months=(3, 4, 5)))
        for sql in (
            f"SELECT count(*) FROM photos p WHERE {where}",
            f"SELECT p.id FROM photos p WHERE {where}",
        ):
            plan = " ".join(str(row[-1]) for row in cat.db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
            assert (
                "USING INDEX photos_visible_month" in plan
                or "USING COVERING INDEX photos_visible_month" in plan
            ), plan

"""The catalog's change counter: what tells the search indexes, in O(1), that the catalog changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smartalbum.catalog import Catalog
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

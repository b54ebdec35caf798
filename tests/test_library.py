"""Library as the one way in for the CLI and the web app: indexing, importing analyses, syncing the search
indexes from one place, and reusing an embedding model this process has already loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import smartalbum.search.indexer as indexer
from smartalbum.config import Settings
from smartalbum.errors import InputError
from smartalbum.library import Library
from tests.helpers import make_photo


class CountingEmbedder:
    """A tiny deterministic embedder; every instance counts as one model load."""

    loads = 0
    name = "test-hash-embedder"

    def __init__(self) -> None:
        CountingEmbedder.loads += 1

    @property
    def dim(self) -> int:
        return 16

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        rows = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()[:16]
            v = np.frombuffer(digest, dtype=np.uint8).astype(np.float32) + 1.0
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows) if rows else np.zeros((0, 16), np.float32)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingEmbedder]:
    CountingEmbedder.loads = 0
    monkeypatch.setattr(
        indexer, "load_with_fallback", lambda name, device="auto", **kw: (CountingEmbedder(), None)
    )
    return CountingEmbedder


def test_index_needs_a_folder(settings: Settings) -> None:
    with Library(settings) as lib, pytest.raises(InputError) as info:
        lib.index(vlm=False, ocr=False)
    assert (info.value.message, info.value.hint) == (
        "no folders registered",
        "run `smartalbum add <folder>` first",
    )


def test_one_model_per_process_for_search_sync_and_import(
    tmp_path: Path, settings: Settings, counting: type[CountingEmbedder]
) -> None:
    photo = make_photo(tmp_path / "photos" / "cat.jpg")
    with Library(settings) as lib:
        lib.add_root(tmp_path / "photos")
        report = lib.index(vlm=False, ocr=False)
        assert report.ingest.ok == 1 and report.search_index is not None
        assert counting.loads == 1  # no search engine yet: the run loads its own model
        lib.search("cat")
        assert counting.loads == 2  # the search engine's model
        lines = tmp_path / "caps.jsonl"
        lines.write_text(json.dumps({"path": str(photo), "description": "a black cat on a sofa"}) + "\n")
        imported = lib.import_analyses(lines)
        assert (imported.lines, imported.imported, imported.errors) == (1, 1, [])
        stats = lib.sync_search_indexes(force=True)
        assert stats.embedder == CountingEmbedder.name and stats.documents == 1
        doctor = lib.doctor()
        assert doctor["catalog"] == "ok" and doctor["search_index"]["embedder"] == CountingEmbedder.name
        assert lib.index(vlm=False, ocr=False).ingest.unchanged == 1
        assert counting.loads == 2  # import, sync, doctor and index reused the engine's model
        hits = lib.search("black cat sofa").hits
        assert [h.photo_id for h in hits] == [lib.photo(str(photo))["id"]]

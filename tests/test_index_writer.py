"""One writer of the search indexes at a time: a CLI `index` and `import-analyses` in another process while a
server-side Library keeps describing photos and searching; afterwards every photo is findable in both, and no
vector was lost to a save from a stale copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.embed.registry import load_embedder
from smartalbum.library import Library
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.search.indexer import SearchIndexes, SyncStats, write_lock
from smartalbum.vision.base import AnalysisResult
from tests.helpers import make_photo

N = 8  # photos per side


def _word(side: str, i: int) -> str:
    return f"{side}zq{i}x"  # one token no other photo has


def _caption(side: str, i: int) -> dict[str, object]:
    return {"caption": {"en": f"A photo of a garden with a {_word(side, i)} statue"}}


def _settings(tmp_path: Path) -> Settings:
    lib_dir = tmp_path / "library"
    lib_dir.mkdir()
    (lib_dir / "config.toml").write_text('embed_model = "offline"\nworkers = 1\n')  # read by the CLI too
    return load_settings(lib_dir)


def _vector_ids(settings: Settings) -> set[int]:
    indexes = SearchIndexes(settings)
    try:
        with Catalog(settings.catalog_path) as cat:
            indexes.sync(cat)
        assert indexes.vectors is not None
        return {int(i) for i in indexes.vectors.ids()}
    finally:
        indexes.close()


def test_cli_index_while_the_server_writes_and_searches(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    root = tmp_path / "photos"
    for i in range(N):
        make_photo(root / f"s{i}.jpg", seed=i)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(root.resolve())
        ingest_library(cat, settings)
        server_hashes = [cat.photo(str((root / f"s{i}.jpg").resolve()))["hash"] for i in range(N)]
    # the CLI's photos arrive while the server runs
    for i in range(N):
        make_photo(root / "new" / f"c{i}.jpg", seed=100 + i)
    lines = [{"path": str((root / "new" / f"c{i}.jpg").resolve()), **_caption("c", i)} for i in range(N)]
    jsonl = tmp_path / "cli.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in lines))
    server = Library(settings)
    assert server.search("garden statue").hits == []  # the server has loaded its (empty) indexes
    # the installed command, as a user runs it, in its own process
    cli = f"{Path(sys.executable).parent / 'smartalbum'} --library {settings.library_dir}"
    proc = subprocess.Popen(
        f"{cli} index --no-vlm --no-ocr && {cli} import-analyses {jsonl}",
        shell=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # meanwhile the server describes its own photos one at a time and searches after each
        for i, h in enumerate(server_hashes):
            server.catalog.record_analyses(
                "import", "server|v1", [AnalysisResult(h, "ok", data=_caption("s", i))]
            )
            assert server.search(_word("s", i)).hits, i
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        words = [_word("s", i) for i in range(N)] + [_word("c", i) for i in range(N)]
        fresh = Library(settings)
        try:
            for lib in (server, fresh):
                for word in words:
                    hits = lib.search(word).hits
                    assert hits and word in (hits[0].caption.get("en") or ""), (word, hits[:1])
        finally:
            fresh.close()
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
    with Catalog(settings.catalog_path) as cat:
        described = {cat.photo(h)["id"] for h in server_hashes} | {cat.photo(x["path"])["id"] for x in lines}
    # every description has its vector: none was dropped by a save from an older copy
    assert _vector_ids(settings) == described


def test_a_search_while_another_process_writes_uses_the_saved_indexes_and_says_so(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    root = tmp_path / "photos"
    make_photo(root / "a.jpg", seed=1)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(root.resolve())
        ingest_library(cat, settings)
        h = cat.photo(str((root / "a.jpg").resolve()))["hash"]
    lib = Library(settings)
    try:
        assert lib.search("garden").hits == []
        lib.catalog.record_analyses("import", "v1", [AnalysisResult(h, "ok", data=_caption("a", 0))])
        # the lock is held by an open file of its own, as another process would hold it
        with write_lock(settings.library_dir / "index" / "write.lock", wait=True) as held:
            assert held
            busy = lib.search(_word("a", 0))
            assert busy.hits == []  # not written by this search
            assert any("another process" in n for n in busy.notes), busy.notes
        done = lib.search(_word("a", 0))
        assert done.hits and not any("another process" in n for n in done.notes)
    finally:
        lib.close()


def test_a_writer_that_starts_while_another_is_embedding_does_not_lose_its_vectors(tmp_path: Path) -> None:
    """Two index objects as two processes would hold them. While A embeds, B gets a new description and tries
    to sync. Without the lock B saved its vectors and marked them done, then A's save from its older copy
    dropped them for good; with it B leaves the work to the next sync and nothing is lost."""
    settings = _settings(tmp_path)
    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", seed=i)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(root.resolve())
        ingest_library(cat, settings)
        hashes = [cat.photo(str((root / f"p{i}.jpg").resolve()))["hash"] for i in range(3)]
        cat.record_analyses("import", "v1", [AnalysisResult(hashes[0], "ok", data=_caption("p", 0))])
    model = load_embedder("offline")
    seen: list[SyncStats] = []

    class InterruptingEmbedder:
        """The model, except that B runs in the middle of A's first document batch."""

        name = model.name
        dim = model.dim

        def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
            if not query and not seen:
                with Catalog(settings.catalog_path) as other:
                    other.record_analyses(
                        "import", "v1", [AnalysisResult(hashes[2], "ok", data=_caption("p", 2))]
                    )
                    b = SearchIndexes(settings, model)
                    try:
                        seen.append(b.sync(other, wait=False))
                    finally:
                        b.close()
            return model.embed(texts, query=query)

    a = SearchIndexes(settings, InterruptingEmbedder())
    try:
        with Catalog(settings.catalog_path) as cat:
            a.sync(cat)  # p0, and B's turn comes while it embeds
            assert seen and seen[0].busy and seen[0].vectors_updated == 0
    finally:
        a.close()
    with Catalog(settings.catalog_path) as cat:
        ids = {cat.photo(h)["id"] for h in (hashes[0], hashes[2])}
    assert _vector_ids(settings) == ids

"""The derived search indexes of one library, kept in step with the catalog.

`library/index/` holds the FTS5 database, the FAISS vectors and a small state database (document
signatures, people counts, captions). All of it can be deleted at any time: `sync()` rebuilds what is
missing, stale (another embedding model) or corrupt, and otherwise re-indexes only changed documents.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.embed.registry import load_with_fallback
from smartalbum.embed.text import TextEmbedder
from smartalbum.errors import ModelError
from smartalbum.index.fulltext import FullTextIndex
from smartalbum.index.photoids import PhotoIds, PhotoMask, id_array
from smartalbum.index.vectors import VectorIndex
from smartalbum.pipeline.progress import Progress
from smartalbum.search.documents import MOMENT_BASE, PhotoDocument, iter_documents

log = logging.getLogger(__name__)
EMBED_BATCH = 64
QUERY_CACHE = 256  # question vectors kept per library's indexes


@dataclass
class SyncStats:
    documents: int = 0
    fulltext_updated: int = 0
    vectors_updated: int = 0
    removed: int = 0
    rebuilt: list[str] = field(default_factory=list)  # which indexes were rebuilt from scratch, and why
    embedder: str | None = None
    embed_error: str | None = None
    busy: bool = False  # another process was writing the indexes: they were used as last saved


class SearchIndexes:
    def __init__(self, settings: Settings, embedder: TextEmbedder | None = None) -> None:
        self.settings = settings
        self.dir = settings.library_dir / "index"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fts = FullTextIndex(self.dir / "fulltext.sqlite3")
        self.state = sqlite3.connect(
            self.dir / "state.sqlite3", check_same_thread=False, isolation_level=None
        )
        self.state.execute("PRAGMA journal_mode=WAL")
        self.state.execute("PRAGMA synchronous=NORMAL")  # derived data: a lost last write is rebuilt
        self.state.execute(
            """CREATE TABLE IF NOT EXISTS docs (photo_id INTEGER PRIMARY KEY, signature TEXT NOT NULL,
                   people INTEGER, caption_zh TEXT, caption_en TEXT, embedded INTEGER NOT NULL DEFAULT 0)"""
        )
        self.state.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.state.execute("CREATE INDEX IF NOT EXISTS docs_unembedded ON docs(photo_id) WHERE embedded = 0")
        self._embedder = embedder
        self._embed_tried = False
        self.embed_error: str | None = None
        self.vectors: VectorIndex | None = None
        self._vectors_saved: str | None = None
        self._seen_versions: weakref.WeakKeyDictionary[Catalog, tuple[int, int]] = weakref.WeakKeyDictionary()
        self.lock = threading.RLock()
        # recent questions' vectors: the next page of a result, or the same question with another filter,
        # does not embed again (tens of ms on a CPU)
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_lock = threading.Lock()

    # -- the embedder and the vector index, both loaded lazily ------------------------------------

    def embedder(self) -> TextEmbedder | None:
        """The configured embedding model; when it cannot be loaded, the bundled multilingual one (with a note
        in `embed_error`); None (full-text search only) when neither loads."""
        if self._embedder is None and not self._embed_tried:
            self._embed_tried = True
            try:
                self._embedder, self.embed_error = load_with_fallback(
                    self.settings.embed_model, self.settings.vlm_device
                )
            except ModelError as exc:
                self.embed_error = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
        return self._embedder

    def _open_vectors(self, stats: SyncStats, *, writer: bool) -> VectorIndex | None:
        """The vector index as last saved by any process. A writer (holding the write lock) also repairs: an
        unusable index is started afresh and its documents queued for embedding; a copy that does not match
        the state database (a crash between saving the vectors and recording it) has the documents it lacks
        queued again. A reader keeps the copy it has when the saved one cannot be read."""
        emb = self.embedder()
        if emb is None:
            return None
        saved = self._meta("vectors_saved")
        if self.vectors is not None and self.vectors.model == emb.name and saved == self._vectors_saved:
            return self.vectors
        opened = VectorIndex.open(self.dir / "vectors", emb.name, emb.dim)
        if opened.index is not None:
            self.vectors, self._vectors_saved = opened.index, saved
            if writer and (opened.manifest or {}).get("state_token") != saved:
                log.warning("vector index and search state disagree; re-embedding what the index lacks")
                self._state_write(
                    "UPDATE docs SET embedded = 0 WHERE photo_id = ?",
                    [
                        (pid,)
                        for (pid,) in self.state.execute("SELECT photo_id FROM docs WHERE embedded = 1")
                        if pid not in opened.index
                    ],
                )
        elif writer:
            if opened.status != "missing":
                stats.rebuilt.append(f"vectors: {opened.reason}")
            self.vectors, self._vectors_saved = VectorIndex(emb.dim, emb.name), None
            self.state.execute("UPDATE docs SET embedded = 0")
        elif self.vectors is None or self.vectors.model != emb.name:
            self.vectors = VectorIndex(emb.dim, emb.name)  # nothing usable saved yet: a writer will make it
        return self.vectors

    def _meta(self, key: str) -> str | None:
        row = self.state.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- keeping in step with the catalog ---------------------------------------------------------

    def sync(
        self,
        catalog: Catalog,
        progress: Progress | None = None,
        *,
        force: bool = False,
        wait: bool = True,
    ) -> SyncStats:
        """Bring the indexes in step with the catalog. Every writer of this library's indexes, in any process,
        takes the lock file `index/write.lock` first, so no save overwrites another's work. wait=False (a
        search): when another process holds it, use the indexes as last saved and report `busy`."""
        stats = SyncStats()
        with self.lock:
            # PRAGMA data_version moves when another connection commits: unchanged means nothing to look at,
            # which keeps the per-query check O(1) instead of counting every table.
            # Commits on this same connection do not move it: its own change count covers those.
            version = (catalog.db.execute("PRAGMA data_version").fetchone()[0], catalog.db.total_changes)
            unchanged = not force and self._seen_versions.get(catalog) == version
            if unchanged and self.vectors is not None and self._meta("vectors_saved") == self._vectors_saved:
                stats.embedder, stats.embed_error = self.vectors.model, self.embed_error
                return stats
            with write_lock(self.dir / "write.lock", wait=wait) as locked:
                if not locked:
                    stats.busy = True
                    vectors = self._open_vectors(stats, writer=False)
                    stats.embedder, stats.embed_error = (vectors.model if vectors else None), self.embed_error
                    return stats
                self._sync_locked(catalog, version, progress, force, stats)
        return stats

    def _sync_locked(
        self,
        catalog: Catalog,
        version: tuple[int, int],
        progress: Progress | None,
        force: bool,
        stats: SyncStats,
    ) -> None:
        token = catalog.state_token()
        vectors = self._open_vectors(stats, writer=True)
        stats.embedder, stats.embed_error = (vectors.model if vectors else None), self.embed_error
        if self.fts.needs_rebuild:
            stats.rebuilt.append("full text: new or unreadable")
            self.state.execute("DELETE FROM docs")
            self.fts.needs_rebuild = False
        if force:
            self.state.execute("DELETE FROM docs")
        pending = self.state.execute("SELECT 1 FROM docs WHERE embedded = 0 LIMIT 1").fetchone()
        embedded_all = vectors is None or not pending
        if not force and not stats.rebuilt and token == self._meta("token") and embedded_all:
            self._seen_versions[catalog] = version
            return
        known = {
            r[0]: (r[1], r[2]) for r in self.state.execute("SELECT photo_id, signature, embedded FROM docs")
        }
        docs = list(iter_documents(catalog))
        stats.documents = len(docs)
        changed = [d for d in docs if d.photo_id not in known or known[d.photo_id][0] != d.signature]
        to_embed = [d for d in docs if d.photo_id not in known or known[d.photo_id] != (d.signature, 1)]
        gone = set(known) - {d.photo_id for d in docs}
        progress = progress or Progress()
        progress.begin("search index", len(changed) + (len(to_embed) if vectors is not None else 0))
        self._write_fulltext(changed, gone, progress)
        stats.fulltext_updated, stats.removed = len(changed), len(gone)
        if vectors is not None:
            stats.vectors_updated = self._write_vectors(vectors, to_embed, gone, progress, token)
        self.state.execute("INSERT OR REPLACE INTO meta VALUES ('token', ?)", (token,))
        self._seen_versions[catalog] = version  # only once the indexes really are in step

    @contextlib.contextmanager
    def _state_transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction: the connection is in autocommit mode, which would commit every row."""
        self.state.execute("BEGIN")
        try:
            yield self.state
        except BaseException:
            self.state.execute("ROLLBACK")
            raise
        self.state.execute("COMMIT")

    def _state_write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._state_transaction() as db:
            db.executemany(sql, rows)

    def _write_fulltext(self, changed: list[PhotoDocument], gone: set[int], progress: Progress) -> None:
        for start in range(0, len(changed), 500):
            chunk = changed[start : start + 500]
            self.fts.upsert_many((d.photo_id, d.fields) for d in chunk)
            self._state_write(
                """INSERT INTO docs(photo_id, signature, people, caption_zh, caption_en, embedded)
                   VALUES (?, ?, ?, ?, ?, 0)
                   ON CONFLICT(photo_id) DO UPDATE SET signature = excluded.signature,
                       people = excluded.people, caption_zh = excluded.caption_zh,
                       caption_en = excluded.caption_en, embedded = 0""",
                [(d.photo_id, d.signature, d.people, d.caption["zh"], d.caption["en"]) for d in chunk],
            )
            progress.advance(len(chunk))
        if gone:
            self.fts.delete(gone)
            self._state_write("DELETE FROM docs WHERE photo_id = ?", [(i,) for i in gone])

    def _write_vectors(
        self, vectors: VectorIndex, docs: list[PhotoDocument], gone: set[int], progress: Progress, token: str
    ) -> int:
        """Embed `docs`, drop `gone`, save, and only then mark the documents embedded: a crash before the
        save leaves them marked for the next run instead of marked done and missing."""
        emb = self.embedder()
        assert emb is not None
        if gone:
            vectors.remove(gone)
        done = 0
        for start in range(0, len(docs), EMBED_BATCH):
            chunk = docs[start : start + EMBED_BATCH]
            with_text = [d for d in chunk if d.embed_text.strip()]
            if with_text:
                vecs = emb.embed([d.embed_text for d in with_text], query=False)
                vectors.add([d.photo_id for d in with_text], vecs)
            # photos with nothing to embed yet (no analysis) must not match by meaning
            vectors.remove([d.photo_id for d in chunk if not d.embed_text.strip()])
            done += len(with_text)
            progress.advance(len(chunk))
        saved = f"{token}|{time.time()}"
        vectors.save(self.dir / "vectors", state_token=saved)
        with self._state_transaction() as db:
            db.executemany("UPDATE docs SET embedded = 1 WHERE photo_id = ?", [(d.photo_id,) for d in docs])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('vectors_saved', ?)", (saved,))
        self._vectors_saved = saved
        return done

    # -- reading ----------------------------------------------------------------------------------

    def doc_info(self, photo_ids: list[int]) -> dict[int, dict[str, Any]]:
        rows = self.state.execute(
            """SELECT photo_id, people, caption_zh, caption_en FROM docs
               WHERE photo_id IN (SELECT value FROM json_each(?))""",
            (json.dumps([int(i) for i in photo_ids]),),
        )
        return {r[0]: {"people": r[1], "caption": {"zh": r[2] or "", "en": r[3] or ""}} for r in rows}

    def with_moments(self, photo_ids: AbstractSet[int] | None) -> AbstractSet[int] | None:
        """These photos' and videos' document ids and the ids of the videos' moments (a filter for the
        retrievers); None stays None (no filter)."""
        if photo_ids is None:
            return None
        if (
            self.state.execute("SELECT 1 FROM docs WHERE photo_id >= ? LIMIT 1", (MOMENT_BASE,)).fetchone()
            is None
        ):
            return photo_ids  # no video has moments: no copy of a filter that can allow a million photos
        if isinstance(photo_ids, PhotoMask):  # a large share of the library: every moment checked
            rows = self.state.execute("SELECT photo_id FROM docs WHERE photo_id >= ?", (MOMENT_BASE,))
            inside = [r[0] for r in rows if (r[0] - MOMENT_BASE) >> 16 in photo_ids]
            return PhotoMask(photo_ids.mask, photo_ids.extra | frozenset(inside))
        rows = self.state.execute(
            """SELECT photo_id FROM docs WHERE photo_id >= ?
               AND ((photo_id - ?) >> 16) IN (SELECT value FROM json_each(?))""",
            (MOMENT_BASE, MOMENT_BASE, json.dumps([int(i) for i in photo_ids])),
        )
        moments = np.array([r[0] for r in rows], dtype=np.int64)
        return PhotoIds(np.concatenate([id_array(photo_ids), moments])) if len(moments) else photo_ids

    def query_vector(self, text: str) -> np.ndarray | None:
        """The question's vector from the loaded embedder (None without one); recent ones are kept."""
        emb = self.embedder()
        if emb is None or not text.strip():
            return None
        with self._query_lock:
            vec = self._query_vectors.get(text)
            if vec is not None:
                self._query_vectors.move_to_end(text)
                return vec
        vec = emb.embed([text], query=True)[0]
        vec.setflags(write=False)  # shared by every search that asks the same question
        with self._query_lock:
            self._query_vectors[text] = vec
            while len(self._query_vectors) > QUERY_CACHE:
                self._query_vectors.popitem(last=False)
        return vec

    def close(self) -> None:
        self.fts.close()
        self.state.close()


@contextlib.contextmanager
def write_lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """An exclusive lock on `path` across processes (flock: released by the OS if the holder dies).
    Yields False when wait=False and another process holds it."""
    with open(path, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sync_search_indexes(
    catalog: Catalog,
    settings: Settings,
    progress: Progress | None = None,
    *,
    force: bool = False,
    embedder: TextEmbedder | None = None,
) -> SyncStats:
    """Bring the library's search indexes in step with the catalog (for one-shot callers: CLI, index runs).

    `embedder`: a model already loaded in this process (the server's), so it is not loaded a second time."""
    indexes = SearchIndexes(settings, embedder)
    try:
        return indexes.sync(catalog, progress, force=force)
    finally:
        indexes.close()

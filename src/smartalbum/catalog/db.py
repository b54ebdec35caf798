"""The catalog: one SQLite file in WAL mode, one writer, readers never blocked."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartalbum.catalog.records import TIME_SOURCES, IngestOutcome, PhotoMeta
from smartalbum.catalog.schema import MIGRATIONS
from smartalbum.errors import LibraryError, NotFoundError

if TYPE_CHECKING:
    from smartalbum.catalog.events import EventStore
    from smartalbum.catalog.people import PeopleStore

INGEST = "ingest"
UNPARSED_RETRIES = 3  # an answer that cannot be parsed is asked for again this many times in all
_PHOTO_FIELDS = [f.name for f in fields(PhotoMeta) if f.name not in ("hash", "keyframes")]
_NEWEST = "ORDER BY p.taken_at DESC, p.id DESC"  # undated last (NULL sorts first, so last descending)


@dataclass(frozen=True)
class PhotoFilter:
    """Which photos a time or place in a question allows (every one passing all that is set)."""

    date_from: str | None = None  # taken at or after this ISO date
    date_before: str | None = None  # taken before it
    months: Sequence[int] = ()  # in any of these months, any year
    # (field, canonical English name, country code, region) with field city | region | country
    place: tuple[str, str, str | None, str | None] | None = None
    weekend: bool = False
    month_days: Sequence[str] = ()  # 'MM-DD' in any year (birthdays)
    without: Sequence[int] = ()  # photos left out (marked wrong for the question)


@dataclass
class FilterPage:
    """A page of photos passing filters, newest first (Catalog.filter_listing)."""

    total: int  # every match, a group of near-duplicates counted once when folded
    ids: list[int]
    folded: dict[int, tuple[int, list[int]]]  # a page photo -> (its group, the group's other matches)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Catalog:
    """Typed read/write functions over the catalog database. Not shared across threads."""

    # a photo is visible (in results, analysed, indexed) while at least one of its files exists
    _VISIBLE = "p.files_ok > 0"  # the photo has an existing file (a count its files' triggers keep)

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise LibraryError(f"no catalog at {self.path}", "run `smartalbum add <folder>` first")
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
            self.db = sqlite3.connect(
                uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False
            )
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.execute("PRAGMA cache_size = -32000")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LibraryError(
                f"cannot open catalog {self.path}: {exc}",
                "is it a smartalbum library? restore it from a backup or choose another --library",
            ) from exc

    # -- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def people(self) -> PeopleStore:
        """Faces and people (catalog/people.py)."""
        from smartalbum.catalog.people import PeopleStore

        return PeopleStore(self)

    @property
    def events(self) -> EventStore:
        """Events and trips (catalog/events.py)."""
        from smartalbum.catalog.events import EventStore

        return EventStore(self)

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's own check of the database file: 'ok', or what is wrong."""
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise LibraryError(
                f"catalog {self.path} has schema v{current}, newer than this smartalbum knows "
                f"(v{len(MIGRATIONS)})",
                "upgrade smartalbum",
            )
        for version, migrate in enumerate(MIGRATIONS[current:], start=current + 1):
            with self.transaction():
                migrate(self.db)
                self.db.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it does."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- roots ------------------------------------------------------------------------------------

    def add_root(self, path: Path) -> int:
        p = str(path)
        with self.transaction():
            row = self.db.execute("SELECT id FROM roots WHERE path = ?", (p,)).fetchone()
            if row:
                return int(row["id"])
            cur = self.db.execute("INSERT INTO roots(path, added_at) VALUES (?, ?)", (p, utcnow()))
            return int(cur.lastrowid or 0)

    def remove_root(self, path: Path) -> None:
        with self.transaction():
            cur = self.db.execute("DELETE FROM roots WHERE path = ?", (str(path),))
            if cur.rowcount == 0:
                raise NotFoundError(f"{path} is not a registered folder", "see `smartalbum roots`")

    def roots(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            """SELECT r.id, r.path, r.added_at,
                      (SELECT count(*) FROM files f WHERE f.root_id = r.id AND f.status = 'ok') AS files,
                      (SELECT count(*) FROM files f WHERE f.root_id = r.id AND f.status = 'error') AS errors
               FROM roots r ORDER BY r.path"""
        ).fetchall()
        return [dict(r) for r in rows]

    # -- files ------------------------------------------------------------------------------------

    def file_states(self, root_id: int) -> dict[str, tuple[int, int, str, str | None]]:
        """path -> (size, mtime_ns, status, error kind) for every known path under a root."""
        rows = self.db.execute(
            """SELECT f.path, f.size, f.mtime_ns, f.status, e.kind FROM files f
               LEFT JOIN errors e ON e.stage = ? AND e.subject = f.path WHERE f.root_id = ?""",
            (INGEST, root_id),
        )
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def touch_files(self, paths: Sequence[str]) -> None:
        """Record that unchanged paths were seen in this run."""
        now = utcnow()
        with self.transaction():
            self.db.executemany("UPDATE files SET last_seen = ? WHERE path = ?", [(now, p) for p in paths])

    def mark_gone(self, paths: Sequence[str]) -> int:
        now = utcnow()
        with self.transaction():
            self.db.executemany(
                "UPDATE files SET status = 'gone', last_seen = ? WHERE path = ? AND status != 'gone'",
                [(now, p) for p in paths],
            )
            self.db.executemany(
                "DELETE FROM errors WHERE stage = ? AND subject = ?", [(INGEST, p) for p in paths]
            )
        return len(paths)

    def record_outcomes(self, outcomes: Iterable[IngestOutcome]) -> None:
        """Write one batch of ingestion results in a single transaction (photo, file and error rows)."""
        now = utcnow()
        with self.transaction():
            for o in outcomes:
                photo_id = self._upsert_photo(o.photo, now) if o.photo else None
                if o.photo is not None and o.photo.keyframes is not None:
                    self._replace_keyframes(o.photo.hash, o.photo.keyframes)
                self.db.execute(
                    """INSERT INTO files(path, root_id, photo_id, size, mtime_ns, status,
                                         first_seen, last_seen)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(path) DO UPDATE SET root_id = excluded.root_id,
                           photo_id = excluded.photo_id, size = excluded.size, mtime_ns = excluded.mtime_ns,
                           status = excluded.status, last_seen = excluded.last_seen""",
                    (o.path, o.root_id, photo_id, o.size, o.mtime_ns, "ok" if o.ok else "error", now, now),
                )
                if o.ok:
                    self.db.execute("DELETE FROM errors WHERE stage = ? AND subject = ?", (INGEST, o.path))
                else:
                    self.record_error(INGEST, o.path, o.error_kind or "error", o.error_message or "", now)

    def _replace_keyframes(self, video_hash: str, frames: list[tuple[float, str, float]]) -> None:
        # the same content read again chooses the same frames; analyses of frames that stay are kept
        self.db.execute(
            """DELETE FROM keyframes
               WHERE video_hash = ? AND frame_hash NOT IN (SELECT value FROM json_each(?))""",
            (video_hash, json.dumps([f[1] for f in frames])),
        )
        self.db.executemany(
            """INSERT INTO keyframes(video_hash, t, frame_hash, cut) VALUES (?, ?, ?, ?)
               ON CONFLICT(frame_hash) DO UPDATE SET t = excluded.t, cut = excluded.cut""",
            [(video_hash, t, fh, cut) for t, fh, cut in frames],
        )

    def set_motion_paths(self, live: dict[str, str]) -> None:
        """Record each still's live-photo video ({still path: video path}); stills not named lose theirs."""
        with self.transaction():
            self.db.execute(
                """UPDATE files SET motion_path = NULL WHERE motion_path IS NOT NULL
                   AND path NOT IN (SELECT value FROM json_each(?))""",
                (json.dumps(list(live)),),
            )
            self.db.executemany(
                "UPDATE files SET motion_path = ? WHERE path = ?", [(v, k) for k, v in live.items()]
            )

    def clear_errors(self, stage: str) -> None:
        """Forget every recorded failure of one stage (a stage that re-checks everything on each run)."""
        with self.transaction():
            self.db.execute("DELETE FROM errors WHERE stage = ?", (stage,))

    def record_error(self, stage: str, subject: str, kind: str, message: str, now: str | None = None) -> None:
        self.db.execute(
            """INSERT INTO errors(stage, subject, kind, message, at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(stage, subject) DO UPDATE SET kind = excluded.kind, message = excluded.message,
                   attempts = errors.attempts + 1, at = excluded.at""",
            (stage, subject, kind, message[:500], now or utcnow()),
        )

    def _upsert_photo(self, meta: PhotoMeta, now: str) -> int:
        row = self.db.execute("SELECT id, time_source FROM photos WHERE hash = ?", (meta.hash,)).fetchone()
        values = [getattr(meta, f) for f in _PHOTO_FIELDS]
        if row is None:
            cols = ", ".join(["hash", *_PHOTO_FIELDS, "created_at", "updated_at"])
            marks = ", ".join("?" * (len(_PHOTO_FIELDS) + 3))
            cur = self.db.execute(
                f"INSERT INTO photos({cols}) VALUES ({marks})", [meta.hash, *values, now, now]
            )
            return int(cur.lastrowid or 0)
        photo_id = int(row["id"])
        # The same content under another name: keep the better-sourced time (EXIF over file name over mtime).
        if TIME_SOURCES.index(meta.time_source) <= TIME_SOURCES.index(row["time_source"]):
            sets = ", ".join(f"{f} = ?" for f in _PHOTO_FIELDS)
            self.db.execute(
                f"UPDATE photos SET {sets}, updated_at = ? WHERE id = ?", [*values, now, photo_id]
            )
        return photo_id

    # -- reading ----------------------------------------------------------------------------------

    def photo(self, ref: str | int) -> dict[str, Any]:
        """A photo by id, content hash (or unique prefix of 8+ chars) or one of its paths."""
        row = None
        s = str(ref)
        if s.isdigit():
            row = self.db.execute("SELECT * FROM photos WHERE id = ?", (int(s),)).fetchone()
        # an all-digit reference is an id; it never falls through to a hash prefix and finds another photo
        if (
            row is None
            and len(s) >= 8
            and not s.isdigit()
            and all(c in "0123456789abcdef" for c in s.lower())
        ):
            rows = self.db.execute(
                "SELECT * FROM photos WHERE hash >= ? AND hash < ? LIMIT 2", (s.lower(), s.lower() + "g")
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            p = str(Path(s).expanduser().resolve()) if not s.isdigit() else s
            row = self.db.execute(
                "SELECT p.* FROM photos p JOIN files f ON f.photo_id = p.id WHERE f.path = ?", (p,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no photo {ref!r} in the catalog", "give a photo id, hash or indexed path")
        photo = dict(row)
        photo["files"] = [
            dict(r)
            for r in self.db.execute(
                "SELECT path, status, size, mtime_ns, first_seen, last_seen, motion_path FROM files "
                "WHERE photo_id = ? "
                "ORDER BY status != 'ok', path",
                (photo["id"],),
            )
        ]
        return photo

    def file_error(self, path: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM errors WHERE stage = ? AND subject = ?", (INGEST, path)
        ).fetchone()
        return dict(row) if row else None

    def visible_photo_ids(self) -> list[int]:
        """Photos that still have at least one existing path: the ones search may return."""
        return [r[0] for r in self.db.execute(f"SELECT p.id FROM photos p WHERE {self._VISIBLE} ORDER BY 1")]

    def counts(self) -> dict[str, Any]:
        q = self.db.execute
        files = {r[0]: r[1] for r in q("SELECT status, count(*) FROM files GROUP BY status")}
        return {
            "roots": q("SELECT count(*) FROM roots").fetchone()[0],
            "photos": q(f"SELECT count(*) FROM photos p WHERE {self._VISIBLE}").fetchone()[0],
            "videos": q(
                f"SELECT count(*) FROM photos p WHERE p.media = 'video' AND {self._VISIBLE}"
            ).fetchone()[0],
            "photos_gone": q(f"SELECT count(*) FROM photos p WHERE NOT ({self._VISIBLE})").fetchone()[0],
            "files": files.get("ok", 0),
            "files_error": files.get("error", 0),
            "files_gone": files.get("gone", 0),
            "analyses": self.analysis_counts(),
            "people": self.people.counts(),
            "errors_by_kind": {
                f"{r[0]}:{r[1]}": r[2]
                for r in q("SELECT stage, kind, count(*) FROM errors GROUP BY stage, kind ORDER BY 1, 2")
            },
        }

    def errors(self, stage: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT stage, subject, kind, message, attempts, at FROM errors"
        args: tuple[Any, ...] = ()
        if stage:
            sql += " WHERE stage = ?"
            args = (stage,)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY stage, subject", args)]

    # -- runs -------------------------------------------------------------------------------------

    def start_run(self, kind: str) -> int:
        with self.transaction():
            # A run still marked running was killed: say so instead of leaving it dangling.
            self.db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
            cur = self.db.execute(
                "INSERT INTO runs(kind, started_at, status) VALUES (?, ?, 'running')", (kind, utcnow())
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, stats = ? WHERE id = ?",
                (utcnow(), status, json.dumps(stats, ensure_ascii=False), run_id),
            )

    def last_run(self, kind: str | None = None) -> dict[str, Any] | None:
        sql = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "") + " ORDER BY id DESC LIMIT 1"
        row = self.db.execute(sql, (kind,) if kind else ()).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["stats"] = json.loads(d["stats"] or "{}")
        return d

    # -- analyses ---------------------------------------------------------------------------------

    def photos_to_analyse(self, producer: str, version: str, *, redo: bool = False) -> list[str]:
        """Hashes of visible photos with thumbnails that have no usable result from this producer version.

        An 'unparsed' result is tried again, up to UNPARSED_RETRIES times (its error row counts attempts)."""
        # photos, and the keyframes of videos (a video's poster is one of its keyframes: not looked at twice)
        sql = f"""WITH subjects(hash, taken_at, id, t) AS (
                      SELECT p.hash, p.taken_at, p.id, 0 FROM photos p
                      WHERE p.thumbs = 1 AND p.media = 'photo' AND {self._VISIBLE}
                      UNION ALL
                      SELECT k.frame_hash, p.taken_at, p.id, k.t FROM keyframes k
                      JOIN photos p ON p.hash = k.video_hash
                      WHERE p.thumbs = 1 AND p.media = 'video' AND {self._VISIBLE})
                  SELECT s.hash FROM subjects s"""
        args: tuple[Any, ...] = ()
        if not redo:
            sql += """ WHERE NOT EXISTS (SELECT 1 FROM analyses a WHERE a.hash = s.hash
                                       AND a.producer = ? AND a.producer_version = ?
                                       AND (a.status != 'unparsed'
                                            OR (SELECT coalesce(max(e.attempts), 0) FROM errors e
                                                WHERE e.stage = ? AND e.subject = s.hash
                                                  AND e.kind = 'unparsed') >= ?))"""
            args = (producer, version, f"analyse:{producer}", UNPARSED_RETRIES)
        return [r[0] for r in self.db.execute(sql + " ORDER BY s.taken_at DESC, s.id, s.t", args)]

    def videos_to_transcribe(
        self, version: str, *, redo: bool = False, max_s: float = 1e9
    ) -> list[tuple[str, str]]:
        """(hash, one existing path) of visible videos of up to `max_s` seconds with a sound track and no
        transcript of `version`."""
        sql = f"""SELECT p.hash, (SELECT min(f.path) FROM files f WHERE f.photo_id = p.id AND f.status = 'ok')
                  FROM photos p WHERE p.media = 'video' AND json_extract(p.video, '$.audio_codec') IS NOT NULL
                    AND coalesce(p.duration_s, 0) <= {float(max_s)} AND {self._VISIBLE}"""
        if not redo:  # a sound track that failed UNPARSED_RETRIES times waits for --reanalyze
            sql += """ AND NOT EXISTS (SELECT 1 FROM analyses a WHERE a.hash = p.hash
                                       AND a.producer = 'speech' AND a.producer_version = ?)
                       AND NOT EXISTS (SELECT 1 FROM errors e WHERE e.stage = 'analyse:speech'
                                       AND e.subject = p.hash AND e.attempts >= ?)"""
        args = () if redo else (version, UNPARSED_RETRIES)
        rows = self.db.execute(sql + " ORDER BY p.taken_at DESC, p.id", args)
        return [(r[0], r[1]) for r in rows]

    def keyframes(self, video_hashes: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Each video's analysed frames in time order: t, frame_hash, cut."""
        out: dict[str, list[dict[str, Any]]] = {h: [] for h in video_hashes}
        for r in self.db.execute(
            """SELECT video_hash, t, frame_hash, cut FROM keyframes
               WHERE video_hash IN (SELECT value FROM json_each(?)) ORDER BY video_hash, t""",
            (json.dumps(list(video_hashes)),),
        ):
            out[r[0]].append({"t": r[1], "frame_hash": r[2], "cut": r[3]})
        return out

    def record_analyses(self, producer: str, version: str, results: Iterable[Any]) -> None:
        """Store one batch of AnalysisResult-like objects; failures become error rows to retry next run.

        An 'unparsed' answer never replaces a usable one of the same producer version (a re-analysis that
        went wrong keeps the good description); it is stored when nothing better exists, and counted as an
        'unparsed' error so that it is retried a bounded number of times."""
        now = utcnow()
        stage = f"analyse:{producer}"
        with self.transaction():
            for r in results:
                if r.status == "error":
                    self.record_error(stage, r.hash, "model_error", r.error or "no answer", now)
                    continue
                self.db.execute(
                    """INSERT INTO analyses(hash, producer, producer_version, status, data, raw, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(hash, producer, producer_version) DO UPDATE SET status = excluded.status,
                           data = excluded.data, raw = excluded.raw, created_at = excluded.created_at
                       WHERE excluded.status != 'unparsed' OR analyses.status = 'unparsed'""",
                    (r.hash, producer, version, r.status, json.dumps(r.data, ensure_ascii=False), r.raw, now),
                )
                if r.status == "unparsed":
                    self.record_error(stage, r.hash, "unparsed", "the answer could not be parsed", now)
                else:
                    self.db.execute("DELETE FROM errors WHERE stage = ? AND subject = ?", (stage, r.hash))

    # per (photo, producer) the row that counts: usable (ok, partial) before unparsed, then the newest
    _BEST_ANALYSES = """SELECT hash, producer, producer_version, status, data, raw, created_at FROM (
            SELECT *, row_number() OVER (
                PARTITION BY hash, producer
                ORDER BY status = 'unparsed', created_at DESC, producer_version DESC) AS pick
            FROM analyses WHERE hash IN (SELECT value FROM json_each(?)))
        WHERE pick = 1"""

    def analyses(self, photo_hash: str) -> list[dict[str, Any]]:
        """The result of each producer that counts for one photo (see `smartalbum.vision.description`)."""
        rows = self.db.execute(self._BEST_ANALYSES + " ORDER BY producer", (json.dumps([photo_hash]),))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def analysis_data(self, photo_hash: str, producer: str, version: str) -> dict[str, Any] | None:
        """The stored data of exactly this producer version's result for one photo, if there is one."""
        row = self.db.execute(
            "SELECT data FROM analyses WHERE hash = ? AND producer = ? AND producer_version = ?",
            (photo_hash, producer, version),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def analysis_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for producer, status, n in self.db.execute(
            "SELECT producer, status, count(DISTINCT hash) FROM analyses GROUP BY producer, status"
        ):
            out.setdefault(producer, {})[status] = n
        return out

    # -- feedback ---------------------------------------------------------------------------------

    def add_feedback(self, query: str, query_key: str, photo_hash: str, verdict: str) -> int:
        with self.transaction():
            # a new verdict on the same photo for the same query replaces the old one
            self.db.execute(
                "UPDATE feedback SET undone_at = ? WHERE query_key = ? AND hash = ? AND undone_at IS NULL",
                (utcnow(), query_key, photo_hash),
            )
            cur = self.db.execute(
                "INSERT INTO feedback(query, query_key, hash, verdict, created_at) VALUES (?, ?, ?, ?, ?)",
                (query, query_key, photo_hash, verdict, utcnow()),
            )
            return int(cur.lastrowid or 0)

    def undo_feedback(self, feedback_id: int) -> dict[str, Any]:
        with self.transaction():
            cur = self.db.execute(
                "UPDATE feedback SET undone_at = ? WHERE id = ? AND undone_at IS NULL",
                (utcnow(), feedback_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no active feedback {feedback_id}", "see `smartalbum feedback --list`")
        return dict(self.db.execute("SELECT * FROM feedback WHERE id = ?", (feedback_id,)).fetchone())

    def feedback(self, *, include_undone: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
        sql = """SELECT f.*, (SELECT p.id FROM photos p WHERE p.hash = f.hash) AS photo_id FROM feedback f"""
        if not include_undone:
            sql += " WHERE undone_at IS NULL"
        return [dict(r) for r in self.db.execute(sql + " ORDER BY id DESC LIMIT ?", (limit,))]

    def active_feedback(self) -> list[tuple[str, int, str]]:
        """(query_key, photo id, verdict) of every verdict in force on a visible photo."""
        rows = self.db.execute(
            f"""SELECT f.query_key, p.id, f.verdict FROM feedback f JOIN photos p ON p.hash = f.hash
                WHERE f.undone_at IS NULL AND {self._VISIBLE} ORDER BY f.id"""
        )
        return [(r[0], int(r[1]), r[2]) for r in rows]

    # -- search support ---------------------------------------------------------------------------

    def search_rows(self, photo_ids: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        """Visible photos with their paths ("names": relative to their root), and the analysis of each
        producer that counts, for building search documents."""
        sql = f"SELECT p.* FROM photos p WHERE {self._VISIBLE}"
        args: tuple[Any, ...] = ()
        if photo_ids is not None:
            sql += " AND p.id IN (SELECT value FROM json_each(?))"
            args = (json.dumps([int(i) for i in photo_ids]),)
        rows = [dict(r) for r in self.db.execute(sql + " ORDER BY p.id", args)]
        for chunk_start in range(0, len(rows), 500):
            chunk = rows[chunk_start : chunk_start + 500]
            by_hash = {r["hash"]: r for r in chunk}
            for r in chunk:
                r["paths"], r["names"], r["analyses"] = [], [], []
            by_id = {r["id"]: r for r in chunk}
            for pid, path, root in self.db.execute(
                """SELECT f.photo_id, f.path, r.path FROM files f LEFT JOIN roots r ON r.id = f.root_id
                   WHERE f.status = 'ok' AND f.photo_id IN (SELECT value FROM json_each(?))
                   ORDER BY f.path""",
                (json.dumps(list(by_id)),),
            ):
                by_id[pid]["paths"].append(path)
                # the part a person named: folders above the root are the same for every photo in it
                inside = root and path.startswith(root.rstrip("/") + "/")
                by_id[pid]["names"].append(path[len(root.rstrip("/")) + 1 :] if inside else path)
            hashes = json.dumps(list(by_hash))
            for a in self.db.execute(self._BEST_ANALYSES, (hashes,)):
                by_hash[a["hash"]]["analyses"].append({**dict(a), "data": json.loads(a["data"])})
            self._attach_frames([r for r in chunk if r["media"] == "video"])
            yield from chunk

    def _attach_frames(self, videos: list[dict[str, Any]]) -> None:
        """Each video's keyframes ("frames": t, frame_hash, cut, analyses), for search documents."""
        if not videos:
            return
        frames = self.keyframes([v["hash"] for v in videos])
        by_frame: dict[str, dict[str, Any]] = {}
        for v in videos:
            v["frames"] = frames[v["hash"]]
            for f in v["frames"]:
                f["analyses"] = []
                by_frame[f["frame_hash"]] = f
        for a in self.db.execute(self._BEST_ANALYSES, (json.dumps(list(by_frame)),)):
            by_frame[a["hash"]]["analyses"].append({**dict(a), "data": json.loads(a["data"])})

    def state_token(self) -> str:
        """Changes whenever anything search depends on changes: files, photos, analyses (a counter their
        triggers move, so this costs the same for ten photos and a million)."""
        instance, n = self.db.execute("SELECT instance, n FROM change_counter").fetchone()
        return f"{instance}:{n}"

    def filter_token(self) -> str:
        """Changes whenever what a time or place filter reads changes (a photo added or removed, its time,
        place or visibility), but not with analyses: the key of search's in-memory copy of those fields."""
        row = self.db.execute(
            "SELECT c.instance, f.n FROM change_counter c CROSS JOIN filter_counter f"
        ).fetchone()
        return f"{row[0]}:{row[1]}"

    def visible_hashes(self) -> list[tuple[int, str]]:
        """(id, content hash) of every photo that still has an existing file."""
        return [
            (r[0], r[1]) for r in self.db.execute(f"SELECT p.id, p.hash FROM photos p WHERE {self._VISIBLE}")
        ]

    def queue_reread(self, photo_ids: Sequence[int]) -> None:
        """Make the next ingestion read these photos' files again (a size no file has never matches)."""
        with self.transaction():
            self.db.executemany("UPDATE files SET size = -1 WHERE photo_id = ?", [(i,) for i in photo_ids])

    def filter_photo_ids(self, photo_filter: PhotoFilter, *, ordered: bool = True) -> list[int]:
        """Visible photos passing the filter, newest first (ordered=False: in no particular order, which
        spares sorting a filter that allows a million photos)."""
        where, args = self._filter_where(photo_filter)
        order = _NEWEST if ordered else ""
        return [r[0] for r in self.db.execute(f"SELECT p.id FROM photos p WHERE {where} {order}", args)]

    def filter_among(self, photo_filter: PhotoFilter, photo_ids: Iterable[int]) -> set[int]:
        """Those of `photo_ids` that are visible and pass the filter: a filter too broad to read whole (a
        season of a million photos) is checked on a question's candidates instead."""
        where, args = self._filter_where(photo_filter)
        # each id looked up by rowid (CROSS JOIN keeps that order), not the filter's index read through
        rows = self.db.execute(
            f"SELECT p.id FROM json_each(?) AS j CROSS JOIN photos p ON p.id = j.value WHERE {where}",
            [json.dumps([int(i) for i in photo_ids]), *args],
        )
        return {r[0] for r in rows}

    def filter_listing(
        self, photo_filter: PhotoFilter, *, offset: int, limit: int, fold_similar: bool
    ) -> FilterPage:
        """One page of `filter_photo_ids` without reading every match: the count and the page come from
        SQL. With fold_similar, a group of near-duplicates counts once, as its newest match, which carries
        the group's other matches (as search/collapse.py folds a ranked list)."""
        where, args = self._filter_where(photo_filter)
        with self.snapshot():  # the count, the groups and the page of one state of the catalog
            return self._filter_page(where, args, offset, limit, fold_similar)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one state of the catalog (a read transaction), unless one is open already."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def _filter_page(
        self, where: str, args: list[Any], offset: int, limit: int, fold_similar: bool
    ) -> FilterPage:
        total = int(self.db.execute(f"SELECT count(*) FROM photos p WHERE {where}", args).fetchone()[0])
        folded: dict[int, tuple[int, list[int]]] = {}  # group's first match -> (group, the others)
        hidden: set[int] = set()
        if fold_similar:
            first: dict[int, int] = {}
            grouped = self.db.execute("SELECT count(*) FROM similar_hashes WHERE group_id IS NOT NULL")
            # from the smaller side: the grouped photos (often few), or the photos passing the filter
            pairs = (
                "similar_hashes s INDEXED BY similar_hashes_group JOIN photos p ON p.hash = s.hash"
                if int(grouped.fetchone()[0]) < total
                else "photos p JOIN similar_hashes s ON s.hash = p.hash"
            )
            rows = self.db.execute(
                f"SELECT p.id, s.group_id FROM {pairs} WHERE s.group_id IS NOT NULL AND {where} {_NEWEST}",
                args,
            )
            for pid, group in rows:
                if group in first:
                    folded.setdefault(first[group], (group, []))[1].append(pid)
                    hidden.add(pid)
                else:
                    first[group] = pid
        ids: list[int] = []
        if offset + limit > 0 and total > len(hidden):
            # the scan stops after the page: at most `hidden` rows more than offset + limit
            newest = self.db.execute(
                f"SELECT p.id FROM photos p WHERE {where} {_NEWEST} LIMIT ?",
                (*args, offset + limit + len(hidden)),
            ).fetchall()  # read to the end inside the snapshot
            shown = (pid for (pid,) in newest if pid not in hidden)
            ids = list(itertools.islice(shown, offset, offset + limit))
        return FilterPage(total - len(hidden), ids, {pid: folded[pid] for pid in ids if pid in folded})

    def _filter_where(self, f: PhotoFilter) -> tuple[str, list[Any]]:
        sql = self._VISIBLE
        args: list[Any] = []
        if f.date_from:
            sql += " AND p.taken_at >= ?"
            args.append(f.date_from)
        if f.date_before:
            sql += " AND p.taken_at < ?"
            args.append(f.date_before)
        if f.months:  # the expression of the photos_visible_month index
            sql += f" AND CAST(substr(p.taken_at, 6, 2) AS INTEGER) IN ({','.join('?' * len(f.months))})"
            args.extend(int(m) for m in f.months)
        if f.month_days:  # 'MM-DD' in any year
            sql += f" AND substr(p.taken_at, 6, 5) IN ({','.join('?' * len(f.month_days))})"
            args.extend(f.month_days)
        if f.without:
            sql += " AND p.id NOT IN (SELECT value FROM json_each(?))"
            args.append(json.dumps([int(i) for i in f.without]))
        if f.weekend:  # Sunday is 0, Saturday 6; of the day as written (a local time)
            sql += " AND CAST(strftime('%w', substr(p.taken_at, 1, 10)) AS INTEGER) IN (0, 6)"
        if f.place:
            field, name, cc, region = f.place
            if field == "country":
                sql += " AND p.country_code = ?"
                args.append(cc)
            else:
                sql += f" AND p.place_{'city' if field == 'city' else 'region'} = ?"
                args.append(name)
                if cc:
                    sql += " AND p.country_code = ?"
                    args.append(cc)
                if region and field == "city":
                    sql += " AND p.place_region = ?"
                    args.append(region)
        return sql, args

    def newest_blocks(
        self, photo_filter: PhotoFilter | None = None, first: int = 1024, most: int = 16_384
    ) -> Generator[list[int]]:
        """`filter_photo_ids` newest first, read a block at a time (each twice the last, up to `most`) from
        one cursor that walks the date index (a place or month filter is checked on the way, not sorted
        first): a listing by date stops reading when its page is full."""
        where, args = self._filter_where(photo_filter or PhotoFilter())
        cursor = self.db.execute(
            f"SELECT p.id FROM photos p INDEXED BY photos_visible_taken WHERE {where} {_NEWEST}", args
        )
        size = first
        try:
            while block := cursor.fetchmany(size):
                yield [r[0] for r in block]
                size = min(size * 2, most)
        finally:
            cursor.close()

    def newest_first(self, photo_ids: Sequence[int]) -> list[int]:
        """The visible ones of these photos ordered by when they were taken, newest first (undated last)."""
        rows = self.db.execute(
            f"""SELECT p.id FROM photos p WHERE p.id IN (SELECT value FROM json_each(?)) AND {self._VISIBLE}
                {_NEWEST}""",
            (json.dumps([int(i) for i in photo_ids]),),
        )
        return [r[0] for r in rows]

    def photo_summaries(self, photo_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """What a result row shows: time, place, size and one existing path."""
        rows = self.db.execute(
            """SELECT p.id, p.hash, p.taken_at, p.time_source, p.width, p.height, p.media, p.duration_s,
                      p.place_city, p.place_region, p.place_country,
                      p.place_city_zh, p.place_region_zh, p.place_country_zh,
                      (SELECT min(f.path) FROM files f WHERE f.photo_id = p.id AND f.status = 'ok') AS path
               FROM photos p WHERE p.id IN (SELECT value FROM json_each(?))""",
            (json.dumps([int(i) for i in photo_ids]),),
        )
        return {r["id"]: dict(r) for r in rows}

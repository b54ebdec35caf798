"""One library as the CLI and the web app see it: settings, the catalog, search, files and indexing jobs.

Thread-safe for a server: each thread gets its own catalog connection, as SQLite wants.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.errors import InputError, NoSpeechError, NotFoundError, TooLargeError
from smartalbum.ingest.decode import thumb_path
from smartalbum.pipeline.jobs import IndexJobs
from smartalbum.pipeline.progress import CancelToken, Progress
from smartalbum.search.results import SearchFilters, SearchResults

if TYPE_CHECKING:
    from smartalbum.catalog.events import EventStore
    from smartalbum.embed.text import TextEmbedder
    from smartalbum.pipeline.imports import ImportReport
    from smartalbum.pipeline.run import IndexReport
    from smartalbum.search.indexer import SyncStats
    from smartalbum.speech.base import Transcriber, Transcript

MAX_QUERY_CHARS = 1000
# Scanning these would index the operating system, not a photo library.
SYSTEM_FOLDERS = frozenset(
    Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/var")
)
MAX_LIMIT = 500


class Library:
    def __init__(
        self,
        settings: Settings,
        *,
        index_options: dict[str, Any] | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.settings = settings
        self.today = today
        self._local = threading.local()
        self.jobs = IndexJobs(settings, lambda: self._engine().indexes.embedder(), **(index_options or {}))
        self._search_lock = threading.Lock()
        self._search: Any = None

    @property
    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = self._local.catalog = Catalog(self.settings.catalog_path)
        return cat

    def close(self) -> None:
        cat = getattr(self._local, "catalog", None)
        if cat is not None:
            cat.close()
            self._local.catalog = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- photos and files -------------------------------------------------------------------------

    def photo(self, ref: str | int) -> dict[str, Any]:
        """Everything known about one photo, with the latest analysis of each producer."""
        photo = self.catalog.photo(ref)
        photo["analyses"] = self.catalog.analyses(photo["hash"])
        if photo.get("media") == "video":  # its keyframes, each with what was seen there
            photo["frames"] = self.catalog.keyframes([photo["hash"]])[photo["hash"]]
            for frame in photo["frames"]:
                frame["analyses"] = self.catalog.analyses(frame["frame_hash"])
        return photo

    def _inside_roots(self, path: str) -> Path | None:
        """The real path of `path` if it is a file that really lies inside a registered root."""
        roots = [os.path.realpath(r["path"]) for r in self.catalog.roots()]
        real = os.path.realpath(path)  # resolves symlinks that point out of the root
        inside = any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
        return Path(real) if inside and os.path.isfile(real) else None

    def motion(self, photo_id: int) -> tuple[Path, tuple[int, int] | None, str]:
        """A live or motion photo's video: (file, byte window inside it or None for all of it, its type)."""
        photo = self.catalog.photo(int(photo_id))
        for f in photo["files"]:
            if f["status"] == "ok" and f.get("motion_path"):
                path = self._inside_roots(f["motion_path"])
                if path is not None:
                    return path, None, path.suffix.lower().lstrip(".")
        if photo.get("motion_offset"):
            original = self.original(photo_id)
            size = original.stat().st_size
            return original, (size - int(photo["motion_offset"]), size), "mp4"
        raise NotFoundError(f"photo {photo_id} has no motion (not a live or motion photo)")

    def frame_thumbnail(self, photo_id: int, index: int, size: int) -> tuple[Path, str]:
        """The thumbnail of a video's `index`-th keyframe, and that frame's hash."""
        if size not in self.settings.thumb_sizes:
            raise InputError(f"no thumbnail size {size}", f"use one of {list(self.settings.thumb_sizes)}")
        photo = self.catalog.photo(int(photo_id))
        frames = self.catalog.keyframes([photo["hash"]])[photo["hash"]]
        if not 0 <= index < len(frames):
            raise NotFoundError(f"photo {photo_id} has no frame {index}", "see the video's keyframes")
        frame_hash = str(frames[index]["frame_hash"])
        path = thumb_path(self.settings.thumbs_dir, frame_hash, size)
        if not path.is_file():
            raise NotFoundError(
                f"frame {index} of photo {photo_id} has no thumbnail", "run `smartalbum index`"
            )
        return path, frame_hash

    def thumbnail(self, photo_id: int, size: int) -> Path:
        if size not in self.settings.thumb_sizes:
            raise InputError(f"no thumbnail size {size}", f"use one of {list(self.settings.thumb_sizes)}")
        photo = self.catalog.photo(int(photo_id))
        path = thumb_path(self.settings.thumbs_dir, photo["hash"], size)
        if not path.is_file():
            raise NotFoundError(f"photo {photo_id} has no thumbnail", "run `smartalbum index`")
        return path

    def original(self, photo_id: int) -> Path:
        """The photo's file, only if it still exists and really lies inside a registered root."""
        photo = self.catalog.photo(int(photo_id))
        for f in photo["files"]:
            path = self._inside_roots(f["path"]) if f["status"] == "ok" else None
            if path is not None:
                return path
        raise NotFoundError(f"photo {photo_id} has no readable file inside a registered folder")

    # -- folders and status -----------------------------------------------------------------------

    def roots(self) -> list[dict[str, Any]]:
        return self.catalog.roots()

    def add_root(self, folder: str | Path) -> dict[str, Any]:
        try:
            path = Path(folder).expanduser()
            if not path.is_absolute():
                raise InputError(f"{folder} is not an absolute path", "give the full path of a folder")
            path = path.resolve()
            is_dir = path.is_dir()
        except (OSError, ValueError) as exc:  # a path too long, or with a NUL byte
            raise InputError(f"{str(folder)[:200]!r} is not a usable path: {exc}") from None
        if not is_dir:
            raise InputError(f"{folder} is not a folder", "give the path of an existing folder of photos")
        if path == Path(path.anchor) or path in SYSTEM_FOLDERS:
            raise InputError(
                f"{path} is a system folder, not a photo folder", "add the folder that holds photos"
            )
        same = self._check_overlap(Path(folder).expanduser(), path)
        root_id = same["id"] if same else self.catalog.add_root(path)
        return next(r for r in self.catalog.roots() if r["id"] == root_id)

    def _check_overlap(self, given: Path, path: Path) -> dict[str, Any] | None:
        """Refuse a folder inside or around a registered one: each file must belong to exactly one root, or it
        moves from root to root and is read again on every run. Returns the root that is this very folder.

        `path` is resolved; registered roots are resolved too (a root stored under a link counts as its
        target), and folders compare by whole path components: /a/photos2 is not inside /a/photos."""
        shown = str(given) if str(given) == str(path) else f"{given} (really {path})"
        inside: list[str] = []
        for root in self.catalog.roots():
            real = Path(os.path.realpath(root["path"]))
            if real == path:
                return root  # the same folder again (perhaps by another name): nothing to add
            if path.is_relative_to(real):
                raise InputError(
                    f"{shown} is inside the registered folder {root['path']}, which already covers it",
                    f"its photos are indexed with {root['path']}: run `smartalbum index`; "
                    f"to index only {given}, first `smartalbum remove {root['path']}`",
                )
            if real.is_relative_to(path):
                inside.append(root["path"])
        if inside:
            removes = " and ".join(f"`smartalbum remove {r}`" for r in inside)
            raise InputError(
                f"{shown} contains the registered folder{'s' if len(inside) > 1 else ''} {', '.join(inside)}",
                f"remove {'them' if len(inside) > 1 else 'it'} first with {removes} "
                f"(what was learnt about the photos is kept), then add {given} again",
            )
        return None

    def remove_root(self, folder: str | Path) -> str:
        """Stop indexing a registered folder (its photos leave the library; the folder is not touched).

        Returns the path the folder was registered under."""
        path = Path(folder).expanduser()
        resolved = path.resolve()
        registered = {r["path"] for r in self.catalog.roots()}
        # a root stored under a link (by an older version) is found by the name it was given
        target = next((p for p in (str(resolved), str(path.absolute())) if p in registered), str(resolved))
        self.catalog.remove_root(Path(target))
        return target

    def errors(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Every recorded failure (of one stage, or all): what, why, how often."""
        return self.catalog.errors(stage)

    # -- indexing ---------------------------------------------------------------------------------

    def index(
        self,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        retry_errors: bool = False,
        reanalyze: bool = False,
        vlm: bool = True,
        ocr: bool | None = None,
        faces: bool | None = None,
    ) -> IndexReport:
        """One `index` run in this thread: scan every root, read new photos, analyse them, sync search."""
        from smartalbum.pipeline.run import index_library

        if not self.catalog.roots():
            raise InputError("no folders registered", "run `smartalbum add <folder>` first")
        return index_library(
            self.catalog,
            self.settings,
            progress=progress,
            cancel=cancel,
            retry_errors=retry_errors,
            reanalyze=reanalyze,
            vlm=vlm,
            ocr=ocr,
            faces=faces,
            embedder=self._loaded_embedder(),
        )

    # -- people -----------------------------------------------------------------------------------

    def people(self, *, include_hidden: bool = False, min_faces: int = 1) -> list[dict[str, Any]]:
        """Groups of faces (people), the owner first, then the largest."""
        return self.catalog.people.people(include_hidden=include_hidden, min_faces=min_faces)

    def person(self, person_id: int, *, faces: int = 0) -> dict[str, Any]:
        """One person; with `faces`, up to that many of their faces (id, photo, box)."""
        person = self.catalog.people.person(person_id)
        if faces:
            person["face_list"] = self.catalog.people.person_faces(person_id, limit=faces)
        return person

    def name_person(self, person_id: int, names: list[str], *, add: bool = False) -> dict[str, Any]:
        """Name a person (several aliases in any language; the first is shown)."""
        return self.catalog.people.set_names(person_id, names, add=add)

    def set_me(self, person_id: int | None) -> dict[str, Any] | None:
        """Mark which person is the library's owner (我 / me / my in questions)."""
        return self.catalog.people.set_me(person_id)

    def set_birthday(self, person_id: int, birthday: str | None) -> dict[str, Any]:
        """A person's birthday (YYYY-MM-DD or MM-DD), so "妈妈的生日" finds the photos of that day."""
        return self.catalog.people.set_birthday(person_id, birthday)

    def hide_person(self, person_id: int, hidden: bool = True) -> dict[str, Any]:
        return self.catalog.people.set_hidden(person_id, hidden)

    def merge_people(self, sources: list[int], target: int) -> dict[str, Any]:
        return self.catalog.people.merge(sources, target)

    def move_faces(self, face_ids: list[int], person_id: int | None) -> dict[str, Any]:
        """Give faces to a person, or to a new person of their own (split) when `person_id` is None."""
        return self.catalog.people.move_faces(face_ids, person_id)

    def forget_person(self, person_id: int) -> int:
        """Delete a person with their faces and vectors; returns the number of faces deleted."""
        return self.catalog.people.forget(person_id)

    def photo_faces(self, photo_ref: str | int) -> list[dict[str, Any]]:
        return self.catalog.people.photo_faces(self.catalog.photo(photo_ref)["hash"])

    def face(self, face_id: int) -> dict[str, Any]:
        return self.catalog.people.face(face_id)

    # -- events and trips ---------------------------------------------------------------------------

    def _events(self) -> EventStore:
        """The events store, regrouped first if a photo, its time or its place changed (a no-op otherwise)."""
        from smartalbum.events.sync import sync_events

        sync_events(self.catalog)
        return self.catalog.events

    def trips(self) -> list[dict[str, Any]]:
        """Trips (nights away from home), newest first."""
        return self._events().trips()

    def events(self, *, trip_id: int | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        """Events (a gap in time or a jump in place starts one), newest first; those of one trip."""
        store = self._events()
        if trip_id is not None:
            store.trip(trip_id)
        return store.events(trip_id=trip_id, limit=limit)

    def event_photos(self, *, trip_id: int | None = None, event_id: int | None = None) -> list[int]:
        """Photo ids of a trip or an event, in time order."""
        store = self._events()
        if trip_id is not None:
            store.trip(trip_id)
        elif event_id is not None:
            store.event(event_id)
        return store.photo_ids(trip_id=trip_id, event_id=event_id)

    def event_of_photo(self, photo_ref: str | int) -> dict[str, Any] | None:
        return self._events().event_of_photo(self.catalog.photo(photo_ref)["id"])

    # -- near-duplicates ------------------------------------------------------------------------------

    def duplicates(self, *, min_size: int = 2, limit: int | None = None) -> list[dict[str, Any]]:
        """Groups of near-identical photos (bursts, edited copies, screenshots of the same thing) made by the
        index stage, largest first: id, size, and each photo with one existing path. Nothing is deleted."""
        from smartalbum.catalog.similar import SimilarStore

        if min_size < 2:
            raise InputError("min_size must be 2 or more", "a group has at least two photos")
        return SimilarStore(self.catalog).groups(min_size=min_size, limit=limit)

    def duplicate_group(self, group_id: int) -> dict[str, Any]:
        """One group of near-identical photos, oldest first."""
        from smartalbum.catalog.similar import SimilarStore

        return SimilarStore(self.catalog).group(group_id)

    def import_analyses(self, file: str | Path) -> ImportReport:
        """Load analyses made elsewhere (JSON Lines), then bring the search indexes in step."""
        from smartalbum.pipeline.imports import import_analyses

        report = import_analyses(self.catalog, Path(file))
        self.sync_search_indexes()
        return report

    def sync_search_indexes(self, progress: Progress | None = None, *, force: bool = False) -> SyncStats:
        """Bring the derived search indexes in step with the catalog (`force`: rebuild them from scratch).

        The one place outside an index run where the indexes are synced; it reuses the search engine's
        embedding model when this Library has already loaded one."""
        from smartalbum.search.indexer import sync_search_indexes

        embedder = self._loaded_embedder()
        stats = sync_search_indexes(self.catalog, self.settings, progress, force=force, embedder=embedder)
        if embedder is not None and stats.embed_error is None:
            stats.embed_error = self._search.indexes.embed_error  # a fallback model is worth a note
        return stats

    def _loaded_embedder(self) -> TextEmbedder | None:
        """The search engine's embedding model (loaded into it if need be) when this Library already has a
        search engine, so that a model is not loaded twice in one process; never starts an engine."""
        with self._search_lock:
            engine = self._search
        if engine is None:
            return None
        embedder: TextEmbedder | None = engine.indexes.embedder()
        return embedder

    # -- checks -----------------------------------------------------------------------------------

    def doctor(self, *, rebuild: bool = False, fix: bool = False) -> dict[str, Any]:
        """Check the catalog, the thumbnails and the search indexes; optionally rebuild or repair them."""
        cat = self.catalog
        photos = cat.visible_hashes()
        missing = [
            pid
            for pid, h in photos
            if not all(
                thumb_path(self.settings.thumbs_dir, h, s).is_file() for s in self.settings.thumb_sizes
            )
        ]
        report: dict[str, Any] = {
            "catalog": cat.integrity_check(),
            "schema_version": cat.schema_version,
            "photos": len(photos),
            "missing_thumbnails": len(missing),
        }
        if fix and missing:
            cat.queue_reread(missing)
            report["queued_for_reread"] = len(missing)
        sync = self.sync_search_indexes(force=rebuild)
        report["search_index"] = {
            "rebuilt": rebuild or bool(sync.rebuilt),
            "documents": len(photos),
            "embedder": sync.embedder,
            "notes": sync.rebuilt + ([sync.embed_error] if sync.embed_error else []),
        }
        return report

    def stats(self) -> dict[str, Any]:
        return {**self.catalog.counts(), "last_run": self.catalog.last_run()}

    def queue_status(self) -> dict[str, Any] | None:
        """The analysis queue at settings.queue_url (None without one): workers alive, tasks waiting, the
        progress a running `index --queue` publishes, and the last queued run's numbers per worker."""
        if not self.settings.queue_url:
            return None
        from smartalbum.queue.monitor import queue_status
        from smartalbum.vision.backends import vlm_analyser

        analyser = vlm_analyser(self.settings)
        out = queue_status(self.settings, analyser.name, analyser.version)
        last = self.catalog.last_run(f"analyse:{analyser.name}")
        out["last_run"] = (
            {"status": last["status"], "started_at": last["started_at"], **last["stats"]["queue"]}
            if last and "queue" in last["stats"]
            else None
        )
        return out

    # -- search -----------------------------------------------------------------------------------

    def _engine(self) -> Any:
        with self._search_lock:
            if self._search is None:
                from smartalbum.search.engine import SearchEngine

                self._search = SearchEngine(self.settings, today=self.today)
            return self._search

    def search(
        self, query: str, filters: SearchFilters | None = None, limit: int = 30, offset: int = 0
    ) -> SearchResults:
        if not 1 <= limit <= MAX_LIMIT:
            raise InputError(f"limit must be between 1 and {MAX_LIMIT}")
        if offset < 0 or offset > 100_000:
            raise InputError("offset must be between 0 and 100000")
        result: SearchResults = self._engine().search(
            self.catalog, query, filters or SearchFilters(), limit, offset
        )
        return result

    def prepare_search(self) -> None:
        """Load what a first search would wait for: the models, the indexes, the photos' time and place."""
        self.search("warm up")
        self._engine().prepare_filters(self.catalog)

    def similar(self, photo_ref: str | int, limit: int = 30) -> SearchResults:
        if not 1 <= limit <= MAX_LIMIT:
            raise InputError(f"limit must be between 1 and {MAX_LIMIT}")
        result: SearchResults = self._engine().similar(self.catalog, photo_ref, limit)
        return result

    # -- voice questions --------------------------------------------------------------------------

    def transcriber(self) -> Transcriber:
        """The speech model the settings name: one per process, loaded on first use (ModelError then)."""
        from smartalbum.speech.registry import transcriber

        return transcriber(self.settings)

    def hear_question(self, audio: bytes | str | Path, *, language: str | None = None) -> Transcript:
        """A spoken question as text: a recording (its bytes, or a file) of at most voice_max_bytes and
        voice_max_seconds, transcribed in `language` (default: the speech_language setting; None: detected).

        Raises InputError for what is not audio, TooLargeError over a cap, NoSpeechError when nothing was
        said, ModelError when the speech model cannot load. Its text may be over MAX_QUERY_CHARS."""
        from smartalbum.speech.audio import decode_audio

        cap = self.settings.voice_max_bytes
        if isinstance(audio, bytes):
            size = len(audio)
        else:
            size = Path(audio).stat().st_size if Path(audio).is_file() else 0  # decode_audio says why not
        if size > cap:
            raise TooLargeError(f"the recording is over {cap / 2**20:.3g} MB", "ask a shorter question")
        samples = decode_audio(audio, max_seconds=self.settings.voice_max_seconds)
        transcript = self.transcriber().transcribe(samples, language or self.settings.speech_language)
        if not transcript.text:
            raise NoSpeechError(
                "no speech was heard in the recording", "speak closer to the microphone, or type the question"
            )
        return transcript

    # -- feedback ---------------------------------------------------------------------------------

    def add_feedback(self, query: str, photo_ref: str | int, verdict: str) -> dict[str, Any]:
        """Record that a photo is right ('good') or wrong ('bad') for a query."""
        from smartalbum.search.feedback import query_key

        if verdict not in ("good", "bad"):
            raise InputError(f"verdict must be 'good' or 'bad', not {verdict!r}")
        query = query.strip()
        if not query or len(query) > MAX_QUERY_CHARS:
            raise InputError(f"the query must have 1 to {MAX_QUERY_CHARS} characters")
        photo = self.catalog.photo(photo_ref)
        fid = self.catalog.add_feedback(query, query_key(query), photo["hash"], verdict)
        return {"id": fid, "query": query, "photo_id": photo["id"], "verdict": verdict}

    def list_feedback(self, include_undone: bool = False) -> list[dict[str, Any]]:
        return self.catalog.feedback(include_undone=include_undone)

    def undo_feedback(self, feedback_id: int) -> dict[str, Any]:
        return self.catalog.undo_feedback(feedback_id)

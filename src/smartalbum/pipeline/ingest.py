"""The ingestion stage: scan every root, read new and changed files on a process pool, write the catalog in
batched transactions. A crash loses at most the batch in flight; the next run picks up the rest."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.catalog.records import IngestOutcome
from smartalbum.config import Settings
from smartalbum.ingest.decode import IngestTask, ingest_file, register_decoders
from smartalbum.ingest.scan import VIDEO_EXTENSIONS, ScanEntry, ScanReport, scan_root
from smartalbum.media.video import KeyframePolicy, short_clip
from smartalbum.pipeline.progress import CancelToken, Progress

log = logging.getLogger(__name__)
SCAN = "scan"
# Failures whose cause can go away without the file changing (permissions fixed, a disk back online).
TRANSIENT_ERRORS = frozenset({"unreadable", "vanished", "crash"})


@dataclass
class IngestStats:
    roots: int = 0
    seen: int = 0
    new: int = 0
    changed: int = 0
    retried: int = 0
    unchanged: int = 0
    ok: int = 0
    errors: int = 0
    gone: int = 0
    skipped_other: int = 0
    skipped_hidden: int = 0
    skipped_excluded: int = 0
    unreadable_dirs: int = 0
    symlink_loops: int = 0
    live_photos: int = 0  # stills with their video beside them (one item each)
    cancelled: bool = False
    elapsed_s: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group; only the parent decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # libtiff and friends print to fd 2 from C; failures reach the parent as outcomes, not as noise.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    register_decoders()


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: safe when the server runs indexing in a thread (fork would copy its locks).
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method), initializer=_worker_init
    )


def worker_count(settings: Settings) -> int:
    return settings.workers or max(1, os.cpu_count() or 1)


def ingest_library(
    catalog: Catalog,
    settings: Settings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    retry_errors: bool = False,
) -> IngestStats:
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    stats = IngestStats()
    started = time.monotonic()
    run_id = catalog.start_run("ingest")
    status = "failed"
    try:
        todo, missing, live = _scan(catalog, settings, stats, progress, retry_errors)
        _process(catalog, settings, todo, stats, progress, cancel)
        if stats.cancelled:
            status = "cancelled"
        else:
            stats.gone = catalog.mark_gone(missing)
            catalog.set_motion_paths(live)
            status = "done"
        return stats
    except KeyboardInterrupt:
        stats.cancelled, status = True, "cancelled"
        raise
    finally:
        stats.elapsed_s = round(time.monotonic() - started, 3)
        catalog.finish_run(run_id, status, stats.as_dict())


def _scan(
    catalog: Catalog, settings: Settings, stats: IngestStats, progress: Progress, retry_errors: bool
) -> tuple[list[IngestTask], list[str], dict[str, str]]:
    """Compare the folders with the catalog: what to read, which known paths are gone, and which stills
    have a live photo's video beside them."""
    todo: list[IngestTask] = []
    missing: list[str] = []
    live: dict[str, str] = {}
    progress.begin(SCAN, 0)
    catalog.clear_errors(SCAN)
    video_policy = (
        KeyframePolicy(
            settings.video_keyframe_min_gap_s, settings.video_keyframe_max_gap_s, settings.video_keyframes_max
        )
        if settings.index_videos
        else None
    )
    for root in catalog.roots():
        stats.roots += 1
        known = catalog.file_states(root["id"])
        report = ScanReport()
        seen: set[str] = set()
        unchanged: list[str] = []
        walk = scan_root(
            Path(root["path"]),
            report,
            include_hidden=settings.include_hidden,
            exclude=settings.exclude,
            videos=settings.index_videos,
        )
        entries = list(walk)
        motions = _live_pairs(entries) if settings.index_videos else {}
        live.update(motions)
        paired = set(motions.values())
        for entry in entries:
            seen.add(entry.path)
            if entry.path in paired:  # a live photo's video: part of its still, not an item of its own
                if entry.path in known and known[entry.path][2] != "gone":
                    missing.append(entry.path)  # indexed on its own by an older version
                continue
            state = known.get(entry.path)
            if state is None:
                stats.new += 1
            elif state[0] == entry.size and state[1] == entry.mtime_ns and _settled(state, retry_errors):
                unchanged.append(entry.path)  # cheap check first: same size and mtime means same file
                continue
            elif state[2] == "error":
                stats.retried += 1
            else:
                stats.changed += 1
            todo.append(
                IngestTask(
                    entry.path,
                    root["id"],
                    entry.size,
                    entry.mtime_ns,
                    str(settings.thumbs_dir),
                    settings.thumb_sizes,
                    settings.max_image_pixels,
                    video_policy,
                )
            )
            if len(seen) % 500 == 0:
                progress.advance(500)
        progress.advance(len(seen) % 500)
        stats.seen += len(seen)
        stats.unchanged += len(unchanged)
        catalog.touch_files(unchanged)
        missing += [p for p, st in known.items() if st[2] != "gone" and p not in seen and report.covers(p)]
        stats.skipped_other += report.skipped_other
        stats.skipped_hidden += report.skipped_hidden
        stats.skipped_excluded += report.skipped_excluded
        stats.unreadable_dirs += len(report.unreadable_dirs)
        stats.symlink_loops += len(report.symlink_loops)
        _record_scan_problems(catalog, root["path"], report)
    progress.finish()
    stats.live_photos = len(live)
    return todo, missing, live


def _live_pairs(entries: list[ScanEntry]) -> dict[str, str]:
    """Live photos: a still and a short video (up to 6 s) of the same name in the same folder
    (IMG_1234.HEIC + IMG_1234.MOV, as phones export them) -> {still path: video path}. A longer video of
    the same name (trip.jpg, trip.mp4) is a video of its own."""
    stills: dict[tuple[str, str], str] = {}
    videos: dict[tuple[str, str], str] = {}
    for e in entries:
        folder, name = os.path.split(e.path)
        stem, ext = os.path.splitext(name)
        (videos if ext.lower() in VIDEO_EXTENSIONS else stills)[(folder, stem.lower())] = e.path
    return {stills[key]: path for key, path in videos.items() if key in stills and short_clip(path)}


def _settled(state: tuple[int, int, str, str | None], retry_errors: bool) -> bool:
    """An unchanged file needs no second look, unless its last failure may have gone away by itself."""
    status, kind = state[2], state[3]
    return status == "ok" or (status == "error" and not retry_errors and kind not in TRANSIENT_ERRORS)


def _record_scan_problems(catalog: Catalog, root: str, report: ScanReport) -> None:
    with catalog.transaction():
        for path, why in report.unreadable_dirs:
            kind = "root_missing" if path == root else "unreadable_dir"
            catalog.record_error(SCAN, path, kind, f"cannot read folder: {why}")
        for path, why in report.unreadable_files:
            catalog.record_error(SCAN, path, "unreadable", f"cannot stat file: {why}")
        for path in report.symlink_loops:
            catalog.record_error(SCAN, path, "symlink_loop", "symlink points back into a folder already seen")


def _process(
    catalog: Catalog,
    settings: Settings,
    todo: list[IngestTask],
    stats: IngestStats,
    progress: Progress,
    cancel: CancelToken,
) -> None:
    progress.begin("ingest", len(todo))
    if not todo:
        return
    workers = min(worker_count(settings), len(todo))
    batch: list[IngestOutcome] = []
    last_flush = time.monotonic()
    places_loading: threading.Thread | None = None

    def collect(outcome: IngestOutcome) -> None:
        nonlocal last_flush, places_loading
        batch.append(outcome)
        if places_loading is None and outcome.photo and outcome.photo.lat is not None:
            # the place index takes seconds to build: start now, not in the first flush, where the workers
            # would run out of queued files while this thread waits
            places_loading = threading.Thread(target=_preload_places, name="place-index", daemon=True)
            places_loading.start()
        if outcome.ok:
            stats.ok += 1
        else:
            stats.errors += 1
            kind = outcome.error_kind or "error"
            stats.error_kinds[kind] = stats.error_kinds.get(kind, 0) + 1
        progress.advance(1, errors=0 if outcome.ok else 1)
        due = len(batch) >= settings.batch_size or time.monotonic() - last_flush > 2.0
        # hold a few batches rather than wait for the place index with nothing decoding meanwhile
        loading = places_loading is not None and places_loading.is_alive()
        if due and not (loading and len(batch) < 4 * settings.batch_size):
            _flush(catalog, batch)
            last_flush = time.monotonic()

    queue = iter(todo)
    pool = _pool(workers)
    inflight: dict[Future[IngestOutcome], IngestTask] = {}
    try:
        while True:
            while len(inflight) < workers * 4 and not cancel.cancelled:
                task = next(queue, None)
                if task is None:
                    break
                inflight[pool.submit(ingest_file, task)] = task
            if not inflight:
                break
            done, _ = wait(inflight, timeout=0.5, return_when=FIRST_COMPLETED)
            broken: list[IngestTask] = []
            for fut in done:
                task = inflight.pop(fut)
                try:
                    collect(fut.result())
                except BrokenProcessPool:
                    broken.append(task)
            if broken:
                # A decoder crashed the worker: everything in flight is suspect. Retry each alone.
                broken += list(inflight.values())
                inflight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for outcome in _isolate(broken):
                    collect(outcome)
                pool = _pool(workers)
            if cancel.cancelled and not inflight:
                stats.cancelled = True
                break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _flush(catalog, batch)


def _isolate(tasks: Iterable[IngestTask]) -> list[IngestOutcome]:
    outcomes = []
    for task in tasks:
        with _pool(1) as solo:
            try:
                outcomes.append(solo.submit(ingest_file, task).result())
            except BrokenProcessPool:
                outcomes.append(
                    IngestOutcome(
                        task.path,
                        task.root_id,
                        task.size,
                        task.mtime_ns,
                        error_kind="crash",
                        error_message="the image decoder crashed on this file",
                    )
                )
    return outcomes


def _preload_places() -> None:
    from smartalbum.ingest.places import preload  # imported when needed: pycountry and scipy take ~1 s

    preload()


def _flush(catalog: Catalog, batch: list[IngestOutcome]) -> None:
    if not batch:
        return
    _add_places(batch)
    catalog.record_outcomes(batch)
    batch.clear()


def _add_places(batch: list[IngestOutcome]) -> None:
    photos = [o.photo for o in batch if o.photo and o.photo.lat is not None and o.photo.lon is not None]
    if not photos:
        return
    try:
        from smartalbum.ingest.places import reverse_geocode

        places = reverse_geocode([(p.lat, p.lon) for p in photos if p.lat is not None and p.lon is not None])
    except Exception as exc:  # place names are a nicety; never lose the photo over them
        log.warning("reverse geocoding failed: %s", exc)
        return
    for photo, place in zip(photos, places, strict=True):
        if place is None:
            continue
        photo.place_city, photo.place_region, photo.place_country = place.city, place.region, place.country
        photo.country_code = place.country_code
        photo.place_city_zh, photo.place_region_zh = place.city_zh, place.region_zh
        photo.place_country_zh = place.country_zh

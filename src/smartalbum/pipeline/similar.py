"""The near-duplicate stage: fingerprint every visible photo not fingerprinted yet, then group the new ones.

Reads the small upright thumbnail made at ingestion. Fingerprints are written per batch, so a killed run
keeps what it did and the next one goes on from there; a photo whose thumbnail cannot be read is an error row
and the run goes on. Grouping compares only the photos no grouping has seen with all the others, so an index
run after a few new photos costs milliseconds; when the thresholds change, everything is regrouped once.
Nothing is deleted: groups only say which photos are near-identical (`smartalbum duplicates`; search shows
one of each).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.catalog.similar import SimilarStore
from smartalbum.config import Settings
from smartalbum.ingest.decode import thumb_path
from smartalbum.media.similar import (
    GROUPING,
    VERSION,
    Fingerprint,
    Prints,
    find_links,
    fingerprint,
    group_ids,
    moment,
)
from smartalbum.pipeline.progress import CancelToken, Progress

log = logging.getLogger(__name__)
BATCH = 64
GROUPING_TOKEN = f"{VERSION}|{GROUPING}"


@dataclass
class SimilarStats:
    todo: int = 0
    fingerprinted: int = 0
    errors: int = 0
    compared: int = 0  # photos grouping compared with the rest this run
    links: int = 0
    groups_changed: int = 0  # photos whose group changed
    regrouped: bool = False  # the thresholds changed: every photo was grouped again
    cancelled: bool = False
    elapsed_s: float = 0.0
    grouping_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one(settings: Settings, photo_hash: str) -> tuple[str, Fingerprint | None, str | None]:
    try:
        with Image.open(thumb_path(settings.thumbs_dir, photo_hash, min(settings.thumb_sizes))) as img:
            return photo_hash, fingerprint(img), None
    except OSError as exc:
        return photo_hash, None, f"thumbnail unreadable ({exc}); re-run ingestion"
    except Exception as exc:  # one bad photo is an error row; the run goes on
        log.warning("fingerprint of %s failed: %s", photo_hash, exc)
        return photo_hash, None, f"{type(exc).__name__}: {exc}"


def find_similar(
    catalog: Catalog,
    settings: Settings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SimilarStats:
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    store = SimilarStore(catalog)
    stats = SimilarStats()
    started = time.monotonic()
    todo = store.hashes_to_fingerprint(VERSION)
    stats.todo = len(todo)
    progress.begin("similar", len(todo))
    run_id = catalog.start_run("similar") if todo else None
    status = "failed"
    try:
        for start in range(0, len(todo), BATCH):
            results = [_one(settings, h) for h in todo[start : start + BATCH]]
            store.record(VERSION, results)
            errors = sum(fp is None for _, fp, _ in results)
            stats.errors += errors
            stats.fingerprinted += len(results) - errors
            progress.advance(len(results), errors=errors)
            if cancel.cancelled:
                stats.cancelled = True
                break
        if not stats.cancelled:
            regroup(catalog, stats, progress)
        status = "cancelled" if stats.cancelled else "done"
    finally:
        stats.elapsed_s = round(time.monotonic() - started, 3)
        if run_id is not None:
            catalog.finish_run(run_id, status, stats.as_dict())
    return stats


def regroup(
    catalog: Catalog, stats: SimilarStats | None = None, progress: Progress | None = None
) -> SimilarStats:
    """Group the fingerprints no grouping has compared yet with all the others (all of them when the
    thresholds changed since the groups were built)."""
    stats = stats or SimilarStats()
    store = SimilarStore(catalog)
    started = time.monotonic()
    if store.grouping() != GROUPING_TOKEN:
        store.reset_groups(GROUPING_TOKEN)
        stats.regrouped = True
    rows = store.rows(VERSION)
    new = np.array([not r.grouped for r in rows], dtype=bool)
    if progress:
        progress.begin("similar groups", int(new.sum()))
    if not new.any():
        return stats
    prints = Prints.build(
        [r.photo_id for r in rows],
        [Fingerprint.from_stored(r.phash, r.dhash, r.extra, r.flat) for r in rows],
        [moment(r.taken_at, r.time_source) for r in rows],
    )
    links = find_links(prints, new)
    before = [r.group_id for r in rows]
    after = group_ids([r.photo_id for r in rows], before, links)
    changed = {r.hash: after[r.photo_id] for r in rows if after[r.photo_id] != r.group_id}
    store.set_groups(changed, [r.hash for r, is_new in zip(rows, new, strict=True) if is_new], GROUPING_TOKEN)
    stats.compared += int(new.sum())
    stats.links += len(links)
    stats.groups_changed += len(changed)
    stats.grouping_s = round(time.monotonic() - started, 3)
    if progress:
        progress.advance(int(new.sum()))
    return stats

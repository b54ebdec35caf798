"""The face stage: find the faces in every visible photo not scanned yet, then group the new ones.

Reads the large upright thumbnail made at ingestion (EXIF orientation applied, 8-bit RGB whatever the
original was: grayscale, 16-bit, CMYK). Results are written per batch, so a killed run keeps what it did and
the next one goes on from there; a photo that fails is an error row and the run goes on. Photos already
scanned by this model version are never scanned again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.faces.base import FaceModel, FaceScan
from smartalbum.faces.cluster import group_faces
from smartalbum.ingest.decode import thumb_path
from smartalbum.pipeline.progress import CancelToken, Progress

log = logging.getLogger(__name__)
BATCH = 16


@dataclass
class FaceStats:
    version: str
    todo: int = 0
    scanned: int = 0
    faces: int = 0
    errors: int = 0
    joined: int = 0  # new faces that joined an existing person
    new_people: int = 0
    purged: int = 0  # faces deleted because face recognition is off
    cancelled: bool = False
    model_error: str | None = None
    model_hint: str | None = None
    elapsed_s: float = 0.0
    photos_per_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scan_one(
    model: FaceModel, settings: Settings, photo_hash: str
) -> tuple[str, FaceScan | None, str | None]:
    try:
        with Image.open(thumb_path(settings.thumbs_dir, photo_hash, max(settings.thumb_sizes))) as img:
            image = img.convert("RGB")
    except OSError as exc:
        return photo_hash, None, f"thumbnail unreadable ({exc}); re-run ingestion"
    try:
        return photo_hash, model.scan(image), None
    except ModelError:
        raise
    except Exception as exc:  # one bad photo is an error row; the run goes on
        log.warning("face scan of %s failed: %s", photo_hash, exc)
        return photo_hash, None, f"{type(exc).__name__}: {exc}"


def find_faces(
    catalog: Catalog,
    settings: Settings,
    model: FaceModel,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> FaceStats:
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    store = catalog.people
    stats = FaceStats(model.version)
    todo = store.hashes_to_scan(model.version)
    stats.todo = len(todo)
    progress.begin("faces", len(todo))
    started = time.monotonic()
    run_id = catalog.start_run("faces") if todo else None
    status = "failed"
    try:
        for start in range(0, len(todo), BATCH):
            results = [_scan_one(model, settings, h) for h in todo[start : start + BATCH]]
            store.record_scans(model.version, results)
            errors = sum(scan is None for _, scan, _ in results)
            stats.errors += errors
            stats.scanned += len(results) - errors
            stats.faces += sum(len(scan.faces) for _, scan, _ in results if scan)
            progress.advance(len(results), errors=errors)
            if cancel.cancelled:
                stats.cancelled = True
                break
        if not stats.cancelled:
            grouped = group_new_faces(catalog, model, progress=progress)
            stats.joined, stats.new_people = grouped
        status = "cancelled" if stats.cancelled else "done"
    except ModelError as exc:
        stats.model_error, stats.model_hint = exc.message, exc.hint
        status = "model_error"
    finally:
        stats.elapsed_s = round(time.monotonic() - started, 3)
        done = stats.scanned + stats.errors
        stats.photos_per_s = round(done / stats.elapsed_s, 3) if stats.elapsed_s else 0.0
        if run_id is not None:
            catalog.finish_run(run_id, status, stats.as_dict())
    return stats


def group_new_faces(
    catalog: Catalog, model: FaceModel, *, progress: Progress | None = None
) -> tuple[int, int]:
    """Group every face that has no person yet. Returns (faces that joined a person, new people)."""
    store = catalog.people
    new = store.face_vectors(model.version, assigned=False)
    if progress:
        progress.begin("people", len(new.ids))
    if len(new.ids) == 0:
        return 0, 0
    grouping = group_faces(store.face_vectors(model.version, assigned=True), new)
    created = store.assign_groups(grouping.joins, grouping.groups)
    if progress:
        progress.advance(len(new.ids))
    return sum(len(v) for v in grouping.joins.values()), len(created)

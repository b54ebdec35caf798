"""One `index` run: ingestion, then each analysis stage. The CLI and the web app both call this."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.embed.text import TextEmbedder
from smartalbum.events.sync import EventStats, sync_events
from smartalbum.faces.base import face_model
from smartalbum.pipeline.analyse import AnalyseStats, analyse_library
from smartalbum.pipeline.faces import FaceStats, find_faces
from smartalbum.pipeline.ingest import IngestStats, ingest_library
from smartalbum.pipeline.progress import CancelToken, Progress
from smartalbum.pipeline.similar import SimilarStats, find_similar
from smartalbum.pipeline.speech import transcribe_videos
from smartalbum.search.indexer import SyncStats, sync_search_indexes
from smartalbum.speech.registry import transcriber
from smartalbum.vision.backends import ocr_analyser, vlm_analyser


@dataclass
class IndexReport:
    ingest: IngestStats
    faces: FaceStats | None = None
    events: EventStats | None = None
    similar: SimilarStats | None = None
    analyses: list[AnalyseStats] = field(default_factory=list)
    search_index: SyncStats | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.ingest.as_dict(),
            "faces": self.faces.as_dict() if self.faces else None,
            "events": self.events.as_dict() if self.events else None,
            "similar": self.similar.as_dict() if self.similar else None,
            "analysis": {a.producer: a.as_dict() for a in self.analyses},
            "search_index": asdict(self.search_index) if self.search_index else None,
        }


def index_library(
    catalog: Catalog,
    settings: Settings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    retry_errors: bool = False,
    reanalyze: bool = False,
    vlm: bool = True,
    ocr: bool | None = None,
    faces: bool | None = None,
    speech: bool | None = None,
    embedder: TextEmbedder | None = None,
) -> IndexReport:
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    report = IndexReport(
        ingest_library(catalog, settings, progress=progress, cancel=cancel, retry_errors=retry_errors)
    )
    if settings.face_recognition if faces is None else faces:
        if not cancel.cancelled:  # first: a fast stage, so people can be named while the VLM works
            report.faces = find_faces(
                catalog, settings, face_model(settings), progress=progress, cancel=cancel
            )
    elif faces is None:  # turned off in settings: what was stored goes (privacy), not when one run skips it
        purged = catalog.people.purge()
        if purged:
            report.faces = FaceStats("off", purged=purged)
    if not cancel.cancelled:  # events and trips need only times and places: regrouped when those change
        report.events = sync_events(catalog)
    if not cancel.cancelled:  # near-duplicate groups from the thumbnails: fast, no model
        report.similar = find_similar(catalog, settings, progress=progress, cancel=cancel)
    stages = []
    if vlm:
        analyser = vlm_analyser(settings)
        # the engine's own batch (vlm_batch_size, or the engine's default when it is unset)
        stages.append((analyser, getattr(analyser, "batch_size", settings.vlm_batch_size)))
    # with a queue the vision stage runs on `smartalbum worker`s; this process stays the one catalog writer
    queued = stages[0][0] if stages and settings.queue_url else None
    if settings.ocr_enabled if ocr is None else ocr:
        stages.append((ocr_analyser(settings), 8))
    for analyser, batch_size in stages:
        if cancel.cancelled:
            break
        if analyser is queued:
            from smartalbum.queue.coordinator import analyse_via_queue

            report.analyses.append(
                analyse_via_queue(
                    catalog, settings, analyser, redo=reanalyze, progress=progress, cancel=cancel
                )
            )
            continue
        report.analyses.append(
            analyse_library(
                catalog,
                settings,
                analyser,
                batch_size=batch_size,
                redo=reanalyze,
                progress=progress,
                cancel=cancel,
            )
        )
        unload = getattr(analyser, "unload", None)
        if callable(unload):  # free the model's memory before the next one loads
            unload()
    if (settings.transcribe_videos if speech is None else speech) and not cancel.cancelled:
        # the model loads on the first video with a sound track, not before; reported when there was one
        heard = transcribe_videos(
            catalog, settings, transcriber(settings), redo=reanalyze, progress=progress, cancel=cancel
        )
        if heard.todo:
            report.analyses.append(heard)
    if not cancel.cancelled:
        report.search_index = sync_search_indexes(catalog, settings, progress, embedder=embedder)
    return report

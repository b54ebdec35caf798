"""The analysis stages: each analyser (the VLM, OCR) reads every visible photo; results are stored per hash.

Photos are read newest first (catalog.photos_to_analyse orders by the time taken), so that in a long first run
search is useful early for the photos people look for most; the progress line says photos an hour, the bar the
time left, both timed from the end of the first batch (after the model has loaded). Input images are the large
thumbnails made at ingestion (upright, at most 1024 px): analysis never decodes a 50-megapixel original again.
A model that cannot load stops only its own stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.ingest.decode import thumb_path
from smartalbum.pipeline.progress import CancelToken, Progress
from smartalbum.vision.base import Analyser, AnalysisInput, AnalysisResult

log = logging.getLogger(__name__)


@dataclass
class AnalyseStats:
    producer: str
    version: str
    todo: int = 0
    ok: int = 0
    partial: int = 0
    unparsed: int = 0
    errors: int = 0
    cancelled: bool = False
    model_error: str | None = None
    model_hint: str | None = None
    elapsed_s: float = 0.0
    photos_per_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def clock(self, started: float, now: float | None = None) -> None:
        """Time taken since `started` (time.monotonic()) and photos a second, for the run's record."""
        self.elapsed_s = round((time.monotonic() if now is None else now) - started, 3)
        done = self.ok + self.partial + self.unparsed + self.errors
        self.photos_per_s = round(done / self.elapsed_s, 3) if self.elapsed_s else 0.0


def throughput_line(progress: Progress) -> str:
    """'412 photos/h' from the stage's own rate, for the progress line ('' while there is none to tell);
    the time left is the stage's eta_s, which the CLI and the web show."""
    per_hour = progress.per_hour
    return f"{per_hour:,.0f} photos/h" if per_hour > 0 else ""


def _load_inputs(settings: Settings, hashes: list[str]) -> tuple[list[AnalysisInput], list[AnalysisResult]]:
    inputs, failed = [], []
    size = max(settings.thumb_sizes)
    for h in hashes:
        try:
            with Image.open(thumb_path(settings.thumbs_dir, h, size)) as img:
                inputs.append(AnalysisInput(h, img.convert("RGB")))
        except OSError as exc:  # a deleted thumbnail: `smartalbum index` will not fix it, so say what will
            failed.append(AnalysisResult(h, "error", error=f"thumbnail unreadable ({exc}); re-run ingestion"))
    return inputs, failed


def _batches(hashes: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(hashes), size):
        yield hashes[i : i + size]


def analyse_library(
    catalog: Catalog,
    settings: Settings,
    analyser: Analyser,
    *,
    batch_size: int,
    redo: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> AnalyseStats:
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    stats = AnalyseStats(analyser.name, analyser.version)
    todo = catalog.photos_to_analyse(analyser.name, analyser.version, redo=redo)
    stats.todo = len(todo)
    # the clock starts after the first batch: it includes loading the model (a minute on a CPU), which would
    # make the first rate and time left far off
    progress.begin(analyser.name, len(todo), timed=False)
    if not todo:
        return stats
    run_id = catalog.start_run(f"analyse:{analyser.name}")
    started = time.monotonic()
    status = "failed"
    # Decode the next batch's thumbnails while the model works on this one.
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as prefetch:
        batches = _batches(todo, batch_size)
        pending: Future[tuple[list[AnalysisInput], list[AnalysisResult]]] | None = None
        first = next(batches, None)
        if first is not None:
            pending = prefetch.submit(_load_inputs, settings, first)
        try:
            while pending is not None:
                inputs, failed = pending.result()
                nxt = next(batches, None)
                pending = prefetch.submit(_load_inputs, settings, nxt) if nxt else None
                results = failed + (analyser.analyse(inputs) if inputs else [])
                catalog.record_analyses(analyser.name, analyser.version, results)
                for r in results:
                    if r.status == "error":
                        stats.errors += 1
                    else:
                        setattr(stats, r.status, getattr(stats, r.status) + 1)
                progress.advance(len(results), errors=sum(r.status == "error" for r in results))
                if not progress.timed:
                    progress.start_clock()
                progress.describe(throughput_line(progress))
                if cancel.cancelled:
                    stats.cancelled = True
                    break
            status = "cancelled" if stats.cancelled else "done"
        except ModelError as exc:
            stats.model_error, stats.model_hint = exc.message, exc.hint
            status = "model_error"
            log.info("%s: %s", analyser.name, exc)  # the caller shows it to the user, with its hint
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        finally:
            stats.clock(started)
            catalog.finish_run(run_id, status, stats.as_dict())
    return stats

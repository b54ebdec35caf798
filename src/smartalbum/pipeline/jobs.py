"""Indexing jobs that run in the background of a long-lived process (the web server), one at a time.

Each job has its own catalog connection (SQLite connections stay in their thread); its progress is a snapshot
that any thread may read, and it can be cancelled. Search keeps working while a job runs (WAL readers).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.embed.text import TextEmbedder
from smartalbum.errors import InputError, NotFoundError
from smartalbum.pipeline.progress import CancelToken, Progress

log = logging.getLogger(__name__)


@dataclass
class JobStatus:
    id: int
    state: str = "queued"  # queued | running | done | cancelled | failed
    stage: str = ""
    done: int = 0
    total: int = 0
    errors: int = 0
    rate: float = 0.0
    eta_s: float | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    message: str | None = None
    result: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IndexJobs:
    """Starts, reports and cancels `index` runs in a background thread; at most one runs at a time."""

    def __init__(
        self,
        settings: Settings,
        embedder: Callable[[], TextEmbedder | None] | None = None,
        **index_options: Any,
    ) -> None:
        self.settings = settings
        self.embedder = embedder  # the server's loaded embedding model, shared instead of loaded twice
        self.index_options = index_options
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._jobs: dict[int, JobStatus] = {}
        self._cancel: dict[int, CancelToken] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> JobStatus:
        with self._lock:
            running = self.current()
            if running is not None:
                raise InputError(f"indexing job {running.id} is already running", "wait for it or cancel it")
            job = JobStatus(next(self._ids))
            self._jobs[job.id] = job
            self._cancel[job.id] = CancelToken()
            self._thread = threading.Thread(
                target=self._run, args=(job,), name=f"index-job-{job.id}", daemon=True
            )
            self._thread.start()
            return job

    def current(self) -> JobStatus | None:
        return next((j for j in self._jobs.values() if j.state in ("queued", "running")), None)

    def get(self, job_id: int) -> JobStatus:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no indexing job {job_id}")
        return job

    def list(self) -> list[JobStatus]:
        return sorted(self._jobs.values(), key=lambda j: -j.id)

    def cancel(self, job_id: int) -> JobStatus:
        job = self.get(job_id)
        if job.state in ("queued", "running"):
            self._cancel[job_id].cancel()
            job.message = "cancelling"
        return job

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: JobStatus) -> None:
        from smartalbum.pipeline.run import index_library

        def update(p: Progress) -> None:
            job.stage, job.done, job.total, job.errors = p.stage, p.done, p.total, p.errors
            job.rate, job.eta_s = round(p.rate, 3), p.eta_s

        job.state = "running"
        try:
            with Catalog(self.settings.catalog_path) as catalog:
                report = index_library(
                    catalog,
                    self.settings,
                    progress=Progress(on_update=update),
                    cancel=self._cancel[job.id],
                    embedder=self.embedder() if self.embedder else None,
                    **self.index_options,
                )
            job.result = report.as_dict()
            job.state = "cancelled" if self._cancel[job.id].cancelled else "done"
            job.message = None
        except Exception as exc:  # a job's failure is reported in its status, never lost in a thread
            log.exception("indexing job %s failed", job.id)
            job.state, job.message = "failed", str(exc)
        finally:
            job.finished_at = time.time()

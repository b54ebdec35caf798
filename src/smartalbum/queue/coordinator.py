"""`smartalbum index --queue`: the vision stage goes to workers through Celery; results are stored here only.

The coordinating `index` process is the catalog's one writer. It keeps a bounded window of tasks in the broker
(`queue_inflight`: thumbnails are sent as they are needed, not all at once), polls their results in Redis with
one MGET per round, and writes what arrived with `Catalog.record_analyses` in batches. Then it deletes those
results from Redis: a result is "acknowledged" once it is in the catalog.

Guarantees:
- at least once: a task whose worker died is redelivered after the visibility timeout (queue/app.py); when
  the broker itself restarts (a new Redis run id), every task still in flight is sent again, so even a broker
  that lost its data loses no work;
- idempotent: a task's id is fixed per (library, producer version, photo), results are taken only for tasks in
  flight and each is removed from the flight when it is taken, so a duplicate delivery is never stored twice;
  stored results are keyed by (content hash, producer, producer version) as everywhere else;
- resumable: what is stored is not asked for again (`photos_to_analyse`); a result that a crashed run left in
  Redis is collected instead of being asked for again; what was in flight is sent again;
- bounded: each task is tried `queue_max_attempts` times (queue/tasks.py) and then stored as an error row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.ingest.decode import thumb_path
from smartalbum.pipeline.analyse import AnalyseStats
from smartalbum.pipeline.progress import CancelToken, Progress
from smartalbum.queue.app import (
    BROKER_HINT,
    TASK_NAME,
    attempts_key,
    library_key,
    make_app,
    progress_key,
    queue_name,
    redact,
    task_id,
)
from smartalbum.queue.monitor import WorkerWatch
from smartalbum.queue.tasks import encode_payload
from smartalbum.vision.base import Analyser, AnalysisResult

log = logging.getLogger(__name__)

POLL_S = 0.25
FLUSH_S = 1.0  # results are written at least this often, or when a batch is full
PUBLISH_S = 1.0
SEND_CHUNK = 64
MGET_CHUNK = 500
NEVER_REACHED_WAIT_S = 10.0


def broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OperationalError, ConnectionError, TimeoutError, OSError)


@dataclass
class QueueAnalyseStats(AnalyseStats):
    """AnalyseStats of a queued run, with what the queue did (sent, resent, redone, per worker)."""

    queue: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Flight:
    hash: str
    state: str = "queued"  # queued | running


@dataclass
class _Worker:
    photos: int = 0
    busy_s: float = 0.0
    first: float = 0.0
    last: float = 0.0

    def per_hour(self) -> float:
        span = self.last - self.first
        return round(self.photos * 3600 / span, 1) if span > 0 else 0.0


class _BrokerGone(Exception):
    pass


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _exception_text(info: Any) -> str:
    if isinstance(info, dict):
        message = info.get("exc_message")
        if isinstance(message, list | tuple):
            message = " ".join(str(m) for m in message)
        return f"{info.get('exc_type', 'error')}: {message}"
    return str(info)


def _result_from(photo_hash: str, value: Any) -> AnalysisResult:
    if not isinstance(value, dict) or value.get("hash") != photo_hash:
        return AnalysisResult(
            photo_hash, "error", error=f"malformed result from the queue: {str(value)[:200]}"
        )
    status = str(value.get("status"))
    if status not in {"ok", "partial", "unparsed", "error"}:
        return AnalysisResult(photo_hash, "error", error=f"unknown result status {status!r} from the queue")
    data = value.get("data")
    return AnalysisResult(
        photo_hash,
        status,
        data=data if isinstance(data, dict) else {},
        raw=str(value.get("raw") or ""),
        error=value.get("error"),
    )


class _Coordinator:
    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        analyser: Analyser,
        stats: QueueAnalyseStats,
        progress: Progress,
        todo: list[str],
        *,
        redo: bool,
        batch_size: int,
    ) -> None:
        self.catalog, self.settings, self.stats, self.progress = catalog, settings, stats, progress
        self.producer, self.version = analyser.name, analyser.version
        self.url = settings.queue_url or ""
        self.redo = redo
        self.batch_size = batch_size
        self.app = make_app(self.url, visibility_timeout_s=settings.queue_visibility_timeout_s)
        self.backend = self.app.backend
        self.library = library_key(settings)
        self.queue = queue_name(self.producer, self.version)
        self.size = max(settings.thumb_sizes)
        self.pending: deque[str] = deque(todo)
        self.inflight: dict[str, _Flight] = {}
        self.buffer: list[tuple[str, AnalysisResult]] = []
        self.resend: set[str] = set()
        self.workers: dict[str, _Worker] = {}
        self.redis_run_id: str | None = None
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.last_flush = self.last_check = self.last_publish = 0.0
        self.down_since: float | None = None
        self.counters = {"sent": 0, "resent": 0, "reused": 0, "redone": 0, "broker_restarts": 0, "written": 0}
        self.watch = WorkerWatch(self.url, self.queue, visibility_s=settings.queue_visibility_timeout_s)

    # -- sending ----------------------------------------------------------------------------------------

    def _tid(self, photo_hash: str) -> str:
        return task_id(self.library, self.producer, self.version, photo_hash)

    def _key(self, tid: str) -> Any:
        return self.backend.get_key_for_task(tid)

    def _meta(self, raw: bytes | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        meta = self.backend.decode(raw)
        return meta if isinstance(meta, dict) else None

    def _send(self, photo_hash: str, tid: str) -> bool:
        try:
            jpeg = thumb_path(self.settings.thumbs_dir, photo_hash, self.size).read_bytes()
        except OSError as exc:  # as in-process: `index` will not fix a deleted thumbnail, ingestion will
            error = f"thumbnail unreadable ({exc}); re-run ingestion"
            self.buffer.append((tid, AnalysisResult(photo_hash, "error", error=error)))
            return False
        payload = encode_payload(
            photo_hash,
            jpeg,
            self.producer,
            self.version,
            max_attempts=self.settings.queue_max_attempts,
            retry_delay_s=self.settings.queue_retry_delay_s,
        )
        self.app.send_task(
            TASK_NAME,
            args=[payload],
            task_id=tid,
            queue=self.queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2},
        )
        self.inflight[tid] = _Flight(photo_hash)
        return True

    def fill(self) -> None:
        """Send photos until the window is full; a result that a crashed run left is taken, not asked for."""
        client = self.backend.client
        while self.pending and len(self.inflight) < self.settings.queue_inflight:
            n = min(SEND_CHUNK, self.settings.queue_inflight - len(self.inflight), len(self.pending))
            chunk = [self.pending.popleft() for _ in range(n)]
            tids = [self._tid(h) for h in chunk]
            try:
                left = [None] * n if self.redo else client.mget([self._key(t) for t in tids])
            except BaseException:
                self.pending.extendleft(reversed(chunk))
                raise
            fresh: list[tuple[str, str]] = []
            for h, tid, raw in zip(chunk, tids, left, strict=True):
                meta = self._meta(raw)
                if meta and meta.get("status") == "SUCCESS":
                    result = _result_from(h, meta.get("result"))
                    if result.status != "error":
                        self.buffer.append((tid, result))
                        self.counters["reused"] += 1
                        continue
                fresh.append((h, tid))
            if not fresh:
                continue
            try:  # a fresh start: no stale state, and this run's attempts counted from zero
                client.delete(*[k for _, t in fresh for k in (self._key(t), attempts_key(t))])
            except BaseException:
                self.pending.extendleft(reversed([h for h, _ in fresh]))
                raise
            for i, (h, tid) in enumerate(fresh):
                try:
                    if self._send(h, tid):
                        self.counters["sent"] += 1
                except BaseException:
                    self.pending.extendleft(reversed([x for x, _ in fresh[i:]]))
                    raise

    def check_broker(self, now: float) -> None:
        """Send again everything in flight when the broker restarted (it may have lost its queues)."""
        if now - self.last_check < 1.0 and not self.resend:
            return
        self.last_check = now
        run_id = str(self.backend.client.info("server").get("run_id", ""))
        if self.redis_run_id is None:
            self.redis_run_id = run_id
        elif run_id != self.redis_run_id:
            log.warning(
                "the queue broker restarted: sending the %d tasks in flight again", len(self.inflight)
            )
            self.redis_run_id = run_id
            self.counters["broker_restarts"] += 1
            self.resend = set(self.inflight)
        while self.resend:
            tid = self.resend.pop()
            flight = self.inflight.get(tid)
            if flight is None:
                continue
            try:
                del self.inflight[tid]
                if self._send(flight.hash, tid):
                    self.counters["resent"] += 1
            except BaseException:
                self.inflight[tid] = flight
                self.resend.add(tid)
                raise

    # -- collecting -------------------------------------------------------------------------------------

    def poll(self, now: float) -> int:
        """Take every finished result in flight into the buffer; returns how many came."""
        got = 0
        client = self.backend.client
        for chunk in _chunks(list(self.inflight), MGET_CHUNK):
            raws = client.mget([self._key(t) for t in chunk])
            for tid, raw in zip(chunk, raws, strict=True):
                flight = self.inflight.get(tid)
                meta = self._meta(raw)
                if flight is None or meta is None:
                    continue
                status = meta.get("status")
                value = meta.get("result")
                if status in ("STARTED", "RETRY"):
                    flight.state = "running"
                    continue
                if status == "SUCCESS":
                    result = _result_from(flight.hash, value)
                    self._count_worker(value, now)
                elif status in ("FAILURE", "REVOKED"):
                    error = f"the task failed: {_exception_text(value)}"[:900]
                    result = AnalysisResult(flight.hash, "error", error=error)
                else:
                    continue
                del self.inflight[tid]
                self.buffer.append((tid, result))
                got += 1
        return got

    def _count_worker(self, value: Any, now: float) -> None:
        if not isinstance(value, dict):
            return
        if int(value.get("attempts") or 0) > 1:
            self.counters["redone"] += 1
        name = str(value.get("worker") or "?")
        seconds = float(value.get("seconds") or 0.0)
        w = self.workers.get(name)
        if w is None:
            w = self.workers[name] = _Worker(first=now - seconds, last=now)
        w.photos += 1
        w.busy_s += seconds
        w.first = min(w.first, now - seconds)
        w.last = now

    def flush(self, now: float, *, force: bool = False) -> None:
        """Write the buffered results in one transaction, then forget them in Redis."""
        if not self.buffer or (
            not force and len(self.buffer) < self.batch_size and now - self.last_flush < FLUSH_S
        ):
            return
        taken, self.buffer = self.buffer, []
        results = [r for _, r in taken]
        self.catalog.record_analyses(self.producer, self.version, results)
        self.last_flush = now
        self.counters["written"] += len(results)
        errors = 0
        for r in results:
            if r.status == "error":
                errors += 1
            else:
                setattr(self.stats, r.status, getattr(self.stats, r.status) + 1)
        self.stats.errors += errors
        self.progress.advance(len(results), errors=errors)
        try:  # stored: the copies in Redis are no longer needed (they expire anyway)
            self.backend.client.delete(*[k for t, _ in taken for k in (self._key(t), attempts_key(t))])
        except broker_errors() as exc:
            log.debug("could not delete stored results from the broker: %s", exc)

    # -- progress ---------------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        running = sum(f.state == "running" for f in self.inflight.values())
        return {
            "producer": self.producer,
            "version": self.version,
            "queue": self.queue,
            "broker": redact(self.url),
            "total": self.stats.todo,
            "to_send": len(self.pending),
            "queued": len(self.inflight) - running,
            "running": running,
            "done": self.stats.ok + self.stats.partial + self.stats.unparsed,
            "failed": self.stats.errors,
            "broker_down_s": round(now - self.down_since, 1) if self.down_since is not None else None,
            "workers_alive": self.watch.alive,
            "other_workers": self.watch.others,
            "workers": {
                name: {
                    "photos": w.photos,
                    "photos_per_hour": w.per_hour(),
                    "seconds_per_photo": round(w.busy_s / w.photos, 3) if w.photos else None,
                }
                for name, w in sorted(self.workers.items())
            },
            "started_at": self.started_at,
            "elapsed_s": round(now - self.started, 1),
            **self.counters,
        }

    def describe(self, snap: dict[str, Any]) -> str:
        if snap["broker_down_s"] is not None:
            return f"broker {snap['broker']} unreachable for {snap['broker_down_s']:.0f}s, waiting"
        alive = snap["workers_alive"]
        if alive is None:
            workers = "asking for workers"
        elif alive:
            rates = ", ".join(
                f"{name.split('@')[0]} {w['photos_per_hour']:.0f}/h"
                for name, w in snap["workers"].items()
                if name in alive
            )
            workers = f"{len(alive)} workers alive" + (f" ({rates})" if rates else "")
        else:
            workers = f"no worker serves {self.queue}: start `smartalbum worker --broker {snap['broker']}`"
        return (
            f"{snap['queued'] + snap['to_send']} queued, {snap['running']} running, {snap['done']} done, "
            f"{snap['failed']} failed; {workers}"
        )

    def publish(self, now: float, *, force: bool = False) -> None:
        if not force and now - self.last_publish < PUBLISH_S:
            return
        self.last_publish = now
        snap = self.snapshot(now)
        self.progress.describe(self.describe(snap))
        try:
            self.backend.client.set(progress_key(self.library), json.dumps(snap), ex=30)
        except broker_errors() as exc:
            log.debug("cannot publish progress: %s", exc)

    # -- the loop ---------------------------------------------------------------------------------------

    def _patience(self) -> float:
        """How long to wait for the broker: long once it was reached (a restart), short if never (a typo)."""
        wait = self.settings.queue_broker_wait_s
        return wait if self.redis_run_id is not None else min(wait, NEVER_REACHED_WAIT_S)

    def run(self, cancel: CancelToken) -> None:
        errors = broker_errors()
        self.watch.start()
        try:
            while self.pending or self.inflight or self.buffer:
                if cancel.cancelled:
                    self.stats.cancelled = True
                    break
                now = time.monotonic()
                got = 0
                try:
                    self.check_broker(now)
                    self.fill()
                    got = self.poll(now)
                    if self.down_since is not None:
                        log.warning("the queue broker is back after %.0f s", now - self.down_since)
                        self.down_since = None
                        self.last_check = 0.0  # look for a restart now
                except errors as exc:
                    if self.down_since is None:
                        log.warning("lost the queue broker %s: %s", redact(self.url), exc)
                        self.down_since = now
                    elif now - self.down_since > self._patience():
                        raise _BrokerGone(str(exc)) from exc
                    time.sleep(1.0)
                self.flush(time.monotonic(), force=not self.inflight and not self.pending)
                self.publish(time.monotonic())
                if not got:
                    time.sleep(POLL_S)
        finally:
            self.flush(time.monotonic(), force=True)
            self.watch.stop()
            with contextlib.suppress(*errors):
                self.backend.client.delete(progress_key(self.library))


def analyse_via_queue(
    catalog: Catalog,
    settings: Settings,
    analyser: Analyser,
    *,
    batch_size: int = 32,
    redo: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> QueueAnalyseStats:
    """The analysis stage through the queue at settings.queue_url; `analyser` names the producer (its model is
    never loaded here). Returns the same stats as the in-process stage, plus `queue`."""
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    stats = QueueAnalyseStats(analyser.name, analyser.version)
    todo = catalog.photos_to_analyse(analyser.name, analyser.version, redo=redo)
    stats.todo = len(todo)
    progress.begin(analyser.name, len(todo))
    if not todo:
        return stats
    run_id = catalog.start_run(f"analyse:{analyser.name}")
    coordinator = _Coordinator(
        catalog, settings, analyser, stats, progress, todo, redo=redo, batch_size=batch_size
    )
    status = "failed"
    try:
        coordinator.run(cancel)
        status = "cancelled" if stats.cancelled else "done"
    except _BrokerGone as exc:
        stats.model_error = f"the queue broker {redact(coordinator.url)} is unreachable ({exc})"
        stats.model_hint = f"{BROKER_HINT}; the next `smartalbum index` resumes where this one stopped"
        status = "model_error"
    except KeyboardInterrupt:
        status = "cancelled"
        raise
    finally:
        now = time.monotonic()
        stats.clock(coordinator.started, now)
        snap = coordinator.snapshot(now)
        stats.queue = {
            k: snap[k] for k in ("queue", "broker", "workers", "workers_alive", *coordinator.counters)
        }
        catalog.finish_run(run_id, status, stats.as_dict())
    return stats

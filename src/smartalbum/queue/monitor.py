"""Who is serving the queue: workers alive (Celery's broadcast `active_queues`), queue lengths, and the
progress that a running `index --queue` publishes, for the CLI bar and `smartalbum status`."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from smartalbum.config import Settings
from smartalbum.queue.app import library_key, make_app, progress_key, queue_name, redact

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 1.0


def workers_by_queue(app: Any, timeout: float = PING_TIMEOUT_S) -> dict[str, list[str]]:
    """Each live worker's node name and the queues it consumes (a worker that does not answer: absent)."""
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    return {node: sorted(q.get("name", "") for q in queues or []) for node, queues in replies.items()}


class WorkerWatch:
    """Asks which workers are alive every `interval_s` in a thread of its own, so collection never waits."""

    def __init__(
        self, broker_url: str, queue: str, *, interval_s: float = 5.0, visibility_s: float = 60
    ) -> None:
        self.queue = queue
        self.interval_s = interval_s
        self.alive: list[str] | None = None  # None: not asked yet
        self.others = 0  # live workers serving other models
        self._app = make_app(broker_url, visibility_timeout_s=visibility_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-workers", daemon=True)

    def start(self) -> WorkerWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                nodes = workers_by_queue(self._app)
                self.alive = sorted(n for n, qs in nodes.items() if self.queue in qs)
                self.others = len(nodes) - len(self.alive)
            except Exception as exc:  # the broker is down: the collector says so; keep asking
                log.debug("cannot ask for workers: %s", exc)
                self.alive = []
            self._stop.wait(self.interval_s)


def queue_status(settings: Settings, producer: str, version: str) -> dict[str, Any]:
    """The queue for `smartalbum status`: reachable, workers, waiting tasks, a running index's progress."""
    from redis import Redis

    url = settings.queue_url or ""
    queue = queue_name(producer, version)
    out: dict[str, Any] = {"broker": redact(url), "queue": queue, "producer": producer, "version": version}
    try:
        client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        waiting = int(client.llen(queue))
        raw = client.get(progress_key(library_key(settings)))
        app = make_app(url, visibility_timeout_s=settings.queue_visibility_timeout_s)
        nodes = workers_by_queue(app)
    except Exception as exc:
        out.update(reachable=False, error=f"{type(exc).__name__}: {exc}")
        return out
    out.update(
        reachable=True,
        waiting=waiting,
        workers=sorted(n for n, qs in nodes.items() if queue in qs),
        other_workers={n: qs for n, qs in nodes.items() if queue not in qs},
        running_index=json.loads(raw) if raw else None,
    )
    return out

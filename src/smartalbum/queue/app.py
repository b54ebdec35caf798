"""The Celery app of distributed analysis: a Redis broker and the same Redis as result backend.

Delivery is at least once: a task is acknowledged only after it returned (`acks_late`), a worker takes one
task per slot at a time (`worker_prefetch_multiplier = 1`), and a task whose worker died (SIGKILL, power loss)
goes back to the queue when its visibility timeout has passed. Whoever stores results must therefore accept
the same result twice; the coordinator does (queue/coordinator.py).

Names, all derived here so that workers and coordinators agree:
- one queue per producer version (`smartalbum.qwen_vl.<digest>`): a worker serves only the model it loaded,
  so a result is always stored under the version that produced it;
- one task id per (library, producer version, photo): a result left in Redis by a crashed `index` is found
  again by the next run instead of being asked for a second time.
"""

from __future__ import annotations

import hashlib
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from smartalbum.config import Settings
from smartalbum.errors import ConfigError

TASK_NAME = "smartalbum.analyse_photo"
KEY_PREFIX = "smartalbum:"
RESULT_TTL_S = 24 * 3600  # a result nobody collected (its `index` crashed for good) goes after this
BROKER_SCHEMES = ("redis", "rediss", "redis+socket", "unix")
BROKER_HINT = (
    "start one with `redis-server --port 6379 --appendonly yes` (Debian: apt install redis-server) and give "
    "its URL, redis://HOST:6379/0, with --queue (index, status) or --broker (worker), or as queue_url"
)


def check_broker_url(url: str | None) -> str:
    """The broker URL, or a ConfigError that says what is expected."""
    if not url:
        raise ConfigError("no queue broker given", BROKER_HINT)
    scheme = urlsplit(url).scheme
    if scheme not in BROKER_SCHEMES:
        raise ConfigError(
            f"unsupported queue broker {redact(url)!r}: only Redis is supported",
            "use a URL such as redis://HOST:6379/0",
        )
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _digest(text: str, n: int = 10) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


def queue_name(producer: str, version: str) -> str:
    """The queue of one producer version: only workers with that model loaded take its tasks."""
    return f"smartalbum.{producer}.{_digest(version)}"


def library_key(settings: Settings) -> str:
    """Tells libraries (on any machine) apart in task ids and progress keys on a shared broker."""
    return _digest(f"{socket.gethostname()}:{settings.catalog_path.expanduser().resolve()}", 12)


def task_id(library: str, producer: str, version: str, photo_hash: str) -> str:
    return f"sa.{library}.{producer}.{_digest(version)}.{photo_hash}"


def attempts_key(tid: str) -> str:
    """Counts the deliveries of one task: a photo that kills its worker every time is still bounded."""
    return f"{KEY_PREFIX}attempts:{tid}"


def progress_key(library: str) -> str:
    """The running `index`'s progress, for `smartalbum status` on any machine."""
    return f"{KEY_PREFIX}progress:{library}"


def restore_interval_s(visibility_timeout_s: float) -> float:
    """How often a worker looks for tasks whose worker died: a fraction of the visibility timeout."""
    return max(1.0, min(10.0, visibility_timeout_s / 4))


def make_app(broker_url: str, *, visibility_timeout_s: float = 1800.0) -> Any:
    """A Celery app on `broker_url` (Redis as broker and result backend); the worker registers the task."""
    url = check_broker_url(broker_url)
    try:
        from celery import Celery
    except ImportError as exc:
        raise ConfigError(
            "the analysis queue needs Celery and redis-py, which are not installed",
            "pip install 'smartalbum[queue]' (celery, redis)",
        ) from exc
    transport = {
        # a task not acknowledged this long after it was taken is given to another worker
        "visibility_timeout": visibility_timeout_s,
        "unacked_restore_interval": restore_interval_s(visibility_timeout_s),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
        "socket_keepalive": True,
        "health_check_interval": 10,
    }
    app = Celery("smartalbum", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=0,
        result_backend_transport_options={"socket_keepalive": True, "health_check_interval": 10},
        redis_socket_connect_timeout=5,
        redis_socket_timeout=30,
        redis_retry_on_timeout=True,
        # a worker that finishes while the broker restarts keeps trying to store its result
        result_backend_always_retry=True,
        result_backend_max_retries=60,
        result_backend_max_sleep_between_retries_ms=5000,
        result_expires=RESULT_TTL_S,
        task_default_queue="smartalbum.default",
    )
    return app

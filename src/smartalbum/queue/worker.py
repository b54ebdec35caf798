"""`smartalbum worker`: load the configured analyser once, then serve its queue until stopped.

The worker runs Celery in this process with a thread pool: the model is loaded once and shared by the task
threads (a local model serves one photo at a time; an OpenAI-compatible server takes `concurrency` requests at
once). It never opens a catalog: photos arrive as JPEG bytes and results go back through Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Callable
from typing import Any

from smartalbum.config import Settings
from smartalbum.queue.app import check_broker_url, make_app, queue_name, redact
from smartalbum.queue.tasks import register, use_analyser
from smartalbum.vision.backends import vlm_analyser
from smartalbum.vision.base import Analyser

log = logging.getLogger(__name__)


def default_nodename() -> str:
    return f"smartalbum-{os.getpid()}@{socket.gethostname()}"


def load_analyser(settings: Settings) -> tuple[Analyser, str]:
    """The configured analyser, loaded now (a model that cannot load stops the worker before it takes work),
    and a line saying what was loaded."""
    analyser = vlm_analyser(settings)
    load = getattr(analyser, "load", None)
    check = getattr(analyser, "check", None)
    if callable(load):
        load()
        device = getattr(analyser, "device", None)
        dtype = str(getattr(analyser, "dtype", "")).removeprefix("torch.")
        where = f" on {device} ({dtype})" if device else ""
        return analyser, f"loaded {getattr(analyser, 'model_id', settings.vlm_model)}{where}"
    if callable(check):
        urls = check()
        return analyser, f"using {settings.vlm_model} served at {', '.join(urls)}"
    return analyser, f"using {settings.vlm_model}"


def _quiet_warnings(**_: Any) -> None:
    # Celery 5.x warns on every broker reconnection that 6.0 will cancel running tasks then; this worker
    # keeps finishing them (their results are stored once the broker is back), so the warning says nothing
    warnings.filterwarnings("ignore", message=r"\s*In Celery 5\.1 we introduced an optional breaking change")


def run_worker(
    settings: Settings,
    broker_url: str | None = None,
    *,
    concurrency: int | None = None,
    nodename: str | None = None,
    loglevel: str = "WARNING",
    echo: Callable[[str], Any] = print,
) -> int:
    """Serve analysis tasks until SIGTERM/SIGINT (warm shutdown: running tasks finish, others go back)."""
    url = check_broker_url(broker_url or settings.queue_url)
    slots = concurrency or settings.queue_concurrency
    name = nodename or default_nodename()
    analyser, loaded = load_analyser(settings)
    echo(f"{loaded}; producer {analyser.name} version {analyser.version}")
    app = make_app(url, visibility_timeout_s=settings.queue_visibility_timeout_s)
    register(app)
    use_analyser(analyser, name)
    queue = queue_name(analyser.name, analyser.version)
    echo(f"worker {name}: serving queue {queue} on {redact(url)} with {slots} task slot(s)")
    from celery import signals

    signals.celeryd_after_setup.connect(_quiet_warnings, weak=False)
    worker = app.Worker(
        hostname=name,
        pool="threads",
        concurrency=slots,
        queues=[queue],
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    try:
        worker.start()
    finally:
        unload = getattr(analyser, "unload", None)
        if callable(unload):
            unload()
    return int(worker.exitcode or 0)

"""The analysis task, as a worker runs it: JPEG bytes in, an AnalysisResult's data out. No catalog here.

A task carries everything a worker needs (the analysis-size thumbnail, the content hash and the producer
version it is asked for), so workers share no disk with the library. Each delivery of a task counts as an
attempt (a Redis counter per task id): a photo whose analysis fails is retried by the queue a bounded number
of times and then comes back as an 'error' result, and so does one that kills its worker every time.
"""

from __future__ import annotations

import base64
import io
import logging
import socket
import threading
import time
from dataclasses import asdict
from typing import Any

from PIL import Image

from smartalbum.queue.app import RESULT_TTL_S, TASK_NAME, attempts_key
from smartalbum.vision.base import Analyser, AnalysisInput, AnalysisResult

log = logging.getLogger(__name__)

# analysers that may be called from several task threads at once; the others (one local model) take turns
THREAD_SAFE = {"openai"}


class _Loaded:
    """The analyser this worker process loaded once, for every task it runs."""

    analyser: Analyser | None = None
    lock: threading.Lock | None = None
    nodename: str = socket.gethostname()


def use_analyser(analyser: Analyser, nodename: str) -> None:
    _Loaded.analyser = analyser
    _Loaded.lock = None if analyser.name in THREAD_SAFE else threading.Lock()
    _Loaded.nodename = nodename


def encode_payload(
    photo_hash: str, jpeg: bytes, producer: str, version: str, *, max_attempts: int, retry_delay_s: float
) -> dict[str, Any]:
    return {
        "hash": photo_hash,
        "jpeg": base64.b64encode(jpeg).decode("ascii"),
        "producer": producer,
        "version": version,
        "max_attempts": max_attempts,
        "retry_delay_s": retry_delay_s,
    }


def _run_analyser(payload: dict[str, Any]) -> AnalysisResult:
    analyser = _Loaded.analyser
    if analyser is None:
        raise RuntimeError("this process has no analyser loaded (start it with `smartalbum worker`)")
    with Image.open(io.BytesIO(base64.b64decode(payload["jpeg"], validate=True))) as img:
        image = img.convert("RGB")
    item = AnalysisInput(payload["hash"], image)
    if _Loaded.lock is None:
        (result,) = analyser.analyse([item])
    else:
        with _Loaded.lock:
            (result,) = analyser.analyse([item])
    return result


def _answer(result: AnalysisResult, started: float, attempt: int) -> dict[str, Any]:
    return {
        **asdict(result),
        "worker": _Loaded.nodename,
        "seconds": round(time.monotonic() - started, 3),
        "attempts": attempt,
    }


def _count_attempt(task: Any) -> int:
    """This delivery's number (1 for the first); 1 when Redis cannot be asked (it is restarting, say)."""
    from redis.exceptions import RedisError

    key = attempts_key(task.request.id)
    try:
        with task.app.backend.client.pipeline() as pipe:
            attempt, _ = pipe.incr(key).expire(key, RESULT_TTL_S).execute()
        return int(attempt)
    except (RedisError, OSError) as exc:
        log.warning("cannot count the attempts of %s: %s", task.request.id, exc)
        return 1


def analyse_photo(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """One photo: the analyser's result, or after the last attempt an 'error' result saying why."""
    started = time.monotonic()
    photo_hash = str(payload["hash"])
    max_attempts = int(payload.get("max_attempts") or 3)
    analyser = _Loaded.analyser
    asked = (payload["producer"], payload["version"])
    if analyser is not None and asked != (analyser.name, analyser.version):
        # never stored under a version that did not produce it (queue names keep this from happening)
        error = f"worker {_Loaded.nodename} runs {analyser.name} {analyser.version}, not {payload['version']}"
        return _answer(AnalysisResult(photo_hash, "error", error=error), started, 0)
    attempt = _count_attempt(task)
    if attempt > max_attempts:  # the earlier deliveries never returned: their worker died on this photo
        error = f"gave up after {max_attempts} attempts: the worker stopped while analysing this photo"
        return _answer(AnalysisResult(photo_hash, "error", error=error), started, attempt)
    try:
        result = _run_analyser(payload)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:900]
    else:
        if result.status != "error":
            return _answer(result, started, attempt)
        error = result.error or "no answer"
    if attempt >= max_attempts:
        log.warning("photo %s failed %d times, giving up: %s", photo_hash[:12], attempt, error)
        failed = AnalysisResult(photo_hash, "error", error=f"failed {attempt} times; last: {error}")
        return _answer(failed, started, attempt)
    log.info("photo %s failed (attempt %d of %d): %s", photo_hash[:12], attempt, max_attempts, error)
    delay = float(payload.get("retry_delay_s") or 0) * attempt
    raise task.retry(countdown=delay, max_retries=max_attempts)


def register(app: Any) -> Any:
    """Register the analysis task on `app` (late acknowledgement, requeued when its worker is lost)."""
    return app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        track_started=True,
    )(analyse_photo)

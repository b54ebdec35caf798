"""Wrong answers found by trying search as a user would (issue 13), each pinned by a test.

Libraries are written straight into a real catalog (photos, files, analyses), searched through Library with
the real FTS5 index and the bundled MiniLM embedder (fast; the multilingual default is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

import smartalbum.search.engine as search_engine
from smartalbum.catalog import Catalog
from smartalbum.catalog.columns import FilterColumns
from smartalbum.catalog.db import UNPARSED_RETRIES
from smartalbum.catalog.records import IngestOutcome, PhotoMeta
from smartalbum.config import Settings, load_settings
from smartalbum.library import Library
from smartalbum.search.engine import POOL, SearchEngine
from smartalbum.search.results import SearchFilters
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.description import describing_analysis


def _hash(n: int) -> str:
    return f"f{n:063x}"  # not all digits: an all-digit reference is a photo id


def _analysis(
    zh: str, en: str, tags_zh: tuple[str, ...] = (), tags_en: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {"caption": {"zh": zh, "en": en}, "tags": {"zh": list(tags_zh), "en": list(tags_en)}}


def _library(
    tmp: Path, photos: list[tuple[str, dict[str, Any] | None]], *, taken: list[str] | None = None
) -> Settings:
    """A library whose photo n is file `name` with analysis `data` (None: not described yet)."""
    settings = load_settings(tmp / "library", embed_model="offline")
    with Catalog(settings.catalog_path) as cat:
        root = cat.add_root(tmp / "photos")
        cat.record_outcomes(
            IngestOutcome(
                str(tmp / "photos" / name),
                root,
                1,
                1,
                photo=PhotoMeta(
                    hash=_hash(n), size=1, taken_at=(taken[n] if taken else "2020-01-01T00:00:00")
                ),
            )
            for n, (name, _) in enumerate(photos)
        )
        cat.record_analyses(
            "import",
            "test|v1",
            [AnalysisResult(_hash(n), "ok", data=data) for n, (_, data) in enumerate(photos) if data],
        )
    return settings


@pytest.fixture
def open_lib() -> Iterator[Any]:
    opened: list[Library] = []

    def make(settings: Settings) -> Library:
        opened.append(Library(settings))
        return opened[-1]

    yield make
    for lib in opened:
        lib.close()


def _names(lib: Library, query: str, **filters: Any) -> list[str]:
    return [Path(h.path or "").name for h in lib.search(query, SearchFilters(**filters), limit=100).hits]


ANIMALS = [
    ("cat.jpg", _analysis("一只猫坐在窗台上", "A cat sitting on a windowsill", ("猫", "窗台"), ("cat",))),
    ("panda.jpg", _analysis("熊猫在吃竹子", "A panda eating bamboo", ("熊猫", "竹子"), ("panda",))),
    ("sea.jpg", _analysis("蓝色的海和沙滩", "The blue sea and a sandy beach", ("海", "沙滩"), ("sea",))),
    ("shanghai.jpg", _analysis("上海的外滩夜景", "The Bund in Shanghai at night", ("上海", "夜景"), ())),
    ("flower.jpg", _analysis("花园里的一朵红花", "A red flower in a garden", ("花", "花园"), ("flower",))),
    ("fireworks.jpg", _analysis("夜空中的烟花", "Fireworks in the night sky", ("烟花",), ("fireworks",))),
]


@pytest.mark.parametrize(
    ("query", "word", "inside"),
    [
        ("猫", "cat.jpg", "panda.jpg"),
        ("海", "sea.jpg", "shanghai.jpg"),
        ("花", "flower.jpg", "fireworks.jpg"),
    ],
)
def test_a_character_inside_another_word_is_weak_evidence(
    tmp_path: Path, open_lib: Any, query: str, word: str, inside: str
) -> None:
    lib = open_lib(_library(tmp_path, ANIMALS))
    hits = {Path(h.path or "").name: h for h in lib.search(query, limit=50).hits}
    assert word in hits, hits.keys()
    assert hits[word].score >= 0.8
    # 熊猫 for 猫 was 0.92 against 0.95: now it is cut, or far below and labelled as what it is
    assert inside not in hits or hits[word].score - hits[inside].score >= 0.3, hits[inside]
    if inside in hits:
        assert any(query in w for w in hits[inside].why if "inside" in w or "其他词" in w)


def test_excluding_a_character_word_keeps_photos_that_only_contain_the_character(
    tmp_path: Path, open_lib: Any
) -> None:
    lib = open_lib(_library(tmp_path, ANIMALS))
    got = _names(lib, "动物 不要猫", min_score=0.0)
    assert "cat.jpg" not in got and "panda.jpg" in got


def test_only_exclusions_say_so_and_list_nothing(tmp_path: Path, open_lib: Any) -> None:
    lib = open_lib(_library(tmp_path, ANIMALS))
    for query in ("没有猫", "without cats"):
        res = lib.search(query)
        assert res.hits == [] and res.total == 0
        assert any("exclusion" in n or "排除" in n for n in res.notes), res.notes


def test_no_smoking_sign_is_what_is_searched(tmp_path: Path, open_lib: Any) -> None:
    photos = [
        ("sign.jpg", _analysis("墙上的禁止吸烟标志", "A no smoking sign on a wall", ("标志",), ("sign",))),
        *ANIMALS,
    ]
    lib = open_lib(_library(tmp_path, photos))
    res = lib.search("no smoking sign")
    assert [Path(h.path or "").name for h in res.hits][:1] == ["sign.jpg"]
    assert all(h.score < 1.0 for h in res.hits[1:])
    assert len(res.hits) < len(photos)


def test_good_verdict_never_brings_back_a_gone_photo_or_an_excluded_one(
    tmp_path: Path, open_lib: Any
) -> None:
    settings = _library(tmp_path, ANIMALS)
    lib = open_lib(settings)
    lib.add_feedback("sea", _hash(1), "good")  # the panda, for "sea"
    assert "panda.jpg" in _names(lib, "sea")
    lib.add_feedback("海 不要熊猫", _hash(1), "good")
    assert "panda.jpg" not in _names(lib, "海 不要熊猫")
    with Catalog(settings.catalog_path) as cat:
        cat.mark_gone([str(tmp_path / "photos" / "panda.jpg")])
    got = lib.search("sea").hits
    assert got and all(h.path for h in got)
    assert "panda.jpg" not in [Path(h.path or "").name for h in got]


def test_a_bare_number_is_not_a_year(tmp_path: Path, open_lib: Any) -> None:
    photos = [
        (
            "game.png",
            _analysis("手机游戏2048的截图", "A screenshot of the game 2048", ("游戏",), ("game", "2048")),
        ),
        ("old.jpg", _analysis("1984年的老照片", "An old photo", ("老照片",), ("old",))),
    ]
    lib = open_lib(_library(tmp_path, photos, taken=["2021-05-01T10:00:00", "1984-06-01T10:00:00"]))
    assert _names(lib, "2048 game")[:1] == ["game.png"]
    assert not lib.search("2048 game").understood
    assert _names(lib, "photos from 1984") == ["old.jpg"]


def test_date_sorted_and_filtered_listings_hold_every_match(tmp_path: Path, open_lib: Any) -> None:
    n = POOL + 60
    photos = [
        (
            f"car{i}.jpg",
            _analysis(
                f"一辆红色的汽车 {i}", f"A red car parked on the street, number {i}", ("汽车",), ("car",)
            ),
        )
        for i in range(n)
    ]
    taken = [f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 10}T12:00:00" for i in range(n)]
    lib = open_lib(_library(tmp_path, photos, taken=taken))
    by_date = lib.search("red car", SearchFilters(sort="date"), limit=500)
    assert by_date.total == n and by_date.complete
    dates = [h.taken_at or "" for h in by_date.hits]
    assert dates == sorted(dates, reverse=True) and dates[0] == max(taken)
    in_2024 = lib.search("red car 2024年", limit=500)
    assert in_2024.total == sum(t.startswith("2024") for t in taken) > 0
    # by relevance the list stops at the retrievers' depth and says so
    best = lib.search("red car", limit=10)
    assert not best.complete and best.total <= 2 * POOL
    assert any("best" in note for note in best.notes), best.notes


def test_no_good_match_means_no_result_or_weak_ones(tmp_path: Path, open_lib: Any) -> None:
    lib = open_lib(_library(tmp_path, ANIMALS))
    res = lib.search("red bicycle")
    assert all(h.weak for h in res.hits), [(h.path, h.score, h.why) for h in res.hits]
    if res.hits:
        assert any("no strong match" in n for n in res.notes)
    # a real match is not weak
    cat = lib.search("a cat on a windowsill").hits
    assert cat and Path(cat[0].path or "").name == "cat.jpg" and not cat[0].weak


def test_undescribed_photos_match_only_by_name_and_metadata(tmp_path: Path, open_lib: Any) -> None:
    photos: list[tuple[str, dict[str, Any] | None]] = [
        ("IMG_0001.jpg", None),
        ("IMG_0002.jpg", None),
        ("微信图片_20240712153000.jpg", None),
        ("sunset cat.jpg", None),
    ]
    lib = open_lib(_library(tmp_path, photos))
    assert lib.search("找出所有有猫的日落照片").hits == []
    assert lib.search("a dog on the beach").hits == []
    assert _names(lib, "sunset cat") == ["sunset cat.jpg"]  # its name is all it has


def test_an_unparsed_reanalysis_does_not_replace_a_good_description(tmp_path: Path, open_lib: Any) -> None:
    settings = _library(tmp_path, ANIMALS[:2])
    with Catalog(settings.catalog_path) as cat:
        # a later model run that could not be parsed keeps its raw text as the caption
        garbled = AnalysisResult(_hash(0), "unparsed", data=_analysis("", "zzqx garbled bicycle"), raw="zzqx")
        cat.record_analyses("qwen_vl", "m|p1", [garbled])
        # the same producer version asked again for a photo it described well keeps the good answer
        cat.record_analyses(
            "import", "test|v1", [AnalysisResult(_hash(1), "unparsed", data=_analysis("", "zzqx"))]
        )
        assert {a["status"] for a in cat.analyses(_hash(1))} == {"ok"}
    lib = open_lib(settings)
    hits = lib.search("cat windowsill").hits
    assert [Path(h.path or "").name for h in hits][:1] == ["cat.jpg"]
    assert hits[0].caption["en"] == "A cat sitting on a windowsill"
    assert _names(lib, "zzqx") == []
    page = lib.photo(_hash(0))
    assert describing_analysis(page["analyses"])[0].caption.en == "A cat sitting on a windowsill"


def test_unparsed_answers_are_retried_a_bounded_number_of_times(tmp_path: Path) -> None:
    settings = _library(tmp_path, ANIMALS[:2])
    with Catalog(settings.catalog_path) as cat:
        cat.db.execute("UPDATE photos SET thumbs = 1")
        asked = []
        for _ in range(UNPARSED_RETRIES + 2):
            todo = cat.photos_to_analyse("qwen_vl", "m|p1")
            asked.append(len(todo))
            cat.record_analyses(
                "qwen_vl", "m|p1", [AnalysisResult(h, "unparsed", data=_analysis("", "?")) for h in todo]
            )
        assert asked == [2] * UNPARSED_RETRIES + [0, 0]
        errors = {e["subject"]: e for e in cat.errors("analyse:qwen_vl")}
        assert errors[_hash(0)]["kind"] == "unparsed" and errors[_hash(0)]["attempts"] == UNPARSED_RETRIES
        # a parsed answer clears the error
        cat.record_analyses("qwen_vl", "m|p1", [AnalysisResult(_hash(0), "ok", data=ANIMALS[0][1] or {})])
        assert _hash(0) not in {e["subject"] for e in cat.errors("analyse:qwen_vl")}


def test_the_default_model_answers_chinese_questions_about_english_descriptions(tmp_path: Path) -> None:
    """No embed_model set and no network: the bundled multilingual model, not an English-only fallback."""
    english_only = [
        ("cat.jpg", {"caption": {"en": "A cat sleeping on a windowsill in the sun"}}),
        ("dogs.jpg", {"caption": {"en": "Two dogs running on the beach"}}),
        ("receipt.jpg", {"caption": {"en": "A paper receipt from a coffee shop"}}),
        ("mountain.jpg", {"caption": {"en": "Snowy mountains above a blue lake"}}),
    ]
    settings = _library(tmp_path, english_only)
    settings = load_settings(settings.library_dir)  # the defaults, as `make run` has them
    with Library(settings) as lib:
        for question, expected in (
            ("窗台上睡觉的猫", "cat.jpg"),
            ("海滩上奔跑的狗", "dogs.jpg"),
            ("雪山和湖", "mountain.jpg"),
        ):
            res = lib.search(question)
            assert [Path(h.path or "").name for h in res.hits][:1] == [expected], (question, res.hits[:2])
            assert not any("cannot load" in n for n in res.notes), res.notes


def test_full_text_search_without_a_limit_returns_every_match(tmp_path: Path) -> None:
    from smartalbum.index.fulltext import FullTextIndex

    with FullTextIndex(tmp_path / "fts.sqlite3") as fts:
        fts.upsert_many(
            (i, {"desc_en": f"a red bicycle number {i}" if i % 3 else f"a green tree number {i}"})
            for i in range(1, 601)
        )
        bikes = {i for i in range(1, 601) if i % 3}
        every = fts.search("bicycle", None)
        assert {h.photo_id for h in every} == bikes  # 400 matches: more than any pool of a limited search
        assert len(fts.search("bicycle", 10)) == 10
        some = set(range(1, 100))
        assert {h.photo_id for h in fts.search("red bicycle", None, some)} == bikes & some
        # still ordered: the photo with both words comes before those with one
        fts.upsert(601, {"desc_en": "a green bicycle"})
        mixed = fts.search("green bicycle", None)
        assert len(mixed) == 601 and mixed[0].photo_id == 601


# -- complete listings on a large library, at a small scale -------------------------------------------------

KINDS = [
    ("一辆红色的汽车停在街上", "A red car parked on the street", ("汽车",), ("car",)),
    ("一碗面条放在木桌上", "A bowl of noodle soup on a wooden table", ("面条",), ("soup",)),
    ("一只猫睡在沙发上", "A cat asleep on a sofa", ("猫",), ("cat",)),
    ("雪山下的湖", "A lake below snowy mountains", ("山",), ("mountain",)),
]


@pytest.fixture(scope="module")
def big_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str], list[str]]:
    """500 photos, one every three days from 2015 on: red cars every other photo, three yellow submarines;
    its search indexes built once. Returns the settings, each photo's kind and its time."""
    tmp = tmp_path_factory.mktemp("big")
    photos, kinds, taken = [], [], []
    start = date(2015, 1, 1)
    for i in range(500):
        if i in (17, 250, 433):
            zh, en, tz, te = (
                "港口里的一艘黄色潜水艇",
                "A yellow submarine in a harbour",
                ("潜水艇",),
                ("submarine",),
            )
        else:
            zh, en, tz, te = KINDS[0] if i % 2 == 0 else KINDS[1 + i % 3]
        photos.append((f"p{i}.jpg", _analysis(f"{zh} {i}", f"{en}, number {i}", tz, te)))
        kinds.append(en)
        taken.append(f"{start + timedelta(days=3 * i)}T12:00:00")
    settings = _library(tmp, photos, taken=taken)
    with Library(settings) as lib:
        lib.search("warm up")  # builds the search indexes
    return settings, kinds, taken


def _as_large(monkeypatch: pytest.MonkeyPatch, **more: int) -> None:
    """Listings behave as on a library too large to read whole: a walk, a sample, gathering."""
    sizes = {"WALK_ALL": 100, "SAMPLE": 300, "MIN_SAMPLE": 50, "BLOCK": 32, "WALK_MOST": 2000, "GATHER": 100}
    for name, value in {**sizes, **more}.items():
        monkeypatch.setattr(search_engine, name, value)


@pytest.fixture(params=["memory", "sqlite"])
def filters_from(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Filters answered by the photos' time and place in memory (the usual way), or by SQLite (while a
    large library's are being read again)."""
    if request.param == "sqlite":
        monkeypatch.setattr(SearchEngine, "_filters", lambda self, catalog, where=None: catalog)
    return str(request.param)


def _patch_filters(monkeypatch: pytest.MonkeyPatch, name: str, make: Any) -> None:
    """Replace a method both filter sources have (Catalog's and FilterColumns'): make(original) -> new."""
    for source in (Catalog, FilterColumns):
        monkeypatch.setattr(source, name, make(getattr(source, name)))


def _ids(res: Any) -> list[int]:
    return [h.photo_id for h in res.hits]


def test_a_listing_by_date_reads_only_what_its_page_needs(
    big_library: tuple[Settings, list[str], list[str]],
    open_lib: Any,
    monkeypatch: pytest.MonkeyPatch,
    filters_from: str,
) -> None:
    settings, kinds, taken = big_library
    lib = open_lib(settings)
    by_date = SearchFilters(sort="date")
    whole = lib.search("red car", by_date, limit=20)  # 500 photos: read whole, an exact count
    cars = sum(k.startswith("A red car") for k in kinds)
    assert whole.total_exact and whole.total >= cars
    dates = [h.taken_at or "" for h in whole.hits]
    newest_car = max(t for k, t in zip(kinds, taken, strict=True) if k.startswith("A red car"))
    assert dates == sorted(dates, reverse=True) and dates[0] == newest_car

    read: list[int] = []

    def counting(blocks: Any) -> Any:
        def counted(self: Any, *args: Any) -> Iterator[list[int]]:
            for block in blocks(self, *args):
                read.extend(block)
                yield block

        return counted

    _patch_filters(monkeypatch, "newest_blocks", counting)
    _as_large(monkeypatch)
    walked = lib.search("red car", by_date, limit=20)
    assert _ids(walked) == _ids(whole)  # the same page
    assert 20 <= len(read) < 200  # not every photo was read
    assert not walked.total_exact and abs(walked.total - whole.total) <= 0.3 * whole.total
    assert any("about" in n for n in walked.notes), walked.notes
    # the last page reads to the end: the count is exact again
    last = lib.search("red car", by_date, limit=20, offset=whole.total - 5)
    assert last.total_exact and last.total == whole.total
    assert _ids(last) == _ids(lib.search("red car", by_date, limit=20, offset=whole.total - 5))
    monkeypatch.setattr(search_engine, "WALK_ALL", 10**9)
    assert _ids(last) == _ids(lib.search("red car", by_date, limit=20, offset=whole.total - 5))


def test_a_rare_match_by_date_is_gathered_not_walked_to(
    big_library: tuple[Settings, list[str], list[str]],
    open_lib: Any,
    monkeypatch: pytest.MonkeyPatch,
    filters_from: str,
) -> None:
    settings, _, _ = big_library
    lib = open_lib(settings)
    by_date = SearchFilters(sort="date")
    whole = lib.search("yellow submarine", by_date, limit=20)
    assert [Path(h.path or "").name for h in whole.hits] == ["p433.jpg", "p250.jpg", "p17.jpg"]

    def no_walk(self: Any, *args: Any) -> Iterator[list[int]]:
        raise AssertionError("a rare match must not read photos newest first")
        yield []

    _patch_filters(monkeypatch, "newest_blocks", lambda original: no_walk)
    _as_large(monkeypatch, WALK_MOST=500)
    gathered = lib.search("yellow submarine", by_date, limit=20)
    assert _ids(gathered) == _ids(whole) and gathered.total_exact and gathered.total == whole.total
    assert [h.score for h in gathered.hits] == [h.score for h in whole.hits]


def test_inside_a_filter_by_relevance_every_match_is_listed_when_it_can_be_gathered(
    big_library: tuple[Settings, list[str], list[str]],
    open_lib: Any,
    monkeypatch: pytest.MonkeyPatch,
    filters_from: str,
) -> None:
    settings, kinds, taken = big_library
    lib = open_lib(settings)
    monkeypatch.setattr(search_engine, "POOL", 20)  # each retriever's best 20: fewer than the matches
    in_2016 = SearchFilters(date_from=date(2016, 1, 1), date_to=date(2016, 12, 31))
    cars = sum(k.startswith("A red car") and t.startswith("2016") for k, t in zip(kinds, taken, strict=True))
    assert cars > 40
    res = lib.search("red car", in_2016, limit=100)
    assert res.complete and res.total >= cars
    assert sum(bool(h.taken_at and h.taken_at.startswith("2016")) for h in res.hits) == len(res.hits)
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    # when too many could match to gather them, the best of each retriever, and the answer says so
    monkeypatch.setattr(search_engine, "GATHER", 10)
    cut = lib.search("red car", in_2016, limit=100)
    assert not cut.complete and cut.total < res.total
    assert any("sort by date" in n for n in cut.notes), cut.notes


def test_a_broad_filter_is_checked_on_candidates_and_answers_the_same(
    big_library: tuple[Settings, list[str], list[str]],
    open_lib: Any,
    monkeypatch: pytest.MonkeyPatch,
    filters_from: str,
) -> None:
    settings, _, _ = big_library
    lib = open_lib(settings)
    year = {y: {"date_from": date(y, 1, 1), "date_to": date(y, 12, 31)} for y in (2016, 2017)}
    asked = [
        ("red car", SearchFilters(**year[2016])),
        ("red car", SearchFilters(**year[2016], sort="date")),
        ("submarine", SearchFilters(**year[2017])),  # one of the three, gathered
    ]
    _as_large(monkeypatch)
    read = [lib.search(q, f, limit=30) for q, f in asked]
    assert read[0].total > 30 and read[1].total > 30 and read[2].total == 1

    def not_read(*args: Any, **kwargs: Any) -> list[int]:
        raise AssertionError("a broad filter must not be read whole")

    # a year holds about a quarter of the library: above BROAD_SHARE, and above a READ_FILTER of 50 photos
    monkeypatch.setattr(search_engine, "READ_FILTER", 50)
    _patch_filters(monkeypatch, "filter_photo_ids", lambda original: not_read)
    for (q, f), before in zip(asked, read, strict=True):
        broad = lib.search(q, f, limit=30)
        assert _ids(broad) == _ids(before), q
        assert broad.total_exact == before.total_exact
        assert abs(broad.total - before.total) <= 0.3 * before.total, q
        year_of = str(f.date_from.year if f.date_from else "")
        assert all((h.taken_at or "").startswith(year_of) for h in broad.hits)


def test_a_time_listing_with_a_wrong_verdict_is_still_paged_in_sql(
    big_library: tuple[Settings, list[str], list[str]], open_lib: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _, taken = big_library
    lib = open_lib(settings)
    before = lib.search("photos from 2016", limit=6)
    assert before.total == sum(t.startswith("2016") for t in taken) and len(before.hits) == 6
    wrong, right = before.hits[0].photo_id, before.hits[1].photo_id
    marks = [
        lib.add_feedback("photos from 2016", wrong, "bad"),
        lib.add_feedback("Photos  from 2016", right, "good"),
    ]
    try:

        def not_read(*args: Any, **kwargs: Any) -> list[int]:
            raise AssertionError("a time alone is paged in SQL, not read whole")

        _patch_filters(monkeypatch, "filter_photo_ids", lambda original: not_read)
        after = lib.search("photos from 2016", limit=5)
        assert after.total == before.total - 1
        assert _ids(after) == _ids(before)[1:]
        assert wrong not in _ids(after) and "you marked this as right for this query" in after.hits[0].why
    finally:
        for mark in marks:
            lib.undo_feedback(mark["id"])

"""Query understanding: time, place and negation in Chinese and English, against a fixed 'today'."""

from __future__ import annotations

import dataclasses
import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartalbum.search.query import MAX_QUERY_CHARS, PlaceMatcher, chinese_to_int, parse_query
from smartalbum.search.query import chinese_new_year as cny

TODAY = date(2025, 11, 29)  # a Saturday, in autumn
PLACES = {
    "青岛": "qingdao", "qingdao": "qingdao", "Paris": "paris", "巴黎": "paris", "日本": "japan",
    "japan": "japan", "US": "us", "New York": "new_york", "纽约": "new_york", "北京": "beijing",
    "上海": "shanghai", "Nice": "nice", "京": "beijing",
}  # fmt: skip


def parse(text: str, today: date = TODAY):
    return parse_query(text, today=today, places=PLACES)


D = date

# (query, date_from, date_to): relative to TODAY = 2025-11-29
TIME_CASES = [
    # Chinese, relative
    ("今天的照片", D(2025, 11, 29), D(2025, 11, 29)),
    ("昨天", D(2025, 11, 28), D(2025, 11, 28)),
    ("前天拍的", D(2025, 11, 27), D(2025, 11, 27)),
    ("本周", D(2025, 11, 24), D(2025, 11, 30)),
    ("这周的猫", D(2025, 11, 24), D(2025, 11, 30)),
    ("上周", D(2025, 11, 17), D(2025, 11, 23)),
    ("上个星期", D(2025, 11, 17), D(2025, 11, 23)),
    ("上周末", D(2025, 11, 22), D(2025, 11, 23)),
    ("本月", D(2025, 11, 1), D(2025, 11, 30)),
    ("这个月", D(2025, 11, 1), D(2025, 11, 30)),
    ("上个月", D(2025, 10, 1), D(2025, 10, 31)),
    ("上月", D(2025, 10, 1), D(2025, 10, 31)),
    ("今年", D(2025, 1, 1), D(2025, 12, 31)),
    ("去年", D(2024, 1, 1), D(2024, 12, 31)),
    ("前年", D(2023, 1, 1), D(2023, 12, 31)),
    ("大前年", D(2022, 1, 1), D(2022, 12, 31)),
    ("最近", D(2025, 10, 31), D(2025, 11, 29)),
    ("近期的照片", D(2025, 10, 31), D(2025, 11, 29)),
    ("三天前", D(2025, 11, 26), D(2025, 11, 26)),
    ("两周前", D(2025, 11, 12), D(2025, 11, 18)),
    ("两年前", D(2023, 5, 29), D(2024, 5, 29)),
    ("一个月前", D(2025, 10, 14), D(2025, 11, 13)),
    ("前几天", D(2025, 11, 22), D(2025, 11, 28)),
    ("过去一周", D(2025, 11, 23), D(2025, 11, 29)),
    ("近三个月", D(2025, 8, 30), D(2025, 11, 29)),
    # Chinese, absolute
    ("2019年", D(2019, 1, 1), D(2019, 12, 31)),
    ("二〇一九年", D(2019, 1, 1), D(2019, 12, 31)),
    ("2019年7月", D(2019, 7, 1), D(2019, 7, 31)),
    ("2019年7月12日", D(2019, 7, 12), D(2019, 7, 12)),
    ("二〇一九年十二月", D(2019, 12, 1), D(2019, 12, 31)),
    ("19年的照片", D(2019, 1, 1), D(2019, 12, 31)),
    ("去年7月", D(2024, 7, 1), D(2024, 7, 31)),
    ("去年的七月", D(2024, 7, 1), D(2024, 7, 31)),
    ("7月12日", D(2025, 7, 12), D(2025, 7, 12)),
    ("12月25日", D(2024, 12, 25), D(2024, 12, 25)),  # this year's is still ahead
    ("2010年代", D(2010, 1, 1), D(2019, 12, 31)),
    ("90年代", D(1990, 1, 1), D(1999, 12, 31)),
    ("九十年代", D(1990, 1, 1), D(1999, 12, 31)),
    ("2019年到2021年", D(2019, 1, 1), D(2021, 12, 31)),
    ("从2019年到2021年之间", D(2019, 1, 1), D(2021, 12, 31)),
    ("2019年7月到9月", D(2019, 7, 1), D(2019, 9, 30)),
    ("去年的今天", D(2024, 11, 29), D(2024, 11, 29)),
    ("去年年底", D(2024, 12, 1), D(2024, 12, 31)),
    ("今年上半年", D(2025, 1, 1), D(2025, 6, 30)),
    # seasons: 去年夏天 is the previous calendar year's summer; winter Y runs Dec Y .. Feb Y+1
    ("去年夏天", D(2024, 6, 1), D(2024, 8, 31)),
    ("今年春天", D(2025, 3, 1), D(2025, 5, 31)),
    ("去年冬天", D(2024, 12, 1), D(2025, 2, 28)),
    ("前年冬天", D(2023, 12, 1), D(2024, 2, 29)),
    ("2023年秋天", D(2023, 9, 1), D(2023, 11, 30)),
    # festivals
    ("春节", D(2025, 1, 28), D(2025, 2, 4)),
    ("春节期间", D(2025, 1, 28), D(2025, 2, 4)),
    ("前年春节前后", D(2023, 1, 15), D(2023, 1, 29)),
    ("2024年春节", D(2024, 2, 9), D(2024, 2, 16)),
    ("除夕", D(2025, 1, 28), D(2025, 1, 28)),
    ("国庆", D(2025, 10, 1), D(2025, 10, 7)),
    ("去年国庆节", D(2024, 10, 1), D(2024, 10, 7)),
    ("元旦", D(2025, 1, 1), D(2025, 1, 3)),
    ("圣诞节", D(2024, 12, 24), D(2024, 12, 26)),
    ("去年圣诞", D(2024, 12, 24), D(2024, 12, 26)),
    # open ranges
    ("2020年以来", D(2020, 1, 1), None),
    ("2018年以前", None, D(2017, 12, 31)),
    ("2020年以后", D(2021, 1, 1), None),
    ("自2020年以来", D(2020, 1, 1), None),
    ("从2019年起", D(2019, 1, 1), None),
    ("2018年前的照片", None, D(2017, 12, 31)),
    ("2019年前后", D(2018, 1, 1), D(2020, 12, 31)),
    # English, relative
    ("today", D(2025, 11, 29), D(2025, 11, 29)),
    ("yesterday", D(2025, 11, 28), D(2025, 11, 28)),
    ("the day before yesterday", D(2025, 11, 27), D(2025, 11, 27)),
    ("this week", D(2025, 11, 24), D(2025, 11, 30)),
    ("last week", D(2025, 11, 17), D(2025, 11, 23)),
    ("in the last week", D(2025, 11, 23), D(2025, 11, 29)),
    ("past week", D(2025, 11, 23), D(2025, 11, 29)),
    ("last 7 days", D(2025, 11, 23), D(2025, 11, 29)),
    ("last weekend", D(2025, 11, 22), D(2025, 11, 23)),
    ("this month", D(2025, 11, 1), D(2025, 11, 30)),
    ("last month", D(2025, 10, 1), D(2025, 10, 31)),
    ("this year", D(2025, 1, 1), D(2025, 12, 31)),
    ("last year", D(2024, 1, 1), D(2024, 12, 31)),
    ("recently", D(2025, 10, 31), D(2025, 11, 29)),
    ("3 days ago", D(2025, 11, 26), D(2025, 11, 26)),
    ("two weeks ago", D(2025, 11, 12), D(2025, 11, 18)),
    ("a year ago", D(2024, 5, 29), D(2025, 5, 29)),
    ("a few days ago", D(2025, 11, 22), D(2025, 11, 28)),
    ("past 3 months", D(2025, 8, 30), D(2025, 11, 29)),
    # English, absolute
    ("in 2019", D(2019, 1, 1), D(2019, 12, 31)),
    ("photos from last year", D(2024, 1, 1), D(2024, 12, 31)),  # 'from' alone does not open the range
    ("early 2019", D(2019, 1, 1), D(2019, 4, 30)),
    ("this day last year", D(2024, 11, 29), D(2024, 11, 29)),
    ("July 2024", D(2024, 7, 1), D(2024, 7, 31)),
    ("on 2024-07-12", D(2024, 7, 12), D(2024, 7, 12)),
    ("2019-07", D(2019, 7, 1), D(2019, 7, 31)),
    ("2019.7", D(2019, 7, 1), D(2019, 7, 31)),
    ("2019/07/12", D(2019, 7, 12), D(2019, 7, 12)),
    ("July 12th, 2019", D(2019, 7, 12), D(2019, 7, 12)),
    ("12 July 2019", D(2019, 7, 12), D(2019, 7, 12)),
    ("last July", D(2025, 7, 1), D(2025, 7, 31)),
    ("the 2010s", D(2010, 1, 1), D(2019, 12, 31)),
    ("the 90s", D(1990, 1, 1), D(1999, 12, 31)),
    ("between 2019 and 2021", D(2019, 1, 1), D(2021, 12, 31)),
    ("from 2019 to 2021", D(2019, 1, 1), D(2021, 12, 31)),
    ("2019-2021", D(2019, 1, 1), D(2021, 12, 31)),
    ("since 2020", D(2020, 1, 1), None),
    ("after 2020", D(2021, 1, 1), None),
    ("before 2018", None, D(2017, 12, 31)),
    ("until 2018", None, D(2018, 12, 31)),
    ("since 2020 onwards", D(2020, 1, 1), None),
    # English seasons: 'last summer' in November 2025 is summer 2025, the latest one that has ended
    ("last summer", D(2025, 6, 1), D(2025, 8, 31)),
    ("this summer", D(2025, 6, 1), D(2025, 8, 31)),
    ("last winter", D(2024, 12, 1), D(2025, 2, 28)),
    ("this winter", D(2025, 12, 1), D(2026, 2, 28)),
    ("last autumn", D(2024, 9, 1), D(2024, 11, 30)),
    ("summer 2023", D(2023, 6, 1), D(2023, 8, 31)),
    ("in the summer of 2023", D(2023, 6, 1), D(2023, 8, 31)),
    ("Christmas", D(2024, 12, 24), D(2024, 12, 26)),
    ("Christmas 2023", D(2023, 12, 24), D(2023, 12, 26)),
    ("around Chinese New Year 2024", D(2024, 2, 3), D(2024, 2, 17)),
    # mixed language
    ("去年summer的beach", D(2024, 6, 1), D(2024, 8, 31)),
]


@pytest.mark.parametrize(("query", "date_from", "date_to"), TIME_CASES)
def test_time_expressions(query: str, date_from: date | None, date_to: date | None) -> None:
    parsed = parse(query)
    assert (parsed.date_from, parsed.date_to) == (date_from, date_to)
    assert parsed.months == ()


@pytest.mark.parametrize(
    ("query", "months"),
    [
        ("七月", (7,)),
        ("7月的海", (7,)),
        ("十二月", (12,)),
        ("7月份", (7,)),
        ("in July", (7,)),
        ("July beach", (7,)),
        ("夏天的花", (6, 7, 8)),
        ("冬天", (1, 2, 12)),
        ("in the winter", (1, 2, 12)),
        ("11月到2月", (1, 2, 11, 12)),
        ("July to September", (7, 8, 9)),
        ("2月30日", (2,)),  # no such day: the month is all that is left
    ],
)
def test_recurring_months(query: str, months: tuple[int, ...]) -> None:
    parsed = parse(query)
    assert parsed.months == months
    assert parsed.date_from is None and parsed.date_to is None


def test_last_summer_means_different_things_in_chinese_and_english() -> None:
    assert (parse("去年夏天").date_from, parse("last summer").date_from) == (D(2024, 6, 1), D(2025, 6, 1))
    in_july = D(2025, 7, 15)  # while it is summer, English 'last summer' is the year before
    assert parse("last summer", today=in_july).date_from == D(2024, 6, 1)
    assert parse("this summer", today=in_july).date_to == D(2025, 8, 31)
    in_january = D(2025, 1, 10)  # 'this winter' is the one we are in
    assert (
        parse("this winter", today=in_january).date_from,
        parse("this winter", today=in_january).date_to,
    ) == (
        D(2024, 12, 1),
        D(2025, 2, 28),
    )


@pytest.mark.parametrize(
    ("query", "semantic"),
    [
        ("找出所有有猫的日落照片", "猫的日落"),
        ("dogs on the beach last summer", "dogs on the beach"),
        ("去年夏天在青岛拍的海边照片", "海边"),
        ("the receipt that says 星巴克", "receipt that says 星巴克"),
        ("没有人的风景照", "风景"),
        ("show me photos of dogs from 2019", "dogs"),
        ("pictures of sunsets taken last year", "sunsets"),
        ("帮我找一下上个月的自拍", "自拍"),
        ("合照", "合照"),  # 照 is part of the word here
        ("护照的照片", "护照"),
        ("2019年", ""),
        ("去年summer的beach", "beach"),
        ("christmas tree", "christmas tree"),  # a thing in the photo, not a date
        ("圣诞节的圣诞树", "圣诞树"),
        ("a sign that says no parking", "a sign that says no parking"),  # quoted text is not a negation
        ("NO PARKING", "NO PARKING"),  # capitals: the text of a sign
        ("cat photos that are not blurry", "cat"),
        ("自2020年以来", ""),
        ("2000元的发票", "2000元的发票"),  # a price, not a year
        ("1920x1080 wallpaper", "1920x1080 wallpaper"),
        ("无人机拍的海", "无人机拍的海"),  # a drone, not "without people"
    ],
)
def test_semantic_remainder(query: str, semantic: str) -> None:
    assert parse(query).semantic == semantic


def test_content_words_survive_and_filler_goes() -> None:
    parsed = parse("找出所有有猫的日落照片")
    assert "猫" in parsed.semantic and "日落" in parsed.semantic
    assert not any(word in parsed.semantic for word in ("照片", "找出", "所有"))
    assert not parsed.has_filters


@pytest.mark.parametrize(
    ("query", "place", "place_text", "semantic"),
    [
        ("去年夏天在青岛拍的海边照片", "qingdao", "青岛", "海边"),
        ("青岛市的啤酒节", "qingdao", "青岛", "啤酒节"),
        ("bus stop in Paris", "paris", "Paris", "bus stop"),
        ("eiffel tower PARIS", "paris", "PARIS", "eiffel tower"),
        ("巴黎铁塔", "paris", "巴黎", "铁塔"),
        ("photos from Qingdao", "qingdao", "Qingdao", ""),
        ("dogs near New York", "new_york", "New York", "dogs"),
        ("去日本旅行", "japan", "日本", ""),  # a trip reference: the place chooses trips (test_trips)
        ("flag of the US", "us", "US", "flag"),
        ("在上海拍的北京烤鸭", "shanghai", "上海", "北京烤鸭"),  # the marked place wins
        ("sunset in Nice", "nice", "Nice", "sunset"),
    ],
)
def test_places(query: str, place: str, place_text: str, semantic: str) -> None:
    parsed = parse(query)
    assert (parsed.place, parsed.place_text, parsed.semantic) == (place, place_text, semantic)


@pytest.mark.parametrize(
    "query",
    [
        "photos of us at the beach",  # 'us' is a pronoun; only 'US' is a place
        "Parisian cafe",  # no match inside a longer word
        "日本料理",  # a cuisine, not where it was taken
        "青岛啤酒",  # a brand
        "a nice view",  # common words need a capital
        "京剧",  # one-character names are ignored
        "夜景 in Berlin",  # unknown places stay in the text
    ],
)
def test_no_place(query: str) -> None:
    parsed = parse(query)
    assert parsed.place is None and parsed.place_text is None


def test_prebuilt_place_matcher_gives_the_same_answer() -> None:
    matcher = PlaceMatcher.build(PLACES)
    for query in ("去年夏天在青岛拍的海边照片", "bus stop in Paris", "photos of us"):
        assert parse_query(query, today=TODAY, places=matcher) == parse(query)
    assert parse_query("在青岛", today=TODAY).place is None  # no gazetteer, no place filter


@pytest.mark.parametrize(
    ("query", "exclude", "semantic"),
    [
        ("没有人的风景照", ("人",), "风景"),
        ("不要猫", ("猫",), ""),
        ("不含文字的截图", ("文字",), "截图"),
        ("没有人和车的街道", ("人", "车"), "街道"),
        ("除了狗以外的动物", ("狗",), "动物"),
        ("没有人入镜的海滩", ("人",), "海滩"),
        ("不在北京拍的", ("北京",), ""),
        ("without people", ("people",), ""),
        ("beach without people or cars", ("people", "cars"), "beach"),
        ("no cars", ("cars",), ""),
        ("not indoors", ("indoors",), ""),
        ("excluding dogs", ("dogs",), ""),
        ("sunset -clouds", ("clouds",), "sunset"),
        ("photos not in Paris", ("Paris",), ""),
    ],
)
def test_negation(query: str, exclude: tuple[str, ...], semantic: str) -> None:
    parsed = parse(query)
    assert (parsed.exclude, parsed.semantic) == (exclude, semantic)
    assert parsed.place is None


def test_everything_at_once() -> None:
    parsed = parse("去年夏天在青岛拍的没有人的海边照片")
    assert (parsed.date_from, parsed.date_to) == (D(2024, 6, 1), D(2024, 8, 31))
    assert (parsed.place, parsed.exclude, parsed.semantic) == ("qingdao", ("人",), "海边")
    assert parsed.understood == ["时间 2024-06-01 至 2024-08-31", "地点：青岛", "排除：人"]
    assert parsed.language == "zh"

    english = parse("beach photos in Paris last summer without people")
    assert english.understood == ["taken 2025-06-01 to 2025-08-31", "place: Paris", "without: people"]
    assert (english.semantic, english.language) == ("beach", "en")


@pytest.mark.parametrize(
    ("query", "understood"),
    [
        ("昨天", ["时间 2025-11-28"]),
        ("2020年以来", ["时间 2020-01-01 及以后"]),
        ("七月", ["月份：7月（任意年份）"]),
        ("yesterday", ["taken on 2025-11-28"]),
        ("before 2018", ["taken on or before 2017-12-31"]),
        ("in summer", ["months: June, July, August (any year)"]),
        ("the receipt that says 星巴克", []),
    ],
)
def test_understood_speaks_the_query_language(query: str, understood: list[str]) -> None:
    assert parse(query).understood == understood


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "query", ["", "   ", "\n\t", "。，！？", "!!!???...", "、、、", "\x00\x00", "----", "😀🎉"]
)
def test_empty_and_punctuation_only(query: str) -> None:
    parsed = parse(query)
    assert parsed.semantic == ("😀🎉" if query == "😀🎉" else "")
    assert not parsed.has_filters and parsed.text == query.strip()


@pytest.mark.parametrize(
    ("query", "date_from", "date_to"),
    [
        ("2019年2月30日", D(2019, 2, 1), D(2019, 2, 28)),  # no such day: the month
        ("2019年13月", D(2019, 1, 1), D(2019, 12, 31)),  # no such month: the year
        ("2023年2月29日", D(2023, 2, 1), D(2023, 2, 28)),
        ("2024年2月29日", D(2024, 2, 29), D(2024, 2, 29)),
        ("2019-13-45", D(2019, 1, 1), D(2019, 12, 31)),
        ("2月29日", D(2024, 2, 29), D(2024, 2, 29)),  # the latest Feb 29
        ("999年前", None, None),  # before the first photograph: no filter
        ("9999 years ago", None, None),
        ("一〇〇〇年", None, None),
        ("30年前", D(1995, 5, 29), D(1996, 5, 29)),
    ],
)
def test_invalid_dates_degrade(query: str, date_from: date | None, date_to: date | None) -> None:
    parsed = parse(query)
    assert (parsed.date_from, parsed.date_to) == (date_from, date_to)


def test_leap_day_today() -> None:
    leap = D(2024, 2, 29)
    assert (parse("a year ago", today=leap).date_from, parse("去年", today=leap).date_to) == (
        D(2022, 8, 28),
        D(2023, 12, 31),
    )
    assert parse("last month", today=leap).date_to == D(2024, 1, 31)


# A hang guard, not a speed threshold (bench/ measures speed): catastrophic regex backtracking on long
# repetitive input would run for minutes; a linear parse takes milliseconds even on a loaded machine.
@pytest.mark.timeout(60)
def test_huge_input_is_truncated_and_does_not_hang() -> None:
    query = "去年夏天在青岛拍的海边照片 " * 800  # about 11,000 characters
    parsed = parse(query)
    assert parsed.text == query.strip()  # the original is kept; only the first part is read
    assert parsed.understood[0] == f"只读取了前 {MAX_QUERY_CHARS} 个字符"
    assert (parsed.date_from, parsed.place) == (D(2024, 6, 1), "qingdao")
    junk = ("年" * 10_000, "7月" * 5_000, "2019" * 3_000, "a" * 10_000, "没有" * 5_000, "no " * 3_000)
    for text in junk:
        parsed = parse(text)
        assert "\x00" not in parsed.semantic and len(parsed.semantic) <= MAX_QUERY_CHARS


def test_parsed_query_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse("猫").semantic = "狗"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "positional", "value"),
    [
        ("12", False, 12),
        ("十", False, 10),
        ("十二", False, 12),
        ("二十", False, 20),
        ("二十三", False, 23),
        ("一百零五", False, 105),
        ("两", False, 2),
        ("五六", False, None),  # "five or six", not 56
        ("二〇一九", True, 2019),
        ("九零", True, 90),
        ("猫", False, None),
        ("", False, None),
    ],
)
def test_chinese_numbers(text: str, positional: bool, value: int | None) -> None:
    assert chinese_to_int(text, positional=positional) == value


def test_chinese_new_year_table() -> None:
    days = [cny(year) for year in range(2000, 2036)]
    assert all(d is not None and D(d.year, 1, 21) <= d <= D(d.year, 2, 20) for d in days)
    assert (cny(2024), cny(2025), cny(1999)) == (D(2024, 2, 10), D(2025, 1, 29), None)


# ----------------------------------------------------------------------------------------- properties

_TOKENS = (
    "去年", "今年", "前年", "大前年", "夏天", "冬天", "春节", "前后", "期间", "以来", "以前", "之后",
    "到", "至", "从", "在", "没有", "不要", "无", "人", "猫", "的", "照片", "2019", "2019年", "年", "月",
    "日", "号", "7月", "十二月", "二〇一九", "三天前", "两周前", "九十年代", "最近", "过去", "近", "个",
    "几", "-", ".", "/", ":", "~", "13月", "2月30日", "99", "0", "9999", "19", "last", "this", "past",
    "summer", "winter", "fall", "in", "on", "at", "from", "since", "before", "after", "until", "between",
    "and", "to", "without", "no", "not", "the", "a", "few", "ago", "days", "weeks", "months", "years",
    "2024-02-29", "2023-02-29", "2019-13-45", "July", "May", "'s", "Christmas", "Paris", "US", "us",
    "青岛", "日本", ",", "。", "？", "\x00", "😀", "２０１９",
)  # fmt: skip


def _check_invariants(text: str, today: date) -> None:
    parsed = parse_query(text, today=today, places=PLACES)
    if parsed.date_from and parsed.date_to:
        assert parsed.date_from <= parsed.date_to
    assert all(1 <= month <= 12 for month in parsed.months)
    assert list(parsed.months) == sorted(set(parsed.months))
    assert "\x00" not in parsed.semantic
    assert (parsed.place is None) == (parsed.place_text is None)


def test_random_token_soup_never_breaks_the_parser() -> None:
    """Runs without hypothesis: seeded random mixes of the phrases the parser knows, plus noise."""
    rng = random.Random(20251129)
    for _ in range(3000):
        text = rng.choice(["", " "]).join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 10)))
        text += "".join(chr(rng.randint(0x20, 0x9FFF)) for _ in range(rng.randint(0, 5)))
        _check_invariants(text, D(rng.randint(1990, 2040), rng.randint(1, 12), rng.randint(1, 28)))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=300), st.lists(st.sampled_from(_TOKENS), max_size=12).map("".join)),
    st.dates(min_value=D(1901, 1, 1), max_value=D(2098, 12, 31)),
)
def test_parse_query_never_raises_property(text: str, today: date) -> None:
    _check_invariants(text, today)

"""When a four-digit number is a year: only with a year-like context, never a bare future year."""

from __future__ import annotations

from datetime import date

import pytest

from smartalbum.search.query import parse_query

TODAY = date(2025, 11, 29)
D = date


def parse(text: str, today: date = TODAY):
    return parse_query(text, today=today)


@pytest.mark.parametrize(
    "query",
    [
        "2048 game",  # a future year, and no year-like context
        "Windows 2000",
        "1984 book cover",
        "iPhone 2020 case",
        "2019 trip to the zoo",  # a number before other words says nothing about when
        "Olympics 2008 poster",
        "drone shot from 2000 feet",  # a unit: a height, not a year
        "around 2000 people",
        "$1999 price tag",
        "#2019 hashtag",
        "1920 x 1080",
        "in 2048",  # after today's year: no photo can have been taken then
        "photos from 2030",
        "2048",
        "since 2030",
        "2019-2030",  # a range that ends in the future is not a range of years
    ],
)
def test_numbers_without_year_context_stay_search_text(query: str) -> None:
    parsed = parse(query)
    assert (parsed.date_from, parsed.date_to, parsed.months) == (None, None, ())
    assert any(ch.isdigit() for ch in parsed.semantic)  # the number is still searched for


@pytest.mark.parametrize(
    ("query", "date_from", "date_to"),
    [
        ("2019年的照片", D(2019, 1, 1), D(2019, 12, 31)),
        ("photos from 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("in 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("taken in 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("beach taken 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("summer 2019", D(2019, 6, 1), D(2019, 8, 31)),
        ("2019 summer", D(2019, 6, 1), D(2019, 8, 31)),
        ("Christmas 2019", D(2019, 12, 24), D(2019, 12, 26)),
        ("2019 Christmas", D(2019, 12, 24), D(2019, 12, 26)),
        ("July 2019", D(2019, 7, 1), D(2019, 7, 31)),
        ("2019 July", D(2019, 7, 1), D(2019, 7, 31)),
        ("2019", D(2019, 1, 1), D(2019, 12, 31)),  # the whole question is a year
        ("2019 photos", D(2019, 1, 1), D(2019, 12, 31)),
        ("photos 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("pictures of 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("during 2019", D(2019, 1, 1), D(2019, 12, 31)),
        ("cats since 2020", D(2020, 1, 1), None),
        ("dogs before 2018", None, D(2017, 12, 31)),
        ("until 2018", None, D(2018, 12, 31)),
        ("around 2010", D(2009, 1, 1), D(2011, 12, 31)),
        ("2019-2021", D(2019, 1, 1), D(2021, 12, 31)),
        ("2019 to 2021", D(2019, 1, 1), D(2021, 12, 31)),
        ("between 2019 and 2021", D(2019, 1, 1), D(2021, 12, 31)),
        ("2019 onwards", D(2019, 1, 1), None),
        ("在2019拍的海", D(2019, 1, 1), D(2019, 12, 31)),
        ("2019的照片", D(2019, 1, 1), D(2019, 12, 31)),
        ("2019以来", D(2019, 1, 1), None),
        ("2019到2021", D(2019, 1, 1), D(2021, 12, 31)),
        ("in 2025", D(2025, 1, 1), D(2025, 12, 31)),  # this year is not in the future
        ("2030年", D(2030, 1, 1), D(2030, 12, 31)),  # 年 says it is a year, even a future one
        ("on 2024-07-12", D(2024, 7, 12), D(2024, 7, 12)),
    ],
)
def test_year_context_makes_a_filter(query: str, date_from: date | None, date_to: date | None) -> None:
    parsed = parse(query)
    assert (parsed.date_from, parsed.date_to) == (date_from, date_to)
    assert not any(ch.isdigit() for ch in parsed.semantic)  # the year was consumed


def test_year_with_a_chinese_season_or_month() -> None:
    parsed = parse("2019的夏天")
    assert (parsed.date_from, parsed.date_to, parsed.months) == (D(2019, 1, 1), D(2019, 12, 31), (6, 7, 8))


def test_search_words_around_a_plain_number_are_kept_whole() -> None:
    assert parse("2048 game").semantic == "2048 game"
    assert parse("Windows 2000").semantic == "Windows 2000"
    assert parse("1984 book cover").semantic == "1984 book cover"
    assert parse("iPhone 2020 case").semantic == "iPhone 2020 case"
    assert parse("1984 book cover in 2019").semantic == "1984 book cover"


def test_the_future_is_relative_to_today() -> None:
    assert parse("in 2026", today=D(2026, 1, 2)).date_from == D(2026, 1, 1)
    assert parse("in 2026").date_from is None

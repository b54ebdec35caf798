"""Negation that must not eat the question: sign names stay search text; exclusions alone are flagged."""

from __future__ import annotations

from datetime import date

import pytest

from smartalbum.search.query import parse_query

TODAY = date(2025, 11, 29)


def parse(text: str):
    return parse_query(text, today=TODAY, places={"Paris": "paris", "北京": "beijing"})


@pytest.mark.parametrize(
    "query",
    [
        "no smoking sign",
        "no parking sign",
        "No parking sign",
        "no entry",
        "no parking",
        "no smoking",
        "no trespassing",
        "no parking zone",
        "no dogs allowed",
        "no dogs allowed sign",
        "no swimming area",
        "a wall with no smoking sign",
        "no u-turn sign",
        "不准停车的标志",
        "不要停车的牌子",
        "无烟区",
        "无障碍通道",
        "无边泳池",
        "无袖连衣裙",
    ],
)
def test_sign_and_noun_phrases_stay_search_text(query: str) -> None:
    parsed = parse(query)
    assert parsed.exclude == ()
    assert parsed.semantic  # something is left to search for
    assert not parsed.only_exclusions


def test_the_whole_sign_name_is_searched() -> None:
    assert parse("no smoking sign").semantic == "no smoking sign"
    assert parse("photos of a no parking sign in Paris").semantic == "a no parking sign"
    assert parse("无烟区").semantic == "无烟区"


@pytest.mark.parametrize(
    ("query", "exclude"),
    [
        ("no people", ("people",)),
        ("没有人", ("人",)),
        ("不要猫", ("猫",)),
        ("without people or cars", ("people", "cars")),
        ("photos with no people", ("people",)),
        ("不在北京拍的", ("北京",)),
        ("photos not in Paris", ("Paris",)),
        ("no signs", ("signs",)),  # the signs themselves are what is excluded
    ],
)
def test_only_exclusions_is_said(query: str, exclude: tuple[str, ...]) -> None:
    parsed = parse(query)
    assert parsed.exclude == exclude
    assert parsed.semantic == ""
    assert parsed.only_exclusions


@pytest.mark.parametrize(
    "query",
    [
        "beach without people",  # search words left
        "没有人的海滩",
        "no people last summer",  # a date filter is something to look for
        "七月 没有人",
        "no people in Paris",  # so is a place
        "猫",  # no exclusions at all
        "",
        "no smoking sign",
    ],
)
def test_not_only_exclusions(query: str) -> None:
    assert not parse(query).only_exclusions


@pytest.mark.parametrize(
    ("query", "exclude", "semantic"),
    [
        ("street with no traffic signs", ("traffic signs",), "street"),  # plural: an absence, not a name
        ("没有交通标志的路口", ("交通标志",), "路口"),  # 没有 is an absence; only 不要 is a sign's imperative
        ("no people near the no smoking sign", ("people",), "near the no smoking sign"),
        ("a no entry sign without people", ("people",), "a no entry sign"),  # 'sign without' quotes nothing
    ],
)
def test_absences_near_sign_words_are_still_exclusions(
    query: str, exclude: tuple[str, ...], semantic: str
) -> None:
    parsed = parse(query)
    assert (parsed.exclude, parsed.semantic) == (exclude, semantic)


def test_exclusions_still_work_next_to_sign_words() -> None:
    parsed = parse("street without cars, no parking sign")
    assert parsed.exclude == ("cars",)
    assert "no parking sign" in parsed.semantic

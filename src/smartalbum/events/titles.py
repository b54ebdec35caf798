"""Bilingual titles of events and trips from their places and dates: "2024年7月 青岛" / "Qingdao, July 2024";
"2023年国庆 日本：东京、京都" / "Tokyo and Kyoto, Japan, National Day 2023"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from smartalbum.events.grouping import Shot
from smartalbum.search.query.dates import festival_value

_HOLIDAYS = (("national_day", "国庆", "National Day"), ("cny", "春节", "Chinese New Year"))
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip


def places(shots: Sequence[Shot], home_cc: str | None) -> dict[str, list[str]]:
    """Cities (or regions where no city is known), regions and countries by number of photos, in both
    languages, with country codes; `abroad_*` are the countries other than home's."""
    cities: Counter[tuple[str, str]] = Counter()
    regions: Counter[str] = Counter()
    countries: Counter[tuple[str, str, str]] = Counter()
    for s in shots:
        p = s.place
        en = p.get("city") or p.get("region")
        if en:
            zh = (p.get("city_zh") if p.get("city") else p.get("region_zh")) or en
            cities[(en, zh)] += 1
        if p.get("region"):
            regions[p["region"] or ""] += 1
        if p.get("country"):
            country = p["country"] or ""
            countries[(country, p.get("country_zh") or country, p.get("country_code") or "")] += 1
    ranked = [c for c, _ in countries.most_common()]
    abroad = [c for c in ranked if c[2] and c[2] != home_cc]
    return {
        "cities_en": [c[0] for c, _ in cities.most_common()],
        "cities_zh": [c[1] for c, _ in cities.most_common()],
        "regions_en": [r for r, _ in regions.most_common()],
        "countries_en": [c[0] for c in ranked],
        "countries_zh": [c[1] for c in ranked],
        "country_codes": [c[2] for c in ranked if c[2]],
        "abroad_en": [c[0] for c in abroad],
        "abroad_zh": [c[1] for c in abroad],
    }


def _holiday(start: date, end: date) -> tuple[str, str] | None:
    for key, zh, en in _HOLIDAYS:
        for year in {start.year, end.year}:
            value = festival_value(key, year)
            if (
                value
                and value.date_from
                and value.date_to
                and start <= value.date_to
                and value.date_from <= end
            ):
                return zh, en
    return None


def _join_en(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def title(start: date, end: date, where: dict[str, list[str]]) -> tuple[str, str]:
    """(Chinese, English) title."""
    holiday = _holiday(start, end)
    when_zh = f"{start.year}年{holiday[0]}" if holiday else f"{start.year}年{start.month}月"
    when_en = f"{holiday[1]} {start.year}" if holiday else f"{_MONTHS_EN[start.month - 1]} {start.year}"
    cities_zh, cities_en = where["cities_zh"][:3], where["cities_en"][:3]
    if where["abroad_zh"]:  # Hong Kong the city in Hong Kong the country is named once
        cities_zh = [c for c in cities_zh if c != where["abroad_zh"][0]]
        cities_en = [c for c in cities_en if c != where["abroad_en"][0]]
        place_zh = where["abroad_zh"][0] + ("：" + "、".join(cities_zh) if cities_zh else "")
        place_en = (_join_en(cities_en) + ", " if cities_en else "") + where["abroad_en"][0]
    else:
        place_zh, place_en = "、".join(cities_zh), _join_en(cities_en) if cities_en else ""
    zh = f"{when_zh} {place_zh}".strip()
    en = f"{place_en}, {when_en}" if place_en else when_en
    return zh, en

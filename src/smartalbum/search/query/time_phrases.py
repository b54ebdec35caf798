"""Finding time phrases in a question, in Chinese or English, and what each one filters.

`find_time(work, today)` returns every time phrase (the longest where they overlap), with ranges joined
('2019年到2021年') and the words around them applied ('since 2020', '2018年以前'). What the words mean as
dates lives in `dates`.

Conventions (what the ambiguous phrases mean here):
- All ranges are inclusive calendar days. Weeks start on Monday. "this week/本周" is Monday..Sunday.
- Seasons (northern hemisphere): spring Mar-May, summer Jun-Aug, autumn Sep-Nov, winter Dec-Feb. Winter Y runs
  from 1 Dec Y to the end of Feb Y+1, so "去年冬天" asked in 2025 is 2024-12-01..2025-02-28.
- "去年夏天" is the summer of the previous calendar year; English "last summer" is the most recent summer that
  has ended ("this summer" is the one containing today, or this calendar year's).
- "last week/上周" is the previous calendar week; "past week/过去一周/last 7 days" are the 7 days ending
  today; "recently/最近" is the 30 days ending today.
- "N days ago" is that day; "N weeks ago" ±3 days, "N months ago" ±15 days, "N years ago" ±6 months around it;
  "a few days ago/前几天" is the 7 days before today.
- A month without a year ("七月", "in July") or a bare season ("夏天") is a recurring month filter (`months`);
  a month and day without a year ("7月12日", "July 4th") is its most recent occurrence. "去年的今天" is one
  day; 年初 is Jan-Feb, 年底 Dec, 上半年 Jan-Jun; "early/mid/late 2019" are Jan-Apr, May-Aug, Sep-Dec.
- Festivals without a year are their most recent occurrence; 春节 is New Year's Eve..day 6 (table 2000-2035),
  国庆 1-7 Oct, 元旦 1-3 Jan, 圣诞 24-26 Dec. "前后/around" is ±7 days around a festival's day; around
  anything else it widens by 7 days (up to a month long), 30 days (up to 4 months) or a calendar year.
- "from 2019" is 2019 ("from" alone only says where the phrase starts); "since 2020/2020年以来" is
  open-ended (date_to None); "after 2020/2020年以后" starts 2021-01-01; "before 2018/2018年以前" ends
  2017-12-31; "until 2018" ends 2018-12-31. Several time phrases combine to the range covering them all.
- Invalid dates degrade to what is valid: "2019年2月30日" is February 2019, "2019年13月" is 2019.
- A year written as four digits and nothing else is a year only in a year-like context: a word before it
  (in, during, from, since, after, before, until, till, through, circa, around, between, prior to, starting,
  taken, shot, captured, "photos (of)", 在/于/从/自), a word after it ("photos", 拍, 的照片, a Chinese season,
  month or festival, 以来/以后/前后..., "onwards"), the other end of a range of years ("2019-2021",
  "2019 to 2021", "2019到2021"), or a question that is only the year. Otherwise ("Windows 2000", "1984 book
  cover", "iPhone 2020 case") it stays search text, and so does an amount ("2000元", "from 2000 feet").
  Such a year after today's year is never a filter, whatever its context ("in 2048", "2048 game"): no photo
  was taken then, and the number is more likely a name. A year made explicit by 年 ("2030年"), a month,
  a season or a festival ("July 2019", "2019 summer", "Christmas 2019") or a numeric date ("2019-07") counts
  as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from smartalbum.search.query.common import LOOKBACK, alternation
from smartalbum.search.query.dates import (
    DECADE_WORDS,
    FESTIVAL_WORDS_EN,
    FESTIVAL_WORDS_ZH,
    FIRST_PHOTO,
    FIXED_EN,
    FIXED_ZH,
    MONTH_NAMES,
    SEASON_MONTHS,
    SEASON_WORDS,
    UNITS,
    YEAR_PARTS_EN,
    YEAR_PARTS_ZH,
    YEAR_WORDS_ZH,
    TimeValue,
    ago_value,
    apply_modifier,
    festival_latest,
    festival_value,
    fuzzy_ago_value,
    month_value,
    months_value,
    past_value,
    recent_month_day,
    season_relative,
    season_value,
    year_part_value,
    year_value,
    ymd_value,
)
from smartalbum.search.query.numbers import CN_NUM_CHARS, EN_NUMBERS, FUZZY_COUNTS, chinese_to_int, count

__all__ = ["TimeHit", "find_time"]


@dataclass(frozen=True)
class TimeHit:
    """One time phrase: where it is in the text and what it means."""

    start: int
    end: int
    value: TimeValue


_TimeHandler = Callable[[re.Match[str], date], "TimeValue | None"]

# ------------------------------------------------------------------------------------ pattern pieces

_YEAR4 = r"(?:19|20)\d{2}"
_YEAR4_CN = r"[一二][〇零一二三四五六七八九]{3}"
_MONTH_ZH = r"(?:\d{1,2}|十[一二]?|[一二三四五六七八九])"
_DAY_ZH = r"(?:\d{1,2}|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"
_SEASON_ZH = alternation([w for w in SEASON_WORDS if not w.isascii()])
_SEASON_EN = alternation([w for w in SEASON_WORDS if w.isascii()])
_MONTH_EN = alternation(MONTH_NAMES, latin=True)
_BARE_MONTH_EN = alternation([m for m in MONTH_NAMES if len(m) > 4 or m in ("june", "july")])  # no 'may'
_NUM_EN = (
    r"(?:\d{1,3}|"
    + alternation([*EN_NUMBERS, "few", "several", "a few", "a couple of", "couple of"], latin=True)
    + ")"
)
_UNIT_EN = r"(?P<u>day|week|month|year)s?"
_ORD = r"(?:st|nd|rd|th)?"


# ------------------------------------------------------------------------------------------- handlers


def _zh_year(match: re.Match[str], today: date) -> int | None:
    if match["yr"]:
        return today.year + YEAR_WORDS_ZH[match["yr"]]
    digits = match["yn"]
    year = chinese_to_int(digits, positional=True)
    if year is not None and len(digits) == 2:  # '19年' → 2019, '98年' → 1998
        year += 2000 if 2000 + year <= today.year else 1900
    return year


def _year_part_en(match: re.Match[str], today: date) -> TimeValue | None:
    part = " ".join(match["p"].lower().replace("the ", "").split())
    return year_part_value(int(match["y"]), YEAR_PARTS_EN[part])


def _zh_absolute(match: re.Match[str], today: date) -> TimeValue | None:
    year = _zh_year(match, today)
    if year is None:
        return None
    if match["fest"]:
        return festival_value(FESTIVAL_WORDS_ZH[match["fest"]], year)
    if match["part"]:
        return year_part_value(year, YEAR_PARTS_ZH[match["part"]])
    if match["season"]:
        return season_value(SEASON_WORDS[match["season"].lower()], year)
    if match["m"]:
        return ymd_value(year, chinese_to_int(match["m"]), chinese_to_int(match["d"]) if match["d"] else None)
    return year_value(year)


def _zh_month(match: re.Match[str], today: date) -> TimeValue | None:
    month = chinese_to_int(match["m"])
    if month is None or not 1 <= month <= 12:
        return None
    day = chinese_to_int(match["d"]) if match["d"] else None
    if day is None:
        return months_value(month)
    return recent_month_day(month, day, today) if 1 <= day <= 31 else months_value(month)


def _numeric_date(match: re.Match[str], today: date) -> TimeValue | None:
    month = int(match["m"])
    return ymd_value(int(match["y"]), month, int(match["d"]) if match["d"] else None)


def _decade(match: re.Match[str], today: date) -> TimeValue | None:
    text = next(g for g in match.groups() if g)
    if text.lower() in DECADE_WORDS:
        start = DECADE_WORDS[text.lower()]
    else:
        number = chinese_to_int(text, positional=True) or chinese_to_int(text)
        if number is None or number % 10:
            return None
        start = number if number >= 100 else number + (2000 if 2000 + number <= today.year else 1900)
    return TimeValue(date(start, 1, 1), date(start + 9, 12, 31))


def _ago(match: re.Match[str], today: date) -> TimeValue | None:
    unit = UNITS[match["u"].lower()]
    if match["n"].lower().split()[-1] in FUZZY_COUNTS:
        return fuzzy_ago_value(unit, today)
    amount = count(match["n"])
    return ago_value(amount, unit, today) if amount else None


def _past(match: re.Match[str], today: date) -> TimeValue | None:
    unit = UNITS[match["u"].lower()]
    number = match.groupdict().get("n")
    if number and number.lower().split()[-1] in FUZZY_COUNTS:
        return past_value(7 if unit == "day" else 3, unit, today)
    amount = count(number)
    return past_value(amount, unit, today) if amount else None


def _fixed(table: Mapping[str, Callable[[date], tuple[date, date]]]) -> _TimeHandler:
    def handle(match: re.Match[str], today: date) -> TimeValue | None:
        key = " ".join(match.group(0).lower().replace("’", "'").split())
        return TimeValue(*table[key](today))

    return handle


def _festival_zh(match: re.Match[str], today: date) -> TimeValue | None:
    return festival_latest(FESTIVAL_WORDS_ZH[match["fest"]], today, ended=False)


def _festival_en(match: re.Match[str], today: date) -> TimeValue | None:
    name = FESTIVAL_WORDS_EN[" ".join(match["fest"].lower().replace("’", "'").split())]
    year, qualifier = match["y"], (match.groupdict().get("q") or "").lower()
    if year:
        return festival_value(name, int(year))
    if qualifier == "this":
        return festival_value(name, today.year)
    return festival_latest(name, today, ended=bool(qualifier))


def _season_zh(match: re.Match[str], today: date) -> TimeValue | None:
    months = SEASON_MONTHS[SEASON_WORDS[match.group(0)]]
    return TimeValue(months=tuple(sorted(months)))


def _season_en(match: re.Match[str], today: date) -> TimeValue | None:
    season = SEASON_WORDS[match["s"].lower()]
    if match.groupdict().get("y"):
        return season_value(season, int(match["y"]))
    if match.groupdict().get("q"):
        return season_relative(season, "this" if match["q"].lower() == "this" else "last", today)
    return TimeValue(months=tuple(sorted(SEASON_MONTHS[season])))


def _month_en(match: re.Match[str], today: date) -> TimeValue | None:
    month = MONTH_NAMES[match["m"].lower()]
    groups = match.groupdict()
    day = int(groups["d"]) if groups.get("d") else None
    if groups.get("y"):
        return ymd_value(int(groups["y"]), month, day)
    if day is not None:
        return recent_month_day(month, day, today) if 1 <= day <= 31 else months_value(month)
    qualifier = (groups.get("q") or "").lower()
    if qualifier == "this":
        return month_value(today.year, month)
    if qualifier == "last":  # the latest such month before the current one
        return month_value(today.year if month < today.month else today.year - 1, month)
    return months_value(month)


def _bare_year(match: re.Match[str], today: date) -> TimeValue | None:
    """A year written as four digits alone: only in a year-like context, and never after today's year."""
    year = int(match["y"])
    if year > today.year or not _year_context(match.string, match.start(), match.end(), today):
        return None
    return year_value(year)


def _year_context(work: str, start: int, end: int, today: date) -> bool:
    """Whether the words around the number at work[start:end] say it is a year (see the docstring)."""
    window = max(0, start - LOOKBACK)
    if _YEAR_BEFORE.search(work, window, start):
        return True
    if _YEAR_AFTER.match(work, end) or _SUFFIX_ZH.match(work, end) or _SUFFIX_EN.match(work, end):
        return True
    other = _YEAR_RANGE_BEFORE.search(work, window, start) or _YEAR_RANGE_AFTER.match(work, end)
    if other:  # '2019-2021', 'between 2019 and 2021': the other end must be a year too
        return int(other["y"] or other["b"]) <= today.year
    return not work[:start].strip(_QUIET) and not work[end:].strip(_QUIET)  # the question is the year


# ------------------------------------------------------------------------------------ a bare year's context

# A four-digit number followed by one of these is an amount ('2000元', '2000 feet'), not a year.
_NOT_YEAR_UNITS = (
    r"\s*(?:元|块|米|个|张|人|次|公里|千米|克|斤|号|楼|路)"
    r"|\s*(?:feet|foot|ft|m|meters?|metres?|km|miles?|kg|lbs?|pounds?|dollars?|yuan|rmb|usd|euros?|px|"
    r"pixels?|mah|mm|cm|w|watts?|mb|gb|kcal|calories|steps|people|persons?|words|points)\b"
)
# Words before a number that make it a year: 'in 2019', 'photos from 2019', 'taken 2019', '在2019'.
_YEAR_BEFORE = re.compile(
    r"(?:\b(?:in|during|from|since|after|before|until|till|through|circa|around|between|prior\s+to|"
    r"starting(?:\s+(?:in|from))?|taken|shot|captured|(?:photo|picture|pic|image|snapshot)s?(?:\s+of)?)\s+"
    r"|(?:自从|自|从|在|于)\s*)$",
    re.IGNORECASE,
)
# Words after it that do the same: '2019 photos', '2019拍的', '2019的照片', '2019的夏天' (with the suffixes
# that modify a time phrase: '2019以来', '2019 onwards').
_YEAR_AFTER = re.compile(
    rf"\s*(?:的\s*)?(?:拍|照片|相片|图片|图像|{_SEASON_ZH}|{_MONTH_ZH}\s*月|{alternation(FESTIVAL_WORDS_ZH)})"
    r"|\s+(?:photo|picture|pic|image|snapshot)s?\b",
    re.IGNORECASE,
)
_YEAR_JOIN = r"\s*(?:-|–|—|~|～|到|至|\b(?:to|until|till|through|thru)\b)\s*"
_YEAR_RANGE_BEFORE = re.compile(
    rf"(?:(?<![\d.])(?P<y>{_YEAR4}){_YEAR_JOIN}|\bbetween\s+(?P<b>{_YEAR4})\s+and\s+)$",
    re.IGNORECASE,
)
_YEAR_RANGE_AFTER = re.compile(rf"{_YEAR_JOIN}(?P<y>{_YEAR4})(?!\d)", re.IGNORECASE)
_QUIET = " \t\x00,.;:!?，。！？；：、…'\"“”‘’"  # what may surround a question that is only a year


# ---------------------------------------------------------------------------------------------- rules


def _rule(pattern: str, handler: _TimeHandler) -> tuple[re.Pattern[str], _TimeHandler]:
    return re.compile(pattern, re.IGNORECASE), handler


# '圣诞树', 'christmas tree', 'halloween costume' are things in the photo, not when it was taken.
_FEST_THING_ZH = r"(?!树|老人|帽|装饰|礼物|袜|贺卡|歌|南瓜|服装|装扮|面具|糖果)"
_FEST_THING_EN = (
    r"(?!\s+(?:trees?|lights?|decorations?|ornaments?|cards?|markets?|sweaters?|hats?|stockings?|"
    r"costumes?|pumpkins?|candy|masks?)\b)"
)
_YEAR_PART_ZH = rf"(?:(?<!\d)(?P<yn>{_YEAR4}|{_YEAR4_CN}|\d{{2}})\s*年|(?P<yr>{alternation(YEAR_WORDS_ZH)}))"
_TIME_RULES: list[tuple[re.Pattern[str], _TimeHandler]] = [
    # Chinese: 2019年 / 去年7月12日 / 前年春节 / 去年夏天 / 二〇一九年十二月 (an English season too)
    _rule(
        _YEAR_PART_ZH + r"(?:\s*的)?\s*(?:"
        rf"(?P<m>{_MONTH_ZH})\s*月份?(?:\s*(?P<d>{_DAY_ZH})\s*[日号])?"
        rf"|(?P<part>{alternation(YEAR_PARTS_ZH)})"
        rf"|(?P<season>{_SEASON_ZH}|{_SEASON_EN})"
        rf"|(?P<fest>{alternation(FESTIVAL_WORDS_ZH)}){_FEST_THING_ZH})?",
        _zh_absolute,
    ),
    _rule(rf"(?<![\d{CN_NUM_CHARS}])(?P<m>{_MONTH_ZH})\s*月份?(?:\s*(?P<d>{_DAY_ZH})\s*[日号])?", _zh_month),
    _rule(_SEASON_ZH, _season_zh),
    _rule(rf"(?P<fest>{alternation(FESTIVAL_WORDS_ZH)}){_FEST_THING_ZH}", _festival_zh),
    _rule(alternation(FIXED_ZH), _fixed(FIXED_ZH)),
    _rule(
        rf"(?<![\d{CN_NUM_CHARS}])(?P<n>\d{{1,3}}|[{CN_NUM_CHARS}]{{1,5}}|几)\s*个?\s*"
        r"(?P<u>天|日|周|星期|礼拜|月|年)\s*以?前(?!后)",
        _ago,
    ),
    _rule(
        rf"(?:过去|最近|近)(?:的)?\s*(?P<n>\d{{1,3}}|[{CN_NUM_CHARS}]{{1,4}}|几)\s*个?\s*"
        r"(?P<u>天|日|周|星期|礼拜|月|年)(?:内|以来|里|来)?",
        _past,
    ),
    _rule(
        rf"(?<!\d)(?P<d>\d{{2}}|\d{{4}}|[〇零一二三四五六七八九]十|[〇零一二三四五六七八九]{{2}}|{_YEAR4_CN})年代",
        _decade,
    ),
    # numbers: 2019-07-12, 2019/7/12, 2019.7, 2019-07, and a bare 2019 (not a price, size or time)
    _rule(
        rf"(?<![\d.])(?P<y>{_YEAR4})(?P<sep>[-./])(?P<m>\d{{1,2}})(?:(?P=sep)(?P<d>\d{{1,2}}))?(?!\d)"
        r"(?:\s*[日号])?",
        _numeric_date,
    ),
    _rule(rf"(?<![\dA-Za-z.:/$¥€£#])(?P<y>{_YEAR4})(?![\d:%A-Za-z]|{_NOT_YEAR_UNITS})", _bare_year),
    # English
    _rule(rf"\b(?:{alternation(FIXED_EN, latin=True)})\b", _fixed(FIXED_EN)),
    _rule(rf"\b(?P<n>{_NUM_EN})\s+{_UNIT_EN}\s+ago\b", _ago),
    _rule(rf"\b(?:in\s+)?(?:the\s+)?(?:past|last|previous)\s+(?P<n>{_NUM_EN})\s+{_UNIT_EN}\b", _past),
    _rule(rf"\b(?:in\s+)?(?:the\s+(?:past|last)|past)\s+{_UNIT_EN}\b", _past),
    _rule(
        rf"\bthe\s+(?:['’]?(?P<a>\d0)|(?P<c>(?:19|20)\d0))['’]?s\b|(?<![\w'’])['’](?P<b>\d0)['’]?s\b"
        rf"|\b(?P<e>(?:19|20)\d0)['’]?s\b|\b(?:the\s+)?(?P<w>{alternation(DECADE_WORDS)})\b",
        _decade,
    ),
    _rule(
        rf"\b(?:(?P<q>last|this|past)\s+)?(?P<fest>{alternation(FESTIVAL_WORDS_EN, latin=True)})"
        rf"(?:\s+(?:of\s+)?(?P<y>{_YEAR4}))?\b{_FEST_THING_EN}",
        _festival_en,
    ),
    _rule(
        rf"\b(?P<y>{_YEAR4})\s+(?P<fest>{alternation(FESTIVAL_WORDS_EN, latin=True)})\b{_FEST_THING_EN}",
        _festival_en,
    ),
    _rule(rf"\b(?P<q>last|this|past)\s+(?P<s>{_SEASON_EN})\b", _season_en),
    _rule(rf"\b(?:the\s+)?(?P<s>{_SEASON_EN})\s+(?:of\s+)?(?P<y>{_YEAR4})\b", _season_en),
    _rule(rf"\b(?P<y>{_YEAR4})\s+(?P<s>{_SEASON_EN})\b", _season_en),
    _rule(
        rf"\b(?:the\s+)?(?P<p>{alternation(YEAR_PARTS_EN, latin=True)})[-\s]+(?P<y>{_YEAR4})\b",
        _year_part_en,
    ),
    _rule(rf"\b(?:in|during)\s+(?:the\s+)?(?P<s>{_SEASON_EN})\b", _season_en),
    _rule(rf"\b(?P<m>{_MONTH_EN})\.?\s+(?P<d>\d{{1,2}}){_ORD},?\s+(?P<y>{_YEAR4})\b", _month_en),
    _rule(rf"\b(?P<d>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<m>{_MONTH_EN})\.?,?\s+(?P<y>{_YEAR4})\b", _month_en),
    _rule(rf"\b(?P<m>{_MONTH_EN})\.?,?\s+(?:of\s+)?(?P<y>{_YEAR4})\b", _month_en),
    _rule(rf"\b(?P<y>{_YEAR4})\s+(?P<m>{_MONTH_EN})\b", _month_en),
    _rule(rf"\b(?P<m>{_MONTH_EN})\.?\s+(?P<d>\d{{1,2}}){_ORD}\b(?![:.]\d)", _month_en),
    _rule(rf"\b(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}\s+of\s+(?P<m>{_MONTH_EN})\b", _month_en),
    _rule(rf"\b(?P<q>last|this)\s+(?P<m>{_MONTH_EN})\b", _month_en),
    _rule(rf"\b(?:in|during)\s+(?P<m>{_MONTH_EN})\b", _month_en),
    _rule(rf"\b(?P<m>{_BARE_MONTH_EN})\b", _month_en),
]

# ------------------------------------------------------------------------------ modifiers and ranges

# Words around a time phrase that change it ('since 2020', '2018年以前') or only belong to it ('in', '期间').
_PREFIX_EN = re.compile(
    r"\b(?P<w>since|after|before|until|till|from|around|about|circa|approximately|roughly|prior\s+to|"
    r"starting(?:\s+(?:in|from))?|during|in|on|of|at)\s+$",
    re.IGNORECASE,
)
_PREFIX_ZH = re.compile(r"(?P<w>自从|自|从|在|于)\s*$")
_SUFFIX_EN = re.compile(
    r"\s+(?P<w>onwards?|and\s+later|or\s+later|and\s+before|or\s+earlier|or\s+so)\b", re.IGNORECASE
)
_SUFFIX_ZH = re.compile(
    r"\s*(?P<w>以来|以后|之后|以前|之前|前后|左右|期间|之间|起|开始|的时候|时|前(?=$|[\s的拍照，,。\x00])"
    r"|后(?=$|[\s的拍照，,。\x00]))"
)
# 'from', '从', '自' alone are neutral: 'photos from last year' were taken last year, not since then.
_MODIFIERS = {
    "since": "since", "starting": "since", "starting in": "since", "starting from": "since",
    "onward": "since", "onwards": "since", "and later": "since", "or later": "since", "以来": "since",
    "起": "since", "开始": "since", "自从": "since",
    "after": "after", "以后": "after", "之后": "after", "后": "after",
    "before": "before", "prior to": "before", "以前": "before", "之前": "before", "前": "before",
    "until": "until", "till": "until", "or earlier": "until", "and before": "until",
    "around": "around", "about": "around", "circa": "around", "approximately": "around", "roughly": "around",
    "or so": "around", "前后": "around", "左右": "around",
}  # fmt: skip
_RANGE_START = re.compile(r"(?:\b(?P<w>from|between)\s+|(?P<z>从|自))$", re.IGNORECASE)
_RANGE_JOIN = re.compile(r"^\s*(?:到|至|~|～|-|–|—|to|until|till|through|thru|and)\s*$", re.IGNORECASE)


def find_time(work: str, today: date) -> list[TimeHit]:
    """Every time phrase (the longest where they overlap), joined ('A 到 B') and modified ('since A')."""
    candidates: list[TimeHit] = []
    for pattern, handler in _TIME_RULES:
        for match in pattern.finditer(work):
            if match.end() == match.start():
                continue
            try:
                value = handler(match, today)
            except (ValueError, OverflowError):  # a date outside what `date` can hold: not a filter
                value = None
            if value is not None and not any(d and d < FIRST_PHOTO for d in (value.date_from, value.date_to)):
                candidates.append(TimeHit(match.start(), match.end(), value))
    chosen: list[TimeHit] = []
    taken = bytearray(len(work))
    for hit in sorted(candidates, key=lambda h: (h.start - h.end, h.start)):
        if not any(taken[hit.start : hit.end]):
            chosen.append(hit)
            taken[hit.start : hit.end] = b"\x01" * (hit.end - hit.start)
    chosen.sort(key=lambda h: h.start)
    return [_modify(hit, work) for hit in _join_ranges(chosen, work)]


def _join(first: TimeValue, second: TimeValue) -> TimeValue | None:
    if second.month is not None and first.year is not None and second.date_from is None:
        second = month_value(first.year, second.month)  # '2019年7月到9月': 9月 borrows 2019
    if first.month is not None and second.month is not None and first.date_from is None:
        steps = (second.month - first.month) % 12  # '11月到2月' wraps over the new year
        return TimeValue(months=tuple(sorted((first.month - 1 + i) % 12 + 1 for i in range(steps + 1))))
    a_from, a_to, b_from, b_to = first.date_from, first.date_to, second.date_from, second.date_to
    if a_from is None or a_to is None or b_from is None or b_to is None:
        return None
    return TimeValue(min(a_from, b_from), max(a_to, b_to))


def _join_ranges(hits: list[TimeHit], work: str) -> list[TimeHit]:
    """'2019年到2021年', 'from 2019 to 2021', 'between 2019 and 2021', '2019-2021' → one range."""
    result: list[TimeHit] = []
    index = 0
    while index < len(hits):
        hit = hits[index]
        if index + 1 < len(hits):
            after = hits[index + 1]
            gap = work[hit.end : after.start]
            opener = _RANGE_START.search(work, max(0, hit.start - LOOKBACK), hit.start)
            is_between = bool(opener and (opener["w"] or "").lower() == "between")
            joined = _join(hit.value, after.value) if _RANGE_JOIN.match(gap) else None
            if joined and (gap.strip().lower() != "and" or is_between):
                start = opener.start() if opener else hit.start
                result.append(TimeHit(start, after.end, joined))
                index += 2
                continue
        result.append(hit)
        index += 1
    return result


def _modify(hit: TimeHit, work: str) -> TimeHit:
    """Consume the words before and after a time phrase; 'since', 'before', '前后'... also change it."""
    start, end, value = hit.start, hit.end, hit.value
    applied = None
    suffix = _SUFFIX_ZH.match(work, end) or _SUFFIX_EN.match(work, end)  # match() anchors at `end`
    if suffix:
        applied = _MODIFIERS.get(" ".join(suffix["w"].lower().split()))
        changed = apply_modifier(value, applied) if applied else value
        if changed is not None:
            value, end = changed, suffix.end()
    window = max(0, start - LOOKBACK)
    prefix = _PREFIX_EN.search(work, window, start) or _PREFIX_ZH.search(work, window, start)
    if prefix:
        modifier = _MODIFIERS.get(" ".join(prefix["w"].lower().split()))
        changed = apply_modifier(value, modifier) if modifier and modifier != applied else value
        if changed is not None:  # 'since 2020 onwards' says it twice: consume both, apply once
            value, start = changed, prefix.start()
    return TimeHit(start, end, value)

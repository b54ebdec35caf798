"""Query understanding: pull time, place and negation out of a question, in Chinese or English.

`parse_query("去年夏天在青岛拍的海边照片", today=..., places=...)` returns the hard filters (a date range,
recurring months, one place, excluded concepts) and the text left for semantic and full-text search.
Pure Python, no segmenter: every recognised phrase comes from a table of patterns below.

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
- Places: the longest known surface form wins (one with a marker such as 在/in/at first); Latin names match
  case-insensitively on word boundaries ("Paris" not in "Parisian"), Latin names of 3 letters or fewer only
  in capitals ("US", never "us"), a few that are common English words only capitalised ("Nice", "Reading");
  one-character Chinese names are ignored, and a Chinese name followed by 菜/料理/啤酒/... is not a place.
- Only the first MAX_QUERY_CHARS characters are parsed; `understood` says so.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

__all__ = [
    "MAX_QUERY_CHARS",
    "ParsedQuery",
    "PlaceMatcher",
    "chinese_new_year",
    "chinese_to_int",
    "parse_query",
]

MAX_QUERY_CHARS = 1000
_GONE = "\x00"  # consumed characters are overwritten with this, so offsets stay valid and later patterns stop
_LOOKBACK = 32  # how far back markers ('since', 'between', '在') are looked for: keeps the work linear
_FIRST_PHOTO = date(1826, 1, 1)  # nothing was photographed earlier: '999年前' is not a filter


@dataclass(frozen=True)
class ParsedQuery:
    """What a search question asks for: hard filters plus the text left for semantic search."""

    text: str
    semantic: str
    date_from: date | None = None
    date_to: date | None = None
    months: tuple[int, ...] = ()
    place: str | None = None
    place_text: str | None = None
    exclude: tuple[str, ...] = ()
    understood: list[str] = field(default_factory=list)
    language: str = "en"  # 'zh' or 'en': the language `understood` is written in

    @property
    def has_filters(self) -> bool:
        return bool(self.date_from or self.date_to or self.months or self.place or self.exclude)


# --------------------------------------------------------------------------------------------- numbers

_CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
_FUZZY_COUNTS = ("few", "several", "几")  # "a few days ago": a window, not a count


def chinese_to_int(text: str, *, positional: bool = False) -> int | None:
    """Read '12', '十二', '二十三', '一百零五' (positional=True: '二〇一九', '九零'); None if not a number.

    Without positional, digits in a row are refused: '五六年前' means "five or six years ago", not 56.
    """
    text = text.strip()
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    if text and all(c in _CN_DIGITS for c in text):
        if len(text) == 1 or positional:
            return int("".join(str(_CN_DIGITS[c]) for c in text))
        return None
    total, current = 0, 0
    for char in text:
        if char in _CN_DIGITS:
            if current:
                return None
            current = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[char]
            current = 0
        else:
            return None
    return total + current if text else None


def _count(text: str | None) -> int | None:
    """A count in digits, Chinese or English words ('3', '三', 'three', 'a couple of')."""
    if text is None:
        return 1
    word = " ".join(text.lower().split())
    if word in _EN_NUMBERS:
        return _EN_NUMBERS[word]
    if word in ("couple", "couple of", "a couple of"):
        return 2
    return chinese_to_int(word)


# ------------------------------------------------------------------------------------------ date helpers


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> date:
    """Shift by whole months, clamping the day (31 Mar - 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _shift(day: date, unit: str, amount: int) -> date:
    if unit == "day":
        return day + timedelta(days=amount)
    if unit == "week":
        return day + timedelta(weeks=amount)
    return _add_months(day, amount * (12 if unit == "year" else 1))


_UNITS = {
    "天": "day", "日": "day", "周": "week", "星期": "week", "礼拜": "week", "月": "month", "年": "year",
    "day": "day", "week": "week", "month": "month", "year": "year",
}  # fmt: skip

_CNY = {  # Chinese New Year's day (first day of the lunar year), 2000-2035
    2000: (2, 5), 2001: (1, 24), 2002: (2, 12), 2003: (2, 1), 2004: (1, 22), 2005: (2, 9), 2006: (1, 29),
    2007: (2, 18), 2008: (2, 7), 2009: (1, 26), 2010: (2, 14), 2011: (2, 3), 2012: (1, 23), 2013: (2, 10),
    2014: (1, 31), 2015: (2, 19), 2016: (2, 8), 2017: (1, 28), 2018: (2, 16), 2019: (2, 5), 2020: (1, 25),
    2021: (2, 12), 2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29), 2026: (2, 17), 2027: (2, 6),
    2028: (1, 26), 2029: (2, 13), 2030: (2, 3), 2031: (1, 23), 2032: (2, 11), 2033: (1, 31), 2034: (2, 19),
    2035: (2, 8),
}  # fmt: skip


def chinese_new_year(year: int) -> date | None:
    """The first day of the lunar year, or None outside the table (2000-2035)."""
    month_day = _CNY.get(year)
    return date(year, *month_day) if month_day else None


# ---------------------------------------------------------------------------------------- time values


@dataclass(frozen=True)
class _TimeValue:
    date_from: date | None = None
    date_to: date | None = None
    months: tuple[int, ...] = ()
    year: int | None = None  # an explicit year, lent to a following lone month: "2019年7月到9月"
    month: int | None = None  # a lone recurring month, which can borrow that year
    anchor: date | None = None  # a festival's day: "前后" is ± a week around it


@dataclass(frozen=True)
class _TimeHit:
    start: int
    end: int
    value: _TimeValue


def _year_value(year: int) -> _TimeValue:
    return _TimeValue(date(year, 1, 1), date(year, 12, 31), year=year)


def _month_value(year: int, month: int) -> _TimeValue:
    return _TimeValue(date(year, month, 1), _month_end(year, month), year=year)


def _ymd_value(year: int, month: int | None, day: int | None) -> _TimeValue:
    """A year, month or day; an impossible month or day falls back to the enclosing valid period."""
    if month is None or not 1 <= month <= 12:
        return _year_value(year)
    if day is None or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return _month_value(year, month)
    return _TimeValue(date(year, month, day), date(year, month, day), year=year)


def _recent_month_day(month: int, day: int, today: date) -> _TimeValue:
    """'7月12日' / 'July 12' without a year: its most recent occurrence (Feb 29 looks back to a leap year)."""
    for year in range(today.year, today.year - 8, -1):
        if day <= calendar.monthrange(year, month)[1] and date(year, month, day) <= today:
            return _TimeValue(date(year, month, day), date(year, month, day))
    return _TimeValue(months=(month,), month=month)


def _months_value(month: int) -> _TimeValue:
    return _TimeValue(months=(month,), month=month)


_SEASON_MONTHS = {"spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11), "winter": (12, 1, 2)}
_SEASON_WORDS = {
    "春天": "spring", "春季": "spring", "夏天": "summer", "夏季": "summer",
    "秋天": "autumn", "秋季": "autumn", "冬天": "winter", "冬季": "winter",
    "spring": "spring", "summer": "summer", "autumn": "autumn", "fall": "autumn", "winter": "winter",
}  # fmt: skip


def _season_value(season: str, year: int) -> _TimeValue:
    if season == "winter":
        return _TimeValue(date(year, 12, 1), _month_end(year + 1, 2), year=year)
    first, _, last = _SEASON_MONTHS[season]
    return _TimeValue(date(year, first, 1), _month_end(year, last), year=year)


def _season_relative(season: str, qualifier: str, today: date) -> _TimeValue:
    """English 'last summer': the latest that has ended; 'this winter': today's, else this calendar year's."""
    candidates = [_season_value(season, year) for year in range(today.year, today.year - 3, -1)]
    if qualifier == "this":
        current = [v for v in candidates if v.date_from and v.date_to and v.date_from <= today <= v.date_to]
        return current[0] if current else candidates[0]
    return next(v for v in candidates if v.date_to and v.date_to < today)


@dataclass(frozen=True)
class _Festival:
    anchor: Callable[[int], date | None]
    before: int  # days included before the anchor day (negative: starts after it)
    after: int


def _on(month: int, day: int) -> Callable[[int], date | None]:
    return lambda year: date(year, month, day)


_FESTIVALS = {
    "cny": _Festival(chinese_new_year, 1, 6),  # 除夕 to the 6th day: the public holiday
    "cny_eve": _Festival(chinese_new_year, 1, -1),
    "national_day": _Festival(_on(10, 1), 0, 6),
    "new_year": _Festival(_on(1, 1), 0, 2),  # 元旦假期
    "new_years_day": _Festival(_on(1, 1), 0, 0),
    "new_years_eve": _Festival(_on(12, 31), 0, 0),
    "christmas": _Festival(_on(12, 25), 1, 1),
    "christmas_eve": _Festival(_on(12, 24), 0, 0),
    "valentine": _Festival(_on(2, 14), 0, 0),
    "halloween": _Festival(_on(10, 31), 0, 0),
}
_FESTIVAL_WORDS_ZH = {
    "春节": "cny", "过年": "cny", "农历新年": "cny", "除夕": "cny_eve", "大年三十": "cny_eve",
    "国庆节": "national_day", "国庆": "national_day", "十一黄金周": "national_day",
    "十一假期": "national_day", "十一长假": "national_day", "元旦": "new_year",
    "圣诞节": "christmas", "圣诞": "christmas", "平安夜": "christmas_eve", "情人节": "valentine",
    "万圣节": "halloween",
}  # fmt: skip
_FESTIVAL_WORDS_EN = {
    "chinese new year": "cny", "lunar new year": "cny", "spring festival": "cny",
    "christmas eve": "christmas_eve", "christmas": "christmas", "xmas": "christmas",
    "new year's eve": "new_years_eve", "new years eve": "new_years_eve",
    "new year's day": "new_years_day", "new years day": "new_years_day",
    "new year": "new_years_day", "valentine's day": "valentine", "valentines day": "valentine",
    "halloween": "halloween",
}  # fmt: skip


def _festival_value(name: str, year: int) -> _TimeValue | None:
    festival = _FESTIVALS[name]
    anchor = festival.anchor(year)
    if anchor is None:
        return None
    start, end = anchor - timedelta(days=festival.before), anchor + timedelta(days=festival.after)
    return _TimeValue(start, end, year=year, anchor=anchor)


def _festival_latest(name: str, today: date, *, ended: bool) -> _TimeValue | None:
    """The most recent occurrence that has begun (or, for English 'last Christmas', that has ended)."""
    for year in (today.year, today.year - 1, today.year - 2):
        value = _festival_value(name, year)
        if value is None or value.date_from is None or value.date_to is None:
            continue
        if (value.date_to < today) if ended else (value.date_from <= today):
            return value
    return None


# ----------------------------------------------------------------------------------- relative phrases


def _days(offset: int) -> Callable[[date], tuple[date, date]]:
    return lambda t: (t + timedelta(days=offset), t + timedelta(days=offset))


def _week(offset: int) -> Callable[[date], tuple[date, date]]:
    def span(t: date) -> tuple[date, date]:
        monday = t - timedelta(days=t.weekday()) + timedelta(weeks=offset)
        return monday, monday + timedelta(days=6)

    return span


def _weekend(offset: int) -> Callable[[date], tuple[date, date]]:
    def span(t: date) -> tuple[date, date]:
        monday, sunday = _week(offset)(t)
        return monday + timedelta(days=5), sunday

    return span


def _month(offset: int) -> Callable[[date], tuple[date, date]]:
    def span(t: date) -> tuple[date, date]:
        first = _add_months(t.replace(day=1), offset)
        return first, _month_end(first.year, first.month)

    return span


def _year(offset: int) -> Callable[[date], tuple[date, date]]:
    return lambda t: (date(t.year + offset, 1, 1), date(t.year + offset, 12, 31))


def _last_days(count: int) -> Callable[[date], tuple[date, date]]:
    return lambda t: (t - timedelta(days=count - 1), t)


def _same_day(years: int) -> Callable[[date], tuple[date, date]]:
    """'去年的今天': the same calendar day N years back (29 Feb becomes 28 Feb)."""
    return lambda t: (_add_months(t, 12 * years), _add_months(t, 12 * years))


def _few_days_ago(t: date) -> tuple[date, date]:
    return t - timedelta(days=7), t - timedelta(days=1)


_FIXED_ZH: dict[str, Callable[[date], tuple[date, date]]] = {
    "今天": _days(0), "今日": _days(0), "昨天": _days(-1), "昨日": _days(-1), "前天": _days(-2),
    "大前天": _days(-3),
    "本周": _week(0), "这周": _week(0), "这个星期": _week(0), "这星期": _week(0), "本星期": _week(0),
    "这个礼拜": _week(0), "这礼拜": _week(0), "上周": _week(-1), "上个星期": _week(-1), "上星期": _week(-1),
    "上个礼拜": _week(-1), "上礼拜": _week(-1), "上上周": _week(-2), "上上个星期": _week(-2),
    "这周末": _weekend(0), "本周末": _weekend(0), "这个周末": _weekend(0), "上周末": _weekend(-1),
    "上个周末": _weekend(-1),
    "本月": _month(0), "这个月": _month(0), "这月": _month(0), "上个月": _month(-1), "上月": _month(-1),
    "上上个月": _month(-2),
    "最近": _last_days(30), "近期": _last_days(30), "近来": _last_days(30), "近日": _last_days(30),
    "这几天": _last_days(7), "最近几天": _last_days(7), "近几天": _last_days(7), "前几天": _few_days_ago,
    "去年的今天": _same_day(-1), "去年今天": _same_day(-1), "去年的今日": _same_day(-1),
    "前年的今天": _same_day(-2), "前年今天": _same_day(-2),
}  # fmt: skip
_FIXED_EN: dict[str, Callable[[date], tuple[date, date]]] = {
    "today": _days(0), "tonight": _days(0), "this morning": _days(0), "this afternoon": _days(0),
    "this evening": _days(0), "yesterday": _days(-1), "the day before yesterday": _days(-2),
    "day before yesterday": _days(-2),
    "this week": _week(0), "last week": _week(-1), "the week before last": _week(-2),
    "this weekend": _weekend(0), "last weekend": _weekend(-1),
    "this month": _month(0), "last month": _month(-1), "the month before last": _month(-2),
    "this year": _year(0), "last year": _year(-1), "the year before last": _year(-2),
    "recently": _last_days(30), "lately": _last_days(30), "recent": _last_days(30),
    "the other day": _few_days_ago, "a few days ago": _few_days_ago, "this day last year": _same_day(-1),
    "on this day last year": _same_day(-1), "a year ago today": _same_day(-1),
}  # fmt: skip


def _ago_value(amount: int, unit: str, today: date) -> _TimeValue:
    """'N units ago': a window around that point, wider for coarser units (see the module docstring)."""
    point = _shift(today, unit, -amount)
    if unit == "day":
        return _TimeValue(point, point)
    if unit == "year":
        return _TimeValue(_add_months(point, -6), min(_add_months(point, 6), today))
    half = 3 if unit == "week" else 15
    return _TimeValue(point - timedelta(days=half), min(point + timedelta(days=half), today))


def _fuzzy_ago_value(unit: str, today: date) -> _TimeValue:
    """'a few weeks ago', '几年前': from 7 units back to 1 unit back."""
    return _TimeValue(_shift(today, unit, -7), _shift(today, unit, -1))


def _past_value(amount: int, unit: str, today: date) -> _TimeValue:
    """'past N units', '过去N天': the N units ending today."""
    return _TimeValue(_shift(today, unit, -amount) + timedelta(days=1), today)


# -------------------------------------------------------------------------------------- the time rules

_TimeHandler = Callable[[re.Match[str], date], "_TimeValue | None"]


def _alternation(words: Iterable[str], *, latin: bool = False) -> str:
    """A regex alternation, longest first so '上上个月' beats '上个月'; Latin words allow any spacing."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = re.escape(word)
        parts.append(escaped.replace(r"\ ", r"\s+").replace("'", "['’]?") if latin else escaped)
    return "|".join(parts)


_CN_NUM_CHARS = "〇零一二两三四五六七八九十百千"
_YEAR4 = r"(?:19|20)\d{2}"
_YEAR4_CN = r"[一二][〇零一二三四五六七八九]{3}"
_MONTH_ZH = r"(?:\d{1,2}|十[一二]?|[一二三四五六七八九])"
_DAY_ZH = r"(?:\d{1,2}|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"
_YEAR_WORDS_ZH = {"大前年": -3, "前年": -2, "去年": -1, "今年": 0}
_SEASON_ZH = _alternation([w for w in _SEASON_WORDS if not w.isascii()])
_SEASON_EN = _alternation([w for w in _SEASON_WORDS if w.isascii()])
_MONTH_NAMES = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_EN = _alternation(_MONTH_NAMES, latin=True)
_BARE_MONTH_EN = _alternation([m for m in _MONTH_NAMES if len(m) > 4 or m in ("june", "july")])  # no 'may'
_NUM_EN = (
    r"(?:\d{1,3}|"
    + _alternation([*_EN_NUMBERS, "few", "several", "a few", "a couple of", "couple of"], latin=True)
    + ")"
)
_UNIT_EN = r"(?P<u>day|week|month|year)s?"
_ORD = r"(?:st|nd|rd|th)?"
_DECADE_WORDS = {"sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990}


def _zh_year(match: re.Match[str], today: date) -> int | None:
    if match["yr"]:
        return today.year + _YEAR_WORDS_ZH[match["yr"]]
    digits = match["yn"]
    year = chinese_to_int(digits, positional=True)
    if year is not None and len(digits) == 2:  # '19年' → 2019, '98年' → 1998
        year += 2000 if 2000 + year <= today.year else 1900
    return year


_YEAR_PARTS_ZH = {
    "年初": (1, 2), "年底": (12, 12), "年末": (12, 12), "年中": (6, 7), "上半年": (1, 6), "下半年": (7, 12),
}  # fmt: skip
_YEAR_PARTS_EN = {
    "early": (1, 4), "beginning of": (1, 2), "start of": (1, 2), "mid": (5, 8), "middle of": (5, 8),
    "late": (9, 12), "end of": (12, 12), "first half of": (1, 6), "second half of": (7, 12),
}  # fmt: skip


def _year_part_value(year: int, months: tuple[int, int]) -> _TimeValue:
    return _TimeValue(date(year, months[0], 1), _month_end(year, months[1]), year=year)


def _year_part_en(match: re.Match[str], today: date) -> _TimeValue | None:
    part = " ".join(match["p"].lower().replace("the ", "").split())
    return _year_part_value(int(match["y"]), _YEAR_PARTS_EN[part])


def _zh_absolute(match: re.Match[str], today: date) -> _TimeValue | None:
    year = _zh_year(match, today)
    if year is None:
        return None
    if match["fest"]:
        return _festival_value(_FESTIVAL_WORDS_ZH[match["fest"]], year)
    if match["part"]:
        return _year_part_value(year, _YEAR_PARTS_ZH[match["part"]])
    if match["season"]:
        return _season_value(_SEASON_WORDS[match["season"].lower()], year)
    if match["m"]:
        return _ymd_value(
            year, chinese_to_int(match["m"]), chinese_to_int(match["d"]) if match["d"] else None
        )
    return _year_value(year)


def _zh_month(match: re.Match[str], today: date) -> _TimeValue | None:
    month = chinese_to_int(match["m"])
    if month is None or not 1 <= month <= 12:
        return None
    day = chinese_to_int(match["d"]) if match["d"] else None
    if day is None:
        return _months_value(month)
    return _recent_month_day(month, day, today) if 1 <= day <= 31 else _months_value(month)


def _numeric_date(match: re.Match[str], today: date) -> _TimeValue | None:
    month = int(match["m"])
    return _ymd_value(int(match["y"]), month, int(match["d"]) if match["d"] else None)


def _decade(match: re.Match[str], today: date) -> _TimeValue | None:
    text = next(g for g in match.groups() if g)
    if text.lower() in _DECADE_WORDS:
        start = _DECADE_WORDS[text.lower()]
    else:
        number = chinese_to_int(text, positional=True) or chinese_to_int(text)
        if number is None or number % 10:
            return None
        start = number if number >= 100 else number + (2000 if 2000 + number <= today.year else 1900)
    return _TimeValue(date(start, 1, 1), date(start + 9, 12, 31))


def _ago(match: re.Match[str], today: date) -> _TimeValue | None:
    unit = _UNITS[match["u"].lower()]
    if match["n"].lower().split()[-1] in _FUZZY_COUNTS:
        return _fuzzy_ago_value(unit, today)
    amount = _count(match["n"])
    return _ago_value(amount, unit, today) if amount else None


def _past(match: re.Match[str], today: date) -> _TimeValue | None:
    unit = _UNITS[match["u"].lower()]
    number = match.groupdict().get("n")
    if number and number.lower().split()[-1] in _FUZZY_COUNTS:
        return _past_value(7 if unit == "day" else 3, unit, today)
    amount = _count(number)
    return _past_value(amount, unit, today) if amount else None


def _fixed(table: Mapping[str, Callable[[date], tuple[date, date]]]) -> _TimeHandler:
    def handle(match: re.Match[str], today: date) -> _TimeValue | None:
        key = " ".join(match.group(0).lower().replace("’", "'").split())
        return _TimeValue(*table[key](today))

    return handle


def _festival_zh(match: re.Match[str], today: date) -> _TimeValue | None:
    return _festival_latest(_FESTIVAL_WORDS_ZH[match["fest"]], today, ended=False)


def _festival_en(match: re.Match[str], today: date) -> _TimeValue | None:
    name = _FESTIVAL_WORDS_EN[" ".join(match["fest"].lower().replace("’", "'").split())]
    if match["y"]:
        return _festival_value(name, int(match["y"]))
    if match["q"] and match["q"].lower() == "this":
        return _festival_value(name, today.year)
    return _festival_latest(name, today, ended=bool(match["q"]))


def _season_zh(match: re.Match[str], today: date) -> _TimeValue | None:
    months = _SEASON_MONTHS[_SEASON_WORDS[match.group(0)]]
    return _TimeValue(months=tuple(sorted(months)))


def _season_en(match: re.Match[str], today: date) -> _TimeValue | None:
    season = _SEASON_WORDS[match["s"].lower()]
    if match.groupdict().get("y"):
        return _season_value(season, int(match["y"]))
    if match.groupdict().get("q"):
        return _season_relative(season, "this" if match["q"].lower() == "this" else "last", today)
    return _TimeValue(months=tuple(sorted(_SEASON_MONTHS[season])))


def _month_en(match: re.Match[str], today: date) -> _TimeValue | None:
    month = _MONTH_NAMES[match["m"].lower()]
    groups = match.groupdict()
    day = int(groups["d"]) if groups.get("d") else None
    if groups.get("y"):
        return _ymd_value(int(groups["y"]), month, day)
    if day is not None:
        return _recent_month_day(month, day, today) if 1 <= day <= 31 else _months_value(month)
    qualifier = (groups.get("q") or "").lower()
    if qualifier == "this":
        return _month_value(today.year, month)
    if qualifier == "last":  # the latest such month before the current one
        return _month_value(today.year if month < today.month else today.year - 1, month)
    return _months_value(month)


def _bare_year(match: re.Match[str], today: date) -> _TimeValue | None:
    return _year_value(int(match["y"]))


def _rule(pattern: str, handler: _TimeHandler) -> tuple[re.Pattern[str], _TimeHandler]:
    return re.compile(pattern, re.IGNORECASE), handler


# '圣诞树', 'christmas tree', 'halloween costume' are things in the photo, not when it was taken.
_FEST_THING_ZH = r"(?!树|老人|帽|装饰|礼物|袜|贺卡|歌|南瓜|服装|装扮|面具|糖果)"
_FEST_THING_EN = (
    r"(?!\s+(?:trees?|lights?|decorations?|ornaments?|cards?|markets?|sweaters?|hats?|stockings?|"
    r"costumes?|pumpkins?|candy|masks?)\b)"
)
_YEAR_PART_ZH = (
    rf"(?:(?<!\d)(?P<yn>{_YEAR4}|{_YEAR4_CN}|\d{{2}})\s*年|(?P<yr>{_alternation(_YEAR_WORDS_ZH)}))"
)
_TIME_RULES: list[tuple[re.Pattern[str], _TimeHandler]] = [
    # Chinese: 2019年 / 去年7月12日 / 前年春节 / 去年夏天 / 二〇一九年十二月 (an English season too)
    _rule(
        _YEAR_PART_ZH + r"(?:\s*的)?\s*(?:"
        rf"(?P<m>{_MONTH_ZH})\s*月份?(?:\s*(?P<d>{_DAY_ZH})\s*[日号])?"
        rf"|(?P<part>{_alternation(_YEAR_PARTS_ZH)})"
        rf"|(?P<season>{_SEASON_ZH}|{_SEASON_EN})"
        rf"|(?P<fest>{_alternation(_FESTIVAL_WORDS_ZH)}){_FEST_THING_ZH})?",
        _zh_absolute,
    ),
    _rule(rf"(?<![\d{_CN_NUM_CHARS}])(?P<m>{_MONTH_ZH})\s*月份?(?:\s*(?P<d>{_DAY_ZH})\s*[日号])?", _zh_month),
    _rule(_SEASON_ZH, _season_zh),
    _rule(rf"(?P<fest>{_alternation(_FESTIVAL_WORDS_ZH)}){_FEST_THING_ZH}", _festival_zh),
    _rule(_alternation(_FIXED_ZH), _fixed(_FIXED_ZH)),
    _rule(
        rf"(?<![\d{_CN_NUM_CHARS}])(?P<n>\d{{1,3}}|[{_CN_NUM_CHARS}]{{1,5}}|几)\s*个?\s*"
        r"(?P<u>天|日|周|星期|礼拜|月|年)\s*以?前(?!后)",
        _ago,
    ),
    _rule(
        rf"(?:过去|最近|近)(?:的)?\s*(?P<n>\d{{1,3}}|[{_CN_NUM_CHARS}]{{1,4}}|几)\s*个?\s*"
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
    _rule(
        rf"(?<![\dA-Za-z.:/])(?P<y>{_YEAR4})(?![\d:%A-Za-z]|\s*(?:元|块|米|个|张|人|次|公里|千米|克|斤|号|楼|路))",
        _bare_year,
    ),
    # English
    _rule(rf"\b(?:{_alternation(_FIXED_EN, latin=True)})\b", _fixed(_FIXED_EN)),
    _rule(rf"\b(?P<n>{_NUM_EN})\s+{_UNIT_EN}\s+ago\b", _ago),
    _rule(rf"\b(?:in\s+)?(?:the\s+)?(?:past|last|previous)\s+(?P<n>{_NUM_EN})\s+{_UNIT_EN}\b", _past),
    _rule(rf"\b(?:in\s+)?(?:the\s+(?:past|last)|past)\s+{_UNIT_EN}\b", _past),
    _rule(
        rf"\bthe\s+(?:['’]?(?P<a>\d0)|(?P<c>(?:19|20)\d0))['’]?s\b|(?<![\w'’])['’](?P<b>\d0)['’]?s\b"
        rf"|\b(?P<e>(?:19|20)\d0)['’]?s\b|\b(?:the\s+)?(?P<w>{_alternation(_DECADE_WORDS)})\b",
        _decade,
    ),
    _rule(
        rf"\b(?:(?P<q>last|this|past)\s+)?(?P<fest>{_alternation(_FESTIVAL_WORDS_EN, latin=True)})"
        rf"(?:\s+(?:of\s+)?(?P<y>{_YEAR4}))?\b{_FEST_THING_EN}",
        _festival_en,
    ),
    _rule(rf"\b(?P<q>last|this|past)\s+(?P<s>{_SEASON_EN})\b", _season_en),
    _rule(rf"\b(?:the\s+)?(?P<s>{_SEASON_EN})\s+(?:of\s+)?(?P<y>{_YEAR4})\b", _season_en),
    _rule(rf"\b(?P<y>{_YEAR4})\s+(?P<s>{_SEASON_EN})\b", _season_en),
    _rule(
        rf"\b(?:the\s+)?(?P<p>{_alternation(_YEAR_PARTS_EN, latin=True)})[-\s]+(?P<y>{_YEAR4})\b",
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


def _widen(value: _TimeValue) -> _TimeValue:
    """'around X': ± a week around a festival's day, otherwise a margin that grows with the span."""
    if value.anchor is not None:
        return replace(
            value, date_from=value.anchor - timedelta(days=7), date_to=value.anchor + timedelta(days=7)
        )
    if value.date_from is None or value.date_to is None:
        return value
    span = (value.date_to - value.date_from).days
    if span > 122:  # a year or more: a calendar year either side, so '2019年前后' is 2018..2020
        return replace(
            value, date_from=_add_months(value.date_from, -12), date_to=_add_months(value.date_to, 12)
        )
    margin = timedelta(days=7 if span <= 31 else 30)
    return replace(value, date_from=value.date_from - margin, date_to=value.date_to + margin)


def _apply_modifier(value: _TimeValue, modifier: str) -> _TimeValue | None:
    """None when the modifier makes no sense for this value (recurring months): leave the words alone."""
    if modifier == "around":
        return _widen(value)
    if value.date_from is None or value.date_to is None:
        return None
    if modifier == "since":
        return replace(value, date_to=None)
    if modifier == "after":
        return replace(value, date_from=value.date_to + timedelta(days=1), date_to=None)
    if modifier == "before":
        return replace(value, date_from=None, date_to=value.date_from - timedelta(days=1))
    return replace(value, date_from=None)  # until: up to the end of it


def _find_time(work: str, today: date) -> list[_TimeHit]:
    """Every time phrase (the longest where they overlap), joined ('A 到 B') and modified ('since A')."""
    candidates: list[_TimeHit] = []
    for pattern, handler in _TIME_RULES:
        for match in pattern.finditer(work):
            if match.end() == match.start():
                continue
            try:
                value = handler(match, today)
            except (ValueError, OverflowError):  # a date outside what `date` can hold: not a filter
                value = None
            if value is not None and not any(
                d and d < _FIRST_PHOTO for d in (value.date_from, value.date_to)
            ):
                candidates.append(_TimeHit(match.start(), match.end(), value))
    chosen: list[_TimeHit] = []
    taken = bytearray(len(work))
    for hit in sorted(candidates, key=lambda h: (h.start - h.end, h.start)):
        if not any(taken[hit.start : hit.end]):
            chosen.append(hit)
            taken[hit.start : hit.end] = b"\x01" * (hit.end - hit.start)
    chosen.sort(key=lambda h: h.start)
    return [_modify(hit, work) for hit in _join_ranges(chosen, work)]


def _join(first: _TimeValue, second: _TimeValue) -> _TimeValue | None:
    if second.month is not None and first.year is not None and second.date_from is None:
        second = _month_value(first.year, second.month)  # '2019年7月到9月': 9月 borrows 2019
    if first.month is not None and second.month is not None and first.date_from is None:
        steps = (second.month - first.month) % 12  # '11月到2月' wraps over the new year
        return _TimeValue(months=tuple(sorted((first.month - 1 + i) % 12 + 1 for i in range(steps + 1))))
    a_from, a_to, b_from, b_to = first.date_from, first.date_to, second.date_from, second.date_to
    if a_from is None or a_to is None or b_from is None or b_to is None:
        return None
    return _TimeValue(min(a_from, b_from), max(a_to, b_to))


def _join_ranges(hits: list[_TimeHit], work: str) -> list[_TimeHit]:
    """'2019年到2021年', 'from 2019 to 2021', 'between 2019 and 2021', '2019-2021' → one range."""
    result: list[_TimeHit] = []
    index = 0
    while index < len(hits):
        hit = hits[index]
        if index + 1 < len(hits):
            after = hits[index + 1]
            gap = work[hit.end : after.start]
            opener = _RANGE_START.search(work, max(0, hit.start - _LOOKBACK), hit.start)
            is_between = bool(opener and (opener["w"] or "").lower() == "between")
            joined = _join(hit.value, after.value) if _RANGE_JOIN.match(gap) else None
            if joined and (gap.strip().lower() != "and" or is_between):
                start = opener.start() if opener else hit.start
                result.append(_TimeHit(start, after.end, joined))
                index += 2
                continue
        result.append(hit)
        index += 1
    return result


def _modify(hit: _TimeHit, work: str) -> _TimeHit:
    """Consume the words before and after a time phrase; 'since', 'before', '前后'... also change it."""
    start, end, value = hit.start, hit.end, hit.value
    applied = None
    suffix = _SUFFIX_ZH.match(work, end) or _SUFFIX_EN.match(work, end)  # match() anchors at `end`
    if suffix:
        applied = _MODIFIERS.get(" ".join(suffix["w"].lower().split()))
        changed = _apply_modifier(value, applied) if applied else value
        if changed is not None:
            value, end = changed, suffix.end()
    window = max(0, start - _LOOKBACK)
    prefix = _PREFIX_EN.search(work, window, start) or _PREFIX_ZH.search(work, window, start)
    if prefix:
        modifier = _MODIFIERS.get(" ".join(prefix["w"].lower().split()))
        changed = _apply_modifier(value, modifier) if modifier and modifier != applied else value
        if changed is not None:  # 'since 2020 onwards' says it twice: consume both, apply once
            value, start = changed, prefix.start()
    return _TimeHit(start, end, value)


# ------------------------------------------------------------------------------------------- negation

# Words that contain a negation character but negate nothing (无锡 is a city, 无人机 a drone).
_NEG_BLOCKLIST_ZH = (
    "无人机", "无人驾驶", "无线", "无聊", "无限", "无论", "无法", "无比", "无花果", "无尾熊", "无糖",
    "无锡", "无印良品", "一无所有", "没关系", "没事", "沉没", "淹没", "出没", "埋没", "吞没", "有没有",
    "是不是", "不是吗", "不要紧",
)  # fmt: skip
_NEG_BLOCKED_ZH = re.compile(_alternation(_NEG_BLOCKLIST_ZH))
_NEG_TRIGGERS_ZH = (
    "没有", "不要", "不想要", "不含", "不包含", "不包括", "不带", "不是在", "不在", "不是", "排除", "去掉",
    "去除", "除去", "没", "无",
)  # fmt: skip
_NEG_STOP_ZH = r"\s\x00的在拍时照图了吗呢地于,，。.!?！？;；:：()（）\"“”'‘’"
_NEG_ZH = re.compile(
    rf"(?P<t>{_alternation(_NEG_TRIGGERS_ZH)})(?P<x>[^{_NEG_STOP_ZH}]{{1,12}})"
    rf"|除了(?P<y>[^{_NEG_STOP_ZH}]{{1,12}}?)(?:以外|之外)"
)
_NEG_STOPWORDS_EN = (
    "in", "at", "on", "from", "near", "during", "taken", "shot", "with", "without", "last", "this", "since",
    "before", "after", "until", "between", "around", "and", "or", "nor", "but", "no", "not", "photos?",
    "pictures?", "pics?", "images?", "please", "the", "a", "an", "that", "which", "who", "where",
)  # fmt: skip
_WORD_EN = rf"(?!(?:{'|'.join(_NEG_STOPWORDS_EN)})\b)[^\W_][\w'’-]*"
_NEG_EN = re.compile(
    r"(?<![\w-])(?P<t>without|w/o|with\s+no|excluding|exclude|except\s+for|except|but\s+not|not\s+including|"
    r"other\s+than|minus|no|not(?:\s+(?:in|at|from|near))?)\s+(?:(?:any|a|an|the|some)\s+)?"
    rf"(?P<x>{_WORD_EN}(?:\s+(?:(?:and|or|nor|&)\s+)?{_WORD_EN}){{0,2}})"
    r"|(?<!\S)-(?P<y>[^\s\x00\-][^\s\x00]*)",
    re.IGNORECASE,
)
_QUOTING_EN = re.compile(r"\b(?:says?|saying|reads?|reading|written|sign)\s*[\"'“]?\s*$", re.IGNORECASE)
_NEG_SPLIT = re.compile(r"\s+(?:and|or|nor|&)\s+|以及|[和与或及跟、/,，]", re.IGNORECASE)
_NEG_TRIM_ZH = re.compile(r"^(?:有|任何|出现|包含|含有|带|含|什么)+|(?:出现|存在|入镜|以外|之外|的)+$")


def _find_negations(work: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, concepts) for '没有人', '不要猫和狗', 'without people or cars', 'not in Paris'."""
    blocked = [(m.start(), m.end()) for m in _NEG_BLOCKED_ZH.finditer(work)]
    found: list[tuple[int, int, list[str]]] = []
    for match in _NEG_ZH.finditer(work):
        if any(s <= match.start() < e for s, e in blocked):
            continue
        raw = match["x"] if match["x"] is not None else match["y"]
        concepts = [_NEG_TRIM_ZH.sub("", part).strip() for part in _NEG_SPLIT.split(raw)]
        if any(concepts):
            found.append((match.start(), match.end(), [c for c in concepts if c]))
    for match in _NEG_EN.finditer(work):
        if _QUOTING_EN.search(work, max(0, match.start() - _LOOKBACK), match.start()) or any(
            s < match.end() and match.start() < e for s, e, _ in found
        ):
            continue
        if match.group(0).isupper():  # 'NO PARKING', 'NOT FOR SALE': the text of a sign
            continue
        raw = match["x"] if match["x"] is not None else match["y"]
        concepts = [part.strip(" '’\"") for part in _NEG_SPLIT.split(raw)]
        if any(concepts):
            found.append((match.start(), match.end(), [c for c in concepts if c]))
    return found


# --------------------------------------------------------------------------------------------- places

_AMBIGUOUS_PLACE_WORDS = frozenset(
    {"nice", "reading", "bath", "mobile", "split", "orange", "turkey", "china", "chad", "jordan", "march",
     "may", "florence", "victoria", "bristol", "sale", "deal", "cork", "wells", "derby", "hull"}
)  # fmt: skip
# '日本料理', '青岛啤酒', '法国人' name a cuisine, a brand, people: not where the photo was taken.
_PLACE_SUFFIX_BLOCK_ZH = (
    "菜", "料理", "餐厅", "餐馆", "风格", "风味", "式", "产", "制造", "品牌", "啤酒", "人",
)  # fmt: skip
_PLACE_MARKER_ZH = re.compile(r"(?:在|于|去|到|从|来自)\s*$")
_PLACE_MARKER_EN = re.compile(
    r"\b(?:in|at|near|from|around|to|visiting|inside|outside)\s+(?:the\s+)?$", re.IGNORECASE
)
_PLACE_TAIL_ZH = re.compile(r"(?:市|省)")


def _place_marker(text: str, start: int) -> re.Match[str] | None:
    """'在' / 'in the' right before a place name."""
    window = max(0, start - _LOOKBACK)
    return _PLACE_MARKER_ZH.search(text, window, start) or _PLACE_MARKER_EN.search(text, window, start)


def _fold(text: str) -> str:
    """Lower-case without changing the length, so offsets into the folded text are offsets into `text`."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _is_latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True)
class _PlaceHit:
    start: int
    end: int
    key: str
    surface: str
    marked: bool


@dataclass(frozen=True)
class PlaceMatcher:
    """Known place names indexed for longest-match lookup; build it once for a large gazetteer."""

    names: Mapping[str, str]  # folded surface form -> canonical key
    lengths: tuple[int, ...]  # the distinct lengths of `names`, longest first

    @classmethod
    def build(cls, places: Mapping[str, str]) -> PlaceMatcher:
        names: dict[str, str] = {}
        for surface, key in places.items():
            folded = _fold(" ".join(unicodedata.normalize("NFKC", str(surface)).split()))
            if not folded or not key or _GONE in folded:
                continue
            if len(folded) < 2 and not _is_latin(folded):  # one Chinese character is too ambiguous
                continue
            names[folded] = str(key)
        return cls(names, tuple(sorted({len(n) for n in names}, reverse=True)))

    def _accept(self, text: str, start: int, end: int, name: str) -> bool:
        if _is_latin(name[0]) and start > 0 and _is_latin(text[start - 1]):
            return False
        if _is_latin(name[-1]) and end < len(text) and _is_latin(text[end]):
            return False
        surface = text[start:end]
        if name.isascii() and name.isalpha() and len(name) <= 3 and not surface.isupper():
            return False  # 'US' is a place, 'us' is a pronoun
        if name in _AMBIGUOUS_PLACE_WORDS and not surface[:1].isupper():
            return False
        return not (not _is_latin(name[-1]) and text.startswith(_PLACE_SUFFIX_BLOCK_ZH, end))

    def find(self, text: str) -> list[_PlaceHit]:
        """Every known place in `text` (the longest at each position), left to right, not overlapping."""
        folded, hits, index = _fold(text), [], 0
        while index < len(text):
            if (
                text[index].isspace()
                or text[index] == _GONE
                or (_is_latin(text[index]) and index > 0 and _is_latin(text[index - 1]))
            ):
                index += 1
                continue
            for length in self.lengths:
                name = folded[index : index + length]
                if (
                    len(name) == length
                    and name in self.names
                    and self._accept(text, index, index + length, name)
                ):
                    marked = _place_marker(text, index) is not None
                    hits.append(
                        _PlaceHit(
                            index, index + length, self.names[name], text[index : index + length], marked
                        )
                    )
                    index += length - 1
                    break
            index += 1
        return hits


# ---------------------------------------------------------------------------------- semantic remainder

_SEGMENT_SPLIT = re.compile(r"\x00+|[,，。!?！？;；、()（）\[\]【】{}\"“”「」『』]|[.:：](?=\s|$)")
_LEAD_ZH = (
    "帮我找一下", "帮我找找", "帮我找出", "帮我找", "帮我搜", "请帮我", "帮我", "给我看看", "给我看",
    "给我找", "给我", "请", "我想看看", "我想看", "我想找", "我要看", "我要找", "想看", "想找", "找出来",
    "找出", "找到", "找一下", "找找", "找", "搜索", "搜一下", "搜", "查找一下", "查找", "查一下", "查看",
    "显示", "展示", "看看", "有没有", "所有的", "所有", "全部的", "全部", "一些", "那些", "那张", "一张",
    "几张", "哪些", "哪张", "有关", "关于", "含有", "包含", "带有", "有", "我们的", "我的", "我拍的",
    "拍摄的", "拍下的", "拍的", "拍摄", "时候拍的", "时拍的", "的时候", "的", "在", "于",
)  # fmt: skip
_TAIL_ZH = (
    "的照片", "的相片", "的图片", "的图像", "的图", "照片", "相片", "图片", "图像", "的那张", "的那些",
    "那张", "那些", "的时候", "时候", "拍摄的", "拍下的", "拍的", "拍摄", "有哪些", "有吗", "吗", "呢",
    "吧", "啊", "了", "的", "时", "在",
)  # fmt: skip
_LEAD_EN = (
    r"show\s+me", "show", r"find\s+me", "find", r"search\s+for", "search", r"look(?:ing)?\s+for", r"get\s+me",
    r"give\s+me", r"i\s+want\s+to\s+see", r"i\s+want", r"i'?d\s+like", r"can\s+you\s+(?:find|show)(?:\s+me)?",
    r"do\s+(?:i|we)\s+have", r"are\s+there", r"is\s+there", r"where\s+(?:is|are)", "please", "all", "my",
    "our", "some", "any", "the",
    r"(?:photo|picture|pic|image|shot|snapshot)s?(?:\s+(?:of|from|with|showing))?",
    "taken", "shot", "captured", r"(?:i|we)\s+took", "that", "which", "in", "on", "at", "from", "during",
    "of", "with", "and", "or",
)  # fmt: skip
_TAIL_EN = (
    r"(?:photo|picture|pic|image|shot|snapshot)s?", "taken", "captured", r"(?:that\s+)?(?:i|we)\s+took",
    "from", "in", "on", "at", "during", "of", "with", "and", "or", "the", "please",
    r"(?:that|which|who)(?:\s+(?:are|is|were|was))?",
)  # fmt: skip
# Peeled off both ends of every piece of leftover text, repeatedly: request words, photo words, particles.
_LEAD = re.compile(rf"^(?:{_alternation(_LEAD_ZH)}|(?:{'|'.join(_LEAD_EN)})\b)\s*", re.IGNORECASE)
_TAIL = re.compile(
    rf"\s*(?:{_alternation(_TAIL_ZH)}|(?<![合拍驾执护牌夕写关对普残映观参按依遵])照|\b(?:{'|'.join(_TAIL_EN)}))$",
    re.IGNORECASE,
)
_EDGE_PUNCTUATION = " '’\"-_~.…·•*#|/\\"


def _strip_fillers(segment: str) -> str:
    """Peel request words and photo words off both ends: '找出所有有猫的日落照片' → '猫的日落'."""
    previous = None
    while segment != previous:
        previous = segment
        segment = _TAIL.sub("", _LEAD.sub("", segment.strip(_EDGE_PUNCTUATION))).strip()
    return segment


def _semantic(work: str) -> str:
    pieces = (_strip_fillers(part) for part in _SEGMENT_SPLIT.split(work))
    return " ".join(" ".join(p for p in pieces if p).split())


# ------------------------------------------------------------------------------------- understanding


def _is_chinese(text: str) -> bool:
    cjk = sum(1 for c in text if "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return cjk > 0 and cjk >= len(re.findall(r"[A-Za-z]+", text))


_MONTH_LABELS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip


def _describe(
    zh: bool,
    start: date | None,
    end: date | None,
    months: tuple[int, ...],
    place: str | None,
    exclude: tuple[str, ...],
    truncated: bool,
) -> list[str]:
    """The parse in words, in the query's language, for showing next to the results."""
    lines = []
    if truncated:
        lines.append(
            f"只读取了前 {MAX_QUERY_CHARS} 个字符"
            if zh
            else f"only the first {MAX_QUERY_CHARS} characters were read"
        )
    if start and end:
        if start == end:
            lines.append(f"时间 {start}" if zh else f"taken on {start}")
        else:
            lines.append(f"时间 {start} 至 {end}" if zh else f"taken {start} to {end}")
    elif start:
        lines.append(f"时间 {start} 及以后" if zh else f"taken on or after {start}")
    elif end:
        lines.append(f"时间 {end} 及以前" if zh else f"taken on or before {end}")
    if months:
        if zh:
            lines.append("月份：" + "、".join(f"{m}月" for m in months) + "（任意年份）")
        else:
            lines.append(
                f"month{'s' if len(months) > 1 else ''}: "
                + ", ".join(_MONTH_LABELS[m - 1] for m in months)
                + " (any year)"
            )
    if place:
        lines.append(f"地点：{place}" if zh else f"place: {place}")
    if exclude:
        lines.append("排除：" + "、".join(exclude) if zh else "without: " + ", ".join(exclude))
    return lines


def _consume(work: str, start: int, end: int) -> str:
    return work[:start] + _GONE * (end - start) + work[end:]


def parse_query(
    text: str, *, today: date, places: Mapping[str, str] | PlaceMatcher | None = None
) -> ParsedQuery:
    """Split a question into filters (time, place, exclusions) and the words left for semantic search.

    `places` maps surface forms ('青岛', 'qingdao', 'Paris') to canonical keys; pass a prebuilt PlaceMatcher
    when the gazetteer is large. Never raises on any text; reads at most MAX_QUERY_CHARS characters.
    """
    original = (text or "").strip()
    truncated = len(original) > MAX_QUERY_CHARS
    normalized = unicodedata.normalize("NFKC", original[:MAX_QUERY_CHARS]).replace(_GONE, " ")
    work = " ".join(normalized.split())

    starts: list[date | None] = []
    ends: list[date | None] = []
    months: set[int] = set()
    for hit in _find_time(work, today):
        if hit.value.months:
            months.update(hit.value.months)
        else:
            starts.append(hit.value.date_from)
            ends.append(hit.value.date_to)
        work = _consume(work, hit.start, hit.end)

    exclude: list[str] = []
    for start, end, concepts in _find_negations(work):
        for concept in concepts:
            if concept.lower() not in (e.lower() for e in exclude):
                exclude.append(concept)
        work = _consume(work, start, end)

    place = place_text = None
    matcher = places if isinstance(places, PlaceMatcher) else PlaceMatcher.build(places) if places else None
    hits = matcher.find(work) if matcher else []
    if hits:
        best = max(hits, key=lambda h: (h.marked, h.end - h.start, -h.start))
        place, place_text = best.key, best.surface
        for same in (h for h in hits if h.key == best.key):
            marker = _place_marker(work, same.start)
            tail = _PLACE_TAIL_ZH.match(work, same.end)
            work = _consume(work, marker.start() if marker else same.start, tail.end() if tail else same.end)

    date_from = None if not starts or None in starts else min(d for d in starts if d)
    date_to = None if not ends or None in ends else max(d for d in ends if d)
    if date_from and date_to and date_from > date_to:
        date_from, date_to = date_to, date_from
    zh = _is_chinese(normalized)
    month_tuple = tuple(sorted(months))
    return ParsedQuery(
        text=original,
        semantic=_semantic(work),
        date_from=date_from,
        date_to=date_to,
        months=month_tuple,
        place=place,
        place_text=place_text,
        exclude=tuple(exclude),
        understood=_describe(zh, date_from, date_to, month_tuple, place_text, tuple(exclude), truncated),
        language="zh" if zh else "en",
    )

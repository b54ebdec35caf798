"""What time words mean as dates: calendar arithmetic, seasons, festivals, relative phrases.

Everything here is a value or a table; finding the words in a question is `time_phrases`. The conventions
(which summer "last summer" is, how wide "around" is) are listed in `time_phrases`' docstring.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

__all__ = [
    "DECADE_WORDS",
    "FESTIVAL_WORDS_EN",
    "FESTIVAL_WORDS_ZH",
    "FIRST_PHOTO",
    "FIXED_EN",
    "FIXED_ZH",
    "MONTH_NAMES",
    "SEASON_MONTHS",
    "SEASON_WORDS",
    "UNITS",
    "YEAR_PARTS_EN",
    "YEAR_PARTS_ZH",
    "YEAR_WORDS_ZH",
    "TimeValue",
    "ago_value",
    "apply_modifier",
    "chinese_new_year",
    "festival_latest",
    "festival_value",
    "fuzzy_ago_value",
    "month_value",
    "months_value",
    "past_value",
    "recent_month_day",
    "season_relative",
    "season_value",
    "year_part_value",
    "year_value",
    "ymd_value",
]

FIRST_PHOTO = date(1826, 1, 1)  # nothing was photographed earlier: '999年前' is not a filter


@dataclass(frozen=True)
class TimeValue:
    """What one time phrase means: a date range, or recurring months."""

    date_from: date | None = None
    date_to: date | None = None
    months: tuple[int, ...] = ()
    year: int | None = None  # an explicit year, lent to a following lone month: "2019年7月到9月"
    month: int | None = None  # a lone recurring month, which can borrow that year
    anchor: date | None = None  # a festival's day: "前后" is ± a week around it


# ------------------------------------------------------------------------------------------ arithmetic


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: date, months: int) -> date:
    """Shift by whole months, clamping the day (31 Mar - 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _shift(day: date, unit: str, amount: int) -> date:
    if unit == "day":
        return day + timedelta(days=amount)
    if unit == "week":
        return day + timedelta(weeks=amount)
    return add_months(day, amount * (12 if unit == "year" else 1))


UNITS = {
    "天": "day", "日": "day", "周": "week", "星期": "week", "礼拜": "week", "月": "month", "年": "year",
    "day": "day", "week": "week", "month": "month", "year": "year",
}  # fmt: skip


# ------------------------------------------------------------------------------ years, months and days


def year_value(year: int) -> TimeValue:
    return TimeValue(date(year, 1, 1), date(year, 12, 31), year=year)


def month_value(year: int, month: int) -> TimeValue:
    return TimeValue(date(year, month, 1), month_end(year, month), year=year)


def ymd_value(year: int, month: int | None, day: int | None) -> TimeValue:
    """A year, month or day; an impossible month or day falls back to the enclosing valid period."""
    if month is None or not 1 <= month <= 12:
        return year_value(year)
    if day is None or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return month_value(year, month)
    return TimeValue(date(year, month, day), date(year, month, day), year=year)


def recent_month_day(month: int, day: int, today: date) -> TimeValue:
    """'7月12日' / 'July 12' without a year: its most recent occurrence (Feb 29 looks back to a leap year)."""
    for year in range(today.year, today.year - 8, -1):
        if day <= calendar.monthrange(year, month)[1] and date(year, month, day) <= today:
            return TimeValue(date(year, month, day), date(year, month, day))
    return TimeValue(months=(month,), month=month)


def months_value(month: int) -> TimeValue:
    """A month without a year: that month of every year."""
    return TimeValue(months=(month,), month=month)


MONTH_NAMES = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
YEAR_WORDS_ZH = {"大前年": -3, "前年": -2, "去年": -1, "今年": 0}
YEAR_PARTS_ZH = {
    "年初": (1, 2), "年底": (12, 12), "年末": (12, 12), "年中": (6, 7), "上半年": (1, 6), "下半年": (7, 12),
}  # fmt: skip
YEAR_PARTS_EN = {
    "early": (1, 4), "beginning of": (1, 2), "start of": (1, 2), "mid": (5, 8), "middle of": (5, 8),
    "late": (9, 12), "end of": (12, 12), "first half of": (1, 6), "second half of": (7, 12),
}  # fmt: skip
DECADE_WORDS = {"sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990}


def year_part_value(year: int, months: tuple[int, int]) -> TimeValue:
    return TimeValue(date(year, months[0], 1), month_end(year, months[1]), year=year)


# --------------------------------------------------------------------------------------------- seasons

SEASON_MONTHS = {"spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11), "winter": (12, 1, 2)}
SEASON_WORDS = {
    "春天": "spring", "春季": "spring", "夏天": "summer", "夏季": "summer",
    "秋天": "autumn", "秋季": "autumn", "冬天": "winter", "冬季": "winter",
    "spring": "spring", "summer": "summer", "autumn": "autumn", "fall": "autumn", "winter": "winter",
}  # fmt: skip


def season_value(season: str, year: int) -> TimeValue:
    """The season of `year` (northern hemisphere); winter Y runs from December Y to February Y+1."""
    if season == "winter":
        return TimeValue(date(year, 12, 1), month_end(year + 1, 2), year=year)
    first, _, last = SEASON_MONTHS[season]
    return TimeValue(date(year, first, 1), month_end(year, last), year=year)


def season_relative(season: str, qualifier: str, today: date) -> TimeValue:
    """English 'last summer': the latest that has ended; 'this winter': today's, else this calendar year's."""
    candidates = [season_value(season, year) for year in range(today.year, today.year - 3, -1)]
    if qualifier == "this":
        current = [v for v in candidates if v.date_from and v.date_to and v.date_from <= today <= v.date_to]
        return current[0] if current else candidates[0]
    return next(v for v in candidates if v.date_to and v.date_to < today)


# ------------------------------------------------------------------------------------------- festivals

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
FESTIVAL_WORDS_ZH = {
    "春节": "cny", "过年": "cny", "农历新年": "cny", "除夕": "cny_eve", "大年三十": "cny_eve",
    "国庆节": "national_day", "国庆": "national_day", "十一黄金周": "national_day",
    "十一假期": "national_day", "十一长假": "national_day", "元旦": "new_year",
    "圣诞节": "christmas", "圣诞": "christmas", "平安夜": "christmas_eve", "情人节": "valentine",
    "万圣节": "halloween",
}  # fmt: skip
FESTIVAL_WORDS_EN = {
    "chinese new year": "cny", "lunar new year": "cny", "spring festival": "cny",
    "christmas eve": "christmas_eve", "christmas": "christmas", "xmas": "christmas",
    "new year's eve": "new_years_eve", "new years eve": "new_years_eve",
    "new year's day": "new_years_day", "new years day": "new_years_day",
    "new year": "new_years_day", "valentine's day": "valentine", "valentines day": "valentine",
    "halloween": "halloween",
}  # fmt: skip


def festival_value(name: str, year: int) -> TimeValue | None:
    """The festival `name` (a key of the word tables) in `year`; None where its date is unknown."""
    festival = _FESTIVALS[name]
    anchor = festival.anchor(year)
    if anchor is None:
        return None
    start, end = anchor - timedelta(days=festival.before), anchor + timedelta(days=festival.after)
    return TimeValue(start, end, year=year, anchor=anchor)


def festival_latest(name: str, today: date, *, ended: bool) -> TimeValue | None:
    """The most recent occurrence that has begun (or, for English 'last Christmas', that has ended)."""
    for year in (today.year, today.year - 1, today.year - 2):
        value = festival_value(name, year)
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
        first = add_months(t.replace(day=1), offset)
        return first, month_end(first.year, first.month)

    return span


def _year(offset: int) -> Callable[[date], tuple[date, date]]:
    return lambda t: (date(t.year + offset, 1, 1), date(t.year + offset, 12, 31))


def _last_days(count: int) -> Callable[[date], tuple[date, date]]:
    return lambda t: (t - timedelta(days=count - 1), t)


def _same_day(years: int) -> Callable[[date], tuple[date, date]]:
    """'去年的今天': the same calendar day N years back (29 Feb becomes 28 Feb)."""
    return lambda t: (add_months(t, 12 * years), add_months(t, 12 * years))


def _few_days_ago(t: date) -> tuple[date, date]:
    return t - timedelta(days=7), t - timedelta(days=1)


FIXED_ZH: dict[str, Callable[[date], tuple[date, date]]] = {
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
FIXED_EN: dict[str, Callable[[date], tuple[date, date]]] = {
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


def ago_value(amount: int, unit: str, today: date) -> TimeValue:
    """'N units ago': a window around that point, wider for coarser units (see `time_phrases`)."""
    point = _shift(today, unit, -amount)
    if unit == "day":
        return TimeValue(point, point)
    if unit == "year":
        return TimeValue(add_months(point, -6), min(add_months(point, 6), today))
    half = 3 if unit == "week" else 15
    return TimeValue(point - timedelta(days=half), min(point + timedelta(days=half), today))


def fuzzy_ago_value(unit: str, today: date) -> TimeValue:
    """'a few weeks ago', '几年前': from 7 units back to 1 unit back."""
    return TimeValue(_shift(today, unit, -7), _shift(today, unit, -1))


def past_value(amount: int, unit: str, today: date) -> TimeValue:
    """'past N units', '过去N天': the N units ending today."""
    return TimeValue(_shift(today, unit, -amount) + timedelta(days=1), today)


# ------------------------------------------------------------------------------------------- modifiers


def _widen(value: TimeValue) -> TimeValue:
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
            value, date_from=add_months(value.date_from, -12), date_to=add_months(value.date_to, 12)
        )
    margin = timedelta(days=7 if span <= 31 else 30)
    return replace(value, date_from=value.date_from - margin, date_to=value.date_to + margin)


def apply_modifier(value: TimeValue, modifier: str) -> TimeValue | None:
    """'since', 'after', 'before', 'until' or 'around' applied to a value.

    None when the modifier makes no sense for this value (recurring months): leave the words alone.
    """
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

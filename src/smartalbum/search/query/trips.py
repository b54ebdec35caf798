"""Finding a trip, a day of it, or weekends in a question: '上次旅行', '上上次旅行', '最近一次出游',
'my last trip', 'the trip before last', '在日本那次', 'my trip to Paris', '去年国庆的旅行', '第一天',
'the last day', '周末'.

Conventions:
- An ordinal picks one trip in time order: 上次/上一次/最近一次/last/latest/most recent/previous = the latest,
  上上次/the trip before last/the second to last = the one before, 第一次/first = the earliest.
- 那次 / 'my trip to X' / 'the trip' (singular) with a place or time picks the latest trip that matches;
  a plain 旅行 / 'trips' with a place or time means every matching trip.
- The place and time in the question (parsed by their own stages) choose trips, not photos: a Paris trip's
  day in Versailles stays in "my trip to Paris".
- 第N天 / 最后一天 / 'the first day' / 'day 2' / 'the last day' narrow a trip to one of its local days.
- A bare 周末 / 'weekend(s)' keeps Saturday and Sunday photos (上周末 / 'last weekend' are dates, read
  earlier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smartalbum.search.query.common import consume
from smartalbum.search.query.numbers import chinese_to_int

__all__ = ["TripRef", "find_trip", "find_weekend"]


@dataclass(frozen=True)
class TripRef:
    nth: int | None  # -1 the latest, -2 the one before, 0 the first; None: every trip that matches
    day: int | None = None  # 1-based day of the trip; -1 the last day
    text: str = ""  # the words that named it


_TRIP_ZH = r"(?:旅行|旅游|出游|出行|度假|出去玩|游玩)"
_DAY_ZH = re.compile(
    r"(?:的)?(?:第(?P<n>[一二两三四五六七八九十\d]{1,3})天|(?P<last>最后一天|最后那天)|(?P<first>头一天))"
)
# an ordinal, then up to 8 characters (a place: 上次去青岛的旅行), then the trip word
_GAP_ZH = r"(?P<mid>[^\x00，,。]{0,8}?)(?:的)?"
_NTH_ZH = [
    (re.compile(rf"(?:上上次|上上一次|倒数第二次){_GAP_ZH}{_TRIP_ZH}"), -2),
    (re.compile(rf"(?:上次|上一次|最近一次|最近的一次|最近那次|最后一次){_GAP_ZH}{_TRIP_ZH}"), -1),
    (re.compile(rf"(?:第一次){_GAP_ZH}{_TRIP_ZH}"), 0),
]
_THAT_ZH = re.compile(rf"那次(?:的)?(?:{_TRIP_ZH})?|那趟(?:{_TRIP_ZH})?")
_PLAIN_ZH = re.compile(rf"(?:的)?{_TRIP_ZH}(?:中|时|期间|途中)?")

_TRIP_EN = r"(?:trip|vacation|holiday|journey|getaway|travels?)"
_NTH_EN = [
    (
        re.compile(
            rf"\b(?:(?:my|our|the)\s+)?(?:(?:second[\s-]+to[\s-]+last|penultimate)\s+{_TRIP_EN}|"
            rf"{_TRIP_EN}\s+before\s+(?:the\s+)?(?:last(?:\s+one)?|that))\b",
            re.IGNORECASE,
        ),
        -2,
    ),
    (
        re.compile(
            rf"\b(?:(?:my|our|the)\s+)?(?:last|latest|most\s+recent|previous|recent)\s+"
            rf"{_TRIP_EN}\b",
            re.IGNORECASE,
        ),
        -1,
    ),
    (re.compile(rf"\b(?:(?:my|our|the)\s+)?first\s+{_TRIP_EN}\b", re.IGNORECASE), 0),
]
_ONE_EN = re.compile(rf"\b(?:my|our|the|that)\s+{_TRIP_EN}\b(?:\s+(?:to|in))?", re.IGNORECASE)
_ALL_EN = re.compile(
    r"\b(?:(?:my|our|the)\s+)?(?:trips|vacations|holidays|journeys)\b(?:\s+(?:to|in))?", re.I
)
_DAY_EN = re.compile(
    r"\b(?:(?:on|from|during)\s+)?(?:the\s+)?(?:(?P<ord>first|second|third|fourth|fifth|last)\s+day|"
    r"day\s+(?P<n>\d{1,2}))\b(?:\s+of)?",
    re.IGNORECASE,
)
_ORDINALS_EN = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}
_WEEKEND = re.compile(
    r"(?<![上下这本])(?:周末|週末|星期六日|双休日)|\b(?:on\s+)?(?:the\s+)?weekends?\b", re.I
)


def find_trip(work: str) -> tuple[TripRef | None, str]:
    """The trip a question refers to, and `work` with its words consumed."""
    nth: int | None = None
    found = ""
    for pattern, value in _NTH_ZH:
        m = pattern.search(work)
        if m:  # the words between the ordinal and the trip word stay for the place stage
            nth, found = value, m.group(0)
            work = consume(consume(work, m.start(), m.start("mid")), m.end("mid"), m.end())
            break
    if not found:
        for pattern, value in _NTH_EN:
            m = pattern.search(work)
            if m:
                nth, found = value, m.group(0)
                work = consume(work, m.start(), m.end())
                break
    if not found:
        m = _THAT_ZH.search(work) or _ONE_EN.search(work)
        if m:
            nth, found = -1, m.group(0)
            work = consume(work, m.start(), m.end())
    if not found:
        m = _PLAIN_ZH.search(work) or _ALL_EN.search(work)
        if m:
            nth, found = None, m.group(0)
            work = consume(work, m.start(), m.end())
    if not found:
        return None, work
    day = None
    m = _DAY_ZH.search(work)
    if m:
        day = -1 if m.group("last") else 1 if m.group("first") else chinese_to_int(m.group("n"))
        work = consume(work, m.start(), m.end())
    else:
        m = _DAY_EN.search(work)
        if m:
            day = _ORDINALS_EN[m.group("ord").lower()] if m.group("ord") else int(m.group("n"))
            work = consume(work, m.start(), m.end())
    return TripRef(nth, day or None, found.strip()), work


def find_weekend(work: str) -> tuple[bool, str]:
    """Whether the question asks for weekends, and `work` without those words."""
    m = _WEEKEND.search(work)
    if not m:
        return False, work
    return True, consume(work, m.start(), m.end())

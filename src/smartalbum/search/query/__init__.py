"""Query understanding: pull time, place and negation out of a question, in Chinese or English.

`parse_query("去年夏天在青岛拍的海边照片", today=..., places=...)` returns the hard filters (a date range,
recurring months, one place, excluded concepts) and the text left for semantic and full-text search.
Pure Python, no segmenter: every recognised phrase comes from a table of patterns.

The stages run in this order on one working copy of the text, each consuming what it recognises:
- `trips`: a trip reference (上次旅行, the trip before last, 在日本那次, my trip to Paris) and a day of it;
- `time_phrases` (with `dates` and `numbers`): dates, seasons, festivals, relative phrases, ranges;
- `trips.find_weekend`: a bare 周末 / weekends;
- `negation`: what to exclude (an excluded known person excludes their photos);
- `people`: the library's named people and the owner (jieba finds Chinese names as words);
- `places`: one known place name;
- `remainder`: what is left, without request and photo words, becomes `semantic`.
Each module's docstring lists its conventions. Only the first MAX_QUERY_CHARS characters are parsed;
`understood` says so.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from smartalbum.search.query.common import GONE, consume
from smartalbum.search.query.dates import chinese_new_year
from smartalbum.search.query.negation import find_negations
from smartalbum.search.query.numbers import chinese_to_int
from smartalbum.search.query.people import PeopleDirectory, excluded_people, find_people
from smartalbum.search.query.places import PLACE_TAIL_ZH, PlaceMatcher, place_marker
from smartalbum.search.query.remainder import semantic_remainder
from smartalbum.search.query.time_phrases import find_time
from smartalbum.search.query.trips import TripRef, find_trip, find_weekend

__all__ = [
    "MAX_QUERY_CHARS",
    "STEP_KINDS",
    "ParsedQuery",
    "PeopleDirectory",
    "PlaceMatcher",
    "TripRef",
    "chinese_new_year",
    "chinese_to_int",
    "parse_query",
]

MAX_QUERY_CHARS = 1000


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
    people: tuple[int, ...] = ()  # person ids that must all be in the photo
    people_only: bool = False  # ... and nobody else
    people_excluded: tuple[int, ...] = ()
    birthday_of: tuple[int, ...] = ()  # photos taken on these people's birthdays (±1 day, any year)
    trip: TripRef | None = None  # the trip(s) the question is about; place and time then choose trips
    weekend: bool = False  # Saturday and Sunday only
    understood: list[str] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (kind, line) of `understood`
    language: str = "en"  # 'zh' or 'en': the language `understood` is written in

    @property
    def has_filters(self) -> bool:
        return bool(
            self.date_from
            or self.date_to
            or self.months
            or self.place
            or self.exclude
            or self.people
            or self.people_excluded
            or self.birthday_of
            or self.trip
            or self.weekend
        )

    @property
    def only_exclusions(self) -> bool:
        """Exclusions and nothing to look for ('no people', '没有人'): no search words, date, month or place.

        Answering with everything else in the library is rarely what was meant; ask what to look for.
        """
        return bool(self.exclude or self.people_excluded) and not (
            self.semantic
            or self.date_from
            or self.date_to
            or self.months
            or self.place
            or self.people
            or self.birthday_of
            or self.trip
            or self.weekend
        )


def _is_chinese(text: str) -> bool:
    cjk = sum(1 for c in text if "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return cjk > 0 and cjk >= len(re.findall(r"[A-Za-z]+", text))


_MONTH_LABELS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip


STEP_KINDS = ("time", "birthday", "weekend", "place", "people", "exclude", "trip", "verify", "planner")
"""What a person can take back from how a question was read (`ignore`): the first six in the parser, the
rest in the search engine."""


def _describe(
    zh: bool,
    start: date | None,
    end: date | None,
    months: tuple[int, ...],
    place: str | None,
    exclude: tuple[str, ...],
    truncated: bool,
    people: tuple[list[str], bool, list[str]] = ([], False, []),
    weekend: bool = False,
    birthdays: Sequence[tuple[str, int, int]] = (),
) -> list[tuple[str, str]]:
    """The parse in words, in the query's language, for showing next to the results: (kind, line), the kind
    being what `ignore` takes back ('note' lines cannot be)."""
    lines: list[tuple[str, str]] = []
    if truncated:
        note = (
            f"只读取了前 {MAX_QUERY_CHARS} 个字符"
            if zh
            else f"only the first {MAX_QUERY_CHARS} characters were read"
        )
        lines.append(("note", note))
    if start and end:
        if start == end:
            lines.append(("time", f"时间 {start}" if zh else f"taken on {start}"))
        else:
            lines.append(("time", f"时间 {start} 至 {end}" if zh else f"taken {start} to {end}"))
    elif start:
        lines.append(("time", f"时间 {start} 及以后" if zh else f"taken on or after {start}"))
    elif end:
        lines.append(("time", f"时间 {end} 及以前" if zh else f"taken on or before {end}"))
    if months:
        if zh:
            text = "月份：" + "、".join(f"{m}月" for m in months) + "（任意年份）"
        else:
            text = (
                f"month{'s' if len(months) > 1 else ''}: "
                + ", ".join(_MONTH_LABELS[m - 1] for m in months)
                + " (any year)"
            )
        lines.append(("time", text))
    for who, month, day in birthdays:
        lines.append(
            (
                "birthday",
                f"{who}的生日：每年 {month}月{day}日前后"
                if zh
                else f"{who}'s birthday: {_MONTH_LABELS[month - 1]} {day} (±1 day), any year",
            )
        )
    if weekend:
        lines.append(("weekend", "周末（星期六、星期日）" if zh else "weekends (Saturday, Sunday)"))
    if place:
        lines.append(("place", f"地点：{place}" if zh else f"place: {place}"))
    named, only, unwanted = people
    if named:
        if zh:
            lines.append(("people", "人物：" + "、".join(named) + ("（没有其他人）" if only else "")))
        else:
            lines.append(("people", "people: " + ", ".join(named) + (" (nobody else)" if only else "")))
    if unwanted:
        text = "不含人物：" + "、".join(unwanted) if zh else "without people: " + ", ".join(unwanted)
        lines.append(("people", text))
    if exclude:
        lines.append(("exclude", "排除：" + "、".join(exclude) if zh else "without: " + ", ".join(exclude)))
    return lines


def parse_query(
    text: str,
    *,
    today: date,
    places: Mapping[str, str] | PlaceMatcher | None = None,
    people: PeopleDirectory | None = None,
    ignore: frozenset[str] = frozenset(),
) -> ParsedQuery:
    """Split a question into filters (time, place, people, exclusions) and the words left for semantic search.

    `places` maps surface forms ('青岛', 'qingdao', 'Paris') to canonical keys; pass a prebuilt PlaceMatcher
    when the gazetteer is large. `ignore` takes back parts of the reading (STEP_KINDS: the words stay
    consumed, the filter goes). Never raises on any text; reads at most MAX_QUERY_CHARS characters.
    """
    original = (text or "").strip()
    truncated = len(original) > MAX_QUERY_CHARS
    normalized = unicodedata.normalize("NFKC", original[:MAX_QUERY_CHARS]).replace(GONE, " ")
    work = " ".join(normalized.split())

    trip, work = find_trip(work)
    starts: list[date | None] = []
    ends: list[date | None] = []
    months: set[int] = set()
    for hit in find_time(work, today):
        if hit.value.months:
            months.update(hit.value.months)
        else:
            starts.append(hit.value.date_from)
            ends.append(hit.value.date_to)
        work = consume(work, hit.start, hit.end)

    weekend, work = find_weekend(work)
    exclude: list[str] = []
    for start, end, concepts in find_negations(work):
        for concept in concepts:
            if concept.lower() not in (e.lower() for e in exclude):
                exclude.append(concept)
        work = consume(work, start, end)

    directory = people or PeopleDirectory()
    unwanted, text_exclude = excluded_people(tuple(exclude), directory)
    exclude = text_exclude
    found, work = find_people(work, directory)
    wanted = tuple(found.people) if found else ()
    unwanted = [p for p in unwanted if p not in wanted]

    place = place_text = None
    matcher = places if isinstance(places, PlaceMatcher) else PlaceMatcher.build(places) if places else None
    hits = matcher.find(work) if matcher else []
    if hits:
        best = max(hits, key=lambda h: (h.marked, h.end - h.start, -h.start))
        place, place_text = best.key, best.surface
        for same in (h for h in hits if h.key == best.key):
            marker = place_marker(work, same.start)
            tail = PLACE_TAIL_ZH.match(work, same.end)
            work = consume(work, marker.start() if marker else same.start, tail.end() if tail else same.end)

    date_from = None if not starts or None in starts else min(d for d in starts if d)
    date_to = None if not ends or None in ends else max(d for d in ends if d)
    if date_from and date_to and date_from > date_to:
        date_from, date_to = date_to, date_from
    zh = _is_chinese(normalized)
    month_tuple = tuple(sorted(months))
    birthdays = list(found.birthdays) if found else []
    only = bool(found and found.only)
    if "time" in ignore:
        date_from = date_to = None
        month_tuple = ()
    if "place" in ignore:
        place = place_text = None
    if "people" in ignore:
        wanted, unwanted, only = (), [], False
    if "birthday" in ignore:
        birthdays = []
    if "weekend" in ignore:
        weekend = False
    if "exclude" in ignore:
        exclude = []
    if "trip" in ignore:
        trip = None
    steps = _describe(
        zh,
        date_from,
        date_to,
        month_tuple,
        place_text,
        tuple(exclude),
        truncated,
        ([directory.label(p, zh) for p in wanted], only, [directory.label(p, zh) for p in unwanted]),
        weekend,
        [(directory.label(p, zh), *directory.birthdays[p]) for p in birthdays],
    )
    return ParsedQuery(
        text=original,
        semantic=semantic_remainder(work),
        date_from=date_from,
        date_to=date_to,
        months=month_tuple,
        place=place,
        place_text=place_text,
        exclude=tuple(exclude),
        people=wanted,
        people_only=only,
        people_excluded=tuple(unwanted),
        birthday_of=tuple(birthdays),
        trip=trip,
        weekend=weekend,
        understood=[line for _, line in steps],
        steps=steps,
        language="zh" if zh else "en",
    )

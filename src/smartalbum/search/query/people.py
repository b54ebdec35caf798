"""Finding the people a question is about: '我和妈妈在雪地里合影', 'photos of Alice and me', '只有小明一个人'.

Conventions:
- Names are the library's own (`smartalbum people name`): Chinese names are found as whole words by jieba,
  with every name added to a tokenizer of its own (the full-text index's segmentation stays unchanged), so
  小明 is one word and 明 inside 明天 is not 小明; Latin names match whole words, case-folded.
- 我 / me / myself / my mean the owner (`people me`) when one is set; not in 我们 (we), not before 拍/照
  (我拍的: "I took"), not for my camera/phone/album (我的相机, "my photos"), and not when a name follows
  directly (我妈妈, 我的妈妈, my Mum: the name is meant, with its owner as a possessive).
- Several people must all be in the photo; 只有/only/just before them or 一个人/单独/alone/by herself after
  them means nobody else is. Connectors between names (和/跟/与/and/with/&) and, for two or more people,
  合影/合照/together go with them.
- An excluded concept ('without Bob', '不要小明') that names a person excludes that person's photos.
- A name that is not a known person stays a search word.
- A name (or 我/my) followed by 生日 / birthday asks for photos taken on that person's birthday (±1 day, any
  year) when it is known (`people birthday`); the person need not be in them. Unknown, it stays a person
  filter and 生日 a search word.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smartalbum.search.query.common import GONE, consume

__all__ = ["PeopleDirectory", "PeopleHit", "find_people", "fold"]


def fold(name: str) -> str:
    """The comparison form of a name; the same rule as the catalog's (catalog/people.py fold_name)."""
    return re.sub(r"\s+", " ", name).strip().casefold()


@dataclass(frozen=True)
class PeopleDirectory:
    """Known names (folded) -> person id, the owner's id, and the name each person is shown by."""

    names: Mapping[str, int] = field(default_factory=dict)
    me: int | None = None
    shown: Mapping[int, str] = field(default_factory=dict)
    birthdays: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # person id -> (month, day)

    def label(self, person_id: int, zh: bool) -> str:
        if person_id == self.me:
            return "我" if zh else "me"
        return self.shown.get(person_id, f"#{person_id}")


@dataclass
class PeopleHit:
    people: list[int]  # all of them must be in the photo
    only: bool  # and nobody else
    birthdays: list[int] = field(default_factory=list)  # "妈妈的生日": photos on these people's birthdays


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SELF_ZH = "我"
_SELF_EN = re.compile(r"(?<![\w'’])(me|myself|my)(?![\w'’])", re.IGNORECASE)
_NOT_SELF_ZH = re.compile(r"[们拍照摄]|的?(?:相机|手机|相册|电脑)")  # we, I took, my camera/phone/album
_MY_THINGS = re.compile(
    r"\s*(?:photos?|pictures?|pics?|images?|shots?|library|album|camera|phone)\b", re.IGNORECASE
)
_CONNECTOR = re.compile(
    rf"^[\s{GONE}]*(?:和|跟|与|同|及|以及|还有|and|with|&|\+|,|，|、)?[\s{GONE}]*$", re.IGNORECASE
)
_BIRTHDAY = re.compile(r"[\s\x00]*(?:的|'s|’s)?[\s\x00]*(?:生日|birthdays?|b-?day)", re.IGNORECASE)
_APOSTROPHE_S = re.compile(r"['’]s?(?!\w)")
_POSSESSIVE = re.compile(rf"^[\s{GONE}]*(?:的|'s|’s)?[\s{GONE}]*$")
_ONLY_BEFORE = re.compile(r"(?:只有|仅有|只是|就|only|just)[\s\x00]*$", re.IGNORECASE)
_ONLY_AFTER = re.compile(
    r"[\s\x00]*(?:一个人|一人|单独|独自|自己|单人|独照|alone|by\s+(?:her|him|my|them)sel(?:f|ves)|"
    r"on\s+(?:her|his|my|their)\s+own|solo)",
    re.IGNORECASE,
)
_TOGETHER = re.compile(r"合影|合照|一起|together|group\s+(?:photo|picture|shot)s?", re.IGNORECASE)

_tokenizer: Any = None
_tokenizer_words: set[str] = set()
_tokenizer_lock = threading.Lock()


def _chinese_tokens(text: str, names: list[str]) -> list[tuple[str, int, int]]:
    """jieba's words of `text` (start, end) with every name in `names` added as a word."""
    global _tokenizer
    import jieba

    with _tokenizer_lock:
        if _tokenizer is None:
            jieba.setLogLevel(60)
            _tokenizer = jieba.Tokenizer()
        for name in names:
            if name not in _tokenizer_words:
                _tokenizer.add_word(name, freq=10_000_000)
                _tokenizer_words.add(name)
        return list(_tokenizer.tokenize(text))


def _name_spans(work: str, directory: PeopleDirectory) -> list[tuple[int, int, int]]:
    """(start, end, person id) of each known name and self word in `work`, in order, not overlapping; a
    possessive self word (我妈妈, my Mum) has person id 0: it is consumed with the name, not counted."""
    found: list[tuple[int, int, int]] = []
    latin = sorted((n for n in directory.names if not _CJK.search(n)), key=len, reverse=True)
    if latin:
        pattern = re.compile(
            r"(?<![\w'’])(" + "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in latin) + r")(?![\w])",
            re.IGNORECASE,
        )
        for m in pattern.finditer(work):
            pid = directory.names.get(fold(m.group(1)))
            if pid is not None:
                found.append((m.start(), m.end(), pid))
    chinese = [n for n in directory.names if _CJK.search(n)]
    if _CJK.search(work) and (chinese or directory.me is not None):
        for word, start, end in _chinese_tokens(work, chinese):
            if any(s < end and start < e for s, e, _ in found):
                continue
            pid = directory.names.get(fold(word))
            if pid is not None:
                found.append((start, end, pid))
            elif word == _SELF_ZH and directory.me is not None and not _NOT_SELF_ZH.match(work, end):
                found.append((start, end, -1))
    if directory.me is not None:
        for m in _SELF_EN.finditer(work):
            if m.group(1).lower() == "my" and _MY_THINGS.match(work, m.end()):
                continue
            if not any(s < m.end() and m.start() < e for s, e, _ in found):
                found.append((m.start(), m.end(), -1))
    found.sort()
    # a self word directly before a name is a possessive: 我妈妈, 我的妈妈, my Mum
    kept = []
    for i, (start, end, pid) in enumerate(found):
        nxt = found[i + 1] if i + 1 < len(found) else None
        if pid == -1 and nxt and nxt[2] != -1 and _POSSESSIVE.match(work[end : nxt[0]]):
            kept.append((start, nxt[0], 0))
            continue
        kept.append((start, end, directory.me if pid == -1 and directory.me is not None else pid))
    return kept


def find_people(work: str, directory: PeopleDirectory) -> tuple[PeopleHit | None, str]:
    """The people a question names, and `work` with them (and their connectors) consumed."""
    if not directory.names and directory.me is None:
        return None, work
    spans = _name_spans(work, directory)
    if not spans:
        return None, work
    # "妈妈的生日" / "Mum's birthday": a date, not a face, when the birthday is known
    birthdays: list[int] = []
    kept = []
    for start, end, pid in spans:
        said = _BIRTHDAY.match(work, end)
        if said and pid in directory.birthdays:
            birthdays.append(pid)
            work = consume(work, start, said.end())
        else:
            kept.append((start, end, pid))
    spans = kept
    if not spans:
        return PeopleHit([], False, birthdays), work
    people = list(dict.fromkeys(pid for _, _, pid in spans if pid))
    only = False
    first, last = spans[0][0], spans[-1][1]
    before = _ONLY_BEFORE.search(work[:first])
    if before:
        only = True
        work = consume(work, before.start(), first)
    after = _ONLY_AFTER.match(work, last)
    if after:
        only = True
        work = consume(work, last, after.end())
    for (_, end, _), (start, _, _) in itertools.pairwise(spans):
        if _CONNECTOR.match(work[end:start]):
            work = consume(work, end, start)
    for start, end, _ in spans:
        apostrophe = _APOSTROPHE_S.match(work, end)  # Alice's birthday: the name and its 's
        work = consume(work, start, apostrophe.end() if apostrophe else end)
    if len(people) >= 2:
        for m in list(_TOGETHER.finditer(work)):
            work = consume(work, m.start(), m.end())
    return PeopleHit(people, only, birthdays), work


def excluded_people(concepts: tuple[str, ...], directory: PeopleDirectory) -> tuple[list[int], list[str]]:
    """Split excluded concepts into people (ids) and the rest (still text exclusions)."""
    people: list[int] = []
    rest: list[str] = []
    for concept in concepts:
        key = fold(concept)
        if key in directory.names:
            people.append(directory.names[key])
        elif key in {"我", "me", "myself"} and directory.me is not None:
            people.append(directory.me)
        else:
            rest.append(concept)
    return list(dict.fromkeys(people)), rest

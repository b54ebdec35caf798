"""Finding what a question excludes: '没有人', '不要猫和狗', 'without people or cars', 'not in Paris'.

Conventions:
- A negation takes up to 12 characters (Chinese) or 3 words (English) after its trigger, split into concepts
  on 和/与/或/、/and/or/commas.
- Words that merely contain a negation character negate nothing: 无锡 is a city, 无人机 a drone.
- Quoted sign text is not a negation: "a sign that says no parking", and anything in capitals ("NO PARKING").
"""

from __future__ import annotations

import re

from smartalbum.search.query.common import LOOKBACK, alternation

__all__ = ["find_negations"]

# Words that contain a negation character but negate nothing (无锡 is a city, 无人机 a drone).
_NEG_BLOCKLIST_ZH = (
    "无人机", "无人驾驶", "无线", "无聊", "无限", "无论", "无法", "无比", "无花果", "无尾熊", "无糖",
    "无锡", "无印良品", "一无所有", "没关系", "没事", "沉没", "淹没", "出没", "埋没", "吞没", "有没有",
    "是不是", "不是吗", "不要紧",
)  # fmt: skip
_NEG_BLOCKED_ZH = re.compile(alternation(_NEG_BLOCKLIST_ZH))
_NEG_TRIGGERS_ZH = (
    "没有", "不要", "不想要", "不含", "不包含", "不包括", "不带", "不是在", "不在", "不是", "排除", "去掉",
    "去除", "除去", "没", "无",
)  # fmt: skip
_NEG_STOP_ZH = r"\s\x00的在拍时照图了吗呢地于,，。.!?！？;；:：()（）\"“”'‘’"
_NEG_ZH = re.compile(
    rf"(?P<t>{alternation(_NEG_TRIGGERS_ZH)})(?P<x>[^{_NEG_STOP_ZH}]{{1,12}})"
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


def find_negations(work: str) -> list[tuple[int, int, list[str]]]:
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
        if _QUOTING_EN.search(work, max(0, match.start() - LOOKBACK), match.start()) or any(
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

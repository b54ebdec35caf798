"""Finding what a question excludes: '没有人', '不要猫和狗', 'without people or cars', 'not in Paris'.

Conventions:
- A negation takes up to 12 characters (Chinese) or 3 words (English) after its trigger, split into concepts
  on 和/与/或/、/and/or/commas.
- Words that merely contain a negation character negate nothing: 无锡 is a city, 无人机 a drone.
- Quoted sign text is not a negation: "a sign that says no parking", and anything in capitals ("NO PARKING").
- "no X" that names a sign or a zone is a thing to search for, not an exclusion: "no" (or "with no") before a
  prohibited activity ("no smoking", "no parking", "no entry", "no trespassing"), or with a sign word after
  what it negates ("no smoking sign", "no swimming area", "no dogs allowed"); the sign word is singular, so
  "no signs" and "no traffic signs" still exclude. Likewise in Chinese the imperative 不要 followed by
  标志/牌子/标识... ("不要停车的牌子"; "没有交通标志" still excludes), and compounds such as
  无烟区, 无障碍, 无边泳池, 无袖 are words, not negations. (禁止/请勿/不准 are never triggers.)
- When the exclusions are all a question asks, `ParsedQuery.only_exclusions` says so.
"""

from __future__ import annotations

import re

from smartalbum.search.query.common import LOOKBACK, alternation

__all__ = ["find_negations"]

# Words that contain a negation character but negate nothing (无锡 is a city, 无人机 a drone).
_NEG_BLOCKLIST_ZH = (
    "无人机", "无人驾驶", "无线", "无聊", "无限", "无论", "无法", "无比", "无花果", "无尾熊", "无糖",
    "无锡", "无印良品", "一无所有", "没关系", "没事", "沉没", "淹没", "出没", "埋没", "吞没", "有没有",
    "是不是", "不是吗", "不要紧", "无烟", "无障碍", "无人区", "无人售", "无人超市", "无人便利", "无人值守",
    "无边", "无袖", "无名指", "无籽", "无骨", "无缝", "无菌", "无数", "无声", "无敌", "无辜", "无奈",
    "无所谓", "没想到", "没错",
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
# 'no smoking sign', 'no parking', 'no dogs allowed': the name of a sign or a zone, not an exclusion.
_PROHIBITED_EN = frozenset(
    {"smoking", "parking", "entry", "exit", "access", "admittance", "admission", "trespassing", "stopping",
     "standing", "waiting", "loitering", "littering", "dumping", "swimming", "diving", "fishing", "hunting",
     "camping", "climbing", "cycling", "skateboarding", "skating", "photography", "honking", "overtaking",
     "spitting", "vacancy", "vacancies", "u-turn", "u-turns", "thoroughfare", "outlet"}
)  # fmt: skip
# Singular on purpose: 'no traffic signs' is an absence, 'no traffic sign' names one.
_SIGN_WORDS_EN = frozenset(
    {"sign", "signage", "signpost", "zone", "area", "notice", "sticker", "placard", "symbol", "icon", "label",
     "poster", "board", "plate", "allowed", "permitted", "beyond", "turn"}
)  # fmt: skip
_NEXT_WORD_EN = re.compile(r"\s+(?P<w>[^\W_][\w'’-]*)")
_SIGN_ZH = ("标志", "标识", "标牌", "牌子", "指示牌", "警示牌", "提示牌", "告示牌", "告示", "标语", "贴纸")
_SIGN_AFTER_ZH = re.compile(rf"\s*的?\s*(?:{alternation(_SIGN_ZH)})")
_QUOTING_EN = re.compile(r"\b(?:says?|saying|reads?|reading|written|sign)\s*[\"'“]?\s*$", re.IGNORECASE)
_NEG_SPLIT = re.compile(r"\s+(?:and|or|nor|&)\s+|以及|[和与或及跟、/,，]", re.IGNORECASE)
_NEG_TRIM_ZH = re.compile(r"^(?:有|任何|出现|包含|含有|带|含|什么)+|(?:出现|存在|入镜|以外|之外|的)+$")


def _names_a_sign_en(match: re.Match[str], work: str) -> bool:
    """'no smoking sign', 'no parking', 'no dogs allowed': "no" starts the name of a thing."""
    trigger = (match["t"] or "").lower().split()
    if not trigger or trigger[-1] != "no" or match["x"] is None:
        return False
    words = match["x"].lower().split()
    if words[0] in _PROHIBITED_EN:
        return True
    following = _NEXT_WORD_EN.match(work, match.end())
    return any(w in _SIGN_WORDS_EN for w in [*words[1:], following["w"].lower() if following else ""])


def _names_a_sign_zh(match: re.Match[str], work: str) -> bool:
    """'不要停车的牌子', '不要践踏草坪标志': the imperative is the text on a sign ('没有交通标志' is not)."""
    raw = match["x"]
    if raw is None or match["t"] != "不要":
        return False
    return _SIGN_AFTER_ZH.match(work, match.end()) is not None or (
        raw.endswith(_SIGN_ZH) and raw not in _SIGN_ZH
    )


def _quoted_en(match: re.Match[str], work: str) -> bool:
    """'a sign that says no parking': the words on a sign ('no', 'not', '-'); 'a sign without X' is not."""
    trigger = (match["t"] or "").lower().split()
    if trigger and trigger[0] not in ("no", "not"):
        return False
    return _QUOTING_EN.search(work, max(0, match.start() - LOOKBACK), match.start()) is not None


def find_negations(work: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, concepts) for '没有人', '不要猫和狗', 'without people or cars', 'not in Paris'."""
    blocked = [(m.start(), m.end()) for m in _NEG_BLOCKED_ZH.finditer(work)]
    found: list[tuple[int, int, list[str]]] = []
    for match in _NEG_ZH.finditer(work):
        if any(s <= match.start() < e for s, e in blocked) or _names_a_sign_zh(match, work):
            continue
        raw = match["x"] if match["x"] is not None else match["y"]
        concepts = [_NEG_TRIM_ZH.sub("", part).strip() for part in _NEG_SPLIT.split(raw)]
        if any(concepts):
            found.append((match.start(), match.end(), [c for c in concepts if c]))
    for match in _NEG_EN.finditer(work):
        if _quoted_en(match, work) or any(s < match.end() and match.start() < e for s, e, _ in found):
            continue
        if match.group(0).isupper() or _names_a_sign_en(match, work):  # 'NO PARKING': the text of a sign
            continue
        raw = match["x"] if match["x"] is not None else match["y"]
        concepts = [part.strip(" '’\"") for part in _NEG_SPLIT.split(raw)]
        if any(concepts):
            found.append((match.start(), match.end(), [c for c in concepts if c]))
    return found

"""Numbers as people write them in questions: digits, Chinese numerals, English number words."""

from __future__ import annotations

import re

__all__ = ["CN_NUM_CHARS", "EN_NUMBERS", "FUZZY_COUNTS", "chinese_to_int", "count"]

_CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUM_CHARS = "〇零一二两三四五六七八九十百千"
EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
FUZZY_COUNTS = ("few", "several", "几")  # "a few days ago": a window, not a count


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


def count(text: str | None) -> int | None:
    """A count in digits, Chinese or English words ('3', '三', 'three', 'a couple of'); None means one."""
    if text is None:
        return 1
    word = " ".join(text.lower().split())
    if word in EN_NUMBERS:
        return EN_NUMBERS[word]
    if word in ("couple", "couple of", "a couple of"):
        return 2
    return chinese_to_int(word)

"""Finding known place names in a question: '在青岛', 'bus stop in Paris', 'flag of the US'.

Conventions:
- The longest known surface form wins (one with a marker such as 在/in/at first).
- Latin names match case-insensitively on word boundaries ("Paris" not in "Parisian"); Latin names of 3
  letters or fewer only in capitals ("US", never "us"); a few that are common English words only capitalised
  ("Nice", "Reading").
- One-character Chinese names are ignored, and a Chinese name followed by 菜/料理/啤酒/... is not a place.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from smartalbum.search.query.common import GONE, LOOKBACK

__all__ = ["PLACE_TAIL_ZH", "PlaceHit", "PlaceMatcher", "place_marker"]

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
PLACE_TAIL_ZH = re.compile(r"(?:市|省)")  # '青岛市': the suffix goes with the name


def place_marker(text: str, start: int) -> re.Match[str] | None:
    """'在' / 'in the' right before a place name."""
    window = max(0, start - LOOKBACK)
    return _PLACE_MARKER_ZH.search(text, window, start) or _PLACE_MARKER_EN.search(text, window, start)


def _fold(text: str) -> str:
    """Lower-case without changing the length, so offsets into the folded text are offsets into `text`."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _is_latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True)
class PlaceHit:
    """One known place name in the text; `marked` when 在/in/at... comes right before it."""

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
            if not folded or not key or GONE in folded:
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

    def find(self, text: str) -> list[PlaceHit]:
        """Every known place in `text` (the longest at each position), left to right, not overlapping."""
        folded, hits, index = _fold(text), [], 0
        while index < len(text):
            if (
                text[index].isspace()
                or text[index] == GONE
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
                    marked = place_marker(text, index) is not None
                    surface = text[index : index + length]
                    hits.append(PlaceHit(index, index + length, self.names[name], surface, marked))
                    index += length - 1
                    break
            index += 1
        return hits

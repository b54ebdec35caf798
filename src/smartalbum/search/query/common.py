"""What every part of the query parser shares: the consumed-text marker, the look-back window, alternations.

The parser works on one string: each stage (time, negation, place) finds its phrases, then overwrites them
with GONE, so offsets stay valid and later stages cannot match across what an earlier one took.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["GONE", "LOOKBACK", "alternation", "consume"]

GONE = "\x00"  # consumed characters are overwritten with this, so offsets stay valid and later patterns stop
LOOKBACK = 32  # how far back markers ('since', 'between', '在') are looked for: keeps the work linear


def alternation(words: Iterable[str], *, latin: bool = False) -> str:
    """A regex alternation, longest first so '上上个月' beats '上个月'; Latin words allow any spacing."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = re.escape(word)
        parts.append(escaped.replace(r"\ ", r"\s+").replace("'", "['’]?") if latin else escaped)
    return "|".join(parts)


def consume(work: str, start: int, end: int) -> str:
    """`work` with [start, end) overwritten by GONE."""
    return work[:start] + GONE * (end - start) + work[end:]

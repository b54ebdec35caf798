"""Feedback on results: a photo marked wrong for a query is dropped for it and pushed down for similar
queries; one marked right is lifted. Verdicts are keyed by content hash, so they survive moves."""

from __future__ import annotations

import re
import unicodedata

_FOLD = re.compile(r"[\W_]+", re.UNICODE)


def query_key(query: str) -> str:
    """Case, width, spaces and punctuation folded: 'Dogs, on the beach!' == 'dogs on the beach'."""
    text = unicodedata.normalize("NFKC", query).casefold()
    return " ".join(_FOLD.sub(" ", text).split())

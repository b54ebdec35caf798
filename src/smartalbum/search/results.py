"""What search returns: the same shapes for the CLI (--json), the Python API and the HTTP API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

Sort = Literal["relevance", "date"]


@dataclass
class SearchFilters:
    """Hard filters given explicitly (CLI flags, web form); they add to what the question itself says."""

    date_from: date | None = None
    date_to: date | None = None
    place: str | None = None  # a place name in English or Chinese: city, region or country
    sort: Sort = "relevance"
    min_score: float | None = None  # hits scoring less are left out; None = the default cut-off
    verify: bool | None = None  # check the question's condition with the vision model; None = settings
    ignore: tuple[str, ...] = ()  # parts of the reading taken back (search/query STEP_KINDS): chips removed
    all_similar: bool = False  # every near-duplicate as a hit of its own, not one per group


@dataclass
class SimilarPhotos:
    """Near-duplicates of a hit that matched too and were folded into it (search/collapse.py)."""

    group_id: int
    count: int
    photo_ids: list[int]  # in rank order


@dataclass
class SearchHit:
    photo_id: int
    hash: str
    score: float  # in [0, 1]; the same number means the same strength of match in any query
    path: str | None
    taken_at: str | None
    time_source: str | None
    place: str | None
    caption: dict[str, str] = field(default_factory=dict)  # {"zh": ..., "en": ...}
    why: list[str] = field(default_factory=list)  # human-readable reasons, in the query's language
    highlights: dict[str, str] = field(default_factory=dict)  # field -> snippet with [matched] terms
    width: int | None = None
    height: int | None = None
    weak: bool = False  # little evidence: shown because nothing better matched
    people: list[dict[str, Any]] = field(default_factory=list)  # named people in the photo: id, name, is_me
    verified: float | None = None  # P(yes) when the vision model checked the question's condition
    media: str = "photo"  # photo | video
    duration_s: float | None = None  # a video's length
    # a video's moments that matched, best first: t and end (seconds), kind (frame | speech), text, score
    moments: list[dict[str, Any]] = field(default_factory=list)
    similar: SimilarPhotos | None = None  # the near-duplicates folded into this hit


@dataclass
class SearchResults:
    query: str
    semantic: str  # what was searched by meaning after time/place/negation were taken out
    language: str  # "zh" | "en": the language of `understood` and `why`
    understood: list[str]  # how the question was read, e.g. ["taken 2025-06-01 to 2025-08-31", "place: 青岛"]
    total: int  # hits above the cut-off, before offset/limit
    offset: int
    limit: int
    hits: list[SearchHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "query cut to 1,000 characters", "index rebuilt"
    complete: bool = True  # False: a relevance list cut at the retrievers' depth; `total` is a lower bound
    # False: a listing by date stopped reading at the page; `total` is an estimate (two significant figures)
    total_exact: bool = True

    # (kind, line) behind each line of `understood`; the kind is what `SearchFilters.ignore` takes back
    steps: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [{"kind": k, "text": t} for k, t in self.steps]
        return data


def clock(seconds: float) -> str:
    """A time in a video as a player shows it: 1:23, 1:02:03."""
    whole = max(int(seconds), 0)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"

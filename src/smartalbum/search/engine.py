"""Search: understand the question, filter, retrieve by meaning and by words, fuse, apply feedback, explain.

Order of work: parse the question (trip, time, weekends, negation, people, place; optionally a language
model's plan for what the rules left) -> the trips it names -> hard filters as a set of allowed photos (dates,
places, birthdays, weekends, people, trips) -> dense (FAISS) and full-text (FTS5/BM25) retrieval inside that
set -> reciprocal-rank fusion -> feedback -> exclusions -> a score in [0, 1] and a relevance cut-off ->
optionally the vision model's check of the condition on the best -> explanations. Every step of the reading
is a (kind, line) in `steps`, and `SearchFilters.ignore` takes steps back.

The score blends rank agreement (RRF, normalised so that first in every list is 1) with absolute evidence
(calibrated cosine similarity, share of query words matched), so a score means about the same strength of
match in any query, and a query with no good match returns few or no results.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from collections.abc import Callable, Generator
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from smartalbum.catalog import Catalog
from smartalbum.catalog.columns import FilterColumns
from smartalbum.catalog.db import PhotoFilter
from smartalbum.config import Settings
from smartalbum.embed.text import TextEmbedder
from smartalbum.errors import InputError
from smartalbum.index.fulltext import WEAK_TERM, TextHits, WordEvidence, query_terms, weak_matchable
from smartalbum.index.photoids import PhotoIds, PhotoMask, id_array
from smartalbum.index.vectors import EXACT_K
from smartalbum.search.calibration import calibration
from smartalbum.search.collapse import collapse_similar
from smartalbum.search.documents import MOMENT_BASE, item_of, split_moment, video_moments
from smartalbum.search.feedback import query_key
from smartalbum.search.indexer import SearchIndexes
from smartalbum.search.query import ParsedQuery, PeopleDirectory, PlaceMatcher, TripRef, parse_query
from smartalbum.search.query.people import fold as fold_name
from smartalbum.search.results import SearchFilters, SearchHit, SearchResults, SimilarPhotos, clock

MAX_QUERY_CHARS = 1000
POOL = 200  # candidates taken from each retriever before fusion
MAX_MOMENTS = 5  # matching moments shown per video
RRF_K = 60
# a listing by date (_by_date): libraries (or filters) up to WALK_ALL photos are read whole, for an exact
# total; beyond, a walk newest first stops at a full page and SAMPLE photos estimate the total. When the
# sample says fewer than one page in WALK_MOST photos matches, the retrievers gather the matches instead,
# up to GATHER from each.
WALK_ALL = 4_096
BLOCK = 1_024  # photos read first; each block after twice the last, up to 16 times this
SAMPLE = 1_024
MIN_SAMPLE = 256
WALK_MOST = 4_096
GATHER = 4_000
# a time or place filter allowing more photos than READ_FILTER, and at least BROAD_SHARE of the library, is
# not read whole: each candidate is checked against it
READ_FILTER = 50_000
BROAD_SHARE = 0.08
# the photos' time and place are kept in memory (FilterColumns) and read again when they change; while they
# change often (an ingestion under way) and take long to read, SQLite answers filters between two reads
REREAD_SLOW_S = 0.2
REREAD_GAP_S = 60.0
VERIFIED_YES = 0.5  # P(yes) from the vision model at which a checked photo stays
# The word list's say in rank agreement, against 1 for the dense list: on paraphrased descriptions (val of
# bench/quality.py) full weight cost 1-4 points of recall; words still decide through `relevance`.
TEXT_LIST_WEIGHT = 0.3
VERIFY_CHECK_S = 60.0  # how long the answer to "is a check by the vision model cheap here" is kept
DEFAULT_MIN_SCORE = 0.2  # hits scoring less are not shown (--min-score replaces it)
STRONG_RELEVANCE = 0.5  # hits with less evidence than this are marked weak
PEOPLE_WORDS = frozenset(
    {"人", "人物", "人们", "行人", "游客", "people", "person", "persons", "humans", "human"}
)
TIME_SOURCE_LABEL = {
    "en": {
        "exif_original": "EXIF",
        "exif_digitized": "EXIF",
        "exif_datetime": "EXIF",
        "filename": "file name",
        "mtime": "file date, may be off",
    },
    "zh": {
        "exif_original": "EXIF",
        "exif_digitized": "EXIF",
        "exif_datetime": "EXIF",
        "filename": "文件名",
        "mtime": "文件日期，可能不准",
    },
}


@dataclass(slots=True)
class _Candidate:
    photo_id: int
    rrf: float = 0.0
    cosine: float | None = None
    matched: tuple[str, ...] = ()  # query terms found as words
    weak_terms: tuple[str, ...] = ()  # query terms found only inside other words (猫 in 熊猫)
    words: float = 0.0  # share of the query's terms matched, weak ones discounted
    relevance: float = 0.0  # absolute evidence in [0, 1]: calibrated cosine and words matched
    score: float = 0.0  # relevance, scaled down by up to half when the retrievers rank the photo low
    weak: bool = False
    feedback: str | None = None
    verified: float | None = None  # P(yes) from the vision model's check of the question's condition
    moments: tuple[tuple[int, float], ...] = ()  # a video's matching moments: (k, score)


def _fold_moments(cands: dict[int, _Candidate]) -> None:
    """A video's moments (keyframes, stretches of speech) are found as documents of their own: each becomes
    evidence for its video, which takes its best moment's evidence when that beats its own, and keeps the
    list of moments that matched."""
    for doc_id in [i for i in cands if i >= MOMENT_BASE]:
        moment = cands.pop(doc_id)
        video_id, k = split_moment(doc_id) or (0, 0)
        video = cands.get(video_id)
        if video is None or moment.score > video.score:
            moment.photo_id, moment.moments = video_id, video.moments if video else ()
            cands[video_id] = video = moment
        video.moments = (*video.moments, (k, moment.score))


def _evidence(
    cosine: np.ndarray, words: np.ndarray, rrf: np.ndarray, best_rrf: float, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """(relevance, score) of photos, in arrays. Either kind of evidence (calibrated cosine, NaN: none; share
    of the query's words matched) can make a photo relevant; both together make it more so. Words count by
    the share matched, squared: half the words of "red bicycle" is weak evidence, not half. Rank agreement
    (RRF over the relevance lists, `best_rrf` for first in every list) orders photos of similar strength but
    never lifts a weak one: it scales the evidence by 0.5 to 1."""
    dense = np.nan_to_num(np.clip((cosine - lo) / (hi - lo), 0.0, 1.0), nan=0.0)
    relevance = 1.0 - (1.0 - dense) * (1.0 - 0.9 * words**2)
    return relevance, relevance * (0.5 + 0.5 * rrf / best_rrf)


def _candidates(
    ids: np.ndarray,
    cosine: np.ndarray,
    rrf: np.ndarray,
    words: np.ndarray,
    relevance: np.ndarray,
    score: np.ndarray,
    matched: dict[int, tuple[tuple[str, ...], tuple[str, ...]]],
) -> dict[int, _Candidate]:
    """Candidates from arrays of their evidence, in the arrays' order; `matched`: the terms each photo has."""
    cands: dict[int, _Candidate] = {}
    nothing: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    for pid, cos, r, w, rel, sc in zip(  # Python numbers, taken out of the arrays at once
        ids.tolist(),
        cosine.tolist(),
        rrf.tolist(),
        words.tolist(),
        relevance.tolist(),
        score.tolist(),
        strict=True,
    ):
        c = _Candidate(
            pid,
            rrf=r,
            cosine=None if cos != cos else cos,  # NaN: no vector
            words=w,
            relevance=rel,
            score=round(sc, 4),
            weak=rel < STRONG_RELEVANCE,
        )
        c.matched, c.weak_terms = matched.get(pid, nothing)
        cands[pid] = c
    return cands


@dataclass(frozen=True)
class _Broad:
    """A time or place filter that allows too many photos to read them all (a season of a million photos):
    candidates are checked against it instead (the graph walk skips the others by its `mask`; without one,
    the retrievers are asked for 1/share times more)."""

    where: PhotoFilter
    share: float  # of the library, measured on the sample
    sample: list[int]  # the sample's photos inside the filter
    # the photos passing it by id, when the photos' time and place in memory answered it: the graph walk
    # then skips the others (a bitmap), rather than being asked for 1/share times more and checked
    mask: PhotoMask | None = None


@dataclass(frozen=True)
class _Listing:
    """A listing of every photo that reaches the cut-off (by date, or inside filters): what stays fixed
    while photos are read."""

    semantic: str
    text: str  # the question as typed: verdicts are keyed by it
    exclude: tuple[str, ...]
    allowed: AbstractSet[int] | None  # the photos that pass every filter; None: all (or `broad`)
    newest: list[int] | None  # `allowed` newest first, for a listing by date (None: not needed, or all)
    broad: _Broad | None  # a time or place filter checked on candidates, not read whole
    min_score: float
    verdicts: list[tuple[str, int, str]]
    need: int  # photos to show, counting from the first
    keep_all: bool  # near-duplicates not folded

    @property
    def keep(self) -> frozenset[int]:
        """Photos with verdicts: scored whatever their evidence (a verdict can lift them)."""
        return frozenset(pid for _, pid, _ in self.verdicts)


def _blocks(ids: list[int], first: int = BLOCK, most: int = 16 * BLOCK) -> Generator[list[int]]:
    """`ids` a block at a time, each twice the last up to `most`."""
    start, size = 0, first
    while start < len(ids):
        yield ids[start : start + size]
        start, size = start + size, min(size * 2, most)


def _inside(ids: np.ndarray, mask: np.ndarray, allowed: AbstractSet[int]) -> np.ndarray:
    """Those of sorted document `ids` allowed: photos by `mask` (indexed by photo id), a video's moments
    when the video is allowed."""
    photos = ids[ids < len(mask)]
    moments = [d for d in ids[ids >= MOMENT_BASE].tolist() if item_of(d) in allowed]
    return np.concatenate([photos[mask[photos]], np.array(moments, dtype=np.int64)])


def _round_estimate(n: float) -> int:
    """An estimated count to two significant figures (41,359 -> 41,000)."""
    if n < 100:
        return round(n)
    scale = 10 ** (len(str(int(n))) - 2)
    return int(round(n / scale) * scale)


@dataclass
class _Pools:
    """A question's relevance lists: each retriever's best POOL photos (the dense list; the words' list, with
    the dense photos it only re-scored after it). Rank agreement is reciprocal-rank fusion over them."""

    terms: tuple[str, ...]
    qvec: np.ndarray | None  # None: no search by meaning
    lo: float  # the embedding model's calibration: unrelated and clearly related cosines
    hi: float
    dense_ids: np.ndarray
    dense_cos: np.ndarray
    found_text: TextHits
    # every photo the dense search gave (inside a broad filter: those inside, not only the first POOL), and
    # the cosine above which it found every one (-inf: it gave all it could; inf: unknown)
    near_ids: list[int] = dataclasses.field(default_factory=list)
    near_cos: list[float] = dataclasses.field(default_factory=list)
    reach: float = math.inf
    within: AbstractSet[int] | None = None  # what the dense search was limited to (None: every photo)
    text: WordEvidence = dataclasses.field(init=False)
    ids: np.ndarray = dataclasses.field(init=False)  # every photo of both lists, sorted
    at_dense: np.ndarray = dataclasses.field(init=False)  # where each list's photos are in `ids`
    at_text: np.ndarray = dataclasses.field(init=False)
    rrf: np.ndarray = dataclasses.field(init=False)  # per photo of `ids`
    best_rrf: float = dataclasses.field(init=False)  # first in every list

    def __post_init__(self) -> None:
        if self.terms:
            self.text = WordEvidence.of_hits(self.terms, self.found_text)
        else:
            self.text = WordEvidence.nothing(self.terms)
        n_dense = len(self.dense_ids)
        self.ids, at_both = np.unique(np.concatenate([self.dense_ids, self.text.ids]), return_inverse=True)
        self.at_dense, self.at_text = at_both[:n_dense], at_both[n_dense:]
        self.rrf = np.zeros(len(self.ids))
        weights = [1.0] if n_dense else []
        self.rrf[self.at_dense] += 1.0 / (RRF_K + np.arange(n_dense) + 1)
        if len(self.text):  # a list with nothing in it has no say in agreement
            weights.append(TEXT_LIST_WEIGHT)
            self.rrf[self.at_text] += TEXT_LIST_WEIGHT / (RRF_K + np.arange(len(self.text)) + 1)
        self.best_rrf = max(sum(weights), 1e-9) / (RRF_K + 1)

    def rrf_of(self, ids: np.ndarray) -> np.ndarray:
        """Rank agreement of any photos: 0 for those in neither list."""
        out = np.zeros(len(ids))
        if len(self.ids) and len(ids):
            at = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
            hit = self.ids[at] == ids
            out[hit] = self.rrf[at[hit]]
        return out


@dataclass
class _Parts:
    """What scoring photos from their own vector and words needs that does not depend on the relevance
    lists: their documents (a video's moments after the photos), cosines and words."""

    docs: np.ndarray
    cosine: np.ndarray
    found: WordEvidence | None  # None: the question has no words

    @property
    def words(self) -> np.ndarray:
        if self.found is None:
            return np.zeros(len(self.docs))
        return self.found.coverage / len(self.found.terms)


@functools.lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    """Segmented query terms, cached: feedback compares every search with every verdict's query."""
    return tuple(query_terms(text))


def _birthday_days(birthdays: list[tuple[int, int]]) -> list[str]:
    """'MM-DD' of each birthday and the days either side (a party is often the day before or after)."""
    out: list[str] = []
    for month, day in birthdays:
        anchor = date(2000, month, day)  # a leap year, so 02-29 exists
        out += [(anchor + timedelta(days=k)).strftime("%m-%d") for k in (-1, 0, 1)]
    return sorted(set(out))


def _months_between(start: str, end: str) -> set[int]:
    """The months (1-12) a span of local ISO times touches."""
    y, m = int(start[:4]), int(start[5:7])
    last = (int(end[:4]), int(end[5:7]))
    out: set[int] = set()
    while (y, m) <= last and len(out) < 12:
        out.add(m)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _place_key(field_: str, canonical: str, cc: str, region: str | None) -> str:
    return "|".join([field_, canonical, cc, region or ""])


def _split_place_key(key: str) -> tuple[str, str, str | None, str | None]:
    field_, canonical, cc, region = [*key.split("|"), "", "", ""][:4]
    return field_, canonical, cc or None, region or None


class SearchEngine:
    def __init__(
        self,
        settings: Settings,
        embedder: TextEmbedder | None = None,
        *,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.settings = settings
        self.indexes = SearchIndexes(settings, embedder)
        self.today = today
        self._matcher: PlaceMatcher | None = None
        self._places_zh: dict[str, str] = {}
        self._lock = threading.Lock()
        self._planner: Any = None
        self._verify_cheap = (-math.inf, False)  # (when asked, whether the vision model's check is cheap)
        self._broads: dict[tuple[str, str, int, int, float], _Broad | None] = {}  # _broad's, oldest first
        self._columns: tuple[FilterColumns, float, float] | None = None  # (columns, read when, seconds)
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="search")  # graph walks

    # -- places -----------------------------------------------------------------------------------

    def place_matcher(self) -> PlaceMatcher:
        with self._lock:
            if self._matcher is None:
                from smartalbum.ingest.places import place_names

                names: dict[str, str] = {}
                for p in place_names():
                    key = _place_key(p.field, p.canonical, p.country_code, p.region)
                    if p.lang == "zh":
                        self._places_zh.setdefault(key, p.name)
                    if not p.common_word:  # "Nice", "日照": too often an ordinary word to filter on
                        names.setdefault(p.name, key)
                self._matcher = PlaceMatcher.build(names)
            return self._matcher

    def _resolve_place(self, text: str) -> str:
        from smartalbum.ingest.places import find_place_names

        found = find_place_names(text)
        if not found:
            raise InputError(
                f"unknown place {text!r}", "give a city, province/region or country, e.g. 青岛 or Paris"
            )
        p = found[0]
        return _place_key(p.field, p.canonical, p.country_code, p.region)

    def place_label(self, key: str, lang: str) -> str:
        self.place_matcher()
        canonical = _split_place_key(key)[1]
        return self._places_zh.get(key, canonical) if lang == "zh" else canonical

    # -- checking a condition with the vision model --------------------------------------------------

    def _should_verify(self, filters: SearchFilters, has_filter: bool) -> bool:
        """Asked for (--verify), or by default where it is cheap: a filtered question (a trip, people, a
        time or place) on a GPU or a vision server. On a CPU a check costs seconds a photo: opt in."""
        if filters.verify is not None:
            return filters.verify
        mode = self.settings.verify_visual
        if mode != "auto":
            return mode == "on"
        if not has_filter:
            return False
        at, cheap = self._verify_cheap
        if time.monotonic() - at > VERIFY_CHECK_S:  # looks at the machine and the model files: ~4 ms
            from smartalbum.vision.backends import cuda_available, resolve_vlm_backend

            backend = resolve_vlm_backend(self.settings)  # "auto": the engine this machine uses
            # no torch import without a GPU driver
            cheap = backend == "openai" or (backend == "transformers" and cuda_available())
            self._verify_cheap = (time.monotonic(), cheap)
        return cheap

    def _verified(
        self,
        catalog: Catalog,
        ranked: list[_Candidate],
        condition: str,
        zh: bool,
        steps: list[tuple[str, str]],
        notes: list[str],
    ) -> list[_Candidate]:
        """The vision model checks the best candidates against the question's condition; those it says
        no to (P(yes) < 0.5) are left out, the rest keep their order. What was not checked (cap, time, no
        model) stays, and the answer says so."""
        from smartalbum.search.verify import verify_candidates
        from smartalbum.vision.verify import verifier

        model, reason = verifier(self.settings)
        head = ranked[: self.settings.verify_max_photos]
        hashes = catalog.photo_summaries([c.photo_id for c in head])
        report = verify_candidates(
            catalog,
            self.settings,
            model,
            [(c.photo_id, hashes[c.photo_id]["hash"]) for c in head],
            condition,
            max_photos=self.settings.verify_max_photos,
            max_seconds=self.settings.verify_max_seconds,
        )
        if model is None or not report.probabilities:
            why = reason or report.note or ""
            notes.append(
                f"没有可用的视觉模型，未核对“{condition}”：{why}"
                if zh
                else f"not checked by the vision model ({why})"
            )
            return ranked
        kept = []
        for c in ranked:
            p = report.probabilities.get(c.photo_id)
            c.verified = p
            if p is None or p >= VERIFIED_YES:
                kept.append(c)
        yes = sum(1 for p in report.probabilities.values() if p >= VERIFIED_YES)
        looked = len(report.probabilities)
        unchecked = len(ranked) - looked
        steps.append(
            (
                "verify",
                f"其中“{condition}”的：{yes} 张（视觉模型核对了 {looked} 张，"
                f"{report.checked} 张新核对，用时 {report.elapsed_s:.1f} 秒）"
                if zh
                else f"of these, {condition}: {yes} (the vision model checked {looked}, "
                f"{report.checked} new, in {report.elapsed_s:.1f} s)",
            )
        )
        if unchecked > 0:
            notes.append(
                f"还有 {unchecked} 张未经视觉模型核对"
                if zh
                else f"{unchecked} more were not checked by the vision model"
            )
        return kept

    # -- the optional planner -----------------------------------------------------------------------

    def _planned(self, parsed: ParsedQuery, directory: PeopleDirectory, notes: list[str]) -> ParsedQuery:
        """The rules' reading with what a language model's plan adds (search/planner.py); the rules' reading
        alone when there is no usable plan, with a note saying why."""
        from smartalbum.search.planner import PlanError, Planner

        zh = parsed.language == "zh"
        with self._lock:
            if self._planner is None:
                self._planner = Planner(self.settings)
            planner = self._planner
        try:
            plan = planner.plan(parsed.text, today=self.today(), people=sorted(directory.names))
        except PlanError as exc:
            notes.append(f"规划器不可用，按规则理解：{exc}" if zh else f"planner not used: {exc}")
            return parsed
        changes: dict[str, Any] = {}
        said: list[str] = []

        def person(name: str) -> int | None:
            if name.casefold() in {"me", "我", "myself"}:
                return directory.me
            return directory.names.get(fold_name(name))

        if (plan.date_from or plan.date_to) and not (parsed.date_from or parsed.date_to or parsed.months):
            changes["date_from"], changes["date_to"] = plan.date_from, plan.date_to
            said.append(f"{plan.date_from or '…'} – {plan.date_to or '…'}")
        if plan.place and not parsed.place:
            try:
                changes["place"], changes["place_text"] = self._resolve_place(plan.place), plan.place
                said.append(plan.place)
            except InputError:
                pass
        wanted = [p for p in (person(n) for n in plan.people) if p is not None]
        if wanted and not parsed.people:
            changes["people"], changes["people_only"] = tuple(dict.fromkeys(wanted)), plan.only_people
            said.append(", ".join(directory.label(p, zh) for p in changes["people"]))
        unwanted = [p for p in (person(n) for n in plan.without_people) if p is not None]
        if unwanted and not parsed.people_excluded:
            changes["people_excluded"] = tuple(dict.fromkeys(unwanted))
            said.append("-" + ", -".join(directory.label(p, zh) for p in changes["people_excluded"]))
        if plan.trip and not parsed.trip:
            label = "规划" if zh else "plan"
            changes["trip"] = TripRef(plan.trip.nth, plan.trip.day, label)
            said.append(("旅行" if zh else "trip") + f" {plan.trip.nth}")
        if plan.exclude and not parsed.exclude:
            changes["exclude"] = tuple(plan.exclude)
            said.append("-" + ", -".join(plan.exclude))
        if plan.weekend and not parsed.weekend:
            changes["weekend"] = True
            said.append("周末" if zh else "weekends")
        if not changes:
            return parsed
        changes["semantic"] = " ".join(plan.search.split())
        line = ("语言模型补充：" if zh else "the planner added: ") + "; ".join(said)
        steps = [*parsed.steps, ("planner", line)]
        return dataclasses.replace(parsed, understood=[t for _, t in steps], steps=steps, **changes)

    # -- trips ------------------------------------------------------------------------------------

    def _trip_photos(
        self,
        catalog: Catalog,
        parsed: ParsedQuery,
        date_from: date | None,
        date_to: date | None,
        months: tuple[int, ...],
        place_key: str | None,
        steps: list[tuple[str, str]],
    ) -> set[int]:
        """The photos of the trip(s) a question refers to, chosen by its ordinal, place and time; says which
        trips in `steps` ("上次旅行 → 2024-07-10 至 2024-07-14 青岛（46 张）")."""
        from smartalbum.events.sync import sync_events

        ref = parsed.trip
        assert ref is not None
        zh = parsed.language == "zh"
        sync_events(catalog)  # a no-op while no photo, time or place changed
        today = self.today().isoformat()
        trips = [t for t in reversed(catalog.events.trips()) if t["start_local"][:10] <= today]
        if place_key:
            field_, canonical, cc, _ = _split_place_key(place_key)
            if field_ == "country":
                trips = [t for t in trips if cc in t["places"].get("country_codes", [])]
            else:
                key = "cities_en" if field_ == "city" else "regions_en"
                trips = [t for t in trips if canonical in t["places"].get(key, [])]
        if date_from or date_to:
            lo, hi = (date_from or date.min).isoformat(), (date_to or date.max).isoformat()
            trips = [t for t in trips if t["start_local"][:10] <= hi and t["end_local"][:10] >= lo]
        if months:
            trips = [t for t in trips if _months_between(t["start_local"], t["end_local"]) & set(months)]
        if ref.nth is not None:
            trips = [trips[ref.nth]] if -len(trips) <= ref.nth < len(trips) else []
        photos: set[int] = set()
        for t in trips:
            days = catalog.events.days(t["id"])
            if ref.day is not None:
                index = ref.day - 1 if ref.day > 0 else ref.day
                chosen = days[index] if -len(days) <= index < len(days) else []
            else:
                chosen = [p for day in days for p in day]
            photos.update(chosen)
            start, end = t["start_local"][:10], t["end_local"][:10]
            day = ""
            if ref.day is not None:
                day = (
                    ("最后一天" if ref.day == -1 else f"第{ref.day}天")
                    if zh
                    else ("last day" if ref.day == -1 else f"day {ref.day}")
                )
                day = f"，{day}" if zh else f", {day}"
            steps.append(
                (
                    "trip",
                    f"{ref.text} → {start} 至 {end} {t['title_zh']}{day}（{len(chosen)} 张）"
                    if zh
                    else f"{ref.text} → {t['title_en']}, {start} to {end}{day} ({len(chosen)} photos)",
                )
            )
        if not trips:
            steps.append(
                ("trip", f"{ref.text} → 没有找到符合的旅行" if zh else f"{ref.text} → no trip matches")
            )
        return photos

    # -- people -----------------------------------------------------------------------------------

    @staticmethod
    def people_directory(catalog: Catalog) -> PeopleDirectory:
        """The library's named people and its owner, read per question (a name given a second ago counts)."""
        names, me = catalog.people.directory()
        shown = catalog.people.display_names(set(names.values()))
        return PeopleDirectory(names, me, shown, catalog.people.birthdays())

    # -- search -----------------------------------------------------------------------------------

    def search(
        self, catalog: Catalog, query: str, filters: SearchFilters, limit: int, offset: int
    ) -> SearchResults:
        notes: list[str] = []
        text = " ".join((query or "").split())
        if len(text) > MAX_QUERY_CHARS:
            text = text[:MAX_QUERY_CHARS]
            notes.append(f"query cut to its first {MAX_QUERY_CHARS} characters")
        directory = self.people_directory(catalog)
        ignore = frozenset(filters.ignore)
        parsed = parse_query(
            text, today=self.today(), places=self.place_matcher(), people=directory, ignore=ignore
        )
        lang = parsed.language
        zh = lang == "zh"
        if self.settings.planner_base_url and parsed.semantic and "planner" not in ignore:
            parsed = self._planned(parsed, directory, notes)
        sync = self.indexes.sync(catalog, wait=False)
        notes += [f"rebuilt {r}" for r in sync.rebuilt]
        if sync.busy:
            notes.append(
                "搜索索引正在由另一个进程更新，最新的照片可能还搜不到"
                if zh
                else "another process is updating the search index: the newest photos may be missing"
            )
        if sync.embed_error:
            notes.append(
                sync.embed_error if sync.embedder else f"words only, no semantic search: {sync.embed_error}"
            )
        steps = list(parsed.steps)
        date_from, date_to, place_key = self._merge_filters(parsed, filters, lang, steps)
        # `understood` is the lines of `steps`, filled in at each return
        results = SearchResults(text, parsed.semantic, lang, [], 0, offset, limit, notes=notes, steps=steps)
        by_people = bool(parsed.people or parsed.people_excluded)
        trip_photos: AbstractSet[int] | None = None
        months = parsed.months
        if parsed.trip:  # the question's place and time choose trips, not photos
            trip_photos = self._trip_photos(catalog, parsed, date_from, date_to, months, place_key, steps)
            date_from = date_to = place_key = None
            months = ()
        has_filter = bool(
            date_from
            or date_to
            or months
            or place_key
            or parsed.people
            or parsed.weekend
            or parsed.birthday_of
            or trip_photos is not None
        )
        if not parsed.semantic and not has_filter:
            if parsed.exclude or parsed.people_excluded:
                notes.append(
                    "只有排除条件：请说出要找什么（例如 “海边 不要人”）"
                    if zh
                    else "only exclusions: say what to look for too (e.g. 'beach without people')"
                )
            else:
                notes.append("空查询：请输入想找的内容" if zh else "empty query: type what you remember")
            results.understood = [line for _, line in steps]
            return results
        where = PhotoFilter(
            date_from=date_from.isoformat() if date_from else None,
            date_before=(date_to + timedelta(days=1)).isoformat() if date_to else None,
            months=months,
            place=_split_place_key(place_key) if place_key else None,
            weekend=parsed.weekend,
            month_days=_birthday_days([directory.birthdays[p] for p in parsed.birthday_of]),
        )
        verdicts = catalog.active_feedback()
        if (
            not parsed.semantic
            and trip_photos is None
            and not by_people
            and not parsed.exclude
            and filters.min_score is None
            and self._listing_in_sql(catalog, text, verdicts)
        ):
            # only a time or a place: the count and one page come from SQL, not every match (a year of a
            # million photos is 100,000 of them), in the order and with the folding of the general path
            key = query_key(text)
            wrong = tuple(pid for k, pid, verdict in verdicts if k == key and verdict == "bad")
            listing = catalog.filter_listing(
                dataclasses.replace(where, without=wrong),
                offset=offset,
                limit=limit,
                fold_similar=not filters.all_similar,
            )
            page = [_Candidate(pid, relevance=1.0, score=1.0) for pid in listing.ids]
            # similar questions' verdicts only nudge these scores (checked by _listing_in_sql)
            self._apply_feedback(catalog, {c.photo_id: c for c in page}, text, "", None, verdicts)
            results.total = listing.total
            folded = {
                pid: SimilarPhotos(group_id=group, count=len(others), photo_ids=others)
                for pid, (group, others) in listing.folded.items()
            }
            return self._finish(catalog, results, page, folded, parsed, lang, directory, has_filter)
        newest: list[int] | None = None  # photos passing the filters (newest first when they are the answer)
        broad: _Broad | None = None  # a time or place filter too broad to read whole: checked on candidates
        if has_filter and parsed.semantic and trip_photos is None and not by_people:
            broad = self._broad(catalog, where)
        allowed: AbstractSet[int] | None = None
        if has_filter and broad is None:
            source = self._filters(catalog, where)
            if isinstance(source, FilterColumns):
                passing = source.filter_array(where)
            else:  # in order when that is the answer's order: by relevance they are a set
                ordered = not parsed.semantic or filters.sort == "date"
                passing = np.array(source.filter_photo_ids(where, ordered=ordered), dtype=np.int64)
            if trip_photos is not None:
                passing = passing[np.isin(passing, list(trip_photos))]
            newest, allowed = passing.tolist(), PhotoIds(passing)
        if by_people:
            with_people = set(
                catalog.people.photo_ids_with_people(
                    parsed.people, only=parsed.people_only, none_of=parsed.people_excluded
                )
            )
            allowed = with_people if allowed is None else allowed & with_people
            newest = [p for p in newest if p in with_people] if newest is not None else None
        # the default cut-off and --min-score act on the same number: the score a hit shows
        min_score = DEFAULT_MIN_SCORE if filters.min_score is None else filters.min_score
        total, exact = 0, True
        ranked: list[_Candidate] | None = None
        pools: _Pools | None = None
        gave_up = False  # inside filters, by relevance: too many could match to gather them
        if parsed.semantic and (filters.sort == "date" or allowed is not None or broad is not None):
            # every photo that reaches the cut-off: newest first, or inside filters by relevance
            if filters.sort == "date" and allowed is not None and newest is None:  # people only
                newest = self._filters(catalog).newest_first(sorted(allowed))
            every = _Listing(
                parsed.semantic,
                text,
                parsed.exclude,
                allowed,
                newest,
                broad,
                min_score,
                verdicts,
                offset + limit,
                filters.all_similar,
            )
            sample = self._date_sample(every) if filters.sort == "date" else None
            early: list[_Parts] = []  # the sample's cosines and words, while the graph walk runs

            def meanwhile() -> None:
                assert sample is not None
                qvec = self.indexes.query_vector(parsed.semantic)
                early.append(self._parts(qvec, tuple(query_terms(parsed.semantic)), sample))

            pools = self._pools(catalog, parsed.semantic, allowed, broad, meanwhile if sample else None)
            if filters.sort == "date":
                ranked, total, exact = self._by_date(catalog, pools, every, sample, *early)
            else:
                ranked = self._gathered(catalog, pools, every)
                gave_up = ranked is None
        if ranked is None:
            # sorted by relevance: each retriever's best (POOL); filters only: every photo passing them
            cands, cut = self._retrieve(catalog, parsed.semantic, allowed, newest, pools)
            self._apply_feedback(catalog, cands, text, parsed.semantic, allowed, verdicts)
            if broad is not None:  # a verdict's photo comes back only inside the filter
                inside = self._filters(catalog, broad.where).filter_among(broad.where, cands)
                cands = {pid: c for pid, c in cands.items() if pid in inside}
            self._exclude(cands, parsed.exclude)
            ranked = [c for c in cands.values() if c.feedback == "good" or c.score >= min_score]
            if (cut is not None and cut >= min_score) or gave_up:
                # the last candidate a retriever gave would itself be shown: weaker matches were left out
                results.complete = False
                if ranked:
                    notes.append(
                        f"只列出了最相关的 {len(ranked)} 张；按时间排序可以看到全部"
                        if zh
                        else f"showing the best {len(ranked)} matches only; sort by date to see them all"
                    )
        # a listing by date is newest first as read, and a date or place alone as the catalog returned it
        if parsed.semantic and filters.sort != "date":
            ranked.sort(key=lambda c: (-c.score, -(c.cosine or 0.0), c.photo_id))
        if parsed.semantic and ranked and "verify" not in ignore and self._should_verify(filters, has_filter):
            ranked = self._verified(catalog, ranked, parsed.semantic, zh, steps, notes)
        ranked, similar = collapse_similar(catalog, ranked, keep_all=filters.all_similar)  # one per group
        results.total = len(ranked)
        if not exact and len(ranked) >= offset + limit:
            results.total, results.total_exact = total, False
            notes.append(
                f"约 {total} 张：总数是估计的（只读到了这一页）"
                if zh
                else f"about {total:,} matches: the count is estimated past this page"
            )
        if ranked and all(c.weak for c in ranked):
            notes.append(
                "没有找到很符合的照片，下面是最接近的" if zh else "no strong match: these are the closest"
            )
        page = ranked[offset : offset + limit]
        return self._finish(catalog, results, page, similar, parsed, lang, directory, has_filter)

    def _finish(
        self,
        catalog: Catalog,
        results: SearchResults,
        page: list[_Candidate],
        similar: dict[int, SimilarPhotos],
        parsed: ParsedQuery,
        lang: str,
        directory: PeopleDirectory,
        has_filter: bool,
    ) -> SearchResults:
        """The page's hits with their explanations, people and near-duplicates; what was understood."""
        zh = lang == "zh"
        steps = results.steps
        summaries = catalog.photo_summaries([c.photo_id for c in page])
        info = self.indexes.doc_info([c.photo_id for c in page])
        people = catalog.people.people_in_photos([c.photo_id for c in page])
        # the words marked in the hits that have any (a hit found by meaning alone has none to mark)
        worded = [c.photo_id for c in page if c.matched or c.weak_terms or c.feedback]
        marks = self.indexes.fts.highlights(worded, parsed.semantic) if parsed.semantic else {}
        results.hits = [
            self._hit(
                c,
                summaries[c.photo_id],
                info.get(c.photo_id, {}),
                marks.get(c.photo_id, {}),
                parsed,
                lang,
                has_filter,
            )
            for c in page
        ]
        self._add_moments(catalog, page, results.hits, zh)
        for hit in results.hits:
            hit.people = people.get(hit.photo_id, [])
            hit.similar = similar.get(hit.photo_id)
            asked = [directory.label(p["id"], zh) for p in hit.people if p["id"] in parsed.people]
            if asked:
                hit.why.append(("人物：" + "、".join(asked)) if zh else "people: " + ", ".join(asked))
        results.understood = [line for _, line in steps]
        return results

    @staticmethod
    def _add_moments(catalog: Catalog, page: list[_Candidate], hits: list[SearchHit], zh: bool) -> None:
        """The times in a video that matched, best first, with what is seen or said there."""
        found = {c.photo_id: c.moments for c in page if c.moments}
        if not found:
            return
        rows = {r["id"]: r for r in catalog.search_rows(list(found))}
        for hit in hits:
            if hit.photo_id not in rows:
                continue
            by_k = {m.k: m for m in video_moments(rows[hit.photo_id])}
            best = sorted(found[hit.photo_id], key=lambda ks: (-ks[1], ks[0]))[:MAX_MOMENTS]
            for k, score in best:
                if score < 0.5 * best[0][1] or score <= 0:  # the moments that matched, not every one
                    continue
                m = by_k.get(k)
                if m is None:  # the video was read again since the index was built
                    continue
                text = (m.caption["zh"] if zh else m.caption["en"]) or m.caption["en"] or m.caption["zh"]
                hit.moments.append(
                    {"t": m.t, "end": m.end, "kind": m.kind, "text": text, "score": round(score, 4)}
                )
            if hit.moments:
                first = hit.moments[0]
                said = ("说：" if zh else "said: ") if first["kind"] == "speech" else ""
                hit.why.insert(0, f"{clock(first['t'])} {said}{first['text']}".strip()[:160])

    def _merge_filters(
        self, parsed: ParsedQuery, filters: SearchFilters, lang: str, steps: list[tuple[str, str]]
    ) -> tuple[date | None, date | None, str | None]:
        date_from, date_to = parsed.date_from, parsed.date_to
        if filters.date_from or filters.date_to:
            # explicit filters narrow what the question said; they never widen it
            if filters.date_from:
                date_from = max(date_from, filters.date_from) if date_from else filters.date_from
            if filters.date_to:
                date_to = min(date_to, filters.date_to) if date_to else filters.date_to
            a, b = (date_from.isoformat() if date_from else "…"), (date_to.isoformat() if date_to else "…")
            steps.append(
                ("filter", f"筛选：拍摄于 {a} 至 {b}" if lang == "zh" else f"filter: taken {a} to {b}")
            )
        place_key = parsed.place
        if filters.place:
            place_key = self._resolve_place(filters.place)
            label = self.place_label(place_key, lang)
            line = f"筛选：地点 {label}" if lang == "zh" else f"filter: place {label}"
            steps.append(("filter", line))
        return date_from, date_to, place_key

    def _pools(
        self,
        catalog: Catalog,
        semantic: str,
        allowed: AbstractSet[int] | None,
        broad: _Broad | None,
        meanwhile: Callable[[], None] | None = None,
    ) -> _Pools:
        """Each retriever's best POOL photos for the question (among `allowed`, or inside a `broad` filter:
        its bitmap for the graph walk when it has one, else more asked for and checked): what a relevance
        list is made of, and what rank agreement counts in a listing by date too."""
        allowed = self.indexes.with_moments(allowed)  # a video passes with its moments
        pool = POOL if broad is None else min(EXACT_K, int(POOL / broad.share * 1.5) + 50)
        qvec = self.indexes.query_vector(semantic)
        vectors = self.indexes.vectors
        lo, hi = calibration(vectors.model if vectors else "")
        by_meaning = qvec is not None and vectors is not None and len(vectors) > 0
        within, k = allowed, pool  # what the dense search is limited to, and asked for
        if broad is not None and broad.mask is not None:
            within, k = self.indexes.with_moments(broad.mask), POOL
        # the graph walk runs beside the words' search (faiss lets go of the GIL): the words wait for it
        # only to re-score the photos it found
        walk = None
        if by_meaning:
            assert qvec is not None and vectors is not None
            walk = self._threads.submit(vectors.search, qvec, k, within)

        @functools.cache
        def dense() -> tuple[list[tuple[int, float]], float]:
            """The dense search's photos (inside a broad filter), and the cosine above which it has all."""
            if walk is None:
                return [], math.inf
            found = walk.result()
            reach = found[-1][1] if len(found) >= k else -math.inf
            if broad is not None and within is None:
                inside = self._within(catalog, broad, [pid for pid, _ in found])
                found = [f for f in found if f[0] in inside]
            return found, reach

        terms = tuple(query_terms(semantic))
        found_text = TextHits()
        try:
            if meanwhile is not None:  # other work the question needs, done while the walk runs
                meanwhile()
            if terms:
                # beside a dense list the words' work is bounded (common words do not retrieve): the photos
                # found by meaning have their words matched instead
                found_text = self.indexes.fts.search(
                    semantic,
                    pool,
                    allowed,
                    rescore=(lambda: [pid for pid, _ in dense()[0][:POOL]]) if by_meaning else None,
                )
            near, reach = dense()
        finally:
            if walk is not None:  # (done: nothing to cancel; the words' search failed: not wanted)
                walk.cancel()
        dense_ids = np.array([pid for pid, _ in near[:POOL]], dtype=np.int64)
        dense_cos = np.array([cos for _, cos in near[:POOL]], dtype=np.float64)
        if terms and broad is not None:
            inside = self._within(catalog, broad, [h.photo_id for h in found_text])
            retrieved = [h for h in found_text if h.retrieved and h.photo_id in inside][:POOL]
            rescored = [h for h in found_text if not h.retrieved and h.photo_id in inside]
            partial, found_text = found_text.partial, TextHits(retrieved + rescored)
            found_text.partial = partial
        return _Pools(
            terms,
            qvec if by_meaning else None,
            lo,
            hi,
            dense_ids,
            dense_cos,
            found_text,
            [pid for pid, _ in near],
            [cos for _, cos in near],
            reach,
            within,
        )

    def _retrieve(
        self,
        catalog: Catalog,
        semantic: str,
        allowed: AbstractSet[int] | None,
        newest: list[int] | None,
        pools: _Pools | None,
    ) -> tuple[dict[int, _Candidate], float | None]:
        """A relevance list's candidates with their evidence and score; and, when a retriever's list was cut
        at POOL, the score of the last candidate it gave (None when every list was complete). `pools`: the
        question's relevance lists when they were made already."""
        if not semantic:
            # only filters: every photo that passes them (an empty set is no photos), as an exact match
            return {pid: _Candidate(pid, relevance=1.0, score=1.0) for pid in newest or []}, None
        pools = pools or self._pools(catalog, semantic, allowed, None)
        text = pools.text
        cosine = np.full(len(pools.ids), np.nan)
        cosine[pools.at_dense] = pools.dense_cos
        words = np.zeros(len(pools.ids))
        if pools.terms:
            words[pools.at_text] = text.coverage / len(pools.terms)
        relevance, score = _evidence(cosine, words, pools.rrf, pools.best_rrf, pools.lo, pools.hi)
        # in the order the retrievers gave them: the dense list, then photos only the words found
        n_dense, n_text = len(pools.dense_ids), len(text)
        first = np.full(len(pools.ids), n_dense + n_text, dtype=np.int64)
        first[pools.at_text] = n_dense + np.arange(n_text)
        first[pools.at_dense] = np.arange(n_dense)
        at = np.argsort(first, kind="stable")
        matched = dict(zip(text.ids.tolist(), text.matched_rows(np.arange(n_text)), strict=True))
        cands = _candidates(
            pools.ids[at], cosine[at], pools.rrf[at], words[at], relevance[at], score[at], matched
        )
        # each retriever's own list (not the photos it only re-scored) that was cut
        own = [pools.dense_ids.tolist(), [h.photo_id for h in pools.found_text if h.retrieved]]
        cut = [cands[ranked[-1]].score for ranked in own if len(ranked) >= POOL]
        if pools.found_text.partial:  # words too common to retrieve were left out: any photo could match them
            cut.append(1.0)
        _fold_moments(cands)
        return cands, max(cut) if cut else None

    def _parts(self, qvec: np.ndarray | None, terms: tuple[str, ...], ids: list[int]) -> _Parts:
        """The photos' (and their moments') cosines with `qvec` and the `terms` they have."""
        docs = np.array(ids, dtype=np.int64)
        moments = (self.indexes.with_moments(set(ids)) or frozenset()) - set(ids)
        if moments:
            docs = np.concatenate([docs, np.array(sorted(moments), dtype=np.int64)])
        vectors = self.indexes.vectors
        cosine = np.full(len(docs), np.nan)
        if qvec is not None and vectors is not None:
            cosine = vectors.cosines(qvec, docs).astype(np.float64)
        found = self.indexes.fts.term_matrix(docs, terms) if terms else None
        return _Parts(docs, cosine, found)

    def _scored(
        self,
        pools: _Pools,
        ids: list[int],
        floor: float,
        keep: frozenset[int],
        named: bool = True,
        parts: _Parts | None = None,
    ) -> list[_Candidate]:
        """The photos of `ids` that reach `floor`, in that order, scored as a relevance list scores them but
        from their own stored vector and words (rank agreement counts the relevance lists' places); photos
        with verdicts (`keep`) whatever their score. A video's moments are scored with it. named=False:
        the terms each photo matched are not named (a count needs none). `parts`: `_parts` of `ids`, made
        already."""
        parts = parts if parts is not None else self._parts(pools.qvec, pools.terms, ids)
        docs, cosine, words, found = parts.docs, parts.cosine, parts.words, parts.found
        rrf = pools.rrf_of(docs)
        relevance, score = _evidence(cosine, words, rrf, pools.best_rrf, pools.lo, pools.hi)
        wanted = (score >= floor - 1e-3) | (docs >= MOMENT_BASE)
        if keep:
            wanted |= np.isin(docs, np.fromiter(keep, dtype=np.int64, count=len(keep)))
        at = np.flatnonzero(wanted)
        matched = {}
        if found is not None and named:  # the terms each photo shown has, named
            rows = at[words[at] > 0]
            matched = dict(zip(docs[rows].tolist(), found.matched_rows(rows), strict=True))
        cands = _candidates(docs[at], cosine[at], rrf[at], words[at], relevance[at], score[at], matched)
        _fold_moments(cands)
        return [cands[pid] for pid in ids if pid in cands]

    def _universe(self, listing: _Listing) -> int:
        """How many photos a listing can show: those its filters allow (a broad one's by its share)."""
        universe = len(listing.allowed) if listing.allowed is not None else self._library_size()
        return round(universe * listing.broad.share) if listing.broad is not None else universe

    def _date_sample(self, listing: _Listing) -> list[int] | None:
        """The fixed uniform sample of the photos a listing by date estimates its total from (None: the
        photos are few enough to read whole, or too few were drawn)."""
        if self._universe(listing) <= WALK_ALL:
            return None
        if listing.newest is not None:  # the filter's photos, read already: drawn from them
            n = len(listing.newest)
            draw = np.random.default_rng(0).choice(n, min(SAMPLE, n), replace=False)
            sample = [listing.newest[k] for k in sorted(draw.tolist())]
        elif listing.broad is not None:  # drawn when the filter was found broad
            sample = listing.broad.sample
        else:
            sample = self._sample(SAMPLE)
        return sample if len(sample) >= MIN_SAMPLE else None

    def _by_date(
        self,
        catalog: Catalog,
        pools: _Pools,
        listing: _Listing,
        sample: list[int] | None,
        sample_parts: _Parts | None = None,
    ) -> tuple[list[_Candidate], int, bool]:
        """Every photo that reaches the cut-off, newest first: at least the first `listing.need` once
        near-duplicates are folded (all when there are fewer); the total; whether it is exact.

        No step reads every match: the photos passing the filters are read newest first a block at a time,
        each block scored from its photos' own vectors and words (`_scored`), until the page is full. The
        total past it is estimated from a fixed uniform sample of the photos, scored the same way. When that
        sample says a walk would read too many photos to fill the page (few matches: a rare word, a precise
        description), the photos that can match are gathered instead (`_gathered`), and the total is exact.
        `sample`: `_date_sample`'s, with its `_parts` when they were made while the relevance lists were.
        """
        universe = self._universe(listing)
        rate: float | None = None
        if sample is not None:
            in_sample = self._passing(catalog, pools, listing, sample, named=False, parts=sample_parts)
            rate = len(in_sample) / len(sample)
            if listing.need > rate * WALK_MOST:
                gathered = self._gathered(catalog, pools, listing)
                if gathered is not None:
                    folded = collapse_similar(catalog, gathered, keep_all=listing.keep_all)[0]
                    return gathered, len(folded), True
        ranked: list[_Candidate] = []
        walked = 0
        # as many photos first as the sample says hold the page (a third more)
        first = BLOCK if not rate else max(2 * listing.need, min(16 * BLOCK, int(1.33 * listing.need / rate)))
        if listing.newest is not None:
            blocks = _blocks(listing.newest, first)
        else:  # every photo, or those inside a broad filter, read from the date index
            where = listing.broad.where if listing.broad else None
            blocks = self._filters(catalog, where).newest_blocks(where, first)
        try:
            for block in blocks:
                walked += len(block)
                ranked += self._passing(catalog, pools, listing, block)
                if universe <= WALK_ALL or len(ranked) < listing.need:
                    continue
                shown = len(collapse_similar(catalog, ranked, keep_all=listing.keep_all)[0])
                if shown >= listing.need:
                    break
            else:
                return ranked, len(collapse_similar(catalog, ranked, keep_all=listing.keep_all)[0]), True
        finally:
            blocks.close()
        # the rest of the photos, estimated: at the sample's rate (or the walk's, without one), with
        # near-duplicates folded as they were in what was read
        rest = max(universe - walked, 0) * (rate if rate is not None else len(ranked) / max(walked, 1))
        estimate = (len(ranked) + rest) * shown / len(ranked)
        return ranked, max(_round_estimate(estimate), shown + 1), False

    def _passing(
        self,
        catalog: Catalog,
        pools: _Pools,
        listing: _Listing,
        ids: list[int],
        *,
        named: bool = True,
        parts: _Parts | None = None,
    ) -> list[_Candidate]:
        """The photos of `ids` a listing shows, in that order: scored, verdicts and exclusions applied
        (named=False: without the terms each matched, for a count; `parts`: see `_scored`)."""
        scored = self._scored(pools, ids, listing.min_score, listing.keep, named, parts)
        cands = {c.photo_id: c for c in scored}
        self._apply_feedback(catalog, cands, listing.text, listing.semantic, set(ids), listing.verdicts)
        self._exclude(cands, listing.exclude)
        return [c for c in cands.values() if c.feedback == "good" or c.score >= listing.min_score]

    def _gathered(self, catalog: Catalog, pools: _Pools, listing: _Listing) -> list[_Candidate] | None:
        """Every photo that can reach the cut-off, newest first, found from the words' match lists and an
        approximate nearest-neighbour search rather than by reading photos. A photo in neither relevance list
        scores at most half its evidence (rank agreement), so it needs `need` evidence: enough of the query's
        words, or else a cosine that depends on the words it has; the photos with the most words short of
        enough set the cosine the search must reach. None when a list would be too long (then many photos
        are close, and a walk fills a page soon)."""
        need = min(1.0, 2 * listing.min_score)  # evidence a photo outside the relevance lists needs
        if need <= 0:
            return None  # no cut-off: every photo is shown
        allowed = self.indexes.with_moments(listing.allowed)
        # the photos the lists are cut to: the filter's, or a broad one's as the dense search had it
        inside = allowed if allowed is not None or not isinstance(pools.within, PhotoMask) else pools.within
        ids: set[int] = set(pools.ids.tolist())
        short = 0.0  # the most words a photo can have that are not enough on their own
        if pools.terms:
            n = len(pools.terms)
            # coverages a photo can have ((words + WEAK_TERM x weak ones) / n; only a Chinese term can be
            # found inside another word): the best short of enough
            weak = sum(weak_matchable(t) for t in pools.terms)
            shares = {(a + WEAK_TERM * b) / n for a in range(n + 1) for b in range(min(weak, n - a) + 1)}
            short = max(w for w in shares if 0.9 * w**2 < need - 1e-9)
            # enough words takes at least `least` of them as words, so a photo with enough is in one of
            # the n - least + 1 shortest lists of photos that have a term as a word
            enough_share = math.sqrt(need / 0.9)
            least = max(1, math.ceil((enough_share - WEAK_TERM) * n / (1 - WEAK_TERM) - 1e-9))
            by_words: list[int] = []
            if least <= n:
                fts = self.indexes.fts
                lists = sorted((fts.matching(t) for t in pools.terms), key=len)[: n - least + 1]
                # inside the filter: photos by a mask indexed by id, moments by video
                if isinstance(inside, PhotoMask):
                    lists = [_inside(m, inside.mask, inside) for m in lists]
                elif inside is not None:
                    ids_in = id_array(inside)
                    ids_in = ids_in[ids_in < MOMENT_BASE]
                    mask = np.zeros(int(ids_in.max()) + 1 if len(ids_in) else 0, dtype=bool)
                    mask[ids_in] = True
                    lists = [_inside(m, mask, inside) for m in lists]
                spread = listing.broad.share if listing.broad is not None and inside is None else 1.0
                if sum(len(m) for m in lists) > 25 * GATHER / spread:
                    return None  # so many photos have the rarest words that many will have enough
                maybe = lists[0] if len(lists) == 1 else np.unique(np.concatenate(lists))
                words = fts.term_matrix(maybe, pools.terms).coverage / n
                by_words = maybe[0.9 * words**2 >= need - 1e-9].tolist()
            if inside is None and listing.broad is not None:  # (the lists were cut to `inside` already)
                if len(by_words) * listing.broad.share > GATHER:  # expected inside the filter: too many
                    return None
                within = self._within(catalog, listing.broad, by_words)
                by_words = [p for p in by_words if p in within]
            if len(by_words) > GATHER:
                return None
            ids.update(by_words)
        vectors = self.indexes.vectors
        if pools.qvec is not None and vectors is not None:
            dense = 1.0 - (1.0 - need) / (1.0 - 0.9 * short**2)
            floor = pools.lo + dense * (pools.hi - pools.lo)
            if pools.reach < floor:  # the relevance search read below the floor: it found them all
                found = [pid for pid, cos in zip(pools.near_ids, pools.near_cos, strict=True) if cos >= floor]
            else:
                for k in (min(GATHER, 4 * POOL), GATHER):  # a short search first: most ranges are short
                    found = [pid for pid, _ in vectors.search(pools.qvec, k, pools.within, min_cosine=floor)]
                    if len(found) < k:
                        break
                if len(found) >= GATHER:
                    return None
            ids.update(found)
        ids.update(listing.keep)
        photos = {item_of(d) for d in ids}  # a moment stands for its video
        if allowed is not None:
            photos &= allowed
        elif listing.broad is not None:
            photos = self._filters(catalog, listing.broad.where).filter_among(listing.broad.where, photos)
        return self._passing(catalog, pools, listing, self._filters(catalog).newest_first(sorted(photos)))

    def _sample(self, n: int) -> list[int]:
        """Up to `n` photos drawn uniformly from the indexed ones, the same for every question: totals past a
        page are estimated from them, and a filter's share of the library."""
        vectors = self.indexes.vectors
        if vectors is None or not len(vectors):
            return []
        return [p for p in vectors.sample(n).tolist() if p < MOMENT_BASE]

    def _broad(self, catalog: Catalog, where: PhotoFilter) -> _Broad | None:
        """The filter, with its share of the library, when it allows too many photos to read them all
        (READ_FILTER, and at least BROAD_SHARE of the library): its share is measured on the sample. Kept
        per filter while the catalog is unchanged (the next page, another question in the same season)."""
        key = (repr(where), catalog.filter_token(), self._library_size(), READ_FILTER, BROAD_SHARE)
        with self._lock:
            if key in self._broads:
                return self._broads[key]
        broad = self._measure_broad(catalog, where)
        with self._lock:
            self._broads[key] = broad
            while len(self._broads) > 64:
                del self._broads[next(iter(self._broads))]
        return broad

    def _measure_broad(self, catalog: Catalog, where: PhotoFilter) -> _Broad | None:
        size = self._library_size()
        if size * BROAD_SHARE <= READ_FILTER / 2:
            return None  # a small library: every filter is read
        first = self._sample(SAMPLE)
        if len(first) < MIN_SAMPLE:
            return None
        source = self._filters(catalog, where)
        if len(source.filter_among(where, first)) / len(first) < BROAD_SHARE / 2:
            return None  # clearly not broad
        sample = self._sample(8 * SAMPLE)  # enough to leave a sample inside a filter of an eighth
        inside = source.filter_among(where, sample)
        share = len(inside) / len(sample)
        if share < BROAD_SHARE or share * size <= READ_FILTER:
            return None
        mask = PhotoMask(source.mask(where)) if isinstance(source, FilterColumns) else None
        return _Broad(where, share, [p for p in sample if p in inside][:SAMPLE], mask)

    def _within(self, catalog: Catalog, broad: _Broad, doc_ids: list[int]) -> set[int]:
        """Those of `doc_ids` inside the broad filter (a video's moment as its video)."""
        video = {d: item_of(d) for d in doc_ids}
        inside = self._filters(catalog, broad.where).filter_among(broad.where, set(video.values()))
        return {d for d, v in video.items() if v in inside}

    def prepare_filters(self, catalog: Catalog) -> float:
        """Read the photos' time and place into memory now (a million photos: ~2 s), not in the first
        search with a filter; the seconds it took (0 when they were read already)."""
        started = time.monotonic()
        self._filters(catalog)
        return time.monotonic() - started

    def _filters(self, catalog: Catalog, where: PhotoFilter | None = None) -> Catalog | FilterColumns:
        """What answers a time or place filter (`where`, or ordering by date): the photos' time and place in
        memory, read again when the catalog's filter counter moved; SQLite for a filter the copy cannot
        answer, and between two reads that came less than REREAD_GAP_S apart and were slow (an ingestion
        under way adds photos all the time: a million photos take ~1 s to read)."""
        token = catalog.filter_token()
        with self._lock:
            kept = self._columns
        if kept is None or kept[0].token != token:
            if kept is not None and kept[2] > REREAD_SLOW_S and time.monotonic() - kept[1] < REREAD_GAP_S:
                return catalog
            started = time.monotonic()
            columns = FilterColumns.read(catalog)
            kept = (columns, time.monotonic(), time.monotonic() - started)
            with self._lock:
                self._columns = kept
        if where is not None and not kept[0].answers(where):
            return catalog
        return kept[0]

    def _library_size(self) -> int:
        vectors = self.indexes.vectors
        return len(vectors) if vectors is not None else len(self.indexes.fts)

    def _exclude(self, cands: dict[int, _Candidate], exclude: tuple[str, ...]) -> None:
        if not exclude or not cands:
            return
        ids = set(cands)
        drop: set[int] = set()
        for term in exclude:
            if term.casefold() in PEOPLE_WORDS:
                # the model counted people: trust the count ("空无一人" mentions 人 but shows nobody)
                info = self.indexes.doc_info(list(ids))
                counted = {pid for pid, i in info.items() if i.get("people") is not None}
                drop |= {pid for pid in counted if info[pid]["people"] > 0}
                unknown = ids - counted
                if unknown:
                    drop |= {
                        h.photo_id
                        for h in self.indexes.fts.search("people person 人物", None, unknown)
                        if h.matched_terms
                    }
                continue
            # only a word match excludes: "不要猫" must not drop the panda photo (熊猫)
            drop |= {h.photo_id for h in self.indexes.fts.search(term, None, ids) if h.matched_terms}
        for pid in drop:
            cands.pop(pid, None)

    def _listing_in_sql(self, catalog: Catalog, text: str, verdicts: list[tuple[str, int, str]]) -> bool:
        """Whether a time/place listing can be paged in SQL: no verdict but this question's own "wrong" ones
        (left out in SQL) can change which photos it shows (no photo that similar questions' "wrong"
        verdicts push under the cut-off)."""
        probe = {pid: _Candidate(pid, relevance=1.0, score=1.0) for _, pid, _ in verdicts}
        self._apply_feedback(catalog, probe, text, "", None, verdicts)
        return all(c.score >= DEFAULT_MIN_SCORE for c in probe.values())

    def _apply_feedback(
        self,
        catalog: Catalog,
        cands: dict[int, _Candidate],
        text: str,
        semantic: str,
        allowed: AbstractSet[int] | None,
        verdicts: list[tuple[str, int, str]] | None = None,
    ) -> None:
        """Verdicts on this question decide; verdicts on similar questions nudge. Runs before exclusions,
        which a "good" verdict does not override; only visible photos are brought back. `verdicts`: the
        catalog's active ones, when the caller has read them already."""
        key = query_key(text)
        terms = set(_terms(semantic or text))
        for fb_key, pid, verdict in catalog.active_feedback() if verdicts is None else verdicts:
            if fb_key == key:
                if verdict == "bad":
                    cands.pop(pid, None)
                elif allowed is None or pid in allowed:
                    c = cands.setdefault(pid, _Candidate(pid))
                    c.feedback, c.relevance, c.score, c.weak = "good", max(c.relevance, 1.0), 1.0, False
                continue
            c2 = cands.get(pid)
            if c2 is None:
                continue
            other = set(_terms(fb_key))
            overlap = len(terms & other) / len(terms | other) if terms and other else 0.0
            if overlap < 0.5:
                continue
            # a similar question: nudge, don't decide
            if verdict == "bad":
                c2.score, c2.relevance = round(c2.score * 0.6, 4), c2.relevance * 0.8
                c2.feedback = c2.feedback or "bad-similar"
            else:
                c2.score = round(min(1.0, c2.score + 0.1), 4)
                c2.feedback = c2.feedback or "good-similar"

    # -- explaining -------------------------------------------------------------------------------

    def _hit(
        self,
        c: _Candidate,
        row: dict[str, Any],
        info: dict[str, Any],
        highlights: dict[str, str],
        parsed: ParsedQuery,
        lang: str,
        has_filter: bool,
    ) -> SearchHit:
        zh = lang == "zh"
        why: list[str] = []
        if c.feedback == "good":
            why.append("你标记过这张是对的" if zh else "you marked this as right for this query")
        # '星巴克' also matches its part '巴克': show only the words a person typed
        shown = [t for t in c.matched if not any(t != o and t in o for o in c.matched)]
        if shown:
            why.append(("匹配：" + "、".join(shown)) if zh else "matched: " + ", ".join(shown))
        if c.weak_terms:
            why.append(
                ("只在其他词里出现：" + "、".join(c.weak_terms))
                if zh
                else "only inside other words: " + ", ".join(c.weak_terms)
            )
        if c.verified is not None:
            why.append(
                f"视觉模型核对：是（{c.verified:.2f}）"
                if zh
                else f"checked by the vision model: yes ({c.verified:.2f})"
            )
        if c.weak:
            why.append("匹配较弱" if zh else "weak match")
        if c.cosine is not None:
            why.append(f"语义相近 {c.cosine:.2f}" if zh else f"similar meaning ({c.cosine:.2f})")
        if c.feedback == "bad-similar":
            why.append(
                "相似查询中被标记为不对，已降低" if zh else "marked wrong for a similar query: pushed down"
            )
        if c.feedback == "good-similar":
            why.append(
                "相似查询中被标记为对，已提升" if zh else "marked right for a similar query: pushed up"
            )
        if has_filter and row.get("taken_at"):
            source = TIME_SOURCE_LABEL[lang].get(row.get("time_source") or "", "")
            day = row["taken_at"][:10]
            why.append(f"拍摄于 {day}（{source}）" if zh else f"taken {day} ({source})")
        place = self._place_text(row, lang)
        if parsed.place and place:
            why.append(f"地点：{place}" if zh else f"place: {place}")
        return SearchHit(
            photo_id=c.photo_id,
            hash=row["hash"],
            score=round(min(max(c.score, 0.0), 1.0), 4),
            path=row.get("path"),
            taken_at=row.get("taken_at"),
            time_source=row.get("time_source"),
            place=place,
            caption=info.get("caption", {}),
            why=why,
            highlights=highlights,
            width=row.get("width"),
            height=row.get("height"),
            weak=c.weak,
            verified=c.verified,
            media=row.get("media") or "photo",
            duration_s=row.get("duration_s"),
        )

    @staticmethod
    def _place_text(row: dict[str, Any], lang: str) -> str | None:
        suffix = "_zh" if lang == "zh" else ""
        parts = [
            row.get(f"place_{k}{suffix}") or row.get(f"place_{k}") for k in ("city", "region", "country")
        ]
        unique = [str(p) for p in dict.fromkeys(parts) if p]
        return ("，" if lang == "zh" else ", ").join(unique) or None

    # -- similar photos ---------------------------------------------------------------------------

    def similar(self, catalog: Catalog, ref: str | int, limit: int) -> SearchResults:
        photo = catalog.photo(ref)
        self.indexes.sync(catalog)
        vectors = self.indexes.vectors
        results = SearchResults(str(ref), "", "en", [f"photos like #{photo['id']}"], 0, 0, limit)
        vec = vectors.get(photo["id"]) if vectors is not None else None
        if vec is None and vectors is not None:  # a video: like its first moment with a description
            for doc_id in sorted(self.indexes.with_moments({photo["id"]}) or ()):
                vec = vectors.get(doc_id)
                if vec is not None:
                    break
        if vectors is None or vec is None:
            results.notes.append("this photo has no description yet, or semantic search is unavailable")
            return results
        lo, hi = calibration(vectors.model)
        # a video's moment stands for its video, once
        best: dict[int, float] = {}
        for doc_id, cos in vectors.search(vec, 4 * limit + 1):
            pid = item_of(doc_id)
            if pid != photo["id"] and pid not in best:
                best[pid] = cos
        found = list(best.items())[:limit]
        summaries = catalog.photo_summaries([pid for pid, _ in found])
        info = self.indexes.doc_info([pid for pid, _ in found])
        for pid, cos in found:
            c = _Candidate(pid, cosine=cos)
            c.score = c.relevance = min(max((cos - lo) / (hi - lo), 0.0), 1.0)
            c.weak = c.relevance < STRONG_RELEVANCE
            hit = self._hit(
                c, summaries[pid], info.get(pid, {}), {}, parse_query("", today=self.today()), "en", False
            )
            results.hits.append(hit)
        results.total = len(results.hits)
        return results

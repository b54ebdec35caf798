"""Search: understand the question, filter, retrieve by meaning and by words, fuse, apply feedback, explain.

Order of work: parse the question (time, place, negation) -> hard filters as a set of allowed photos ->
dense (FAISS) and full-text (FTS5/BM25) retrieval inside that set -> reciprocal-rank fusion -> exclusions ->
feedback -> a score in [0, 1] and a relevance cut-off -> explanations.

The score blends rank agreement (RRF, normalised so that first in every list is 1) with absolute evidence
(calibrated cosine similarity, share of query words matched), so a score means about the same strength of
match in any query, and a query with no good match returns few or no results.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.embed.text import TextEmbedder
from smartalbum.errors import InputError
from smartalbum.index.fulltext import query_terms
from smartalbum.search.feedback import query_key
from smartalbum.search.indexer import SearchIndexes
from smartalbum.search.query import ParsedQuery, PlaceMatcher, parse_query
from smartalbum.search.results import SearchFilters, SearchHit, SearchResults

MAX_QUERY_CHARS = 1000
POOL = 200  # candidates taken from each retriever before fusion
RRF_K = 60
DEFAULT_MIN_RELEVANCE = 0.3
# cosine similarity -> [0, 1]: below `lo` is unrelated, above `hi` is as good as it gets, per model.
# all-MiniLM-L6-v2 on Flickr8k-CN val: unrelated pairs median 0.06, 95th percentile 0.33; true pairs 5th
# percentile 0.38, median 0.65. The default is a guess for models not measured here (bge-m3 runs higher).
DENSE_CALIBRATION: dict[str, tuple[float, float]] = {"sentence-transformers/all-MiniLM-L6-v2": (0.30, 0.70)}
DEFAULT_CALIBRATION = (0.35, 0.75)
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


@dataclass
class _Candidate:
    photo_id: int
    rrf: float = 0.0
    cosine: float | None = None
    matched: tuple[str, ...] = ()
    relevance: float = 0.0
    score: float = 0.0
    feedback: str | None = None
    notes: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    """Segmented query terms, cached: feedback compares every search with every verdict's query."""
    return tuple(query_terms(text))


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

    # -- search -----------------------------------------------------------------------------------

    def search(
        self, catalog: Catalog, query: str, filters: SearchFilters, limit: int, offset: int
    ) -> SearchResults:
        notes: list[str] = []
        text = " ".join((query or "").split())
        if len(text) > MAX_QUERY_CHARS:
            text = text[:MAX_QUERY_CHARS]
            notes.append(f"query cut to its first {MAX_QUERY_CHARS} characters")
        parsed = parse_query(text, today=self.today(), places=self.place_matcher())
        lang = parsed.language
        sync = self.indexes.sync(catalog)
        notes += [f"rebuilt {r}" for r in sync.rebuilt]
        if sync.embed_error:
            notes.append(
                sync.embed_error if sync.embedder else f"words only, no semantic search: {sync.embed_error}"
            )
        understood = list(parsed.understood)
        date_from, date_to, place_key = self._merge_filters(parsed, filters, lang, understood)
        results = SearchResults(text, parsed.semantic, lang, understood, 0, offset, limit, notes=notes)
        has_filter = bool(date_from or date_to or parsed.months or place_key)
        if not parsed.semantic and not has_filter and not parsed.exclude:
            notes.append(
                "空查询：请输入想找的内容" if lang == "zh" else "empty query: type what you remember"
            )
            return results
        newest: list[int] | None = None  # photos passing the filters, newest first
        if has_filter or not parsed.semantic:
            newest = catalog.filter_photo_ids(
                date_from=date_from.isoformat() if date_from else None,
                date_before=(date_to + timedelta(days=1)).isoformat() if date_to else None,
                months=parsed.months,
                place=_split_place_key(place_key) if place_key else None,
            )
        allowed = set(newest) if has_filter and newest is not None else None
        cands = self._retrieve(parsed.semantic, allowed, newest)
        self._exclude(cands, parsed.exclude)
        self._apply_feedback(catalog, cands, text, parsed.semantic, allowed)
        # --min-score replaces the default cut-off (which is on absolute relevance, not on rank)
        ranked = [
            c
            for c in cands.values()
            if c.feedback == "good"
            or (
                c.relevance >= DEFAULT_MIN_RELEVANCE
                if filters.min_score is None
                else c.score >= filters.min_score
            )
        ]
        # a date or place alone is already newest first, as the catalog returned it
        if parsed.semantic and filters.sort == "date":
            dates = catalog.photo_summaries([c.photo_id for c in ranked])
            ranked.sort(key=lambda c: (dates[c.photo_id]["taken_at"] or "", c.score), reverse=True)
        elif parsed.semantic:
            ranked.sort(key=lambda c: (-c.score, -(c.cosine or 0.0), c.photo_id))
        results.total = len(ranked)
        page = ranked[offset : offset + limit]
        summaries = catalog.photo_summaries([c.photo_id for c in page])
        info = self.indexes.doc_info([c.photo_id for c in page])
        results.hits = [
            self._hit(c, summaries[c.photo_id], info.get(c.photo_id, {}), parsed, lang, has_filter)
            for c in page
        ]
        return results

    def _merge_filters(
        self, parsed: ParsedQuery, filters: SearchFilters, lang: str, understood: list[str]
    ) -> tuple[date | None, date | None, str | None]:
        date_from, date_to = parsed.date_from, parsed.date_to
        if filters.date_from or filters.date_to:
            # explicit filters narrow what the question said; they never widen it
            if filters.date_from:
                date_from = max(date_from, filters.date_from) if date_from else filters.date_from
            if filters.date_to:
                date_to = min(date_to, filters.date_to) if date_to else filters.date_to
            a, b = (date_from.isoformat() if date_from else "…"), (date_to.isoformat() if date_to else "…")
            understood.append(f"筛选：拍摄于 {a} 至 {b}" if lang == "zh" else f"filter: taken {a} to {b}")
        place_key = parsed.place
        if filters.place:
            place_key = self._resolve_place(filters.place)
            label = self.place_label(place_key, lang)
            understood.append(f"筛选：地点 {label}" if lang == "zh" else f"filter: place {label}")
        return date_from, date_to, place_key

    def _retrieve(
        self, semantic: str, allowed: set[int] | None, newest: list[int] | None
    ) -> dict[int, _Candidate]:
        cands: dict[int, _Candidate] = {}
        if not semantic:
            # only filters: every photo that passes them (an empty set is no photos), as an exact match
            return {pid: _Candidate(pid, relevance=1.0, score=1.0) for pid in newest or []}
        lists = 0
        qvec = self.indexes.query_vector(semantic)
        vectors = self.indexes.vectors
        if qvec is not None and vectors is not None and len(vectors):
            lists += 1
            for rank, (pid, cos) in enumerate(vectors.search(qvec, POOL, allowed)):
                c = cands.setdefault(pid, _Candidate(pid))
                c.rrf += 1.0 / (RRF_K + rank + 1)
                c.cosine = cos
        terms = query_terms(semantic)
        if terms:
            lists += 1
            for rank, hit in enumerate(self.indexes.fts.search(semantic, POOL, allowed)):
                c = cands.setdefault(hit.photo_id, _Candidate(hit.photo_id))
                c.rrf += 1.0 / (RRF_K + rank + 1)
                c.matched = hit.matched_terms
        lo, hi = DENSE_CALIBRATION.get(vectors.model if vectors else "", DEFAULT_CALIBRATION)
        best_rrf = max(lists, 1) / (RRF_K + 1)
        for c in cands.values():
            dense = min(max(((c.cosine or 0.0) - lo) / (hi - lo), 0.0), 1.0) if c.cosine is not None else 0.0
            words = len(c.matched) / len(terms) if terms else 0.0
            # either kind of evidence can make a photo relevant; both together make it more so
            c.relevance = 1.0 - (1.0 - dense) * (1.0 - 0.9 * words)
            c.score = round(0.5 * c.relevance + 0.5 * c.rrf / best_rrf, 4)
        return cands

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
                        for h in self.indexes.fts.search("people person 人物", len(unknown), unknown)
                    }
                continue
            drop |= {h.photo_id for h in self.indexes.fts.search(term, len(ids), ids)}
        for pid in drop:
            cands.pop(pid, None)

    def _apply_feedback(
        self,
        catalog: Catalog,
        cands: dict[int, _Candidate],
        text: str,
        semantic: str,
        allowed: set[int] | None,
    ) -> None:
        key = query_key(text)
        terms = set(_terms(semantic or text))
        for fb_key, pid, verdict in catalog.active_feedback():
            if fb_key == key:
                if verdict == "bad":
                    cands.pop(pid, None)
                elif allowed is None or pid in allowed:
                    c = cands.setdefault(pid, _Candidate(pid))
                    c.feedback, c.relevance, c.score = "good", max(c.relevance, 1.0), 1.0
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
        highlights = self.indexes.fts.highlight(c.photo_id, parsed.semantic) if parsed.semantic else {}
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
        if vectors is None or vec is None:
            results.notes.append("this photo has no description yet, or semantic search is unavailable")
            return results
        lo, hi = DENSE_CALIBRATION.get(vectors.model, DEFAULT_CALIBRATION)
        found = [(pid, cos) for pid, cos in vectors.search(vec, limit + 1) if pid != photo["id"]][:limit]
        summaries = catalog.photo_summaries([pid for pid, _ in found])
        info = self.indexes.doc_info([pid for pid, _ in found])
        for pid, cos in found:
            c = _Candidate(pid, cosine=cos)
            c.score = min(max((cos - lo) / (hi - lo), 0.0), 1.0)
            hit = self._hit(
                c, summaries[pid], info.get(pid, {}), parse_query("", today=self.today()), "en", False
            )
            results.hits.append(hit)
        results.total = len(results.hits)
        return results

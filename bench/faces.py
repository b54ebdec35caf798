"""Faces: detection recall and speed, grouping quality, and grouping speed at 100,000 faces.

1. Detection: the seven real group photos (tests/face_photos.py: insightface's t1.jpg, face-api's
   sample1-6.jpg), resized to the 1024-px thumbnail the face stage reads, HOG upsample 0 and 1: faces found
   against faces visible (counted by eye), seconds a photo.
2. Grouping quality: every real face cut out and placed into new photos (--variants per identity) at other
   sizes, tilts, light, grayscale and JPEG quality (synthetic variation, see tests/face_photos.py); the face
   stage's model reads each photo, then faces are grouped incrementally (in --increments batches, as photos
   arrive) over a grid of (join, link) thresholds. Prints pairwise precision / recall and BCubed F1 of the
   groups against the identities, and faces/s and photos/s of detection + embedding.
3. Grouping speed: --vectors synthetic 128-d identity vectors (identities of 20 faces each, same-person spread
   like dlib's) grouped incrementally in 10 batches; seconds in all and peak memory.

Usage: python bench/faces.py [--variants 6] [--increments 3] [--vectors 100000] [--seed 7]
Smoke run: python bench/faces.py --identities 4 --variants 2 --vectors 2000 --no-grid
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartalbum.catalog.people import FaceVectors
from smartalbum.faces.cluster import JOIN, LINK, group_faces
from smartalbum.faces.dlib_backend import DlibFaceModel
from tests.face_photos import VISIBLE_FACES, compose, group_photos, identities, identity_of


def detection(runs: int) -> None:
    print("## Detection on the real group photos (1024-px thumbnail)\n")
    print("| upsample | faces found / visible | s a photo (median of runs) |")
    print("|---:|---:|---:|")
    photos = []
    for path in group_photos():
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        image.thumbnail((1024, 1024))
        photos.append((path.name, image))
    for upsample in (0, 1):
        model = DlibFaceModel(upsample=upsample)
        model.scan(photos[0][1])  # load the models outside the timing
        found, times = 0, []
        for name, image in photos:
            per = []
            for _ in range(runs):
                t = time.perf_counter()
                scan = model.scan(image)
                per.append(time.perf_counter() - t)
            times.append(statistics.median(per))
            found += min(len(scan.faces), VISIBLE_FACES[name])
        visible = sum(VISIBLE_FACES.values())
        share = found / visible
        print(f"| {upsample} | {found} / {visible} ({share:.0%}) | {statistics.median(times):.3f} |")
    print()


def pairwise(truth: list[str], groups: list[int]) -> tuple[float, float, float]:
    """Pairwise precision and recall of `groups` against `truth`, and BCubed F1."""
    same_true = same_pred = both = 0
    for i, j in combinations(range(len(truth)), 2):
        t, p = truth[i] == truth[j], groups[i] == groups[j]
        same_true += t
        same_pred += p
        both += t and p
    precision = both / same_pred if same_pred else 1.0
    recall = both / same_true if same_true else 1.0
    bp, br = [], []
    for i in range(len(truth)):
        pred = [j for j in range(len(truth)) if groups[j] == groups[i]]
        true = [j for j in range(len(truth)) if truth[j] == truth[i]]
        inter = len(set(pred) & set(true))
        bp.append(inter / len(pred))
        br.append(inter / len(true))
    p, r = float(np.mean(bp)), float(np.mean(br))
    return precision, recall, 2 * p * r / (p + r) if p + r else 0.0


def incremental(vectors: np.ndarray, increments: int, join: float, link: float) -> list[int]:
    """Group faces arriving in `increments` batches, as the face stage does run after run."""
    person = np.full(len(vectors), -1, np.int64)
    next_person = 0
    for part in np.array_split(np.arange(len(vectors)), increments):
        done = np.flatnonzero(person >= 0)
        assigned = FaceVectors(done, vectors[done], person[done])
        new = FaceVectors(part, vectors[part], np.full(len(part), -1, np.int64))
        grouping = group_faces(assigned, new, join=join, link=link)
        for pid, ids in grouping.joins.items():
            person[ids] = pid
        for ids in grouping.groups:
            person[ids] = next_person
            next_person += 1
    return person.tolist()


def grouping_quality(n_identities: int, variants: int, increments: int, grid: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    people = identities()[: n_identities or None]
    model = DlibFaceModel()
    vectors, truth = [], []
    photos = faces_found = missed = 0
    kinds = ["snow", "beach", "room", "park"]
    started = time.perf_counter()
    for v in range(variants):
        order = rng.permutation(len(people))
        # one to three people a photo
        i = 0
        while i < len(order):
            k = int(rng.integers(1, 4))
            chosen = [people[j] for j in order[i : i + k]]
            i += k
            image, placed = compose(chosen, rng, kind=kinds[v % len(kinds)])
            photos += 1
            scan = model.scan(image)
            faces_found += len(scan.faces)
            seen = set()
            for face in scan.faces:
                key = identity_of((face.x, face.y, face.w, face.h), placed)
                if key is not None and key not in seen:
                    seen.add(key)
                    vectors.append(face.vector)
                    truth.append(key)
            missed += len(placed) - len(seen)
    elapsed = time.perf_counter() - started
    print("## Grouping quality (real faces, synthetic variation)\n")
    print(
        f"{len({p.key for p in people})} identities ({len(people)} face crops), {photos} photos, "
        f"{faces_found} faces detected, {missed} placed faces missed; detection + embedding "
        f"{faces_found / elapsed:.1f} faces/s, {photos / elapsed:.1f} photos/s (composing included)\n"
    )
    matrix = np.stack(vectors)
    order = rng.permutation(len(matrix))  # photos arrive in any order
    matrix, truth = matrix[order], [truth[i] for i in order]
    settings = [(JOIN, LINK)]
    if grid:
        settings += [(j, lk) for j in (0.4, 0.45, 0.5, 0.55, 0.6) for lk in (0.4, 0.45, 0.5, 0.55, 0.6)]
    print(f"| join | link | groups | pair precision | pair recall | BCubed F1 | ({increments} runs) |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for join, link in dict.fromkeys(settings):
        groups = incremental(matrix, increments, join, link)
        p, r, f1 = pairwise(truth, groups)
        mark = " **default**" if (join, link) == (JOIN, LINK) else ""
        print(f"| {join} | {link} | {len(set(groups))} | {p:.3f} | {r:.3f} | {f1:.3f} |{mark} |")
    print()


def grouping_speed(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    per_identity = 20
    n_id = max(n // per_identity, 1)
    # identity centres about 0.9 apart, faces about 0.35 from each other (dlib's spread)
    centres = rng.normal(0, 0.9 / np.sqrt(2 * 128), (n_id, 128)).astype(np.float32)
    labels = rng.integers(0, n_id, n)
    vectors = centres[labels] + rng.normal(0, 0.35 / np.sqrt(2 * 128), (n, 128)).astype(np.float32)
    started = time.perf_counter()
    groups = incremental(vectors, 10, JOIN, LINK)
    elapsed = time.perf_counter() - started
    p, r, _ = pairwise([str(x) for x in labels[:3000]], groups[:3000])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("## Grouping speed (synthetic vectors)\n")
    print(
        f"{n} faces of {n_id} identities grouped in 10 runs: {elapsed:.1f} s, {len(set(groups))} groups, "
        f"pairwise precision {p:.3f} / recall {r:.3f} (first 3,000 faces), peak memory {peak_mb:.0f} MB\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identities", type=int, default=0, help="use only the first N identities (0 = all)")
    ap.add_argument("--variants", type=int, default=6, help="new photos per identity")
    ap.add_argument("--increments", type=int, default=3, help="index runs the faces arrive in")
    ap.add_argument("--vectors", type=int, default=100_000, help="faces for the grouping speed test")
    ap.add_argument("--runs", type=int, default=3, help="timing runs per photo for detection")
    ap.add_argument("--no-grid", action="store_true", help="only the default thresholds")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    detection(args.runs)
    grouping_quality(args.identities, args.variants, args.increments, not args.no_grid, args.seed)
    grouping_speed(args.vectors, args.seed)


if __name__ == "__main__":
    main()

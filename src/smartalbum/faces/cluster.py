"""Incremental face grouping: new faces join a person whose centre is close, the rest form new groups.

Only faces without a person are ever grouped, so a run never undoes an earlier grouping, a name, a merge or
a correction. New faces are taken in chunks: each face of a chunk joins the nearest person centre (the mean of
that person's faces) when it is within `join`; the faces left form groups by Chinese whispers (dlib's
recommended graph clustering for its descriptor) over the edges shorter than `link`, and each group becomes a
new person whose centre the next chunk can join. Cost per chunk: one (chunk x people) distance matrix and one
(left x left) matrix, so 100,000 faces take seconds, not the hours of an all-pairs pass.

`join` and `link` are measured by `bench/faces.py` on real face crops (see README "People").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smartalbum.catalog.people import FaceVectors

JOIN = 0.5  # Euclidean distance from a face to a person's centre (dlib's same-person threshold is 0.6)
LINK = 0.5  # distance under which two new faces are linked when they form new groups
CHUNK = 2000


@dataclass
class Grouping:
    joins: dict[int, list[int]] = field(default_factory=dict)  # existing person id -> face ids
    groups: list[list[int]] = field(default_factory=list)  # new people: their face ids


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def chinese_whispers(
    vectors: np.ndarray, threshold: float, *, iterations: int = 20, seed: int = 0
) -> np.ndarray:
    """Labels 0..k-1 for `vectors`: each node takes, in random order, the label that weighs most among its
    neighbours (edges shorter than `threshold`, weight 1 - distance) until nothing changes."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    dist = np.sqrt(_sq_dist(vectors, vectors))
    adj = dist < threshold
    np.fill_diagonal(adj, False)
    neighbours = [np.flatnonzero(adj[i]) for i in range(n)]
    weights = [1.0 - dist[i, nb] for i, nb in enumerate(neighbours)]
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = 0
        for i in rng.permutation(n):
            nb = neighbours[i]
            if nb.size == 0:
                continue
            uniq, inv = np.unique(labels[nb], return_inverse=True)
            best = uniq[int(np.argmax(np.bincount(inv, weights=weights[i])))]
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if not changed:
            break
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)


def group_faces(
    assigned: FaceVectors,
    new: FaceVectors,
    *,
    join: float = JOIN,
    link: float = LINK,
    chunk: int = CHUNK,
    seed: int = 0,
) -> Grouping:
    """Decide a person for every face of `new`: an existing person of `assigned`, or a new group."""
    out = Grouping()
    if len(new.ids) == 0:
        return out
    dim = new.vectors.shape[1]
    # person centres as running sums; keys >= 0 are existing people, keys < 0 are new groups (-1 - index)
    keys: list[int] = []
    sums = np.zeros((0, dim), np.float64)
    counts = np.zeros(0, np.float64)
    if len(assigned.ids):
        uniq, inv = np.unique(assigned.person_ids, return_inverse=True)
        sums = np.zeros((len(uniq), dim), np.float64)
        np.add.at(sums, inv, assigned.vectors.astype(np.float64))
        counts = np.bincount(inv).astype(np.float64)
        keys = [int(k) for k in uniq]
    for start in range(0, len(new.ids), chunk):
        ids = new.ids[start : start + chunk]
        vecs = new.vectors[start : start + chunk].astype(np.float64)
        left = np.ones(len(ids), bool)
        if keys:
            centres = sums / counts[:, None]
            dist = np.sqrt(_sq_dist(vecs, centres))
            nearest = dist.argmin(1)
            close = dist[np.arange(len(ids)), nearest] < join
            for i in np.flatnonzero(close):
                key = keys[int(nearest[i])]
                if key >= 0:
                    out.joins.setdefault(key, []).append(int(ids[i]))
                else:
                    out.groups[-1 - key].append(int(ids[i]))
            np.add.at(sums, nearest[close], vecs[close])
            np.add.at(counts, nearest[close], 1.0)
            left = ~close
        rest = np.flatnonzero(left)
        if rest.size == 0:
            continue
        labels = chinese_whispers(vecs[rest], link, seed=seed)
        n_new = int(labels.max()) + 1
        new_sums = np.zeros((n_new, dim), np.float64)
        np.add.at(new_sums, labels, vecs[rest])
        new_counts = np.bincount(labels, minlength=n_new).astype(np.float64)
        for g in range(n_new):
            keys.append(-1 - len(out.groups))
            out.groups.append([int(ids[i]) for i in rest[labels == g]])
        sums = np.vstack([sums, new_sums])
        counts = np.concatenate([counts, new_counts])
    return out

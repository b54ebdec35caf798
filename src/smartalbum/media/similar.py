"""Near-duplicate photos: perceptual fingerprints of a thumbnail, and groups of near-identical photos.

A fingerprint is read from the stored 256-px upright thumbnail (so every copy, export or rotation of a photo
is seen the same way): a 64-bit DCT hash (pHash: the signs of the 8x8 lowest frequencies of a 32x32 grey image
against their median), a 64-bit gradient hash (dHash: 9x8, brighter than the right neighbour), both hashes
of 18 windows (90 % and 80 % of the picture at nine anchors, so a cropped copy matches a window of its
original), a 4x4 colour layout (YCbCr) and whether the picture is flat (a lens cap, a blank wall: too little
structure for a hash to mean anything).

Two photos are linked when one of these holds (thresholds measured by bench/similar.py, README
"Near-duplicates"):

- their whole-picture pHashes differ in at most STRICT bits and their dHashes in at most GRADIENT: copies,
  exports, recompressions, small edits, screenshots of the same screen;
- the pHash of one is within WINDOW bits of a window of the other, the dHashes of that window and that
  picture within GRADIENT, and their colours agree: crops;
- both were taken within BURST_SECONDS by trusted clocks (EXIF, or a file name with a time) and the closer of
  the two distances is at most BURST, colours agreeing: bursts, where the camera moved a little.

Flat photos are never linked. Groups are the connected photos (union-find), and a group keeps its id as it
grows: the smallest id among the groups it absorbs, or its smallest photo id when it forms. Candidate pairs
come from a multi-index over four 16-bit chunks of each hash (two hashes within r bits agree on some chunk
within r // 4 bits), so grouping 100,000 photos never compares all pairs. Nothing here knows about SQLite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

import numpy as np
from PIL import Image
from scipy.fft import dctn

VERSION = "phash64+dhash64+win18x2+ycc4x4/1"  # what a fingerprint is: another one is computed again
STRICT = 8
GRADIENT = 12  # dHash bits two linked pictures (or a picture and a window) may differ in: a second opinion
WINDOW = 6
BURST = 14
BURST_SECONDS = 10.0
COLOUR = 20.0  # mean |difference| of the 4x4 YCbCr layouts (0-255) allowed for window and burst links
FLAT_STD = 4.0  # standard deviation of the 32x32 grey picture below which a photo is flat
# a timestamp shared by this many photos is not a moment (a clock never set, a date without a time)
CROWDED_SECOND = 20
TRUSTED_TIMES = frozenset({"exif_original", "exif_digitized", "exif_datetime", "filename"})


WINDOW_SCALES = (0.9, 0.8)
ANCHORS = (0.0, 0.5, 1.0)
N_WINDOWS = len(WINDOW_SCALES) * len(ANCHORS) ** 2
_COLOUR_BYTES = 4 * 4 * 3
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    phash: int  # unsigned 64-bit
    dhash: int
    windows: tuple[int, ...]  # N_WINDOWS pHashes of crops of the picture
    dwindows: tuple[int, ...]  # the dHashes of the same crops
    colour: bytes  # 4x4 YCbCr layout, row by row
    flat: bool

    def extra(self) -> bytes:
        """Windows and colour layout as one blob: little-endian uint64 pHashes, dHashes, then the layout."""
        return np.asarray([*self.windows, *self.dwindows], dtype="<u8").tobytes() + self.colour

    @classmethod
    def from_stored(cls, phash: int, dhash: int, extra: bytes, flat: bool) -> Fingerprint:
        hashes = [int(w) for w in np.frombuffer(extra[: 16 * N_WINDOWS], dtype="<u8")]
        return cls(
            unsigned(phash),
            unsigned(dhash),
            tuple(hashes[:N_WINDOWS]),
            tuple(hashes[N_WINDOWS:]),
            bytes(extra[16 * N_WINDOWS :]),
            flat,
        )


def signed(value: int) -> int:
    """A 64-bit hash as SQLite stores integers (signed)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def _bits(flags: np.ndarray) -> int:
    """64 flags as an integer, the first one the highest bit."""
    return int.from_bytes(np.packbits(flags.reshape(-1)).tobytes(), "big")


def _phashes(greys: Sequence[Image.Image]) -> list[int]:
    stack = np.stack(
        [np.asarray(g.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64) for g in greys]
    )
    low = dctn(stack, type=2, norm="ortho", axes=(1, 2))[:, :8, :8].reshape(len(greys), 64)
    return [_bits(row > np.median(row)) for row in low]


def _dhash(grey: Image.Image) -> int:
    d = np.asarray(grey.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.float64)
    return _bits(d[:, 1:] > d[:, :-1])


def fingerprint(image: Image.Image) -> Fingerprint:
    """The fingerprint of a picture (best: the stored thumbnail, upright, 8-bit RGB)."""
    rgb = image.convert("RGB")
    grey = rgb.convert("L")
    while min(grey.size) >= 128:  # 4x the hash's 32 pixels is plenty, and 18 windows resize 4x faster
        grey = grey.reduce(2)
    w, h = grey.size
    crops = [grey]
    for scale in WINDOW_SCALES:
        cw, ch = w * scale, h * scale
        for ax in ANCHORS:
            for ay in ANCHORS:
                left, top = (w - cw) * ax, (h - ch) * ay
                crops.append(grey.crop((round(left), round(top), round(left + cw), round(top + ch))))
    hashes = _phashes(crops)
    gradients = [_dhash(c) for c in crops]
    small = np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    layout = np.asarray(rgb.convert("YCbCr").resize((4, 4), Image.Resampling.BOX), dtype=np.uint8)
    return Fingerprint(
        phash=hashes[0],
        dhash=gradients[0],
        windows=tuple(hashes[1:]),
        dwindows=tuple(gradients[1:]),
        colour=layout.tobytes(),
        flat=bool(small.std() < FLAT_STD),
    )


def moment(taken_at: str | None, source: str | None) -> float | None:
    """Seconds of a trusted local time (EXIF, or a file name with a time of day); None otherwise."""
    if not taken_at or source not in TRUSTED_TIMES:
        return None
    try:
        t = datetime.fromisoformat(taken_at)
    except ValueError:
        return None
    if source == "filename" and (t.hour, t.minute, t.second) == (0, 0, 0):
        return None  # a date without a time of day (IMG-20240712-WA0001)
    return (t.replace(tzinfo=None) - _EPOCH).total_seconds()


# -- many fingerprints at once ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rules:
    """The thresholds of a link; None turns a kind of link off (bench/similar.py compares them)."""

    strict: int | None = STRICT
    gradient: int = GRADIENT
    window: int | None = WINDOW
    burst: int | None = BURST
    burst_seconds: float = BURST_SECONDS
    colour: float = COLOUR

    @property
    def token(self) -> str:
        """What the groups were built with, stored beside them: a change regroups everything."""
        return (
            f"s{self.strict}-g{self.gradient}-w{self.window}-b{self.burst}/{self.burst_seconds:g}s"
            f"-c{self.colour:g}-f{FLAT_STD:g}-t{CROWDED_SECOND}"
        )


DEFAULT_RULES = Rules()
GROUPING = DEFAULT_RULES.token


@dataclass(slots=True)
class Prints:
    """Fingerprints as arrays, one row a photo."""

    ids: np.ndarray  # int64 photo ids
    phash: np.ndarray  # uint64
    dhash: np.ndarray  # uint64
    windows: np.ndarray  # uint64 (n, N_WINDOWS)
    dwindows: np.ndarray  # uint64 (n, N_WINDOWS)
    colour: np.ndarray  # float32 (n, 48)
    flat: np.ndarray  # bool
    times: np.ndarray  # float64 seconds; NaN where the clock is not trusted

    @classmethod
    def build(
        cls, ids: Sequence[int], prints: Sequence[Fingerprint], times: Sequence[float | None]
    ) -> Prints:
        n = len(ids)
        ts = np.array([math.nan if t is None else t for t in times], dtype=np.float64)
        if n:  # a second shared by many photos is no moment
            _, inverse, counts = np.unique(np.floor(ts), return_inverse=True, return_counts=True)
            ts[(counts[inverse] >= CROWDED_SECOND) & ~np.isnan(np.floor(ts))] = math.nan
        return cls(
            ids=np.asarray(ids, dtype=np.int64).reshape(n),
            phash=np.array([p.phash for p in prints], dtype=np.uint64).reshape(n),
            dhash=np.array([p.dhash for p in prints], dtype=np.uint64).reshape(n),
            windows=np.array([p.windows for p in prints], dtype=np.uint64).reshape(n, N_WINDOWS),
            dwindows=np.array([p.dwindows for p in prints], dtype=np.uint64).reshape(n, N_WINDOWS),
            colour=np.array(
                [np.frombuffer(p.colour, dtype=np.uint8) for p in prints], dtype=np.float32
            ).reshape(n, _COLOUR_BYTES),
            flat=np.array([p.flat for p in prints], dtype=bool).reshape(n),
            times=ts,
        )

    def __len__(self) -> int:
        return len(self.ids)


def _masks(radius: int) -> np.ndarray:
    """Every 16-bit pattern with at most `radius` bits set."""
    return np.array(
        [sum(1 << b for b in bits) for k in range(radius + 1) for bits in combinations(range(16), k)],
        dtype=np.int64,
    )


def near_pairs(query: np.ndarray, base: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) for every query[i] and base[j] (uint64 hashes) within `radius` bits, each pair once.

    Multi-index hashing: split into four 16-bit chunks, two hashes within `radius` bits agree on some chunk
    to within radius // 4 bits; each chunk of the base is bucketed once and every query looks up the buckets
    of its chunk's neighbours. The work grows with the matches, not with len(query) x len(base)."""
    empty = np.zeros(0, np.int64)
    if len(query) == 0 or len(base) == 0:
        return empty, empty
    masks = _masks(radius // 4)
    found_q, found_b = [], []
    for chunk in range(4):
        shift = np.uint64(16 * chunk)
        qk = ((query >> shift) & np.uint64(0xFFFF)).astype(np.int64)
        bk = ((base >> shift) & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(bk, kind="stable")
        starts = np.searchsorted(bk[order], np.arange(65537))
        for mask in masks:
            keys = qk ^ mask
            lo, hi = starts[keys], starts[keys + 1]
            counts = hi - lo
            total = int(counts.sum())
            if total == 0:
                continue
            qi = np.repeat(np.arange(len(query)), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            bj = order[np.repeat(lo, counts) + offsets]
            close = np.bitwise_count(query[qi] ^ base[bj]) <= radius
            found_q.append(qi[close])
            found_b.append(bj[close])
    if not found_q:
        return empty, empty
    qi, bj = np.concatenate(found_q), np.concatenate(found_b)
    key = np.unique(qi * len(base) + bj)
    return key // len(base), key % len(base)


def _pairs_in_time(times: np.ndarray, new: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of photos taken within `seconds` of each other, at least one of them new."""
    ok = np.flatnonzero(~np.isnan(times))
    order = ok[np.argsort(times[ok], kind="stable")]
    t = times[order]
    end = np.searchsorted(t, t + seconds, side="right")
    counts = end - np.arange(len(t)) - 1
    a = np.repeat(np.arange(len(t)), counts)
    b = a + 1 + (np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts))
    i, j = order[a], order[b]
    keep = new[i] | new[j]
    return np.minimum(i, j)[keep], np.maximum(i, j)[keep]


def _window_distance(p: Prints, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The smallest distance between the whole picture of one and a window of the other, either way."""
    if len(i) == 0:
        return np.zeros(0, np.int64)
    one = np.bitwise_count(p.phash[i][:, None] ^ p.windows[j]).min(axis=1)
    other = np.bitwise_count(p.phash[j][:, None] ^ p.windows[i]).min(axis=1)
    return np.minimum(one, other).astype(np.int64)


def _colour_ok(p: Prints, i: np.ndarray, j: np.ndarray, limit: float) -> np.ndarray:
    return np.asarray(np.abs(p.colour[i] - p.colour[j]).mean(axis=1) <= limit)


def find_links(
    p: Prints, new: np.ndarray | None = None, rules: Rules = DEFAULT_RULES
) -> list[tuple[int, int]]:
    """Linked pairs (row i < row j) with at least one row in `new` (a bool mask; None: all rows are new)."""
    n = len(p)
    new_mask = np.ones(n, bool) if new is None else np.asarray(new, bool)
    usable = ~p.flat
    rows = np.flatnonzero(usable)
    query = np.flatnonzero(usable & new_mask)
    if len(query) == 0:
        return []
    found: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    r = rules
    if r.strict is not None:  # whole pictures
        qi, bj = near_pairs(p.phash[query], p.phash[rows], r.strict)
        i, j = query[qi], rows[bj]
        keep = np.bitwise_count(p.dhash[i] ^ p.dhash[j]) <= r.gradient
        found.append((i[keep], j[keep]))
    if (
        r.window is not None
    ):  # crops: the new pictures against every window, the new windows against every picture
        qi, bj = near_pairs(p.phash[query], p.windows[rows].reshape(-1), r.window)
        i, j, w = query[qi], rows[bj // N_WINDOWS], bj % N_WINDOWS
        keep = (np.bitwise_count(p.dhash[i] ^ p.dwindows[j, w]) <= r.gradient) & _colour_ok(p, i, j, r.colour)
        found.append((i[keep], j[keep]))
        qi, bj = near_pairs(p.windows[query].reshape(-1), p.phash[rows], r.window)
        i, j, w = query[qi // N_WINDOWS], rows[bj], qi % N_WINDOWS
        keep = (np.bitwise_count(p.dwindows[i, w] ^ p.dhash[j]) <= r.gradient) & _colour_ok(p, i, j, r.colour)
        found.append((i[keep], j[keep]))
    if r.burst is not None:  # bursts: close in time, a looser distance
        times = np.where(usable, p.times, math.nan)
        i, j = _pairs_in_time(times, new_mask, r.burst_seconds)
        if len(i):
            whole = np.bitwise_count(p.phash[i] ^ p.phash[j]).astype(np.int64)
            nearest = np.minimum(whole, _window_distance(p, i, j)) if r.window is not None else whole
            close = (nearest <= r.burst) & _colour_ok(p, i, j, r.colour)
            found.append((i[close], j[close]))
    a = np.concatenate([f[0] for f in found])
    b = np.concatenate([f[1] for f in found])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key = np.unique(lo[keep] * n + hi[keep])
    return [(int(k // n), int(k % n)) for k in key]


def group_ids(
    ids: Sequence[int], groups: Sequence[int | None], links: Iterable[tuple[int, int]]
) -> dict[int, int | None]:
    """Every photo's group after `links` (pairs of row indices) join what `groups` already held.

    A group that absorbs others keeps the smallest of their ids; a new group takes its smallest photo id; a
    photo linked to nothing keeps what it had (None: alone). Returns photo id -> group id."""
    parent = list(range(len(ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[int, int] = {}
    for row, gid in enumerate(groups):  # what was grouped before stays together
        if gid is not None:
            if gid in first:
                parent[find(row)] = find(first[gid])
            else:
                first[gid] = row
    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    members: dict[int, list[int]] = {}
    for row in range(len(ids)):
        members.setdefault(find(row), []).append(row)
    out: dict[int, int | None] = {}
    for rows in members.values():
        if len(rows) == 1:
            out[int(ids[rows[0]])] = groups[rows[0]]
            continue
        old = [g for g in (groups[r] for r in rows) if g is not None]
        gid = min(old) if old else min(int(ids[r]) for r in rows)
        for r in rows:
            out[int(ids[r])] = gid
    return out

"""The vector index: photo id -> unit vector, cosine search, filters, and crash-safe persistence.

Small collections use an exact index (IndexFlatIP in IndexIDMap2); above `approx_threshold` vectors it
switches to HNSW (inner product) whose vectors are stored compressed (`storage`, default STORAGE_DEFAULT;
chosen with bench/ann.py on real embeddings of the bundled model, see README "Scaling out"). HNSW cannot
delete, so removed or replaced vectors become tombstones that searches skip, and the graph is rebuilt from the
live vectors when tombstones pile up. An index saved with full-precision HNSW storage (before compressed
storage existed) opens and works as it is; its next rebuild uses `storage`.

On disk (a directory next to the catalog): `manifest.json` plus data files whose names carry a per-save
suffix. The manifest is replaced last, atomically, so a crash mid-save leaves the previous save intact.
The index is derived data: `VectorIndex.open` says 'missing' | 'stale' | 'corrupt' | 'ok' and the caller
rebuilds from the catalog on anything but 'ok'.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import blake3
import faiss as _faiss
import numpy as np

from smartalbum.errors import SmartAlbumError
from smartalbum.index.photoids import PhotoIds, PhotoMask, id_array

log = logging.getLogger(__name__)
# faiss's bundled type hints miss the SWIG classes used here (SearchParametersHNSW, IDSelectorBitmap, ...)
faiss: Any = _faiss

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_APPROX_THRESHOLD = 50_000
EXACT_K = 5_000
KEPT_FILTERS = 16  # filters whose labels are kept (a mask of 1 byte a photo, and their labels)
# how an HNSW index stores its vectors: "sq8" (8 bits per dimension, 1/4 of float32), "fp16" (1/2) or
# "flat" (float32, what older saves hold). get() and scores come from this storage (SQ8: cosines +-1e-3).
# bench/ann.py, real embeddings of the bundled 1280-d model: HNSW32 over SQ8 at efSearch 768 has recall@10
# 0.983 on 100,000 vectors derived from them (fp16 0.993, float32 storage at efSearch 256 0.979) in 1,552
# bytes a vector: 1.55 GB at a million photos against 5.4 GB for float32 HNSW (README "Scaling out").
STORAGES = ("sq8", "fp16", "flat")
# exact answers over more vectors than this scan the storage with faiss (bitmap of the allowed ones) instead
# of decoding them and multiplying in numpy
DECODE_LIMIT = 65_536
RANGE_SAMPLE = 2_048  # vectors scored to guess how many a complete listing holds
STORAGE_DEFAULT = "sq8"


class IndexStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    STALE = "stale"
    CORRUPT = "corrupt"


class IndexUnusableError(SmartAlbumError):
    """A saved index cannot be used as it is; rebuild it from the catalog."""

    def __init__(self, status: IndexStatus, message: str) -> None:
        super().__init__(message, "rebuild the index from the catalog (smartalbum doctor --rebuild)")
        self.status = status


@dataclass
class IndexOpenResult:
    status: IndexStatus
    reason: str
    index: VectorIndex | None = None
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status is IndexStatus.OK


def _normalize(vectors: np.ndarray, dim: int) -> np.ndarray:
    v = np.array(vectors, dtype=np.float32, copy=True, order="C")
    if v.ndim == 1:
        v = v.reshape(1, -1)
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {np.shape(vectors)}")
    if not np.isfinite(v).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.divide(v, norms, out=v, where=norms > 0)
    return v


def _as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.fromiter((int(i) for i in ids), dtype=np.int64))


def _file_digest(path: Path) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(str(path))
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    # makes the os.replace durable; not every platform can open a directory
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _decodes(n: int) -> bool:
    """Whether exact scores of n vectors are decoded and multiplied in numpy (or else scanned by faiss)."""
    return n <= DECODE_LIMIT


def _new_hnsw(dim: int, m: int, storage: str) -> Any:
    if storage == "flat":
        return faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    qtype = faiss.ScalarQuantizer.QT_8bit if storage == "sq8" else faiss.ScalarQuantizer.QT_fp16
    return faiss.IndexHNSWSQ(dim, qtype, m, faiss.METRIC_INNER_PRODUCT)


def _storage_of(hnsw: Any) -> str:
    storage = faiss.downcast_index(hnsw.storage)
    if isinstance(storage, faiss.IndexScalarQuantizer):
        qtype = int(storage.sq.qtype)
        if qtype == faiss.ScalarQuantizer.QT_8bit:
            return "sq8"
        if qtype == faiss.ScalarQuantizer.QT_fp16:
            return "fp16"
        return f"sq{qtype}"
    return "flat"


class VectorIndex:
    """Photo id (int64) -> unit vector; exact search when small, HNSW when large."""

    def __init__(
        self,
        dim: int,
        model: str = "",
        *,
        approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 768,
        exact_filter_limit: int = 20_000,
        storage: str = STORAGE_DEFAULT,
    ) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, not {storage!r}")
        self.storage = storage
        self.dim = dim
        self.model = model
        self.approx_threshold = approx_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        # filters allowing at most this many photos are answered exactly, because HNSW with a very
        # selective filter can return fewer than k hits
        self.exact_filter_limit = exact_filter_limit
        self._lock = threading.RLock()
        self._flat: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._hnsw: Any = None
        # HNSW labels are positions; these map them to photo ids (-1 = tombstone) and back
        self._label_ids = np.empty(0, dtype=np.int64)
        self._id_to_label: dict[int, int] = {}
        self._by_id: tuple[np.ndarray, np.ndarray] | None = None  # live (ids, labels) sorted by id, cached
        self._dense_labels: np.ndarray | None = None  # label by photo id, -1: none; cached
        # _allowed's answers (labels, mask by label) for the last KEPT_FILTERS PhotoIds or PhotoMask, while
        # each lives (a broad filter's PhotoMask is kept by search for the next question in it)
        self._kept_labels: OrderedDict[int, tuple[weakref.ref[AbstractSet[int]], np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self._samples: dict[tuple[int, int], np.ndarray] = {}  # sample() draws, until the index changes
        self._flat_ids: set[int] = set()

    # ---- state -------------------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """'flat' (exact) or 'hnsw' (approximate)."""
        return "hnsw" if self._hnsw is not None else "flat"

    def __len__(self) -> int:
        with self._lock:
            return len(self._id_to_label) if self._hnsw is not None else len(self._flat_ids)

    def __contains__(self, photo_id: object) -> bool:
        if not isinstance(photo_id, int | np.integer):
            return False
        with self._lock:
            live = self._id_to_label if self._hnsw is not None else self._flat_ids
            return int(photo_id) in live

    def ids(self) -> np.ndarray:
        """All photo ids in the index, sorted."""
        with self._lock:
            live = self._id_to_label.keys() if self._hnsw is not None else self._flat_ids
            return np.sort(np.fromiter(live, dtype=np.int64, count=len(live)))

    @property
    def hnsw_storage(self) -> str | None:
        """How the HNSW index in use stores vectors ('sq8', 'fp16', 'flat'); None for the exact kind."""
        with self._lock:
            return None if self._hnsw is None else _storage_of(self._hnsw)

    @property
    def tombstones(self) -> int:
        with self._lock:
            return 0 if self._hnsw is None else int(self._hnsw.ntotal) - len(self._id_to_label)

    def get(self, photo_id: int) -> np.ndarray | None:
        """The stored (normalised) vector of a photo, or None."""
        with self._lock:
            if self._hnsw is not None:
                label = self._id_to_label.get(int(photo_id))
                if label is None:
                    return None
                return np.asarray(self._hnsw.reconstruct(label), dtype=np.float32)
            if int(photo_id) not in self._flat_ids:
                return None
            return np.asarray(self._flat.reconstruct(int(photo_id)), dtype=np.float32)

    # ---- writes ------------------------------------------------------------------------------------------

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors for photo ids; an id already present is replaced. Vectors are normalised here."""
        id_arr = _as_ids(ids)
        vecs = _normalize(vectors, self.dim)
        if len(id_arr) != len(vecs):
            raise ValueError(f"{len(id_arr)} ids but {len(vecs)} vectors")
        if len(id_arr) == 0:
            return
        # the last vector given for an id wins, as if added one after the other
        _, last = np.unique(id_arr[::-1], return_index=True)
        keep = np.sort(len(id_arr) - 1 - last)
        id_arr, vecs = id_arr[keep], vecs[keep]
        with self._lock:
            if self._hnsw is None:
                self._flat_remove(id_arr)
                self._flat.add_with_ids(vecs, id_arr)
                self._flat_ids.update(id_arr.tolist())
                if len(self._flat_ids) > self.approx_threshold:
                    self._rebuild()
            else:
                self._hnsw_remove(id_arr)
                start = int(self._hnsw.ntotal)
                self._hnsw.add(vecs)
                self._label_ids = np.concatenate([self._label_ids, id_arr])
                self._changed()
                self._id_to_label.update(zip(id_arr.tolist(), range(start, start + len(id_arr)), strict=True))
                self._maybe_compact()

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove photo ids (absent ids are ignored); returns how many were removed."""
        id_arr = _as_ids(ids)
        if len(id_arr) == 0:
            return 0
        with self._lock:
            if self._hnsw is None:
                return self._flat_remove(id_arr)
            removed = self._hnsw_remove(id_arr)
            self._maybe_compact()
            return removed

    def _flat_remove(self, id_arr: np.ndarray) -> int:
        present = np.array([i for i in id_arr.tolist() if i in self._flat_ids], dtype=np.int64)
        if len(present) == 0:
            return 0
        removed = int(self._flat.remove_ids(faiss.IDSelectorBatch(present)))
        self._flat_ids.difference_update(present.tolist())
        return removed

    def _hnsw_remove(self, id_arr: np.ndarray) -> int:
        removed = 0
        for pid in id_arr.tolist():
            label = self._id_to_label.pop(pid, None)
            if label is not None:
                self._label_ids[label] = -1
                removed += 1
        self._changed()
        return removed

    def _maybe_compact(self) -> None:
        dead = self.tombstones
        if dead > max(1_000, len(self._id_to_label) // 4) or (
            len(self._id_to_label) < self.approx_threshold // 2
        ):
            self._rebuild()

    def _live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        if self._hnsw is None:
            n = int(self._flat.ntotal)
            ids = faiss.vector_to_array(self._flat.id_map).astype(np.int64)
            vecs = self._flat.index.reconstruct_n(0, n) if n else np.empty((0, self.dim), np.float32)
            return ids, np.asarray(vecs, dtype=np.float32)
        labels = np.flatnonzero(self._label_ids >= 0)
        vecs = self._reconstruct_labels(labels)
        return self._label_ids[labels], vecs

    def _reconstruct_labels(self, labels: np.ndarray) -> np.ndarray:
        if len(labels) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        storage = faiss.downcast_index(self._hnsw.storage)
        return np.asarray(storage.reconstruct_batch(np.ascontiguousarray(labels, dtype=np.int64)))

    def _dot_labels(self, labels: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Stored vectors of `labels` times `q` (one vector). SQ8 codes are multiplied as they are stored
        (x_j = vmin_j + (c_j + 0.5) vdiff_j / 255, so x.q = c.(vdiff q / 255) + const): ~3x faster than
        decoding them first, and equal to it up to float rounding."""
        storage = faiss.downcast_index(self._hnsw.storage)
        if not len(labels) or _storage_of(self._hnsw) != "sq8":
            return self._reconstruct_labels(labels) @ q
        codes = faiss.rev_swig_ptr(storage.codes.data(), storage.ntotal * storage.code_size)
        trained = faiss.vector_to_array(storage.sq.trained)
        vmin, vdiff = trained[: self.dim], trained[self.dim :]
        weights = (vdiff * q / 255.0).astype(np.float32)
        const = float(vmin @ q + 0.5 * float(vdiff @ q) / 255.0)
        rows = codes.reshape(-1, storage.code_size)[np.ascontiguousarray(labels, dtype=np.int64)]
        return np.asarray(rows @ weights + const, dtype=np.float32)

    def _rebuild(self) -> None:
        """Rebuild from the live vectors, choosing exact or HNSW by size (drops tombstones)."""
        ids, vecs = self._live_vectors()
        if len(ids) > self.approx_threshold:
            t0 = time.monotonic()
            hnsw = _new_hnsw(self.dim, self.hnsw_m, self.storage)
            hnsw.hnsw.efConstruction = self.ef_construction
            hnsw.hnsw.efSearch = self.ef_search
            if not hnsw.is_trained:
                hnsw.train(vecs)  # SQ8: the per-dimension ranges
            hnsw.add(vecs)
            self._hnsw = hnsw
            self._label_ids = ids.copy()
            self._changed()
            self._id_to_label = dict(zip(ids.tolist(), range(len(ids)), strict=True))
            self._flat = None
            self._flat_ids = set()
            log.info(
                "built HNSW (%s) index over %d vectors in %.1f s",
                self.storage,
                len(ids),
                time.monotonic() - t0,
            )
        else:
            flat = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            if len(ids):
                flat.add_with_ids(vecs, ids)
            self._flat = flat
            self._flat_ids = set(ids.tolist())
            self._hnsw = None
            self._label_ids = np.empty(0, dtype=np.int64)
            self._changed()
            self._id_to_label = {}

    # ---- search ------------------------------------------------------------------------------------------

    def search(
        self,
        query_vec: np.ndarray,
        k: int,
        allowed_ids: AbstractSet[int] | None = None,
        *,
        min_cosine: float | None = None,
    ) -> list[tuple[int, float]]:
        """The k photos most like `query_vec` (cosine, best first), optionally only among `allowed_ids` and
        only those at `min_cosine` or above. A k beyond EXACT_K on an HNSW index is answered exactly: a graph
        walk that deep costs more than scanning every vector."""
        q = _normalize(query_vec, self.dim)
        if q.shape[0] != 1:
            raise ValueError("search takes one query vector")
        if k <= 0:
            return []
        with self._lock:
            if self._hnsw is None:
                hits = self._search_flat(q, k, allowed_ids)
            elif min_cosine is not None and k > EXACT_K:
                # a complete listing ("every photo at min_cosine or above"): one range scan of the
                # compressed storage, never a graph walk or a decompressed copy
                labels, scores = self._range_hnsw(q, allowed_ids, min_cosine)
                return self._pairs(labels[:k], scores[:k])
            else:
                hits = self._search_hnsw(q, k, allowed_ids, min_cosine)
        if min_cosine is not None:
            hits = [h for h in hits if h[1] >= min_cosine]
        return hits

    def _search_flat(
        self, q: np.ndarray, k: int, allowed: AbstractSet[int] | None
    ) -> list[tuple[int, float]]:
        n = int(self._flat.ntotal)
        params = None
        if allowed is not None:
            allow = np.fromiter((i for i in allowed if i in self._flat_ids), dtype=np.int64)
            n = len(allow)
            if n == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allow))
        k = min(k, n)
        if k == 0:
            return []
        scores, labels = self._flat.search(q, k, params=params)
        return [(int(i), float(s)) for i, s in zip(labels[0], scores[0], strict=True) if i >= 0]

    def _search_hnsw(
        self, q: np.ndarray, k: int, allowed: AbstractSet[int] | None, floor: float | None = None
    ) -> list[tuple[int, float]]:
        """The k best by a graph walk (with a filter's bitmap); exactly when the filter is small, or when the
        walk came back short (a selective filter can strand it) unless it already reached `floor`."""
        total = int(self._hnsw.ntotal)
        if allowed is not None:
            labels, mask = self._allowed(allowed)
            if len(labels) == 0:
                return []
            if len(labels) <= self.exact_filter_limit:
                return self._pairs(*self._exact_over(q, k, labels))
        else:
            labels = None
            mask = self._label_ids >= 0
        want = min(k, int(mask.sum()))
        if want == 0:
            return []
        if want > EXACT_K:
            return self._pairs(
                *self._exact_over(q, k, labels if labels is not None else np.flatnonzero(mask))
            )
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, want)
        bitmap = None
        if not mask.all():
            bitmap = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(total, faiss.swig_ptr(bitmap))
        scores, found = self._hnsw.search(q, want, params=params)
        del bitmap  # kept alive until here: the selector points into it
        ok = found[0] >= 0
        hits = self._pairs(*self._ties_by_id(found[0][ok], scores[0][ok]))
        if len(hits) < want and not (floor is not None and hits and hits[-1][1] < floor):
            # a selective filter can strand the graph walk; answer exactly rather than short
            return self._pairs(
                *self._exact_over(q, k, labels if labels is not None else np.flatnonzero(mask))
            )
        return hits

    def search_all(
        self, query_vec: np.ndarray, min_cosine: float, allowed_ids: AbstractSet[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every photo at `min_cosine` or above (optionally among `allowed_ids`), best first, as arrays of
        photo ids (int64) and cosines (float32): a complete listing has tens of thousands, too many to turn
        into Python numbers one by one."""
        q = _normalize(query_vec, self.dim)
        if q.shape[0] != 1:
            raise ValueError("search takes one query vector")
        with self._lock:
            if self._hnsw is None:
                hits = [
                    h for h in self._search_flat(q, len(self._flat_ids), allowed_ids) if h[1] >= min_cosine
                ]
                return (
                    np.array([pid for pid, _ in hits], dtype=np.int64),
                    np.array([cos for _, cos in hits], dtype=np.float32),
                )
            labels, scores = self._range_hnsw(q, allowed_ids, min_cosine)
            return self._label_ids[labels], scores

    def cosines(self, query_vec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The cosine of each of `ids` (int64, any order) with `query_vec` from the stored vectors, NaN for
        ids not in the index: a listing by date scores its photos a block at a time, not by a scan of all."""
        q = _normalize(query_vec, self.dim)[0]
        out = np.full(len(ids), np.nan, dtype=np.float32)
        with self._lock:
            if self._hnsw is None:
                for n, pid in enumerate(ids.tolist()):
                    if pid in self._flat_ids:
                        out[n] = float(np.asarray(self._flat.reconstruct(pid), dtype=np.float32) @ q)
                return out
            labels = self._label_at(ids)
            found = labels >= 0
            out[found] = self._dot_labels(labels[found], q)
        return out

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to `n` distinct ids of the index drawn uniformly (a fixed draw for a seed), in no order; kept
        until the index changes (drawing from a million costs ~10 ms)."""
        with self._lock:
            kept = self._samples.get((n, seed))
            if kept is not None:
                return kept
            if self._hnsw is None:
                live = np.sort(np.fromiter(self._flat_ids, dtype=np.int64, count=len(self._flat_ids)))
            else:
                live = self._live_by_id()[0]
            if len(live) > n:
                live = live[np.random.default_rng(seed).choice(len(live), n, replace=False)]
            if self._hnsw is not None:  # the exact kind has no change hook for it: drawn each time
                self._samples[(n, seed)] = live
            return live

    def _changed(self) -> None:
        """Forget what is derived from the live vectors (lookups by id, samples): the index changed."""
        self._by_id = self._dense_labels = None
        self._kept_labels.clear()
        self._samples = {}

    def _live_by_id(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, labels) of the live vectors sorted by id, kept until the index changes."""
        if self._by_id is None:
            live = np.flatnonzero(self._label_ids >= 0)
            order = np.argsort(self._label_ids[live], kind="stable")
            self._by_id = (self._label_ids[live][order], live[order])
        return self._by_id

    def _allowed(self, ids: AbstractSet[int]) -> tuple[np.ndarray, np.ndarray]:
        """The HNSW labels of those of `ids` in the index, ascending, and as a mask by label (a filter can
        allow a million photos: looked up in arrays, not one dict lookup each). Kept for the last
        KEPT_FILTERS PhotoIds or PhotoMask while each lives: a question asks its filter's photos more than
        once, and a broad filter's mask serves every question in it."""
        kept = self._kept_labels.get(id(ids))
        if kept is not None and kept[0]() is ids:
            self._kept_labels.move_to_end(id(ids))
            return kept[1], kept[2]
        mask = np.zeros(len(self._label_ids), dtype=bool)
        if isinstance(ids, PhotoMask):  # each label's photo looked up in the mask: no list of the photos
            photo = self._label_ids
            near = (photo >= 0) & (photo < len(ids.mask))
            mask[near] = ids.mask[photo[near]]
            if ids.extra:
                far = np.flatnonzero(photo >= len(ids.mask))
                mask[far] = np.isin(photo[far], np.fromiter(ids.extra, dtype=np.int64))
        elif ids:
            labels = self._label_at(id_array(ids))
            mask[labels[labels >= 0]] = True
        labels = np.flatnonzero(mask)
        if isinstance(ids, PhotoIds | PhotoMask):
            self._kept_labels[id(ids)] = (weakref.ref(ids), labels, mask)
            while len(self._kept_labels) > KEPT_FILTERS:
                self._kept_labels.popitem(last=False)
        return labels, mask

    def _label_at(self, ids: np.ndarray) -> np.ndarray:
        """The HNSW label of each of `ids` (-1: not in the index). Photo ids are small numbers (a catalog's
        row ids), so they are read from an array indexed by id (4 bytes an id, built when the index changed,
        only while ids are at most 4 per photo); others (videos' moments) are looked up in the sorted ids."""
        known, labels = self._live_by_id()
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(known) or not len(ids):
            return out
        if self._dense_labels is None:
            small = known[(known >= 0) & (known < 4 * len(known) + 1_000_000)]
            self._dense_labels = np.full(int(small[-1]) + 1 if len(small) else 0, -1, dtype=np.int32)
            start = int(np.searchsorted(known, 0))  # `known` is sorted: the small ids are one run
            self._dense_labels[small] = labels[start : start + len(small)]
        dense = self._dense_labels
        near = (ids >= 0) & (ids < len(dense))
        out[near] = dense[ids[near]]
        far = np.flatnonzero(~near)
        if len(far):
            at = np.minimum(np.searchsorted(known, ids[far]), len(known) - 1)
            found = known[at] == ids[far]
            out[far[found]] = labels[at[found]]
        return out

    def _range_hnsw(
        self, q: np.ndarray, allowed: AbstractSet[int] | None, min_cosine: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) at min_cosine or above, best first, from the storage, never a graph walk: a few
        are decoded and scored at once; many by a k-NN scan for the best `want`, widened while the last one is
        still above the cut-off. faiss's k-NN scan of SQ8/fp16 codes is vectorised, its range search is not
        (2-8x slower, bench/ann.py)."""
        if allowed is not None:
            labels = self._allowed(allowed)[0]
        else:
            labels = np.flatnonzero(self._label_ids >= 0)
        n = len(labels)
        want = n if n <= DECODE_LIMIT else min(n, self._expected_hits(q, labels, min_cosine))
        while True:
            found, scores = self._exact_over(q, want, labels)
            if want >= n or len(scores) == 0 or scores[-1] < min_cosine:
                keep = scores >= min_cosine
                return found[keep], scores[keep]
            want = min(n, want * 4)

    def _expected_hits(self, q: np.ndarray, labels: np.ndarray, min_cosine: float) -> int:
        """A generous guess of how many of `labels` score min_cosine or above, from a fixed sample: one scan
        usually suffices (each costs ~35 ms per 100,000 vectors)."""
        sample = labels[
            np.random.default_rng(0).choice(len(labels), min(RANGE_SAMPLE, len(labels)), replace=False)
        ]
        expect = float(np.mean(self._dot_labels(sample, q[0]) >= min_cosine)) * len(labels)
        return max(4096, int(expect * 1.2 + 4 * math.sqrt(expect) + 1024))

    def _exact_over(self, q: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) of the k best of `labels` by the stored vectors, best first: decoded and
        multiplied for a few, a k-NN scan of the storage with a bitmap of them for many."""
        k = min(k, len(labels))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if not _decodes(len(labels)):
            total = int(self._hnsw.ntotal)
            mask = np.zeros(total, dtype=bool)
            mask[labels] = True
            bitmap = np.packbits(mask, bitorder="little")
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(total, faiss.swig_ptr(bitmap)))
            storage = faiss.downcast_index(self._hnsw.storage)
            scores, found = storage.search(q, k, params=params)
            del bitmap  # kept alive until here: the selector points into it
            ok = found[0] >= 0
            return self._ties_by_id(found[0][ok], scores[0][ok])
        best_scores = np.empty(0, dtype=np.float32)
        best_labels = np.empty(0, dtype=np.int64)
        for start in range(0, len(labels), 65_536):
            chunk = labels[start : start + 65_536]
            scores = self._dot_labels(chunk, q[0])
            best_scores = np.concatenate([best_scores, scores])
            best_labels = np.concatenate([best_labels, chunk])
            if len(best_scores) > k:
                top = np.argpartition(-best_scores, k - 1)[:k]
                best_scores, best_labels = best_scores[top], best_labels[top]
        order = np.argsort(-best_scores, kind="stable")[:k]
        return self._ties_by_id(best_labels[order], best_scores[order])

    def _ties_by_id(self, labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best-first (labels, scores) with equal scores (the same text embedded twice) in photo id order,
        whichever way they were computed and whatever order a filter's ids came in."""
        if len(scores) > 1 and bool(np.any(scores[1:] == scores[:-1])):
            order = np.lexsort((self._label_ids[labels], -scores))
            labels, scores = labels[order], scores[order]
        return labels, scores

    def _pairs(self, labels: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
        """(photo id, score) for labels, as Python numbers (a complete listing has tens of thousands)."""
        return list(zip(self._label_ids[labels].tolist(), scores.astype(np.float64).tolist(), strict=True))

    # ---- persistence -------------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str], *, state_token: str | None = None) -> dict[str, Any]:
        """Write the index to `directory` atomically; returns the manifest written."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        suffix = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        with self._lock:
            index = self._hnsw if self._hnsw is not None else self._flat
            files: dict[str, dict[str, Any]] = {}
            written: list[Path] = []
            try:
                vec_path = d / f"vectors.{suffix}.faiss"
                tmp = d / f".{vec_path.name}.tmp"
                faiss.write_index(index, str(tmp))
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, vec_path)
                written.append(vec_path)
                if self._hnsw is not None:
                    lab_path = d / f"labels.{suffix}.npy"
                    buf = _npy_bytes(self._label_ids)
                    _write_atomic(lab_path, buf)
                    written.append(lab_path)
                for p in written:
                    files[p.name] = {"bytes": p.stat().st_size, "blake3": _file_digest(p)}
                manifest = {
                    "format_version": FORMAT_VERSION,
                    "model": self.model,
                    "dim": self.dim,
                    "count": len(self),
                    "kind": self.kind,
                    "metric": "inner_product",
                    "hnsw_m": self.hnsw_m,
                    "storage": self.hnsw_storage,
                    "state_token": state_token,
                    "files": files,
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                _write_atomic(d / MANIFEST, json.dumps(manifest, indent=2).encode())
                _fsync_dir(d)
            except BaseException:
                for p in written:
                    p.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    (d / f".vectors.{suffix}.faiss.tmp").unlink(missing_ok=True)
                raise
        # older saves are garbage once the new manifest is in place
        for p in d.iterdir():
            if p.name.startswith(("vectors.", "labels.")) and p.name not in files:
                with contextlib.suppress(OSError):
                    p.unlink()
        return manifest

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        expected_model: str | None,
        expected_dim: int | None,
        *,
        expected_state_token: str | None = None,
        verify: bool = True,
        **options: Any,
    ) -> IndexOpenResult:
        """Load a saved index and say whether it is usable: 'ok', 'missing', 'stale' or 'corrupt'.

        `expected_model`/`expected_dim`/`expected_state_token` (None = don't check) make an index written by
        another embedder, or for another catalog state, 'stale'. `verify` checks file checksums.
        `options` are passed to the constructor (threshold, HNSW parameters).
        """
        d = Path(directory)
        mpath = d / MANIFEST
        if not mpath.is_file():
            return IndexOpenResult(IndexStatus.MISSING, f"no vector index in {d}")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
            version = int(manifest["format_version"])
            model, dim, count = str(manifest["model"]), int(manifest["dim"]), int(manifest["count"])
            kind, files = str(manifest["kind"]), dict(manifest["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return IndexOpenResult(IndexStatus.CORRUPT, f"unreadable manifest {mpath}: {exc}")
        if version != FORMAT_VERSION:
            return IndexOpenResult(
                IndexStatus.STALE, f"index format {version}, this code reads {FORMAT_VERSION}", None, manifest
            )
        if expected_model is not None and model != expected_model:
            return IndexOpenResult(
                IndexStatus.STALE, f"index built with {model!r}, expected {expected_model!r}", None, manifest
            )
        if expected_dim is not None and dim != expected_dim:
            return IndexOpenResult(
                IndexStatus.STALE, f"index has dimension {dim}, expected {expected_dim}", None, manifest
            )
        if expected_state_token is not None and manifest.get("state_token") != expected_state_token:
            return IndexOpenResult(IndexStatus.STALE, "index is older than the catalog", None, manifest)
        try:
            index = cls._read(d, model, dim, count, kind, files, verify, options)
        except _CorruptIndex as exc:
            return IndexOpenResult(IndexStatus.CORRUPT, str(exc), None, manifest)
        return IndexOpenResult(IndexStatus.OK, f"{count} vectors ({kind})", index, manifest)

    @classmethod
    def _read(
        cls,
        d: Path,
        model: str,
        dim: int,
        count: int,
        kind: str,
        files: dict[str, Any],
        verify: bool,
        options: dict[str, Any],
    ) -> VectorIndex:
        vec_name = next((n for n in files if n.startswith("vectors.")), None)
        lab_name = next((n for n in files if n.startswith("labels.")), None)
        if vec_name is None or kind not in ("flat", "hnsw") or (kind == "hnsw" and lab_name is None):
            raise _CorruptIndex("manifest lists no usable data files")
        for name, meta in files.items():
            p = d / name
            if not p.is_file():
                raise _CorruptIndex(f"missing index file {p}")
            if p.stat().st_size != int(meta.get("bytes", -1)):
                raise _CorruptIndex(f"index file {p} has the wrong size (truncated?)")
            if verify and _file_digest(p) != meta.get("blake3"):
                raise _CorruptIndex(f"index file {p} fails its checksum")
        try:
            raw = faiss.read_index(str(d / vec_name))
        except Exception as exc:
            raise _CorruptIndex(f"cannot read {d / vec_name}: {exc}") from exc
        if int(raw.d) != dim:
            raise _CorruptIndex(f"index file has dimension {raw.d}, manifest says {dim}")
        # read_index already returns the concrete class and owns it; downcast_index would only add a second,
        # non-owning proxy that dangles once `raw` is collected
        typed = raw
        index = cls(dim, model, **options)
        if kind == "flat":
            flat = typed
            if not isinstance(flat, faiss.IndexIDMap2):
                raise _CorruptIndex("flat index file is not an IndexIDMap2")
            ids = faiss.vector_to_array(flat.id_map).astype(np.int64)
            if len(ids) != count or int(flat.ntotal) != count:
                raise _CorruptIndex(f"index holds {flat.ntotal} vectors, manifest says {count}")
            index._flat, index._flat_ids = flat, set(ids.tolist())
        else:
            hnsw = typed
            if not isinstance(hnsw, faiss.IndexHNSW):
                raise _CorruptIndex("hnsw index file is not an HNSW index")
            try:
                labels = np.load(d / str(lab_name), allow_pickle=False)
            except Exception as exc:
                raise _CorruptIndex(f"cannot read {d / str(lab_name)}: {exc}") from exc
            live = labels[labels >= 0]
            if labels.dtype != np.int64 or len(labels) != int(hnsw.ntotal) or len(live) != count:
                raise _CorruptIndex("HNSW labels do not match the index")
            index._hnsw, index._flat, index._label_ids, index._by_id = hnsw, None, labels, None
            index._id_to_label = {int(pid): int(lab) for lab, pid in enumerate(labels.tolist()) if pid >= 0}
            if len(index._id_to_label) != count:
                raise _CorruptIndex("HNSW labels repeat a photo id")
        return index

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        expected_model: str | None = None,
        expected_dim: int | None = None,
        **options: Any,
    ) -> VectorIndex:
        """Like `open`, but returns the index or raises IndexUnusableError (with .status)."""
        result = cls.open(directory, expected_model, expected_dim, **options)
        if result.index is None:
            raise IndexUnusableError(result.status, f"vector index is {result.status}: {result.reason}")
        return result.index


class _CorruptIndex(Exception):
    pass


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()

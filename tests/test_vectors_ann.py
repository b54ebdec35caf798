"""The approximate kind of VectorIndex (HNSW over compressed storage) on clustered vectors like real text
embeddings: recall against exact search, tombstones, filters, the complete-listing (min_cosine) scan, and
persistence, including an index saved before compressed storage existed (full-precision HNSW)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
import pytest

from smartalbum.index.photoids import PhotoIds
from smartalbum.index.vectors import STORAGE_DEFAULT, IndexStatus, VectorIndex

DIM = 96
# worst per-component error of a stored vector, by storage (SQ8: 1/255 of a dimension's range)
GET_ATOL = {"flat": 1e-6, "fp16": 1e-3, "sq8": 2e-2}


def _clustered(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around shared centres with a spread per point, as text embeddings of related photos are:
    most neighbours close, no two the same."""
    spread = rng.uniform(0.3, 0.9, (n, 1)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + spread * rng.standard_normal((n, DIM)).astype(
        np.float32
    ) / np.sqrt(DIM)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((150, DIM)).astype(np.float32) / np.sqrt(DIM)
    vecs = _clustered(rng, 6000, centres)
    queries = _clustered(rng, 60, centres)
    ids = rng.choice(10**9, size=len(vecs), replace=False).astype(np.int64)
    return ids, vecs, queries


@pytest.fixture(scope="module")
def built(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, VectorIndex]:
    ids, vecs, _ = data
    out = {}
    for storage in ("sq8", "fp16", "flat"):
        index = VectorIndex(DIM, "m", approx_threshold=1000, storage=storage)
        index.add(ids, vecs)
        out[storage] = index
    return out


def _brute(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return [int(ids[i]) for i in np.argsort(-(vecs @ q), kind="stable")[:k]]


def _recall(index: VectorIndex, ids: np.ndarray, vecs: np.ndarray, queries: np.ndarray, k: int) -> float:
    got = [len({h[0] for h in index.search(q, k)} & set(_brute(vecs, ids, q, k))) / k for q in queries]
    return float(np.mean(got))


@pytest.mark.parametrize("storage", ["sq8", "fp16", "flat"])
def test_recall_against_exact_search(
    built: dict[str, VectorIndex], data: tuple[np.ndarray, np.ndarray, np.ndarray], storage: str
) -> None:
    ids, vecs, queries = data
    index = built[storage]
    assert index.kind == "hnsw" and index.hnsw_storage == storage and len(index) == len(ids)
    # measured 1.000 / 1.000 / 1.000 (recall@10) and >= 0.99 (recall@30) on this set
    assert _recall(index, ids, vecs, queries, 10) >= 0.95
    assert _recall(index, ids, vecs, queries, 30) >= 0.95
    # scores are cosines of the stored vectors, best first
    hits = index.search(queries[0], 10)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, np.sort(vecs @ queries[0])[::-1][:10], atol=GET_ATOL[storage] * 2)
    got = index.get(int(ids[3]))
    assert got is not None
    np.testing.assert_allclose(got, vecs[3], atol=GET_ATOL[storage])


def test_default_storage_is_compressed() -> None:
    index = VectorIndex(DIM, "m", approx_threshold=10)
    index.add(np.arange(50), _clustered(np.random.default_rng(1), 50, np.zeros((1, DIM), np.float32) + 0.1))
    assert index.kind == "hnsw" and index.hnsw_storage == STORAGE_DEFAULT != "flat"
    with pytest.raises(ValueError, match="storage"):
        VectorIndex(DIM, "m", storage="pq")


def test_tombstones_filters_and_complete_listing(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vecs, queries = data
    index = VectorIndex(DIM, "m", approx_threshold=1000, exact_filter_limit=200)
    index.add(ids, vecs)
    gone = ids[:500]
    assert index.remove(gone) == 500 and index.tombstones == 500 and index.kind == "hnsw"
    assert index.get(int(gone[0])) is None and int(gone[0]) not in index
    live = np.ones(len(ids), bool)
    live[:500] = False
    lids, lvecs = ids[live], vecs[live]
    q = queries[1]
    assert not {h[0] for h in index.search(q, 50)} & set(gone.tolist())
    assert _recall(index, lids, lvecs, queries[:20], 10) >= 0.95

    # filters: a selective one is answered exactly, a broad one through the graph with a bitmap
    for step in (97, 3):
        allowed = set(ids[::step].tolist())
        sub = np.flatnonzero(live & np.isin(ids, list(allowed)))
        expect = _brute(vecs[sub], ids[sub], q, 10)
        got = [h[0] for h in index.search(q, 10, allowed_ids=allowed)]
        assert set(got) <= allowed - set(gone.tolist())
        assert len(set(got) & set(expect)) >= 9

    # complete listing: every live photo at min_cosine or above, best first (the storage's scores, so
    # photos within its error of the cut-off may fall either side)
    scores = lvecs @ q
    lo = float(np.quantile(scores, 0.9))
    listed = index.search(q, len(index), min_cosine=lo)
    got_ids = [h[0] for h in listed]
    assert len(got_ids) == len(set(got_ids)) and all(s >= lo for _, s in listed)
    assert [s for _, s in listed] == sorted((s for _, s in listed), reverse=True)
    sure = set(lids[scores >= lo + 2e-3].tolist())
    maybe = set(lids[scores >= lo - 2e-3].tolist())
    assert sure <= set(got_ids) <= maybe and len(sure) > 400
    allowed = set(ids[::2].tolist())
    listed = index.search(q, len(index), allowed, min_cosine=lo)
    assert {h[0] for h in listed} <= allowed & maybe and {h[0] for h in listed} >= sure & allowed
    assert index.search(q, len(index), {int(gone[1])}, min_cosine=-1.0) == []
    # the same listing as arrays, with and without allowed photos
    for among in (None, allowed):
        got_ids, got_cos = index.search_all(q, lo, among)
        assert got_ids.dtype == np.int64 and got_cos.dtype == np.float32
        assert list(zip(got_ids.tolist(), got_cos.astype(np.float64).tolist(), strict=True)) == index.search(
            q, len(index), among, min_cosine=lo
        )

    # tombstones piling up rebuild the graph without them
    index.remove(ids[500:2000])
    assert index.tombstones == 0 and len(index) == len(ids) - 2000


def test_save_open_roundtrip(tmp_path: Path, built: dict[str, VectorIndex], data: tuple) -> None:
    ids, vecs, queries = data
    index = VectorIndex(DIM, "m", approx_threshold=1000)
    index.add(ids, vecs)
    index.remove(ids[:10])
    manifest = index.save(tmp_path / "vec", state_token="t")
    assert manifest["kind"] == "hnsw" and manifest["storage"] == STORAGE_DEFAULT
    opened = VectorIndex.open(tmp_path / "vec", "m", DIM, expected_state_token="t", approx_threshold=1000)
    assert opened.status is IndexStatus.OK and opened.index is not None
    loaded = opened.index
    assert loaded.hnsw_storage == STORAGE_DEFAULT and len(loaded) == len(ids) - 10 and loaded.tombstones == 10
    for q in queries[:5]:
        assert loaded.search(q, 10) == index.search(q, 10)
    np.testing.assert_array_equal(loaded.get(int(ids[20])), index.get(int(ids[20])))
    assert loaded.get(int(ids[0])) is None


def test_index_saved_with_full_precision_hnsw_still_opens(tmp_path: Path, data: tuple) -> None:
    """What the code before compressed storage wrote: IndexHNSWFlat and a manifest without 'storage'."""
    ids, vecs, queries = data
    old = VectorIndex(DIM, "m", approx_threshold=1000, storage="flat")
    old.add(ids, vecs)
    old.save(tmp_path / "vec")
    mpath = tmp_path / "vec" / "manifest.json"
    manifest = json.loads(mpath.read_text())
    del manifest["storage"]
    mpath.write_text(json.dumps(manifest))
    opened = VectorIndex.open(tmp_path / "vec", "m", DIM, approx_threshold=1000)
    assert opened.status is IndexStatus.OK and opened.index is not None
    index = opened.index
    assert index.hnsw_storage == "flat"  # used as it is: no rebuild at open
    assert _recall(index, ids, vecs, queries[:20], 10) >= 0.95
    got = index.get(int(ids[5]))
    assert got is not None
    np.testing.assert_allclose(got, vecs[5], atol=1e-6)
    # the next rebuild (tombstones piling up) switches to the compressed storage
    index.remove(ids[:1500])
    assert index.tombstones == 0 and index.hnsw_storage == STORAGE_DEFAULT
    assert _recall(index, ids[1500:], vecs[1500:], queries[:20], 10) >= 0.95


def test_storage_scan_path_matches_decoding(
    monkeypatch: pytest.MonkeyPatch, data: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """Exact answers over many vectors scan the storage with faiss instead of decoding: same answers."""
    import smartalbum.index.vectors as mod

    ids, vecs, queries = data
    index = VectorIndex(DIM, "m", approx_threshold=1000, exact_filter_limit=5000)
    index.add(ids, vecs)
    index.remove(ids[:100])
    q = queries[2]
    allowed = set(ids[::2].tolist())
    lo = float(np.quantile(vecs @ q, 0.2))  # ~4700 listed: past a first 4096-long scan
    monkeypatch.setattr(mod, "_decodes", lambda n: True)
    decoded = (index.search(q, 20, allowed), index.search(q, 6000, min_cosine=lo))
    monkeypatch.setattr(mod, "_decodes", lambda n: False)
    monkeypatch.setattr(mod, "DECODE_LIMIT", 100)  # the listing's size is guessed, not taken whole
    scanned = (index.search(q, 20, allowed), index.search(q, 6000, min_cosine=lo))
    assert len(scanned[1]) > 4096
    # a guess that is far too low: the scan widens until the last one is under the cut-off
    monkeypatch.setattr(index, "_expected_hits", lambda *a: 1000)
    assert index.search(q, 6000, min_cosine=lo) == scanned[1]
    for a, b in zip(decoded, scanned, strict=True):
        # the two compute the same cosines with different rounding: near-ties may swap, never more
        assert len({h[0] for h in a} ^ {h[0] for h in b}) <= 2 and abs(len(a) - len(b)) <= 1
        n = min(len(a), len(b))
        np.testing.assert_allclose([h[1] for h in a][:n], [h[1] for h in b][:n], atol=1e-5)


def test_search_all_on_an_exact_index(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """A small library's index (exact, not HNSW) lists the same as arrays."""
    ids, vecs, queries = data
    index = VectorIndex(DIM, "m")  # under the approximate threshold: exact
    index.add(ids[:800], vecs[:800])
    q = queries[3]
    lo = float(np.quantile(vecs[:800] @ q, 0.7))
    allowed = set(ids[:800:3].tolist())
    scores = vecs[:800] @ q
    for among in (None, allowed):
        got_ids, got_cos = index.search_all(q, lo, among)
        within = np.array([among is None or int(i) in among for i in ids[:800]])
        sure = set(ids[:800][within & (scores >= lo + 1e-5)].tolist())
        maybe = set(ids[:800][within & (scores >= lo - 1e-5)].tolist())
        assert index.kind == "flat" and len(sure) > 50
        assert sure <= set(got_ids.tolist()) <= maybe
        assert np.all(np.diff(got_cos) <= 0) and np.all(got_cos >= lo)


@pytest.mark.parametrize("kind", ["set", "PhotoIds"])
def test_filters_see_photos_added_and_removed_after_a_search(data: tuple, kind: str) -> None:
    """The sorted id lookup behind filters is rebuilt after every change to the index; so are the labels
    kept for a PhotoIds asked again (the same object here, before and after each change)."""
    ids, vecs, queries = data
    index = VectorIndex(DIM, "m", approx_threshold=1000, exact_filter_limit=5000)
    index.add(ids[:3000], vecs[:3000])
    q = queries[4]
    allowed: AbstractSet[int] = set(ids[:4000:2].tolist())
    if kind == "PhotoIds":
        allowed = PhotoIds(ids[:4000:2])
        assert index.search(q, 50, allowed) == index.search(q, 50, set(allowed))
        assert index._kept_labels[id(allowed)][0]() is allowed
    first = {pid for pid, _ in index.search(q, 3000, allowed)}
    assert first == set(ids[:3000:2].tolist())  # every allowed photo that is in the index
    index.remove(ids[:1000])
    assert {pid for pid, _ in index.search(q, 3000, allowed)} == set(ids[1000:3000:2].tolist())
    index.add(ids[3000:4000], vecs[3000:4000])
    after = {pid for pid, _ in index.search(q, 3000, allowed)}
    assert after == set(ids[1000:4000:2].tolist())
    listed_ids, _ = index.search_all(q, -1.0, allowed)
    assert set(listed_ids.tolist()) == after


@pytest.mark.parametrize("decode", [True, False])
def test_equal_scores_come_in_photo_id_order(
    data: tuple, monkeypatch: pytest.MonkeyPatch, decode: bool
) -> None:
    """The same text embedded for two photos gives them the same score: they are listed by photo id, whether
    the scores were decoded or scanned and in whatever order a filter's ids came."""
    import smartalbum.index.vectors as mod

    ids, vecs, queries = data
    twins = np.concatenate([vecs[:1500], vecs[:1500]])  # photo i and photo i + 1500 have one vector
    index = VectorIndex(DIM, "m", approx_threshold=1000, exact_filter_limit=5000)
    index.add(ids[:3000], twins)
    monkeypatch.setattr(mod, "_decodes", lambda n: decode)
    q = queries[5]
    allowed = set(ids[:3000:3].tolist()) | set(ids[1500:3000].tolist())
    for hits in (
        index.search(q, 2000, allowed),
        index.search(q, 3000, min_cosine=-1.0),
        list(zip(*(a.tolist() for a in index.search_all(q, -1.0, allowed)), strict=True)),
    ):
        ties = [(a, b) for (a, sa), (b, sb) in itertools.pairwise(hits) if sa == sb]
        assert len(ties) > 100 and all(a < b for a, b in ties)


@pytest.mark.parametrize("storage", ["sq8", "fp16", "flat"])
def test_cosines_of_given_photos_are_their_stored_vectors_times_the_query(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], storage: str
) -> None:
    ids, vecs, queries = data
    index = VectorIndex(DIM, "m", approx_threshold=1000, storage=storage)
    index.add(ids[:3000], vecs[:3000])
    assert index.kind == "hnsw"
    asked = np.concatenate([ids[2990:3000][::-1], np.array([-5, 7], dtype=np.int64), ids[:5]])
    got = index.cosines(queries[0], asked)
    stored = np.array([index.get(int(i)) @ queries[0] if int(i) in index else np.nan for i in asked])
    assert np.allclose(got, stored, atol=1e-5, equal_nan=True)
    assert np.isnan(got[10:12]).all() and not np.isnan(got[:10]).any()
    assert np.allclose(got[:10], vecs[2990:3000][::-1] @ queries[0], atol=0.05)  # the vectors given
    small = VectorIndex(DIM, "m")  # the exact kind
    small.add(ids[:50], vecs[:50])
    assert np.allclose(small.cosines(queries[1], ids[:3]), vecs[:3] @ queries[1], atol=1e-5)
    assert np.isnan(small.cosines(queries[1], np.array([-1], dtype=np.int64))).all()


def test_a_sample_is_fixed_distinct_and_drawn_from_live_photos(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    ids, vecs, _ = data
    index = VectorIndex(DIM, "m", approx_threshold=1000)
    index.add(ids[:3000], vecs[:3000])
    index.remove(ids[:1000])
    a, b = index.sample(500), index.sample(500)
    assert len(a) == 500 == len(set(a.tolist())) and a.tolist() == b.tolist()
    assert set(a.tolist()) <= set(ids[1000:3000].tolist())
    assert sorted(index.sample(5000).tolist()) == sorted(ids[1000:3000].tolist())  # fewer than asked: all

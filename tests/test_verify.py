"""Visual verification (vision/verify.py, catalog/verifications.py, search/verify.py).

The transformers verifier runs on the tiny random Qwen3-VL built with the real classes (tests/tiny_qwen.py);
the OpenAI-compatible one against the scripted fake server of tests/test_openai_backend.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image, ImageDraw

from smartalbum.catalog import Catalog
from smartalbum.catalog.verifications import VerificationStore, normalise_condition
from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.ingest.decode import thumb_path
from smartalbum.search import verify as search_verify
from smartalbum.search.verify import verify_candidates
from smartalbum.vision.qwen_vl import QwenVLAnalyser, shared_analyser
from smartalbum.vision.verify import (
    TOP_LOGPROBS,
    VERIFY_PROMPT_VERSION,
    OpenAIVerifier,
    QwenVLVerifier,
    answer_token_ids,
    forget_verifiers,
    verifier,
    verify_messages,
)
from test_openai_backend import MODEL, FakeServer, Reply, completion, refused_url
from tiny_qwen import TINY_DIR_NAME, tiny_qwen_dir

MAX_PIXELS = 320 * 320  # short prompts for the tiny model
THUMB = 1024  # the large thumbnail size (Settings.thumb_sizes)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen_dir(tmp_path_factory)


def qwen_settings(model: Path | str, library: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "library_dir": library,
        "vlm_model": str(model),
        "vlm_device": "cpu",
        "vlm_dtype": "fp32",  # exact, so batched and one-by-one answers must agree closely
        "vlm_max_pixels": MAX_PIXELS,
        **kw,
    }
    return Settings(**values)


@pytest.fixture(autouse=True)
def fresh_verifiers() -> Iterator[None]:
    forget_verifiers()
    yield
    forget_verifiers()


@pytest.fixture(scope="module")
def loaded_shared(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QwenVLAnalyser]:
    """The process's shared analyser for the tiny model, loaded once for this module and unloaded after."""
    analyser = shared_analyser(qwen_settings(tiny_dir, tmp_path_factory.mktemp("lib")))
    analyser.load()
    yield analyser
    analyser.unload()


@pytest.fixture
def qwen(loaded_shared: QwenVLAnalyser, tiny_dir: Path, tmp_path: Path) -> QwenVLVerifier:
    made, why = verifier(qwen_settings(tiny_dir, tmp_path / "library"))
    assert why is None and isinstance(made, QwenVLVerifier)
    return made


def drawn(size: tuple[int, int], colour: tuple[int, int, int], shape: int = 0) -> Image.Image:
    img = Image.new("RGB", size, colour)
    d = ImageDraw.Draw(img)
    w, h = size
    if shape % 2:
        d.rectangle((w // 5, h // 5, w // 2, h // 2), fill=(250, 250, 0))
    else:
        d.ellipse((w // 4, h // 4, w * 3 // 4, h * 3 // 4), fill=(255, 255, 255))
    return img


IMAGES = [
    drawn((64, 64), (200, 40, 40)),  # below the minimum: scaled up by the processor
    drawn((600, 200), (30, 90, 200), 1),  # wide: a longer prompt than the others, so padding is real
    drawn((200, 300), (20, 160, 60)),
    drawn((320, 320), (90, 90, 90), 1),
    drawn((120, 90), (240, 200, 10)),
]


class Counting:
    """A verifier wrapper that records how many images each call got."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []

    @property
    def version(self) -> str:
        return str(self.inner.version)

    @property
    def last_errors(self) -> dict[int, str]:
        return dict(getattr(self.inner, "last_errors", {}))

    def probabilities(self, images: list[Image.Image], condition: str) -> list[float]:
        self.calls.append(len(images))
        return list(self.inner.probabilities(images, condition))


class Scripted:
    """A verifier with canned answers per call; each call also moves a fake clock on."""

    def __init__(self, answers: list[Any] | None = None, clock: list[float] | None = None, step: float = 0.0):
        self.version = "scripted|v1"
        self.answers = list(answers or [])
        self.calls: list[tuple[int, str]] = []
        self.clock = clock
        self.step = step
        self.last_errors: dict[int, str] = {}

    def probabilities(self, images: list[Image.Image], condition: str) -> list[float]:
        self.calls.append((len(images), condition))
        if self.clock is not None:
            self.clock[0] += self.step
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return list(answer(images))
        return [0.25] * len(images) if answer is None else list(answer)


def library(tmp_path: Path, n: int = len(IMAGES), **kw: Any) -> tuple[Settings, list[tuple[int, str]]]:
    """Settings for a library under tmp_path with n large thumbnails written: [(photo id, hash)]."""
    settings = qwen_settings(kw.pop("model", "unused"), tmp_path / "library", **kw)
    photos = []
    for i in range(n):
        h = f"{i:02x}" * 32
        path = thumb_path(settings.thumbs_dir, h, THUMB)
        path.parent.mkdir(parents=True, exist_ok=True)
        IMAGES[i % len(IMAGES)].save(path, quality=95)
        photos.append((100 + i, h))
    return settings, photos


@pytest.fixture
def catalog_at(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "library" / "catalog.sqlite3") as cat:
        yield cat


def stored(catalog: Catalog) -> list[tuple[str, str, str, float]]:
    rows = catalog.db.execute(
        "SELECT hash, condition, producer_version, probability FROM verifications ORDER BY hash"
    )
    return [tuple(r) for r in rows]


# ------------------------------------------------------------------------------------------ transformers


def test_answer_token_ids_sums_variants_and_stays_disjoint(tiny_dir: Path) -> None:
    table = {
        "yes": [1],
        " yes": [2],
        "Yes": [3],
        " Yes": [3],
        "YES": [40, 41],  # two tokens: not an answer token when single-token variants exist
        " YES": [4],
        "是": [8],
        "no": [5],
        " no": [6],
        "No": [7],
        " No": [7],
        "NO": [50, 51],
        " NO": [9],
        "否": [10, 11],
    }
    fake = SimpleNamespace(encode=lambda text, add_special_tokens=False: table[text])
    assert answer_token_ids(fake) == ([1, 2, 3, 4, 8], [5, 6, 7, 9])

    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(tiny_dir).tokenizer  # a tiny BPE: "yes" is not one token there
    yes, no = answer_token_ids(tok)
    assert yes and no and not set(yes) & set(no)
    space = tok.encode(" ", add_special_tokens=False)
    assert not set(space) & (set(yes) | set(no))  # a bare space starts " yes" and " no": neither side's
    assert tok.encode("no", add_special_tokens=False)[0] in no
    assert tok.encode("yes", add_special_tokens=False)[0] in yes

    with pytest.raises(ModelError):
        answer_token_ids(SimpleNamespace(encode=lambda text, add_special_tokens=False: [7]))


def test_qwen_probabilities_shape_batch_and_left_padding(qwen: QwenVLVerifier) -> None:
    model = qwen.analyser._model
    masks: list[Any] = []
    original = model.forward

    def spy(*args: Any, **kwargs: Any) -> Any:
        masks.append(kwargs["attention_mask"].clone())
        return original(*args, **kwargs)

    model.forward = spy
    try:
        batched = qwen.probabilities(IMAGES, "戴帽子")
    finally:
        del model.forward
    assert len(batched) == len(IMAGES)
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in batched)
    assert len(masks) == 1  # one forward pass for the batch, no generation
    mask = masks[0]
    assert mask.shape[0] == len(IMAGES)
    assert (mask == 0).any()  # prompts of different lengths were padded ...
    assert bool((mask[:, -1] == 1).all())  # ... on the left
    single = [qwen.probabilities([img], "戴帽子")[0] for img in IMAGES]
    assert batched == pytest.approx(single, abs=1e-4)
    assert len({round(p, 6) for p in batched}) > 1  # the answer depends on the image
    english = qwen.probabilities(IMAGES[:2], "wearing a hat")
    assert english != pytest.approx(batched[:2], abs=1e-9)  # and on the condition
    assert qwen.probabilities([], "戴帽子") == []


def test_qwen_probability_is_the_yes_share_of_the_next_token(qwen: QwenVLVerifier) -> None:
    """Recomputed from the full logits of an independent forward pass: softmax mass of yes vs no tokens."""
    import torch

    from smartalbum.vision.qwen_vl import fit_pixels

    image = fit_pixels(IMAGES[2], MAX_PIXELS)
    (p,) = qwen.probabilities([IMAGES[2]], "两只猫")
    inputs = qwen.analyser.model_inputs([verify_messages(image, "两只猫")], [image])
    with torch.inference_mode():
        logits = qwen.analyser._model(**inputs).logits[0, -1].float()
    probs = torch.softmax(logits, dim=-1)
    yes, no = answer_token_ids(qwen.analyser._processor.tokenizer)
    expected = float(probs[yes].sum() / (probs[yes].sum() + probs[no].sum()))
    assert p == pytest.approx(expected, abs=1e-5)
    assert qwen.version == f"{TINY_DIR_NAME}|{VERIFY_PROMPT_VERSION}"


def test_verifier_shares_the_loaded_model(
    qwen: QwenVLVerifier, loaded_shared: QwenVLAnalyser, tiny_dir: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    loads: list[str] = []
    original = QwenVLAnalyser._from_pretrained

    def counting(source: str, kwargs: dict[str, Any]) -> Any:
        loads.append(source)
        return original(source, kwargs)

    monkeypatch.setattr(QwenVLAnalyser, "_from_pretrained", staticmethod(counting))
    settings = qwen_settings(tiny_dir, tmp_path / "other-library", vlm_batch_size=7)
    again, _ = verifier(settings)
    assert again is qwen  # kept for the process
    forget_verifiers()
    fresh, _ = verifier(settings)
    assert isinstance(fresh, QwenVLVerifier) and fresh is not qwen
    assert fresh.analyser is loaded_shared  # the same weights, not a second copy
    assert loads == []
    own = QwenVLAnalyser(settings)
    given, why = verifier(settings, analyser=own)  # an analyser the caller holds is used as given
    assert why is None and isinstance(given, QwenVLVerifier) and given.analyser is own
    assert loads == [str(tiny_dir)] and own.loaded
    own.unload()


def test_no_model_is_none_with_a_reason(tmp_path: Path, servers_here: list[FakeServer]) -> None:
    made, why = verifier(qwen_settings(tmp_path / "no-such-model", tmp_path / "library"))
    assert made is None and why and "does not exist" in why and "openai" in why
    made, why = verifier(qwen_settings(tmp_path, tmp_path / "library", vlm_backend="nope"))
    assert made is None and why and "unknown vlm_backend" in why
    made, why = verifier(qwen_settings(tmp_path, tmp_path / "library", vlm_backend="openvino"))
    assert made is None and why and "not available with the openvino engine" in why  # not "unknown"
    made, why = verifier(openai_settings(tmp_path, refused_url()))
    assert made is None and why and "cannot reach" in why
    server = FakeServer(models=["another-model"])
    servers_here.append(server)
    made, why = verifier(openai_settings(tmp_path, server.url))
    assert made is None and why and "does not serve model" in why


# ------------------------------------------------------------------------------------------ the cache


def test_normalise_condition() -> None:
    assert normalise_condition("  Wearing\u3000 a  HAT\n") == "wearing a hat"
    assert normalise_condition("ＲＥＤ　裙子") == "red 裙子"  # full-width letters and space (NFKC)
    assert normalise_condition("Straße") == "strasse"  # case-folded, not only lower-cased
    assert normalise_condition("两只猫") == "两只猫"


def test_store_get_and_put(catalog_at: Catalog) -> None:
    store = VerificationStore(catalog_at)
    assert store.get(["a", "b"], "hat", "m|v1") == {}
    assert store.put("m|v1", " HAT ", {"a": 0.8, "b": 1.7, "c": math.nan}) == 2
    assert store.get(["a", "b", "c"], "hat", "m|v1") == {"a": 0.8, "b": 1.0}  # clamped; NaN never stored
    assert store.get(["a"], "hat", "m|v2") == {}  # another version asks again
    assert store.get(["a"], "cap", "m|v1") == {}
    store.put("m|v1", "hat", {"a": 0.1})
    assert store.get(["a"], "Hat", "m|v1") == {"a": 0.1}  # replaced, not duplicated
    many = {f"h{i}": i / 1500 for i in range(1200)}  # more hashes than one query binds
    store.put("m|v1", "hat", many)
    assert store.get(list(many), "hat", "m|v1") == pytest.approx(many)


# ------------------------------------------------------------------------------------------ candidates


def test_candidates_with_the_tiny_model_are_cached(
    qwen: QwenVLVerifier, tmp_path: Path, catalog_at: Catalog, tiny_dir: Path
) -> None:
    settings, photos = library(tmp_path, model=tiny_dir)
    spy = Counting(qwen)
    first = verify_candidates(catalog_at, settings, spy, photos, "  Wearing a HAT ", batch_size=3)
    assert spy.calls == [3, 2]
    assert (first.checked, first.cached, first.skipped, first.errors) == (5, 0, 0, {})
    assert first.condition == "wearing a hat" and first.version == qwen.version
    assert list(first.probabilities) == [pid for pid, _ in photos]
    assert all(0.0 <= p <= 1.0 for p in first.probabilities.values())
    # the same numbers as asking the model directly about the thumbnails
    thumbs = [Image.open(thumb_path(settings.thumbs_dir, h, THUMB)).convert("RGB") for _, h in photos]
    direct = qwen.probabilities(thumbs, "wearing a hat")
    assert list(first.probabilities.values()) == pytest.approx(direct, abs=1e-4)
    rows = stored(catalog_at)
    assert [(r[0], r[1], r[2]) for r in rows] == [(h, "wearing a hat", qwen.version) for _, h in photos]

    spy.calls.clear()
    second = verify_candidates(catalog_at, settings, spy, photos, "wearing  a hat", batch_size=3)
    assert spy.calls == []  # no model call at all
    assert (second.checked, second.cached, second.skipped) == (0, 5, 0)
    assert second.probabilities == pytest.approx(first.probabilities)

    third = verify_candidates(catalog_at, settings, spy, photos[:2], "戴帽子", batch_size=3)
    assert spy.calls == [2] and third.checked == 2  # another condition is asked anew


def test_caps_are_respected_and_reported(
    qwen: QwenVLVerifier, tmp_path: Path, catalog_at: Catalog, tiny_dir: Path
) -> None:
    settings, photos = library(tmp_path, model=tiny_dir)
    spy = Counting(qwen)
    capped = verify_candidates(catalog_at, settings, spy, photos, "两只猫", max_photos=2, batch_size=8)
    assert spy.calls == [2]
    assert capped.checked == 2 and capped.cached == 0
    assert capped.skipped_ids == [pid for pid, _ in photos[2:]]
    assert capped.skipped_reasons == {"max_photos": 3}
    assert list(capped.probabilities) == [pid for pid, _ in photos[:2]]

    # no time at all: the cached answers still come back, nothing new is asked
    timed = verify_candidates(catalog_at, settings, spy, photos, "两只猫", max_seconds=0.0)
    assert spy.calls == [2]
    assert timed.cached == 2 and timed.checked == 0
    assert timed.skipped_reasons == {"max_seconds": 3}
    assert sorted(timed.skipped_ids) == sorted(pid for pid, _ in photos[2:])
    tiny = verify_candidates(catalog_at, settings, spy, photos, "两只猫", max_seconds=1e-9)
    assert spy.calls == [2] and tiny.checked == 0 and tiny.skipped == 3
    assert timed.as_dict()["skipped"] == 3 and timed.elapsed_s >= 0.0


def test_time_limit_stops_between_batches(tmp_path: Path, catalog_at: Catalog, monkeypatch: Any) -> None:
    """Each batch takes 10 s on a fake clock: with 25 s, two batches run and the third would not fit."""
    clock = [0.0]
    monkeypatch.setattr(search_verify, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    settings, photos = library(tmp_path)
    fake = Scripted(clock=clock, step=10.0)
    report = verify_candidates(catalog_at, settings, fake, photos, "hat", max_seconds=25.0, batch_size=2)
    assert [n for n, _ in fake.calls] == [2, 2]
    assert report.checked == 4 and report.skipped_reasons == {"max_seconds": 1}
    assert report.skipped_ids == [photos[4][0]]
    assert report.elapsed_s == 20.0
    fake = Scripted(clock=clock, step=10.0)
    report = verify_candidates(catalog_at, settings, fake, photos, "cap", max_seconds=5.0, batch_size=2)
    assert [n for n, _ in fake.calls] == [2]  # the first batch starts; after it, 5 s are spent
    assert report.checked == 2 and report.skipped_reasons == {"max_seconds": 3}


def test_unreadable_thumbnails_are_skipped_with_a_reason(
    qwen: QwenVLVerifier, tmp_path: Path, catalog_at: Catalog, tiny_dir: Path
) -> None:
    settings, photos = library(tmp_path, model=tiny_dir)
    thumb_path(settings.thumbs_dir, photos[1][1], THUMB).unlink()  # deleted
    thumb_path(settings.thumbs_dir, photos[3][1], THUMB).write_bytes(b"\xff\xd8\xff not a jpeg")  # broken
    spy = Counting(qwen)
    report = verify_candidates(catalog_at, settings, spy, photos, "戴帽子", batch_size=2)
    assert set(report.errors) == {photos[1][0], photos[3][0]}
    assert all("thumbnail unreadable" in e for e in report.errors.values())
    assert report.checked == 3 and sorted(spy.calls) == [1, 1, 1]  # batches of 2 minus the bad ones
    assert set(report.probabilities) == {photos[i][0] for i in (0, 2, 4)}
    again = verify_candidates(catalog_at, settings, spy, photos, "戴帽子", batch_size=2)
    assert again.cached == 3 and set(again.errors) == {photos[1][0], photos[3][0]}  # never cached
    assert len(spy.calls) == 3


def test_model_failures_never_crash(tmp_path: Path, catalog_at: Catalog) -> None:
    settings, photos = library(tmp_path, n=4)
    # one NaN answer: that photo is an error (with the verifier's reason) and is not cached
    nan_first = Scripted([[math.nan, 0.7]])
    nan_first.last_errors = {0: "the server timed out"}
    report = verify_candidates(catalog_at, settings, nan_first, photos[:2], "hat", batch_size=2)
    assert report.errors == {photos[0][0]: "the model could not check it: the server timed out"}
    assert report.probabilities == {photos[1][0]: 0.7}
    assert VerificationStore(catalog_at).get([h for _, h in photos], "hat", "scripted|v1") == {
        photos[1][1]: 0.7
    }
    # a failed batch is tried one photo at a time; the photo that fails again is an error
    flaky = Scripted([RuntimeError("CUDA out of memory"), [0.9], RuntimeError("bad image"), [0.1]])
    report = verify_candidates(catalog_at, settings, flaky, photos[:3], "cat", batch_size=3)
    assert [n for n, _ in flaky.calls] == [3, 1, 1, 1]
    assert report.probabilities == {photos[0][0]: 0.9, photos[2][0]: 0.1}
    assert "bad image" in report.errors[photos[1][0]]
    # a model that cannot be used: what is not cached is skipped, with the reason
    broken = Scripted([ModelError("not enough memory to load the model", "use a smaller dtype")])
    report = verify_candidates(catalog_at, settings, broken, photos, "cat", batch_size=2)
    assert report.cached == 2 and report.checked == 0
    assert report.skipped_reasons == {"no_model": 2}
    assert report.note and "not enough memory" in report.note
    # no verifier at all
    report = verify_candidates(catalog_at, settings, None, photos, "cat", max_photos=3)
    assert report.skipped_reasons == {"max_photos": 1, "no_model": 3} and report.version is None
    assert report.note and "no vision model" in report.note
    # a wrong number of answers is an error per photo, not a crash
    short = Scripted([[0.5], [0.5], [0.5]])
    report = verify_candidates(catalog_at, settings, short, photos[:2], "dog", batch_size=2)
    assert report.checked == 2 and not report.errors


def test_every_photo_is_accounted_for(tmp_path: Path, catalog_at: Catalog) -> None:
    settings, photos = library(tmp_path)
    thumb_path(settings.thumbs_dir, photos[0][1], THUMB).unlink()
    VerificationStore(catalog_at).put("scripted|v1", "hat", {photos[2][1]: 0.3})
    dupes = [*photos, photos[1]]  # a photo listed twice counts once
    report = verify_candidates(catalog_at, settings, Scripted(), dupes, "hat", max_photos=4, batch_size=1)
    ids = [pid for pid, _ in photos]
    assert report.checked + report.cached + len(report.errors) + report.skipped == len(ids)
    assert sorted([*report.probabilities, *report.errors, *report.skipped_ids]) == sorted(ids)
    assert report.cached == 1 and report.probabilities[photos[2][0]] == 0.3


# ------------------------------------------------------------------------------------------ OpenAI-compatible


@pytest.fixture
def servers_here() -> Iterator[list[FakeServer]]:
    started: list[FakeServer] = []
    yield started
    for server in started:
        server.close()


def openai_settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "library_dir": tmp_path / "library",
        "vlm_backend": "openai",
        "openai_base_urls": [url],
        "vlm_model": MODEL,
        "vlm_max_pixels": 128 * 128,
        "openai_timeout_s": 5.0,
        "openai_max_retries": 0,
        "openai_concurrency": 2,
        "openai_api_key_env": "SMARTALBUM_TEST_OPENAI_KEY",
        **kw,
    }
    return Settings(**values)


def with_logprobs(text: str, top: list[tuple[str, float]]) -> dict[str, Any]:
    body = completion(text)
    first = {"token": text, "logprob": dict(top).get(text, -5.0), "bytes": None}
    first["top_logprobs"] = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]
    body["choices"][0]["logprobs"] = {"content": [first]}
    return body


def openai_verifier(
    tmp_path: Path, servers_here: list[FakeServer], **server_kw: Any
) -> tuple[Any, FakeServer]:
    server = FakeServer(**server_kw)
    servers_here.append(server)
    made, why = verifier(openai_settings(tmp_path, server.url))
    assert why is None and isinstance(made, OpenAIVerifier)
    return made, server


def test_openai_request_and_probability_from_logprobs(tmp_path: Path, servers_here: list[FakeServer]) -> None:
    answer = with_logprobs("yes", [("yes", -0.1), ("no", -2.3)])
    v, server = openai_verifier(tmp_path, servers_here, default=Reply(body=answer))
    (p,) = v.probabilities([Image.new("RGB", (400, 300), (10, 20, 30))], "戴帽子")
    assert p == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.3)))
    assert p == pytest.approx(0.9, abs=0.001)
    assert v.uses_logprobs is True and v.version == f"{MODEL}|{VERIFY_PROMPT_VERSION}"
    (seen,) = server.seen
    body = seen.body
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == TOP_LOGPROBS
    assert body["temperature"] == 0 and body["model"] == MODEL
    system, user = body["messages"]
    assert system["role"] == "system" and "yes or no" in system["content"]
    assert user["content"][0]["type"] == "image_url"
    text = user["content"][1]["text"]
    assert "Does this photo show: 戴帽子? Answer yes or no." in text and "这张照片" in text
    assert seen.image_size is not None and seen.image_size[0] * seen.image_size[1] <= 128 * 128


def test_openai_sums_answer_variants(tmp_path: Path, servers_here: list[FakeServer]) -> None:
    top = [
        (" Yes", math.log(0.3)),
        ("yes", math.log(0.2)),
        ("No", math.log(0.25)),
        ("no", math.log(0.05)),
        ("maybe", math.log(0.2)),
    ]
    replies = [
        Reply(body=with_logprobs(" Yes", top)),
        Reply(body=with_logprobs("否", [("否", -0.2), ("是", -1.8)])),
    ]
    v, _ = openai_verifier(tmp_path, servers_here, script=replies)
    v.client.concurrency = 1  # the script answers in request order
    p_en, p_zh = v.probabilities([Image.new("RGB", (64, 64)), Image.new("RGB", (64, 64))], "a hat")
    assert p_en == pytest.approx(0.5 / 0.8)
    assert p_zh == pytest.approx(math.exp(-1.8) / (math.exp(-1.8) + math.exp(-0.2)))


def test_openai_without_logprobs_falls_back_to_the_answer(
    tmp_path: Path, servers_here: list[FakeServer], catalog_at: Catalog
) -> None:
    answers = {0: "Yes", 1: "No.", 2: "maybe"}
    v, server = openai_verifier(
        tmp_path, servers_here, default=lambda i: Reply(body=completion(answers.get(i % 3, "yes")))
    )
    v.client.concurrency = 1
    probs = v.probabilities([Image.new("RGB", (64, 64))] * 3, "wearing a hat")
    assert probs[:2] == [1.0, 0.0] and math.isnan(probs[2])
    assert "neither yes nor no" in v.last_errors[2]
    assert v.uses_logprobs is False and v.version == f"{MODEL}|{VERIFY_PROMPT_VERSION}|text"
    assert "logprobs" in server.seen[0].body
    assert "logprobs" not in server.seen[-1].body  # once known, not asked for again

    # end to end: the answers are cached under the version that says how they were made
    settings, photos = library(tmp_path, n=2)
    report = verify_candidates(catalog_at, settings, v, photos, "wearing a hat")
    assert report.checked == 2 and report.version == v.version
    assert {r[2] for r in stored(catalog_at)} == {v.version}


def test_openai_server_that_refuses_logprobs(tmp_path: Path, servers_here: list[FakeServer]) -> None:
    replies = [Reply(400, {"error": {"message": "logprobs are not supported"}}), Reply(body=completion("no"))]
    v, server = openai_verifier(tmp_path, servers_here, script=replies)
    assert v.probabilities([Image.new("RGB", (64, 64))], "两只猫") == [0.0]
    assert [("logprobs" in s.body) for s in server.seen] == [True, False]
    assert v.uses_logprobs is False and v.version.endswith("|text")


def test_openai_failure_is_nan_with_a_reason(tmp_path: Path, servers_here: list[FakeServer]) -> None:
    v, _ = openai_verifier(tmp_path, servers_here, default=Reply(500, {"error": {"message": "boom"}}))
    (p,) = v.probabilities([Image.new("RGB", (64, 64))], "hat")
    assert math.isnan(p) and "HTTP 500" in v.last_errors[0]
    assert v.uses_logprobs is None  # nothing learned from a failure

"""The transformers Qwen3-VL backend, end to end on a tiny random Qwen3-VL built with the real classes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageOps

from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.vision.base import AnalysisInput
from smartalbum.vision.prompt import PROMPT_VERSION
from smartalbum.vision.qwen_vl import (
    QwenVLAnalyser,
    _load_error,
    fit_pixels,
    model_display_name,
    pick_dtype,
)
from tiny_qwen import TINY_DIR_NAME, tiny_qwen_dir

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "photos" / "exif" / "jpg"
MAX_NEW = 16  # the smallest value Settings allows
MAX_PIXELS = 320 * 320  # at most 100 visual tokens (at least 64): short prompts for the tiny model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen_dir(tmp_path_factory)


def _settings(model: Path | str, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "vlm_model": str(model),
        "vlm_device": "cpu",
        "vlm_dtype": "fp32",  # exact, so batched and one-by-one greedy results must match token for token
        "vlm_max_new_tokens": MAX_NEW,
        "vlm_max_pixels": MAX_PIXELS,
    }
    return Settings(**{**base, **kw})


@pytest.fixture(scope="module")
def analyser(tiny_dir: Path) -> Iterator[QwenVLAnalyser]:
    a = QwenVLAnalyser(_settings(tiny_dir, vlm_batch_size=3))
    yield a
    a.unload()


@pytest.fixture
def generate_spy(analyser: QwenVLAnalyser) -> Iterator[list[dict[str, Any]]]:
    """Records every generate call: input attention mask and number of new tokens per row."""
    analyser.load()
    model = analyser._model
    original = model.generate
    calls: list[dict[str, Any]] = []

    def spy(**kwargs: Any) -> Any:
        out = original(**kwargs)
        prompt_len = kwargs["input_ids"].shape[1]
        calls.append({"attention_mask": kwargs["attention_mask"].clone(), "new": out.shape[1] - prompt_len})
        return out

    model.generate = spy
    yield calls
    del model.generate  # back to the class method


def _photo(rel: str) -> Image.Image:
    path = PHOTOS / rel
    if not path.is_file():
        pytest.fail(f"shared eval photo missing: {path}")
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _drawn(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", size, colour)
    d = ImageDraw.Draw(img)
    d.ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(255, 255, 255))
    return img


@pytest.fixture(scope="module")
def photos() -> list[AnalysisInput]:
    images = [
        _photo("gps/DSCN0010.jpg"),
        _drawn((64, 64), (200, 40, 40)),  # below the minimum: the processor scales it up (64 tokens)
        _drawn((900, 200), (30, 90, 200)),  # wide, panorama-like
        _photo("Canon_40D.jpg"),
        _photo("orientation/portrait_6.jpg"),  # EXIF-rotated to portrait
    ]
    return [AnalysisInput(f"{i:02d}" * 32, img) for i, img in enumerate(images)]


def test_tiny_model_loads_like_the_real_one(tiny_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    tok = processor.tokenizer
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert model.config.text_config.vocab_size == len(tok)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": "x"}, {"type": "text", "text": "hi"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    image_part = "<|vision_start|><|image_pad|><|vision_end|>"
    assert text == f"<|im_start|>user\n{image_part}hi<|im_end|>\n<|im_start|>assistant\n"


def test_version_and_lazy_loading(tiny_dir: Path) -> None:
    a = QwenVLAnalyser(_settings(tiny_dir))
    assert a.name == "qwen_vl"
    assert a.version == f"{TINY_DIR_NAME}|{PROMPT_VERSION}"
    assert not a.loaded
    assert a.analyse([]) == []
    assert not a.loaded  # nothing to do, nothing loaded
    a.load()
    assert a.loaded and a.device == "cpu"
    assert a._processor.tokenizer.padding_side == "left"
    a.unload()
    assert not a.loaded
    assert model_display_name("Qwen/Qwen3-VL-2B-Instruct") == "Qwen/Qwen3-VL-2B-Instruct"


def test_batch_equals_one_by_one(
    analyser: QwenVLAnalyser, photos: list[AnalysisInput], generate_spy: list[dict[str, Any]]
) -> None:
    batched = analyser.analyse(photos)  # chunks of 3 and 2
    assert [len(c["attention_mask"]) for c in generate_spy] == [3, 2]
    # Different image sizes give prompts of different lengths: the batch really was padded, on the left.
    mask = generate_spy[0]["attention_mask"]
    assert (mask == 0).any()
    assert bool((mask[:, -1] == 1).all())
    single = [analyser.analyse([p])[0] for p in photos]
    assert [r.hash for r in batched] == [p.hash for p in photos]
    assert [r.raw for r in batched] == [r.raw for r in single]
    assert [r.status for r in batched] == [r.status for r in single]
    assert [r.data for r in batched] == [r.data for r in single]


def test_nonsense_is_kept_raw_and_new_tokens_are_capped(
    analyser: QwenVLAnalyser, photos: list[AnalysisInput], generate_spy: list[dict[str, Any]]
) -> None:
    results = analyser.analyse(photos[:3])
    assert [r.hash for r in results] == [p.hash for p in photos[:3]]
    assert generate_spy and all(0 < c["new"] <= MAX_NEW for c in generate_spy)
    for r in results:
        # Random weights never produce the JSON schema: the raw text is kept and the row is marked.
        assert r.status in {"unparsed", "error"}, r
        assert r.error
        if r.status == "unparsed":
            assert r.raw.strip()
            caption = r.data["caption"]
            assert caption["zh"] or caption["en"] or not re.search(r"[0-9A-Za-z\u3400-\u9fff]", r.raw)
        else:
            assert not r.raw.strip()


def test_one_bad_image_does_not_fail_the_batch(analyser: QwenVLAnalyser, photos: list[AnalysisInput]) -> None:
    bad = AnalysisInput("bad" * 20, Image.new("RGB", (0, 0)))
    results = analyser.analyse([photos[1], bad, photos[3]])
    assert [r.hash for r in results] == [photos[1].hash, bad.hash, photos[3].hash]
    assert results[1].status == "error" and "empty" in (results[1].error or "")
    good = analyser.analyse([photos[1], photos[3]])
    assert [r.raw for r in (results[0], results[2])] == [r.raw for r in good]


def test_bfloat16_on_cpu(tiny_dir: Path, photos: list[AnalysisInput]) -> None:
    import torch

    a = QwenVLAnalyser(_settings(tiny_dir, vlm_dtype="bf16"))
    try:
        (r,) = a.analyse([photos[3]])
        assert a.dtype is torch.bfloat16
        assert r.status in {"unparsed", "error"} and r.error
    finally:
        a.unload()


def test_fit_pixels_downscales_only() -> None:
    big = Image.new("RGBA", (4000, 3000))
    out = fit_pixels(big, 448 * 448)
    assert out.mode == "RGB"
    assert out.width * out.height <= 448 * 448
    assert abs(out.width / out.height - 4 / 3) < 0.01
    small = Image.new("L", (100, 50))
    assert fit_pixels(small, 448 * 448).size == (100, 50)
    with pytest.raises(ValueError):
        fit_pixels(Image.new("RGB", (0, 0)), 448 * 448)


def test_dtype_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from smartalbum.vision import qwen_vl

    monkeypatch.setattr(qwen_vl, "cpu_has_native_bf16", lambda: False)
    assert pick_dtype("auto", "cpu") is torch.float32
    monkeypatch.setattr(qwen_vl, "cpu_has_native_bf16", lambda: True)
    assert pick_dtype("auto", "cpu") is torch.bfloat16
    assert pick_dtype("bf16", "cpu") is torch.bfloat16
    assert pick_dtype("float16", "mps") is torch.float16
    with pytest.raises(ModelError) as err:
        pick_dtype("int3", "cpu")
    assert err.value.hint and "bfloat16" in err.value.hint


def test_missing_local_path(tmp_path: Path) -> None:
    a = QwenVLAnalyser(_settings(tmp_path / "no-such-model"))
    with pytest.raises(ModelError) as err:
        a.analyse([AnalysisInput("h", Image.new("RGB", (64, 64)))])
    assert "does not exist" in err.value.message
    assert err.value.hint and "HF_ENDPOINT" in err.value.hint and "openai" in err.value.hint
    assert not a.loaded


def test_incomplete_local_dir(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(ModelError) as err:
        QwenVLAnalyser(_settings(tmp_path / "half")).load()
    assert err.value.hint and "HF_ENDPOINT" in err.value.hint


def test_unknown_hub_id_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    a = QwenVLAnalyser(_settings("smartalbum-tests/no-such-model-vl"))
    with pytest.raises(ModelError) as err:
        a.load()
    assert "smartalbum-tests/no-such-model-vl" in err.value.message
    assert err.value.hint and "HF_ENDPOINT" in err.value.hint and "openai" in err.value.hint


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast = decided by one connection check, without entering the hub client's download (and retry) path."""
    import transformers

    from smartalbum.vision import qwen_vl

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    probes: list[bool] = []
    loads: list[tuple[str, bool]] = []
    reachable = qwen_vl.hub_reachable

    def probe() -> bool:
        probes.append(reachable())
        return probes[-1]

    def spy(cls: Any) -> None:
        original = cls.from_pretrained

        def from_pretrained(source: str, *args: Any, **kwargs: Any) -> Any:
            loads.append((cls.__name__, bool(kwargs.get("local_files_only"))))
            return original(source, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", from_pretrained)

    spy(transformers.AutoProcessor)
    spy(transformers.AutoModelForImageTextToText)
    monkeypatch.setattr(qwen_vl, "hub_reachable", probe)
    a = QwenVLAnalyser(_settings("smartalbum-tests/no-such-model-vl"))
    with pytest.raises(ModelError) as err:
        a.load()
    assert "127.0.0.1:9 is unreachable" in err.value.message
    assert err.value.hint and "HF_ENDPOINT" in err.value.hint
    assert probes == [False]  # the endpoint was checked once, and found unreachable
    assert not loads, loads  # decided before transformers (or the hub client) was entered at all
    assert not a.loaded


def test_four_bit_needs_cuda(tiny_dir: Path) -> None:
    with pytest.raises(ModelError) as err:
        QwenVLAnalyser(_settings(tiny_dir, vlm_load_in_4bit=True)).load()
    assert "CUDA" in err.value.message


def test_out_of_memory_while_loading_is_one_model_error(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def oom(source: str, kwargs: dict[str, Any]) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(QwenVLAnalyser, "_from_pretrained", staticmethod(oom))
    with pytest.raises(ModelError) as err:
        QwenVLAnalyser(_settings(tiny_dir)).load()
    assert "memory" in err.value.message
    assert err.value.hint and "dtype" in err.value.hint and "openai" in err.value.hint


def test_unknown_repo_message() -> None:
    exc = OSError("nobody/x is not a local folder and is not a valid model identifier listed on the hub")
    err = _load_error("nobody/x", exc)
    assert "no model called 'nobody/x'" in err.message
    assert err.hint and "HF_ENDPOINT" in err.hint

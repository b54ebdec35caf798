"""Local Qwen3-VL analyser on transformers: batched, greedy, bounded in image tokens and new tokens.

The model loads lazily on the first `analyse` (or an explicit `load()`), by Hugging Face id or local path.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.hub import hub_reachable
from smartalbum.models import ensure_local, hf_cache_copy, local_copy, model_dir, source_for
from smartalbum.vision.base import AnalysisInput, AnalysisResult
from smartalbum.vision.parse import analyse_in_chunks
from smartalbum.vision.prompt import PROMPT_VERSION, build_messages

log = logging.getLogger(__name__)

# One visual token covers 32x32 pixels (patch 16, spatial merge 2); the processor rounds sizes to this.
PIXELS_PER_TOKEN_SIDE = 32
# Qwen's own lower bound is 256 tokens; 64 keeps small photos cheap and is still legible to the model.
MIN_PIXELS = 64 * PIXELS_PER_TOKEN_SIDE * PIXELS_PER_TOKEN_SIDE

_DTYPE_NAMES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

_FETCH_HINT = (
    "set model_source = 'modelscope' or HF_ENDPOINT to a mirror (e.g. HF_ENDPOINT=https://hf-mirror.com), "
    "fetch it ahead with `smartalbum models pull vision`, or download the model to a local "
    "directory and set vlm_model to its path, or use the openai backend "
    "(vlm_backend = 'openai' with `vllm serve Qwen/Qwen3-VL-2B-Instruct`)"
)
_MEMORY_HINT = (
    "use a smaller dtype (vlm_dtype = 'bfloat16' or 'float16'), vlm_load_in_4bit = true on CUDA, a smaller "
    "model, or the openai backend (vlm_backend = 'openai' with `vllm serve Qwen/Qwen3-VL-2B-Instruct`)"
)


def model_display_name(model: str) -> str:
    """The name that goes into the producer version: the hub id as given, or a local directory's name."""
    path = Path(model).expanduser()
    if _looks_like_path(model) or path.exists():
        return path.resolve().name or model
    return model


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", "./", "../", "~", "\\"))
        or os.path.isabs(model)
        or bool(re.match(r"^[A-Za-z]:[\\/]", model))
        or not _HUB_ID.match(model)
    )


def pick_device(requested: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then CPU; anything else is passed to torch as given."""
    import torch

    req = requested.strip().lower()
    if req != "auto":
        if req.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(
                f"vlm_device is {requested!r} but CUDA is not available", "set vlm_device = 'auto'"
            )
        if req == "mps" and not torch.backends.mps.is_available():
            raise ModelError("vlm_device is 'mps' but Apple MPS is not available", "set vlm_device = 'auto'")
        return req
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(requested: str, device: str) -> Any:
    """Resolve vlm_dtype to a torch dtype for `device`."""
    import torch

    req = requested.strip().lower()
    if req == "auto":
        if device.startswith("cuda"):
            # bf16 keeps fp32's range (no overflow in long answers) at half the memory; fp16 on older GPUs.
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device == "mps":
            # MPS runs fp16 fast everywhere, bf16 only on recent macOS.
            return torch.float16
        # With native bf16 instructions bf16 ran 2.3x faster than fp32 at half the memory (bench/vlm.py);
        # without them it is emulated and slower, so fp32.
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    name = _DTYPE_NAMES.get(req)
    if name is None:
        raise ModelError(
            f"unsupported vlm_dtype {requested!r}",
            "use one of auto, bfloat16 (bf16), float16 (fp16), float32 (fp32)",
        )
    dtype = getattr(torch, name)
    if dtype is torch.bfloat16 and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise ModelError("this GPU does not support bfloat16", "set vlm_dtype = 'float16' (or 'auto')")
    return dtype


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX); ARM and older x86: False."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    except Exception:  # private torch API: absent or failing means "don't know", so the safe fp32
        return False


def fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """RGB copy of `image` scaled down (never up) so width*height <= max_pixels, keeping the aspect ratio."""
    w, h = image.size
    if w < 1 or h < 1:
        raise ValueError(f"the image is empty ({w}x{h} pixels)")
    img = image if image.mode == "RGB" else image.convert("RGB")
    if w * h > max_pixels:
        scale = (max_pixels / (w * h)) ** 0.5
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        # reducing_gap makes huge photos cheap: a box reduction first, then bicubic on the small image.
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return img


_SHARED: dict[tuple[Any, ...], QwenVLAnalyser] = {}
_SHARED_LOCK = threading.Lock()


def shared_analyser(settings: Settings) -> QwenVLAnalyser:
    """This process's one analyser for the model, device, dtype, 4-bit flag and pixel budget in `settings`.

    Tasks other than the analysis stage (verification in vision/verify.py) take it from here, so that the
    weights are loaded once per process however many of them run; nothing loads until `load()`.
    """
    key = (
        settings.vlm_model,
        settings.vlm_device,
        settings.vlm_dtype,
        settings.vlm_load_in_4bit,
        settings.vlm_max_pixels,
    )
    with _SHARED_LOCK:
        analyser = _SHARED.get(key)
        if analyser is None:
            analyser = _SHARED[key] = QwenVLAnalyser(settings)
        return analyser


class QwenVLAnalyser:
    """Describes photos with a Qwen3-VL model through transformers (see the module docstring)."""

    name = "qwen_vl"

    def __init__(self, settings: Settings) -> None:
        self.model_id = settings.vlm_model
        self.version = f"{model_display_name(settings.vlm_model)}|{PROMPT_VERSION}"
        self.requested_device = settings.vlm_device
        self.requested_dtype = settings.vlm_dtype
        self.batch_size = settings.vlm_batch_size
        self.max_pixels = settings.vlm_max_pixels
        self.max_new_tokens = settings.vlm_max_new_tokens
        self.load_in_4bit = settings.vlm_load_in_4bit
        self.model_source = settings.model_source
        self.model_root = model_dir(settings)
        self.device: str | None = None
        self.dtype: Any = None
        self._model: Any = None
        self._processor: Any = None

    # -- loading -------------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def loaded_model(self) -> tuple[Any, Any]:
        """(processor, model), loaded first if need be: for other tasks on the weights (vision/verify.py)."""
        self.load()
        return self._processor, self._model

    def load(self) -> None:
        """Load processor and model now; raises one ModelError that says what went wrong and what to do."""
        if self._model is not None:
            return
        device = pick_device(self.requested_device)
        dtype = pick_dtype(self.requested_dtype, device)
        source = self._resolve_source()
        kwargs: dict[str, Any] = {"dtype": dtype, "device_map": {"": device}}
        if self.load_in_4bit:
            kwargs["quantization_config"] = self._four_bit_config(device, dtype)
        started = time.monotonic()
        try:
            processor, model = self._from_pretrained(source, kwargs)
        except ModelError:
            raise
        except Exception as exc:
            raise _load_error(self.model_id, exc) from exc
        finally:
            gc.collect()
        model.eval()
        # Batched generation appends new tokens on the right, so prompts must be padded on the left.
        processor.tokenizer.padding_side = "left"
        self._processor, self._model = processor, model
        self.device, self.dtype = device, dtype
        log.info(
            "loaded %s on %s (%s%s) in %.1f s",
            self.model_id,
            device,
            str(dtype).removeprefix("torch."),
            ", 4-bit" if self.load_in_4bit else "",
            time.monotonic() - started,
        )

    def _resolve_source(self) -> str:
        model = self.model_id
        path = Path(model).expanduser()
        if path.exists():
            if not path.is_dir():
                raise ModelError(
                    f"vlm_model {model!r} is a file, not a model directory",
                    "pass the directory that holds config.json and the weights",
                )
            if not (path / "config.json").is_file():
                raise ModelError(
                    f"{model!r} has no config.json: it is not a complete model directory",
                    "download the whole model, e.g. `hf download Qwen/Qwen3-VL-2B-Instruct --local-dir DIR`, "
                    "and pass DIR; " + _FETCH_HINT,
                )
            return str(path)
        if _looks_like_path(model):
            raise ModelError(
                f"model directory {model!r} does not exist",
                "check the path, or set vlm_model to a hub id such as Qwen/Qwen3-VL-2B-Instruct; "
                + _FETCH_HINT,
            )
        return self._fetch(model)

    def _fetch(self, model: str) -> str:
        """A hub id as a folder: pulled before (models.py), or pulled now from model_source with resume and
        checksums. A model in the Hugging Face cache, or HF_HUB_OFFLINE, stays with transformers' loading."""
        pulled = local_copy(model, self.model_root)
        if pulled is not None:
            return str(pulled)
        if _hub_offline() or hf_cache_copy(model) is not None:
            return model
        source = source_for(self.model_source)
        if source.name == "huggingface" and not hub_reachable():
            raise ModelError(
                f"cannot download {model!r}: {source.endpoint} is unreachable and the model is not cached "
                "locally",
                _FETCH_HINT,
            )
        return str(ensure_local(model, source, self.model_root))

    @staticmethod
    def _four_bit_config(device: str, dtype: Any) -> Any:
        if not device.startswith("cuda"):
            raise ModelError(
                f"4-bit loading needs a CUDA GPU, but the device is {device!r}",
                "set vlm_load_in_4bit = false, or use a smaller dtype (vlm_dtype = 'bfloat16')",
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ModelError(
                "4-bit loading needs the bitsandbytes package, which is not installed",
                "pip install bitsandbytes, or set vlm_load_in_4bit = false",
            )
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)

    @staticmethod
    def _from_pretrained(source: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if Path(source).is_dir():
            return (
                AutoProcessor.from_pretrained(source),
                AutoModelForImageTextToText.from_pretrained(source, **kwargs),
            )
        if _hub_offline():
            # Explicit, because huggingface_hub reads HF_HUB_OFFLINE only once, when it is first imported.
            return (
                AutoProcessor.from_pretrained(source, local_files_only=True),
                AutoModelForImageTextToText.from_pretrained(source, local_files_only=True, **kwargs),
            )
        try:
            # A cached download loads without touching the network (and without the hub's long retry loop).
            return (
                AutoProcessor.from_pretrained(source, local_files_only=True),
                AutoModelForImageTextToText.from_pretrained(source, local_files_only=True, **kwargs),
            )
        except OSError as exc:
            if _memory_error(exc):
                raise
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        if not hub_reachable():
            raise ModelError(
                f"cannot download {source!r}: {endpoint} is unreachable and the model is not cached locally",
                _FETCH_HINT,
            )
        log.info("downloading %s from %s into the Hugging Face cache", source, endpoint)
        return (
            AutoProcessor.from_pretrained(source),
            AutoModelForImageTextToText.from_pretrained(source, **kwargs),
        )

    def unload(self) -> None:
        """Free the model and its device memory; the next `analyse` loads it again."""
        if self._model is None:
            return
        device = self.device or "cpu"
        self._model = None
        self._processor = None
        gc.collect()
        import torch

        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        elif device == "mps":
            torch.mps.empty_cache()

    # -- inference -----------------------------------------------------------------------------------------

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]:
        """One result per input, in order; a photo that cannot be processed gets status 'error'."""
        if not batch:
            return []
        self.load()
        return analyse_in_chunks(
            batch,
            self.batch_size,
            lambda items: self._generate([fit_pixels(item.image, self.max_pixels) for item in items]),
            self._release_cached_memory,
        )

    def generate_raw(self, images: list[Image.Image]) -> list[str]:
        """The model's decoded answers for `images`, in one padded batch; raises on any failure."""
        self.load()
        return self._generate([fit_pixels(img, self.max_pixels) for img in images])

    def model_inputs(self, conversations: list[list[dict[str, Any]]], images: list[Image.Image]) -> Any:
        """Processor inputs for one chat per image (each with one image part), left-padded into one batch,
        on the model's device with pixels in the model's dtype. The model must be loaded."""
        processor, model = self._processor, self._model
        if processor is None or model is None:
            raise ModelError(f"{self.model_id!r} is not loaded", "call load() first")
        texts = [
            processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            for messages in conversations
        ]
        # The processor rounds to multiples of 32 px within these bounds (min/max_pixels kwargs: deprecated).
        size = {"shortest_edge": min(MIN_PIXELS, self.max_pixels), "longest_edge": self.max_pixels}
        inputs = processor(text=texts, images=images, size=size, padding=True, return_tensors="pt")
        inputs = inputs.to(model.device)
        if "pixel_values" in inputs and self.dtype is not None and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def _generate(self, images: list[Image.Image]) -> list[str]:
        import torch

        processor, model = self._processor, self._model
        inputs = self.model_inputs([build_messages(img) for img in images], images)
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=1,
                # Unset the published sampling defaults so greedy decoding does not warn about them.
                temperature=None,
                top_p=None,
                top_k=None,
            )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [
            str(t)
            for t in processor.batch_decode(
                new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
        ]

    def _release_cached_memory(self) -> None:
        gc.collect()
        if self.device and self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _memory_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        text = str(e).lower()
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
            return True
        if "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text:
            return True
    return False


def _load_error(model: str, exc: BaseException) -> ModelError:
    """Turn whatever transformers / huggingface_hub / torch raised while loading into one actionable error."""
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc))
    low = text.lower()
    first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if _memory_error(exc):
        return ModelError(f"not enough memory to load {model!r} ({first})", _MEMORY_HINT)
    if "RepositoryNotFoundError" in names or "is not a valid model identifier" in low:
        return ModelError(f"no model called {model!r} on the hub (or it is private)", _FETCH_HINT)
    if "GatedRepoError" in names:
        return ModelError(
            f"{model!r} is gated on the hub and needs a token", "run `hf auth login`; " + _FETCH_HINT
        )
    if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"} or "couldn't connect" in low:
        if _hub_offline():
            return ModelError(
                f"{model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set",
                "unset HF_HUB_OFFLINE to download it; " + _FETCH_HINT,
            )
        return ModelError(f"cannot fetch {model!r}: the hub is unreachable", _FETCH_HINT)
    if "qwen3_vl" in low and ("does not recognize" in low or "unrecognized" in low or "keyerror" in low):
        return ModelError(
            "the installed transformers does not know Qwen3-VL", "pip install -U 'transformers>=4.57'"
        )
    if "dtype" in low and names & {"TypeError", "ValueError", "RuntimeError"}:
        return ModelError(f"cannot load {model!r} in the requested dtype ({first})", _MEMORY_HINT)
    if "does not appear to have a file named" in low or "no file named" in low:
        return ModelError(f"{model!r} is not a complete model directory ({first})", _FETCH_HINT)
    return ModelError(f"cannot load {model!r}: {type(exc).__name__}: {first}", _FETCH_HINT)

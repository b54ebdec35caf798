"""Qwen3-VL on OpenVINO GenAI: the CPU engine (INT4 weights by default), several photos decoded together.

The model is an OpenVINO export of Qwen3-VL, the folder that
`optimum-cli export openvino --task image-text-to-text` writes (openvino_*_model.xml/.bin, the tokenizer,
detokenizer, chat template and preprocessor config). By default it is the already-exported
INT4 model `vlm_openvino_model`, pulled through models.py like every other model; `vlm_model` may instead name
a local export folder.

Photos of a batch go to OpenVINO GenAI's ContinuousBatchingPipeline as one request each (it schedules their
prefill and decodes them together, paged KV cache, no padding). When this OpenVINO GenAI cannot build that
pipeline for the model, the VLMPipeline (one photo at a time) is used instead.

The prompt is vision/prompt.py's `build_messages` (its image part becomes OpenVINO GenAI's image tag, at the
same place in the chat), and every answer goes through vision/parse.py's `result_from_raw`: the same prompt
and parser as the transformers backend, so the catalog path is the same.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import logging
import math
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
from smartalbum.vision.backends import vlm_batch_size
from smartalbum.vision.base import AnalysisInput, AnalysisResult
from smartalbum.vision.parse import analyse_in_chunks
from smartalbum.vision.prompt import PROMPT_VERSION, build_messages
from smartalbum.vision.qwen_vl import (
    _DTYPE_NAMES,
    MIN_PIXELS,
    PIXELS_PER_TOKEN_SIDE,
    _looks_like_path,
    fit_pixels,
    model_display_name,
)

log = logging.getLogger(__name__)

# What an OpenVINO export of a Qwen-VL model holds (optimum-intel's names); the first is the decisive one.
MODEL_FILES = (
    "openvino_language_model.xml",
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
)
TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_detokenizer.xml")
PIPELINES = ("continuous", "single")

EXPORT_COMMAND = (
    "optimum-cli export openvino --model Qwen/Qwen3-VL-2B-Instruct --task image-text-to-text "
    "--weight-format int4 DIR"
)
_EXPORT_HINT = (
    f"set vlm_model to an OpenVINO export folder (made with `{EXPORT_COMMAND}`, see README 'Models and "
    "mirrors'), or leave vlm_model as a hub id so that vlm_openvino_model is downloaded, or set "
    "vlm_backend = 'transformers'"
)
_FETCH_HINT = (
    "set model_source = 'modelscope' or HF_ENDPOINT to a mirror (e.g. HF_ENDPOINT=https://hf-mirror.com), "
    "fetch it ahead with `smartalbum models pull vision`, or export the model yourself "
    f"(`{EXPORT_COMMAND}`) and set vlm_model to DIR, or set vlm_backend = 'transformers'"
)
_INSTALL_HINT = "pip install 'smartalbum[openvino]' (openvino-genai), or set vlm_backend = 'transformers'"


@functools.cache
def openvino_importable() -> bool:
    """True when openvino-genai is installed and imports (tried once per process: an install whose native
    libraries do not load counts as absent)."""
    try:
        if importlib.util.find_spec("openvino_genai") is None:
            return False
        import openvino_genai  # noqa: F401
    except Exception as exc:  # ImportError, OSError from a native library, a broken install
        log.debug("openvino-genai does not import: %s: %s", type(exc).__name__, exc)
        return False
    return True


def is_openvino_export(path: Path) -> bool:
    """A folder holding an OpenVINO export of a vision-language model (its language model IR)."""
    return path.is_dir() and (path / MODEL_FILES[0]).is_file()


def openvino_model_id(settings: Settings) -> str:
    """The model the OpenVINO engine runs: vlm_model when it is an export folder, else vlm_openvino_model."""
    path = Path(settings.vlm_model).expanduser()
    if is_openvino_export(path):
        return settings.vlm_model
    return settings.vlm_openvino_model


def local_openvino_model(settings: Settings) -> Path | None:
    """The OpenVINO model's folder when it is on this machine (a local export, a pull, the hub cache)."""
    model = openvino_model_id(settings)
    path = Path(model).expanduser()
    if path.exists() or _looks_like_path(model):
        return path if is_openvino_export(path) else None
    for found in (local_copy(model, model_dir(settings)), hf_cache_copy(model)):
        if found is not None and is_openvino_export(found):
            return found
    return None


def check_export(path: Path, model: str) -> None:
    """Raise one ModelError saying what is wrong when `path` is not a usable OpenVINO export."""
    if not path.is_dir():
        raise ModelError(f"{model!r} is a file, not an OpenVINO model folder", _EXPORT_HINT)
    if not (path / MODEL_FILES[0]).is_file():
        if any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin")):
            what = "a transformers checkpoint, not an OpenVINO export"
        else:
            what = "not an OpenVINO export"
        raise ModelError(f"{model!r} is {what} (no {MODEL_FILES[0]})", _EXPORT_HINT)
    missing = [f for f in (*MODEL_FILES, *TOKENIZER_FILES) if not (path / f).is_file()]
    if missing:
        raise ModelError(
            f"the OpenVINO export {model!r} is incomplete: {', '.join(missing)} missing",
            "export it again with optimum-cli (with openvino-tokenizers installed, which writes the "
            f"tokenizer files), e.g. `{EXPORT_COMMAND}`",
        )


def kv_cache_gb(path: Path, requests: int, tokens_per_request: int, value_bytes: float = 2) -> int:
    """KV-cache size (GB, at least 1) for `requests` photos of `tokens_per_request` tokens, each key and value
    element `value_bytes` bytes (1 for OpenVINO's CPU default of u8, 2 for f16/bf16). The continuous-batching
    pipeline grows its cache up to this size and keeps it, so it is the engine's memory, not only a limit."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        text = config.get("text_config") or config
        layers = int(text["num_hidden_layers"])
        kv_heads = int(text.get("num_key_value_heads") or text["num_attention_heads"])
        head_dim = int(text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 2
    per_token = 2 * layers * kv_heads * head_dim * value_bytes  # keys and values
    return max(1, math.ceil(per_token * requests * tokens_per_request * 1.25 / 1e9))


def kv_value_bytes(device: str, properties: dict[str, str], export: Path | None = None) -> float:
    """Bytes a KV-cache element takes on `device`: the precision `properties` set, else the one the export's
    language model asks for (optimum writes f16 into unquantized exports' runtime options, and OpenVINO
    applies it), else the device's default (u8 on CPUs, with a scale and zero point per token and head that
    the 1.25 of kv_cache_gb covers); 2 when OpenVINO does not say."""
    import openvino as ov

    precision = properties.get("KV_CACHE_PRECISION") or (export_kv_precision(export) if export else None)
    try:
        if precision:
            element = getattr(ov.Type, precision.strip().lower())  # "u8", "f16", "bf16"
        else:
            element = ov.Core().get_property(device, "KEY_CACHE_PRECISION")
        return max(1, int(element.bitwidth)) / 8
    except Exception:  # a device without the property, an unknown name
        return 2


def export_kv_precision(export: Path) -> str | None:
    """The KV_CACHE_PRECISION an export's language model sets in its runtime options ("f16"), if any."""
    try:
        text = (export / MODEL_FILES[0]).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _KV_OPTION.search(text, max(0, len(text) - 65536))  # rt_info closes the IR
    return found.group(1) if found else None


_KV_OPTION = re.compile(r'<KV_CACHE_PRECISION\s+value="([A-Za-z0-9]+)"')


def release_weight_pages(folder: Path) -> int:
    """Drop from this process's memory the pages of `folder`'s weight files (.bin) that OpenVINO mapped;
    returns the bytes of the mappings.

    OpenVINO maps an export's weights from disk, and its CPU plugin repacks them into its own memory at the
    first inference; the mapped pages stay resident, counted in RSS (1.5 GB for the 2B INT4 export) though
    nothing reads them again. They are read-only shared file pages: dropping them loses nothing (private
    mappings, whose pages may be copies, are left alone), and a later read (a new shape, another compile)
    only loads them again from disk. Linux only (elsewhere: 0)."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return 0
    import ctypes
    import ctypes.util

    weights = {str(f.resolve()) for f in folder.glob("*.bin")}  # resolved: a hub cache links to its blobs
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lines = maps.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 0
    released = 0
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or parts[1][1] != "-" or parts[1][3] != "s" or parts[5] not in weights:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED) == 0:
            released += end - start
    return released


_MADV_DONTNEED = 4
# the load's warm-up photo: mid-grey, the smallest the model takes
_WARM_UP_IMAGE = Image.new("RGB", (64, 64), (128, 128, 128))


def to_history(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """build_messages' chat as plain-text messages: an image part becomes OpenVINO GenAI's image tag, in its
    place (the first image of a request is image 0)."""
    out: list[dict[str, str]] = []
    images = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": str(message["role"]), "content": content})
            continue
        parts: list[str] = []
        for part in content or []:
            kind = part.get("type")
            if kind == "text":
                parts.append(str(part.get("text", "")))
            elif kind in ("image", "image_url"):
                parts.append(f"<ov_genai_image_{images}>")
                images += 1
            else:
                raise ValueError(f"the prompt has a {kind!r} part, which the openvino engine cannot send")
        out.append({"role": str(message["role"]), "content": "".join(parts)})
    return out


def fit_model_grid(image: Image.Image, max_pixels: int) -> Image.Image:
    """`image` as the transformers engine shows it to the model: fit_pixels, then resized to the grid that
    the Qwen-VL processor rounds it to (`model_grid`, with the bounds QwenVLAnalyser.model_inputs gives the
    processor). Its sides are then multiples of 32 px within vlm_max_pixels, so OpenVINO GenAI's resize
    (bounded by the export's preprocessor_config, not by vlm_max_pixels) keeps it as it is: the same number
    of image tokens as transformers."""
    img = fit_pixels(image, max_pixels)
    w, h = img.size
    height, width = model_grid(h, w, min(MIN_PIXELS, max_pixels), max_pixels)
    if (width, height) != (w, h):
        img = img.resize((width, height), Image.Resampling.BICUBIC)
    return img


def model_grid(height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The Qwen-VL processor's rounding of an image's sides to whole 32-px tiles within the pixel bounds
    (transformers' `smart_resize`, whose module would import torch and transformers into this engine's
    process: ~0.7 GB that the OpenVINO engine has no other use for; a test compares the two)."""
    factor = PIXELS_PER_TOKEN_SIDE
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"absolute aspect ratio must be smaller than 200, got {width}x{height}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _ov_device(requested: str) -> str:
    req = requested.strip().lower()
    if req in ("auto", "cpu", ""):
        return "CPU"
    if req.startswith(("cuda", "mps")):
        raise ModelError(
            f"vlm_device {requested!r} is not an OpenVINO device",
            "use vlm_device = 'auto' (CPU) or 'gpu' (an Intel GPU), or vlm_backend = 'transformers' for CUDA",
        )
    return requested.strip().upper()


def _ov_precision(requested: str) -> dict[str, str]:
    """vlm_dtype as OpenVINO's inference precision for the language model and the vision encoder: "auto"
    leaves OpenVINO's choice (bf16 on CPUs with native bf16, such as AMX; f32 elsewhere)."""
    req = requested.strip().lower()
    if req == "auto":
        return {}
    name = _DTYPE_NAMES.get(req)
    if name is None:
        raise ModelError(
            f"unsupported vlm_dtype {requested!r}",
            "use one of auto, bfloat16 (bf16), float16 (fp16), float32 (fp32)",
        )
    return {"INFERENCE_PRECISION_HINT": {"bfloat16": "bf16", "float16": "f16", "float32": "f32"}[name]}


class OpenVINOAnalyser:
    """Describes photos with an OpenVINO export of Qwen3-VL through OpenVINO GenAI (see the module doc)."""

    name = "openvino"

    def __init__(self, settings: Settings, *, pipeline: str = "continuous") -> None:
        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}")
        self.model_id = openvino_model_id(settings)
        self.version = f"{model_display_name(self.model_id)}|{PROMPT_VERSION}"
        self.requested_device = settings.vlm_device
        self.properties = _ov_precision(settings.vlm_dtype)
        self.batch_size = vlm_batch_size(settings, self.name)
        self.max_pixels = settings.vlm_max_pixels
        self.max_new_tokens = settings.vlm_max_new_tokens
        self.model_source = settings.model_source
        self.model_root = model_dir(settings)
        self.pipeline_kind = pipeline  # what was asked; `engine` says what runs
        self.engine: str | None = None
        self.path: Path | None = None
        self._pipe: Any = None
        self._config: Any = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    def load(self) -> None:
        """Build the pipeline now; raises one ModelError that says what went wrong and what to do.
        Thread-safe: concurrent callers build one pipeline."""
        if self._pipe is not None:
            return
        with self._lock:
            if self._pipe is None:
                self._load_locked()

    def _load_locked(self) -> None:
        if not openvino_importable():
            raise ModelError(
                "the openvino engine needs openvino-genai, which is not installed", _INSTALL_HINT
            )
        device = _ov_device(self.requested_device)
        path = self._resolve()
        check_export(path, self.model_id)
        started = time.monotonic()
        try:
            pipe, engine = self._build(path, device)
        except ModelError:
            raise
        except Exception as exc:
            raise _load_error(self.model_id, exc) from exc
        try:
            released = release_weight_pages(path)
        except Exception as exc:  # only memory is at stake
            log.warning("could not release the mapped weights of %s: %s", path, exc)
            released = 0
        self._pipe, self.engine, self.path = pipe, engine, path
        self._config = self._config_of(pipe, engine, max_new_tokens=self.max_new_tokens)
        log.info("loaded %s with OpenVINO GenAI (%s, %s) in %.1f s; %.0f MB of mapped weights released",
                 path, engine, device, time.monotonic() - started, released / 1e6)  # fmt: skip

    @staticmethod
    def _config_of(pipe: Any, engine: str, *, max_new_tokens: int) -> Any:
        config = pipe.get_config() if engine == "continuous" else pipe.get_generation_config()
        config.max_new_tokens = max_new_tokens
        config.do_sample = False  # greedy, as the transformers backend: reproducible descriptions
        config.num_beams = 1
        return config

    def _resolve(self) -> Path:
        model = self.model_id
        path = Path(model).expanduser()
        if path.exists():
            return path
        if _looks_like_path(model):
            raise ModelError(f"model directory {model!r} does not exist", _EXPORT_HINT)
        for found in (local_copy(model, self.model_root), hf_cache_copy(model)):
            if found is not None:
                return found
        source = source_for(self.model_source)
        if source.name == "huggingface" and not hub_reachable():
            raise ModelError(
                f"cannot download {model!r}: {source.endpoint} is unreachable and the model is not on "
                "this machine",
                _FETCH_HINT,
            )
        return ensure_local(model, source, self.model_root)

    def _build(self, path: Path, device: str) -> tuple[Any, str]:
        """The pipeline, warmed up (`_warm_up`): continuous batching, or where it cannot be built or cannot
        answer, one photo at a time."""
        import openvino_genai as ov_genai

        if self.pipeline_kind == "continuous":
            scheduler = ov_genai.SchedulerConfig()
            # the prompt (~600 tokens), the image (<= max_pixels / 32^2 tokens) and the answer, per photo
            tokens = 1024 + self.max_pixels // (32 * 32) + self.max_new_tokens
            value_bytes = kv_value_bytes(device, self.properties, path)
            scheduler.cache_size = kv_cache_gb(path, self.batch_size, tokens, value_bytes)
            scheduler.max_num_seqs = max(self.batch_size, 1)
            # identical prompts share their prefix in the cache; the image differs, so little is shared,
            # and the cache would keep old photos' blocks: off
            scheduler.enable_prefix_caching = False
            try:
                pipe = ov_genai.ContinuousBatchingPipeline(
                    str(path), scheduler, device, self.properties, {}, self.properties
                )
                self._warm_up(pipe, "continuous")
                return pipe, "continuous"
            except Exception as exc:  # e.g. an OpenVINO GenAI without images in continuous batching
                pipe = None  # its cache and weights go now, not when the exception does
                log.warning(
                    "continuous batching is not available for %s (%s); one photo at a time", path, exc
                )
        pipe = ov_genai.VLMPipeline(str(path), device, **self.properties)
        try:
            self._warm_up(pipe, "single")
        except Exception:
            pipe = None  # not kept alive by the traceback
            raise
        return pipe, "single"

    def _warm_up(self, pipe: Any, engine: str) -> None:
        """One photo, two tokens: the first inference compiles the kernels and repacks the weights, after
        which the weight files' mapped pages are dead (release_weight_pages)."""
        config = self._config_of(pipe, engine, max_new_tokens=2)
        _answers(pipe, engine, config, _tensors([fit_model_grid(_WARM_UP_IMAGE, self.max_pixels)]))

    def unload(self) -> None:
        """Free the pipeline; the next `analyse` builds it again (waits for a running generate)."""
        with self._lock:
            self._pipe = None
            self._config = None
        gc.collect()

    # -- inference -----------------------------------------------------------------------------------------

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]:
        """One result per input, in order; a photo that cannot be processed gets status 'error'."""
        if not batch:
            return []
        self.load()
        return analyse_in_chunks(
            batch,
            self.batch_size,
            lambda items: self._generate([fit_model_grid(item.image, self.max_pixels) for item in items]),
        )

    def generate_raw(self, images: list[Image.Image]) -> list[str]:
        """The model's answers for `images` (decoded together), before parsing; raises on any failure."""
        self.load()
        return self._generate([fit_model_grid(img, self.max_pixels) for img in images])

    def _generate(self, images: list[Image.Image]) -> list[str]:
        tensors = _tensors(images)
        with self._lock:  # one generate at a time on one pipeline, and not while it is (un)loaded
            pipe, config = self._pipe, self._config
            if pipe is None:
                raise ModelError(f"{self.model_id!r} is not loaded", "call load() first")
            return _answers(pipe, self.engine, config, tensors)


def _tensors(images: list[Image.Image]) -> list[Any]:
    import numpy as np
    import openvino as ov

    return [ov.Tensor(np.ascontiguousarray(np.asarray(img, dtype=np.uint8))[None]) for img in images]


def _answers(pipe: Any, engine: str | None, config: Any, tensors: list[Any]) -> list[str]:
    """The pipeline's answers to the app's prompt, one photo (an image tensor) each."""
    import openvino_genai as ov_genai

    histories = [ov_genai.ChatHistory(to_history(build_messages(None))) for _ in tensors]
    if engine == "continuous":
        out = pipe.generate(
            histories, images=[[t] for t in tensors], generation_config=[config] * len(tensors)
        )
        return [str(r.texts[0]) if r.texts else "" for r in out]
    answers = []
    for history, tensor in zip(histories, tensors, strict=True):
        res = pipe.generate(history, images=[tensor], generation_config=config)
        answers.append(str(res.texts[0]) if res.texts else "")
    return answers


def _load_error(model: str, exc: BaseException) -> ModelError:
    text = str(exc)
    first = text.splitlines()[0][:300] if text else type(exc).__name__
    low = text.lower()
    if isinstance(exc, MemoryError) or ("memory" in low and ("allocate" in low or "out of" in low)):
        return ModelError(
            f"not enough memory to load {model!r} ({first})",
            "use the INT4 export (vlm_openvino_model), a smaller vlm_batch_size or vlm_max_pixels",
        )
    if ("unsupported" in low and "model" in low) or "model_type" in low:
        return ModelError(
            f"this OpenVINO GenAI cannot run {model!r} ({first})",
            "pip install -U openvino-genai, or set vlm_backend = 'transformers'",
        )
    return ModelError(
        f"cannot load {model!r} with OpenVINO GenAI: {type(exc).__name__}: {first}", _EXPORT_HINT
    )

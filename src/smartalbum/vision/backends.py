"""Analysers by name: the configured VLM backend and OCR. A new backend is one file and one line here."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

from smartalbum.config import Settings
from smartalbum.errors import ConfigError
from smartalbum.vision.base import Analyser

log = logging.getLogger(__name__)


def _transformers(settings: Settings) -> Analyser:
    from smartalbum.vision.qwen_vl import QwenVLAnalyser

    return QwenVLAnalyser(settings)


def _openvino(settings: Settings) -> Analyser:
    from smartalbum.vision.openvino_backend import OpenVINOAnalyser

    return OpenVINOAnalyser(settings)


def _openai(settings: Settings) -> Analyser:
    from smartalbum.vision.openai_compat import OpenAICompatAnalyser

    return OpenAICompatAnalyser(settings)


REGISTRY: dict[str, Callable[[Settings], Analyser]] = {
    "transformers": _transformers,
    "openvino": _openvino,
    "openai": _openai,
}
VLM_BACKENDS = ("auto", *REGISTRY)


# vlm_batch_size when it is not set, by engine: OpenVINO's continuous batching decodes 8 photos at 685 an hour
# on a 2-core CPU against 524 at 4 (bench/vlm.py), and its whole `index` process peaks at 3.6 GB
VLM_BATCH_SIZES = {"openvino": 8}


def vlm_batch_size(settings: Settings, engine: str) -> int:
    """Photos `engine` describes together: vlm_batch_size when it is set, else the engine's own default."""
    if "vlm_batch_size" in settings.model_fields_set:
        return settings.vlm_batch_size
    return VLM_BATCH_SIZES.get(engine, settings.vlm_batch_size)


def cuda_available() -> bool:
    """A usable CUDA (or ROCm) GPU. On Linux without a GPU driver this answers without importing torch,
    which would cost a CPU-only process ~0.6 GB for the question."""
    if sys.platform == "linux" and not any(Path(p).exists() for p in _GPU_DRIVER_FILES):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # no torch, or a broken CUDA install: not a usable GPU
        return False


# what a Linux machine with an NVIDIA (CUDA) or AMD (ROCm) GPU driver has (/dev/dxg: WSL 2's GPU;
# /etc/nv_tegra_release: a Jetson)
_GPU_DRIVER_FILES = (
    "/proc/driver/nvidia/version",
    "/dev/nvidiactl",
    "/dev/kfd",
    "/dev/dxg",
    "/etc/nv_tegra_release",
)
# An OpenVINO export -> the transformers model it was exported from: "auto" runs the export only in place of
# that model (a vlm_model of another size or family keeps its own engine).
OPENVINO_EXPORT_OF = {"OpenVINO/Qwen3-VL-2B-Instruct-int4-ov": "Qwen/Qwen3-VL-2B-Instruct"}
# vlm_device values that name an OpenVINO device (besides "auto" and "cpu"): an Intel GPU or NPU, or a
# device list for OpenVINO's AUTO/HETERO/MULTI plugins
_OV_DEVICE = re.compile(r"^(gpu(\.\d+)?|npu|(auto|hetero|multi):.+)$")
_LOGGED: set[str] = set()
# the reason "auto" gives when it picks transformers only because the OpenVINO model is not downloaded yet
NOT_DOWNLOADED = "the OpenVINO model is not downloaded"


def resolve_vlm_backend(settings: Settings) -> str:
    """The engine `vlm_backend` names; "auto" picks one for this machine (see `auto_choice`) and says why at
    debug level, once per process (this runs on every filtered search)."""
    name = settings.vlm_backend.strip().lower()
    if name != "auto":
        return name
    engine, reason = auto_choice(settings)
    if reason not in _LOGGED:
        _LOGGED.add(reason)
        level = logging.INFO if reason.startswith(NOT_DOWNLOADED) else logging.DEBUG
        log.log(level, "vlm_backend auto: %s, so %s", reason, engine)
    return engine


def auto_choice(settings: Settings) -> tuple[str, str]:
    """The engine vlm_backend "auto" runs here, and why:

    - with a queue (queue_url): transformers, on the coordinator and on every worker alike, so that both
      sides name the same queue whatever machine each runs on (set vlm_backend to use another engine);
    - vlm_device naming a CUDA or Apple device (or anything that is not an OpenVINO device), or "auto" on a
      machine with a CUDA GPU: transformers (batched bf16, optional 4-bit);
    - otherwise (vlm_device "auto"/"cpu" or an OpenVINO device name) openvino (INT4, continuous batching:
      2-3x the photos an hour on a CPU) when the OpenVINO model stands for vlm_model (vlm_model is itself an
      export folder, or vlm_openvino_model is a local export folder or set explicitly, or it is the export of
      vlm_model: OPENVINO_EXPORT_OF, the defaults) and openvino-genai imports; but not when only the
      transformers model is on this machine (that would start a second multi-GB download;
      `smartalbum models pull vision-openvino` fetches the OpenVINO model and "auto" switches);
    - otherwise transformers.
    """
    if settings.queue_url:
        return "transformers", "a queue run (queue_url) resolves the same on every machine"
    device = settings.vlm_device.strip().lower()
    if device not in ("auto", "cpu", "") and not _OV_DEVICE.match(device):
        return "transformers", f"vlm_device {settings.vlm_device!r} is not an OpenVINO device"
    if device in ("auto", "") and cuda_available():
        return "transformers", "a CUDA GPU is available"
    from smartalbum.vision.openvino_backend import (
        is_openvino_export,
        local_openvino_model,
        openvino_importable,
        openvino_model_id,
    )

    if not _openvino_model_stands_for_vlm_model(settings, is_openvino_export, openvino_model_id):
        return "transformers", (
            f"vlm_model {settings.vlm_model!r} is not the model that vlm_openvino_model "
            f"{settings.vlm_openvino_model!r} is an export of"
        )
    if not openvino_importable():
        return "transformers", "openvino-genai does not import here"
    if local_openvino_model(settings) is not None or not transformers_model_local(settings):
        return "openvino", f"a CPU with openvino-genai, model {openvino_model_id(settings)!r}"
    return "transformers", (
        f"{NOT_DOWNLOADED} but {settings.vlm_model} is; `smartalbum models pull vision-openvino` fetches it"
    )


def _openvino_model_stands_for_vlm_model(
    settings: Settings, is_export: Callable[[Path], bool], model_id: Callable[[Settings], str]
) -> bool:
    """True when the OpenVINO engine would run vlm_model (or a model the user chose for it), not another."""
    if model_id(settings) == settings.vlm_model:  # vlm_model is itself an export folder
        return True
    ov_model = settings.vlm_openvino_model
    if is_export(Path(ov_model).expanduser()):
        return True
    default = Settings.model_fields["vlm_openvino_model"].default
    if "vlm_openvino_model" in settings.model_fields_set and ov_model != default:
        return True  # the user named the OpenVINO model: their pairing
    return OPENVINO_EXPORT_OF.get(ov_model) == settings.vlm_model


def transformers_model_local(settings: Settings) -> bool:
    """True when vlm_model (for transformers) is on this machine: a folder, a pull or the hub cache."""
    from smartalbum.models import hf_cache_copy, local_copy, model_dir

    path = Path(settings.vlm_model).expanduser()
    if path.exists():
        return True
    return (
        local_copy(settings.vlm_model, model_dir(settings)) is not None
        or hf_cache_copy(settings.vlm_model) is not None
    )


def vlm_analyser(settings: Settings) -> Analyser:
    """The vision-language model backend chosen in settings; the model itself loads lazily on first use."""
    name = resolve_vlm_backend(settings)
    make = REGISTRY.get(name)
    if make is None:
        raise ConfigError(
            f"unknown vlm_backend {settings.vlm_backend!r}", f"choose one of: {', '.join(VLM_BACKENDS)}"
        )
    return make(settings)


def ocr_analyser(settings: Settings) -> Analyser:
    from smartalbum.vision.ocr import OcrAnalyser

    return OcrAnalyser(settings)

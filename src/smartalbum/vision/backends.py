"""Analysers by name: the configured VLM backend and OCR. A new backend is one file and one line here."""

from __future__ import annotations

import logging
from collections.abc import Callable

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


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # no torch, or a broken CUDA install: not a usable GPU
        return False


def resolve_vlm_backend(settings: Settings) -> str:
    """The engine `vlm_backend` names; "auto" picks one for this machine:

    - a CUDA GPU: transformers (batched bf16, optional 4-bit);
    - a CPU with openvino-genai installed: openvino (INT4, continuous batching: 2-3x the photos an hour),
      unless its model is not on this machine while the transformers model is (then transformers, so
      that choosing "auto" never starts a second multi-GB download; `smartalbum models pull vision`
      fetches the OpenVINO model and "auto" switches);
    - otherwise transformers.
    """
    name = settings.vlm_backend.strip().lower()
    if name != "auto":
        return name
    if cuda_available():
        return "transformers"
    from smartalbum.vision.openvino_backend import local_openvino_model, openvino_importable

    if not openvino_importable():
        return "transformers"
    if local_openvino_model(settings) is not None or not transformers_model_local(settings):
        return "openvino"
    log.info(
        "vlm_backend auto: the OpenVINO model is not downloaded but %s is, so transformers; "
        "`smartalbum models pull vision-openvino` fetches it",
        settings.vlm_model,
    )
    return "transformers"


def transformers_model_local(settings: Settings) -> bool:
    """True when vlm_model (for transformers) is on this machine: a folder, a pull or the hub cache."""
    from pathlib import Path

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

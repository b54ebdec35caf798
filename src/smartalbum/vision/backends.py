"""Analysers by name: the configured VLM backend and OCR. A new backend is one file and one line here."""

from __future__ import annotations

from smartalbum.config import Settings
from smartalbum.errors import ConfigError
from smartalbum.vision.base import Analyser

VLM_BACKENDS = ("transformers", "openai")


def vlm_analyser(settings: Settings) -> Analyser:
    """The vision-language model backend chosen in settings; the model itself loads lazily on first use."""
    if settings.vlm_backend == "transformers":
        from smartalbum.vision.qwen_vl import QwenVLAnalyser

        return QwenVLAnalyser(settings)
    if settings.vlm_backend == "openai":
        from smartalbum.vision.openai_compat import OpenAICompatAnalyser

        return OpenAICompatAnalyser(settings)
    raise ConfigError(
        f"unknown vlm_backend {settings.vlm_backend!r}", f"choose one of: {', '.join(VLM_BACKENDS)}"
    )


def ocr_analyser(settings: Settings) -> Analyser:
    from smartalbum.vision.ocr import OcrAnalyser

    return OcrAnalyser(settings)

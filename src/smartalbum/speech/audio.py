"""Decoding audio with PyAV (FFmpeg) into what every transcriber takes: 16 kHz mono float32 samples.

Recordings from browsers (WebM/Ogg Opus, MP4 AAC), WAV and MP3 files, and a video's soundtrack all come out
the same way. A length cap is checked while decoding, so an hour of audio is never decoded to be refused.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from smartalbum.errors import InputError, TooLargeError, UnsupportedMediaError
from smartalbum.speech.base import SAMPLE_RATE

# What voice questions may be sent as (the media type without parameters such as ";codecs=opus").
AUDIO_TYPES = (
    "audio/webm",  # Chromium's and Firefox's MediaRecorder
    "audio/ogg",  # Firefox
    "audio/mp4",  # Safari
    "audio/mpeg",
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
)
# decoding stops this far past the cap: a header's rounding must not refuse a recording of exactly the cap
_SLACK_S = 0.5


def media_type(content_type: str | None) -> str:
    """'audio/webm;codecs=opus' -> 'audio/webm'; UnsupportedMediaError unless it is one of AUDIO_TYPES."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in AUDIO_TYPES:
        raise UnsupportedMediaError(
            f"{kind or 'a body without a content type'} is not a recording this server takes",
            f"send the audio itself with Content-Type one of: {', '.join(AUDIO_TYPES)}",
        )
    return kind


def _too_long(max_seconds: float) -> TooLargeError:
    return TooLargeError(
        f"the recording is longer than {max_seconds:g} s", "ask a shorter question, or split the recording"
    )


def decode_audio(source: bytes | str | Path, *, max_seconds: float | None = None) -> np.ndarray:
    """Samples of the first audio stream of a file or of bytes, resampled to 16 kHz mono float32.

    Raises InputError when it is not audio FFmpeg can read, TooLargeError when it is longer than
    `max_seconds` (checked from the header first, then while decoding)."""
    what = str(source) if isinstance(source, str | Path) else "the recording"
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise InputError(f"{source} is not a file", "give the path of a recording (WAV, MP3, Ogg, WebM, M4A)")
    limit = None if max_seconds is None else int((max_seconds + _SLACK_S) * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(
            io.BytesIO(source) if isinstance(source, bytes) else str(source), "r", metadata_errors="ignore"
        ) as container:
            if not container.streams.audio:
                raise InputError(f"{what} is not audio: it has no sound track", "send a recording with sound")
            stream = container.streams.audio[0]
            header_s = (
                float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0
            )
            if max_seconds is not None and header_s > max_seconds + _SLACK_S:
                raise _too_long(max_seconds)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if limit is not None and total > limit:
                    raise _too_long(max_seconds or 0.0)
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise InputError(
            f"{what} is not audio that can be read ({type(exc).__name__})",
            "send WAV, MP3, Ogg/Opus, WebM/Opus or MP4/AAC audio",
        ) from None
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if limit is not None and samples.size > limit:
        raise _too_long(max_seconds or 0.0)
    return samples


def as_samples(audio: str | Path | np.ndarray) -> np.ndarray:
    """A file decoded, or samples checked: 1-D floats (16 kHz mono) as a contiguous float32 array."""
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
            raise InputError(
                "audio samples must be a 1-D float array (16 kHz mono), "
                f"not {audio.dtype} of shape {audio.shape}"
            )
        return np.ascontiguousarray(audio, dtype=np.float32)
    return decode_audio(audio)

"""Reading a video: its metadata (time, place, length, size, rotation, codecs) and the frames worth a look.

Everything here is PyAV (FFmpeg): the container, not the file name, decides how a file is read. Keyframes are
chosen where the picture changes (a scene cut) with a floor and a ceiling on how many per minute, so a
3-second clip gets one look and a 2-hour recording gets a look at least every so often, within a total cap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from smartalbum.ingest.phototime import format_offset

# The scene-cut measure: the mean absolute change of hue, saturation and value between two samples, on a
# 0-255 scale (PySceneDetect's ContentDetector measures the same on every frame). Measured by
# bench/video.py on generated clips: a hard cut between scenes scores 40-120, camera motion and noise
# inside a scene 2-12.
CUT_THRESHOLD = 20.0
SAMPLE_EVERY_S = 0.5  # the picture is compared twice a second: a cut is found within half a second
_SMALL = (64, 36)  # samples are compared at this size


@dataclass(frozen=True, slots=True)
class KeyframePolicy:
    """How many frames of a video are analysed: at least one every `max_gap_s`, at most one every
    `min_gap_s`, never more than `max_frames` (then both gaps widen with the video's length)."""

    min_gap_s: float = 2.0
    max_gap_s: float = 30.0
    max_frames: int = 120
    threshold: float = CUT_THRESHOLD

    def gaps(self, duration_s: float) -> tuple[float, float]:
        spread = duration_s / max(self.max_frames, 1)
        return max(self.min_gap_s, spread), max(self.max_gap_s, spread)


@dataclass
class VideoInfo:
    duration_s: float
    width: int  # as shown (after rotation)
    height: int
    rotation: int  # degrees counter-clockwise the player turns the picture
    codec: str
    container: str
    fps: float | None = None
    audio_codec: str | None = None
    taken_at: str | None = None  # local wall-clock time, ISO 8601
    tz_offset: str | None = None
    lat: float | None = None
    lon: float | None = None
    make: str | None = None
    model: str | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


@dataclass
class Keyframe:
    t: float  # seconds from the start
    image: Image.Image  # upright RGB, at most the requested size
    cut: float  # the scene-change score that chose it (0 for a periodic look)


@dataclass
class VideoRead:
    info: VideoInfo
    keyframes: list[Keyframe] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class VideoError(Exception):
    """A file that is not a video we can read, with a short kind ('not_video', 'corrupt', 'no_frames')."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- metadata ---------------------------------------------------------------------------------------

_ISO6709 = re.compile(r"^\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?\s*(?:CRS[^/]*)?/?\s*$")
# Apple writes the local time with its offset; Android and most encoders write UTC ('Z')
_CREATION_KEYS = (
    "com.apple.quicktime.creationdate",
    "creation_time",
    "date",
    "com.android.capture.time",
)
_LOCATION_KEYS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng", "com.android.location")


def parse_iso6709(value: str) -> tuple[float, float] | None:
    """'+36.0671+120.3826+010.000/' -> (36.0671, 120.3826); None when it is not a valid point."""
    m = _ISO6709.match(value or "")
    if not m:
        return None
    lat, lon = float(m.group(1)), float(m.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


def parse_creation(value: str, *, own_clock: bool = False) -> tuple[str, str] | None:
    """A container's creation time as (local ISO time, offset). A UTC time ('Z', as most encoders write
    it) is shown in this machine's time zone, as a phone's gallery would; with `own_clock` (Apple's tag,
    written with the camera's own offset) +00:00 is a real offset, kept."""
    text = (value or "").strip().replace("Z", "+00:00")
    if not text:
        return None
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # '+0800' -> '+08:00'
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.year < 1990 or dt.year > datetime.now().year + 1:  # 1904/1970: an unset clock, not a date
        return None
    if dt.tzinfo is None:
        return dt.replace(microsecond=0).isoformat(), ""
    if dt.utcoffset() == UTC.utcoffset(None) and not own_clock:
        dt = dt.astimezone()  # UTC: this machine's time zone
    return dt.replace(tzinfo=None, microsecond=0).isoformat(), format_offset(dt.utcoffset())


def _tags(container: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for stream in container.streams:
        tags.update({k: str(v) for k, v in (stream.metadata or {}).items()})
    tags.update({k: str(v) for k, v in (container.metadata or {}).items()})  # the container's win
    return tags


def probe(container: Any) -> VideoInfo:
    """Metadata of an open container (raises VideoError when it holds no video stream)."""
    if not container.streams.video:
        raise VideoError("not_video", "no video stream in this file")
    vs = container.streams.video[0]
    if container.duration:
        duration = container.duration / 1_000_000
    elif vs.duration and vs.time_base:
        duration = float(vs.duration * vs.time_base)
    else:
        duration = 0.0
    tags = _tags(container)
    info = VideoInfo(
        duration_s=round(max(duration, 0.0), 3),
        width=vs.codec_context.width or vs.width or 0,
        height=vs.codec_context.height or vs.height or 0,
        rotation=0,
        codec=vs.codec_context.name,
        container=container.format.name.split(",")[0],
        fps=round(float(vs.average_rate), 3) if vs.average_rate else None,
        audio_codec=container.streams.audio[0].codec_context.name if container.streams.audio else None,
        make=tags.get("com.apple.quicktime.make") or tags.get("make"),
        model=tags.get("com.apple.quicktime.model") or tags.get("model"),
    )
    for key in _CREATION_KEYS:
        found = parse_creation(tags.get(key, ""), own_clock=key.startswith("com.apple"))
        if found:
            info.taken_at, info.tz_offset = found[0], found[1] or None
            break
    for key in _LOCATION_KEYS:
        point = parse_iso6709(tags.get(key, ""))
        if point:
            info.lat, info.lon = point
            break
    return info


LIVE_MAX_S = 6.0  # a live photo's video lasts about 3 s; a longer one of the same name is a video of its own


def short_clip(path: str, max_s: float = LIVE_MAX_S) -> bool:
    """True for a readable video of at most `max_s` seconds (read from the header only)."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            info = probe(container)
    except (av.FFmpegError, VideoError, OSError, ValueError):
        return False
    return 0 < info.duration_s <= max_s


# -- keyframes --------------------------------------------------------------------------------------


def _change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _upright(img: Image.Image, rotation: int) -> Image.Image:
    turn = rotation % 360
    return img.rotate(turn, expand=True) if turn else img  # PIL turns counter-clockwise, like the matrix


def _frames(container: Any) -> Iterator[Any]:
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    # frames nothing else refers to (most B-frames) are not needed at two samples a second
    vs.codec_context.skip_frame = "NONREF"
    yield from container.decode(vs)


def read_video(
    path: str, *, size: int = 1024, policy: KeyframePolicy | None = None, keyframes: bool = True
) -> VideoRead:
    """Open `path`, read its metadata and (unless keyframes=False) choose and decode its keyframes.

    A damaged stream ends the frame walk early; what was read before it stands, with a warning. A file with
    no decodable frame at all is an error."""
    policy = policy or KeyframePolicy()
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        if _looks_like_mp4(path):  # an MP4/MOV whose index (moov) never got written: cut short
            raise VideoError(
                "truncated", "the video's index is missing: the file was cut short or is still being written"
            ) from exc
        raise VideoError("not_video", f"not a video container we can read ({exc.strerror or exc})") from exc
    except av.FFmpegError as exc:
        raise VideoError("corrupt", f"cannot open video: {exc.strerror or exc}") from exc
    with container:
        info = probe(container)
        names = container.format.name.split(",")
        suffix = Path(path).suffix.lower().lstrip(".")
        info.container = suffix if suffix in names else names[0]
        out = VideoRead(info)
        if not keyframes:
            return out
        min_gap, max_gap = policy.gaps(info.duration_s)
        prev_small: np.ndarray | None = None
        next_sample = 0.0
        last_kf = -1e9
        rotation: int | None = None
        last_t = 0.0
        try:
            for frame in _frames(container):
                t = float(frame.time) if frame.time is not None else last_t
                last_t = t
                if t + 1e-6 < next_sample:
                    continue
                next_sample = t + SAMPLE_EVERY_S
                if rotation is None:
                    rotation = round(getattr(frame, "rotation", 0) or 0)
                small = np.asarray(
                    frame.to_image(width=_SMALL[0], height=_SMALL[1]).convert("HSV"), dtype=np.uint8
                )
                cut = _change(small, prev_small) if prev_small is not None else 0.0
                prev_small = small
                first = not out.keyframes
                is_cut = cut >= policy.threshold and t - last_kf >= min_gap
                if len(out.keyframes) >= policy.max_frames:  # a header without a duration: no gaps to widen
                    continue  # read on for the length, take no more
                if first or is_cut or t - last_kf >= max_gap:
                    out.keyframes.append(Keyframe(round(t, 3), _frame_image(frame, size, rotation), cut))
                    last_kf = t
        except (av.FFmpegError, ValueError, OSError) as exc:
            if not out.keyframes:
                raise VideoError("corrupt", f"no frame could be decoded ({exc})") from exc
            out.warnings.append(f"the video is damaged after {last_t:.1f} s; read up to there")
        if not out.keyframes:
            raise VideoError("no_frames", "the video has no frame that could be decoded")
        info.rotation = rotation or 0
        if info.rotation % 180 == 90:
            info.width, info.height = info.height, info.width
        if not info.duration_s:
            info.duration_s = round(last_t, 3)
        elif last_t + 1.5 < info.duration_s:
            out.warnings.append(f"frames end at {last_t:.1f} s of {info.duration_s:.1f} s (truncated?)")
    return out


def _looks_like_mp4(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(12)[4:8] == b"ftyp"
    except OSError:
        return False


def _frame_image(frame: Any, size: int, rotation: int) -> Image.Image:
    w, h = frame.width, frame.height
    scale = min(1.0, size / max(w, h))
    img = frame.to_image(width=max(2, round(w * scale)), height=max(2, round(h * scale)))
    return _upright(img.convert("RGB"), rotation)

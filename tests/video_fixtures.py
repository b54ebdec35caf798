"""Real video files for tests, encoded with PyAV (H.264/AAC in MP4 or MOV): scenes of known colours and text
at known times, a sound track (speech from espeak-ng, a tone, or none), container tags (creation time,
ISO 6709 place), a display rotation; and broken files (garbage, cut short)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tests.helpers import cjk_font_file

RATE = 16_000


@dataclass
class Scene:
    seconds: float
    color: tuple[int, int, int]
    text: str = ""  # drawn large in the middle (read by OCR)
    picture: Image.Image | None = None  # shown instead of the plain colour (e.g. a photo with a face)


def _frame(scene: Scene, size: tuple[int, int], i: int) -> np.ndarray:
    img = scene.picture.convert("RGB").resize(size) if scene.picture else Image.new("RGB", size, scene.color)
    draw = ImageDraw.Draw(img)
    # a little movement inside a scene, as a hand-held camera has: not a cut
    x = 10 + (i * 3) % 40
    draw.rectangle((x, size[1] - 40, x + 30, size[1] - 10), fill=tuple(255 - c for c in scene.color))
    if scene.text:
        font_file = cjk_font_file()
        font = ImageFont.truetype(str(font_file), 44) if font_file else ImageFont.load_default(44)
        draw.text((size[0] // 2, size[1] // 2), scene.text, fill=(255, 255, 255), font=font, anchor="mm")
    return np.asarray(img)


def speech_wav(text: str, path: Path, *, voice: str = "en") -> Path:
    """Speech by espeak-ng (Debian package; `make system-deps` installs it)."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is missing: run `make system-deps`"
    subprocess.run([espeak, "-v", voice, "-s", "140", "-w", str(path), text], check=True)
    return path


def wav_samples(path: Path) -> np.ndarray:
    """A WAV file as 16 kHz mono float32."""
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in resampler.resample(f)]
        chunks += [o.to_ndarray().reshape(-1) for o in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def make_video(
    path: Path,
    scenes: list[Scene],
    *,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    sound: list[tuple[float, np.ndarray]] | None = None,  # (start second, 16 kHz mono samples)
    tone: bool = False,  # a quiet hum under everything (a sound track with no speech)
    tags: dict[str, str] | None = None,
    rotation: int = 0,  # counter-clockwise degrees a player turns the picture
    faststart: bool = True,
) -> Path:
    """Encode `scenes` one after the other; `path`'s suffix picks MP4 or MOV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "use_metadata_tags" + ("+faststart" if faststart else "")}
    with av.open(str(path), "w", options=options) as out:
        for k, v in (tags or {}).items():
            out.metadata[k] = v
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps)})
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        if rotation:
            vs.set_display_rotation(rotation)
        total = sum(s.seconds for s in scenes)
        audio = None
        if sound or tone:
            audio = out.add_stream("aac", rate=RATE)
            audio.layout = "mono"
        i = 0
        for scene in scenes:
            for _ in range(round(scene.seconds * fps)):
                frame = av.VideoFrame.from_ndarray(_frame(scene, size, i), format="rgb24")
                frame.pts = i
                out.mux(vs.encode(frame))
                i += 1
        out.mux(vs.encode(None))
        if audio is not None:
            track = np.zeros(int(total * RATE), np.float32)
            if tone:
                track += 0.02 * np.sin(2 * np.pi * 120 * np.arange(track.size) / RATE).astype(np.float32)
            for start, samples in sound or []:
                a = int(start * RATE)
                piece = samples[: max(track.size - a, 0)]
                track[a : a + piece.size] += piece
            for start in range(0, track.size, 1024):
                chunk = track[None, start : start + 1024]
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = RATE
                af.pts = start
                out.mux(audio.encode(af))
            out.mux(audio.encode(None))
    return path


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst

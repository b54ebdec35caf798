"""Videos: ingestion speed (hash, metadata, keyframe choice, poster and keyframe thumbnails) against real
time, keyframes per minute, scene cuts found against the cuts made, and the transcript's real-time factor.

A clip is encoded here with PyAV (H.264, --fps, --height lines) from scenes of --scene-seconds each: a
textured picture that pans (camera motion, no cut) and changes colour and texture at each scene (a cut), with
a spoken sentence (espeak-ng) every 20 seconds. Ingestion runs `ingest_file` as the `index` workers do, in one
process (the decoder threads use every core), --runs times (thumbnails deleted between runs); the median
is printed with its multiple of real time.
Transcription runs the configured speech model (--speech-model, default the bundled Whisper base) over the
whole sound track; its real-time factor is seconds of work per second of audio.

Synthetic pictures decode faster than a phone's (less detail, lower bit rate): the table says what was
measured, not what a phone video costs.

Usage: python bench/video.py [--minutes 1] [--height 1080] [--runs 3]
Smoke run: python bench/video.py --minutes 0.1 --height 240 --runs 1
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartalbum.ingest.decode import IngestTask, ingest_file
from smartalbum.media.video import KeyframePolicy
from tests.video_fixtures import RATE, speech_wav, wav_samples

SENTENCES = ["the kite flies over the beach", "we are having lunch by the lake", "happy birthday to you"]


def encode(
    path: Path, seconds: float, height: int, fps: int, scene_s: float, voice: np.ndarray
) -> list[float]:
    """Write the clip; returns the times of the cuts made."""
    width = height * 16 // 9 // 2 * 2
    rng = np.random.default_rng(7)
    frames = round(seconds * fps)
    cuts = []
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps * 2)})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        texture = None
        for i in range(frames):
            t = i / fps
            if texture is None or int(t / scene_s) != int((i - 1) / fps / scene_s):
                if texture is not None:
                    cuts.append(round(t, 3))
                colour = rng.integers(40, 215, 3)
                cells = rng.integers(-40, 40, (height // 16 + 1, width // 16 + 2, 3))
                texture = np.clip(colour + cells.repeat(16, 0).repeat(16, 1), 0, 255).astype(np.uint8)
            shift = (i * 2) % 16  # a slow pan
            img = np.ascontiguousarray(texture[:height, shift : shift + width])
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode(None))
        track = np.zeros(int(seconds * RATE), np.float32)
        for start in range(2, int(seconds), 20):
            piece = voice[: max(track.size - start * RATE, 0)]
            track[start * RATE : start * RATE + piece.size] += piece
        for start in range(0, track.size, 1024):
            af = av.AudioFrame.from_ndarray(track[None, start : start + 1024], format="flt", layout="mono")
            af.sample_rate = RATE
            af.pts = start
            out.mux(audio.encode(af))
        out.mux(audio.encode(None))
    return cuts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.0, help="length of the clip")
    ap.add_argument("--height", type=int, default=1080, help="lines (1080 = 1920x1080)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--scene-seconds", type=float, default=8.0, help="a cut every this many seconds")
    ap.add_argument("--runs", type=int, default=3, help="ingestion runs; the median is printed")
    ap.add_argument("--speech-model", default="bundled:whisper-base", help="'' skips transcription")
    args = ap.parse_args()
    seconds = args.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        voice = wav_samples(speech_wav(". ".join(SENTENCES), work / "voice.wav"))
        clip = work / "clip.mp4"
        started = time.perf_counter()
        cuts = encode(clip, seconds, args.height, args.fps, args.scene_seconds, voice)
        print(
            f"clip: {seconds:.0f} s at {args.height}p{args.fps}, {clip.stat().st_size / 1e6:.1f} MB, "
            f"{len(cuts)} cuts made, encoded in {time.perf_counter() - started:.1f} s"
        )
        policy = KeyframePolicy()
        times, outcome = [], None
        for _ in range(args.runs):
            thumbs = work / "thumbs"
            shutil.rmtree(thumbs, ignore_errors=True)
            task = IngestTask(
                str(clip), 1, clip.stat().st_size, 0, str(thumbs), (256, 1024), 178_956_970, policy
            )
            t0 = time.perf_counter()
            outcome = ingest_file(task)
            times.append(time.perf_counter() - t0)
        assert outcome is not None and outcome.photo is not None, outcome and outcome.error_message
        frames = outcome.photo.keyframes or []
        found = [t for t, _, cut in frames if cut >= policy.threshold]
        hit = sum(any(abs(t - c) <= 0.6 for t in found) for c in cuts)
        ingest_s = statistics.median(times)
        print("\n| what | value |\n|---|---:|")
        print(f"| ingest (hash, metadata, keyframes, thumbnails), median of {args.runs} | {ingest_s:.2f} s |")
        print(f"| x real time | {seconds / ingest_s:.1f} |")
        print(f"| seconds of ingest per minute of video | {60 * ingest_s / seconds:.2f} |")
        print(f"| keyframes | {len(frames)} ({len(frames) / (seconds / 60):.1f} per minute) |")
        print(f"| cuts found / made | {hit} / {len(cuts)} (+{len(found) - hit} extra) |")
        if args.speech_model:
            from smartalbum.speech.audio import decode_audio
            from smartalbum.speech.registry import load_transcriber

            model = load_transcriber("faster-whisper", args.speech_model)
            samples = decode_audio(clip)
            model.transcribe(samples[: RATE * 2])  # load the model outside the timing
            t0 = time.perf_counter()
            transcript = model.transcribe(samples)
            speech_s = time.perf_counter() - t0
            print(f"| transcription ({args.speech_model}) | {speech_s:.2f} s |")
            print(f"| transcript real-time factor | {speech_s / seconds:.3f} |")
            print(f"| segments heard | {len(transcript.segments)}: {transcript.text[:60]!r} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

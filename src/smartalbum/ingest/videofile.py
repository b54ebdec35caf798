"""Reading one video file into a catalog item: hash, metadata, keyframes and their thumbnails, the poster.

Runs in the ingestion worker processes like `decode.ingest_file`. The keyframes chosen for a content hash are
written next to its thumbnails (`<hash>_video.json`, last, atomically): a copy of a video, or a second run
after a crash, needs no second decode.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import blake3

from smartalbum.catalog.records import IngestOutcome, PhotoMeta
from smartalbum.fileio import write_atomic
from smartalbum.ingest import phototime
from smartalbum.media.video import KeyframePolicy, VideoError, VideoInfo, read_video

SIDECAR_VERSION = 1


def file_hash(path: str) -> tuple[str, int]:
    """Content hash and size of a file of any length, read in chunks."""
    h = blake3.blake3(max_threads=1)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def frame_hash(video_hash: str, t: float) -> str:
    """The subject key of one keyframe's thumbnails and analyses."""
    return blake3.blake3(f"{video_hash}@{t:.3f}".encode(), max_threads=1).hexdigest()


def _sidecar(thumbs_dir: str, video_hash: str) -> Path:
    return Path(thumbs_dir) / video_hash[:2] / f"{video_hash}_video.json"


def _load_sidecar(path: Path, policy: KeyframePolicy) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("version") != SIDECAR_VERSION or data.get("policy") != asdict(policy):
        return None
    return dict(data)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda fh: fh.write(json.dumps(data).encode()))


def read_video_file(task: Any, out: IngestOutcome, policy: KeyframePolicy) -> PhotoMeta | None:
    """The catalog item of one video (an `IngestTask`); failures set `out.error_kind` and return None."""
    from smartalbum.ingest.decode import thumb_path, write_thumbnails  # decode imports this module

    digest, size = file_hash(task.path)
    if size == 0:
        out.error_kind, out.error_message = "empty", "the file is empty (0 bytes)"
        return None
    out.size = size
    sidecar = _sidecar(task.thumbs_dir, digest)
    posters = [thumb_path(task.thumbs_dir, digest, s) for s in task.thumb_sizes]
    known = _load_sidecar(sidecar, policy) if all(p.exists() for p in posters) else None
    if known is None:
        try:
            read = read_video(task.path, size=max(task.thumb_sizes), policy=policy)
        except VideoError as exc:
            out.error_kind, out.error_message = exc.kind, str(exc)
            return None
        frames = []
        for kf in read.keyframes:
            fh = frame_hash(digest, kf.t)
            targets = [thumb_path(task.thumbs_dir, fh, s) for s in task.thumb_sizes]
            write_thumbnails(kf.image, targets, task.thumb_sizes)
            frames.append([kf.t, fh, round(kf.cut, 2)])
        write_thumbnails(read.keyframes[0].image, posters, task.thumb_sizes)
        known = {
            "version": SIDECAR_VERSION,
            "policy": asdict(policy),
            "info": asdict(read.info),
            "keyframes": frames,
            "warnings": read.warnings,
        }
        _write_json(sidecar, known)
    info = VideoInfo(**known["info"])
    out.warnings = list(known.get("warnings") or [])
    return _meta(digest, size, info, known["keyframes"], task)


def _meta(digest: str, size: int, info: VideoInfo, frames: list[list[Any]], task: Any) -> PhotoMeta:
    if info.taken_at:
        taken_at, offset, source = info.taken_at, info.tz_offset, "video_tag"
    else:
        taken_at, offset, source = phototime.taken_time(None, os.path.basename(task.path), task.mtime_ns)
    video = {
        "container": info.container,
        "codec": info.codec,
        "audio_codec": info.audio_codec,
        "fps": info.fps,
        "rotation": info.rotation,
    }
    return PhotoMeta(
        hash=digest,
        size=size,
        format=info.container,
        width=info.width,
        height=info.height,
        taken_at=taken_at,
        tz_offset=offset,
        time_source=source,
        lat=info.lat,
        lon=info.lon,
        camera_make=info.make,
        camera_model=info.model,
        thumbs=True,
        media="video",
        duration_s=info.duration_s,
        video=json.dumps(video),
        keyframes=[(float(t), str(fh), float(cut)) for t, fh, cut in frames],
    )

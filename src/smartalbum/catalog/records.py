"""Typed records that cross the catalog boundary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Better sources first: search can trust EXIF more than a file's mtime.
TIME_SOURCES = ("exif_original", "exif_digitized", "exif_datetime", "video_tag", "filename", "mtime")


@dataclass(slots=True)
class PhotoMeta:
    hash: str
    size: int
    format: str | None = None
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    taken_at: str | None = None
    tz_offset: str | None = None
    time_source: str = "mtime"
    lat: float | None = None
    lon: float | None = None
    place_city: str | None = None
    place_region: str | None = None
    place_country: str | None = None
    country_code: str | None = None
    place_city_zh: str | None = None
    place_region_zh: str | None = None
    place_country_zh: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    thumbs: bool = False
    media: str = "photo"  # photo | video
    duration_s: float | None = None
    video: str | None = None  # JSON: codec, audio codec, fps, rotation, container
    motion_offset: int | None = None  # a motion photo's embedded video starts this many bytes from the end
    # a video's analysed frames: (seconds, frame hash, scene-cut score); not a column of photos
    keyframes: list[tuple[float, str, float]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class IngestOutcome:
    """What ingesting one path produced: a photo, or an error with a kind and a one-line message."""

    path: str
    root_id: int
    size: int
    mtime_ns: int
    photo: PhotoMeta | None = None
    error_kind: str | None = None
    error_message: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.photo is not None

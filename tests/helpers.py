"""Test helpers: real photos written with real EXIF, the shared corpora, indexing shortcuts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import piexif
from PIL import Image, ImageDraw, ImageFont

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.pipeline.ingest import IngestStats, ingest_library

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SMARTALBUM_SHARED", REPO.parent / "shared"))
EVAL_PHOTOS = SHARED / "eval" / "photos"


def rational(value: float, denominator: int = 10_000) -> tuple[int, int]:
    return round(value * denominator), denominator


def gps_ifd(lat: float, lon: float) -> dict[int, Any]:
    def dms(v: float) -> tuple[tuple[int, int], ...]:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        s = (v - d - m / 60) * 3600
        return ((d, 1), (m, 1), rational(s, 1000))

    return {
        piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
        piexif.GPSIFD.GPSLatitude: dms(lat),
        piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
        piexif.GPSIFD.GPSLongitude: dms(lon),
    }


def make_photo(
    path: Path,
    *,
    size: tuple[int, int] = (96, 64),
    color: tuple[int, int, int] = (200, 80, 40),
    taken: str | None = None,
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
    make: str | None = None,
    model: str | None = None,
    orientation: int | None = None,
    fmt: str = "JPEG",
    seed: int = 0,
) -> Path:
    """Write a real image with real EXIF (piexif). `seed` varies the pixels so hashes differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    img.putpixel((seed % size[0], (seed // size[0]) % size[1]), (seed % 256, 7, 99))
    zeroth: dict[int, Any] = {}
    exif_ifd: dict[int, Any] = {}
    if make:
        zeroth[piexif.ImageIFD.Make] = make.encode()
    if model:
        zeroth[piexif.ImageIFD.Model] = model.encode()
    if orientation:
        zeroth[piexif.ImageIFD.Orientation] = orientation
    if taken:
        exif_ifd[piexif.ExifIFD.DateTimeOriginal] = taken.encode()
    if offset:
        exif_ifd[piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    exif = piexif.dump({"0th": zeroth, "Exif": exif_ifd, "GPS": gps_ifd(*gps) if gps else {}})
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
        img.save(path, format="HEIF", exif=exif, quality=90)
    else:
        img.save(path, format=fmt, exif=exif, **({"quality": 90} if fmt == "JPEG" else {}))
    return path


def index(catalog: Catalog, settings: Settings, **kwargs: Any) -> IngestStats:
    return ingest_library(catalog, settings, **kwargs)


def photo_by_path(catalog: Catalog, path: Path | str) -> dict[str, Any]:
    return catalog.photo(str(path))


def cjk_font_file() -> Path | None:
    """A font file with Chinese glyphs (Debian fonts-noto-cjk, which `make test` installs), or None."""
    if shutil.which("fc-match"):
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", "Noto Sans CJK SC:lang=zh"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if out and "cjk" in out.lower() and Path(out).is_file():
            return Path(out)
    for pattern in ("*CJK*", "*wqy*", "*SourceHanSans*"):
        for hit in sorted(Path("/usr/share/fonts").rglob(pattern)):
            if hit.suffix.lower() in {".ttc", ".otf", ".ttf"}:
                return hit
    return None


def text_photo(path: Path, lines: list[str], *, size: tuple[int, int] = (640, 360), px: int = 48) -> Path:
    """A JPEG of dark text lines (Chinese and English) on a light background, like a sign or a receipt."""
    font_file = cjk_font_file()
    assert font_file is not None, "no CJK font: `make test` installs fonts-noto-cjk"
    img = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(font_file), px, index=0)
    for i, line in enumerate(lines):
        draw.text((40, 40 + int(px * 1.66) * i), line, fill=(20, 20, 20), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=92)
    return path

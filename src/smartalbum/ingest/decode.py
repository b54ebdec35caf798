"""Reading one file into a photo: hash, decode, metadata, thumbnails. Runs in worker processes.

Every failure becomes an IngestOutcome with an error kind and a one-line message; nothing here raises.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import blake3
from PIL import ExifTags, Image, UnidentifiedImageError

from smartalbum.catalog.records import IngestOutcome, PhotoMeta
from smartalbum.ingest import exifdata, phototime
from smartalbum.ingest.scan import VIDEO_EXTENSIONS
from smartalbum.media.video import KeyframePolicy

MAX_FILE_BYTES = 1 << 30  # larger files are not photos we can decode in memory
_registered = False
# CPU seconds of each stage of reading a photo, added up while this is a dict (bench/ingest.py sets it in its
# own process to print where a photo's time goes); None: not measured.
STAGE_CPU: dict[str, float] | None = None
_lap_at = 0.0


def _lap(stage: str | None) -> None:
    """Charge the CPU time since the last lap to `stage` (None: only start counting)."""
    global _lap_at
    if STAGE_CPU is not None:
        now = time.process_time()
        if stage is not None:
            STAGE_CPU[stage] = STAGE_CPU.get(stage, 0.0) + now - _lap_at
        _lap_at = now


def register_decoders() -> None:
    """HEIC/HEIF through pillow-heif; AVIF is native in Pillow 11.3+."""
    global _registered
    if not _registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _registered = True


@dataclass(slots=True)
class IngestTask:
    path: str
    root_id: int
    size: int
    mtime_ns: int
    thumbs_dir: str
    thumb_sizes: tuple[int, ...]
    max_image_pixels: int
    video_policy: KeyframePolicy | None = None  # None: videos are not indexed


def thumb_path(thumbs_dir: Path | str, photo_hash: str, size: int) -> Path:
    return Path(thumbs_dir) / photo_hash[:2] / f"{photo_hash}_{size}.jpg"


def content_hash(data: bytes) -> str:
    return blake3.blake3(data, max_threads=1).hexdigest()


def classify_error(exc: BaseException) -> str:
    """A short, stable kind for `status` to count."""
    if isinstance(exc, Image.DecompressionBombError | MemoryError):
        return "too_large"
    if isinstance(exc, PermissionError):
        return "unreadable"
    if isinstance(exc, FileNotFoundError):
        return "vanished"
    if isinstance(exc, UnidentifiedImageError):
        return "not_image"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return "truncated"
    return "corrupt"


def _message(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format we can read (unknown or damaged header)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def ingest_file(task: IngestTask) -> IngestOutcome:
    out = IngestOutcome(task.path, task.root_id, task.size, task.mtime_ns)
    try:
        if task.video_policy and os.path.splitext(task.path)[1].lower() in VIDEO_EXTENSIONS:
            from smartalbum.ingest.videofile import read_video_file

            out.photo = read_video_file(task, out, task.video_policy)
        else:
            out.photo = _read_photo(task, out)
    except Exception as exc:  # any decoder bug is this file's problem, not the run's
        out.error_kind, out.error_message = classify_error(exc), _message(exc)
    return out


def _read_photo(task: IngestTask, out: IngestOutcome) -> PhotoMeta | None:
    register_decoders()
    Image.MAX_IMAGE_PIXELS = task.max_image_pixels
    if task.size == 0:
        out.error_kind, out.error_message = "empty", "the file is empty (0 bytes)"
        return None
    if task.size > MAX_FILE_BYTES:
        out.error_kind, out.error_message = "too_large", f"file of {task.size} bytes is too large to decode"
        return None
    _lap(None)
    with open(task.path, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    _lap("read")
    if not data:
        out.error_kind, out.error_message = "empty", "the file is empty (0 bytes)"
        return None
    out.size = len(data)  # the file may have changed since the scan; what we hashed is what counts
    digest = content_hash(data)
    _lap("hash")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Image.open(BytesIO(data)) as img:
            full_size = img.size  # before draft() shrinks it
            thumbs = [thumb_path(task.thumbs_dir, digest, s) for s in task.thumb_sizes]
            # Identical bytes decode identically: a copy of a photo we already decoded needs no second look.
            need_thumbs = not all(p.exists() for p in thumbs)
            _lap("open")
            if need_thumbs:
                if img.format in ("JPEG", "MPO"):  # DCT scaling: decode big JPEGs at 1/2, 1/4 or 1/8 size
                    # (MPO: a JPEG with more frames after it, as many cameras and Ultra HDR photos write)
                    img.draft("RGB", draft_size(img.size, max(task.thumb_sizes)))
                img.load()  # decode before reading EXIF: a PNG's getexif() would load and hide a decode error
                _lap(f"decode {img.format} to {max(img.size)} px")
            meta = _metadata(img, full_size, digest, len(data), task)
            meta.motion_offset = embedded_video_offset(data, img.info.get("xmp"))
            _lap("metadata")
            if need_thumbs:
                write_thumbnails(img, thumbs, task.thumb_sizes)
            meta.thumbs = True
    out.warnings = sorted({" ".join(str(w.message).split())[:200] for w in caught})
    return meta


_MOTION_XMP = (b"MotionPhoto", b"MicroVideo")  # Google's and Samsung's XMP markers of a video inside
_BRAND = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


def embedded_video_offset(data: bytes, xmp: bytes | str | None) -> int | None:
    """Where the MP4 appended to a motion photo starts, counted from the end of the file. The XMP says
    there is one (MicroVideoOffset in older files, a container directory in newer ones); the MP4's own first
    box says where it starts."""
    marks = xmp.encode() if isinstance(xmp, str) else (xmp or b"")
    if not any(m in marks for m in _MOTION_XMP):
        return None
    at = data.find(b"ftyp", 12)  # past a HEIF/AVIF still's own ftyp box, which sits at 4
    while at >= 4:
        start, box, brand = at - 4, int.from_bytes(data[at - 4 : at], "big"), data[at + 4 : at + 8]
        # an MP4 begins with a small ftyp box and a brand of letters and digits (isom, mp42, MSNV, qt  )
        if 16 <= box <= 64 and len(brand) == 4 and all(c in _BRAND for c in brand):
            return len(data) - start
        at = data.find(b"ftyp", at + 4)
    return None


def _metadata(
    img: Image.Image, full_size: tuple[int, int], digest: str, size: int, task: IngestTask
) -> PhotoMeta:
    try:
        exif: Image.Exif | None = img.getexif()
    except Exception:  # corrupt EXIF: the pixels may still be fine
        exif = None
    taken_at, offset, source = phototime.taken_time(exif, os.path.basename(task.path), task.mtime_ns)
    meta = PhotoMeta(
        hash=digest, size=size, format=img.format, taken_at=taken_at, tz_offset=offset, time_source=source
    )
    width, height = full_size
    if exif is not None:
        for reader in (_read_gps, _read_camera, _read_orientation):
            try:
                reader(exif, img, meta)
            except Exception:  # one broken tag must not cost the others
                continue
    # Store dimensions as the user sees the photo; pillow-heif has already rotated its pixels.
    if meta.orientation in (5, 6, 7, 8) and "original_orientation" not in img.info:
        width, height = height, width
    meta.width, meta.height = width, height
    return meta


def _read_gps(exif: Image.Exif, img: Image.Image, meta: PhotoMeta) -> None:
    point = exifdata.gps(exif)
    if point:
        meta.lat, meta.lon = point


def _read_camera(exif: Image.Exif, img: Image.Image, meta: PhotoMeta) -> None:
    meta.camera_make, meta.camera_model, meta.lens = exifdata.camera(exif)


def _read_orientation(exif: Image.Exif, img: Image.Image, meta: PhotoMeta) -> None:
    meta.orientation = exifdata.orientation(exif, img.info)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit and 32-bit gray: scale to 8 bits instead of clipping to white
        return img.point(lambda v: v / 256).convert("L").convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


# A JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that either
# - has a long side of DRAFT_MARGIN times the largest thumbnail's or more, then resized to it. Measured on
#   camera photos against a full decode: LANCZOS from 1.5x or more above the thumbnail keeps it within ~0.6
#   grey levels (mean) of the full-decode one; from a 1/4 or 1/8 decode only just above it, it is visibly
#   softer (1.1-1.7 levels); or
# - is itself the largest thumbnail, at most THUMB_SHORTFALL smaller than the nominal size: libjpeg's scaled
#   IDCT is a fair downscale (within ~1 grey level of LANCZOS from a full decode to the same size), and a
#   12-megapixel photo (4000x3000, 4032x3024) then needs neither the 1/2-scale decode nor a resize, the two
#   largest costs of ingesting it: its "1024-px" thumbnail is 1000 or 1008 px.
DRAFT_MARGIN = 1.5
THUMB_SHORTFALL = 0.03


def draft_scale(size: tuple[int, int], largest_thumb: int) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) to decode a photo of `size` at for a `largest_thumb` thumbnail,
    chosen by the long side (so a panorama is reduced as much as a 4:3 photo, instead of being held back by
    its short side)."""
    long_side = max(size)
    for scale in (8, 4, 2):
        scaled = -(-long_side // scale)  # libjpeg rounds a scaled size up
        if scaled >= largest_thumb * DRAFT_MARGIN:
            return scale
        if largest_thumb * (1 - THUMB_SHORTFALL) <= scaled <= largest_thumb:
            return scale
    return 1


def draft_size(size: tuple[int, int], largest_thumb: int) -> tuple[int, int]:
    """The size to ask JPEG draft() for so that it decodes at draft_scale(): draft picks the smallest scale
    with both sides at least this."""
    scale = draft_scale(size, largest_thumb)
    return (max(1, size[0] // scale), max(1, size[1] // scale))


def fit_size(size: tuple[int, int], box: int) -> tuple[int, int] | None:
    """Image.thumbnail()'s size for `size` in a `box`-pixel square (None: already fits), computed without
    resizing, so the first and largest thumbnail can be made from an image we must not modify."""
    width, height = size
    if box >= width and box >= height:
        return None
    aspect = width / height
    if aspect <= 1:
        return _round_aspect(box * aspect, lambda n: abs(aspect - n / box)), box
    return box, _round_aspect(box / aspect, lambda n: 0 if n == 0 else abs(aspect - box / n))


def _round_aspect(number: float, key: Callable[[int], float]) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)


# How a photo with each EXIF orientation is turned upright (as ImageOps.exif_transpose does it).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# The smaller thumbnails are made from the largest with a box reduce before LANCZOS when 3x smaller or
# more (1000 -> 256 px: 5 ms instead of 12). Measured on camera photos and the bench's: 45-53 dB PSNR against
# LANCZOS from a full decode (plain LANCZOS: 52-57), 10 dB or more under what the q85 encoding then changes.
SMALL_REDUCING_GAP = 1.5


def write_thumbnails(img: Image.Image, targets: list[Path], sizes: tuple[int, ...]) -> None:
    """Upright RGB JPEGs, largest first, each smaller one made from the one before; `img` is left as it is.
    Pixels are those of ImageOps.exif_transpose + convert + thumbnail, without their full-size copies."""
    img.load()
    turn = _UPRIGHT.get(img.getexif().get(ExifTags.Base.Orientation, 1))
    base = _to_rgb(img.transpose(turn) if turn is not None else img)
    _lap("turn upright, to RGB")
    ordered = sorted(zip(targets, sizes, strict=True), key=lambda t: -t[1])
    for i, (target, size) in enumerate(ordered):
        fitted = fit_size(base.size, size)
        if fitted is not None:  # a new image: `img` (which `base` may be) stays as it is
            base = base.resize(
                fitted, Image.Resampling.LANCZOS, reducing_gap=3.0 if i == 0 else SMALL_REDUCING_GAP
            )
        _lap(f"thumbnail {size}: resize")
        _atomic_save(base, target, optimize=max(base.size) <= OPTIMIZE_UP_TO)
        _lap(f"thumbnail {size}: encode, write")


# Optimised Huffman tables for thumbnails up to this size: 3-7% smaller files at 256 px for 0.5 ms; at 1000 px
# they save ~1% on camera photos (9% on the bench's noisy ones) and cost 5 ms, as much as the rest of encoding
OPTIMIZE_UP_TO = 512


def _atomic_save(img: Image.Image, target: Path, *, optimize: bool = True) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as fh:
            # baseline: the same pixels as progressive, a third of its encoding time, files ~5% larger
            img.save(fh, "JPEG", quality=85, optimize=optimize)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

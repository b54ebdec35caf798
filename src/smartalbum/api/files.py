"""Sending files: photos and thumbnails by id (opened without following links), and the web app's assets
from a fixed list read once at start-up. No path from a request is ever used to open anything."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from smartalbum.errors import NotFoundError

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "voice.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
PHOTO_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}
# videos by the container ingestion found (photos.format)
VIDEO_TYPES = {
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "mov": "video/quicktime",
    "qt": "video/quicktime",
    "3gp": "video/3gpp",
    "3g2": "video/3gpp2",
    "matroska": "video/x-matroska",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
}
PHOTO_CACHE = "private, max-age=86400"
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(web_dir: Path = WEB_DIR) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for name, media_type in {**ASSET_TYPES, "index.html": "text/html; charset=utf-8"}.items():
        body = (web_dir / name).read_bytes()
        assets[name] = Asset(body, media_type, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"')
    return assets


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def asset_response(asset: Asset, if_none_match: str | None, status_code: int = 200) -> Response:
    # no-cache: the browser revalidates, so a new version of the app shows up without a hard reload
    headers = {"etag": asset.etag, "cache-control": "no-cache"}
    if status_code == 200 and etag_matches(if_none_match, asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, status_code=status_code, media_type=asset.media_type, headers=headers)


def _chunks(f: BinaryIO, length: int | None = None) -> Iterator[bytes]:
    with f:
        left = length
        while left is None or left > 0:
            chunk = f.read(_CHUNK if left is None else min(_CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range of a `Range: bytes=a-b` header as (first, last) inclusive; None for no header or for a
    form served in full (several ranges); raises RangeNotSatisfiableError when it lies outside the file."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = re.fullmatch(r"([0-9]*)-([0-9]*)", spec.strip())
    if m is None or not (m.group(1) or m.group(2)):
        return None  # malformed: ignored, as RFC 9110 says
    first_s, last_s = m.groups()
    if not first_s:  # the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return max(size - n, 0), size - 1
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s.isdigit() else size - 1
    if first >= size or (last_s.isdigit() and int(last_s) < first):
        raise RangeNotSatisfiableError(size)
    return first, last


class RangeNotSatisfiableError(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"range outside the file ({size} bytes)")
        self.size = size


def photo_file_response(
    path: Path,
    etag_base: str,
    media_type: str,
    if_none_match: str | None,
    *,
    filename: str | None = None,
    range_header: str | None = None,
    if_range: str | None = None,
    window: tuple[int, int] | None = None,
) -> Response:
    """Stream a file (or the `window` [a, b) of its bytes) with an ETag of `etag_base` and the size; 304 when
    the client has it already; one byte range (206) when asked, which is how a video player seeks."""
    try:
        # O_NOFOLLOW: the path was checked as resolved; a link swapped in since then is refused
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise NotFoundError("the photo's file cannot be read", "run `smartalbum index` to refresh") from exc
    f = os.fdopen(fd, "rb")  # a file object closes itself even if the response is never sent
    size = os.fstat(fd).st_size
    base = 0
    if window is not None:  # a part of the file is the entity (a motion photo's video): bytes [a, b)
        base, size = window[0], max(min(window[1], size) - window[0], 0)
    etag = f'"{etag_base}-{size}"'
    headers = {"etag": etag, "cache-control": PHOTO_CACHE, "accept-ranges": "bytes"}
    if etag_matches(if_none_match, etag):
        f.close()
        return Response(status_code=304, headers=headers)
    if filename:
        headers["content-disposition"] = f"inline; filename*=utf-8''{quote(filename)}"
    try:
        # If-Range: the range holds only for the version the client has; otherwise the whole new file
        span = byte_range(range_header, size) if not if_range or if_range.strip() == etag else None
    except RangeNotSatisfiableError:
        f.close()
        return Response(status_code=416, headers={**headers, "content-range": f"bytes */{size}"})
    if span is None:
        headers["content-length"] = str(size)
        f.seek(base)
        return StreamingResponse(_chunks(f, size), media_type=media_type, headers=headers)
    first, last = span
    f.seek(base + first)
    headers["content-length"] = str(last - first + 1)
    headers["content-range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        _chunks(f, last - first + 1), status_code=206, media_type=media_type, headers=headers
    )

"""Sending files: photos and thumbnails by id (opened without following links), and the web app's assets
from a fixed list read once at start-up. No path from a request is ever used to open anything."""

from __future__ import annotations

import hashlib
import os
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


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(_CHUNK):
            yield chunk


def photo_file_response(
    path: Path, etag_base: str, media_type: str, if_none_match: str | None, *, filename: str | None = None
) -> Response:
    """Stream a file with an ETag of `etag_base` and the file's size; 304 when the client has it already."""
    try:
        # O_NOFOLLOW: the path was checked as resolved; a link swapped in since then is refused
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise NotFoundError("the photo's file cannot be read", "run `smartalbum index` to refresh") from exc
    f = os.fdopen(fd, "rb")  # a file object closes itself even if the response is never sent
    size = os.fstat(fd).st_size
    etag = f'"{etag_base}-{size}"'
    headers = {"etag": etag, "cache-control": PHOTO_CACHE}
    if etag_matches(if_none_match, etag):
        f.close()
        return Response(status_code=304, headers=headers)
    headers["content-length"] = str(size)
    if filename:
        headers["content-disposition"] = f"inline; filename*=utf-8''{quote(filename)}"
    return StreamingResponse(_chunks(f), media_type=media_type, headers=headers)

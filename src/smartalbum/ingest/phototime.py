"""When a photo was taken: EXIF first, then a date in the file name, then the file's mtime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

_TAG_DATETIME = 0x0132
_EXIF_IFD = 0x8769
# (datetime tag, offset tag, source name), best first
_EXIF_TIMES = (
    (0x9003, 0x9011, "exif_original"),
    (0x9004, 0x9012, "exif_digitized"),
    (_TAG_DATETIME, 0x9010, "exif_datetime"),
)
_EXIF_DT = re.compile(
    r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?"
)
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")
MIN_YEAR = 1826  # the oldest surviving photograph; anything earlier is a broken clock


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _valid(dt: datetime) -> bool:
    return MIN_YEAR <= dt.year <= datetime.now().year + 1


def parse_exif_datetime(value: Any) -> datetime | None:
    """'2024:07:12 15:30:00' (and the sloppy variants cameras write) to a naive datetime, else None."""
    text = _text(value)
    m = _EXIF_DT.match(text) if text else None
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    try:
        dt = datetime(y, mo, d, h, mi, min(s, 59))
    except ValueError:
        return None
    return dt if _valid(dt) else None


def parse_offset(value: Any) -> str | None:
    text = _text(value)
    m = _OFFSET.match(text) if text else None
    if not m or int(m.group(2)) > 14 or int(m.group(3)) >= 60:
        return None
    return f"{m.group(1)}{m.group(2)}:{m.group(3)}"


def exif_time(exif: Image.Exif) -> tuple[datetime, str | None, str] | None:
    """(local time, UTC offset or None, source) from the best EXIF date present."""
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # a broken Exif IFD pointer must not hide IFD0's DateTime
        sub = {}
    for dt_tag, off_tag, source in _EXIF_TIMES:
        raw = sub.get(dt_tag) if dt_tag != _TAG_DATETIME else exif.get(dt_tag)
        dt = parse_exif_datetime(raw)
        if dt:
            return dt, parse_offset(sub.get(off_tag)), source
    return None


# Date (and optional time) inside a file name: IMG_20240712_153000, PXL_20240712_153000123,
# 2024-07-12 15.30.00, Screenshot_2024-07-12-15-30-00, 微信图片_20240712153000, IMG-20240712-WA0001.
_NAME_DT = re.compile(
    r"(?<!\d)((?:19|20)\d{2})[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])"
    r"(?:(?:[ T_\-]|\s*at\s*)?([01]\d|2[0-3])[-_.:h]?([0-5]\d)[-_.:m]?([0-5]\d)(?:\d{3})?)?(?!\d)"
)
# WeChat / Weixin exports carry a Unix time in milliseconds: mmexport1720769400000, wx_camera_1720769400000.
_NAME_EPOCH_MS = re.compile(r"(?:mmexport|wx_camera_|microMsg\.|IMG_?)(1\d{12})(?!\d)", re.IGNORECASE)


def filename_time(name: str) -> datetime | None:
    m = _NAME_EPOCH_MS.search(name)
    if m:
        dt = datetime.fromtimestamp(int(m.group(1)) / 1000)
        return dt if _valid(dt) else None
    m = _NAME_DT.search(name)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    try:
        dt = datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    return dt if _valid(dt) else None


def mtime_time(mtime_ns: int) -> tuple[datetime, str]:
    local = datetime.fromtimestamp(mtime_ns / 1e9).astimezone()
    return local.replace(tzinfo=None, microsecond=0), format_offset(local.utcoffset())


def format_offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def taken_time(exif: Image.Exif | None, name: str, mtime_ns: int) -> tuple[str, str | None, str]:
    """(ISO local time, offset, source) for a photo, from the best evidence available."""
    found = exif_time(exif) if exif is not None else None
    if found:
        dt, offset, source = found
        return dt.isoformat(), offset, source
    dt_name = filename_time(name)
    if dt_name:
        return dt_name.isoformat(), None, "filename"
    dt, offset = mtime_time(mtime_ns)
    return dt.isoformat(), offset, "mtime"


def to_utc(taken_at: str, tz_offset: str | None) -> datetime | None:
    """The UTC instant for a stored local time, when its offset is known."""
    m = _OFFSET.match(tz_offset or "")
    if not m:
        return None
    sign = 1 if m.group(1) == "+" else -1
    tz = timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    return datetime.fromisoformat(taken_at).replace(tzinfo=tz).astimezone(UTC)

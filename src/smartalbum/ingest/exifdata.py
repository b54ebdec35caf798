"""Place and camera facts from EXIF, each read defensively: broken EXIF never fails a photo."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from PIL import Image

_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_MAKE, _MODEL = 0x010F, 0x0110
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434


def _clean(value: Any, limit: int = 120) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = " ".join(value.replace("\x00", " ").split())
    return value[:limit] or None


def _ratio(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:  # raw (numerator, denominator)
        return float(value[0]) / float(value[1])
    return float(value)


def _dms(value: Any) -> float | None:
    try:
        parts = [_ratio(v) for v in value] if isinstance(value, tuple | list) else [_ratio(value)]
        while len(parts) < 3:
            parts.append(0.0)
        deg = parts[0] + parts[1] / 60 + parts[2] / 3600
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return deg if math.isfinite(deg) else None


def gps(exif: Image.Exif) -> tuple[float, float] | None:
    """Decimal degrees (lat, lon), or None when absent, partial, out of range or the (0, 0) 'no fix'."""
    try:
        g = exif.get_ifd(_GPS_IFD)
    except Exception:
        return None
    if not g or 2 not in g or 4 not in g:
        return None
    lat, lon = _dms(g[2]), _dms(g[4])
    if lat is None or lon is None:
        return None
    if (_clean(g.get(1)) or "N").upper().startswith("S"):
        lat = -lat
    if (_clean(g.get(3)) or "E").upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return round(lat, 6), round(lon, 6)


def orientation(exif: Image.Exif, info: Mapping[Any, Any]) -> int | None:
    # pillow-heif applies the rotation itself and keeps the tag it removed in info['original_orientation'].
    raw = info.get("original_orientation") or exif.get(_ORIENTATION)
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 8 else None


def camera(exif: Image.Exif) -> tuple[str | None, str | None, str | None]:
    """(make, model, lens)."""
    make, model = _clean(exif.get(_MAKE)), _clean(exif.get(_MODEL))
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:
        sub = {}
    lens = _clean(sub.get(_LENS_MODEL))
    lens_make = _clean(sub.get(_LENS_MAKE))
    if lens and lens_make and not lens.lower().startswith(lens_make.lower()):
        lens = f"{lens_make} {lens}"
    return make, model, lens

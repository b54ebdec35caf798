"""Writing a file so that readers see the old one or the whole new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(target: Path, write: Callable[[BinaryIO], object], *, mode: int | None = None) -> None:
    """Write `target` through `write(file)` into a temporary file beside it, then rename it into place.
    `mode`: the new file's permissions (mkstemp's are 0o600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

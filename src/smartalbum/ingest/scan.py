"""Walking a root folder the way users expect: hidden and excluded paths skipped, symlink loops detected,
unreadable folders reported and skipped (never mistaken for deleted photos)."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Extensions are matched case-insensitively; content, not the extension, decides how a file is decoded.
PHOTO_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".tif", ".tiff", ".bmp", ".dib",
        ".heic", ".heif", ".hif", ".avif", ".avifs", ".mpo",
    }
)  # fmt: skip
# Containers phones and cameras write; PyAV reads the container whatever the name says
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".3g2", ".mkv", ".webm", ".avi", ".qt"})
# Folders that NAS boxes, OSes and photo tools fill with derived images a user never means to index.
DEFAULT_EXCLUDES = (
    "@eaDir",
    "#recycle",
    "#snapshot",
    "$RECYCLE.BIN",
    "System Volume Information",
    "*.photoslibrary",
)


@dataclass(slots=True)
class ScanEntry:
    path: str
    size: int
    mtime_ns: int


@dataclass
class ScanReport:
    """What a walk saw besides photos: problems are listed so the caller can report them."""

    unreadable_dirs: list[tuple[str, str]] = field(default_factory=list)
    symlink_loops: list[str] = field(default_factory=list)
    unreadable_files: list[tuple[str, str]] = field(default_factory=list)
    skipped_other: int = 0  # files that are not photos by extension
    skipped_hidden: int = 0
    skipped_excluded: int = 0

    def covers(self, path: str) -> bool:
        """True when `path` lies in a part of the tree this walk could read, so its absence means deletion."""
        return not any(
            path == d or path.startswith(d.rstrip(os.sep) + os.sep) for d, _ in self.unreadable_dirs
        )


def _excluded(name: str, rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def scan_root(
    root: Path,
    report: ScanReport,
    *,
    include_hidden: bool = False,
    exclude: Sequence[str] = (),
    videos: bool = False,
) -> Iterator[ScanEntry]:
    """Yield every photo file (and video file, with videos=True) under `root` (depth first, sorted),
    following symlinks but never in circles."""
    wanted = PHOTO_EXTENSIONS | VIDEO_EXTENSIONS if videos else PHOTO_EXTENSIONS
    patterns = (*DEFAULT_EXCLUDES, *exclude)
    root_str = str(root)
    try:
        st = root.stat()
    except OSError as exc:
        report.unreadable_dirs.append((root_str, exc.strerror or str(exc)))
        return
    seen_dirs = {(st.st_dev, st.st_ino)}
    stack = [root_str]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report.unreadable_dirs.append((current, exc.strerror or str(exc)))
            continue
        subdirs: list[str] = []
        for entry in entries:
            rel = os.path.relpath(entry.path, root_str)
            if entry.name.startswith(".") and not include_hidden:
                report.skipped_hidden += 1
                continue
            if _excluded(entry.name, rel, patterns):
                report.skipped_excluded += 1
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    dst = entry.stat(follow_symlinks=True)
                    key = (dst.st_dev, dst.st_ino)
                    if key in seen_dirs:
                        report.symlink_loops.append(entry.path)
                        continue
                    seen_dirs.add(key)
                    subdirs.append(entry.path)
                    continue
                if os.path.splitext(entry.name)[1].lower() not in wanted:
                    report.skipped_other += 1
                    continue
                fst = entry.stat(follow_symlinks=True)
            except OSError as exc:  # a dangling symlink or a file that vanished mid-walk
                report.unreadable_files.append((entry.path, exc.strerror or str(exc)))
                continue
            if not stat.S_ISREG(fst.st_mode):
                report.skipped_other += 1
                continue
            yield ScanEntry(entry.path, fst.st_size, fst.st_mtime_ns)
        stack.extend(reversed(subdirs))

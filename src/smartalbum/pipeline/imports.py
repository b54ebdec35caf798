"""Loading analyses made elsewhere (a GPU batch job, another tool's captions) from JSON Lines.

One object a line, keyed by `path` (an indexed file) or `hash` (content hash), with at least a description:
`{"path": "/photos/a.jpg", "description": "A cat on a sofa"}` or a full analysis in our schema
(`caption: {zh, en}`, `tags`, `objects`, `text`, ...). `producer` names the source (default "import").
Every line is validated and reported; importing the same file twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from smartalbum.catalog import Catalog
from smartalbum.errors import InputError, NotFoundError
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.schema import MAX_CAPTION_CHARS, has_cjk, validate_analysis

PRODUCER = "import"
MAX_LINE_BYTES = 1 << 20
MAX_FILE_BYTES = 1 << 30


@dataclass
class ImportReport:
    lines: int = 0
    imported: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "error": message}

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "imported": self.imported,
            "unchanged": self.unchanged,
            "errors": self.errors,
        }


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    if not path.is_file():
        raise InputError(f"{path} is not a file", "give a JSON Lines file, one analysis per line")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path} is larger than 1 GB", "split it into several files")
    with open(path, "rb") as fh:
        number = 0
        while line := fh.readline(MAX_LINE_BYTES + 1):  # bounded: one huge line must not fill memory
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
            yield number, line


def _analysis(obj: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in obj.items() if k not in ("path", "hash", "producer", "description")}
    description = obj.get("description")
    if description is not None and not isinstance(description, str):
        raise ValueError("'description' must be a string")
    if description and "caption" not in data:
        text = description.strip()[:MAX_CAPTION_CHARS]
        data["caption"] = {"zh": text} if has_cjk(text) and not text.isascii() else {"en": text}
    analysis, _ = validate_analysis(data)
    if not (analysis.caption.zh or analysis.caption.en):
        raise ValueError("no description: give 'description' or 'caption': {'zh': ..., 'en': ...}")
    return analysis.model_dump()


def import_analyses(catalog: Catalog, path: Path) -> ImportReport:
    report = ImportReport()
    batch: dict[str, list[AnalysisResult]] = {}
    for number, raw in _lines(path):
        if not raw.strip():
            continue
        report.lines += 1
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError("line longer than 1 MB")
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("each line must be a JSON object")
            ref = obj.get("hash") or obj.get("path")
            if not isinstance(ref, str) or not ref:
                raise ValueError("give the photo as 'path' (an indexed file) or 'hash' (its content hash)")
            producer = str(obj.get("producer") or PRODUCER)[:80]
            photo = catalog.photo(ref if obj.get("hash") else str(Path(ref).expanduser()))
            data = _analysis(obj)
        except (ValueError, ValidationError, NotFoundError) as exc:
            message = exc.message if isinstance(exc, NotFoundError) else str(exc).splitlines()[0]
            report.errors.append({"line": number, "error": message[:300]})
            continue
        version = f"{producer}|v1"
        if catalog.analysis_data(photo["hash"], PRODUCER, version) == data:
            report.unchanged += 1
            continue
        batch.setdefault(version, []).append(AnalysisResult(photo["hash"], "ok", data=data, raw=raw.decode()))
        report.imported += 1
    for version, results in batch.items():
        catalog.record_analyses(PRODUCER, version, results)
    return report

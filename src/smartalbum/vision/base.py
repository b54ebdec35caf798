"""The analyser protocol: every vision backend (transformers, OpenAI-compatible, OCR) looks like this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image


@dataclass(slots=True)
class AnalysisInput:
    """One photo to analyse: its content hash (identity) and the decoded, orientation-corrected image."""

    hash: str
    image: Image.Image


@dataclass(slots=True)
class AnalysisResult:
    """The outcome for one photo.

    status: 'ok' (parsed, schema-valid), 'partial' (parsed after repair, some fields dropped),
    'unparsed' (the raw text is kept as the description), 'error' (no answer at all; retried next run).
    """

    hash: str
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    error: str | None = None


class Analyser(Protocol):
    """Produces one result per input, in order. Never raises for a single bad photo."""

    name: str  # producer name stored with every result, e.g. 'qwen_vl', 'openai', 'ocr'
    version: str  # producer version: model id + prompt/schema version; a change re-runs the stage

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]: ...

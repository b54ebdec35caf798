"""Which vision analysis is a photo's description: one rule, used by search and by the photo page.

A photo can have results from several producers (qwen_vl, openai, import) and versions. The usable ones (ok,
partial) come before an 'unparsed' one, then the newest wins; OCR lines are not a description.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from smartalbum.vision.schema import PhotoAnalysis, validate_analysis

log = logging.getLogger(__name__)

OCR_PRODUCER = "ocr"
SPEECH_PRODUCER = "speech"  # a video's transcript: timed segments, not a description


def describing_analysis(analyses: list[dict[str, Any]]) -> tuple[PhotoAnalysis, dict[str, Any] | None]:
    """The analysis that counts, validated, and its row; (empty analysis, None) when there is none.
    OCR lines and a video's transcript are not descriptions.

    `analyses` are catalog rows (producer, status, data, created_at), any number per producer."""
    rows = [a for a in analyses if a.get("producer") not in (OCR_PRODUCER, SPEECH_PRODUCER)]
    # newest first, then usable before unparsed (a stable sort keeps the newest first within each)
    rows.sort(key=lambda a: a.get("created_at") or "", reverse=True)
    rows.sort(key=lambda a: a.get("status") == "unparsed")
    for row in rows:
        try:
            return validate_analysis(row["data"])[0], row
        except (ValidationError, ValueError, TypeError, RecursionError) as exc:  # old or foreign rows
            log.warning("analysis of %s by %s is unreadable: %s", row.get("producer"), row.get("status"), exc)
    return PhotoAnalysis(), None


def ocr_lines(analyses: list[dict[str, Any]]) -> list[str]:
    """The text lines OCR read, in order."""
    lines: list[str] = []
    for a in analyses:
        data = a.get("data")
        text = data.get("text") if a.get("producer") == OCR_PRODUCER and isinstance(data, dict) else None
        if isinstance(text, list):
            lines.extend(str(t) for t in text if isinstance(t, str | int | float) and str(t).strip())
    return lines

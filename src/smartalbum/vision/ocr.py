"""Visible text in photos with RapidOCR (PP-OCRv4 Chinese + English models, shipped inside the package)."""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from typing import Any

import numpy as np
from PIL import Image

from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.vision.base import AnalysisInput, AnalysisResult

log = logging.getLogger(__name__)

MIN_SCORE = 0.5  # below this PP-OCRv4 lines are mostly texture read as characters
MAX_SIDE = 1600  # signs and labels stay legible; detection time grows with the pixel count

Box = list[list[int]]


def _rapidocr_version() -> str:
    try:
        return importlib.metadata.version("rapidocr-onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


class OcrAnalyser:
    """Reads text lines, in reading order, with their boxes (in the input image's pixels) and scores."""

    name = "ocr"

    def __init__(
        self, settings: Settings | None = None, *, min_score: float = MIN_SCORE, max_side: int = MAX_SIDE
    ):
        self.settings = settings
        self.min_score = min_score
        self.max_side = max_side
        self.version = f"rapidocr-onnxruntime {_rapidocr_version()}|ppocrv4|{max_side}px|score{min_score:g}"
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def load(self) -> None:
        """Create the OCR engine now (it loads three small ONNX models); raises ModelError when it cannot."""
        with self._lock:
            if self._engine is not None:
                return
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ModelError(
                    f"OCR needs the rapidocr-onnxruntime package ({exc})",
                    "pip install rapidocr-onnxruntime, or set ocr_enabled = false",
                ) from exc
            try:
                self._engine = RapidOCR(text_score=self.min_score)
            except Exception as exc:
                raise ModelError(
                    f"cannot start the OCR engine: {type(exc).__name__}: {exc}",
                    "reinstall rapidocr-onnxruntime and onnxruntime, or set ocr_enabled = false",
                ) from exc

    def unload(self) -> None:
        self._engine = None

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]:
        """One result per input, in order; status 'ok' also when there is no text, 'error' on a failure."""
        if not batch:
            return []
        self.load()
        return [self._analyse_one(item) for item in batch]

    def _analyse_one(self, item: AnalysisInput) -> AnalysisResult:
        try:
            data = self.read(item.image)
        except Exception as exc:
            log.warning("OCR failed for %s: %s: %s", item.hash[:12], type(exc).__name__, exc)
            return AnalysisResult(item.hash, "error", {}, "", f"{type(exc).__name__}: {exc}"[:1000])
        return AnalysisResult(item.hash, "ok", data, "\n".join(data["text"]))

    def read(self, image: Image.Image) -> dict[str, Any]:
        """{"text": [lines], "boxes": [[[x, y] x4]], "scores": [float]} for one image, in reading order."""
        self.load()
        w, h = image.size
        if w < 1 or h < 1:
            raise ValueError(f"the image is empty ({w}x{h} pixels)")
        img = image if image.mode == "RGB" else image.convert("RGB")
        scale = 1.0
        if max(w, h) > self.max_side:
            scale = self.max_side / max(w, h)
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
        # An ndarray would be taken as BGR; a PIL image is converted by RapidOCR itself.
        found, _elapsed = self._engine(img)
        lines: list[tuple[Box, str, float]] = []
        for box, text, score in found or []:
            text = str(text).strip()
            if not text or float(score) < self.min_score:
                continue
            pts = np.asarray(box, dtype=np.float64) / scale
            pts[:, 0] = pts[:, 0].clip(0, w)
            pts[:, 1] = pts[:, 1].clip(0, h)
            lines.append(([[round(x), round(y)] for x, y in pts.tolist()], text, round(float(score), 4)))
        ordered = reading_order(lines)
        return {
            "text": [t for _, t, _ in ordered],
            "boxes": [b for b, _, _ in ordered],
            "scores": [s for _, _, s in ordered],
        }


def reading_order(lines: list[tuple[Box, str, float]]) -> list[tuple[Box, str, float]]:
    """Top to bottom by rows, left to right within a row; boxes overlapping vertically by half share a row."""
    if not lines:
        return []

    def span(box: Box) -> tuple[float, float]:
        ys = [p[1] for p in box]
        return min(ys), max(ys)

    rows: list[list[tuple[Box, str, float]]] = []
    row_spans: list[tuple[float, float]] = []
    for line in sorted(lines, key=lambda ln: (span(ln[0])[0] + span(ln[0])[1]) / 2):
        top, bottom = span(line[0])
        height = max(bottom - top, 1.0)
        if rows:
            r_top, r_bottom = row_spans[-1]
            overlap = min(bottom, r_bottom) - max(top, r_top)
            if overlap >= 0.5 * min(height, max(r_bottom - r_top, 1.0)):
                rows[-1].append(line)
                row_spans[-1] = (min(top, r_top), max(bottom, r_bottom))
                continue
        rows.append([line])
        row_spans.append((top, bottom))
    return [ln for row in rows for ln in sorted(row, key=lambda ln: min(p[0] for p in ln[0]))]

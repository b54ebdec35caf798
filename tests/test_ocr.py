"""OCR with RapidOCR's shipped PP-OCRv4 models on photos with Chinese and English text drawn into them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from smartalbum.vision.base import AnalysisInput
from smartalbum.vision.ocr import OcrAnalyser, reading_order
from tests.helpers import cjk_font_file

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "photos" / "exif" / "jpg"


@pytest.fixture(scope="module")
def cjk_font() -> Path:
    font = cjk_font_file()
    if font is None:
        pytest.fail("no CJK font installed: `make test` installs fonts-noto-cjk, or apt-get install it")
    return font


@pytest.fixture(scope="module")
def ocr() -> OcrAnalyser:
    return OcrAnalyser()


def _base_photo(size: tuple[int, int]) -> Image.Image:
    path = PHOTOS / "Canon_40D.jpg"
    if path.is_file():
        with Image.open(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB").resize(size)
    return Image.new("RGB", size, (120, 110, 90))


def _sign(photo: Image.Image, font: Path, lines: list[tuple[str, tuple[int, int]]], px: int) -> Image.Image:
    """Draws a light plate with dark text over the photo, like a shop sign or a menu board."""
    img = photo.copy()
    d = ImageDraw.Draw(img)
    f = ImageFont.truetype(str(font), px, index=0)
    for text, (x, y) in lines:
        left, top, right, bottom = d.textbbox((x, y), text, font=f)
        d.rectangle((left - 20, top - 16, right + 20, bottom + 16), fill=(245, 240, 228))
        d.text((x, y), text, font=f, fill=(25, 60, 35))
    return img


def test_reads_chinese_and_english_in_reading_order(ocr: OcrAnalyser, cjk_font: Path) -> None:
    img = _sign(
        _base_photo((1200, 800)),
        cjk_font,
        [("星巴克 STARBUCKS", (90, 120)), ("拿铁 28元", (90, 330)), ("Latte", (760, 336))],
        px=64,
    )
    (r,) = ocr.analyse([AnalysisInput("a" * 64, img)])
    assert r.status == "ok", r.error
    text = r.data["text"]
    joined = "\n".join(text)
    assert "星巴克" in joined
    assert "STARBUCKS" in joined
    assert "28元" in joined.replace(" ", "")
    # Reading order: the first row before the second; on the second row, left before right.
    first = next(i for i, t in enumerate(text) if "STARBUCKS" in t)
    price = next(i for i, t in enumerate(text) if "28" in t)
    latte = next(i for i, t in enumerate(text) if "latte" in t.lower())
    assert first < price < latte
    assert len(r.data["boxes"]) == len(text) == len(r.data["scores"])
    assert r.raw == joined


def test_weak_and_blank_lines_are_dropped_and_boxes_map_back_to_the_photo() -> None:
    """read() on what the engine found: a fake engine, so the lines and scores are known exactly."""
    ocr = OcrAnalyser(max_side=1000)
    seen: list[tuple[int, int]] = []

    def box(x0: int, y0: int, x1: int, y1: int) -> list[list[float]]:
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    def engine(img: Image.Image) -> tuple[list[list[object]], float]:
        seen.append(img.size)
        found: list[list[object]] = [
            [box(100, 50, 300, 90), "EXIT", 0.93],
            [box(100, 200, 300, 240), "texture", 0.31],  # below MIN_SCORE: dropped
            [box(100, 300, 300, 340), "  ", 0.99],  # no text: dropped
            [box(900, 500, 1200, 540), "edge", 0.5],  # exactly MIN_SCORE: kept; runs past the edge
        ]
        return found, 0.01

    ocr._engine = engine
    data = ocr.read(Image.new("RGB", (2000, 1500), (255, 255, 255)))
    assert seen == [(1000, 750)]  # the engine saw the downscaled copy
    assert data["text"] == ["EXIT", "edge"]
    assert data["scores"] == [0.93, 0.5]
    # boxes in the photo's own pixels (x2), the one past the copy's edge clipped to the photo
    assert data["boxes"] == [box(200, 100, 600, 180), box(1800, 1000, 2000, 1080)]


def test_huge_photo_is_downscaled_and_boxes_stay_in_its_pixels(ocr: OcrAnalyser, cjk_font: Path) -> None:
    img = _sign(_base_photo((4000, 3000)), cjk_font, [("出口 EXIT", (1200, 1300))], px=220)
    data = ocr.read(img)
    assert any("出口" in t for t in data["text"]), data
    assert any("EXIT" in t.upper() for t in data["text"]), data
    xs = [p[0] for box in data["boxes"] for p in box]
    ys = [p[1] for box in data["boxes"] for p in box]
    # The sign is around (1200..2300, 1300..1550) in the original 4000x3000 pixels, not in the 1600 px copy.
    assert min(xs) > 1000 and max(xs) < 2600 and min(ys) > 1150 and max(ys) < 1700


def test_no_text_is_ok_and_a_bad_image_is_an_error(ocr: OcrAnalyser) -> None:
    blank = AnalysisInput("b" * 64, Image.new("RGB", (320, 240), (255, 255, 255)))
    empty = AnalysisInput("c" * 64, Image.new("RGB", (0, 0)))
    grey = AnalysisInput("d" * 64, Image.new("LA", (200, 100), (128, 255)))
    results = ocr.analyse([blank, empty, grey])
    assert [r.hash for r in results] == [blank.hash, empty.hash, grey.hash]
    assert results[0].status == "ok" and results[0].data == {"text": [], "boxes": [], "scores": []}
    assert results[1].status == "error" and "empty" in (results[1].error or "")
    assert results[2].status == "ok"


def test_version_and_lazy_load() -> None:
    o = OcrAnalyser()
    assert o.name == "ocr"
    assert o.version.startswith("rapidocr-onnxruntime 1.")
    assert not o.loaded
    assert o.analyse([]) == []
    assert not o.loaded


def test_reading_order_groups_rows() -> None:
    def box(x: int, y: int, w: int = 100, h: int = 30) -> list[list[int]]:
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    lines = [
        (box(300, 104), "row1-right", 0.9),
        (box(10, 200), "row2", 0.9),
        (box(10, 100), "row1-left", 0.9),  # 4 px higher than its neighbour: same row
    ]
    assert [t for _, t, _ in reading_order(lines)] == ["row1-left", "row1-right", "row2"]

"""Shared by the API, fuzz and browser tests: a small real library, and the real server in a thread.

The library is built the way a user's is: real JPEGs with EXIF (tests.helpers.make_photo), the real ingestion,
then descriptions stored through the catalog code as if the vision model had written them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from PIL import Image, ImageDraw, ImageFont

from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.library import Library
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.prompt import PROMPT_VERSION
from smartalbum.vision.qwen_vl import model_display_name
from smartalbum.vision.schema import validate_analysis
from tests.helpers import make_photo

TOKEN = "test-token-0123456789abcdef"
INDEX_OPTIONS: dict[str, Any] = {"vlm": False, "ocr": False}  # no model is needed to index in tests


def _thing(zh: str, en: str, count: int = 1) -> dict[str, Any]:
    return {"name": {"zh": zh, "en": en}, "count": count}


# name -> (make_photo kwargs, what the vision model "said")
PHOTOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sunset_beach": (
        {"color": (250, 130, 50), "taken": "2024:07:12 19:42:00", "gps": (36.06, 120.38), "make": "Apple",
         "model": "iPhone 15"},
        {
            "caption": {
                "zh": "海边的日落，金色的阳光洒在沙滩和海浪上",
                "en": "A sunset at the beach, golden light on sand and waves",
            },
            "scene": {"zh": "海滩", "en": "beach"},
            "tags": {"zh": ["日落", "海滩", "大海", "夏天"], "en": ["sunset", "beach", "sea", "summer"]},
            "objects": [_thing("太阳", "sun"), _thing("海浪", "waves")],
            "time_of_day": "sunset",
            "season": "summer",
            "weather": "clear",
        },
    ),
    "cat": (
        {"color": (180, 140, 90), "taken": "2023:11:03 09:15:00", "make": "Canon", "model": "EOS R6"},
        {
            "caption": {"zh": "一只橘猫躺在沙发上睡觉", "en": "An orange cat sleeping on a sofa"},
            "scene": {"zh": "客厅", "en": "living room"},
            "tags": {"zh": ["猫", "宠物", "沙发"], "en": ["cat", "pet", "sofa"]},
            "objects": [_thing("沙发", "sofa")],
            "animals": [_thing("猫", "cat")],
            "weather": "indoor",
        },
    ),
    "receipt": (
        {"color": (240, 240, 235), "taken": "2025:01:20 18:05:00"},
        {
            "caption": {"zh": "一张超市购物小票", "en": "A supermarket receipt"},
            "scene": {"zh": "桌面", "en": "table top"},
            "tags": {"zh": ["小票", "购物", "文字"], "en": ["receipt", "shopping", "text"]},
            "objects": [_thing("小票", "receipt")],
            "text": ["超市 SUPERMARKET", "TOTAL 42.50", "谢谢惠顾"],
        },
    ),
    "snow_dog": (
        {"color": (230, 235, 245), "taken": "2022:12:24 14:00:00", "gps": (39.90, 116.40)},
        {
            "caption": {"zh": "一只小狗在雪地里奔跑", "en": "A puppy running in the snow"},
            "scene": {"zh": "雪地", "en": "snowy park"},
            "tags": {"zh": ["狗", "雪", "冬天"], "en": ["dog", "snow", "winter"]},
            "animals": [_thing("狗", "dog")],
            "season": "winter",
            "weather": "snow",
        },
    ),
    "city_night": (
        {"color": (20, 30, 60), "taken": "2024:03:02 22:10:00", "gps": (31.23, 121.47)},
        {
            "caption": {"zh": "夜晚的城市天际线，高楼灯火通明", "en": "A city skyline at night, lit towers"},
            "scene": {"zh": "城市", "en": "city"},
            "tags": {"zh": ["城市", "夜景", "高楼"], "en": ["city", "night", "skyscrapers"]},
            "time_of_day": "night",
        },
    ),
}  # fmt: skip


@dataclass
class BuiltLibrary:
    settings: Settings
    library: Library
    photos_dir: Path
    ids: dict[str, int]  # photo name -> photo id
    hashes: dict[str, str]


def paint(path: Path, scene: str) -> None:
    """Redraw the pixels as a simple picture of the scene, keeping make_photo's EXIF (for screenshots)."""
    with Image.open(path) as original:
        exif = original.info.get("exif", b"")
    w, h = 480, 360
    img = Image.new("RGB", (w, h), (200, 200, 200))
    d = ImageDraw.Draw(img)
    if scene == "sunset_beach":
        for y in range(h):
            t = y / h
            d.line([(0, y), (w, y)], fill=(int(250 - 90 * t), int(150 - 100 * t), int(60 + 90 * t)))
        d.ellipse([190, 120, 290, 220], fill=(255, 214, 102))
        d.rectangle([0, 200, w, 290], fill=(40, 70, 140))
        for y in range(210, 290, 14):
            d.line([(30, y), (w - 30, y)], fill=(90, 120, 190), width=2)
        d.rectangle([0, 290, w, h], fill=(222, 190, 140))
    elif scene == "cat":
        d.rectangle([0, 0, w, h], fill=(226, 214, 196))
        d.rounded_rectangle([40, 200, 440, 320], 30, fill=(120, 90, 150))
        d.ellipse([130, 160, 330, 260], fill=(236, 140, 50))
        d.ellipse([290, 120, 380, 200], fill=(236, 140, 50))
        d.polygon([(298, 140), (310, 95), (330, 128)], fill=(236, 140, 50))
        d.polygon([(342, 128), (365, 95), (374, 140)], fill=(236, 140, 50))
        d.line([(318, 165), (330, 168)], fill=(40, 30, 20), width=3)
        d.line([(345, 168), (357, 165)], fill=(40, 30, 20), width=3)
    elif scene == "receipt":
        d.rectangle([0, 0, w, h], fill=(120, 86, 60))
        d.rectangle([140, 20, 340, 340], fill=(250, 250, 246))
        font = ImageFont.load_default()
        for i, line in enumerate(["SUPERMARKET", "", "MILK      3.20", "BREAD     5.80", "APPLES   12.00",
                                  "RICE     21.50", "", "TOTAL    42.50", "", "THANK YOU"]):  # fmt: skip
            d.text((160, 40 + 26 * i), line, fill=(20, 20, 20), font=font)
    elif scene == "snow_dog":
        d.rectangle([0, 0, w, h], fill=(200, 215, 235))
        d.rectangle([0, 210, w, h], fill=(248, 250, 255))
        d.ellipse([170, 200, 300, 270], fill=(150, 100, 60))
        d.ellipse([270, 170, 340, 230], fill=(150, 100, 60))
        for x, y in [(180, 255), (280, 255), (200, 258), (260, 258)]:
            d.rectangle([x, y, x + 12, y + 30], fill=(130, 85, 50))
        for i in range(60):
            x, y = (i * 97) % w, (i * 53) % 200
            d.ellipse([x, y, x + 5, y + 5], fill=(255, 255, 255))
    elif scene == "city_night":
        d.rectangle([0, 0, w, h], fill=(14, 20, 48))
        for i, (bw, bh) in enumerate(
            [(60, 200), (50, 260), (70, 170), (55, 300), (65, 220), (60, 240), (45, 190)]
        ):
            x0 = 10 + i * 68
            d.rectangle([x0, h - bh, x0 + bw, h], fill=(30, 36, 70))
            for wy in range(h - bh + 10, h - 10, 18):
                for wx in range(x0 + 8, x0 + bw - 8, 14):
                    if (wx + wy + i) % 3:
                        d.rectangle([wx, wy, wx + 6, wy + 9], fill=(255, 210, 110))
    img.save(path, format="JPEG", quality=88, exif=exif)


def make_settings(base: Path) -> Settings:
    # embed_model "offline": the small multilingual-enough model shipped in a wheel, so no download happens
    return load_settings(base / "library", workers=1, batch_size=8, embed_model="offline", ocr_enabled=False)


def write_photos(folder: Path, names: list[str] | None = None, *, painted: bool = False) -> dict[str, Path]:
    paths = {}
    for i, name in enumerate(names or list(PHOTOS)):
        paths[name] = make_photo(folder / f"{name}.jpg", size=(160, 120), seed=i + 1, **PHOTOS[name][0])
        if painted:
            paint(paths[name], name)
    return paths


def describe(catalog: Catalog, settings: Settings, hashes: dict[str, str]) -> None:
    """Store descriptions as the vision model's stage would: canonical schema, through the catalog code."""
    version = f"{model_display_name(settings.vlm_model)}|{PROMPT_VERSION}"
    results = []
    for name, photo_hash in hashes.items():
        if name in PHOTOS:
            data = validate_analysis(PHOTOS[name][1])[0].model_dump()
            results.append(AnalysisResult(photo_hash, "ok", data=data, raw=""))
    catalog.record_analyses("qwen_vl", version, results)


def build_library(base: Path, names: list[str] | None = None, *, painted: bool = False) -> BuiltLibrary:
    """Photos written, folder added, ingested for real, descriptions stored: a library ready to search."""
    settings = make_settings(base)
    folder = base / "photos"
    paths = write_photos(folder, names, painted=painted)
    with Catalog(settings.catalog_path) as catalog:
        catalog.add_root(folder.resolve())
        stats = ingest_library(catalog, settings)
        assert stats.errors == 0, stats
        rows = {name: catalog.photo(str(path)) for name, path in paths.items()}
        hashes = {name: row["hash"] for name, row in rows.items()}
        describe(catalog, settings, hashes)
    library = Library(settings, index_options=INDEX_OPTIONS)
    return BuiltLibrary(settings, library, folder, {n: r["id"] for n, r in rows.items()}, hashes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    while not server.started:  # a server that never starts ends at pytest's timeout
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)

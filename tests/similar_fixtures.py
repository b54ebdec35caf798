"""A small described library with near-duplicates, for the search, API and browser tests of similar groups.

A burst of four frames of one beach (EXIF times a second apart) and an exported copy of its first frame
(smaller, recompressed, no EXIF): one group of five. Another beach (a trap: same scene type, same words in its
description), a sunset and a city street: photos of their own. Every photo is described as the vision model
would (stored through the catalog code), ingested for real and grouped by the index stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.library import Library
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.pipeline.similar import find_similar
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.prompt import PROMPT_VERSION
from smartalbum.vision.qwen_vl import model_display_name
from smartalbum.vision.schema import validate_analysis
from tests.similar_photos import _save, edit, frame, paint_world
from tests.web_fixtures import INDEX_OPTIONS, make_settings

BEACH = {
    "caption": {
        "zh": "海边的沙滩，彩色的遮阳伞和蓝色的大海",
        "en": "A sandy beach with colourful umbrellas by the blue sea",
    },
    "scene": {"zh": "海滩", "en": "beach"},
    "tags": {"zh": ["海滩", "沙滩", "遮阳伞", "大海"], "en": ["beach", "sand", "umbrella", "sea"]},
}
OTHERS = {
    "sunset": {
        "caption": {"zh": "海上的日落，橙色的天空", "en": "A sunset over the sea, an orange sky"},
        "scene": {"zh": "海边", "en": "coast"},
        "tags": {"zh": ["日落", "大海"], "en": ["sunset", "sea"]},
    },
    "city": {
        "caption": {"zh": "城市街道和高楼", "en": "A city street with tall buildings"},
        "scene": {"zh": "城市", "en": "city"},
        "tags": {"zh": ["城市", "高楼"], "en": ["city", "buildings"]},
    },
}
BURST = [f"IMG_20240712_15300{k}.jpg" for k in range(4)]
EXPORT = "beach_export.jpg"
TRAP = "other_beach.jpg"


@dataclass
class SimilarLibrary:
    settings: Settings
    library: Library
    folder: Path
    ids: dict[str, int]  # file name -> photo id

    @property
    def group(self) -> list[int]:
        """The five photos of the one true group."""
        return [self.ids[n] for n in [*BURST, EXPORT]]


def _describe(catalog: Catalog, settings: Settings, hashes: dict[str, dict[str, Any]]) -> None:
    version = f"{model_display_name(settings.vlm_model)}|{PROMPT_VERSION}"
    results = [
        AnalysisResult(h, "ok", data=validate_analysis(data)[0].model_dump(), raw="")
        for h, data in hashes.items()
    ]
    catalog.record_analyses("qwen_vl", version, results)


def build_similar_library(base: Path) -> SimilarLibrary:
    settings = make_settings(base)
    folder = base / "photos"
    rng = np.random.default_rng(7)
    size = (480, 360)
    beach = paint_world("beach", rng, 720, 468)
    start = datetime(2024, 7, 12, 15, 30, 0)
    for k, name in enumerate(BURST):
        img = frame(beach, rng, size, x=0.4 + 0.03 * k, y=0.5, exposure=1.0 + 0.02 * k, move=0.01)
        _save(img, folder / name, start + timedelta(seconds=k))
        if k == 0:
            small, _ = edit(img, "resize", rng)
            _save(small, folder / EXPORT, None, 60, mtime=start + timedelta(days=20))
    for name, scene, hours in ((TRAP, "beach", 2), ("sunset.jpg", "sunset", 5), ("city.jpg", "city", 30)):
        img = frame(paint_world(scene, rng, 720, 468), rng, size, x=0.5, y=0.5)
        _save(img, folder / name, start + timedelta(hours=hours))
    with Catalog(settings.catalog_path) as catalog:
        catalog.add_root(folder.resolve())
        assert ingest_library(catalog, settings).errors == 0
        rows = {p.name: catalog.photo(str(p)) for p in sorted(folder.iterdir())}
        words = {n: OTHERS.get(Path(n).stem, BEACH) for n in rows}
        _describe(catalog, settings, {rows[n]["hash"]: words[n] for n in rows})
        find_similar(catalog, settings)
    library = Library(settings, index_options=INDEX_OPTIONS)
    return SimilarLibrary(settings, library, folder, {n: r["id"] for n, r in rows.items()})

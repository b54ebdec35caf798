"""What search knows about a photo: its texts per field (for full-text search) and one text to embed.

Built from the catalog only: the vision analysis that counts, OCR lines, place names and file names.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from smartalbum.catalog import Catalog
from smartalbum.vision.description import describing_analysis, ocr_lines
from smartalbum.vision.schema import LABELS_ZH

_NAME_SPLIT = re.compile(r"[\s_\-.()\[\]]+")


@dataclass(slots=True)
class PhotoDocument:
    photo_id: int
    hash: str
    fields: dict[str, str]  # full-text fields: desc_zh, desc_en, tags, objects, text, places, files
    embed_text: str  # what the dense index embeds
    people: int | None  # people counted by the VLM, when it looked
    signature: str  # changes whenever anything above changes

    @property
    def caption(self) -> dict[str, str]:
        return {
            "zh": self.fields["desc_zh"].split("\n", 1)[0],
            "en": self.fields["desc_en"].split("\n", 1)[0],
        }


def _join(parts: list[str], sep: str = "\n") -> str:
    return sep.join(p for p in parts if p)


def _file_words(paths: list[str]) -> str:
    """File and folder names (relative to the root) as words: 'Trips/2024 Qingdao/IMG_1234.jpg' ->
    'Trips 2024 Qingdao IMG 1234'."""
    words: list[str] = []
    for p in paths:
        pp = PurePath(p)
        for part in [*pp.parent.parts[-3:], pp.stem]:
            words.extend(w for w in _NAME_SPLIT.split(part) if w and w != "/")
    return " ".join(dict.fromkeys(words))


def build_document(row: dict[str, Any], analyses: list[dict[str, Any]]) -> PhotoDocument:
    """The document of one catalog row (`search_rows`), from the analysis that counts and the OCR lines."""
    analysis, described = describing_analysis(analyses)
    things = [*analysis.objects, *analysis.animals]
    cues = [c for c in (analysis.time_of_day, analysis.season, analysis.weather) if c]
    read = ocr_lines(analyses)[:200]
    people_desc = analysis.people.description
    fields = {
        "desc_zh": _join([analysis.caption.zh, analysis.scene.zh, people_desc.zh]),
        "desc_en": _join([analysis.caption.en, analysis.scene.en, people_desc.en]),
        "tags": _join(
            [*analysis.tags.zh, *analysis.tags.en, *cues, *(LABELS_ZH.get(c, "") for c in cues)], " "
        ),
        "objects": _join([n for t in things for n in (t.name.zh, t.name.en)], " "),
        "text": _join(list(dict.fromkeys([*analysis.text, *read]))),
        "places": _join(
            [
                row.get(k) or ""
                for k in (
                    "place_city_zh",
                    "place_region_zh",
                    "place_country_zh",
                    "place_city",
                    "place_region",
                    "place_country",
                )
            ],
            " ",
        ),
        "files": _file_words(row.get("names") or []),
    }
    # The dense index embeds what the photo shows, in both languages; places, dates and file names are
    # handled by filters and full-text search, where exact matching works better.
    embed_text = _join(
        [
            analysis.caption.en,
            analysis.caption.zh,
            ", ".join([*analysis.tags.en, *(t.name.en for t in things if t.name.en)]),
            "，".join([*analysis.tags.zh, *(t.name.zh for t in things if t.name.zh)]),
            analysis.scene.en,
            " ".join(fields["text"].split("\n")[:10]),
        ]
    )
    people = analysis.people.count if described else None
    digest = hashlib.blake2b(
        json.dumps([fields, embed_text, people], ensure_ascii=False).encode(), digest_size=12
    )
    return PhotoDocument(int(row["id"]), row["hash"], fields, embed_text, people, digest.hexdigest())


def iter_documents(catalog: Catalog, photo_ids: list[int] | None = None) -> Iterator[PhotoDocument]:
    """Documents of visible photos (at least one existing file), optionally only some of them."""
    for row in catalog.search_rows(photo_ids):
        yield build_document(row, row.pop("analyses"))

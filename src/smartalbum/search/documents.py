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
from smartalbum.vision.description import SPEECH_PRODUCER, describing_analysis, ocr_lines
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


def _described(analyses: list[dict[str, Any]]) -> tuple[dict[str, str], str, int | None]:
    """Full-text fields (without places and files), the text to embed and the people count of one look at
    a picture (a photo, or one frame of a video)."""
    analysis, described = describing_analysis(analyses)
    things = [*analysis.objects, *analysis.animals]
    cues = [c for c in (analysis.time_of_day, analysis.season, analysis.weather) if c]
    # a line with no letter or digit ('■', '—') is a shape OCR took for text: it says nothing
    read = [line for line in ocr_lines(analyses)[:200] if any(ch.isalnum() for ch in line)]
    people_desc = analysis.people.description
    fields = {
        "desc_zh": _join([analysis.caption.zh, analysis.scene.zh, people_desc.zh]),
        "desc_en": _join([analysis.caption.en, analysis.scene.en, people_desc.en]),
        "tags": _join(
            [*analysis.tags.zh, *analysis.tags.en, *cues, *(LABELS_ZH.get(c, "") for c in cues)], " "
        ),
        "objects": _join([n for t in things for n in (t.name.zh, t.name.en)], " "),
        "text": _join(list(dict.fromkeys([*analysis.text, *read]))),
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
    return fields, embed_text, analysis.people.count if described else None


def _document(
    doc_id: int, photo_hash: str, fields: dict[str, str], embed_text: str, people: int | None
) -> PhotoDocument:
    digest = hashlib.blake2b(
        json.dumps([fields, embed_text, people], ensure_ascii=False).encode(), digest_size=12
    )
    return PhotoDocument(doc_id, photo_hash, fields, embed_text, people, digest.hexdigest())


def _place_words(row: dict[str, Any]) -> str:
    suffixes = ("_zh", "")
    keys = [f"place_{k}{s}" for s in suffixes for k in ("city", "region", "country")]
    return _join([row.get(k) or "" for k in keys], " ")


def build_document(row: dict[str, Any], analyses: list[dict[str, Any]]) -> PhotoDocument:
    """The document of one catalog row (`search_rows`), from the analysis that counts and the OCR lines."""
    fields, embed_text, people = _described(analyses)
    fields.update(places=_place_words(row), files=_file_words(row.get("names") or []))
    return _document(int(row["id"]), row["hash"], fields, embed_text, people)


# -- videos: one document for the whole video and one per moment (a keyframe, a stretch of speech) ------
# A moment's document id lies above every photo id and encodes its video and its place in `video_moments`.
MOMENT_BASE = 1 << 48
_SPEECH_K = 1 << 15  # speech moments are numbered from here; frames from 0
SPEECH_WINDOW_S = 20.0  # consecutive transcript segments are searched together up to this length


def moment_id(video_id: int, k: int) -> int:
    return MOMENT_BASE + (video_id << 16) + k


def item_of(doc_id: int) -> int:
    """The photo or video a search document stands for: a moment's video, else the document's own id."""
    moment = split_moment(doc_id)
    return moment[0] if moment else doc_id


def split_moment(doc_id: int) -> tuple[int, int] | None:
    """(video id, k) of a moment's document id; None for a photo's or a video's own document."""
    if doc_id < MOMENT_BASE:
        return None
    rest = doc_id - MOMENT_BASE
    return rest >> 16, rest & 0xFFFF


@dataclass(slots=True)
class Moment:
    k: int
    kind: str  # frame | speech
    t: float
    end: float
    frame_hash: str | None
    caption: dict[str, str]  # a frame's description; for speech, the words in both slots
    document: PhotoDocument


def _speech_windows(analyses: list[dict[str, Any]]) -> tuple[str, list[tuple[float, float, str]]]:
    """The transcript's language and its segments joined into windows of up to SPEECH_WINDOW_S."""
    data = next((a["data"] for a in analyses if a.get("producer") == SPEECH_PRODUCER), None)
    if not isinstance(data, dict):
        return "", []
    windows: list[tuple[float, float, str]] = []
    for seg in data.get("segments") or []:
        try:
            start, end, words = float(seg["start"]), float(seg["end"]), str(seg["text"]).strip()
        except (KeyError, TypeError, ValueError):
            continue
        if not words:
            continue
        if windows and end - windows[-1][0] <= SPEECH_WINDOW_S:
            w = windows[-1]
            windows[-1] = (w[0], end, f"{w[2]} {words}")
        else:
            windows.append((start, end, words))
    return str(data.get("language") or ""), windows


def video_moments(row: dict[str, Any]) -> list[Moment]:
    """A video's searchable moments (`search_rows` row with "frames"): described keyframes, then speech."""
    video_id = int(row["id"])
    frames = row.get("frames") or []
    moments: list[Moment] = []
    for k, frame in enumerate(frames[:_SPEECH_K]):
        fields, embed_text, people = _described(frame["analyses"])
        if not embed_text.strip() and not fields["text"]:
            continue  # not looked at yet
        end = frames[k + 1]["t"] if k + 1 < len(frames) else float(row.get("duration_s") or frame["t"])
        seen = fields["text"].split("\n", 1)[0]  # what is written there, when nothing describes it yet
        caption = {lang: fields[f"desc_{lang}"].split("\n", 1)[0] or seen for lang in ("zh", "en")}
        doc = _document(moment_id(video_id, k), frame["frame_hash"], fields, embed_text, people)
        moments.append(Moment(k, "frame", frame["t"], end, frame["frame_hash"], caption, doc))
    _, windows = _speech_windows(row.get("analyses") or [])
    for i, (start, end, words) in enumerate(windows[: 0xFFFF - _SPEECH_K]):
        k = _SPEECH_K + i
        fields = {"desc_zh": "", "desc_en": "", "tags": "", "objects": "", "text": words}
        doc = _document(moment_id(video_id, k), row["hash"], fields, words, None)
        moments.append(Moment(k, "speech", start, end, None, {"zh": words, "en": words}, doc))
    return moments


def build_video_documents(row: dict[str, Any]) -> list[PhotoDocument]:
    """A video's own document (every moment's words, its place and file names; nothing to embed: its
    moments carry the meaning) followed by its moments' documents."""
    moments = video_moments(row)
    fields: dict[str, str] = {}
    for name in ("desc_zh", "desc_en", "tags", "objects", "text"):
        lines = [line for m in moments for line in m.document.fields[name].split("\n") if line]
        fields[name] = _join(list(dict.fromkeys(lines)))
    fields.update(places=_place_words(row), files=_file_words(row.get("names") or []))
    counts = [m.document.people for m in moments if m.document.people is not None]
    video = _document(int(row["id"]), row["hash"], fields, "", max(counts) if counts else None)
    # the caption a result shows (the first line): the first frame that has a description
    first = next((m for m in moments if m.kind == "frame" and m.document.fields["desc_en"]), None)
    if first is not None:
        for name in ("desc_zh", "desc_en"):
            lead = first.document.fields[name].split("\n", 1)[0]
            video.fields[name] = _join([lead, *(x for x in video.fields[name].split("\n") if x != lead)])
    return [video, *(m.document for m in moments)]


def iter_documents(catalog: Catalog, photo_ids: list[int] | None = None) -> Iterator[PhotoDocument]:
    """Documents of visible photos and videos (at least one existing file), optionally only some of them;
    a video's moments follow its own document."""
    for row in catalog.search_rows(photo_ids):
        if row.get("media") == "video":
            yield from build_video_documents(row)
        else:
            yield build_document(row, row.pop("analyses"))

"""Catalog rows and search results turned into the API's response models (presentation only, no logic)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from smartalbum.api import models as m
from smartalbum.pipeline.jobs import JobStatus
from smartalbum.search.results import SearchResults
from smartalbum.vision.description import SPEECH_PRODUCER, describing_analysis, ocr_lines
from smartalbum.vision.schema import PhotoAnalysis


def urls(photo_id: int, *, motion: bool = False) -> m.PhotoUrls:
    base = f"/api/photos/{photo_id}"
    return m.PhotoUrls(
        thumbnail=f"{base}/thumbnail?size=256",
        large=f"{base}/thumbnail?size=1024",
        original=f"{base}/original",
        motion=f"{base}/motion" if motion else None,
    )


def _things(items: list[Any]) -> list[m.Thing]:
    return [m.Thing(name=m.Bilingual(zh=t.name.zh, en=t.name.en), count=t.count) for t in items]


def place_out(p: dict[str, Any]) -> m.Place | None:
    keys = ("city", "region", "country", "country_code", "city_zh", "region_zh", "country_zh")
    values = {k: p.get(k if k == "country_code" else f"place_{k}") for k in keys}
    if not any(values.values()):
        return None
    en = ", ".join(dict.fromkeys(v for v in (values["city"], values["region"], values["country"]) if v))
    zh_parts = (values["city_zh"] or values["city"], values["region_zh"] or values["region"])
    zh = ", ".join(dict.fromkeys(v for v in (*zh_parts, values["country_zh"] or values["country"]) if v))
    return m.Place(**values, label=m.Bilingual(zh=zh, en=en))


def description_of(photo: dict[str, Any]) -> tuple[PhotoAnalysis, dict[str, Any] | None]:
    """The description of a catalog row with its analyses; a video's is its first described frame's."""
    if photo.get("media") == "video":
        for frame in photo.get("frames") or []:
            found = describing_analysis(frame["analyses"])
            if found[1] is not None:
                return found
    return describing_analysis(photo.get("analyses", []))


def video_out(photo: dict[str, Any]) -> m.VideoOut:
    info = json.loads(photo.get("video") or "{}")
    keyframes = []
    for k, frame in enumerate(photo.get("frames") or []):
        desc, _ = describing_analysis(frame["analyses"])
        keyframes.append(
            m.KeyframeOut(
                t=frame["t"],
                caption=m.Bilingual(zh=desc.caption.zh, en=desc.caption.en),
                text=list(dict.fromkeys([*desc.text, *ocr_lines(frame["analyses"])])),
                thumbnail=f"/api/photos/{photo['id']}/frames/{k}?size=256",
            )
        )
    speech = next((a["data"] for a in photo.get("analyses", []) if a["producer"] == SPEECH_PRODUCER), None)
    transcript = None
    if isinstance(speech, dict):
        segments = [m.SegmentOut(**{k: s[k] for k in ("start", "end", "text")}) for s in speech["segments"]]
        transcript = m.TranscriptOut(language=speech.get("language") or "", segments=segments)
    return m.VideoOut(
        duration_s=photo.get("duration_s"),
        container=info.get("container"),
        codec=info.get("codec"),
        audio_codec=info.get("audio_codec"),
        fps=info.get("fps"),
        rotation=info.get("rotation"),
        keyframes=keyframes,
        transcript=transcript,
    )


def photo_detail(photo: dict[str, Any]) -> m.PhotoDetail:
    analyses = photo.get("analyses", [])
    video = photo.get("media") == "video"
    desc, row = description_of(photo)
    status = row["status"] if row else None
    text = list(dict.fromkeys([*desc.text, *ocr_lines(analyses)]))
    camera = m.Camera(make=photo["camera_make"], model=photo["camera_model"], lens=photo["lens"])
    return m.PhotoDetail(
        id=photo["id"],
        hash=photo["hash"],
        size=photo["size"],
        format=photo["format"],
        width=photo["width"],
        height=photo["height"],
        taken_at=photo["taken_at"],
        tz_offset=photo["tz_offset"],
        time_source=photo["time_source"],
        lat=photo["lat"],
        lon=photo["lon"],
        place=place_out(photo),
        camera=camera if (camera.make or camera.model or camera.lens) else None,
        description_status=status,
        caption=m.Bilingual(zh=desc.caption.zh, en=desc.caption.en),
        scene=m.Bilingual(zh=desc.scene.zh, en=desc.scene.en),
        tags=m.BilingualList(zh=desc.tags.zh, en=desc.tags.en),
        objects=_things(desc.objects),
        animals=_things(desc.animals),
        people_count=desc.people.count,
        people=m.Bilingual(zh=desc.people.description.zh, en=desc.people.description.en),
        text=text,
        time_of_day=desc.time_of_day,
        season=desc.season,
        weather=desc.weather,
        files=[m.FileOut(path=f["path"], status=f["status"], size=f["size"]) for f in photo["files"]],
        analyses=[
            m.AnalysisOut(
                producer=a["producer"],
                producer_version=a["producer_version"],
                status=a["status"],
                created_at=a["created_at"],
                data=a["data"] if isinstance(a["data"], dict) else {"value": a["data"]},
            )
            for a in analyses
        ],
        urls=urls(
            photo["id"],
            motion=bool(photo.get("motion_offset"))
            or any(f.get("motion_path") and f["status"] == "ok" for f in photo["files"]),
        ),
        media="video" if video else "photo",
        video=video_out(photo) if video else None,
    )


def search_out(results: SearchResults) -> m.SearchOut:
    data = results.as_dict()
    hits = [m.Hit(**hit, urls=urls(hit["photo_id"])) for hit in data.pop("hits")]
    return m.SearchOut(**data, hits=hits)


def job_out(job: JobStatus) -> m.Job:
    return m.Job(**asdict(job))


def feedback_out(row: dict[str, Any]) -> m.FeedbackOut:
    return m.FeedbackOut(
        id=row["id"],
        query=row["query"],
        photo_id=row.get("photo_id"),
        verdict=row["verdict"],
        created_at=row.get("created_at"),
        undone_at=row.get("undone_at"),
    )

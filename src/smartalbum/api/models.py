"""The HTTP API's request and response models: they are the validation and the OpenAPI document."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from smartalbum.catalog.people import MAX_NAME_LEN, MAX_NAMES
from smartalbum.library import MAX_QUERY_CHARS

MAX_PAGE = 200  # results per request; the UI pages through the rest
MAX_OFFSET = 100_000
MAX_ID = 2**62  # SQLite integers are 64-bit signed; bigger ids would overflow, not just miss
MAX_FACE_IDS = 500  # faces moved in one request
MAX_MERGE = 100  # people merged in one request
MAX_CROP = 512  # the largest face crop, in pixels (cut from the large thumbnail, up to 1024 pixels)
# No control characters (a NUL byte would crash path functions) in anything that names a file or a place.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"

Verdict = Literal["good", "bad"]
JobState = Literal["queued", "running", "done", "cancelled", "failed"]


class ThumbSize(IntEnum):
    small = 256
    large = 1024


class ErrorBody(BaseModel):
    """Every error: one line saying what went wrong, and a hint on what to do (or null)."""

    error: str
    hint: str | None = None


# -- requests ---------------------------------------------------------------------------------------


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S", description="the query")
    photo_id: int = Field(ge=1, le=MAX_ID)
    verdict: Verdict = Field(description="'good': right for this query; 'bad': wrong, hide it")


class LibraryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1,
        max_length=4096,
        pattern=NO_CONTROL,
        description="absolute path of a folder on the server",
    )


Name = Annotated[str, Field(max_length=MAX_NAME_LEN, pattern=NO_CONTROL)]


class NameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: list[Name] = Field(
        min_length=1,
        max_length=MAX_NAMES,
        description="names and aliases in any language; the first is the one shown",
    )
    add: bool = Field(default=False, description="keep the names the person already has")


class MeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: int | None = Field(ge=1, le=MAX_ID, description="the owner (我 / me), or null for nobody")


class HideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden: bool = Field(default=True, description="false: show the person again")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: int = Field(ge=1, le=MAX_ID, description="the person kept, with every face and name")
    sources: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=MAX_MERGE, description="people merged into the target, then deleted"
    )


class MoveFacesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=MAX_FACE_IDS)
    person_id: int | None = Field(
        ge=1, le=MAX_ID, description="the person the faces belong to; null: a new person of their own"
    )


# -- responses --------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Bilingual(BaseModel):
    zh: str = ""
    en: str = ""


class BilingualList(BaseModel):
    zh: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)


class Thing(BaseModel):
    name: Bilingual
    count: int


class Place(BaseModel):
    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = None
    city_zh: str | None = None
    region_zh: str | None = None
    country_zh: str | None = None
    label: Bilingual = Field(default_factory=Bilingual, description="'city, region, country' per language")


class Camera(BaseModel):
    make: str | None = None
    model: str | None = None
    lens: str | None = None


class FileOut(BaseModel):
    path: str
    status: str
    size: int


class AnalysisOut(BaseModel):
    producer: str
    producer_version: str
    status: str
    created_at: str
    data: dict[str, Any]


class PhotoUrls(BaseModel):
    thumbnail: str
    large: str
    original: str
    motion: str | None = Field(default=None, description="a live or motion photo's video")


class PhotoDetail(BaseModel):
    id: int
    hash: str
    size: int
    format: str | None
    width: int | None
    height: int | None
    taken_at: str | None
    tz_offset: str | None
    time_source: str | None
    lat: float | None
    lon: float | None
    place: Place | None
    camera: Camera | None
    description_status: str | None = Field(description="ok | partial | unparsed, or null when not described")
    caption: Bilingual
    scene: Bilingual
    tags: BilingualList
    objects: list[Thing]
    animals: list[Thing]
    people_count: int
    people: Bilingual
    text: list[str] = Field(description="text visible in the photo (vision model and OCR)")
    time_of_day: str | None
    season: str | None
    weather: str | None
    files: list[FileOut]
    analyses: list[AnalysisOut]
    urls: PhotoUrls
    media: Literal["photo", "video"] = "photo"
    video: VideoOut | None = Field(default=None, description="a video's frames, transcript and codecs")


class KeyframeOut(BaseModel):
    """A frame of a video that the vision model and OCR looked at."""

    t: float = Field(description="seconds from the start")
    caption: Bilingual
    text: list[str] = Field(description="text read in the frame")
    thumbnail: str


class SegmentOut(BaseModel):
    start: float
    end: float
    text: str


class TranscriptOut(BaseModel):
    language: str
    segments: list[SegmentOut]


class VideoOut(BaseModel):
    duration_s: float | None
    container: str | None
    codec: str | None
    audio_codec: str | None
    fps: float | None
    rotation: int | None
    keyframes: list[KeyframeOut]
    transcript: TranscriptOut | None = Field(description="what is said, when the sound was transcribed")


class MomentOut(BaseModel):
    """A time in a video that matched the question."""

    t: float = Field(description="seconds from the start: play from here")
    end: float
    kind: Literal["frame", "speech"]
    text: str = Field(description="what is seen (a frame's caption or text) or said there")
    score: float


class PersonChip(BaseModel):
    """A named person (or the owner) seen in a photo."""

    id: int
    name: str | None
    is_me: bool


class SimilarOut(BaseModel):
    """Near-duplicates of a hit (a burst, edited copies) that matched too: search shows one per group."""

    group_id: int = Field(description="GET /api/duplicates/{group_id} lists the whole group")
    count: int = Field(description="other hits of the group folded into this one")
    photo_ids: list[int] = Field(description="their ids, in rank order")


class Hit(BaseModel):
    photo_id: int
    hash: str
    score: float = Field(description="in [0, 1]")
    path: str | None
    taken_at: str | None
    time_source: str | None
    place: str | None
    caption: dict[str, str]
    why: list[str]
    highlights: dict[str, str]
    width: int | None
    height: int | None
    weak: bool = Field(default=False, description="little evidence: shown because nothing better matched")
    people: list[PersonChip] = Field(default_factory=list, description="named people and the owner in it")
    verified: float | None = Field(
        default=None, description="P(yes) when the vision model checked what the question describes"
    )
    media: Literal["photo", "video"] = "photo"
    duration_s: float | None = Field(default=None, description="a video's length in seconds")
    moments: list[MomentOut] = Field(default_factory=list, description="a video's matching times, best first")
    similar: SimilarOut | None = Field(
        default=None, description="near-duplicates that matched too, folded into this hit (one per group)"
    )
    urls: PhotoUrls


StepKind = Literal["time", "birthday", "weekend", "place", "people", "exclude", "trip", "verify", "planner"]


class Step(BaseModel):
    kind: str = Field(description="what `ignore` takes back (a StepKind), or filter / note (cannot be)")
    text: str


class SearchOut(BaseModel):
    query: str
    semantic: str
    language: str
    understood: list[str]
    total: int
    offset: int
    limit: int
    hits: list[Hit]
    notes: list[str]
    complete: bool = Field(
        default=True, description="false: a relevance list cut short; total counts only the hits returned"
    )
    steps: list[Step] = Field(default_factory=list, description="the lines of `understood` with their kind")


class FeedbackOut(BaseModel):
    id: int
    query: str
    photo_id: int | None
    verdict: str
    created_at: str | None = None
    undone_at: str | None = None


class RootOut(BaseModel):
    id: int
    path: str
    added_at: str
    files: int = 0
    errors: int = 0


class Job(BaseModel):
    id: int
    state: JobState
    stage: str
    done: int
    total: int
    errors: int
    rate: float
    eta_s: float | None
    started_at: float
    finished_at: float | None
    message: str | None
    result: dict[str, Any] | None


class Stats(BaseModel):
    roots: int
    photos: int = Field(description="photos and videos with a file")
    videos: int = 0
    photos_gone: int
    files: int
    files_error: int
    files_gone: int
    analyses: dict[str, dict[str, int]]
    errors_by_kind: dict[str, int]
    last_run: dict[str, Any] | None
    job: Job | None = Field(description="the indexing job running now, if any")


class FaceOut(BaseModel):
    id: int
    photo_id: int
    x: float = Field(description="the face's box, relative (0-1) to the upright photo")
    y: float
    w: float
    h: float
    score: float = Field(description="the detector's confidence")
    person_id: int | None = Field(description="null: nobody yet, or a hidden person")
    name: str | None
    assigned_by: str | None = Field(description="'user': a person's decision, never changed by a run")
    crop: str = Field(description="URL of a square JPEG of the face")


class Cover(BaseModel):
    face_id: int
    photo_id: int
    crop: str


class PersonOut(BaseModel):
    id: int
    name: str | None = Field(description="the name shown (the first of names), null when unnamed")
    names: list[str]
    is_me: bool
    hidden: bool
    faces: int = Field(description="faces on photos in the library")
    photos: int
    cover: Cover | None = Field(description="the face shown for the person")
    created_at: str
    updated_at: str


class PersonDetail(PersonOut):
    face_list: list[FaceOut] = Field(description="up to `limit` of the person's faces")


class ForgetOut(BaseModel):
    person_id: int
    faces_deleted: int


# -- events and trips -------------------------------------------------------------------------------

MAX_EVENTS = 10_000  # events in one list
MAX_EVENT_PHOTOS = 1000  # photo summaries in one event's page


class TripOut(BaseModel):
    """Nights away from home: the events between leaving and coming back."""

    id: int
    start_local: str = Field(description="the first photo's local time")
    end_local: str = Field(description="the last photo's local time")
    days: int = Field(description="local calendar days with photos")
    photos: int
    places: dict[str, list[str]] = Field(
        description="cities_en/zh, regions_en, countries_en/zh, country_codes, abroad_en/zh; most photos 1st"
    )
    title: Bilingual = Field(description="e.g. '2024年国庆 日本：东京、京都' / 'Tokyo and Kyoto, Japan, …'")
    cover_photo_id: int | None
    cover: str | None = Field(description="URL of the cover photo's small thumbnail")


class EventOut(BaseModel):
    """Photos close in time and place: a gap in time or a jump in place starts the next event."""

    id: int
    trip_id: int | None = Field(description="the trip it is part of; null at home or on a day out")
    start_local: str
    end_local: str
    start_utc: str = Field(description="the first photo's time in UTC (local time where no offset is known)")
    end_utc: str
    photos: int
    lat: float | None
    lon: float | None
    home_km: float | None = Field(description="how far from home, in km")
    places: dict[str, list[str]]
    title: Bilingual
    cover_photo_id: int | None
    cover: str | None


class TripDetail(TripOut):
    events: list[EventOut] = Field(description="the trip's events in time order, the first day first")


class EventPhoto(BaseModel):
    """What a photo's card shows."""

    photo_id: int
    hash: str
    taken_at: str | None
    tz_offset: str | None
    time_source: str | None
    width: int | None
    height: int | None
    place: Place | None
    caption: Bilingual
    urls: PhotoUrls
    media: Literal["photo", "video"] = "photo"
    duration_s: float | None = None


class EventDetail(EventOut):
    offset: int = Field(description="where photo_list starts among the event's photos")
    photo_list: list[EventPhoto] = Field(description="up to `limit` of the event's photos, in time order")


class DuplicatePhoto(EventPhoto):
    path: str | None = Field(description="one existing path of the photo")
    files: int = Field(description="how many existing files have exactly this content")


class DuplicateGroup(BaseModel):
    """Near-identical photos (a burst, edited copies, screenshots of the same thing); nothing is deleted."""

    id: int
    size: int
    photos: list[DuplicatePhoto] = Field(description="oldest first")

"""Videos end to end on real files encoded by PyAV: metadata, keyframes at the scene cuts, broken files,
OCR and a real Whisper (the bundled base) on the frames and the sound, search that answers with the second,
the CLI's timestamp and the API's byte ranges."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from smartalbum.api.app import create_app
from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.ingest.decode import register_decoders, thumb_path
from smartalbum.library import Library
from smartalbum.media.video import parse_creation
from smartalbum.pipeline.run import index_library
from smartalbum.search.results import SearchFilters
from smartalbum.vision.base import AnalysisResult
from tests.face_photos import compose, identities
from tests.helpers import make_photo
from tests.video_fixtures import Scene, make_video, speech_wav, truncate, wav_samples

QINGDAO_6709 = "+36.0671+120.3826+010.000/"
RED, GREEN, BLUE, GREY = (200, 30, 30), (30, 160, 40), (20, 40, 200), (90, 90, 90)
SPOKEN_AT = 9.0
LOCAL = "http://127.0.0.1:8765"
DOG = {
    "caption": {"zh": "一只狗在海边的沙滩上奔跑", "en": "A dog running on the sand by the sea"},
    "tags": {"zh": ["狗", "海滩"], "en": ["dog", "beach"]},
    "objects": [{"name": {"zh": "狗", "en": "dog"}, "count": 1}],
    "people": {"count": 0},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("videolib")
    src = base / "videos"
    speech = wav_samples(speech_wav("a red kite flies over the beach", base / "speech.wav"))
    scenes = [Scene(4, RED), Scene(4, GREEN, "WELCOME"), Scene(4, BLUE)]
    tags = {"com.apple.quicktime.creationdate": "2024-07-15T18:20:30+0800"}
    tags["com.apple.quicktime.location.ISO6709"] = QINGDAO_6709
    make_video(src / "beach.mp4", scenes, sound=[(SPOKEN_AT, speech)], tags=tags)
    (src / "copies").mkdir()
    shutil.copy(src / "beach.mp4", src / "copies" / "beach copy.mp4")
    make_video(src / "portrait.mov", [Scene(3, (200, 200, 30))], rotation=90)
    make_video(src / "hum.mp4", [Scene(3, GREY)], tone=True, tags={"creation_time": "2023-01-02T03:04:05Z"})
    make_video(src / "long.mp4", [Scene(100, GREY)], fps=2)
    (src / "garbage.mp4").write_bytes(b"\x00\x01 this is not a video" * 100)
    whole = make_video(base / "cut.mp4", scenes, faststart=False)
    truncate(whole, src / "cut.mp4", 0.6)  # the index (moov) is at the end: lost
    truncate(src / "beach.mp4", src / "cut_early.mp4", 0.5)  # index first: the first half plays
    make_photo(src / "photo.jpg", taken="2024:07:15 10:00:00", seed=3)
    settings = load_settings(base / "library", workers=1, speech_model="bundled:whisper-base")
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, settings, vlm=False, ocr=True, faces=False)
        beach = cat.photo(str((src / "beach.mp4").resolve()))
        frames = cat.keyframes([beach["hash"]])[beach["hash"]]
        # what the vision model would have said about the blue scene (the model itself is tested elsewhere)
        blue = next(f["frame_hash"] for f in frames if f["t"] == 8.0)
        cat.record_analyses("qwen_vl", "test|p1", [AnalysisResult(blue, "ok", data=DOG)])
        ids = {p.name: cat.photo(str(p.resolve()))["id"] for p in src.rglob("*") if _ingested(cat, p)}
    return {"settings": settings, "src": src, "ids": ids, "report": report, "base": base}


def _ingested(cat: Catalog, path: Path) -> bool:
    return path.is_file() and cat.file_error(str(path.resolve())) is None


@pytest.fixture(scope="module")
def lib(built: dict[str, Any]) -> Iterator[Library]:
    library = Library(built["settings"])
    yield library
    library.close()


def _photo(lib: Library, built: dict[str, Any], name: str) -> dict[str, Any]:
    return lib.photo(built["ids"][name])


# -- reading videos -----------------------------------------------------------------------------------


def test_metadata_from_the_container(lib: Library, built: dict[str, Any]) -> None:
    beach = _photo(lib, built, "beach.mp4")
    assert (beach["media"], beach["format"], beach["duration_s"]) == ("video", "mp4", 12.0)
    assert (beach["width"], beach["height"]) == (320, 240)
    # Apple's creation date keeps its own clock and offset; the ISO 6709 point becomes a place
    assert (beach["taken_at"], beach["tz_offset"], beach["time_source"]) == (
        "2024-07-15T18:20:30",
        "+08:00",
        "video_tag",
    )
    assert beach["place_city"] == "Qingdao" and beach["place_city_zh"] == "青岛"
    info = json.loads(beach["video"])
    assert (info["codec"], info["audio_codec"], info["rotation"]) == ("h264", "aac", 0)
    hum = _photo(lib, built, "hum.mp4")
    assert hum["time_source"] == "video_tag" and hum["taken_at"].startswith(("2023-01-02", "2023-01-01"))


def test_rotated_video_is_stored_and_shown_upright(lib: Library, built: dict[str, Any]) -> None:
    portrait = _photo(lib, built, "portrait.mov")
    assert (portrait["width"], portrait["height"]) == (240, 320)
    assert json.loads(portrait["video"])["rotation"] == 90
    with Image.open(lib.thumbnail(portrait["id"], 1024)) as poster:
        assert poster.height > poster.width  # the poster is upright too


def test_keyframes_at_scene_cuts_and_at_least_every_30_seconds(lib: Library, built: dict[str, Any]) -> None:
    assert [f["t"] for f in _photo(lib, built, "beach.mp4")["frames"]] == [0.0, 4.0, 8.0]
    assert [f["t"] for f in _photo(lib, built, "long.mp4")["frames"]] == [0.0, 30.0, 60.0, 90.0]
    beach = _photo(lib, built, "beach.mp4")
    settings: Settings = built["settings"]
    for frame in beach["frames"]:  # each keyframe has its thumbnails and was read by OCR
        assert thumb_path(settings.thumbs_dir, frame["frame_hash"], 256).is_file()
        assert any(a["producer"] == "ocr" for a in frame["analyses"])
    assert [f["cut"] > 20 for f in beach["frames"]] == [False, True, True]


def test_broken_videos_are_error_rows_and_the_rest_goes_on(lib: Library, built: dict[str, Any]) -> None:
    src = built["src"]
    with Catalog(built["settings"].catalog_path) as cat:
        assert cat.file_error(str((src / "garbage.mp4").resolve()))["kind"] == "not_video"
        assert cat.file_error(str((src / "cut.mp4").resolve()))["kind"] == "truncated"
    # cut short with its index first: what was written plays and is indexed
    early = _photo(lib, built, "cut_early.mp4")
    assert early["media"] == "video" and [f["t"] for f in early["frames"]] == [0.0, 4.0]
    assert _photo(lib, built, "photo.jpg")["media"] == "photo"
    assert built["report"].ingest.errors == 2


def test_status_counts_videos(lib: Library) -> None:
    stats = lib.stats()
    assert (stats["photos"], stats["videos"]) == (6, 5)  # beach, portrait, hum, long, cut_early; a photo


def test_a_copy_is_the_same_video(lib: Library, built: dict[str, Any]) -> None:
    assert built["ids"]["beach copy.mp4"] == built["ids"]["beach.mp4"]
    assert len([f for f in _photo(lib, built, "beach.mp4")["files"] if f["status"] == "ok"]) == 2


def test_sound_is_transcribed_with_times_and_silence_gives_no_words(
    lib: Library, built: dict[str, Any]
) -> None:
    speech = next(a for a in _photo(lib, built, "beach.mp4")["analyses"] if a["producer"] == "speech")
    words = " ".join(s["text"] for s in speech["data"]["segments"]).lower()
    assert "kite" in words and "beach" in words
    first = speech["data"]["segments"][0]
    assert SPOKEN_AT - 1.0 <= first["start"] <= SPOKEN_AT + 1.0
    hum = next(a for a in _photo(lib, built, "hum.mp4")["analyses"] if a["producer"] == "speech")
    assert hum["data"]["segments"] == []
    # no sound track: nothing to transcribe, no error
    assert not any(a["producer"] == "speech" for a in _photo(lib, built, "portrait.mov")["analyses"])
    speech_stats = next(a for a in built["report"].analyses if a.producer == "speech")
    assert (speech_stats.ok, speech_stats.errors) == (3, 0)  # beach, hum, cut_early


def test_a_second_index_reads_and_transcribes_nothing_again(built: dict[str, Any]) -> None:
    with Catalog(built["settings"].catalog_path) as cat:
        report = index_library(cat, built["settings"], vlm=False, ocr=True, faces=False)
    assert report.ingest.new + report.ingest.changed == 0
    assert [(a.producer, a.todo) for a in report.analyses] == [("ocr", 0)]  # no speech stage to report


# -- search answers with the second -----------------------------------------------------------------


def _top(lib: Library, query: str, **filters: Any) -> Any:
    results = lib.search(query, SearchFilters(**filters))
    assert results.hits, f"nothing found for {query!r}: {results.notes}"
    return results.hits[0]


def test_text_in_a_frame_finds_the_video_at_that_second(lib: Library, built: dict[str, Any]) -> None:
    hits = lib.search("WELCOME").hits
    # the video and its first half (cut_early.mp4) both show it from 0:04
    assert {h.photo_id for h in hits[:2]} == {built["ids"]["beach.mp4"], built["ids"]["cut_early.mp4"]}
    for hit in hits[:2]:
        assert hit.media == "video" and hit.moments[0]["t"] == 4.0 and hit.moments[0]["kind"] == "frame"
        assert hit.why[0] == "0:04 WELCOME"


def test_a_spoken_word_finds_the_video_where_it_is_said(lib: Library, built: dict[str, Any]) -> None:
    hit = _top(lib, "kite")
    assert hit.photo_id == built["ids"]["beach.mp4"]
    assert hit.moments[0]["kind"] == "speech" and "kite" in hit.moments[0]["text"].lower()
    assert SPOKEN_AT - 1.0 <= hit.moments[0]["t"] <= SPOKEN_AT + 1.0


def test_a_described_frame_is_found_in_chinese(lib: Library, built: dict[str, Any]) -> None:
    hit = _top(lib, "海边的狗")
    assert hit.photo_id == built["ids"]["beach.mp4"]
    assert hit.moments[0]["t"] == 8.0 and "狗" in hit.moments[0]["text"]
    assert hit.caption["zh"]  # the card has a caption


def test_a_video_has_similar_photos_by_its_frames(lib: Library, built: dict[str, Any]) -> None:
    results = lib.similar(built["ids"]["beach.mp4"], limit=5)
    # cut_early.mp4 is its first half: the same frames, so the most similar; never the video itself
    assert results.hits and results.hits[0].photo_id == built["ids"]["cut_early.mp4"]
    assert built["ids"]["beach.mp4"] not in [h.photo_id for h in results.hits]


def test_time_place_and_exclusions_apply_to_videos(lib: Library, built: dict[str, Any]) -> None:
    beach = built["ids"]["beach.mp4"]
    assert beach in [h.photo_id for h in lib.search("2024年7月在青岛的风筝 kite").hits]
    assert beach not in [h.photo_id for h in lib.search("kite in 2023").hits]
    # the video shows WELCOME at 0:04: excluding it excludes the video, whichever moment matched
    assert beach not in [h.photo_id for h in lib.search("kite without WELCOME").hits]
    assert beach in [h.photo_id for h in lib.search("kite", SearchFilters(place="青岛")).hits]


def test_cli_prints_where_to_play_from(built: dict[str, Any]) -> None:
    cli = [sys.executable, "-c", "from smartalbum.cli import run; run()"]
    out = subprocess.run(
        [*cli, "--library", str(built["settings"].library_dir), "search", "WELCOME"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "beach.mp4 @ 0:04" in out and "cut_early.mp4 @ 0:04" in out


# -- the API: moments on hits, frames, byte ranges for the player ------------------------------------


@pytest.fixture(scope="module")
def client(lib: Library) -> Iterator[TestClient]:
    with TestClient(create_app(lib, token=None), base_url=LOCAL) as c:
        yield c


def test_api_hit_has_moments_and_the_detail_has_frames_and_transcript(
    client: TestClient, built: dict[str, Any]
) -> None:
    hit = client.get("/api/search", params={"q": "kite"}).json()["hits"][0]
    assert hit["media"] == "video" and hit["duration_s"] == 12.0
    assert hit["moments"][0]["kind"] == "speech"
    detail = client.get(f"/api/photos/{built['ids']['beach.mp4']}").json()
    assert detail["media"] == "video" and detail["caption"]["en"] == DOG["caption"]["en"]
    assert [f["t"] for f in detail["video"]["keyframes"]] == [0.0, 4.0, 8.0]
    assert detail["video"]["keyframes"][1]["text"] == ["WELCOME"]
    assert "kite" in detail["video"]["transcript"]["segments"][0]["text"].lower()
    event = client.get(f"/api/photos/{built['ids']['beach.mp4']}/event").json()
    cards = client.get(f"/api/events/{event['id']}").json()["photo_list"]
    card = next(c for c in cards if c["photo_id"] == built["ids"]["beach.mp4"])
    assert (card["media"], card["duration_s"], card["caption"]["en"]) == ("video", 12.0, DOG["caption"]["en"])
    frame = client.get(detail["video"]["keyframes"][2]["thumbnail"])
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/photos/{built['ids']['beach.mp4']}/frames/3").status_code == 404


def test_original_answers_byte_ranges(client: TestClient, built: dict[str, Any]) -> None:
    url = f"/api/photos/{built['ids']['beach.mp4']}/original"
    data = (built["src"] / "beach.mp4").read_bytes()
    full = client.get(url)
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes" and full.content == data
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    rest = client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert rest.status_code == 206 and rest.content == data[-10:]
    for malformed in ("bytes=abc-5", "bytes=5-x", "bytes=-", "items=0-5"):  # ignored: the whole file
        whole = client.get(url, headers={"Range": malformed})
        assert whole.status_code == 200 and whole.content == data, malformed
    outside = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{len(data)}"
    # a range for another version of the file is ignored: the whole current file comes back
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == data
    same = client.get(url, headers={"Range": "bytes=0-9", "If-Range": full.headers["etag"]})
    assert same.status_code == 206 and same.content == data[:10]


def test_videos_can_be_left_out(tmp_path: Path, built: dict[str, Any]) -> None:
    settings = load_settings(tmp_path / "lib", workers=1, index_videos=False)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(built["src"].resolve())
        report = index_library(cat, settings, vlm=False, ocr=False, faces=False, speech=False)
    assert report.ingest.seen == 1  # the photo only


# -- live photos and motion photos: one item, the still is the photo, the motion plays ---------------

MOTION_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MotionPhoto="1"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def test_live_and_motion_photos_are_one_item_with_playable_motion(tmp_path: Path) -> None:
    src = tmp_path / "phone"
    make_photo(src / "IMG_0001.JPG", taken="2024:05:01 10:00:00", seed=1)
    live = make_video(src / "IMG_0001.MOV", [Scene(2, RED)]).read_bytes()
    clip = make_video(tmp_path / "clip.mp4", [Scene(2, BLUE)]).read_bytes()
    still = tmp_path / "still.jpg"
    Image.new("RGB", (64, 48), GREEN).save(still, "JPEG", xmp=MOTION_XMP)
    (src / "PXL_motion.jpg").write_bytes(still.read_bytes() + clip)  # how Pixel phones write them
    Image.new("RGB", (64, 48), GREY).save(src / "xmp_only.jpg", "JPEG", xmp=MOTION_XMP)  # says so, has none
    register_decoders()
    Image.new("RGB", (64, 48), GREY).save(src / "xmp_only.heic", "HEIF", xmp=MOTION_XMP)  # its own ftyp box
    make_photo(src / "trip.jpg", seed=2)
    make_video(src / "trip.mp4", [Scene(8, BLUE)])  # a video of its own that shares a name: not a live photo
    settings = load_settings(tmp_path / "library", workers=1)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, settings, vlm=False, ocr=False, faces=False, speech=False)
        assert report.ingest.live_photos == 1
        assert (cat.counts()["photos"], cat.counts()["videos"]) == (6, 1)  # trip.mp4; IMG_0001.MOV is no item
        names = ("IMG_0001.JPG", "PXL_motion.jpg", "xmp_only.jpg", "xmp_only.heic")
        photos = {n: cat.photo(str((src / n).resolve())) for n in names}
        assert {p["media"] for p in photos.values()} == {"photo"}
        assert cat.photo(str((src / "trip.mp4").resolve()))["media"] == "video"
        assert photos["xmp_only.heic"]["motion_offset"] is None
    with Library(settings) as library, TestClient(create_app(library, token=None), base_url=LOCAL) as client:
        live_detail = client.get(f"/api/photos/{photos['IMG_0001.JPG']['id']}").json()
        assert live_detail["urls"]["motion"] and live_detail["width"] == 96  # the still is the photo
        got = client.get(live_detail["urls"]["motion"])
        assert got.status_code == 200 and got.content == live
        assert got.headers["content-type"] == "video/quicktime"
        pxl = client.get(f"/api/photos/{photos['PXL_motion.jpg']['id']}").json()
        inner = client.get(pxl["urls"]["motion"])
        assert inner.status_code == 200 and inner.content == clip  # exactly the MP4 inside the JPEG
        part = client.get(pxl["urls"]["motion"], headers={"Range": "bytes=4-7"})
        assert part.status_code == 206 and part.content == b"ftyp"
        assert part.headers["content-range"] == f"bytes 4-7/{len(clip)}"
        assert pxl["width"] == 64  # the still decodes as ever
        none = client.get(f"/api/photos/{photos['xmp_only.jpg']['id']}").json()
        assert none["urls"]["motion"] is None
        assert client.get(f"/api/photos/{photos['xmp_only.jpg']['id']}/motion").status_code == 404
    # the video taken away: the still stays, without motion
    (src / "IMG_0001.MOV").unlink()
    with Catalog(settings.catalog_path) as cat:
        index_library(cat, settings, vlm=False, ocr=False, faces=False, speech=False)
        still_row = cat.photo(str((src / "IMG_0001.JPG").resolve()))
        assert [f["motion_path"] for f in still_row["files"]] == [None]


def test_faces_in_a_videos_keyframes_make_it_a_video_of_that_person(tmp_path: Path) -> None:
    mum = identities()[0]
    picture, _ = compose([mum], np.random.default_rng(3), size=(640, 480), vary=False)
    src = tmp_path / "videos"
    make_video(src / "party.mp4", [Scene(4, GREY), Scene(4, GREY, picture=picture)], size=(640, 480))
    settings = load_settings(tmp_path / "library", workers=1)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, settings, vlm=False, ocr=False, faces=True, speech=False)
        video = cat.photo(str((src / "party.mp4").resolve()))
        frames = cat.keyframes([video["hash"]])[video["hash"]]
    assert report.faces is not None and report.faces.scanned == 2  # the two keyframes, not the poster again
    with Library(settings) as lib:
        people = lib.people()
        assert len(people) == 1 and (people[0]["faces"], people[0]["photos"]) == (1, 1)
        face = lib.catalog.people.person_faces(people[0]["id"])[0]
        assert face["hash"] == frames[1]["frame_hash"] and face["photo_id"] == video["id"]  # seen at 0:04
        lib.name_person(people[0]["id"], ["Mum", "妈妈"])
        hits = lib.search("妈妈").hits
        assert [h.photo_id for h in hits] == [video["id"]] and hits[0].people[0]["name"] == "Mum"


def test_creation_times_keep_their_own_clock_or_take_this_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        # an iPhone in London writes +0000 with its own clock: kept as it is
        assert parse_creation("2024-07-15T10:00:00+0000", own_clock=True) == ("2024-07-15T10:00:00", "+00:00")
        # an encoder's UTC time: shown in this machine's zone
        assert parse_creation("2024-07-15T10:00:00.000000Z") == ("2024-07-15T18:00:00", "+08:00")
        assert parse_creation("2024-07-15T18:20:30+0800") == ("2024-07-15T18:20:30", "+08:00")
        assert parse_creation("1904-01-01T00:00:00Z") is None  # an unset clock
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_long_sound_tracks_are_not_transcribed(tmp_path: Path, built: dict[str, Any]) -> None:
    src = tmp_path / "v"
    src.mkdir()
    shutil.copy(built["src"] / "beach.mp4", src / "beach.mp4")
    settings = load_settings(
        tmp_path / "lib", workers=1, speech_model="bundled:whisper-base", transcribe_max_s=5
    )
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, settings, vlm=False, ocr=False, faces=False)
        beach = cat.photo(str((src / "beach.mp4").resolve()))
        assert report.analyses == [] and cat.analyses(beach["hash"]) == []  # 12 s > 5 s: not decoded

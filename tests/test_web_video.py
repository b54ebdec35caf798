"""Videos in a real browser (Playwright driving Debian's Chromium) against the real server: a generated H.264
clip whose middle scene shows WELCOME (read by OCR on its keyframes) and whose transcript says "kite" at 0:09
(stored as the speech stage would store it, so no speech model runs here), next to a painted photo.

A search opens the video at the second that matched and it plays from there (the player fetches the original
by byte ranges); the card shows the poster's length; the strip and the transcript seek the player; a photo's
detail view is still a picture. Screenshots go to .test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from smartalbum.api.app import create_app
from smartalbum.catalog import Catalog
from smartalbum.library import Library
from smartalbum.pipeline.run import index_library
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.description import SPEECH_PRODUCER
from tests.test_web_browser import SHOTS, browser, open_page, run_search  # noqa: F401 (browser: a fixture)
from tests.video_fixtures import Scene, make_video
from tests.web_fixtures import INDEX_OPTIONS, TOKEN, describe, live_server, make_settings, write_photos

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

WELCOME_AT, KITE_AT, LAST_FRAME_AT = 4.0, 9.0, 8.0
SAID = "A red kite flies over the beach."
VIDEO = "#detail-video"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("web-video")
    settings = make_settings(base)
    src = base / "photos"
    photos = write_photos(src, ["sunset_beach", "cat"], painted=True)
    make_video(src / "cat.MOV", [Scene(2, (180, 140, 90))])  # cat.jpg is a live photo: its video beside it
    scenes = [Scene(4, (200, 30, 30)), Scene(4, (30, 160, 40), "WELCOME"), Scene(4, (20, 40, 200))]
    make_video(src / "beach.mp4", scenes, tone=True)  # H.264 + AAC, 12 s, keyframes at 0, 4 and 8 s
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        index_library(cat, settings, vlm=False, ocr=True, faces=False, speech=False)
        video = cat.photo(str((src / "beach.mp4").resolve()))
        photo = cat.photo(str(photos["sunset_beach"].resolve()))
        live = cat.photo(str(photos["cat"].resolve()))
        describe(cat, settings, {"sunset_beach": photo["hash"], "cat": live["hash"]})
        transcript = {
            "text": SAID,
            "language": "en",
            "segments": [{"start": KITE_AT, "end": KITE_AT + 2.5, "text": SAID}],
            "seconds": 12.0,
        }
        cat.record_analyses(SPEECH_PRODUCER, "test", [AnalysisResult(video["hash"], "ok", data=transcript)])
    library = Library(settings, index_options=INDEX_OPTIONS)
    library.search("warm up")  # load the embedding model and index what was recorded, before the page waits
    yield {"library": library, "video": video["id"], "photo": photo["id"], "live": live["id"]}
    library.close()


@pytest.fixture(scope="module")
def server(built: dict[str, Any]) -> Iterator[str]:
    with live_server(create_app(built["library"], token=TOKEN)) as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:  # noqa: F811
    p = open_page(browser, server)
    yield p
    assert p.js_errors == [], p.js_errors  # no script errors, no CSP violations, no failed requests
    p.context.close()


def player(page: Any, prop: str) -> Any:
    return page.evaluate(f"document.querySelector('{VIDEO}').{prop}")


def wait_at(page: Any, seconds: float) -> None:
    """The player has seeked to `seconds` (and may have played a little past it)."""
    page.wait_for_function(
        f"""() => {{ const v = document.querySelector('{VIDEO}');
            return !v.seeking && v.currentTime >= {seconds - 0.5} && v.currentTime < {seconds + 0.5}; }}"""
    )


def test_a_hit_plays_from_the_second_it_matched(page: Any, built: dict[str, Any]) -> None:
    run_search(page, "WELCOME")
    card = page.locator(f'.card[data-photo-id="{built["video"]}"]')
    expect(card).to_be_visible()
    expect(card.locator(".video-duration")).to_have_text("0:12")  # the poster's corner
    expect(card.locator(".moment")).to_contain_text("▶ 0:04")
    expect(card.locator(".moment")).to_contain_text("WELCOME")
    assert (
        card.locator(".thumb img").get_attribute("src") == f"/api/photos/{built['video']}/thumbnail?size=256"
    )
    page.wait_for_function("() => document.querySelector('.card img').naturalWidth > 0")
    page.screenshot(path=SHOTS / "video-card.png")

    card.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    video = page.locator(VIDEO)
    expect(video).to_be_visible()
    expect(page.locator("#detail-img")).to_be_hidden()
    assert video.get_attribute("preload") == "metadata" and video.get_attribute("controls") is not None
    assert video.get_attribute("poster") == f"/api/photos/{built['video']}/thumbnail?size=1024"
    assert video.get_attribute("src").startswith(f"/api/photos/{built['video']}/original")
    # it starts at 0:04 and plays on from there
    page.wait_for_function(f"() => document.querySelector('{VIDEO}').played.length > 0")
    assert abs(player(page, "played.start(0)") - WELCOME_AT) < 0.5
    page.wait_for_function(f"() => document.querySelector('{VIDEO}').currentTime > {WELCOME_AT + 0.4}")
    assert player(page, "readyState") >= 2 and player(page, "error") is None

    strip = page.locator("#video-strip .strip-item")
    expect(strip).to_have_count(3)  # the keyframes at 0:00, 0:04, 0:08
    expect(strip.locator(".strip-time")).to_have_text(["0:00", "0:04", "0:08"])
    expect(page.locator("#video-strip .strip-item.match")).to_have_text("0:04")  # what the search matched
    expect(page.locator("#detail-fields")).to_contain_text(SAID)  # the transcript
    page.screenshot(path=SHOTS / "video-detail.png")

    strip.nth(2).click()  # the keyframe at 0:08
    wait_at(page, LAST_FRAME_AT)
    expect(strip.nth(2)).to_have_class(re.compile(r"\bcurrent\b"))
    page.locator(".transcript-line").first.click()  # a line of what is said
    wait_at(page, KITE_AT)

    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    # stopped, nothing more fetched (the dialog's close event comes a moment after it is hidden)
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('{VIDEO}'); return v.paused && !v.src; }}"
    )


def test_a_spoken_word_opens_at_its_line_in_chinese(browser: Any, server: str, built: dict[str, Any]) -> None:  # noqa: F811
    page = open_page(browser, server, locale="zh-CN")
    run_search(page, "kite")
    card = page.locator(f'.card[data-photo-id="{built["video"]}"]')
    expect(card.locator(".moment")).to_contain_text("▶ 0:09")
    expect(card.locator(".video-badge")).to_have_attribute("title", "视频，时长 0:12")
    card.click()
    page.wait_for_function(f"() => document.querySelector('{VIDEO}').played.length > 0")
    assert abs(player(page, "played.start(0)") - KITE_AT) < 0.5
    expect(page.locator("#detail-fields")).to_contain_text("语音内容")
    expect(page.locator(".transcript-line.match")).to_contain_text("kite")
    speech = page.locator("#video-strip .strip-item.speech.match")  # said, not seen: an item of its own
    expect(speech).to_contain_text("0:09")
    speech.click()
    wait_at(page, KITE_AT)
    page.screenshot(path=SHOTS / "video-detail-zh.png")
    assert page.js_errors == []
    page.context.close()


def test_a_photo_is_still_a_picture(page: Any, built: dict[str, Any]) -> None:
    run_search(page, "sunset beach")
    card = page.locator(f'.card[data-photo-id="{built["photo"]}"]')
    expect(card.locator(".video-badge")).to_have_count(0)
    card.click()
    expect(page.locator("#detail-img")).to_be_visible()
    expect(page.locator("#detail-img")).to_have_attribute(
        "src", f"/api/photos/{built['photo']}/thumbnail?size=1024"
    )
    expect(page.locator("#detail-fields")).to_contain_text("A sunset at the beach")
    assert page.locator("#detail-video-box").count() == 0 or page.locator("#detail-video-box").is_hidden()


def test_a_live_photo_plays_its_motion_on_request(page: Any, built: dict[str, Any]) -> None:
    run_search(page, "cat")
    card = page.locator(f'.card[data-photo-id="{built["live"]}"]')
    expect(card.locator(".video-badge")).to_have_count(0)  # a photo, not a video
    card.click()
    expect(page.locator("#detail-img")).to_be_visible()
    page.locator(".motion-play").click()
    clip = page.locator("video.motion")
    expect(clip).to_have_attribute("src", f"/api/photos/{built['live']}/motion")
    page.wait_for_function("() => document.querySelector('video.motion').readyState >= 2")
    page.screenshot(path=SHOTS / "live-photo.png")


def test_an_events_page_shows_the_video_as_a_video(page: Any, built: dict[str, Any]) -> None:
    run_search(page, "WELCOME")
    page.locator(f'.card[data-photo-id="{built["video"]}"]').click()
    link = page.locator("#detail-event")
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("#detail")).to_be_hidden()
    card = page.locator(f'#grid .card[data-photo-id="{built["video"]}"]')
    expect(card.locator(".video-badge")).to_contain_text("0:12")  # the event's list says it is a video
    card.click()
    expect(page.locator("#detail-video")).to_be_visible()

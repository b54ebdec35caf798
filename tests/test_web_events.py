"""Trips and events in a real browser (Playwright driving Debian's Chromium) against the real server over the
generated life of tests/trip_library.py (tests/event_fixtures.py), indexed for real.

The Trips page lists the seven trips newest first with covers, titles, dates, places and counts; the Japan
trip shows its six days; a day shows its photos in the grid and leads back to the trip; a photo found by a
search says which event it is in and opens that event's photos; the page in Chinese. Screenshots go to
.test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from smartalbum.api.app import create_app
from tests.event_fixtures import Life, build_life
from tests.test_web_browser import SHOTS, browser, card_ids, open_page, run_search  # noqa: F401 (a fixture)
from tests.web_fixtures import TOKEN, live_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

JAPAN_EN = "Tokyo and Kyoto, Japan, National Day 2024"


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    built = build_life(tmp_path_factory.mktemp("web-events"))
    built.library.search("warm up")  # load the embedding model before the page waits on it
    yield built
    built.library.close()


@pytest.fixture(scope="module")
def server(life: Life) -> Iterator[str]:
    with live_server(create_app(life.library, token=TOKEN)) as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:  # noqa: F811
    p = open_page(browser, server)
    yield p
    assert p.js_errors == [], p.js_errors  # no script errors, no CSP violations, no failed requests
    p.context.close()


def japan_id(life: Life) -> int:
    return next(t["id"] for t in life.library.trips() if "JP" in t["places"]["country_codes"])


def test_trips_then_a_trip_then_a_day(page: Any, life: Life) -> None:
    page.click("#trips-button")
    expect(page.locator("#trips-view")).to_be_visible()
    expect(page.locator("#welcome")).to_be_hidden()
    assert page.url.endswith("/?view=trips")
    cards = page.locator(".trip-card")
    expect(cards).to_have_count(7)
    expect(page.locator("#trips-status")).to_have_text("7 trips")
    expect(page.locator(".trip-card .trip-title")).to_have_text(
        [
            "Hong Kong, November 2026", "Qingdao, July 2026", "Chengdu, National Day 2025",
            "Paris, Le Chesnay and Versailles, France, May 2025", "Hangzhou, January 2025", JAPAN_EN,
            "Qingdao, July 2024",
        ]
    )  # fmt: skip
    jp = page.locator(f'.trip-card[data-trip-id="{japan_id(life)}"]')
    expect(jp.locator(".trip-dates")).to_have_text("2024-10-01 – 2024-10-06")
    expect(jp.locator(".trip-places")).to_have_text("Tokyo, Kyoto · Japan")
    expect(jp.locator(".trip-count")).to_have_text("24 photos · 6 days")
    # every cover is a thumbnail that loaded (through the session cookie)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.trip-card img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    cover = jp.locator("img").get_attribute("src")
    assert cover is not None and int(cover.split("/")[3]) in life.trip_ids("japan24")
    page.screenshot(path=SHOTS / "trips.png")

    jp.click()
    expect(page.locator("#trips-title")).to_have_text(JAPAN_EN)
    assert page.url.endswith(f"/?trip={japan_id(life)}")
    events = page.locator(".event-card")
    expect(events).to_have_count(6)
    expect(events.locator(".event-day")).to_have_text([f"Day {n}" for n in range(1, 7)])
    expect(events.locator(".trip-title")).to_have_text(
        ["Tokyo, Japan, National Day 2024"] * 3 + ["Kyoto, Japan, National Day 2024"] * 3
    )
    expect(events.first.locator(".trip-dates")).to_have_text(
        "2024-10-01 18:30 – 10-02 00:20"
    )  # past midnight
    expect(events.locator(".trip-count")).to_have_text(["4 photos"] * 6)
    expect(page.locator("#trips-status")).to_have_text(
        "2024-10-01 – 2024-10-06 · 6 days · 6 events · 24 photos"
    )
    page.screenshot(path=SHOTS / "trip-japan.png")

    events.nth(4).click()  # day 5, in Kyoto
    expect(page.locator("#trips-view")).to_be_hidden()
    expect(page.locator("#grid .card")).to_have_count(4)
    assert card_ids(page) == life.event_ids("japan24-d5")  # the day's photos, in time order
    expect(page.locator("#status")).to_have_text("Kyoto, Japan, National Day 2024 · 4 photos")
    expect(page.locator("#understood li").first).to_contain_text("2024-10-05")
    expect(page.locator("#grid .card .score")).to_have_count(0)  # no match score: nothing was searched
    expect(page.locator("#grid .card .time").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    assert re.search(r"/\?event=\d+$", page.url)
    page.wait_for_function("() => [...document.querySelectorAll('#grid img')].every(i => i.naturalWidth > 0)")
    back = page.locator("#results-back")
    expect(back).to_have_text(f"← {JAPAN_EN}")
    page.screenshot(path=SHOTS / "event-photos.png")

    # a photo of the day opens in the detail view, and the arrows stay inside the day
    page.locator("#grid .card").first.click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-title")).to_have_text(re.compile("temple|shrine gate", re.I))
    expect(page.locator("#detail-event")).to_have_text("In event: Kyoto, Japan, National Day 2024")
    page.keyboard.press("Escape")

    back.click()
    expect(page.locator(".event-card")).to_have_count(6)
    page.click("#trips-back")
    expect(page.locator(".trip-card")).to_have_count(7)


def test_a_searched_photo_leads_to_its_event(page: Any, life: Life) -> None:
    run_search(page, "giant panda eating bamboo")
    pandas = {life.ids[s.name] for s in life.shots if "panda" in s.en}
    first = page.locator("#grid .card").first
    photo = int(first.get_attribute("data-photo-id") or 0)
    assert photo in pandas
    shot = next(s for s in life.shots if life.ids[s.name] == photo)
    first.click()
    link = page.locator("#detail-event")
    expect(link).to_be_visible()
    expect(link).to_have_text("In event: Chengdu, National Day 2025")
    page.screenshot(path=SHOTS / "detail-event-link.png")
    link.click()
    expect(page.locator("#detail")).to_be_hidden()
    expect(page.locator("#grid .card")).to_have_count(len(life.event_ids(shot.event)))
    assert card_ids(page) == life.event_ids(shot.event)
    assert photo in card_ids(page)
    expect(page.locator("#q")).to_have_value("")  # no longer a search
    expect(page.locator("#results-back")).to_have_text("← Chengdu, National Day 2025")
    page.locator("#results-back").click()
    expect(page.locator("#trips-title")).to_have_text("Chengdu, National Day 2025")
    expect(page.locator(".event-card")).to_have_count(4)


def test_trips_in_chinese_from_the_address(browser: Any, server: str, life: Life) -> None:  # noqa: F811
    page = open_page(browser, server, locale="zh-CN")
    page.goto(f"{page.url}?trip={japan_id(life)}")  # the address opens the trip
    expect(page.locator("#trips-button")).to_have_text("旅行")
    expect(page.locator("#trips-title")).to_have_text("2024年国庆 日本：东京、京都")
    events = page.locator(".event-card")
    expect(events).to_have_count(6)
    expect(events.locator(".event-day")).to_have_text([f"第 {n} 天" for n in range(1, 7)])
    expect(events.first.locator(".trip-title")).to_have_text("2024年国庆 日本：东京")
    expect(page.locator("#trips-sub")).to_have_text("东京、京都 · 日本")
    page.click("#trips-back")
    expect(page.locator(".trip-card")).to_have_count(7)
    expect(page.locator(".trip-card .trip-title").first).to_have_text("2026年11月 香港")
    expect(page.locator(".trip-card .trip-count").first).to_have_text("12 张照片 · 3 天")
    page.screenshot(path=SHOTS / "trips-zh.png")
    page.locator(".trip-card").first.click()
    page.locator(".event-card").first.click()
    expect(page.locator("#grid .card")).to_have_count(4)
    page.locator("#grid .card").first.click()
    expect(page.locator("#detail-event")).to_have_text(re.compile(r"^所属事件：2026年11月 香港$"))
    assert page.js_errors == [], page.js_errors
    page.context.close()

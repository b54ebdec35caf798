"""How a question was read, as chips above the results, in a real browser (Playwright driving Debian's
Chromium) against the real server over the generated life of tests/trip_library.py (tests/event_fixtures.py).

"上次旅行 周末" is read as two steps (weekend, the last trip); the × on the trip chip searches again without
it (ignore=trip in the address bar, every weekend photo of all time), the struck-through chip's "undo" puts
it back, a reload keeps what was taken back, a new question starts afresh, a filter's chip has no ×, and the
buttons speak Chinese in Chinese; a photo the vision model checked shows its P(yes) quietly on its card.
The screenshot goes to .test-artifacts/screenshots/steps.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import expect

from smartalbum.api.app import create_app
from smartalbum.search.results import SearchFilters
from tests.event_fixtures import Life, build_life
from tests.test_web_browser import SHOTS, browser, card_ids, open_page, run_search  # noqa: F401 (a fixture)
from tests.web_fixtures import TOKEN, live_server

QUESTION = "上次旅行 周末"


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    built = build_life(tmp_path_factory.mktemp("web-steps"))
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


def ignored(page: Any) -> list[str]:
    return parse_qs(urlsplit(page.url).query).get("ignore", [])


def status_for(n: int, q: str = QUESTION) -> str:
    return f"{n} photos for “{q}”"


def test_take_a_step_back_and_put_it_back(page: Any, life: Life, server: str) -> None:
    weekends = {life.ids[s.name] for s in life.shots if s.local.weekday() >= 5}
    hongkong = life.trip_ids("hongkong26")
    in_trip = weekends & hongkong
    assert 0 < len(in_trip) < len(hongkong) and len(in_trip) < 30 < len(weekends)  # all fit on one page

    run_search(page, QUESTION)
    chips = page.locator("#understood li")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_have_attribute("data-kind", "weekend")
    expect(chips.nth(0)).to_contain_text("周末")
    expect(chips.nth(1)).to_have_attribute("data-kind", "trip")
    expect(chips.nth(1)).to_contain_text("上次旅行 →")
    expect(chips.nth(1)).to_contain_text("香港")
    expect(page.locator("#understood .step-remove")).to_have_count(2)
    expect(chips.nth(1).get_by_role("button", name="remove")).to_be_visible()
    expect(page.locator("#status")).to_have_text(status_for(len(in_trip)))
    first = card_ids(page)
    assert set(first) == in_trip
    assert ignored(page) == []

    # × on the trip: every weekend photo, the trip's chip struck through with undo
    chips.nth(1).get_by_role("button", name="remove").click()
    expect(page.locator("#status")).to_have_text(status_for(len(weekends)))
    assert ignored(page) == ["trip"]
    assert parse_qs(urlsplit(page.url).query)["q"] == [QUESTION]
    removed = page.locator("#understood li.removed")
    expect(removed).to_have_count(1)
    expect(removed).to_have_attribute("data-kind", "trip")
    expect(removed.locator("s")).to_contain_text("上次旅行 →")
    expect(removed.get_by_role("button", name="undo")).to_be_visible()
    expect(page.locator("#understood li:not(.removed)")).to_have_count(1)
    expect(page.locator("#understood li:not(.removed)")).to_have_attribute("data-kind", "weekend")
    shown = card_ids(page)
    assert len(shown) == 30 and set(shown) <= weekends and not set(shown) <= hongkong
    api = life.library.search(QUESTION, SearchFilters(ignore=("trip",)), limit=30)
    assert api.total == len(weekends) and shown == [h.photo_id for h in api.hits]
    page.screenshot(path=str(SHOTS / "steps.png"))

    # a reload keeps what was taken back
    page.reload()
    expect(page.locator("#status")).to_have_text(status_for(len(weekends)))
    assert ignored(page) == ["trip"]
    expect(page.locator("#understood li.removed")).to_have_attribute("data-kind", "trip")
    assert card_ids(page) == shown

    # undo: the first answer again, nothing ignored
    page.locator("#understood li.removed").get_by_role("button", name="undo").click()
    expect(page.locator("#status")).to_have_text(status_for(len(in_trip)))
    expect(page.locator("#understood li.removed")).to_have_count(0)
    expect(page.locator("#understood li")).to_have_count(2)
    assert ignored(page) == []
    assert card_ids(page) == first

    # take both back: nothing left to look for; then a new question starts with nothing taken back
    page.locator('#understood li[data-kind="weekend"] .step-remove').click()
    expect(page.locator("#understood li.removed")).to_have_count(1)
    assert ignored(page) == ["weekend"]
    page.locator('#understood li[data-kind="trip"] .step-remove').click()
    expect(page.locator("#understood li.removed")).to_have_count(2)
    assert ignored(page) == ["weekend", "trip"]
    expect(page.locator("#status")).to_contain_text("No photos match")
    expect(page.locator("#grid .card")).to_have_count(0)
    run_search(page, "周末")
    expect(page.locator("#status")).to_have_text(status_for(len(weekends), "周末"))
    expect(page.locator("#understood li.removed")).to_have_count(0)
    expect(page.locator("#understood li")).to_have_count(1)
    expect(page.locator("#understood li")).to_have_attribute("data-kind", "weekend")
    assert ignored(page) == [] and "ignore" not in page.url


def test_a_filter_cannot_be_taken_back_and_chinese_words(browser: Any, server: str, life: Life) -> None:  # noqa: F811
    page = open_page(browser, server, locale="zh-CN")
    page.goto(f"{server}/?q={quote(QUESTION)}&after=2000-01-01&ignore=trip&ignore=nonsense")
    expect(page.locator("#status")).not_to_have_text(re.compile("Searching|正在搜索"))
    expect(page.locator("#understood li.removed")).to_have_attribute("data-kind", "trip")
    expect(page.locator("#understood li.removed s")).to_have_text(
        "旅行"
    )  # its words are unknown after a reload
    expect(page.locator("#understood li.removed").get_by_role("button", name="撤销")).to_be_visible()
    assert ignored(page) == ["trip"]  # what the server does not know is dropped
    step = page.locator('#understood li[data-kind="filter"]')
    expect(step).to_have_count(1)
    expect(step).to_contain_text("2000-01-01")
    expect(step.locator("button")).to_have_count(0)
    weekend = page.locator('#understood li[data-kind="weekend"]')
    expect(weekend.get_by_role("button", name="去掉")).to_be_visible()
    weekend.get_by_role("button", name="去掉").click()
    expect(page.locator("#understood li.removed")).to_have_count(2)
    assert ignored(page) == ["trip", "weekend"]
    assert parse_qs(urlsplit(page.url).query)["after"] == ["2000-01-01"]
    assert page.js_errors == [], page.js_errors
    page.context.close()


def test_a_checked_photo_says_so_quietly(page: Any) -> None:
    # this library has no vision model: the answer is given a check as the API would send it
    def checked(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        data["hits"][0]["verified"] = 0.87
        data["hits"][1]["verified"] = 0.2
        route.fulfill(response=response, json=data)

    page.route(re.compile(r"/api/search\?"), checked)
    run_search(page, QUESTION)
    badges = page.locator("#grid .verified")
    expect(badges).to_have_count(2)
    expect(badges.nth(0)).to_have_text("✓ 87%")
    expect(badges.nth(0)).to_have_class(re.compile(r"\byes\b"))
    expect(badges.nth(0)).to_have_attribute("title", re.compile("vision model: 87%"))
    expect(badges.nth(1)).to_have_text("? 20%")
    expect(page.locator("#grid .card").nth(0).locator(".verified")).to_have_count(1)

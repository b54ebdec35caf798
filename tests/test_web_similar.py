"""Near-duplicates in a real browser (Playwright driving Debian's Chromium) against the real server: a search
shows one card for a burst and its export with "+4 similar"; clicking it opens the four right after that card
(and the detail view steps through them), clicking again folds them back; in Chinese the button says
另有 4 张相似. Screenshots go to .test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from smartalbum.api.app import create_app
from tests.similar_fixtures import TRAP, SimilarLibrary, build_similar_library
from tests.test_web_browser import SHOTS, browser, card_ids, open_page, run_search  # noqa: F401 (a fixture)
from tests.web_fixtures import TOKEN, live_server


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimilarLibrary]:
    built = build_similar_library(tmp_path_factory.mktemp("web-similar"))
    built.library.search("warm up")  # load the embedding model before the page waits on it
    yield built
    built.library.close()


@pytest.fixture(scope="module")
def server(lib: SimilarLibrary) -> Iterator[str]:
    with live_server(create_app(lib.library, token=TOKEN)) as url:
        yield url


def test_plus_n_similar_opens_the_group_after_its_card_and_folds_it_back(
    browser: Any,  # noqa: F811
    server: str,
    lib: SimilarLibrary,
) -> None:
    page = open_page(browser, server)
    run_search(page, "beach umbrellas")
    shown = card_ids(page)
    in_group = [pid for pid in shown if pid in lib.group]
    assert len(in_group) == 1 and lib.ids[TRAP] in shown  # one card for the group; the other beach apart
    toggle = page.locator(".similar-toggle")
    expect(toggle).to_have_count(1)
    expect(toggle).to_have_text("+4 similar")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    page.screenshot(path=str(SHOTS / "similar-folded.png"))
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(toggle).to_have_text("Hide similar")
    expect(page.locator(".similar-member .card")).to_have_count(4)
    opened = card_ids(page)
    at = opened.index(in_group[0])
    assert sorted(opened[at : at + 5]) == sorted(lib.group)  # the four right after their card
    assert [pid for pid in opened if pid not in lib.group] == [pid for pid in shown if pid not in lib.group]
    page.screenshot(path=str(SHOTS / "similar-open.png"))
    # the detail view steps from the group's card into the others
    page.locator(f'.card[data-photo-id="{opened[at + 1]}"]').click()
    expect(page.locator("#detail")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#detail-img")).to_have_attribute(
        "src", f"/api/photos/{opened[at + 2]}/thumbnail?size=1024"
    )
    page.keyboard.press("Escape")
    toggle.click()
    expect(page.locator(".similar-member")).to_have_count(0)
    expect(toggle).to_have_text("+4 similar")
    assert card_ids(page) == shown
    assert page.js_errors == [], page.js_errors
    page.context.close()


def test_the_button_speaks_chinese(browser: Any, server: str) -> None:  # noqa: F811
    page = open_page(browser, server, locale="zh-CN")
    run_search(page, "海滩 遮阳伞")
    expect(page.locator(".similar-toggle")).to_have_text("另有 4 张相似")
    page.locator(".similar-toggle").click()
    expect(page.locator(".similar-toggle")).to_have_text("收起相似照片")
    expect(page.locator(".similar-member .card")).to_have_count(4)
    assert page.js_errors == [], page.js_errors
    page.context.close()

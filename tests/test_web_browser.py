"""The web page in a real browser (Playwright driving Debian's Chromium) against the real server in a thread.

A small painted library (sunset beach, cat, receipt, dog in snow, city at night) with descriptions stored
through the catalog code. Screenshots go to .test-artifacts/screenshots/; one is the README's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartalbum.api.app import create_app
from tests.helpers import REPO, make_photo
from tests.web_fixtures import TOKEN, BuiltLibrary, build_library, live_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=20_000)

CHROMIUM = os.environ.get("SMARTALBUM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = REPO / ".test-artifacts" / "screenshots"
README_SHOT = REPO / "docs" / "screenshot-search.png"


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> BuiltLibrary:
    built = build_library(tmp_path_factory.mktemp("web"), painted=True)
    built.library.search("warm up")  # load the embedding model once, before the page waits on it
    return built


@pytest.fixture(scope="module")
def server(lib: BuiltLibrary) -> Iterator[str]:
    with live_server(create_app(lib.library, token=TOKEN)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: `make test` installs it (apt chromium)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser: Any, server: str, locale: str = "en-US", scheme: str = "light") -> Any:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server}/?token={TOKEN}")  # sets the session cookie, then redirects to a clean "/"
    expect(page).to_have_url(f"{server}/")
    page.js_errors = errors
    return page


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    p = open_page(browser, server)
    yield p
    assert p.js_errors == [], p.js_errors  # no script errors, no CSP violations, no failed requests
    p.context.close()


def run_search(page: Any, query: str) -> None:
    page.fill("#q", query)
    page.press("#q", "Enter")
    expect(page.locator("#status")).not_to_have_text(re.compile("Searching|正在搜索"))


def card_ids(page: Any) -> list[int]:
    return [int(x) for x in page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.photoId)")]


def test_slash_focuses_the_search_box(page: Any) -> None:
    page.locator("body").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("cat")
    expect(page.locator("#q")).to_have_value("cat")  # the "/" itself was not typed


def test_search_in_english(page: Any, lib: BuiltLibrary) -> None:
    run_search(page, "sunset beach")
    first = page.locator(".card").first
    expect(first).to_be_visible()
    assert card_ids(page)[0] == lib.ids["sunset_beach"]
    img = first.locator("img")
    assert img.get_attribute("loading") == "lazy"
    assert img.get_attribute("src") == f"/api/photos/{lib.ids['sunset_beach']}/thumbnail?size=256"
    page.wait_for_function(
        "() => document.querySelector('.card img').naturalWidth > 0"
    )  # loaded via the cookie
    expect(first.locator(".score")).to_have_text(re.compile(r"^\d{1,3}%$"))
    expect(first.locator(".why")).to_contain_text("sunset")
    expect(page.locator("#status")).to_contain_text("sunset beach")
    assert "q=sunset+beach" in page.url  # a reload or a bookmark shows the same search
    page.screenshot(path=SHOTS / "search-en.png")


def test_search_in_chinese_open_detail_with_the_keyboard(
    browser: Any, server: str, lib: BuiltLibrary
) -> None:
    page = open_page(browser, server, locale="zh-CN")
    # follows the browser's language
    expect(page.locator("#search-form button[type=submit]")).to_have_text("搜索")
    expect(page.locator("#examples .chip").first).to_have_text("海边的日落")
    run_search(page, "猫")
    assert card_ids(page)[0] == lib.ids["cat"]
    page.press("#q", "ArrowDown")  # from the search box into the results
    assert page.evaluate("document.activeElement.dataset.photoId") == str(lib.ids["cat"])
    page.keyboard.press("Enter")
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("一只橘猫躺在沙发上睡觉")
    expect(detail).to_contain_text("An orange cat sleeping on a sofa")
    expect(detail).to_contain_text("宠物")  # tags
    expect(detail).to_contain_text("EXIF 拍摄时间")  # the date's source
    expect(detail).to_contain_text("Canon EOS R6")
    expect(detail.locator("#detail-img")).to_have_attribute(
        "src", f"/api/photos/{lib.ids['cat']}/thumbnail?size=1024"
    )
    expect(detail.locator("#detail-original")).to_have_attribute(
        "href", f"/api/photos/{lib.ids['cat']}/original"
    )
    page.wait_for_function("() => document.querySelector('#detail-img').naturalWidth > 0")
    page.screenshot(path=SHOTS / "detail-zh.png")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    page.click("#lang-button")  # switch to English
    expect(page.locator("#search-form button[type=submit]")).to_have_text("Search")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.js_errors == []
    page.context.close()


def test_not_this_hides_the_photo_now_and_after_a_reload(page: Any, lib: BuiltLibrary) -> None:
    dog = lib.ids["snow_dog"]
    run_search(page, "dog in the snow")
    assert dog in card_ids(page)
    page.locator(f'.card[data-photo-id="{dog}"]').click()
    expect(page.locator("#detail")).to_contain_text("A puppy running in the snow")
    page.click("#detail-bad")
    expect(page.locator(f'.card[data-photo-id="{dog}"]')).to_have_count(0)  # gone at once
    expect(page.locator("#toast")).to_contain_text("dog in the snow")
    page.screenshot(path=SHOTS / "not-this.png")
    page.reload()
    expect(page.locator("#status")).not_to_have_text(re.compile("Searching|^$"))
    assert dog not in card_ids(page)  # and for that query from now on
    assert page.locator("#q").input_value() == "dog in the snow"


def test_grid_keyboard_and_filters(page: Any, lib: BuiltLibrary) -> None:
    run_search(page, "photos since 2022")
    expect(page.locator(".card")).to_have_count(5)
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].every(i => i.naturalWidth > 0)")
    page.mouse.move(0, 0)
    if not README_SHOT.exists() or os.environ.get("SMARTALBUM_README_SCREENSHOT"):  # not rewritten every run
        README_SHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=README_SHOT)
    page.screenshot(path=SHOTS / "search-results.png", full_page=True)

    focused = "() => document.activeElement.dataset.index"
    page.locator(".card").first.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == "1"
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == "0"
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_be_visible()
    first_title = page.locator("#detail-title").inner_text()
    page.keyboard.press("ArrowRight")  # next photo inside the detail view
    expect(page.locator("#detail-title")).not_to_have_text(first_title)
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()

    page.click("#filters summary")
    page.fill("#f-place", "Qingdao")
    page.press("#f-place", "Enter")  # a change of filter runs the search again
    expect(page.locator(".card")).to_have_count(1)
    assert card_ids(page) == [lib.ids["sunset_beach"]]
    expect(page.locator("#understood")).to_contain_text("Qingdao")
    assert "place=Qingdao" in page.url
    page.fill("#f-place", "")
    page.fill("#f-before", "2023-12-31")
    page.press("#f-before", "Enter")
    expect(page.locator(".card")).to_have_count(2)  # the dog (2022) and the cat (2023)
    page.select_option("#f-sort", "date")
    expect(page.locator(".card").first).to_have_attribute("data-photo-id", str(lib.ids["cat"]))
    page.click("#f-clear")
    expect(page.locator(".card")).to_have_count(5)


def test_dark_mode_and_a_small_screen(browser: Any, server: str) -> None:
    page = open_page(browser, server, scheme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    run_search(page, "photos since 2022")
    expect(page.locator(".card")).to_have_count(5)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 21)", background  # the dark palette from prefers-color-scheme
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('#grid')).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2, columns
    page.screenshot(path=SHOTS / "search-dark-phone.png")
    assert page.js_errors == []
    page.context.close()


def test_index_a_folder_from_the_page(page: Any, lib: BuiltLibrary, tmp_path: Path) -> None:
    folder = tmp_path / "holiday"
    for i in range(12):
        make_photo(folder / f"IMG_2024071{i % 10}_1200{i:02}.jpg", size=(320, 240), seed=100 + i)
    page.click("#library-button")
    panel = page.locator("#library")
    expect(panel).to_be_visible()
    expect(page.locator("#roots")).to_contain_text(str(lib.photos_dir.resolve()))
    page.fill("#root-path", str(folder))
    page.click("#add-root button[type=submit]")
    expect(page.locator("#roots")).to_contain_text(str(folder.resolve()))
    page.click("#job-start")
    expect(page.locator("#job-current")).to_be_visible()  # the progress indicator appears
    expect(page.locator("#job-progress")).to_be_attached()
    page.screenshot(path=SHOTS / "indexing.png")
    expect(page.locator("#jobs li.job.done")).to_have_count(1, timeout=90_000)
    expect(page.locator("#job-current")).to_be_hidden()
    expect(page.locator("#library-stats")).to_contain_text("17 photos")
    expect(page.locator("#job-summary")).to_contain_text("1 done")
    page.screenshot(path=SHOTS / "indexed.png")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()


@pytest.mark.parametrize(
    ("rate", "eta_s", "shown"),
    [
        (600 / 3600, 5400.0, "600 photos/h, about 1.5 h left"),
        (50 / 3600, 120.0, "50 photos/h, about 2 min left"),
    ],
)
def test_a_running_job_shows_photos_an_hour(page: Any, rate: float, eta_s: float, shown: str) -> None:
    # a vision model on a CPU does a few hundred photos an hour: "/s" showed them as 0.2/s or 0.0/s
    job = {"id": 7, "state": "running", "stage": "qwen_vl", "done": 40, "total": 1000, "errors": 0,
           "rate": rate, "eta_s": eta_s, "started_at": 0.0, "finished_at": None, "message": None,
           "result": None}  # fmt: skip
    page.route("**/api/jobs", lambda route: route.fulfill(json=[job]))
    page.click("#library-button")
    expect(page.locator("#job-detail")).to_have_text(shown)
    page.unroute("**/api/jobs")
    page.keyboard.press("Escape")


def test_the_page_asks_for_the_token_and_then_remembers_it(browser: Any, server: str) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{server}/")  # no cookie yet: the shell loads, the API answers 401, the page asks
    login = page.locator("#login")
    expect(login).to_be_visible()
    page.fill("#login-token", "not the token")
    page.press("#login-token", "Enter")
    expect(login).to_be_visible()  # refused: asked again
    page.fill("#login-token", TOKEN)
    page.press("#login-token", "Enter")
    expect(page).to_have_url(f"{server}/")  # the token is not left in the address bar
    expect(login).to_be_hidden()
    expect(page.locator("#welcome-stats")).to_contain_text("Photos:")
    page.goto(f"{server}/")
    expect(page.locator("#welcome-stats")).to_contain_text("Photos:")  # remembered by the cookie
    context.close()

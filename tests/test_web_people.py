"""The People page and face boxes in a real browser (Playwright driving Debian's Chromium) against the real
server over a real library with real faces (tests/people_fixtures.py).

One person (A) is split in two groups before the page opens, as face grouping sometimes does; the page names
people in place, merges the two halves back, marks the owner, names and moves faces on a photo, forgets a
person after a confirm, and shows person chips on search results. The tests run in file order and build on
each other. Screenshots go to .test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from smartalbum.api.app import create_app
from smartalbum.errors import NotFoundError
from tests.people_fixtures import SCENES, PeopleLibrary, build_people_library
from tests.test_web_browser import SHOTS, browser, open_page, run_search  # noqa: F401 (browser: a fixture)
from tests.web_fixtures import TOKEN, live_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeopleLibrary]:
    built = build_people_library(tmp_path_factory.mktemp("web-people"))
    lib = built.library
    # A's faces in two photos become a group of their own: one person seen as two
    split = [
        f["id"]
        for name in ("a_snow", "a_beach")
        for f in lib.photo_faces(built.ids[name])
        if f["person_id"] == built.people["A"]
    ]
    built.people["A2"] = lib.move_faces(split, None)["id"]
    lib.search("warm up")  # load the embedding model before the page waits on it
    yield built
    lib.close()


@pytest.fixture(scope="module")
def server(family: PeopleLibrary) -> Iterator[str]:
    with live_server(create_app(family.library, token=TOKEN)) as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:  # noqa: F811
    p = open_page(browser, server)
    yield p
    assert p.js_errors == [], p.js_errors  # no script errors, no CSP violations, no failed requests
    p.context.close()


def card(page: Any, person_id: int) -> Any:
    return page.locator(f'.person-card[data-person-id="{person_id}"]')


def photos_of(family: PeopleLibrary, letter: str) -> set[int]:
    return {family.ids[n] for n, (who, _) in SCENES.items() if letter in who}


def result_ids(page: Any) -> set[int]:
    return {int(x) for x in page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.photoId)")}


def rename(page: Any, person_id: int, names: str) -> None:
    card(page, person_id).locator(".person-name").click()
    field = card(page, person_id).locator(".person-name-input")
    expect(field).to_be_focused()
    field.fill(names)
    field.press("Enter")
    expect(card(page, person_id).locator(".person-name-input")).to_have_count(0)


def test_people_page_name_in_place_merge_and_mark_the_owner(page: Any, family: PeopleLibrary) -> None:
    lib, a, a2, b, c = (family.library, *(family.people[k] for k in ("A", "A2", "B", "C")))
    page.click("#people-button")
    expect(page.locator("#people-view")).to_be_visible()
    assert "view=people" in page.url
    cards = page.locator(".person-card")
    expect(cards).to_have_count(4)
    expect(page.locator("#people-status")).to_have_text("4 people")
    # every face is a round crop that loaded
    page.wait_for_function(
        "() => [...document.querySelectorAll('.person-card img')].every(i => i.naturalWidth === 256)"
    )
    radius = card(page, b).locator("img.face-circle").evaluate("i => getComputedStyle(i).borderRadius")
    assert radius == "50%"
    expect(card(page, b).locator(".person-count")).to_have_text("4 photos")
    expect(card(page, a).locator(".person-name")).to_have_text("Add a name")
    expect(card(page, a)).to_have_text(re.compile(r"^Add a name\s*2 photos\s*This is me\s*Hide\s*Forget$"))

    rename(page, a, "Mum, 妈妈")
    expect(card(page, a).locator(".person-name")).to_have_text("Mum")
    assert lib.person(a)["names"] == ["Mum", "妈妈"]
    rename(page, c, "Bob")
    expect(card(page, c).locator(".person-name")).to_have_text("Bob")
    # Escape leaves the name as it was
    card(page, c).locator(".person-name").click()
    card(page, c).locator(".person-name-input").fill("Robert")
    card(page, c).locator(".person-name-input").press("Escape")
    expect(card(page, c).locator(".person-name")).to_have_text("Bob")
    assert lib.person(c)["names"] == ["Bob"]

    merge = page.locator("#people-merge")
    expect(merge).to_be_disabled()
    card(page, a2).locator(".person-select").check()
    card(page, a).locator(".person-select").check()
    expect(merge).to_have_text("Merge 2")
    expect(card(page, a)).to_have_class(re.compile("selected"))
    page.screenshot(path=SHOTS / "people-select.png")
    merge.click()
    expect(cards).to_have_count(3)
    expect(card(page, a2)).to_have_count(0)
    expect(card(page, a).locator(".person-count")).to_have_text("4 photos")  # merged into the named one
    expect(page.locator("#toast")).to_contain_text("2 people merged into Mum")
    assert lib.person(a)["faces"] == 4
    with pytest.raises(NotFoundError):
        lib.person(a2)

    card(page, b).locator(".me-toggle").click()
    expect(card(page, b).locator(".me-badge")).to_have_text("Me")
    expect(cards.first).to_have_attribute("data-person-id", str(b))  # the owner first
    expect(card(page, b).locator(".me-toggle")).to_have_text("Not me")
    assert lib.person(b)["is_me"]
    page.screenshot(path=SHOTS / "people.png")


def test_person_chips_on_results_search_that_person(page: Any, family: PeopleLibrary) -> None:
    run_search(page, "Mum")
    expect(page.locator(".card")).to_have_count(4)
    assert result_ids(page) == photos_of(family, "A")
    room = page.locator(f'.card[data-photo-id="{family.ids["abc_room"]}"]').locator("..")
    chips = room.locator(".person-chip")
    expect(chips).to_have_text(["Me", "Mum", "Bob"])  # the owner first
    page.screenshot(path=SHOTS / "people-chips.png")
    chips.filter(has_text="Bob").click()
    expect(page.locator("#q")).to_have_value("Bob")
    expect(page.locator(".card")).to_have_count(3)
    assert result_ids(page) == photos_of(family, "C")
    page.locator(".person-chip.me").first.click()  # the owner's chip asks for "me"
    expect(page.locator("#q")).to_have_value("me")
    expect(page.locator(".card")).to_have_count(4)
    assert result_ids(page) == photos_of(family, "B")


def test_face_boxes_name_a_face_and_move_one(page: Any, family: PeopleLibrary) -> None:
    lib, a, b, c = family.library, family.people["A"], family.people["B"], family.people["C"]
    photo = family.ids["abc_room"]
    faces = {f["person_id"]: f["id"] for f in lib.photo_faces(photo)}
    lib.set_me(None)  # B is nobody's name now: a face to name
    run_search(page, "Bob")
    page.locator(f'.card[data-photo-id="{photo}"]').click()
    boxes = page.locator("#detail-faces .face-box")
    expect(boxes).to_have_count(3)
    expect(boxes.locator(".face-label")).to_have_text(["Mum", "?", "Bob"])  # left to right, as composed
    page.wait_for_function("() => document.querySelector('#detail-img').naturalWidth > 0")
    # the boxes lie over the faces: inside the image, left to right
    img = page.locator("#detail-img").bounding_box()
    rects = [boxes.nth(i).bounding_box() for i in range(3)]
    assert all(img["x"] <= r["x"] and r["x"] + r["width"] <= img["x"] + img["width"] + 1 for r in rects)
    assert rects[0]["x"] < rects[1]["x"] < rects[2]["x"]

    page.locator(f'.face-box[data-face-id="{faces[b]}"]').click()
    editor = page.locator("#face-editor")
    expect(editor).to_be_visible()
    expect(page.locator("#face-editor-title")).to_have_text("Who is this?")
    page.fill("#face-name", "Ann")
    page.click("#face-name-form button[type=submit]")
    expect(editor).to_be_hidden()
    expect(boxes.locator(".face-label")).to_have_text(["Mum", "Ann", "Bob"])
    assert lib.person(b)["names"] == ["Ann"]  # the unnamed person got the name, with all their faces
    page.screenshot(path=SHOTS / "detail-faces.png")

    # choose another person: Bob's face here is Mum's
    page.locator(f'.face-box[data-face-id="{faces[c]}"]').click()
    expect(page.locator("#face-editor-title")).to_have_text("This is Bob")
    expect(page.locator("#face-person option")).to_have_count(3)  # "Choose…", Mum, Ann
    page.select_option("#face-person", str(a))
    expect(boxes.locator(".face-label")).to_have_text(["Mum", "Ann", "Mum"])
    assert lib.face(faces[c])["person_id"] == a

    # a new person of its own
    page.locator(f'.face-box[data-face-id="{faces[c]}"]').click()
    page.click("#face-new")
    expect(boxes.locator(".face-label")).to_have_text(["Mum", "Ann", "?"])
    new = lib.face(faces[c])["person_id"]
    assert new not in (a, b, c) and lib.person(new)["faces"] == 1
    family.people["new"] = new
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()


def test_forget_asks_first_in_chinese(browser: Any, server: str, family: PeopleLibrary) -> None:  # noqa: F811
    new = family.people["new"]
    page = open_page(browser, server, locale="zh-CN")
    page.goto(f"{page.url}?view=people")  # the address opens the People page
    expect(page.locator("#people-button")).to_have_text("人物")
    expect(page.locator("#people-title")).to_have_text("人物")
    expect(page.locator(".person-card")).to_have_count(4)
    expect(card(page, new).locator(".person-name")).to_have_text("添加名字")
    forget = card(page, new).locator(".forget")
    expect(forget).to_have_text("删除")
    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    forget.click()
    expect(page.locator(".person-card")).to_have_count(4)  # said no: still there
    assert family.library.person(new)["faces"] == 1
    page.once("dialog", answer(True))
    forget.click()
    expect(page.locator(".person-card")).to_have_count(3)
    expect(card(page, new)).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("已删除 1 张人脸")
    assert len(asked) == 2 and "删除" in asked[0]
    with pytest.raises(NotFoundError):
        family.library.person(new)
    page.screenshot(path=SHOTS / "people-zh.png")
    assert page.js_errors == [], page.js_errors
    page.context.close()

"""The people endpoints over HTTP: the real app over a real library with real faces
(tests/people_fixtures.py), indexed for real. Listing, one person with faces, face crops, faces of a
photo, names, the owner, hiding, merge / move / forget, person chips on search hits, and bad input of
every kind (a 4xx, never a 500).

The tests share one library and run in file order: the later ones build on the names given earlier."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from smartalbum.api.app import create_app
from smartalbum.api.people import crop_box
from smartalbum.catalog.people import MAX_NAME_LEN, MAX_NAMES
from smartalbum.faces.dlib_backend import DlibFaceModel
from tests.people_fixtures import SCENES, PeopleLibrary, build_people_library
from tests.test_api import assert_error
from tests.web_fixtures import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeopleLibrary]:
    built = build_people_library(tmp_path_factory.mktemp("api-people"))
    yield built
    built.library.close()


@pytest.fixture(scope="module")
def client(family: PeopleLibrary) -> Iterator[TestClient]:
    with TestClient(create_app(family.library, token=TOKEN), headers=AUTH) as c:
        yield c


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.ERROR, logger="smartalbum"):
        yield
    errors = [r for r in caplog.records if r.name.startswith("smartalbum.api") and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text[:500])
    return response.json()


def photos_of(family: PeopleLibrary, letter: str) -> set[int]:
    return {family.ids[n] for n, (who, _) in SCENES.items() if letter in who}


def hit_ids(data: dict[str, Any]) -> set[int]:
    return {h["photo_id"] for h in data["hits"]}


# -- reading ----------------------------------------------------------------------------------------


def test_people_are_listed_with_counts_and_a_cover(client: TestClient, family: PeopleLibrary) -> None:
    people = ok(client.get("/api/people"))
    assert {p["id"] for p in people} == set(family.people.values())
    by_id = {p["id"]: p for p in people}
    for letter, pid in family.people.items():
        n = len(photos_of(family, letter))
        assert (by_id[pid]["faces"], by_id[pid]["photos"]) == (n, n), (letter, by_id[pid])
        assert by_id[pid]["name"] is None and by_id[pid]["names"] == [] and not by_id[pid]["is_me"]
        cover = by_id[pid]["cover"]
        assert cover["photo_id"] in photos_of(family, letter)
        assert cover["crop"].startswith(f"/api/faces/{cover['face_id']}/crop?size=")
    assert [p["faces"] for p in people] == sorted((p["faces"] for p in people), reverse=True)
    # min_faces leaves out the smaller unnamed groups: C is in 3 photos, A and B in 4
    assert {p["id"] for p in ok(client.get("/api/people", params={"min_faces": 4}))} == {
        family.people["A"],
        family.people["B"],
    }
    assert len(ok(client.get("/api/people", params={"limit": 1}))) == 1


def test_one_person_with_their_faces(client: TestClient, family: PeopleLibrary) -> None:
    a = family.people["A"]
    person = ok(client.get(f"/api/people/{a}"))
    assert person["id"] == a and len(person["face_list"]) == 4
    assert {f["photo_id"] for f in person["face_list"]} == photos_of(family, "A")
    assert all(f["person_id"] == a and 0 <= f["x"] < 1 and 0 < f["w"] <= 1 for f in person["face_list"])
    assert len(ok(client.get(f"/api/people/{a}", params={"limit": 2}))["face_list"]) == 2
    assert ok(client.get(f"/api/people/{a}", params={"limit": 0}))["face_list"] == []
    assert_error(client.get("/api/people/999999"), 404, "no person")
    assert_error(client.get("/api/people/0"), 422)
    assert_error(client.get(f"/api/people/{a}", params={"limit": 1001}), 422)
    assert_error(client.get("/api/people/abc"), 422)


def test_faces_of_a_photo_left_to_right(client: TestClient, family: PeopleLibrary) -> None:
    faces = ok(client.get(f"/api/photos/{family.ids['abc_room']}/faces"))
    assert [f["person_id"] for f in faces] == [family.people[c] for c in "ABC"]  # composed left to right
    assert [f["x"] for f in faces] == sorted(f["x"] for f in faces)
    assert all(f["photo_id"] == family.ids["abc_room"] for f in faces)
    assert ok(client.get(f"/api/photos/{family.ids['c_park']}/faces"))[0]["person_id"] == family.people["C"]
    assert_error(client.get("/api/photos/999999/faces"), 404)


def test_a_face_crop_is_a_square_jpeg_of_that_face(client: TestClient, family: PeopleLibrary) -> None:
    face = ok(client.get(f"/api/photos/{family.ids['c_park']}/faces"))[0]
    r = client.get(face["crop"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "private, max-age=86400"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and image.size == (256, 256)
    # the real face detector finds one face in it, near the middle: the crop is around the face
    found = DlibFaceModel().scan(image.convert("RGB")).faces
    assert len(found) == 1, found
    cx, cy = found[0].x + found[0].w / 2, found[0].y + found[0].h / 2
    assert 0.3 < cx < 0.7 and 0.3 < cy < 0.7, (cx, cy)
    assert 0.3 < found[0].w < 0.9  # with a margin, not the whole photo
    # a photo without that face gives another picture
    other = ok(client.get(f"/api/photos/{family.ids['a_snow']}/faces"))[0]
    assert client.get(other["crop"]).content != r.content

    small = client.get(f"/api/faces/{face['id']}/crop", params={"size": 64})
    assert Image.open(io.BytesIO(small.content)).size == (64, 64)
    assert small.headers["etag"] != r.headers["etag"]
    again = client.get(face["crop"], headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert_error(client.get(f"/api/faces/{face['id']}/crop", params={"size": 513}), 422)
    assert_error(client.get(f"/api/faces/{face['id']}/crop", params={"size": 0}), 422)
    assert_error(client.get("/api/faces/999999/crop"), 404, "no face")


def test_crop_box_is_a_square_inside_the_image() -> None:
    assert crop_box((0.4, 0.4, 0.2, 0.2), 1000, 1000, margin=0.5) == (300, 300, 700, 700)
    # at an edge the square moves inside rather than shrinking
    assert crop_box((0.0, 0.0, 0.1, 0.1), 1000, 500, margin=0.5) == (0, 0, 200, 200)
    assert crop_box((0.9, 0.8, 0.1, 0.2), 1000, 500, margin=0.5) == (800, 300, 1000, 500)
    # a face larger than the image's short side: the square is as large as the short side
    left, top, right, bottom = crop_box((0.1, 0.0, 0.8, 1.0), 800, 400)
    assert (right - left, bottom - top) == (400, 400) and left >= 0 and right <= 800


# -- names, the owner, hiding -----------------------------------------------------------------------


def test_name_a_person_and_find_them_by_name(client: TestClient, family: PeopleLibrary) -> None:
    a = family.people["A"]
    named = ok(client.post(f"/api/people/{a}/name", json={"names": ["妈妈", "Mum"]}))
    assert (named["name"], named["names"]) == ("妈妈", ["妈妈", "Mum"])
    named = ok(client.post(f"/api/people/{a}/name", json={"names": ["老妈"], "add": True}))
    assert named["names"] == ["妈妈", "Mum", "老妈"]
    assert ok(client.get(f"/api/people/{a}"))["names"] == ["妈妈", "Mum", "老妈"]
    # a question with the name finds exactly her photos, and every hit carries her chip
    data = ok(client.get("/api/search", params={"q": "Mum"}))
    assert hit_ids(data) == photos_of(family, "A")
    for hit in data["hits"]:
        assert {"id": a, "name": "妈妈", "is_me": False} in hit["people"]
    faces = ok(client.get(f"/api/photos/{family.ids['ab_beach']}/faces"))
    assert [f["name"] for f in faces if f["person_id"] == a] == ["妈妈"]
    # the faces of a named person are the user's now
    assert all(f["assigned_by"] == "user" for f in ok(client.get(f"/api/people/{a}"))["face_list"])

    c = family.people["C"]
    ok(client.post(f"/api/people/{c}/name", json={"names": ["Bob"]}))
    assert {p["name"] for p in ok(client.get("/api/search", params={"q": "Bob"}))["hits"][0]["people"]} >= {
        "Bob"
    }


def test_bad_names_are_refused(client: TestClient, family: PeopleLibrary) -> None:
    b = family.people["B"]
    url = f"/api/people/{b}/name"
    assert_error(client.post(url, json={"names": ["mum"]}), 400, "already belongs")  # Mum is A's
    assert_error(client.post(url, json={"names": ["x" * (MAX_NAME_LEN + 1)]}), 422)
    assert_error(client.post(url, json={"names": [f"n{i}" for i in range(MAX_NAMES + 1)]}), 422)
    assert_error(client.post(url, json={"names": []}), 422)
    assert_error(client.post(url, json={"names": ["   "]}), 400, "at least one name")
    assert_error(client.post(url, json={"names": ["a\x00b"]}), 422)
    assert_error(client.post(url, json={"names": ["ok"], "extra": 1}), 422)
    assert_error(client.post(url, json={"names": "Alice"}), 422)
    assert_error(client.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert_error(client.post("/api/people/999999/name", json={"names": ["Zed"]}), 404)
    assert ok(client.get(f"/api/people/{b}"))["names"] == []  # nothing was changed by any of them


def test_mark_the_owner_and_search_for_me(client: TestClient, family: PeopleLibrary) -> None:
    b = family.people["B"]
    me = ok(client.post("/api/people/me", json={"person_id": b}))
    assert me["id"] == b and me["is_me"]
    people = ok(client.get("/api/people"))
    assert people[0]["id"] == b  # the owner first
    assert sum(p["is_me"] for p in people) == 1
    data = ok(client.get("/api/search", params={"q": "我和妈妈"}))
    assert hit_ids(data) == photos_of(family, "A") & photos_of(family, "B")
    assert all({"id": b, "name": None, "is_me": True} in h["people"] for h in data["hits"])
    assert ok(client.post("/api/people/me", json={"person_id": None})) is None
    assert not any(p["is_me"] for p in ok(client.get("/api/people")))
    ok(client.post("/api/people/me", json={"person_id": b}))
    assert_error(client.post("/api/people/me", json={}), 422)
    assert_error(client.post("/api/people/me", json={"person_id": 999999}), 404)
    assert_error(client.post("/api/people/me", json={"person_id": -1}), 422)


def test_hide_and_show_a_person(client: TestClient, family: PeopleLibrary) -> None:
    c = family.people["C"]
    hidden = ok(client.post(f"/api/people/{c}/hide", json={"hidden": True}))
    assert hidden["hidden"]
    assert c not in {p["id"] for p in ok(client.get("/api/people"))}
    listed = {p["id"]: p for p in ok(client.get("/api/people", params={"all": True}))}
    assert listed[c]["hidden"]
    # a hidden person's faces show as nobody's, and no chip names them
    assert ok(client.get(f"/api/photos/{family.ids['c_park']}/faces"))[0]["person_id"] is None
    assert ok(client.post(f"/api/people/{c}/hide", json={"hidden": False}))["hidden"] is False
    assert c in {p["id"] for p in ok(client.get("/api/people"))}
    assert_error(client.post(f"/api/people/{c}/hide", json={"hidden": "maybe"}), 422)


# -- corrections ------------------------------------------------------------------------------------


def test_split_a_face_off_and_merge_it_back(client: TestClient, family: PeopleLibrary) -> None:
    a = family.people["A"]
    face = next(f for f in ok(client.get(f"/api/photos/{family.ids['a_snow']}/faces")) if f["person_id"] == a)
    new = ok(client.post("/api/faces/move", json={"face_ids": [face["id"]], "person_id": None}))
    assert new["id"] not in family.people.values() and new["faces"] == 1 and new["names"] == []
    assert ok(client.get(f"/api/people/{a}"))["faces"] == 3
    assert family.ids["a_snow"] not in hit_ids(ok(client.get("/api/search", params={"q": "Mum"})))

    merged = ok(client.post("/api/people/merge", json={"target": a, "sources": [new["id"]]}))
    assert merged["id"] == a and merged["faces"] == 4 and merged["names"] == ["妈妈", "Mum", "老妈"]
    assert_error(client.get(f"/api/people/{new['id']}"), 404)
    assert hit_ids(ok(client.get("/api/search", params={"q": "Mum"}))) == photos_of(family, "A")

    assert_error(client.post("/api/people/merge", json={"target": a, "sources": [a]}), 400, "nothing")
    assert_error(client.post("/api/people/merge", json={"target": a, "sources": [999999]}), 404)
    assert_error(client.post("/api/people/merge", json={"target": a, "sources": []}), 422)
    assert_error(client.post("/api/people/merge", json={"target": a, "sources": list(range(1, 102))}), 422)
    assert_error(client.post("/api/people/merge", json={"sources": [a]}), 422)


def test_move_a_face_to_another_person(client: TestClient, family: PeopleLibrary) -> None:
    b, c = family.people["B"], family.people["C"]
    face = ok(client.get(f"/api/photos/{family.ids['c_park']}/faces"))[0]
    moved = ok(client.post("/api/faces/move", json={"face_ids": [face["id"]], "person_id": b}))
    assert moved["id"] == b and moved["faces"] == 5
    assert ok(client.get(f"/api/photos/{family.ids['c_park']}/faces"))[0]["person_id"] == b
    back = ok(client.post("/api/faces/move", json={"face_ids": [face["id"]], "person_id": c}))
    assert back["faces"] == 3
    assert_error(client.post("/api/faces/move", json={"face_ids": [999999], "person_id": b}), 404, "no face")
    assert_error(client.post("/api/faces/move", json={"face_ids": [face["id"]], "person_id": 999999}), 404)
    assert_error(client.post("/api/faces/move", json={"face_ids": [], "person_id": b}), 422)
    assert_error(client.post("/api/faces/move", json={"face_ids": [0], "person_id": b}), 422)
    assert_error(client.post("/api/faces/move", json={"face_ids": list(range(1, 502)), "person_id": b}), 422)
    assert ok(client.get(f"/api/photos/{family.ids['c_park']}/faces"))[0]["person_id"] == c


def test_forget_a_person(client: TestClient, family: PeopleLibrary) -> None:
    c = family.people["C"]
    before = ok(client.get(f"/api/photos/{family.ids['abc_room']}/faces"))
    face = next(f for f in before if f["person_id"] == c)
    stranger = ok(client.post("/api/faces/move", json={"face_ids": [face["id"]], "person_id": None}))
    gone = ok(client.delete(f"/api/people/{stranger['id']}"))
    assert gone == {"person_id": stranger["id"], "faces_deleted": 1}
    assert_error(client.get(f"/api/people/{stranger['id']}"), 404)
    after = ok(client.get(f"/api/photos/{family.ids['abc_room']}/faces"))
    assert [f["id"] for f in after] == [f["id"] for f in before if f["id"] != face["id"]]
    assert_error(client.get(face["crop"]), 404)
    assert ok(client.get(f"/api/people/{c}"))["faces"] == 2
    assert_error(client.delete(f"/api/people/{stranger['id']}"), 404)


# -- guards and docs --------------------------------------------------------------------------------


def test_people_need_the_token_and_refuse_cross_site_writes(family: PeopleLibrary) -> None:
    a = family.people["A"]
    with TestClient(create_app(family.library, token=TOKEN)) as anonymous:
        assert_error(anonymous.get("/api/people"), 401)
        assert_error(anonymous.get(f"/api/photos/{family.ids['a_snow']}/faces"), 401)
        face = family.library.photo_faces(family.ids["a_snow"])[0]
        assert_error(anonymous.get(f"/api/faces/{face['id']}/crop"), 401)
        assert_error(anonymous.delete(f"/api/people/{a}"), 401)
    with TestClient(create_app(family.library, token=TOKEN), headers=AUTH) as c:
        r = c.post(
            f"/api/people/{a}/name", json={"names": ["Eve"]}, headers={"Origin": "https://evil.example"}
        )
        assert_error(r, 403, "another site")
    assert family.library.person(a)["name"] == "妈妈"


def test_the_people_endpoints_are_in_the_docs(client: TestClient) -> None:
    paths = {
        "/api/people",
        "/api/people/{person_id}",
        "/api/people/{person_id}/name",
        "/api/people/me",
        "/api/people/{person_id}/hide",
        "/api/people/merge",
        "/api/faces/move",
        "/api/photos/{photo_id}/faces",
        "/api/faces/{face_id}/crop",
    }
    spec = ok(client.get("/openapi.json"))
    assert paths <= set(spec["paths"])
    assert set(spec["paths"]["/api/people/{person_id}"]) == {"get", "delete"}
    docs = client.get("/docs").text
    for path in paths:
        assert path in docs
    assert f"max items {MAX_NAMES}" in docs and f"each: max length {MAX_NAME_LEN}" in docs  # the limits

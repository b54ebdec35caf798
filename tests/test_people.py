"""People end to end with real faces (tests/face_photos.py): the face stage in `index`, grouping, naming,
the owner, merge / split / forget, and questions such as "我和妈妈在雪地里合影" through the real search."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from smartalbum.catalog.people import FaceVectors
from smartalbum.config import load_settings
from smartalbum.faces.cluster import group_faces
from smartalbum.faces.dlib_backend import DlibFaceModel
from smartalbum.library import Library
from tests.face_photos import Identity, compose, group_photos, identities, identity_of, save_jpeg

# who is in which photo, and where: A is Mum, B is the owner, C and D are others
SCENES = {
    "a_snow": ("A", "snow"),
    "b_snow": ("B", "snow"),
    "ab_snow": ("AB", "snow"),
    "ab_beach": ("AB", "beach"),
    "abc_snow": ("ABC", "snow"),
    "a_beach": ("A", "beach"),
    "cd_beach": ("CD", "beach"),
    "bd_room": ("BD", "room"),
    "a_room": ("A", "room"),
    "b_beach": ("B", "beach"),
}
CAPTIONS = {
    "snow": ("people standing in deep snow on a winter day", "冬天站在雪地里的人"),
    "beach": ("people on a sandy beach by the sea", "海边沙滩上的人"),
    "room": ("people sitting in a living room", "坐在客厅里的人"),
}


@pytest.fixture(scope="module")
def cast() -> dict[str, Identity]:
    faces = {i.key: i for i in identities()}
    return {letter: faces[f"t1-{n}"] for letter, n in zip("ABCD", range(4), strict=True)}


def _make_photos(folder: Path, cast: dict[str, Identity], seed: int = 3) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    paths = {}
    for name, (who, kind) in SCENES.items():
        image, _ = compose([cast[c] for c in who], rng, kind=kind)
        paths[name] = save_jpeg(image, folder / f"{name}.jpg", rng)
    return paths


def _import_captions(lib: Library, paths: dict[str, Path], tmp: Path) -> None:
    lines = []
    for name, path in paths.items():
        en, zh = CAPTIONS[SCENES[name][1]]
        lines.append(json.dumps({"path": str(path), "caption": {"en": en, "zh": zh}}, ensure_ascii=False))
    file = tmp / "captions.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = lib.import_analyses(file)
    assert report.imported == len(paths), report.errors


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory, cast: dict[str, Identity]) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("family")
    paths = _make_photos(tmp / "photos", cast)
    lib = Library(load_settings(tmp / "lib", workers=1))
    lib.add_root(tmp / "photos")
    report = lib.index(vlm=False, ocr=False)
    assert report.faces is not None and report.faces.errors == 0
    _import_captions(lib, paths, tmp)
    ids = {name: lib.photo(str(p))["id"] for name, p in paths.items()}
    yield {"lib": lib, "paths": paths, "ids": ids, "tmp": tmp, "report": report}
    lib.close()


def _person_in(lib: Library, photo_id: int) -> set[int]:
    return {f["person_id"] for f in lib.photo_faces(photo_id)}


def _names(results: Any, ids: dict[str, int]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[h.photo_id] for h in results.hits]


def test_every_face_is_found_and_each_person_is_one_group(family: dict[str, Any]) -> None:
    lib, ids = family["lib"], family["ids"]
    faces = family["report"].faces
    assert faces.scanned == len(SCENES)
    assert faces.faces >= sum(len(who) for who, _ in SCENES.values())
    for name, (who, _) in SCENES.items():
        found = lib.photo_faces(ids[name])
        assert len(found) >= len(who), name
        # every face box lies inside the photo
        assert all(f["x"] >= 0 and f["x"] + f["w"] <= 1.0001 and f["y"] + f["h"] <= 1.0001 for f in found)
    groups = {
        letter: set.intersection(*[_person_in(lib, ids[n]) for n, (w, _) in SCENES.items() if letter in w])
        for letter in "ABCD"
    }
    # A's photos share exactly one person, and it is nobody else's
    assert all(len(g) == 1 for g in groups.values()), groups
    assert len({next(iter(g)) for g in groups.values()}) == 4


def test_names_owner_and_questions_in_both_languages(family: dict[str, Any]) -> None:
    lib, ids = family["lib"], family["ids"]
    (mum,) = _person_in(lib, ids["a_room"])
    (me,) = _person_in(lib, ids["b_beach"])
    lib.name_person(mum, ["妈妈", "老妈", "Mum"])
    lib.set_me(me)
    listed = {p["id"]: p for p in lib.people()}
    assert listed[me]["is_me"] and listed[mum]["names"] == ["妈妈", "老妈", "Mum"]
    assert listed[mum]["photos"] == 6

    r = lib.search("我和妈妈在雪地里合影")
    assert "人物：我、妈妈" in r.understood
    assert set(_names(r, ids)[:2]) == {"ab_snow", "abc_snow"}
    assert set(_names(r, ids)) <= {"ab_snow", "abc_snow", "ab_beach"}  # both of them in every hit
    assert {p["name"] for p in r.hits[0].people} >= {"妈妈"}
    assert any("人物：我、妈妈" in w for w in r.hits[0].why)

    r = lib.search("photos of me and Mum in the snow")
    assert set(_names(r, ids)[:2]) == {"ab_snow", "abc_snow"}

    only = {"a_snow", "a_beach", "a_room"}
    assert set(_names(lib.search("只有妈妈"), ids)) == only
    assert set(_names(lib.search("only Mum"), ids)) == only
    assert set(_names(lib.search("Mum without me"), ids)) == only
    assert set(_names(lib.search("老妈的照片"), ids)) == {n for n, (w, _) in SCENES.items() if "A" in w}
    # an unknown name stays a search word: no people filter, no crash
    r = lib.search("Carol at the beach")
    assert not any(u.startswith("people") for u in r.understood)
    assert "Carol" in r.semantic


def test_reindex_keeps_work_and_a_new_photo_joins_its_person(
    family: dict[str, Any], cast: dict[str, Identity]
) -> None:
    lib, ids, tmp = family["lib"], family["ids"], family["tmp"]
    (mum,) = _person_in(lib, ids["a_room"])
    again = lib.index(vlm=False, ocr=False)
    assert again.faces is not None and again.faces.todo == 0  # unchanged photos are not scanned again
    image, _ = compose([cast["A"]], np.random.default_rng(99), kind="park")
    save_jpeg(image, tmp / "photos" / "a_park.jpg")
    more = lib.index(vlm=False, ocr=False)
    assert more.faces is not None and (more.faces.todo, more.faces.joined, more.faces.new_people) == (1, 1, 0)
    assert _person_in(lib, lib.photo(str(tmp / "photos" / "a_park.jpg"))["id"]) == {mum}


def test_merge_split_move_hide_forget(family: dict[str, Any]) -> None:
    lib, ids = family["lib"], family["ids"]
    (c,) = _person_in(lib, ids["cd_beach"]) - _person_in(lib, ids["bd_room"])
    (d,) = _person_in(lib, ids["bd_room"]) & _person_in(lib, ids["cd_beach"])
    lib.name_person(c, ["Carol"])
    merged = lib.merge_people([d], c)
    assert merged["faces"] == 4 and merged["names"] == ["Carol"]
    assert _person_in(lib, ids["bd_room"]) >= {c}
    # split D's faces back out: a new person with exactly those faces
    d_faces = [f["id"] for f in lib.photo_faces(ids["bd_room"]) if f["person_id"] == c]
    d_faces += [f["id"] for f in lib.photo_faces(ids["cd_beach"]) if f["person_id"] == c and f["x"] > 0.4]
    split = lib.move_faces(d_faces, None)
    assert split["id"] != c and split["faces"] == len(d_faces) == 2
    assert lib.person(c)["faces"] == 2
    # a name given to another person is refused with the owner of the name
    with pytest.raises(Exception, match="already belongs"):
        lib.name_person(split["id"], ["carol"])
    lib.hide_person(split["id"])
    assert split["id"] not in {p["id"] for p in lib.people()}
    assert split["id"] in {p["id"] for p in lib.people(include_hidden=True)}
    # forget: faces and vectors gone, and the next run does not find them again
    assert lib.forget_person(split["id"]) == 2
    assert all(f["id"] not in d_faces for f in lib.photo_faces(ids["bd_room"]))
    assert lib.index(vlm=False, ocr=False).faces.todo == 0  # type: ignore[union-attr]
    # a correction survives re-grouping: the moved faces stay where the user put them
    store = lib.catalog.people
    assert store.face_vectors("dlib-hog-resnet-v1:up0", assigned=False).ids.size == 0


def test_grouping_is_stable_and_real_faces_group_right(cast: dict[str, Identity]) -> None:
    model = DlibFaceModel()
    rng = np.random.default_rng(5)
    vecs, truth = [], []
    for _ in range(4):
        for letter, face in cast.items():
            image, placed = compose([face], rng, kind="room")
            for f in model.scan(image).faces:
                if identity_of((f.x, f.y, f.w, f.h), placed) == face.key:
                    vecs.append(f.vector)
                    truth.append(letter)
    matrix = np.stack(vecs)
    first = group_faces(
        FaceVectors(np.zeros(0, np.int64), np.zeros((0, 128), np.float32), np.zeros(0, np.int64)),
        FaceVectors(np.arange(8), matrix[:8], np.full(8, -1)),
    )
    person = np.full(len(matrix), -1)
    for n, ids in enumerate(first.groups):
        person[ids] = 100 + n
    assert not first.joins and len(first.groups) == 4
    later = group_faces(
        FaceVectors(np.arange(8), matrix[:8], person[:8]),
        FaceVectors(np.arange(8, len(matrix)), matrix[8:], np.full(len(matrix) - 8, -1)),
    )
    assert not later.groups  # everyone later is someone known
    for pid, ids in later.joins.items():
        person[ids] = pid
    for letter in "ABCD":
        assert len({person[i] for i, t in enumerate(truth) if t == letter}) == 1


def test_bad_photos_are_recorded_never_a_crash(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    real = Image.open(group_photos()[0]).convert("RGB")  # t1.jpg: six faces
    real.save(src / "crowd.jpg")
    real.convert("L").save(src / "gray.jpg")
    Image.fromarray(np.asarray(real.convert("L"), np.uint16) * 257).save(src / "deep16.png")
    # turned on its side, with EXIF orientation 6 ("rotate 90 CW to view"): faces are found upright
    exif = Image.Exif()
    exif[0x0112] = 6
    real.rotate(90, expand=True).save(src / "rotated.jpg", exif=exif)
    Image.new("RGB", (800, 600), (40, 90, 160)).save(src / "sky.jpg")
    real.crop((0, 0, 180, real.height)).save(src / "cut.jpg")  # a face cut by the border
    lib = Library(load_settings(tmp_path / "lib", workers=1, face_max_per_photo=4))
    lib.add_root(src)
    report = lib.index(vlm=False, ocr=False)
    faces = report.faces
    assert faces is not None and faces.errors == 0 and faces.scanned == 6
    by_name = {Path(p).name: lib.photo(str(src / p))["id"] for p in ("crowd.jpg", "gray.jpg", "rotated.jpg")}
    assert len(lib.photo_faces(by_name["crowd.jpg"])) == 4  # capped at the largest four
    assert len(lib.photo_faces(by_name["gray.jpg"])) == 4
    assert len(lib.photo_faces(by_name["rotated.jpg"])) == 4
    assert lib.photo_faces(lib.photo(str(src / "sky.jpg"))["id"]) == []
    scans = dict(lib.catalog.db.execute("SELECT hash, found FROM face_scans").fetchall())
    assert scans[lib.photo(str(src / "crowd.jpg"))["hash"]] >= 5  # found before the cap
    # the same face in the crowd, gray and rotated copies is one person
    assert len({f["person_id"] for f in lib.photo_faces(by_name["crowd.jpg"])}) == 4
    same = _person_in(lib, by_name["crowd.jpg"]) & _person_in(lib, by_name["rotated.jpg"])
    assert len(same) >= 3
    lib.close()


def test_unreadable_thumbnail_is_an_error_row_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    rng = np.random.default_rng(1)
    faces = identities()
    for n in range(3):
        image, _ = compose([faces[n]], rng)
        save_jpeg(image, src / f"p{n}.jpg")
    settings = load_settings(tmp_path / "lib", workers=1)
    lib = Library(settings)
    lib.add_root(src)
    lib.index(vlm=False, ocr=False, faces=False)
    broken = lib.photo(str(src / "p1.jpg"))["hash"]
    from smartalbum.ingest.decode import thumb_path

    thumb_path(settings.thumbs_dir, broken, max(settings.thumb_sizes)).write_bytes(b"not a jpeg")
    report = lib.index(vlm=False, ocr=False)
    assert report.faces is not None and (report.faces.scanned, report.faces.errors) == (2, 1)
    assert [e["subject"] for e in lib.errors("faces")] == [broken]
    assert len(lib.people(min_faces=1)) == 2
    lib.close()


def test_turning_face_recognition_off_deletes_faces_and_people(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    image, _ = compose([identities()[0]], np.random.default_rng(2))
    save_jpeg(image, src / "one.jpg")
    lib = Library(load_settings(tmp_path / "lib", workers=1))
    lib.add_root(src)
    lib.index(vlm=False, ocr=False)
    (person,) = lib.people()
    lib.name_person(person["id"], ["Zoe"])
    lib.close()
    off = Library(load_settings(tmp_path / "lib", workers=1, face_recognition=False))
    report = off.index(vlm=False, ocr=False)
    assert report.faces is not None and report.faces.purged == 1
    assert off.people(include_hidden=True) == [] and off.catalog.people.counts()["faces"] == 0
    off.close()


def test_people_commands_from_the_cli(tmp_path: Path) -> None:
    from tests.test_cli import sa, sa_json

    src, lib = tmp_path / "photos", tmp_path / "lib"
    rng = np.random.default_rng(4)
    faces = {i.key: i for i in identities()}
    for n, who in enumerate([["t1-0"], ["t1-0", "t1-1"], ["t1-1"], ["t1-2"]]):
        image, _ = compose([faces[k] for k in who], rng)
        save_jpeg(image, src / f"p{n}.jpg")
    sa(lib, "add", str(src))
    stats = sa_json(lib, "index", "--no-vlm", "--no-ocr")
    assert stats["faces"]["faces"] == 5 and stats["faces"]["new_people"] == 3
    listed = sa_json(lib, "people")  # groups of one face are left out unless --all
    assert sorted(p["faces"] for p in listed) == [2, 2]
    assert len(sa_json(lib, "people", "--all")) == 3
    first, second = (p["id"] for p in listed)
    named = sa_json(lib, "people", "name", str(first), "妈妈", "Mum")
    assert named["names"] == ["妈妈", "Mum"]
    assert sa_json(lib, "people", "me", str(second))["is_me"] is True
    refused = sa(lib, "people", "name", str(second), "mum", check=False)
    assert refused.returncode == 1 and "already belongs to person" in refused.stderr
    shown = sa_json(lib, "people", "show", str(first))
    assert len(shown["face_list"]) == 2
    hits = sa_json(lib, "search", "我和妈妈")
    assert hits["understood"] == ["人物：我、妈妈"]
    assert [h["path"] for h in hits["hits"]] == [str(src / "p1.jpg")]
    merged = sa_json(lib, "people", "merge", str(first), str(second))
    assert merged["faces"] == 4 and merged["is_me"] is True
    gone = sa_json(lib, "people", "forget", str(first), "--yes")
    assert gone == {"person": first, "faces_deleted": 4}
    status = sa_json(lib, "status")
    assert status["people"]["faces"] == 1 and status["people"]["people_named"] == 0


def test_birthdays_find_the_photos_of_that_day(family: dict[str, Any]) -> None:
    lib, ids = family["lib"], family["ids"]
    (mum,) = _person_in(lib, ids["a_room"])
    taken = lib.photo(ids["a_room"])["taken_at"][:10]  # no EXIF: the files' time, all written today
    every = {p["id"] for p in lib.catalog.db.execute("SELECT id FROM photos").fetchall()}
    lib.set_birthday(mum, taken[5:])
    r = lib.search("妈妈的生日", limit=100)
    assert {h.photo_id for h in r.hits} == every  # Mum need not be in them: it is a date
    assert r.understood == [f"妈妈的生日：每年 {int(taken[5:7])}月{int(taken[8:10])}日前后"]
    lib.set_birthday(mum, "1964-02-29" if taken[5:] not in ("02-28", "02-29", "03-01") else "1962-08-08")
    assert lib.search("Mum's birthday").hits == []
    with pytest.raises(Exception, match="not a birthday"):
        lib.set_birthday(mum, "1962-02-30")
    assert lib.person(mum)["birthday"] in ("1964-02-29", "1962-08-08")
    lib.set_birthday(mum, None)
    r = lib.search("妈妈的生日")  # unknown again: her photos, with 生日 searched among them
    assert r.understood[0] == "人物：妈妈"

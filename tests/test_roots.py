"""Registered folders (roots) may not nest or overlap: a file must belong to exactly one root, or it flips
between them and is read again on every run. Checked through Library (the CLI's and the web app's way in)
and through the HTTP API; the CLI's messages are in test_cli.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartalbum.api.app import create_app
from smartalbum.config import Settings
from smartalbum.errors import InputError, NotFoundError
from smartalbum.library import Library
from tests.helpers import make_photo

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def lib(settings: Settings) -> Iterator[Library]:
    with Library(settings) as library:
        yield library


def _refused(lib: Library, folder: Path) -> InputError:
    with pytest.raises(InputError) as info:
        lib.add_root(folder)
    assert len(lib.roots()) == 1  # nothing was added
    return info.value


def test_a_folder_inside_a_root_is_refused(tmp_path: Path, lib: Library) -> None:
    pictures = tmp_path / "Pictures"
    (pictures / "2024").mkdir(parents=True)
    lib.add_root(pictures)
    exc = _refused(lib, pictures / "2024")
    assert exc.message == (
        f"{pictures / '2024'} is inside the registered folder {pictures}, which already covers it"
    )
    assert exc.hint and "smartalbum index" in exc.hint and f"smartalbum remove {pictures}" in exc.hint
    (pictures / "2024" / "07" / "deep").mkdir(parents=True)
    assert "is inside the registered folder" in _refused(lib, pictures / "2024" / "07" / "deep").message


def test_a_folder_around_a_root_is_refused(tmp_path: Path, lib: Library) -> None:
    pictures = tmp_path / "Pictures"
    (pictures / "2024").mkdir(parents=True)
    lib.add_root(pictures / "2024")
    exc = _refused(lib, pictures)
    assert exc.message == f"{pictures} contains the registered folder {pictures / '2024'}"
    assert exc.hint and f"smartalbum remove {pictures / '2024'}" in exc.hint


def test_several_contained_roots_are_all_named(tmp_path: Path, lib: Library) -> None:
    pictures = tmp_path / "Pictures"
    for year in ("2023", "2024"):
        (pictures / year).mkdir(parents=True)
        lib.add_root(pictures / year)
    with pytest.raises(InputError) as info:
        lib.add_root(pictures)
    exc = info.value
    assert exc.message == (
        f"{pictures} contains the registered folders {pictures / '2023'}, {pictures / '2024'}"
    )
    assert exc.hint and all(f"smartalbum remove {pictures / y}" in exc.hint for y in ("2023", "2024"))
    assert len(lib.roots()) == 2


def test_sibling_with_a_common_prefix_is_fine(tmp_path: Path, lib: Library) -> None:
    """/a/photos2 is not inside /a/photos: folders compare by path components, not by string prefix."""
    for name in ("photos", "photos2", "photos-old"):
        (tmp_path / name).mkdir()
        lib.add_root(tmp_path / name)
    (tmp_path / "pho").mkdir()
    lib.add_root(tmp_path / "pho")
    assert len(lib.roots()) == 4


def test_adding_the_same_root_again_is_idempotent(tmp_path: Path, lib: Library) -> None:
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    first = lib.add_root(pictures)
    assert lib.add_root(pictures) == first
    assert lib.add_root(str(pictures) + "/") == first
    assert lib.add_root(pictures / "sub" / "..") == first
    (tmp_path / "alias").symlink_to(pictures, target_is_directory=True)
    assert lib.add_root(tmp_path / "alias") == first  # the same folder by another name
    assert len(lib.roots()) == 1


def test_symlinks_are_resolved_before_comparing(tmp_path: Path, lib: Library) -> None:
    pictures = tmp_path / "Pictures"
    (pictures / "2024").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lib.add_root(pictures)
    (elsewhere / "this-year").symlink_to(pictures / "2024", target_is_directory=True)
    exc = _refused(lib, elsewhere / "this-year")  # a link pointing into a root
    assert exc.message == (
        f"{elsewhere / 'this-year'} (really {pictures / '2024'}) is inside the registered folder {pictures}, "
        "which already covers it"
    )
    (tmp_path / "everything").symlink_to(tmp_path, target_is_directory=True)
    exc = _refused(lib, tmp_path / "everything")  # a link pointing above a root
    assert exc.message.startswith(f"{tmp_path / 'everything'} (really {tmp_path}) contains the registered")


def test_a_root_registered_through_a_link_is_compared_by_its_real_path(
    tmp_path: Path, lib: Library, settings: Settings
) -> None:
    """A root stored unresolved (by an older version, or straight through the catalog) still counts."""
    real = tmp_path / "real"
    (real / "2024").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    root_id = lib.catalog.add_root(tmp_path / "link")
    exc = _refused(lib, real / "2024")
    assert exc.message.startswith(f"{real / '2024'} is inside the registered folder {tmp_path / 'link'},")
    assert lib.add_root(real)["id"] == root_id  # the same folder: the root it is registered as
    assert lib.remove_root(tmp_path / "link") == str(tmp_path / "link")  # found by the name it was given
    assert lib.roots() == []


def test_roots_still_work_after_a_refusal(tmp_path: Path, lib: Library, settings: Settings) -> None:
    pictures = tmp_path / "Pictures"
    make_photo(pictures / "2024" / "a.jpg")
    lib.add_root(pictures)
    _refused(lib, pictures / "2024")
    assert lib.remove_root(pictures) == str(pictures)
    assert lib.add_root(pictures / "2024")["path"] == str(pictures / "2024")
    with pytest.raises(NotFoundError):
        lib.remove_root(pictures)


def test_the_http_api_refuses_nested_folders_too(tmp_path: Path, settings: Settings) -> None:
    pictures = tmp_path / "Pictures"
    (pictures / "2024").mkdir(parents=True)
    with TestClient(create_app(Library(settings), token=TOKEN), headers=AUTH) as client:
        assert client.post("/api/libraries", json={"path": str(pictures)}).status_code == 201
        r = client.post("/api/libraries", json={"path": str(pictures / "2024")})
        assert r.status_code == 400
        assert r.json() == {
            "error": f"{pictures / '2024'} is inside the registered folder {pictures}, "
            "which already covers it",
            "hint": f"its photos are indexed with {pictures}: run `smartalbum index`; to index only "
            f"{pictures / '2024'}, first `smartalbum remove {pictures}`",
        }
        r = client.post("/api/libraries", json={"path": str(tmp_path)})
        assert r.status_code == 400
        assert r.json()["error"] == f"{tmp_path} contains the registered folder {pictures}"
        assert r.json()["hint"].startswith(f"remove it first with `smartalbum remove {pictures}`")
        again = client.post("/api/libraries", json={"path": str(pictures)})
        assert again.status_code == 201 and again.json()["path"] == str(pictures)  # same folder: idempotent
        assert [x["path"] for x in client.get("/api/libraries").json()] == [str(pictures)]

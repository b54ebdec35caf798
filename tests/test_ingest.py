"""Ingestion of generated photos: EXIF time and GPS, HEIC, identity across renames, copies and deletes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.errors import NotFoundError
from smartalbum.ingest.decode import thumb_path
from smartalbum.pipeline.progress import CancelToken, Progress
from tests.helpers import index, make_photo


def _photos(catalog: Catalog) -> int:
    return int(catalog.counts()["photos"])


def test_exif_time_with_offset_gps_and_camera(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    p = make_photo(
        src / "beach.jpg",
        taken="2024:07:12 15:30:00",
        offset="+08:00",
        gps=(36.0671, 120.3826),
        make="Canon",
        model="Canon EOS R6",
        orientation=6,
        size=(120, 80),
    )
    catalog.add_root(src)
    stats = index(catalog, settings)
    assert (stats.new, stats.ok, stats.errors) == (1, 1, 0)
    photo = catalog.photo(str(p))
    assert photo["taken_at"] == "2024-07-12T15:30:00"
    assert photo["tz_offset"] == "+08:00"
    assert photo["time_source"] == "exif_original"
    assert photo["lat"] == pytest.approx(36.0671, abs=1e-4)
    assert photo["lon"] == pytest.approx(120.3826, abs=1e-4)
    assert (photo["camera_make"], photo["camera_model"]) == ("Canon", "Canon EOS R6")
    assert (photo["width"], photo["height"]) == (80, 120)  # orientation 6: shown turned
    for size in settings.thumb_sizes:
        with Image.open(thumb_path(settings.thumbs_dir, photo["hash"], size)) as thumb:
            assert thumb.height > thumb.width  # the thumbnail is upright too


def test_southern_western_gps_and_missing_offset(
    tmp_path: Path, settings: Settings, catalog: Catalog
) -> None:
    src = tmp_path / "photos"
    p = make_photo(src / "rio.jpg", taken="2019:02:03 04:05:06", gps=(-22.9068, -43.1729))
    catalog.add_root(src)
    index(catalog, settings)
    photo = catalog.photo(str(p))
    assert photo["lat"] == pytest.approx(-22.9068, abs=1e-4)
    assert photo["lon"] == pytest.approx(-43.1729, abs=1e-4)
    assert photo["tz_offset"] is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_20240712_153000.jpg", "2024-07-12T15:30:00"),
        ("2024-07-12 15.30.00.png", "2024-07-12T15:30:00"),
        ("Screenshot_2023-01-05-08-09-10.png", "2023-01-05T08:09:10"),
        ("微信图片_20220301120000.jpg", "2022-03-01T12:00:00"),
        ("IMG-20210615-WA0003.jpg", "2021-06-15T00:00:00"),
        ("PXL_20231224_180102345.jpg", "2023-12-24T18:01:02"),
    ],
)
def test_time_from_file_name(
    tmp_path: Path, settings: Settings, catalog: Catalog, name: str, expected: str
) -> None:
    src = tmp_path / "photos"
    fmt = "PNG" if name.endswith(".png") else "JPEG"
    p = make_photo(src / name, fmt=fmt)
    catalog.add_root(src)
    index(catalog, settings)
    photo = catalog.photo(str(p))
    assert (photo["taken_at"], photo["time_source"]) == (expected, "filename")


def test_time_falls_back_to_mtime(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    p = make_photo(src / "untitled.png", fmt="PNG")
    os.utime(p, (1_600_000_000, 1_600_000_000))
    catalog.add_root(src)
    index(catalog, settings)
    photo = catalog.photo(str(p))
    assert photo["time_source"] == "mtime"
    from datetime import datetime

    assert photo["taken_at"] == datetime.fromtimestamp(1_600_000_000).isoformat()


def test_heic_written_with_pillow_heif(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    p = make_photo(
        src / "phone.HEIC", fmt="HEIF", taken="2023:05:06 07:08:09", gps=(48.8584, 2.2945), size=(64, 48)
    )
    catalog.add_root(src)
    stats = index(catalog, settings)
    assert stats.errors == 0, catalog.errors()
    photo = catalog.photo(str(p))
    assert photo["format"] == "HEIF"
    assert photo["taken_at"] == "2023-05-06T07:08:09"
    assert photo["lat"] == pytest.approx(48.8584, abs=1e-4)


def test_formats_and_extension_case(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    paths = [
        make_photo(src / "a.PNG", fmt="PNG", seed=1),
        make_photo(src / "b.webp", fmt="WEBP", seed=2),
        make_photo(src / "c.gif", fmt="GIF", seed=3),
        make_photo(src / "d.TIFF", fmt="TIFF", seed=4),
        make_photo(src / "e.bmp", fmt="BMP", seed=5),
        make_photo(src / "f.avif", fmt="AVIF", seed=6),
        make_photo(src / "g.JPEG", seed=7),
    ]
    # content decides, not the extension: a PNG named .jpg is still read
    png_as_jpg = make_photo(src / "really_a_png.jpg", fmt="PNG", seed=8)
    catalog.add_root(src)
    stats = index(catalog, settings)
    assert stats.errors == 0, catalog.errors()
    assert stats.ok == 8
    assert catalog.photo(str(png_as_jpg))["format"] == "PNG"
    assert {catalog.photo(str(p))["format"] for p in paths} == {
        "PNG",
        "WEBP",
        "GIF",
        "TIFF",
        "BMP",
        "AVIF",
        "JPEG",
    }


def test_rename_move_copy_delete_keep_identity(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    a = make_photo(src / "a.jpg", seed=1, taken="2020:01:01 10:00:00")
    b = make_photo(src / "b.jpg", seed=2)
    catalog.add_root(src)
    index(catalog, settings)
    photo_a = catalog.photo(str(a))

    # rename + move into a subfolder: same photo id, nothing read twice as a new photo
    moved = src / "2020" / "renamed.jpg"
    moved.parent.mkdir()
    a.rename(moved)
    # a duplicate copy: a second path of the same photo
    copy = src / "backup" / "b-copy.jpg"
    copy.parent.mkdir()
    shutil.copy2(b, copy)
    stats = index(catalog, settings)
    assert (stats.new, stats.gone) == (2, 1)
    assert catalog.photo(str(moved))["id"] == photo_a["id"]
    assert catalog.photo(str(moved))["taken_at"] == "2020-01-01T10:00:00"
    photo_b = catalog.photo(str(b))
    assert catalog.photo(str(copy))["id"] == photo_b["id"]
    assert sorted(f["path"] for f in photo_b["files"]) == sorted([str(b), str(copy)])
    assert [f["status"] for f in catalog.photo(str(moved))["files"]] == ["ok", "gone"]
    assert _photos(catalog) == 2

    # delete one copy: the photo stays visible through the other path
    b.unlink()
    index(catalog, settings)
    assert photo_b["id"] in catalog.visible_photo_ids()
    # delete the last copy: the photo disappears from results but keeps its row (and derived data)
    copy.unlink()
    index(catalog, settings)
    assert photo_b["id"] not in catalog.visible_photo_ids()
    assert catalog.counts()["photos_gone"] == 1
    assert _photos(catalog) == 1
    # it comes back: same photo again
    make_photo(src / "again.jpg", seed=2)
    index(catalog, settings)
    assert catalog.photo(str(src / "again.jpg"))["id"] == photo_b["id"]


def test_reindex_unchanged_reads_nothing(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    for i in range(12):
        make_photo(src / f"p{i}.jpg", seed=i)
    catalog.add_root(src)
    first = index(catalog, settings)
    assert first.ok == 12
    # make every file unreadable for the decoder without changing size or mtime: a re-read would fail
    for p in src.iterdir():
        st = p.stat()
        p.write_bytes(b"\0" * st.st_size)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = index(catalog, settings)
    assert (second.unchanged, second.new, second.changed, second.ok, second.errors) == (12, 0, 0, 0, 0)
    assert _photos(catalog) == 12
    # a changed file (new mtime) is read again
    os.utime(src / "p0.jpg", ns=(1, 1))
    third = index(catalog, settings)
    assert (third.changed, third.errors) == (1, 1)


def test_bad_files_recorded_and_run_goes_on(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    good = make_photo(src / "good.jpg")
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.jpg").write_text("this is not a photo")
    data = make_photo(tmp_path / "full.jpg", size=(400, 300)).read_bytes()
    (src / "cut.jpg").write_bytes(data[: len(data) // 2])
    catalog.add_root(src)
    stats = index(catalog, settings)
    assert (stats.ok, stats.errors) == (1, 3)
    kinds = {Path(e["subject"]).name: e["kind"] for e in catalog.errors("ingest")}
    assert kinds == {"empty.jpg": "empty", "notes.jpg": "not_image", "cut.jpg": "truncated"}
    assert catalog.photo(str(good))["thumbs"] == 1
    counts = catalog.counts()
    assert counts["files_error"] == 3
    assert counts["errors_by_kind"] == {"ingest:empty": 1, "ingest:not_image": 1, "ingest:truncated": 1}
    with pytest.raises(NotFoundError):
        catalog.photo(str(src / "notes.jpg"))
    # fixing a file clears its error
    make_photo(src / "notes.jpg", seed=9)
    index(catalog, settings)
    assert catalog.file_error(str(src / "notes.jpg")) is None
    assert catalog.counts()["files_error"] == 2


def test_read_only_file_and_folder_are_indexed(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    locked = src / "locked"
    p = make_photo(locked / "ro.jpg")
    p.chmod(0o444)
    locked.chmod(0o555)
    try:
        catalog.add_root(src)
        stats = index(catalog, settings)
        assert (stats.ok, stats.errors) == (1, 0)
        assert p.read_bytes()  # untouched
    finally:
        locked.chmod(0o755)


def test_unreadable_folder_and_file(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    make_photo(src / "ok.jpg", seed=1)
    secret_dir = src / "secret"
    hidden_photo = make_photo(secret_dir / "x.jpg", seed=2)
    no_read = make_photo(src / "noread.jpg", seed=3)
    catalog.add_root(src)
    index(catalog, settings)
    assert _photos(catalog) == 3
    secret_dir.chmod(0)
    no_read.chmod(0)
    try:
        stats = index(catalog, settings, retry_errors=True)
        if os.access(secret_dir, os.R_OK):  # running as root: permissions do not stop us, nothing may fail
            assert stats.errors == 0 and stats.unreadable_dirs == 0
        else:
            assert stats.unreadable_dirs == 1
            assert any(e["kind"] == "unreadable_dir" for e in catalog.errors("scan"))
        # a folder we cannot read is not a folder whose photos were deleted
        assert catalog.photo(str(hidden_photo))["files"][0]["status"] == "ok"
        assert stats.gone == 0
    finally:
        secret_dir.chmod(0o755)
        no_read.chmod(0o644)


def test_hidden_excluded_and_symlink_loops(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    make_photo(src / "visible.jpg", seed=1)
    make_photo(src / ".hidden.jpg", seed=2)
    make_photo(src / ".cache" / "thumb.jpg", seed=3)
    make_photo(src / "@eaDir" / "nas-thumb.jpg", seed=4)
    make_photo(src / "tmp" / "scratch.jpg", seed=5)
    (src / "sub").mkdir()
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)
    (src / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    catalog.add_root(src)
    settings.exclude = ["tmp"]
    stats = index(catalog, settings)
    assert stats.ok == 1
    assert stats.symlink_loops == 1
    assert stats.skipped_hidden == 2 and stats.skipped_excluded == 2
    kinds = {e["kind"] for e in catalog.errors("scan")}
    assert kinds == {"symlink_loop", "unreadable"}
    settings.include_hidden = True
    assert index(catalog, settings).ok == 2  # .hidden.jpg and .cache/thumb.jpg


def test_missing_root_marks_nothing_gone(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    make_photo(src / "a.jpg")
    catalog.add_root(src)
    index(catalog, settings)
    shutil.move(src, tmp_path / "unplugged")  # an external disk that is not mounted
    stats = index(catalog, settings)
    assert stats.gone == 0
    assert _photos(catalog) == 1
    assert [e["kind"] for e in catalog.errors("scan")] == ["root_missing"]


def test_cancel_keeps_finished_work(tmp_path: Path, settings: Settings, catalog: Catalog) -> None:
    src = tmp_path / "photos"
    for i in range(40):
        make_photo(src / f"p{i:02d}.jpg", seed=i)
    catalog.add_root(src)
    cancel = CancelToken()

    def stop_early(p: Progress) -> None:
        if p.stage == "ingest" and p.done >= 5:
            cancel.cancel()

    stats = index(catalog, settings, progress=Progress(on_update=stop_early), cancel=cancel)
    assert stats.cancelled
    saved = _photos(catalog)
    assert 5 <= saved < 40
    assert catalog.last_run()["status"] == "cancelled"  # type: ignore[index]
    resumed = index(catalog, settings)
    assert resumed.unchanged == saved and resumed.ok == 40 - saved
    assert _photos(catalog) == 40

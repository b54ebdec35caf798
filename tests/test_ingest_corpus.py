"""Ingestion of the shared real-world corpora: camera files with known metadata, and files that break code."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from tests.helpers import EVAL_PHOTOS, index

EXIF_DIR = EVAL_PHOTOS / "exif"
TRICKY_DIR = EVAL_PHOTOS / "tricky"
ORIENTATIONS = {
    "Horizontal (normal)": 1,
    "Mirrored horizontal": 2,
    "Rotated 180": 3,
    "Mirrored vertical": 4,
    "Mirrored horizontal then rotated 90 CCW": 5,
    "Rotated 90 CW": 6,
    "Mirrored horizontal then rotated 90 CW": 7,
    "Rotated 90 CCW": 8,
}


def _manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def exif_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, Settings]:
    from smartalbum.config import load_settings

    settings = load_settings(tmp_path_factory.mktemp("exiflib"), workers=2)
    cat = Catalog(settings.catalog_path)
    cat.add_root(EXIF_DIR.resolve())
    stats = index(cat, settings)
    assert stats.errors == 0, cat.errors()
    return cat, settings


def test_corpus_is_present() -> None:
    assert len(_manifest(EXIF_DIR)) >= 100, f"shared corpus missing under {EXIF_DIR}"
    assert len(_manifest(TRICKY_DIR)) >= 80


@pytest.mark.parametrize("row", _manifest(EXIF_DIR), ids=lambda r: r["filename"])
def test_exif_corpus_metadata(exif_library: tuple[Catalog, Settings], row: dict[str, str]) -> None:
    cat, _ = exif_library
    photo = cat.photo(str((EXIF_DIR / row["filename"]).resolve()))
    expected_time = row["pil_datetime_original"].strip()
    if expected_time:
        assert photo["time_source"] == "exif_original"
        assert photo["taken_at"] == expected_time.replace(":", "-", 2).replace(" ", "T")
    else:
        assert photo["time_source"] != "exif_original"
    if row["has_gps"] == "yes":
        assert photo["lat"] == pytest.approx(float(row["gps_lat"]), abs=1e-4)
        assert photo["lon"] == pytest.approx(float(row["gps_lon"]), abs=1e-4)
    else:
        assert photo["lat"] is None and photo["lon"] is None
    # A missing orientation tag and orientation 1 both mean "as stored" (Pillow also reads XMP's tag).
    assert (photo["orientation"] or 1) == ORIENTATIONS.get(row["orientation"], 1)
    if row["make"].strip() and "\n" not in row["make"]:
        assert photo["camera_make"] == " ".join(row["make"].split())


def test_exif_corpus_dimensions_follow_orientation(exif_library: tuple[Catalog, Settings]) -> None:
    cat, settings = exif_library
    from PIL import Image

    from smartalbum.ingest.decode import thumb_path

    for name, stored_w, stored_h in [("landscape_6.jpg", 450, 600), ("portrait_6.jpg", 600, 450)]:
        photo = cat.photo(str((EXIF_DIR / "jpg" / "orientation" / name).resolve()))
        # the file stores its pixels turned; the catalog and the thumbnail show it upright
        assert (photo["width"], photo["height"]) == (stored_h, stored_w)
        with Image.open(thumb_path(settings.thumbs_dir, photo["hash"], 256)) as thumb:
            assert (thumb.width > thumb.height) == (photo["width"] > photo["height"])


def test_heic_from_a_phone_is_read_with_time_and_rotation(exif_library: tuple[Catalog, Settings]) -> None:
    cat, _ = exif_library
    photo = cat.photo(str((EXIF_DIR / "heic" / "mobile" / "iphone_13_pro_max.HEIC").resolve()))
    assert photo["format"] == "HEIF"
    assert photo["taken_at"] == "2022-02-16T12:55:41"
    assert photo["orientation"] == 6
    assert (photo["width"], photo["height"]) == (3024, 4032)
    assert photo["camera_model"] == "iPhone 13 Pro Max"


def test_tricky_corpus_every_file_has_a_photo_or_an_error(settings: Settings, catalog: Catalog) -> None:
    from smartalbum.ingest.scan import PHOTO_EXTENSIONS

    catalog.add_root(TRICKY_DIR.resolve())
    stats = index(catalog, settings)
    rows = _manifest(TRICKY_DIR)
    candidates = [r for r in rows if Path(r["filename"]).suffix.lower() in PHOTO_EXTENSIONS]
    # files without a photo extension (.bin, .ico) are not photos: skipped and counted, not errors
    assert stats.skipped_other == len(rows) - len(candidates) + 1  # + manifest.csv itself
    for row in candidates:
        path = str((TRICKY_DIR / row["filename"]).resolve())
        error = catalog.file_error(path)
        if row["expected"].startswith("not readable"):
            assert error is not None, f"{row['filename']} should have an error row"
            assert error["kind"] in {"not_image", "truncated", "corrupt", "too_large"}
            assert error["message"]
            with pytest.raises(Exception, match="no photo"):
                catalog.photo(path)
        else:
            assert error is None, f"{row['filename']}: {error}"
            assert catalog.photo(path)["thumbs"] == 1
    assert stats.ok + stats.errors == len(candidates)
    bombs = [e for e in catalog.errors("ingest") if "decompression_bomb.gif" in e["subject"]]
    assert bombs and bombs[0]["kind"] == "too_large"

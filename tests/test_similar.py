"""Near-duplicate groups: fingerprints, the multi-index, grouping rules, the index stage and `duplicates`.

The generated set (tests/similar_photos.py) has bursts, edited copies, screenshots of the same chat, and traps
that must stay apart (other beaches and sunsets, the same place shot again from elsewhere seconds later,
another chat a minute later, flat frames). The groups are asserted exactly: one lost link or one false one
fails. bench/similar.py measures precision and recall over more seeds (README "Near-duplicates").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.catalog.similar import SIMILAR, SimilarStore
from smartalbum.config import Settings, load_settings
from smartalbum.ingest.decode import thumb_path
from smartalbum.media.similar import (
    BURST_SECONDS,
    CROWDED_SECOND,
    STRICT,
    VERSION,
    Fingerprint,
    Prints,
    fingerprint,
    group_ids,
    moment,
    near_pairs,
    signed,
    unsigned,
)
from smartalbum.pipeline.ingest import ingest_library
from smartalbum.pipeline.run import index_library
from smartalbum.pipeline.similar import find_similar
from tests.similar_photos import Shot, _save, edit, frame, generate, paint_world, true_groups

CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]


# -- the pure parts ---------------------------------------------------------------------------------------


def test_near_pairs_finds_exactly_what_brute_force_finds() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 3000, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 3000).astype(
        np.uint64
    )
    near = base[:300].copy()  # planted neighbours: up to 10 bits flipped
    for k in range(300):
        for bit in rng.choice(64, int(rng.integers(0, 11)), replace=False):
            near[k] ^= np.uint64(1) << np.uint64(bit)
    query = np.concatenate([near, rng.integers(0, 2**63, 200, dtype=np.uint64)])
    for radius in (STRICT, 6, 10):
        qi, bj = near_pairs(query, base, radius)
        got = set(zip(qi.tolist(), bj.tolist(), strict=True))
        dist = np.bitwise_count(query[:, None] ^ base[None, :])
        want = set(zip(*(a.tolist() for a in np.nonzero(dist <= radius)), strict=True))
        assert got == want, radius
        assert len(want) >= 150  # the planted ones are there to be found


def test_group_ids_keep_old_ids_merge_to_the_smallest_and_name_new_groups_by_their_first_photo() -> None:
    ids = [10, 11, 12, 20, 21, 30, 31, 40]
    before: list[int | None] = [10, 10, None, 20, 20, None, None, None]
    # 12 joins group 10; 21 links to 11, so groups 10 and 20 become one (10); 30 + 31 form a group; 40 alone
    after = group_ids(ids, before, [(2, 0), (4, 1), (5, 6)])
    assert after == {10: 10, 11: 10, 12: 10, 20: 10, 21: 10, 30: 30, 31: 30, 40: None}
    assert group_ids([5, 6], [None, None], []) == {5: None, 6: None}


def test_fingerprint_of_copies_is_close_of_other_pictures_far_and_flat_frames_are_flat(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    world = paint_world("beach", rng, 720, 468)
    photo = frame(world, rng, (480, 360), x=0.4, y=0.5)
    other = frame(paint_world("beach", rng, 720, 468), rng, (480, 360), x=0.4, y=0.5)
    small, _ = edit(photo, "resize", rng)
    fp, fp_small, fp_other = fingerprint(photo), fingerprint(small), fingerprint(other)
    assert bin(fp.phash ^ fp_small.phash).count("1") <= STRICT
    assert bin(fp.phash ^ fp_other.phash).count("1") > STRICT + 4
    assert not fp.flat
    assert fingerprint(Image.new("RGB", (300, 200), (30, 30, 32))).flat
    stored = Fingerprint.from_stored(signed(fp.phash), signed(fp.dhash), fp.extra(), fp.flat)
    assert stored == fp
    assert unsigned(signed(2**64 - 1)) == 2**64 - 1 and signed(2**64 - 1) == -1


def test_only_trusted_clocks_make_a_moment_and_a_crowded_second_is_none() -> None:
    assert moment("2024-07-12T15:30:00", "exif_original") is not None
    assert moment("2024-07-12T15:30:05", "filename") is not None
    assert moment("2024-07-12T00:00:00", "filename") is None  # a date without a time of day
    assert moment("2024-07-12T15:30:00", "mtime") is None  # copying files makes their times agree
    fp = fingerprint(Image.new("RGB", (64, 64), (10, 10, 10)))
    same = moment("2024-07-12T15:30:00", "exif_original")
    prints = Prints.build(
        list(range(CROWDED_SECOND + 1)), [fp] * (CROWDED_SECOND + 1), [same] * (CROWDED_SECOND + 1)
    )
    assert np.isnan(prints.times).all()  # a clock never set, not a burst
    two = Prints.build([1, 2], [fp, fp], [same, (same or 0) + BURST_SECONDS])
    assert not np.isnan(two.times).any()


# -- the generated set, ingested for real ---------------------------------------------------------------


@dataclass
class Built:
    settings: Settings
    folder: Path
    shots: list[Shot]


def _library(base: Path, shots_folder: Path) -> Settings:
    settings = load_settings(base / "library", workers=2, batch_size=16)
    with Catalog(settings.catalog_path) as catalog:
        catalog.add_root(shots_folder.resolve())
        assert ingest_library(catalog, settings).errors == 0
    return settings


def found_groups(catalog: Catalog, folder: Path) -> list[set[str]]:
    root = str(folder.resolve()) + "/"
    groups = SimilarStore(catalog).groups()
    return sorted(({p["path"][len(root) :] for p in g["photos"]} for g in groups), key=sorted)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("similar")
    folder = base / "photos"
    shots = generate(folder, worlds=2, chats=4, seed=1, size=(480, 360))
    return Built(_library(base, folder), folder, shots)


def test_generated_set_is_grouped_exactly_and_traps_stay_apart(built: Built) -> None:
    kinds = {s.kind for s in built.shots}
    assert {"burst", "edit", "screenshot", "trap", "flat"} <= kinds
    with Catalog(built.settings.catalog_path) as catalog:
        stats = find_similar(catalog, built.settings)
        assert (stats.todo, stats.fingerprinted, stats.errors) == (len(built.shots), len(built.shots), 0)
        assert stats.regrouped and stats.compared == len(built.shots)
        groups = found_groups(catalog, built.folder)
        truth = true_groups(built.shots)
        assert groups == truth
        kinds_grouped = {s.kind for s in built.shots if any(s.name in g for g in groups)}
        assert kinds_grouped == {"burst", "edit", "screenshot"}
        # edited copies that lost their EXIF time are grouped by their pixels alone
        assert any(
            s.kind == "edit" and s.taken is None and any(s.name in g for g in groups) for s in built.shots
        )
        rows = {r.hash: r for r in SimilarStore(catalog).rows(VERSION)}
        flat = {s.name for s in built.shots if s.kind == "flat"}
        for s in built.shots:
            row = rows[catalog.photo(str(built.folder / s.name))["hash"]]
            assert row.flat == (s.name in flat), s.name
            assert row.grouped
        # a second run has nothing to do
        again = find_similar(catalog, built.settings)
        assert (again.todo, again.compared, again.regrouped) == (0, 0, False)
        assert found_groups(catalog, built.folder) == truth


def test_duplicates_cli_lists_groups_largest_first_with_paths_as_json(built: Built) -> None:
    lib = str(built.settings.library_dir)
    out = subprocess.run([*CLI, "--library", lib, "duplicates", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)
    truth = true_groups(built.shots)
    assert [g["size"] for g in groups] == sorted((len(t) for t in truth), reverse=True)
    for g in groups:
        assert g["size"] == len(g["photos"]) >= 2
        names = {str(Path(p["path"]).relative_to(built.folder.resolve())) for p in g["photos"]}
        assert names in truth
        assert all(p["files"] == 1 and p["photo_id"] > 0 and len(p["hash"]) == 64 for p in g["photos"])
    biggest = groups[0]["size"]
    only = subprocess.run(
        [*CLI, "--library", lib, "duplicates", "--json", "--min-size", str(biggest)],
        capture_output=True,
        text=True,
    )
    assert {g["id"] for g in json.loads(only.stdout)} == {g["id"] for g in groups if g["size"] >= biggest}
    text = subprocess.run([*CLI, "--library", lib, "duplicates"], capture_output=True, text=True).stdout
    assert f"group {groups[0]['id']}: {biggest} photos" in text
    assert groups[0]["photos"][0]["path"] in text


# -- incremental runs, moves and errors ------------------------------------------------------------------


def _burst(folder: Path, seed: int) -> list[Path]:
    """Three frames of one beach a second apart, one picture of another beach, a sunset."""
    rng = np.random.default_rng(seed)
    world = paint_world("beach", rng, 720, 468)
    paths = []
    for k in range(3):
        img = frame(world, rng, (480, 360), x=0.4 + 0.02 * k, y=0.5, exposure=1 + 0.03 * k, move=0.01)
        path = folder / f"IMG_000{k}.jpg"
        _save(img, path, datetime(2024, 7, 12, 15, 30, 0) + timedelta(seconds=k))
        paths.append(path)
    for name, scene in (("other_beach.jpg", "beach"), ("sunset.jpg", "sunset")):
        img = frame(paint_world(scene, rng, 720, 468), rng, (480, 360), x=0.4, y=0.5)
        img.save(folder / name, quality=90)
        paths.append(folder / name)
    return paths


def test_moved_renamed_photo_keeps_its_group_and_a_new_copy_joins_it(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    frames = _burst(folder, 21)
    settings = _library(tmp_path, folder)
    with Catalog(settings.catalog_path) as catalog:
        report = index_library(catalog, settings, vlm=False, ocr=False, faces=False)
        assert report.similar is not None and report.similar.fingerprinted == 5
        assert report.as_dict()["similar"]["links"] >= 2
        ids = {p.name: catalog.photo(str(p))["id"] for p in frames}
        store = SimilarStore(catalog)
        groups = store.groups()
        assert len(groups) == 1
        gid = groups[0]["id"]
        assert gid == min(ids[f"IMG_000{k}.jpg"] for k in range(3))
        assert {p["photo_id"] for p in groups[0]["photos"]} == {ids[f"IMG_000{k}.jpg"] for k in range(3)}
        # moved into another folder and renamed: same content, same photo, same group, nothing computed again
        (folder / "trip").mkdir()
        moved = folder / "trip" / "renamed.jpg"
        shutil.move(folder / "IMG_0001.jpg", moved)
        # and an exported copy of the first frame (smaller, recompressed, no EXIF time)
        with Image.open(folder / "IMG_0000.jpg") as img:
            img.convert("RGB").resize((240, 180)).save(folder / "export.jpg", quality=60)
        report = index_library(catalog, settings, vlm=False, ocr=False, faces=False)
        assert report.similar is not None and report.similar.fingerprinted == 1  # only the export is new
        assert catalog.photo(str(moved))["id"] == ids["IMG_0001.jpg"]
        group = store.group(gid)
        paths = {p["path"] for p in group["photos"]}
        assert str(moved.resolve()) in paths and str((folder / "IMG_0001.jpg").resolve()) not in paths
        assert str((folder / "export.jpg").resolve()) in paths and group["size"] == 4
        assert [g["id"] for g in store.groups()] == [gid]  # the group kept its id
        assert store.groups_of([ids["other_beach.jpg"], ids["sunset.jpg"]]) == {}


def test_an_unreadable_thumbnail_is_an_error_row_and_is_read_on_a_later_run(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    frames = _burst(folder, 5)
    settings = _library(tmp_path, folder)
    with Catalog(settings.catalog_path) as catalog:
        broken = catalog.photo(str(frames[0]))["hash"]
        thumb = thumb_path(settings.thumbs_dir, broken, min(settings.thumb_sizes))
        saved = thumb.read_bytes()
        thumb.write_bytes(b"not a jpeg")
        stats = find_similar(catalog, settings)
        assert (stats.fingerprinted, stats.errors) == (4, 1)
        assert [e["subject"] for e in catalog.errors(SIMILAR)] == [broken]
        assert len(SimilarStore(catalog).groups()[0]["photos"]) == 2  # the other two frames
        thumb.write_bytes(saved)
        stats = find_similar(catalog, settings)
        assert (stats.todo, stats.fingerprinted, stats.errors) == (1, 1, 0)
        assert catalog.errors(SIMILAR) == []
        assert len(SimilarStore(catalog).groups()[0]["photos"]) == 3

"""A small library with real faces for the people API and web tests: photos composed from real faces
(tests/face_photos.py), indexed for real (the face stage included), with captions imported as a vision model
would have written them. Who is in which photo is known, so each person's group can be found by id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartalbum.config import load_settings
from smartalbum.library import Library
from tests.face_photos import compose, identities, save_jpeg
from tests.web_fixtures import INDEX_OPTIONS

# A is Mum, B is the owner, C is Bob
SCENES = {
    "a_snow": ("A", "snow"),
    "ab_beach": ("AB", "beach"),
    "abc_room": ("ABC", "room"),
    "b_room": ("B", "room"),
    "c_park": ("C", "park"),
    "a_beach": ("A", "beach"),
    "bc_snow": ("BC", "snow"),
}
CAPTIONS = {
    "snow": ("people standing in deep snow on a winter day", "冬天站在雪地里的人"),
    "beach": ("people on a sandy beach by the sea", "海边沙滩上的人"),
    "room": ("people sitting in a living room", "坐在客厅里的人"),
    "park": ("a person in a green park", "绿色公园里的人"),
}


@dataclass
class PeopleLibrary:
    library: Library
    folder: Path
    ids: dict[str, int]  # photo name -> photo id
    people: dict[str, int]  # "A", "B", "C" -> person id


def build_people_library(base: Path, seed: int = 3) -> PeopleLibrary:
    cast = {i.key: i for i in identities()}
    who = {letter: cast[f"t1-{n}"] for letter, n in zip("ABC", range(3), strict=True)}
    rng = np.random.default_rng(seed)
    folder = base / "photos"
    paths = {}
    for name, (letters, kind) in SCENES.items():
        image, _ = compose([who[c] for c in letters], rng, kind=kind)
        paths[name] = save_jpeg(image, folder / f"{name}.jpg", rng)
    settings = load_settings(
        base / "library", workers=1, batch_size=8, embed_model="offline", ocr_enabled=False
    )
    lib = Library(settings, index_options=INDEX_OPTIONS)
    lib.add_root(folder)
    report = lib.index(vlm=False, ocr=False)
    assert report.faces is not None and report.faces.errors == 0, report.faces
    lines = []
    for name, path in paths.items():
        en, zh = CAPTIONS[SCENES[name][1]]
        lines.append(json.dumps({"path": str(path), "caption": {"en": en, "zh": zh}}, ensure_ascii=False))
    captions = base / "captions.jsonl"
    captions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = lib.import_analyses(captions)
    assert imported.imported == len(paths), imported.errors
    ids = {name: lib.photo(str(p))["id"] for name, p in paths.items()}
    people = {}
    for letter in "ABC":
        shared = set.intersection(
            *[
                {f["person_id"] for f in lib.photo_faces(ids[n])}
                for n, (letters, _) in SCENES.items()
                if letter in letters
            ]
        )
        assert len(shared) == 1 and None not in shared, (letter, shared)
        people[letter] = shared.pop()
    assert len(set(people.values())) == 3, people
    return PeopleLibrary(lib, folder, ids, people)

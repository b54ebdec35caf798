"""The face-model protocol: one detector and one embedder behind one object, like the vision analysers.

A stronger model (e.g. InsightFace buffalo_l, downloaded by users who want it) is a second backend that
returns the same `Face` records; clustering, the catalog and search do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from smartalbum.config import Settings
from smartalbum.errors import ConfigError


@dataclass(slots=True)
class Face:
    """One face: its box relative to the upright image (0..1, so it fits every thumbnail size), the
    detector's confidence, and the identity vector."""

    x: float
    y: float
    w: float
    h: float
    score: float
    vector: np.ndarray  # float32, shape (model.dim,)


@dataclass(slots=True)
class FaceScan:
    """What one photo held: the faces kept (largest first) and how many were found before the cap."""

    faces: list[Face]
    found: int


class FaceModel(Protocol):
    name: str  # e.g. 'dlib'
    version: str  # detector + embedder + parameters; a change re-scans every photo
    dim: int
    # Distances between identity vectors (Euclidean): below `same` two faces are one person for this model.
    same: float

    def scan(self, image: Image.Image) -> FaceScan:
        """Faces in one upright RGB image. Never raises for an image without faces."""
        ...


FACE_MODELS = ("dlib",)


def face_model(settings: Settings) -> FaceModel:
    if settings.face_model == "dlib":
        from smartalbum.faces.dlib_backend import DlibFaceModel

        return DlibFaceModel(upsample=settings.face_upsample, max_faces=settings.face_max_per_photo)
    raise ConfigError(
        f"unknown face_model {settings.face_model!r}", f"choose one of: {', '.join(FACE_MODELS)}"
    )

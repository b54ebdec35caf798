"""Real faces for the tests and bench/faces.py, taken from two published packages at test time (never copied
into this repository) and cached under .test-artifacts/faces:

- the `insightface` 2.1 wheel (PyPI, MIT): insightface/data/images/t1.jpg, six people;
- `@vladmandic/face-api` 1.7.15 (npm, MIT): demo/sample1-6.jpg, group photos.

Neither source labels identities, so the identities are the faces themselves: each face found in a source
photo is cut out and placed into new photos at other sizes, angles, light, colour and JPEG quality, on
synthetic backgrounds. That variation is synthetic (no second real photo of the same person exists here);
it tests that grouping survives re-photographing conditions, not ageing, make-up or pose changes.
"""

from __future__ import annotations

import fcntl
import io
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".test-artifacts" / "faces"
NPM_TARBALL = "https://registry.npmjs.org/@vladmandic/face-api/-/face-api-1.7.15.tgz"
# faces a person sees in each group photo (counted by eye), for detection recall
VISIBLE_FACES = {
    "t1.jpg": 6,
    "sample1.jpg": 3,
    "sample2.jpg": 3,
    "sample3.jpg": 3,
    "sample4.jpg": 4,
    "sample5.jpg": 6,
    "sample6.jpg": 4,
}


# Checked by eye: the detector's box "sample1-3" (upsample 1, full size) is a sleeve badge, not a face; and
# the woman "sample3-1" is "sample1-2" (the demo photos share a model), so they are one identity.
NOT_FACES = {"sample1-3"}
SAME_PERSON = {"sample3-1": "sample1-2"}


def group_photos() -> list[Path]:
    """The seven real group photos, downloaded from the package registries on first use (one test process
    downloads, others running at the same time wait for it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _download()
    return [CACHE / name for name in VISIBLE_FACES]


def _download() -> None:
    if not (CACHE / "t1.jpg").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, "insightface==2.1"],
                check=True,
            )
            wheel = next(Path(tmp).glob("insightface-2.1-*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                (CACHE / "t1.jpg").write_bytes(zf.read("insightface/data/images/t1.jpg"))
    if not all((CACHE / f"sample{i}.jpg").is_file() for i in range(1, 7)):
        with urllib.request.urlopen(NPM_TARBALL, timeout=120) as response:
            data = response.read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            for i in range(1, 7):
                member = tf.extractfile(f"package/demo/sample{i}.jpg")
                assert member is not None
                (CACHE / f"sample{i}.jpg").write_bytes(member.read())


@dataclass
class Identity:
    """One real face, cut out with a margin; `key` names the person (two crops of one person share it)."""

    key: str
    crop: Image.Image


def identities(min_px: int = 60) -> list[Identity]:
    """Every face dlib finds in the group photos at full size (upsample 1), at least `min_px` wide, cut
    out with 60% margin. Cached as PNGs, so the detector runs once per machine."""
    folder = CACHE / "identities"
    if folder.is_dir() and any(folder.glob("*.png")):
        return [
            Identity(SAME_PERSON.get(p.stem, p.stem), Image.open(p).convert("RGB"))
            for p in sorted(folder.glob("*.png"))
            if p.stem not in NOT_FACES
        ]
    import dlib

    detector = dlib.get_frontal_face_detector()
    folder.mkdir(parents=True, exist_ok=True)
    for photo in group_photos():
        image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
        boxes = detector(np.asarray(image), 1)
        for n, box in enumerate(sorted(boxes, key=lambda b: b.left())):
            if box.width() < min_px:
                continue
            m = int(box.width() * 0.6)
            crop = image.crop((box.left() - m, box.top() - m, box.right() + m, box.bottom() + m))
            key = f"{photo.stem}-{n}"
            crop.save(folder / f"{key}.png")
    return identities(min_px)


BACKGROUNDS = {
    "snow": ((235, 240, 248), (205, 215, 228)),
    "beach": ((120, 180, 235), (225, 200, 150)),
    "room": ((150, 120, 100), (90, 70, 60)),
    "park": ((140, 190, 240), (70, 130, 60)),
}


def background(kind: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    top, bottom = (np.array(c, np.float32) for c in BACKGROUNDS[kind])
    w, h = size
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = top * (1 - t) + bottom * t + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return Image.fromarray(np.clip(np.broadcast_to(img, (h, w, 3)), 0, 255).astype(np.uint8))


@dataclass
class Placed:
    key: str  # identity
    box: tuple[float, float, float, float]  # x, y, w, h relative to the photo: where the face crop went


def compose(
    faces: list[Identity],
    rng: np.random.Generator,
    *,
    kind: str = "room",
    size: tuple[int, int] = (1024, 768),
    vary: bool = True,
) -> tuple[Image.Image, list[Placed]]:
    """A new photo with these faces side by side on a `kind` background. With `vary`, each face gets
    another size (crop 170-330 px wide), a tilt up to 10 degrees, brightness 0.7-1.3, contrast, a mirror
    half the time and grayscale one time in six."""
    canvas = background(kind, size, rng)
    placed = []
    slot = size[0] // max(len(faces), 1)
    for i, face in enumerate(faces):
        crop = face.crop
        width = int(rng.uniform(170, 330)) if vary else 250
        width = min(width, slot - 8)
        crop = crop.resize((width, int(crop.height * width / crop.width)), Image.Resampling.LANCZOS)
        if vary:
            if rng.random() < 0.5:
                crop = ImageOps.mirror(crop)
            crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.7, 1.3)))
            crop = ImageEnhance.Contrast(crop).enhance(float(rng.uniform(0.8, 1.2)))
            if rng.random() < 1 / 6:
                crop = ImageOps.grayscale(crop).convert("RGB")
            crop = crop.rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BICUBIC, expand=False)
        mask = Image.new("L", crop.size, 0)
        inner = Image.new("L", (crop.width - 16, crop.height - 16), 255)
        mask.paste(inner, (8, 8))
        mask = mask.filter(ImageFilter.GaussianBlur(6))
        x = i * slot + (slot - crop.width) // 2
        y = int(rng.uniform(0.05, 0.95) * max(size[1] - crop.height, 1))
        canvas.paste(crop, (x, y), mask)
        box = (x / size[0], y / size[1], crop.width / size[0], crop.height / size[1])
        placed.append(Placed(face.key, box))
    return canvas, placed


def save_jpeg(image: Image.Image, path: Path, rng: np.random.Generator | None = None) -> Path:
    """Save at a JPEG quality drawn from 40-90 (85 without `rng`)."""
    quality = int(rng.uniform(40, 90)) if rng is not None else 85
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=quality)
    return path


def identity_of(box: tuple[float, float, float, float], placed: list[Placed]) -> str | None:
    """The identity whose placed crop holds the centre of a detected face box."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    for p in placed:
        x, y, w, h = p.box
        if x <= cx <= x + w and y <= cy <= y + h:
            return p.key
    return None

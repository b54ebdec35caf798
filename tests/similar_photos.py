"""A generated photo set with known near-duplicate groups, for tests/test_similar.py and bench/similar.py.

Every photo is painted from a procedural "world" (beach, sunset, mountains, city, room, forest) or is a phone
screenshot of a chat, and every file knows its true group:

- bursts: 3-5 frames of one world a fraction of a second apart, the camera shaking by 1-3 % of the frame,
  exposure moving by up to 10 %, people in the picture moving a little, fresh sensor noise per frame;
- edited copies of a photo: resized exports, recompressed at low JPEG quality, a slight colour change
  (saturation, warmth, brightness), a crop of 6-12 % of the frame; some keep the EXIF time, some lose it
  (then the file's time is the day of the edit, weeks later);
- screenshots of the same thing: the same chat a few minutes later (the clock in the status bar changed) or
  scrolled by a few pixels;

and the traps that must stay apart, each a photo of its own:

- other worlds of the same type: two beaches, two sunsets, two chats in the same app, with the same layout
  (sky, sea, sand; bubbles left and right) and the same palette family;
- the same place shot again from somewhere else: a pan of a third of the frame or a zoom, 10-90 s after the
  previous shot, so time alone would join them;
- flat frames (a lens cap, a blank wall) in different colours.

Deterministic for a seed. `pairs(shots)` gives the true linked pairs. `real_variants` does the same with the
real camera photos of ../shared/eval (edited copies and pseudo-bursts of each) for bench/similar.py.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

SHARED_EXIF = (
    Path(os.environ.get("SMARTALBUM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    / "eval"
    / "photos"
    / "exif"
)

SCENES = ("beach", "sunset", "mountain", "city", "room", "forest")
_TEXT = (
    "ok see you at eight tomorrow the train leaves early bring the tickets please dinner was great thanks "
    "for the photos where are we meeting lunch coffee weekend plans sounds good call me later happy birthday "
    "明天 见 好的 谢谢 晚饭 周末 电影 地铁 下班 照片 收到"
)
WORDS = tuple(_TEXT.split())


@dataclass(frozen=True)
class Shot:
    name: str  # file name inside the folder
    group: str | None  # true near-duplicate group; None: a photo of its own
    kind: str  # burst | edit | screenshot | trap | single | flat
    scene: str
    taken: datetime | None  # the EXIF (or screenshot file name) time; None: only the file's own time


def pairs(shots: list[Shot]) -> set[frozenset[str]]:
    """Every pair of file names that belong to the same true group."""
    groups: dict[str, list[str]] = {}
    for s in shots:
        if s.group:
            groups.setdefault(s.group, []).append(s.name)
    return {frozenset(p) for names in groups.values() for p in combinations(names, 2)}


def true_groups(shots: list[Shot]) -> list[set[str]]:
    groups: dict[str, set[str]] = {}
    for s in shots:
        if s.group:
            groups.setdefault(s.group, set()).add(s.name)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: sorted(g))


# -- painting -------------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1] at the size of the world: a coarse random grid, upsampled."""
    gw, gh = max(2, cells), max(2, cells * h // w)
    grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8), "L")
    return np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1.0


def _gradient(w: int, h: int, top: tuple[float, ...], bottom: tuple[float, ...]) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(np.array(top) * (1 - t) + np.array(bottom) * t, (h, w, 3)).copy()


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], spread: int = 30) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)
    return r, g, b


def _rgb(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def _person(d: ImageDraw.ImageDraw, x: float, y: float, s: float, colour: tuple[int, int, int]) -> None:
    d.ellipse([x - s * 0.25, y - s * 1.6, x + s * 0.25, y - s * 1.1], fill=(224, 180, 150))
    d.rectangle([x - s * 0.35, y - s * 1.1, x + s * 0.35, y - s * 0.2], fill=colour)
    d.rectangle([x - s * 0.3, y - s * 0.2, x + s * 0.3, y + s * 0.5], fill=(50, 50, 70))


@dataclass
class World:
    """A painted place bigger than one frame; `people` are drawn per shot, so a burst can move them."""

    image: Image.Image
    people: list[tuple[float, float, float, tuple[int, int, int]]]  # x, y, size, colour in world pixels


def paint_world(scene: str, rng: np.random.Generator, w: int, h: int) -> World:
    paint = {
        "beach": _beach,
        "sunset": _sunset,
        "mountain": _mountain,
        "city": _city,
        "room": _room,
        "forest": _forest,
    }[scene]
    return paint(rng, w, h)


def _sky(rng: np.random.Generator, w: int, h: int, top: tuple[int, ...], low: tuple[int, ...]) -> np.ndarray:
    sky = _gradient(w, h, top, low)
    clouds = np.clip(_noise(rng, w, h, int(rng.integers(4, 12))) * 1.6 - rng.uniform(0.2, 0.9), 0, 1)
    return sky * (1 - clouds[..., None] * 0.8) + 245 * clouds[..., None] * 0.8


def _beach(rng: np.random.Generator, w: int, h: int) -> World:
    horizon = int(h * rng.uniform(0.28, 0.55))
    shore = horizon + int(h * rng.uniform(0.12, 0.3))
    a = _sky(rng, w, h, _jitter(rng, (70, 130, 210)), _jitter(rng, (190, 215, 240)))
    sea_top, sea_low = _jitter(rng, (30, 90, 150)), _jitter(rng, (60, 160, 170))
    sea = _gradient(w, h, sea_top, sea_low)
    yy = np.arange(h, dtype=np.float32)[:, None]
    waves = np.sin(yy * rng.uniform(0.3, 0.8) + _noise(rng, w, h, 20) * 3) * 18
    sea += waves[..., None]
    sand = np.array(_jitter(rng, (220, 195, 150)), dtype=np.float32) + _noise(rng, w, h, 60)[..., None] * 14
    a[horizon:shore] = sea[horizon:shore]
    a[shore:] = sand[shore:]
    img = _rgb(a)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 7))):  # umbrellas and towels on the sand
        x, y = rng.uniform(0, w), rng.uniform(shore + 10, h - 10)
        s = rng.uniform(0.04, 0.1) * w
        colour = tuple(int(c) for c in rng.integers(30, 255, 3))
        d.line([x, y, x, y - s], fill=(90, 70, 50), width=max(2, w // 300))
        d.polygon([(x - s * 0.7, y - s * 0.8), (x + s * 0.7, y - s * 0.8), (x, y - s * 1.2)], fill=colour)
        d.rectangle([x + s * 0.2, y - s * 0.1, x + s * 0.9, y + s * 0.25], fill=_jitter(rng, colour, 60))
    if rng.random() < 0.6:  # a boat
        x, y, s = rng.uniform(0, w), rng.uniform(horizon + 5, shore - 5), rng.uniform(0.03, 0.07) * w
        d.polygon(
            [(x - s, y), (x + s, y), (x + s * 0.7, y + s * 0.3), (x - s * 0.7, y + s * 0.3)], fill="white"
        )
        d.polygon([(x, y), (x, y - s * 1.2), (x + s * 0.8, y)], fill=_jitter(rng, (230, 230, 230)))
    people = [
        (rng.uniform(0, w), rng.uniform(shore + 20, h - 5), rng.uniform(0.03, 0.07) * h,
         tuple(int(c) for c in rng.integers(20, 255, 3)))
        for _ in range(int(rng.integers(1, 5)))
    ]  # fmt: skip
    return World(img, people)  # type: ignore[arg-type]


def _sunset(rng: np.random.Generator, w: int, h: int) -> World:
    horizon = int(h * rng.uniform(0.45, 0.7))
    a = _gradient(w, h, _jitter(rng, (60, 40, 110)), _jitter(rng, (250, 140, 60)))
    bands = np.clip(_noise(rng, w, h, int(rng.integers(3, 9))) - 0.3, 0, 1)[..., None]
    a = a * (1 - bands * 0.6) + np.array(_jitter(rng, (120, 50, 90))) * bands * 0.6
    sea = _gradient(w, h, _jitter(rng, (90, 50, 70)), _jitter(rng, (20, 15, 40)))
    sea += (np.sin(np.arange(h, dtype=np.float32)[:, None] * 0.9) * 10)[..., None]
    a[horizon:] = sea[horizon:]
    img = _rgb(a)
    d = ImageDraw.Draw(img)
    sx, r = rng.uniform(0.1, 0.9) * w, rng.uniform(0.04, 0.1) * h
    sy = horizon - rng.uniform(-0.5, 2.5) * r
    d.ellipse([sx - r, sy - r, sx + r, sy + r], fill=_jitter(rng, (255, 220, 120), 20))
    d.rectangle([0, horizon, w, h], fill=None)
    for k in range(0, int(h - horizon), 6):  # the sun's path on the water
        half = r * (1.2 - k / (h - horizon)) * rng.uniform(0.5, 1.0)
        d.line([sx - half, horizon + k, sx + half, horizon + k], fill=(250, 190, 100), width=2)
    land = [(0, horizon)]  # a dark headland or city skyline on one side
    side = rng.random() < 0.5
    for i in range(12):
        x = (i / 11) * w * rng.uniform(0.3, 0.6)
        land.append((w - x if side else x, horizon - rng.uniform(0, 0.25) * h))
    land.append((w if side else land[-1][0], horizon))
    d.polygon(land if not side else [(w, horizon), *land[1:]], fill=_jitter(rng, (25, 15, 30), 10))
    for _ in range(int(rng.integers(0, 4))):  # palm trees
        x = rng.uniform(0, w)
        top = horizon - rng.uniform(0.2, 0.4) * h
        d.line([x, horizon, x + rng.uniform(-20, 20), top], fill=(20, 10, 20), width=max(3, w // 150))
        for ang in np.linspace(0, 2 * np.pi, 7)[:-1]:
            d.line(
                [x, top, x + np.cos(ang) * 0.08 * w, top + np.sin(ang) * 0.05 * h], fill=(20, 10, 20), width=4
            )
    return World(img, [])


def _mountain(rng: np.random.Generator, w: int, h: int) -> World:
    a = _sky(rng, w, h, _jitter(rng, (90, 140, 200)), _jitter(rng, (200, 220, 235)))
    img = _rgb(a)
    d = ImageDraw.Draw(img)
    base = h * rng.uniform(0.35, 0.55)
    for layer in range(int(rng.integers(2, 5))):
        pts = np.cumsum(rng.normal(0, h * 0.03, 40))
        pts = np.convolve(pts, np.ones(3) / 3, mode="same") + base + layer * h * 0.09
        xs = np.linspace(-10, w + 10, len(pts))
        shade = 0.55 + 0.15 * layer
        colour = _jitter(rng, (int(80 * shade), int(110 * shade + 20 * layer), int(140 * shade)), 20)
        d.polygon([(-10, h), *zip(xs.tolist(), pts.tolist(), strict=True), (w + 10, h)], fill=colour)
    ground = int(h * rng.uniform(0.7, 0.85))
    arr = np.asarray(img, dtype=np.float32).copy()
    meadow = np.array(_jitter(rng, (90, 140, 60)), dtype=np.float32) + _noise(rng, w, h, 50)[..., None] * 25
    arr[ground:] = meadow[ground:]
    img = _rgb(arr)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 12))):  # rocks and bushes
        x, y, s = rng.uniform(0, w), rng.uniform(ground, h), rng.uniform(0.01, 0.04) * w
        d.ellipse([x - s, y - s * 0.6, x + s, y + s * 0.6], fill=_jitter(rng, (70, 90, 50), 40))
    people = (
        [(rng.uniform(0, w), rng.uniform(ground + 10, h - 5), 0.08 * h, (200, 40, 40))]
        if rng.random() < 0.5
        else []
    )
    return World(img, people)  # type: ignore[arg-type]


def _city(rng: np.random.Generator, w: int, h: int) -> World:
    img = _rgb(_sky(rng, w, h, _jitter(rng, (110, 150, 200)), _jitter(rng, (210, 220, 230))))
    d = ImageDraw.Draw(img)
    street = int(h * rng.uniform(0.75, 0.9))
    x = -rng.uniform(0, 40)
    while x < w:
        bw = rng.uniform(0.06, 0.18) * w
        top = rng.uniform(0.1, 0.6) * h
        facade = _jitter(rng, (150, 140, 130), 60)
        d.rectangle([x, top, x + bw, street], fill=facade)
        win = _jitter(rng, (60, 80, 110), 40)
        step_x, step_y = rng.uniform(10, 22), rng.uniform(14, 26)
        for wy in np.arange(top + 8, street - 12, step_y):
            for wx in np.arange(x + 6, x + bw - 10, step_x):
                d.rectangle([wx, wy, wx + step_x * 0.5, wy + step_y * 0.55], fill=win)
        x += bw + rng.uniform(0, 12)
    d.rectangle([0, street, w, h], fill=_jitter(rng, (80, 80, 85), 15))
    for k in range(int(rng.integers(0, 4))):  # cars
        cx, cw = rng.uniform(0, w), rng.uniform(0.08, 0.15) * w
        d.rounded_rectangle(
            [cx, street + 8 + k * 6, cx + cw, street + 8 + k * 6 + cw * 0.35],
            6,
            fill=_jitter(rng, (150, 40, 40), 90),
        )
    people = [
        (
            rng.uniform(0, w),
            rng.uniform(street + 5, h - 2),
            0.07 * h,
            tuple(int(c) for c in rng.integers(20, 255, 3)),
        )
        for _ in range(int(rng.integers(0, 4)))
    ]
    return World(img, people)  # type: ignore[arg-type]


def _room(rng: np.random.Generator, w: int, h: int) -> World:
    floor = int(h * rng.uniform(0.6, 0.75))
    wall = np.array(_jitter(rng, (225, 215, 195), 30), dtype=np.float32) + _noise(rng, w, h, 8)[..., None] * 6
    wood = np.array(_jitter(rng, (150, 105, 70), 30), dtype=np.float32)
    planks = (np.sin(np.arange(w, dtype=np.float32)[None, :] * rng.uniform(0.05, 0.12)) * 12)[..., None]
    a = wall.copy()
    a[floor:] = (wood + planks + _noise(rng, w, h, 80)[..., None] * 8)[floor:]
    img = _rgb(a)
    d = ImageDraw.Draw(img)
    wx, ww = rng.uniform(0.05, 0.6) * w, rng.uniform(0.2, 0.35) * w  # a window with sky
    wy, wh = rng.uniform(0.08, 0.2) * h, rng.uniform(0.25, 0.4) * h
    d.rectangle(
        [wx, wy, wx + ww, wy + wh], fill=_jitter(rng, (160, 200, 240)), outline=(250, 250, 250), width=8
    )
    d.line([wx + ww / 2, wy, wx + ww / 2, wy + wh], fill=(250, 250, 250), width=6)
    sx, sw = rng.uniform(0, 0.5) * w, rng.uniform(0.3, 0.5) * w  # a sofa
    sofa = _jitter(rng, (110, 90, 140), 80)
    d.rounded_rectangle([sx, floor - 0.22 * h, sx + sw, floor + 0.08 * h], 20, fill=sofa)
    d.rounded_rectangle(
        [sx + 10, floor - 0.14 * h, sx + sw - 10, floor + 0.02 * h], 14, fill=_jitter(rng, sofa, 25)
    )
    px, pw = rng.uniform(0.1, 0.8) * w, rng.uniform(0.08, 0.16) * w  # a picture on the wall
    d.rectangle(
        [px, 0.15 * h, px + pw, 0.15 * h + pw * 0.75],
        fill=_jitter(rng, (120, 150, 100), 90),
        outline=(60, 40, 20),
        width=5,
    )
    tx = rng.uniform(0.2, 0.8) * w  # a table and a lamp
    d.rectangle([tx - 0.08 * w, floor + 0.05 * h, tx + 0.08 * w, floor + 0.08 * h], fill=(90, 60, 40))
    d.polygon(
        [
            (tx - 30, floor - 0.3 * h),
            (tx + 30, floor - 0.3 * h),
            (tx + 18, floor - 0.38 * h),
            (tx - 18, floor - 0.38 * h),
        ],
        fill=_jitter(rng, (240, 220, 160)),
    )
    people = (
        [(sx + sw * 0.5, floor - 0.02 * h, 0.12 * h, tuple(int(c) for c in rng.integers(20, 255, 3)))]
        if rng.random() < 0.5
        else []
    )
    return World(img, people)  # type: ignore[arg-type]


def _forest(rng: np.random.Generator, w: int, h: int) -> World:
    a = _sky(rng, w, h, _jitter(rng, (120, 170, 220)), _jitter(rng, (210, 230, 235)))
    ground = int(h * rng.uniform(0.65, 0.8))
    a[ground:] = (
        np.array(_jitter(rng, (80, 100, 50)), dtype=np.float32) + _noise(rng, w, h, 60)[..., None] * 20
    )[ground:]
    img = _rgb(a)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(8, 20))):
        x = rng.uniform(0, w)
        tw = rng.uniform(0.01, 0.03) * w
        top = rng.uniform(0.05, 0.4) * h
        bottom = ground + rng.uniform(0, 0.15) * h
        d.rectangle([x - tw, top + 0.1 * h, x + tw, bottom], fill=_jitter(rng, (80, 55, 35), 20))
        r = rng.uniform(0.05, 0.12) * w
        d.ellipse([x - r, top - r * 0.6, x + r, top + r * 1.1], fill=_jitter(rng, (40, 110, 50), 35))
    people = [(rng.uniform(0, w), ground + 0.1 * h, 0.09 * h, (230, 120, 30))] if rng.random() < 0.5 else []
    return World(img, people)  # type: ignore[arg-type]


def frame(
    world: World,
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    x: float,
    y: float,
    zoom: float = 1.0,
    exposure: float = 1.0,
    move: float = 0.0,
) -> Image.Image:
    """One shot of a world: a window at (x, y) (fractions of the free room), zoom > 1 narrows it, people
    moved by up to `move` of the frame, exposure scaled, and sensor noise of its own."""
    img = world.image.copy()
    d = ImageDraw.Draw(img)
    ww, wh = img.size
    for px, py, s, colour in world.people:
        dx, dy = rng.uniform(-move, move) * ww, rng.uniform(-move, move) * wh * 0.3
        _person(d, px + dx, py + dy, s, colour)
    cw, ch = size[0] / zoom * (ww / size[0] / 1.5), size[1] / zoom * (wh / size[1] / 1.3)
    left, top = x * (ww - cw), y * (wh - ch)
    shot = img.crop((round(left), round(top), round(left + cw), round(top + ch))).resize(
        size, Image.Resampling.LANCZOS
    )
    a = np.asarray(shot, dtype=np.float32) * exposure + rng.normal(0, 3.0, (size[1], size[0], 3))
    return _rgb(a)


# -- screenshots ------------------------------------------------------------------------------------------


@dataclass
class Chat:
    bubbles: list[tuple[bool, str]]  # (mine, text)
    theme: tuple[int, int, int]
    title: str


def new_chat(rng: np.random.Generator) -> Chat:
    n = int(rng.integers(6, 11))
    bubbles = [
        (bool(rng.random() < 0.5), " ".join(rng.choice(WORDS, int(rng.integers(2, 12))))) for _ in range(n)
    ]
    title = " ".join(rng.choice(WORDS, 2))
    return Chat(bubbles, _jitter(rng, (120, 200, 120), 40), title)


_FONT_CACHE: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}


def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if px not in _FONT_CACHE:
        try:
            _FONT_CACHE[px] = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", px)
        except OSError:
            _FONT_CACHE[px] = ImageFont.load_default()
    return _FONT_CACHE[px]


def screenshot(
    chat: Chat, size: tuple[int, int], *, clock: str, scroll: int = 0, battery: int = 80
) -> Image.Image:
    """A phone screenshot of a chat: status bar (clock, battery), title bar, bubbles, input bar."""
    w, h = size
    img = Image.new("RGB", size, (237, 237, 237))
    d = ImageDraw.Draw(img)
    unit = w / 36
    y = 3.2 * unit - scroll
    font = _font(int(unit * 1.2))
    for mine, text in chat.bubbles:
        words = text.split()
        lines = [" ".join(words[i : i + 4]) for i in range(0, len(words), 4)]
        bw = min(w * 0.7, unit * 0.7 * max(len(line) for line in lines) + unit * 2)
        bh = unit * 1.8 * len(lines) + unit
        x0 = w - bw - unit * 4 if mine else unit * 4
        d.rectangle(
            [
                w - unit * 3.3 if mine else unit * 0.6,
                y,
                w - unit * 0.6 if mine else unit * 3.3,
                y + unit * 2.7,
            ],
            fill=(160, 170, 190) if mine else (200, 150, 120),
        )
        d.rounded_rectangle(
            [x0, y, x0 + bw, y + bh], int(unit * 0.6), fill=chat.theme if mine else (255, 255, 255)
        )
        for i, line in enumerate(lines):
            d.text((x0 + unit, y + unit * 0.5 + i * unit * 1.8), line, fill=(20, 20, 20), font=font)
        y += bh + unit * 1.2
    d.rectangle([0, 0, w, 3.2 * unit], fill=(237, 237, 237))  # the bars are drawn over scrolled content
    d.text((unit, unit * 0.3), clock, fill=(0, 0, 0), font=_font(int(unit)))
    d.rectangle(
        [w - unit * 3.5, unit * 0.5, w - unit * 3.5 + unit * 2.5 * battery / 100, unit * 1.2], fill=(0, 0, 0)
    )
    d.text((w / 2 - unit * 3, unit * 1.6), chat.title, fill=(0, 0, 0), font=font)
    d.rectangle([0, h - 3 * unit, w, h], fill=(247, 247, 247))
    d.rounded_rectangle(
        [unit * 3, h - 2.4 * unit, w - unit * 6, h - 0.6 * unit], int(unit * 0.5), fill="white"
    )
    return img


# -- edits -----------------------------------------------------------------------------------------------


def edit(img: Image.Image, how: str, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """An edited copy and the JPEG quality to save it with."""
    w, h = img.size
    if how == "resize":
        f = rng.choice([0.5, 0.4, 0.3])
        return img.resize((round(w * f), round(h * f)), Image.Resampling.BICUBIC), 85
    if how == "recompress":
        return img, int(rng.integers(25, 45))
    if how == "colour":
        out = ImageEnhance.Color(img).enhance(rng.uniform(1.1, 1.3))
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.92, 1.08))
        a = np.asarray(out, dtype=np.float32) * np.array(
            [rng.uniform(1.0, 1.06), 1.0, rng.uniform(0.92, 1.0)]
        )
        return _rgb(a), 90
    if how == "crop":
        cut = rng.uniform(0.06, 0.12)
        left, top = rng.uniform(0, cut) * w, rng.uniform(0, cut) * h
        return img.crop(
            (round(left), round(top), round(left + w * (1 - cut)), round(top + h * (1 - cut)))
        ), 90
    raise ValueError(how)


# -- the set -----------------------------------------------------------------------------------------------


def _save(
    img: Image.Image, path: Path, taken: datetime | None, quality: int = 90, mtime: datetime | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        img.save(path, "PNG")
    else:
        exif = b""
        if taken is not None:
            stamp = taken.strftime("%Y:%m:%d %H:%M:%S").encode()
            sub = f"{taken.microsecond // 10000:02d}".encode()
            exif = piexif.dump(
                {"Exif": {piexif.ExifIFD.DateTimeOriginal: stamp, piexif.ExifIFD.SubSecTimeOriginal: sub}}
            )
        img.save(path, "JPEG", quality=quality, exif=exif)
    when = (mtime or taken or datetime(2024, 1, 1)).timestamp()
    os.utime(path, (when, when))


def generate(
    folder: Path,
    *,
    worlds: int = 4,
    chats: int = 4,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    only: tuple[str, ...] = (),
) -> list[Shot]:
    """Write the set into `folder`: per scene type `worlds` worlds (each a burst, an edited original, the same
    place shot again, or a single photo, in turn) and `chats` chats. Returns every file with its truth."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    shots: list[Shot] = []
    clock = datetime(2021, 3, 1, 9, 0, 0) + timedelta(days=seed * 37 % 1000)  # always in the past
    kinds = ["burst", "edits", "trap", "burst", "edits", "single"]
    ww, wh = round(size[0] * 1.5), round(size[1] * 1.3)
    for scene in only or SCENES:
        for i in range(worlds):
            world = paint_world(scene, rng, ww, wh)
            kind = kinds[(i + SCENES.index(scene)) % len(kinds)]
            clock += timedelta(minutes=int(rng.integers(20, 600)))
            base = f"{scene}{i:02d}"
            x0, y0 = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
            if kind == "burst":
                for k in range(int(rng.integers(3, 6))):
                    t = clock + timedelta(seconds=k * rng.uniform(0.2, 0.6))
                    img = frame(world, rng, size, x=float(np.clip(x0 + rng.uniform(-0.06, 0.06), 0, 1)),
                                y=float(np.clip(y0 + rng.uniform(-0.08, 0.08), 0, 1)),
                                exposure=rng.uniform(0.9, 1.1), move=0.01)  # fmt: skip
                    name = f"burst/{base}_{k}.jpg"
                    _save(img, folder / name, t)
                    shots.append(Shot(name, base, "burst", scene, t))
            elif kind == "edits":
                img = frame(world, rng, size, x=x0, y=y0)
                name = f"edits/{base}.jpg"
                _save(img, folder / name, clock, 92)
                shots.append(Shot(name, base, "edit", scene, clock))
                hows = pick.sample(["resize", "recompress", "colour", "crop"], int(rng.integers(2, 5)))
                for how in hows:
                    out, quality = edit(img, how, rng)
                    keep_time = rng.random() < 0.5
                    edited = clock + timedelta(
                        days=int(rng.integers(3, 60)), minutes=int(rng.integers(0, 600))
                    )
                    name = f"edits/{base}_{how}.jpg"
                    _save(out, folder / name, clock if keep_time else None, quality, mtime=edited)
                    shots.append(Shot(name, base, "edit", scene, clock if keep_time else None))
            elif kind == "trap":  # the same place again, from elsewhere: a pan or a zoom, seconds later
                spots = [(x0, y0, 1.0)]
                spots.append(((x0 + 0.55) % 1.0, y0, 1.0))  # a pan of about a third of the frame
                spots.append((x0, float(np.clip(y0 + 0.3, 0, 1)), 1.6))  # zoomed in on a part
                t = clock
                for k, (x, y, zoom) in enumerate(spots):
                    t += timedelta(seconds=int(rng.integers(10, 90)))
                    img = frame(world, rng, size, x=x, y=y, zoom=zoom)
                    name = f"traps/{base}_{k}.jpg"
                    _save(img, folder / name, t)
                    shots.append(Shot(name, None, "trap", scene, t))
            else:
                img = frame(world, rng, size, x=x0, y=y0)
                name = f"single/{base}.jpg"
                _save(img, folder / name, clock)
                shots.append(Shot(name, None, "single", scene, clock))
    phone = (size[1] * 9 // 16 // 2 * 2, size[1])
    for i in range(chats):
        chat = new_chat(rng)
        clock += timedelta(minutes=int(rng.integers(30, 300)))
        base = f"chat{i:02d}"
        if i % 2 == 0:  # the same chat captured again: later (clock, battery) and scrolled a little
            for k in range(int(rng.integers(2, 4))):
                t = clock + timedelta(minutes=k * int(rng.integers(1, 9)))
                scroll = int(rng.integers(0, 12)) * (k > 0)
                img = screenshot(chat, phone, clock=t.strftime("%H:%M"), scroll=scroll, battery=80 - 3 * k)
                name = f"screens/Screenshot_{t:%Y-%m-%d-%H-%M-%S}_{base}_{k}.png"
                _save(img, folder / name, None, mtime=t)
                shots.append(Shot(name, base, "screenshot", "chat", t))
        else:  # another chat of the same app, a minute later: a trap
            for k in range(2):
                t = clock + timedelta(minutes=k)
                other = chat if k == 0 else new_chat(rng)
                img = screenshot(other, phone, clock=t.strftime("%H:%M"))
                name = f"screens/Screenshot_{t:%Y-%m-%d-%H-%M-%S}_{base}_{k}.png"
                _save(img, folder / name, None, mtime=t)
                shots.append(Shot(name, None, "screenshot", "chat", t))
    for k, colour in enumerate([(20, 20, 22), (24, 22, 20), (230, 230, 225), (200, 60, 50)]):
        img = Image.new("RGB", size, colour)
        img = _rgb(np.asarray(img, dtype=np.float32) + rng.normal(0, 2.0, (size[1], size[0], 3)))
        t = clock + timedelta(hours=k + 1)
        name = f"flat/flat{k}.jpg"
        _save(img, folder / name, t)
        shots.append(Shot(name, None, "flat", "flat", t))
    return shots


def real_variants(source: Path, folder: Path, *, seed: int = 5) -> list[Shot]:
    """Every decodable real photo under `source` (at most 1600 px), four edited copies of it (resize,
    recompress, colour, crop; no EXIF) and a pseudo-burst of three frames (95 % crops shifted by up to 3 %,
    exposure, noise; EXIF times 1 s apart). The photos themselves are all different: the orientation set (one
    picture sixteen times) and the HDR pairs (one scene twice) are left out."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    rng = np.random.default_rng(seed)
    shots: list[Shot] = []
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg", ".heic", ".heif"}
    )
    clock = datetime(2020, 5, 1, 8, 0, 0)
    for n, path in enumerate(f for f in files if not {"orientation", "hdr"} & set(f.parts)):
        try:
            with Image.open(path) as opened:
                img = (ImageOps.exif_transpose(opened) or opened).convert("RGB")
        except Exception:  # the corpus has broken files on purpose
            continue
        if min(img.size) < 64:
            continue
        img.thumbnail((1600, 1600))
        base = f"r{n:03d}"
        clock += timedelta(hours=5)
        _save(img, folder / f"{base}.jpg", None, 92, mtime=clock)
        shots.append(Shot(f"{base}.jpg", base, "edit", "real", None))
        for how in ("resize", "recompress", "colour", "crop"):
            out, quality = edit(img, how, rng)
            _save(
                out,
                folder / f"{base}_{how}.jpg",
                None,
                quality,
                mtime=clock + timedelta(days=3, minutes=len(shots)),
            )
            shots.append(Shot(f"{base}_{how}.jpg", base, "edit", "real", None))
        w, h = img.size
        for k in range(3):
            dx, dy = rng.uniform(0, 0.03) * w, rng.uniform(0, 0.03) * h
            frame_ = img.crop((round(dx), round(dy), round(dx + 0.95 * w), round(dy + 0.95 * h)))
            a = np.asarray(frame_, dtype=np.float32) * rng.uniform(0.92, 1.08)
            t = clock + timedelta(minutes=30, seconds=k)
            _save(_rgb(a + rng.normal(0, 3.0, a.shape)), folder / f"{base}_burst{k}.jpg", t)
            shots.append(Shot(f"{base}_burst{k}.jpg", base, "burst", "real", t))
    return shots

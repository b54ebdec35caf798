"""A generated library with a realistic life: a home in Shanghai, then a move to Beijing; days at home, a day
out, and seven trips (Qingdao twice, Japan over National Day, a weekend in Hangzhou, Paris with a day in
Versailles, Chengdu, Hong Kong), with EXIF times, offsets (Japan +09:00, France +02:00, none on the old
camera) and GPS (some photos without), and descriptions imported as analyses. Every photo knows its true event
and trip, so grouping and questions are checked against exact sets. Used by tests/test_trips.py and
bench/questions.py.
"""

# ruff: noqa: E501  (tables of scenes, trips and questions read better one entry a line)
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.helpers import make_photo

TODAY = date(2026, 12, 2)
SHANGHAI = (31.2304, 121.4737)
BEIJING = (39.9042, 116.4074)
MOVE = date(2025, 4, 1)

SCENES = {
    "home": [("a cat sleeping on the sofa", "猫在沙发上睡觉"), ("dinner on the kitchen table", "餐桌上的晚饭"),
             ("two cats playing on the floor", "两只猫在地板上玩")],
    "city": [("people walking on a busy street", "繁忙街道上的行人"), ("a cafe with a latte on the table", "咖啡馆桌上的拿铁"),
             ("a park with trees and a lake", "有树和湖的公园")],
    "beach": [("a sandy beach with waves and the sea", "海边的沙滩和海浪"),
              ("sunset over the sea from the beach", "海边的日落")],
    "temple": [("a red wooden temple gate", "红色的木制神社鸟居"), ("a quiet temple garden", "安静的寺庙花园")],
    "tower": [("the Eiffel Tower seen from a street", "从街上看埃菲尔铁塔"), ("a river with old stone bridges", "河上的古老石桥")],
    "palace": [("a golden palace hall with mirrors", "金色的宫殿大厅和镜子")],
    "mountain": [("a stone wall winding over green mountains", "蜿蜒在青山上的石墙")],
    "panda": [("a giant panda eating bamboo", "大熊猫在吃竹子"), ("a bowl of spicy hotpot", "一锅麻辣火锅")],
    "harbour": [("skyscrapers along the harbour at night", "夜晚海港边的摩天大楼"),
                ("a tram on a crowded street", "拥挤街道上的电车")],
    "lake": [("a lake with a stone bridge and willows", "有石桥和柳树的湖")],
}  # fmt: skip
HAT = (" A woman wearing a straw hat.", " 一个戴着草编帽子的女人。")


@dataclass
class Trip:
    key: str
    start: date
    days: list[tuple[str, tuple[float, float], str, str]]  # per day: city, (lat, lon), offset, scene
    country: str
    city_zh: str


TRIPS = [
    Trip("qingdao24", date(2024, 7, 10), [("Qingdao", (36.0671, 120.3826), "+08:00", "beach")] * 5, "CN", "青岛"),
    Trip("japan24", date(2024, 10, 1),
         [("Tokyo", (35.6762, 139.6503), "+09:00", "city")] * 3
         + [("Kyoto", (35.0116, 135.7681), "+09:00", "temple")] * 3, "JP", "东京"),
    Trip("hangzhou25", date(2025, 1, 11), [("Hangzhou", (30.2741, 120.1551), "+08:00", "lake")] * 2, "CN", "杭州"),
    Trip("paris25", date(2025, 5, 1),
         [("Paris", (48.8566, 2.3522), "+02:00", "tower")] * 2 + [("Versailles", (48.8049, 2.1204), "+02:00", "palace")]
         + [("Paris", (48.8566, 2.3522), "+02:00", "tower")] * 2, "FR", "巴黎"),
    Trip("chengdu25", date(2025, 10, 1), [("Chengdu", (30.5728, 104.0668), "+08:00", "panda")] * 4, "CN", "成都"),
    Trip("qingdao26", date(2026, 7, 18), [("Qingdao", (36.0671, 120.3826), "+08:00", "beach")] * 4, "CN", "青岛"),
    Trip("hongkong26", date(2026, 11, 13), [("Hong Kong", (22.3193, 114.1694), "+08:00", "harbour")] * 3, "HK",
         "香港"),
]  # fmt: skip
OUTINGS = [  # one day away from home, not a trip
    (date(2024, 5, 18), (31.2989, 120.5853), "city"),  # Suzhou from Shanghai, 85 km
    (date(2025, 9, 13), (40.3587, 116.0200), "mountain"),  # the Great Wall at Badaling from Beijing, 60 km
]


@dataclass
class Shot:
    name: str
    local: datetime
    offset: str | None
    gps: tuple[float, float] | None
    en: str
    zh: str
    event: str  # the true event: one day at one place
    trip: str | None = None
    day: int | None = None  # day of the trip, 1-based
    hat: bool = False
    people: tuple[str, ...] = ()  # who is in it: "mum", "me"


def _home(day: date) -> tuple[float, float]:
    return SHANGHAI if day < MOVE else BEIJING


def _day_shots(
    rng: random.Random,
    day: date,
    where: tuple[float, float],
    offset: str | None,
    scene: str,
    event: str,
    n: int,
) -> list[Shot]:
    out = []
    t = datetime(day.year, day.month, day.day, rng.randint(8, 11), rng.randint(0, 59))
    for i in range(n):
        en, zh = SCENES[scene][rng.randrange(len(SCENES[scene]))]
        jitter = (rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01))
        gps = (where[0] + jitter[0], where[1] + jitter[1])
        out.append(Shot(f"{event}-{i}", t, offset, gps, en + ".", zh + "。", event))
        t += timedelta(minutes=rng.randint(20, 170))
    return out


def generate(seed: int = 11, home_rate: float = 0.12) -> list[Shot]:
    """Every photo of the library, in time order."""
    rng = random.Random(seed)
    shots: list[Shot] = []
    trip_days = {t.start + timedelta(days=i) for t in TRIPS for i in range(len(t.days))}
    outing_days = {d for d, _, _ in OUTINGS}
    day = date(2024, 1, 1)
    while day < TODAY:
        weekend = day.weekday() >= 5
        if (
            day not in trip_days
            and day not in outing_days
            and rng.random() < home_rate * (2 if weekend else 1)
        ):
            # the old camera (before the move) writes no offset
            offset = None if day < MOVE else "+08:00"
            scene = "home" if rng.random() < 0.6 else "city"
            shots += _day_shots(rng, day, _home(day), offset, scene, f"home-{day}", rng.randint(1, 3))
        day += timedelta(days=1)
    for d, where, scene in OUTINGS:
        shots += _day_shots(rng, d, where, "+08:00", scene, f"outing-{d}", 3)
    for trip in TRIPS:
        for i, (_city, where, offset, scene) in enumerate(trip.days):
            d = trip.start + timedelta(days=i)
            day_shots = _day_shots(rng, d, where, offset, scene, f"{trip.key}-d{i + 1}", 4)
            for s in day_shots:
                s.trip = trip.key
            # on trips Mum and the owner are in the photos: together, Mum alone, the owner alone
            day_shots[0].people, day_shots[2].people, day_shots[3].people = ("mum", "me"), ("mum",), ("me",)
            day_shots[1].hat = True  # one photo a day shows someone in a straw hat
            day_shots[1].en += HAT[0]
            day_shots[1].zh += HAT[1]
            if i == 1:
                day_shots[2].gps = None  # a photo without GPS joins its day by time
            if i == 0:  # the first evening runs past midnight: one event, though two calendar days
                evening = datetime(d.year, d.month, d.day, 18, 30)
                for s, minutes in zip(day_shots, (0, 100, 310, 350), strict=True):
                    s.local = evening + timedelta(minutes=minutes)
            for s in day_shots:  # a trip's days are local calendar days
                s.day = (s.local.date() - trip.start).days + 1
            shots += day_shots
    shots.sort(key=lambda s: (s.local, s.name))
    return shots


def write(shots: list[Shot], folder: Path) -> Path:
    """The photos as small JPEGs with EXIF, and their descriptions as an analyses file (returned)."""
    lines = []
    for n, s in enumerate(shots):
        path = make_photo(
            folder / s.local.strftime("%Y") / f"{s.name}.jpg",
            taken=s.local.strftime("%Y:%m:%d %H:%M:%S"),
            offset=s.offset,
            gps=s.gps,
            seed=n,
            size=(64, 48),
        )
        lines.append(json.dumps({"path": str(path), "caption": {"en": s.en, "zh": s.zh}}, ensure_ascii=False))
    analyses = folder.parent / "analyses.jsonl"
    analyses.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return analyses


def add_faces(lib: Any, shots: list[Shot], folder: Path) -> None:
    """Faces for the people in the photos (the photos are too small to hold real ones): identity vectors
    recorded as the face stage would, grouped by the real grouping, then Mum named and the owner marked."""
    import numpy as np

    from smartalbum.faces.base import Face, FaceScan
    from smartalbum.faces.dlib_backend import DlibFaceModel
    from smartalbum.pipeline.faces import group_new_faces

    rng = np.random.default_rng(0)
    centres = {who: rng.normal(0, 0.06, 128) for who in ("mum", "me")}  # about 0.96 apart
    model = DlibFaceModel()  # its version only: nothing is loaded
    scans = []
    for s in shots:
        path = folder / s.local.strftime("%Y") / f"{s.name}.jpg"
        faces = [
            Face(
                0.1 + 0.45 * i,
                0.2,
                0.3,
                0.4,
                1.0,
                (centres[who] + rng.normal(0, 0.01, 128)).astype(np.float32),
            )
            for i, who in enumerate(s.people)
        ]
        scans.append((lib.photo(str(path))["hash"], FaceScan(faces, len(faces)), None))
    lib.catalog.people.record_scans(model.version, scans)
    group_new_faces(lib.catalog, model)
    for who in ("mum", "me"):
        shot = next(s for s in shots if s.people == (who,))
        photo = lib.photo(str(folder / shot.local.strftime("%Y") / f"{shot.name}.jpg"))
        (person,) = {f["person_id"] for f in lib.photo_faces(photo["id"])}
        if who == "mum":
            lib.name_person(person, ["妈妈", "Mum"])
        else:
            lib.set_me(person)


def trip_shots(shots: list[Shot], key: str, day: int | None = None) -> set[str]:
    days = {s.day for s in shots if s.trip == key}
    if day is not None and day < 0:
        day = max(d for d in days if d is not None) + 1 + day
    return {s.name for s in shots if s.trip == key and (day is None or s.day == day)}


@dataclass
class Question:
    text: str
    kind: str
    expect: set[str]


def questions(shots: list[Shot]) -> list[Question]:
    """Questions with their exact expected photo sets, in Chinese and English."""
    t = {k: trip_shots(shots, k) for k in (tr.key for tr in TRIPS)}
    hats = {s.name for s in shots if s.hat}
    beach = {s.name for s in shots if "beach" in s.en or "sea" in s.en}
    weekend = {s.name for s in shots if s.local.weekday() >= 5}
    q: list[Question] = []

    def add(kind: str, expect: set[str], *texts: str) -> None:
        q.extend(Question(x, kind, expect) for x in texts)

    add(
        "last trip",
        t["hongkong26"],
        "上次旅行",
        "上次旅行的照片",
        "最近一次出游",
        "最近一次旅行拍的",
        "上一次旅游",
        "my last trip",
        "photos from my last trip",
        "the latest trip",
        "our most recent trip",
        "last vacation",
    )
    add(
        "trip before last",
        t["qingdao26"],
        "上上次旅行",
        "上上次旅行的照片",
        "倒数第二次旅行",
        "the trip before last",
        "photos from the trip before last",
        "my second to last trip",
    )
    add("first trip", t["qingdao24"], "第一次旅行", "第一次旅行的照片", "my first trip", "our first vacation")
    add(
        "trip to a country",
        t["japan24"],
        "在日本那次",
        "日本那次旅行",
        "去日本的旅行",
        "日本旅行的照片",
        "my trip to Japan",
        "the trip to Japan",
        "trips to Japan",
        "photos from our holiday in Japan",
    )
    add(
        "trip to a country",
        t["paris25"],
        "在法国那次",
        "去法国的旅行",
        "my trip to France",
        "trips to France",
    )
    add("trip to a country", t["hongkong26"], "在香港那次", "去香港的旅行", "my trip to Hong Kong")
    add("trip to a city", t["paris25"], "在巴黎那次", "去巴黎的旅行", "my trip to Paris", "the trip to Paris")
    add("trip to a city", t["japan24"], "在京都那次", "my trip to Kyoto", "在东京那次", "the trip to Tokyo")
    add(
        "trip to a city",
        t["qingdao26"],
        "在青岛那次",
        "上次去青岛的旅行",
        "my last trip to Qingdao",
        "my trip to Qingdao",
    )
    add(
        "trip to a city",
        t["qingdao24"] | t["qingdao26"],
        "去青岛的旅行",
        "青岛旅行的照片",
        "trips to Qingdao",
    )
    add("trip to a city", t["qingdao26"], "最近一次去青岛的旅行")
    add("trip to a city", t["qingdao24"], "第一次去青岛的旅行", "the first trip to Qingdao")
    add("trip to a city", t["chengdu25"], "去成都的旅行", "在成都那次", "my trip to Chengdu")
    add("trip to a city", t["hangzhou25"], "去杭州的旅行", "在杭州那次", "the trip to Hangzhou")
    add(
        "trip by time",
        t["chengdu25"],
        "去年国庆的旅行",
        "去年国庆节的旅行",
        "去年十月的旅行",
        "trips in October 2025",
    )
    add("trip by time", t["japan24"], "2024年国庆的旅行", "2024年10月的旅行", "trips in October 2024")
    add("last trip", t["hongkong26"], "上次出去玩的照片")
    add("trip by time", t["qingdao24"] | t["japan24"], "2024年的旅行", "trips in 2024", "2024年的旅游")
    add("trip by time", t["qingdao24"] | t["qingdao26"], "七月的旅行", "trips in July")
    add("trip by time", t["hangzhou25"] | t["paris25"] | t["chengdu25"], "2025年的旅行", "trips in 2025")
    add(
        "trip day",
        trip_shots(shots, "hongkong26", 1),
        "上次旅行的第一天",
        "my last trip, the first day",
        "the first day of my last trip",
    )
    add("trip day", trip_shots(shots, "hongkong26", -1), "上次旅行的最后一天", "the last day of my last trip")
    add(
        "trip day",
        trip_shots(shots, "japan24", -1),
        "在日本那次的最后一天",
        "the last day of my trip to Japan",
    )
    add(
        "trip day",
        trip_shots(shots, "japan24", 2),
        "在日本那次的第二天",
        "day 2 of my trip to Japan",
        "the second day of the trip to Japan",
    )
    add(
        "trip day",
        trip_shots(shots, "paris25", 3),
        "在法国那次的第三天",
        "the third day of my trip to France",
    )
    add("trip day", trip_shots(shots, "qingdao24", 1), "第一次旅行的第一天", "the first day of my first trip")
    add(
        "trip + detail",
        t["hongkong26"] & hats,
        "上次旅行带帽子的照片",
        "上次旅行戴草帽的人",
        "my last trip, someone wearing a straw hat",
        "photos from my last trip with a straw hat",
    )
    add("trip + detail", t["qingdao24"] & beach, "第一次旅行的海边照片", "my first trip, the beach")
    add(
        "trip + detail",
        t["paris25"] & {s.name for s in shots if "Eiffel" in s.en},
        "my trip to Paris, the Eiffel Tower",
        "去巴黎那次的埃菲尔铁塔",
    )
    add(
        "trip + detail",
        t["japan24"] & {s.name for s in shots if "temple" in s.en},
        "在日本那次的寺庙",
        "temples on my trip to Japan",
    )
    add(
        "trip + detail",
        (t["qingdao24"] | t["qingdao26"]) & hats,
        "去青岛的旅行中戴帽子的人",
        "trips to Qingdao, a woman in a straw hat",
    )
    sunset = {s.name for s in shots if "sunset" in s.en}
    add(
        "trip + negation",
        t["qingdao26"] - sunset,
        "上上次旅行 不要日落",
        "the trip before last without sunsets",
    )
    add(
        "trip + negation",
        t["qingdao26"] - beach,
        "上上次旅行 不要海边",
        "the trip before last without the beach",
    )
    add("trip + negation", t["hongkong26"] - hats, "上次旅行 不要帽子", "my last trip without hats")
    with_mum = {s.name for s in shots if "mum" in s.people}
    with_me = {s.name for s in shots if "me" in s.people}
    add(
        "trip + person",
        t["hongkong26"] & with_mum & with_me,
        "我和妈妈上次旅行的照片",
        "me and Mum on my last trip",
        "上次旅行我和妈妈的合影",
    )
    add("trip + person", t["hongkong26"] & with_mum - with_me, "上次旅行只有妈妈", "my last trip, only Mum")
    add("trip + person", t["japan24"] & with_mum, "妈妈在日本那次", "photos of Mum on my trip to Japan")
    add(
        "trip + person",
        (t["qingdao24"] | t["qingdao26"]) & with_me,
        "去青岛的旅行中我的照片",
        "me on trips to Qingdao",
    )
    add(
        "trip + person",
        t["paris25"] & with_mum - with_me,
        "在法国那次 妈妈 不要我",
        "Mum without me on the trip to France",
    )
    add("weekends", weekend, "周末的照片", "周末拍的", "photos on weekends", "weekend photos")
    add(
        "weekends",
        {s for s in weekend if s in t["hangzhou25"]},
        "去杭州的旅行 周末",
        "the trip to Hangzhou on the weekend",
    )
    add(
        "nothing",
        set(),
        "2019年的旅行",
        "trips in 2019",
        "my trip to Brazil",
        "去巴西的旅行",
        "在美国那次",
        "my trip to the USA",
        "2023年国庆的旅行",
        "第一次旅行的第九天",
        "the tenth day of my last trip",
        "上次旅行带帽子的猫",
    )
    return q  # fmt: skip

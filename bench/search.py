"""Search latency and index size for synthetic libraries of 10k, 100k (and 1M) photos.

For each size this builds (or reuses) a library, then times the real `SearchEngine.search()` (query parsing,
filters, dense + full-text retrieval, fusion, exclusions, feedback, explanations) over a fixed list of English
and Chinese queries, and prints a markdown table: build time, sizes on disk, RSS, p50/p95/p99 in ms.

How the library is made (printed with the results):
- Catalog: the real schema (`Catalog` runs the migrations); roots, photos, files and analyses rows are
  inserted with executemany in big transactions instead of running image ingestion. Texts come from
  ../shared/eval/captions/iiw_cm3600_docs.jsonl (1,000 dense descriptions of ~110 words): each photo takes
  sentences of one description plus one of another, a Chinese caption, tags and objects derived from the
  English words it contains, a random date (2015 - 2025-09) and, for most photos, one of 30 places
  (reverse-geocoded by the real offline geocoder); a few photos carry OCR text. Stored `raw` is the analysis
  JSON, as a VLM answers JSON.
- Search indexes: the real `SearchIndexes.sync()` (documents, FTS5 with jieba, FAISS, state database),
  given a benchmark embedder named "bench-synthetic-384": documents get synthetic unit vectors (--vectors
  mixed: the real all-MiniLM-L6-v2 vector of the photo's source description plus noise, cosine ~0.85 to it;
  --vectors random: random unit vectors); queries are embedded by the real bundled all-MiniLM-L6-v2 model
  (--query-vectors random bypasses it).
- Build shortcuts above 10,000 photos (up to 10,000 the build runs exactly as the code does, and its rates
  are printed): jieba is memoised per text piece between spaces and Chinese punctuation, which gives the
  same tokens (jieba never joins across those; checked on the first 500 documents), and the indexer's
  state.sqlite3 executemany calls run inside one transaction instead of committing every row.
  --faithful-build turns both off, --no-segment-cache only the first.
- The catalog also holds 50 feedback verdicts (--feedback), which every search reads.

Timing excludes model load and first-use costs: every query runs once before the timed passes. Build and
measurement each run in their own process, so RSS figures are not polluted by the build. A cProfile of one
more pass says where the time goes; with two or more sizes below 1M, a projection to 1M is printed.
Usage: python bench/search.py [--sizes 10000,100000,1000000] [--queries-per-size 160] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import psutil

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.embed.text import TextEmbedder, load_embedder, normalize_rows

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "captions" / "iiw_cm3600_docs.jsonl"
GENERATOR_VERSION = 1  # bump when the synthetic library changes: cached libraries are rebuilt
DIM = 384
EMBEDDER_NAME = "bench-synthetic-384"
TODAY = date(2025, 9, 15)  # fixed, so "last summer" / "去年" select the same photos in every run
FIRST_DAY = date(2015, 1, 1)
VLM_PRODUCER, VLM_VERSION = "qwen_vl", "Qwen3-VL-2B-Instruct|bench"
OCR_PRODUCER, OCR_VERSION = "ocr", "rapidocr-onnxruntime bench"
MIXED_COSINE = 0.85  # --vectors mixed: cosine between a photo's vector and its source description's
SEGMENT_CHECK_DOCS = 500
LIMIT = 30

# ------------------------------------------------------------------------------------------ the queries


@dataclass(frozen=True)
class BenchQuery:
    text: str
    kind: str  # "plain", or "filter" (time / place / negation in the question)
    sort: str = "relevance"  # or "date": the whole match list newest first

    @property
    def key(self) -> str:
        return self.text if self.sort == "relevance" else f"{self.text} [by date]"


QUERIES: tuple[BenchQuery, ...] = tuple(
    BenchQuery(t, k)
    for t, k in [
        ("dogs on the beach", "plain"),
        ("a red car parked on the street", "plain"),
        ("sunset over the sea", "plain"),
        ("children playing in the park", "plain"),
        ("cat sleeping on a sofa", "plain"),
        ("food on a white plate", "plain"),
        ("birthday cake with candles", "plain"),
        ("receipt that says 星巴克", "plain"),
        ("old church with a tall tower", "plain"),
        ("photos from last summer in Paris", "filter"),
        ("snowy mountains in Switzerland", "filter"),
        ("Tokyo at night", "filter"),
        ("flowers in spring", "filter"),
        ("old buildings in London in 2018", "filter"),
        ("landscape without people", "filter"),
        ("mountains but no snow", "filter"),
        ("photos from 2019", "filter"),
        ("找出所有有猫的日落照片", "plain"),
        ("海边的日落", "plain"),
        ("一只狗在草地上奔跑", "plain"),
        ("带有文字的标志", "plain"),
        ("桌子上的食物", "plain"),
        ("蓝天白云下的山", "plain"),
        ("穿红衣服的女孩", "plain"),
        ("没有人的风景", "filter"),
        ("2019年的雪山", "filter"),
        ("去年夏天在青岛拍的海边照片", "filter"),
        ("上海的夜景", "filter"),
        ("北京的建筑", "filter"),
        ("冬天的树", "filter"),
        ("去年的照片", "filter"),
        ("杭州西湖边的花", "filter"),
    ]
) + tuple(
    BenchQuery(t, "date", "date")  # the listing a user gets with "sort by date": every match, newest first
    for t in ("dogs on the beach", "sunset over the sea", "海边的日落", "flowers in spring", "北京的建筑")
)

# ------------------------------------------------------------------------------------ synthetic texts

# English word in a description -> Chinese, and its kind: o object, a animal, p person, s scene, c colour
_VOCAB_TABLE = """
man 男人 p; woman 女人 p; person 人 p; people 人们 p; child 孩子 p;
children 孩子们 p; boy 男孩 p; girl 女孩 p; baby 婴儿 p; crowd 人群 p; dog 狗 a;
cat 猫 a; bird 鸟 a; horse 马 a; cow 牛 a; chicken 鸡 a; fish 鱼 a;
sheep 羊 a; duck 鸭子 a; goat 山羊 a; car 汽车 o; bus 公交车 o; truck 卡车 o;
bicycle 自行车 o; motorcycle 摩托车 o; boat 船 o; train 火车 o; airplane 飞机 o;
road 道路 s; street 街道 s; building 建筑 o; house 房子 o; tree 树 o;
trees 树木 o; flower 花 o; flowers 花朵 o; grass 草地 s; mountain 山 s;
mountains 群山 s; hill 山丘 s; river 河流 s; lake 湖 s; sea 大海 s;
ocean 海洋 s; beach 海滩 s; sand 沙滩 s; sky 天空 s; clouds 白云 s; sun 太阳 s;
sunset 日落 s; snow 雪 s; rock 岩石 o; rocks 岩石 o; table 桌子 o; chair 椅子 o;
plate 盘子 o; food 食物 o; cup 杯子 o; bottle 瓶子 o; window 窗户 o; door 门 o;
wall 墙 o; sign 标志 o; text 文字 o; light 灯光 o; night 夜晚 s; water 水 s;
bridge 桥 o; church 教堂 o; temple 寺庙 o; market 市场 s; shop 商店 s;
fruit 水果 o; bread 面包 o; cake 蛋糕 o; book 书 o; phone 手机 o; shirt 衬衫 o;
hat 帽子 o; dress 裙子 o; field 田野 s; forest 森林 s; garden 花园 s;
park 公园 s; city 城市 s; village 村庄 s; statue 雕像 o; painting 画 o;
sofa 沙发 o; bed 床 o; kitchen 厨房 s; room 房间 s; umbrella 雨伞 o;
tower 塔 o; fence 栅栏 o; bench 长椅 o; lamp 灯 o; leaves 树叶 o;
desert 沙漠 s; stage 舞台 s; festival 节日 s; red 红色 c; blue 蓝色 c;
green 绿色 c; white 白色 c; black 黑色 c; yellow 黄色 c; wooden 木制 c;
brown 棕色 c; gray 灰色 c; orange 橙色 c; pink 粉色 c; buildings 建筑群 o;
windows 窗户 o; stone 石头 o; glass 玻璃 o; roof 屋顶 o; men 男人们 p;
group 一群人 p; individuals 人们 p; landscape 风景 s; greenery 绿植 s;
letters 字母 o; words 文字 o; jacket 夹克 o; camera 相机 o;
"""
VOCAB: dict[str, tuple[str, str]] = {
    en: (zh, kind) for en, zh, kind in (item.split() for item in _VOCAB_TABLE.split(";") if item.strip())
}
SCENES: tuple[tuple[str, str, str], ...] = (  # trigger word, English, Chinese
    ("beach", "beach", "海滩"), ("sea", "seaside", "海边"), ("mountain", "mountains", "山区"),
    ("street", "city street", "城市街道"), ("park", "park", "公园"), ("kitchen", "kitchen", "厨房"),
    ("room", "indoor room", "室内"), ("market", "market", "市场"), ("forest", "forest", "森林"),
    ("field", "countryside", "田园"), ("river", "riverside", "河边"), ("lake", "lakeside", "湖边"),
    ("church", "church", "教堂"), ("temple", "temple", "寺庙"), ("snow", "snowy landscape", "雪景"),
    ("desert", "desert", "沙漠"), ("stage", "performance", "演出"), ("garden", "garden", "花园"),
    ("road", "road", "公路"), ("building", "architecture", "建筑"),
)  # fmt: skip
ZH_POSITIONS = ("左侧", "右侧", "中央", "前景", "背景", "上方", "下方")
ZH_CLAUSES = (
    "光线柔和", "色彩鲜艳", "细节清晰", "阳光明媚", "阴影明显", "构图平衡", "氛围宁静", "画面生动",
    "远处有些模糊", "显得很安静", "颜色偏暖", "对比强烈", "视野开阔", "显得很热闹", "充满生活气息",
    "背景简洁", "质感丰富", "画面温馨",
)  # fmt: skip
OCR_LINES = (
    "STARBUCKS", "星巴克", "收据 合计 ¥35.00", "EXIT 出口", "欢迎光临", "No Parking", "禁止停车", "MENU 菜单",
    "TOTAL 42.50", "生日快乐", "Happy Birthday", "地铁站 Metro", "OPEN 营业中", "SALE 50%", "发票",
    "Welcome", "小心地滑", "Coffee", "奶茶", "登机牌 BOARDING PASS",
)  # fmt: skip
EXTRA_TAGS_EN = ("travel", "outdoor", "daily life", "vacation", "weekend", "family", "food", "street photo")
EXTRA_TAGS_ZH = ("旅行", "户外", "日常", "度假", "周末", "家庭", "美食", "街拍")
# (lat, lon) of the places photos are taken at; names come from the real reverse geocoder
PLACES: tuple[tuple[float, float], ...] = (
    (39.90750, 116.39723), (31.22222, 121.45806), (36.06605, 120.36939), (30.29365, 120.16142),
    (30.66667, 104.06667), (18.24306, 109.50500), (34.25833, 108.92861), (23.11667, 113.25000),
    (22.54554, 114.06830), (29.65000, 91.10000), (45.75000, 126.65000), (35.68950, 139.69171),
    (35.02107, 135.75385), (37.56600, 126.97840), (48.85341, 2.34880), (51.50853, -0.12574),
    (40.71427, -74.00597), (37.77493, -122.41942), (-33.86785, 151.20732), (46.02126, 7.74912),
    (46.68387, 7.86638), (41.89193, 12.51133), (41.38879, 2.15899), (13.75398, 100.50144),
    (1.28967, 103.85007), (64.13548, -21.89541), (22.27832, 114.17469), (25.04776, 121.53185),
    (26.86879, 100.22072), (43.82630, 87.61680),
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z]+")
Row = tuple[Any, ...]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Source:
    sentences: list[str]
    words: list[str]  # VOCAB words it contains, in order of first appearance


def load_sources() -> list[Source]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for r in rows:
        text = " ".join(str(r["doc"]).split())
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text) if w.lower() in VOCAB))
        out.append(Source([s for s in _SENTENCE.split(text) if s], words))
    return out


def _vec_key(text: str) -> str:
    return text[:40]


def _caption_en(src: Source, other: Source, rng: random.Random) -> str:
    keep = [src.sentences[0]] + [s for s in src.sentences[1:] if rng.random() < 0.7]
    keep.insert(rng.randint(1, len(keep)), rng.choice(other.sentences))
    text = ""
    for s in keep:
        if len(text) + len(s) + 1 > 950:
            break
        text = f"{text} {s}" if text else s
    return text


def make_analysis(src: Source, other: Source, rng: random.Random) -> dict[str, Any]:
    """One VLM answer in the schema of vision/schema.py, bilingual, derived from one source description."""
    caption_en = _caption_en(src, other, rng)
    words = [w for w in src.words if w in caption_en.lower()] or src.words
    things = [w for w in words if VOCAB[w][1] in "oa"]
    persons = [w for w in words if VOCAB[w][1] == "p"]
    colors = [VOCAB[w][0] for w in words if VOCAB[w][1] == "c"]
    scene = next((s for s in SCENES if s[0] in words), rng.choice(SCENES))
    named = [VOCAB[w][0] for w in words if VOCAB[w][1] != "c"][:4] or ["景物"]
    zh = [f"{scene[2]}：画面中有{'、'.join(named)}。"]
    for w in things[:3]:
        color = rng.choice(colors) + "的" if colors and rng.random() < 0.5 else ""
        zh.append(f"{color}{VOCAB[w][0]}位于画面{rng.choice(ZH_POSITIONS)}，{rng.choice(ZH_CLAUSES)}。")
    zh.append(f"{rng.choice(ZH_CLAUSES)}，{rng.choice(ZH_CLAUSES)}。")
    people = rng.randint(1, 6) if persons else 0
    people_en = next((s for s in src.sentences if any(p in s.lower().split() for p in persons)), "")
    lower = caption_en.lower()
    tod = "sunset" if "sunset" in lower else "night" if "night" in lower else None
    if tod is None and rng.random() < 0.5:
        tod = rng.choice(("morning", "afternoon", "day", "evening"))
    weather = next((w for w in ("snow", "sunny", "cloudy") if w.rstrip("y") in lower), None)
    season = "winter" if "snow" in lower else rng.choice((None, "spring", "summer", "autumn"))
    extra = rng.randrange(len(EXTRA_TAGS_EN))
    return {
        "caption": {"zh": "".join(zh), "en": caption_en},
        "objects": [
            {"name": {"zh": VOCAB[w][0], "en": w}, "count": rng.randint(1, 4)}
            for w in things
            if VOCAB[w][1] == "o"
        ][:8],
        "animals": [
            {"name": {"zh": VOCAB[w][0], "en": w}, "count": rng.randint(1, 3)}
            for w in things
            if VOCAB[w][1] == "a"
        ],
        "scene": {"zh": scene[2], "en": scene[1]},
        "tags": {
            "zh": [*(VOCAB[w][0] for w in words[:8]), EXTRA_TAGS_ZH[extra]],
            "en": [*words[:8], EXTRA_TAGS_EN[extra]],
        },
        "text": [],
        "people": {
            "count": people,
            "description": {"zh": f"画面中有{people}个人。" if people else "", "en": people_en[:390]},
        },
        "time_of_day": tod,
        "season": season,
        "weather": weather,
    }


class SyntheticLibrary:
    """Deterministic photo rows for photo number i (1-based), the same in every run."""

    def __init__(self, sources: list[Source], places: list[dict[str, Any]], seed: int = 7) -> None:
        self.sources = sources
        self.places = places
        self.seed = seed
        # a few places get most photos, as in a real library (home town first)
        weights = np.array([1.0 / (k + 1) ** 0.8 for k in range(len(places))])
        self.place_cdf = np.cumsum(weights / weights.sum())
        self.days = (date(2025, 9, 14) - FIRST_DAY).days

    def source_of(self, i: int) -> int:
        return (i * 7919) % len(self.sources)

    def rows(self, i: int, root: str, now: str) -> tuple[Row, Row, list[Row]]:
        rng = random.Random(self.seed * 1_000_003 + i)
        src = self.sources[self.source_of(i)]
        other = self.sources[rng.randrange(len(self.sources))]
        taken = datetime.combine(FIRST_DAY + timedelta(days=rng.randrange(self.days)), datetime.min.time())
        taken += timedelta(seconds=rng.randrange(6 * 3600, 22 * 3600))
        place = self.places[int(np.searchsorted(self.place_cdf, rng.random()))] if rng.random() < 0.85 else {}
        h = hashlib.blake2b(f"bench-photo-{i}".encode(), digest_size=32).hexdigest()
        size = rng.randint(1_500_000, 6_000_000)
        source = rng.choices(("exif_original", "filename", "mtime"), (0.9, 0.06, 0.04))[0]
        photo = (
            i, h, size, "JPEG", 4000, 3000, 1, taken.isoformat(), "+08:00", source,
            place.get("lat"), place.get("lon"), place.get("city"), place.get("region"), place.get("country"),
            place.get("country_code"), place.get("city_zh"), place.get("region_zh"), place.get("country_zh"),
            "BenchCam", "BC-12", None, 1, now, now,
        )  # fmt: skip
        folder = f"{taken:%Y}/{taken:%Y-%m} {place.get('city') or 'misc'}"
        path = f"{root}/{folder}/IMG_{taken:%Y%m%d}_{i:07d}.jpg"
        file = (i, path, 1, i, size, int(taken.timestamp() * 1e9), "ok", now, now)
        analysis = make_analysis(src, other, rng)
        analyses: list[tuple[Any, ...]] = []
        if rng.random() < 0.08:
            lines = rng.sample(OCR_LINES, rng.randint(1, 3))
            analysis["text"] = lines
            ocr = {"text": lines, "boxes": [], "scores": [0.9] * len(lines)}
            ocr_json = json.dumps(ocr, ensure_ascii=False)
            analyses.append((h, OCR_PRODUCER, OCR_VERSION, "ok", ocr_json, "", now))
        data = json.dumps(analysis, ensure_ascii=False)
        analyses.append((h, VLM_PRODUCER, VLM_VERSION, "ok", data, data, now))
        return photo, file, analyses


def resolve_places() -> list[dict[str, Any]]:
    from smartalbum.ingest.places import reverse_geocode

    out = []
    for (lat, lon), place in zip(PLACES, reverse_geocode(list(PLACES)), strict=True):
        if place is None:
            continue
        out.append(
            {
                "lat": lat, "lon": lon, "city": place.city, "region": place.region, "country": place.country,
                "country_code": place.country_code, "city_zh": place.city_zh, "region_zh": place.region_zh,
                "country_zh": place.country_zh,
            }
        )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------- the embedder


class BenchEmbedder:
    """TextEmbedder for the benchmark: synthetic document vectors, real (or synthetic) query vectors."""

    name = EMBEDDER_NAME

    def __init__(
        self, base: np.ndarray | None, base_keys: dict[str, int], query_model: TextEmbedder | None
    ) -> None:
        self.base = base  # one real vector per source description (--vectors mixed), else None
        self.base_keys = base_keys  # the start of a photo's embed text -> its source description
        self.query_model = query_model
        self.mixed = self.unmatched = 0  # document vectors made from a source vector / purely random

    @property
    def dim(self) -> int:
        return DIM

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        if query and self.query_model is not None:
            return self.query_model.embed(texts, query=True)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            noise = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            noise /= np.linalg.norm(noise)
            src = None if query or self.base is None else self.base_keys.get(_vec_key(text))
            if src is None or self.base is None:
                self.unmatched += not query
                out[row] = noise
            else:
                self.mixed += 1
                out[row] = MIXED_COSINE * self.base[src] + (1 - MIXED_COSINE**2) ** 0.5 * noise
        return normalize_rows(out)


def base_vectors(sources: list[Source], cache: Path) -> np.ndarray:
    """The real all-MiniLM-L6-v2 vector of each source description (cached next to the libraries)."""
    texts = [" ".join(s.sentences) for s in sources]
    digest = hashlib.blake2b("\n".join(texts).encode(), digest_size=8).hexdigest()
    path = cache / f"base-vectors-{digest}.npy"
    if path.is_file():
        return np.asarray(np.load(path), dtype=np.float32)
    t0 = time.perf_counter()
    vecs = load_embedder("offline", "cpu").embed(texts, query=False)
    print(f"  embedded the {len(texts)} source descriptions in {time.perf_counter() - t0:.0f}s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


# ------------------------------------------------------------------------------- memoised segmentation

_PIECES = re.compile(r"[^\s，。！？；：、]+")


class MemoSegmenter:
    """fulltext.segment() memoised per piece between whitespace and Chinese punctuation.

    jieba never forms a token across those characters (they are outside its word-character class) and they
    produce no tokens of their own that survive segment(), so the tokens are those of segment(text).
    """

    def __init__(self, original: Callable[[str], list[str]]) -> None:
        self.original = original
        self.cache: dict[str, list[str]] = {}
        self.misses = 0

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        cache = self.cache
        for piece in _PIECES.findall(text):
            tokens = cache.get(piece)
            if tokens is None:
                self.misses += 1
                if len(cache) > 2_000_000:
                    cache.clear()
                tokens = cache[piece] = self.original(piece)
            out.extend(tokens)
        return out


# ------------------------------------------------------------------------------------------ building


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def settings_for(lib: Path) -> Settings:
    return Settings(library_dir=lib, embed_model="offline", vlm_device="cpu")


def make_embedder(lib_root: Path, vectors: str, query_vectors: str) -> BenchEmbedder:
    sources = load_sources()
    base = base_vectors(sources, lib_root) if vectors == "mixed" else None
    keys = {_vec_key(s.sentences[0]): n for n, s in enumerate(sources)}
    model = load_embedder("offline", "cpu") if query_vectors == "real" else None
    return BenchEmbedder(base, keys, model)


def fill_catalog(cat: Catalog, n: int, feedback: int) -> None:
    gen = SyntheticLibrary(load_sources(), resolve_places())
    now = "2025-09-15T00:00:00+00:00"
    root = f"{cat.path.parent}/photos"
    with cat.transaction() as db:
        db.execute("INSERT INTO roots(id, path, added_at) VALUES (1, ?, ?)", (root, now))
    marks = ", ".join("?" * 25)
    batch = 20_000
    for start in range(1, n + 1, batch):
        photos, files, analyses = [], [], []
        for i in range(start, min(start + batch, n + 1)):
            p, f, a = gen.rows(i, root, now)
            photos.append(p)
            files.append(f)
            analyses.extend(a)
        with cat.transaction() as db:
            db.executemany(
                f"""INSERT INTO photos(id, hash, size, format, width, height, orientation, taken_at,
                        tz_offset, time_source, lat, lon, place_city, place_region, place_country,
                        country_code, place_city_zh, place_region_zh, place_country_zh, camera_make,
                        camera_model, lens, thumbs, created_at, updated_at) VALUES ({marks})""",
                photos,
            )
            db.executemany(
                """INSERT INTO files(id, path, root_id, photo_id, size, mtime_ns, status, first_seen,
                                      last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                files,
            )
            db.executemany("INSERT INTO analyses VALUES (?, ?, ?, ?, ?, ?, ?)", analyses)
        if n >= 100_000:
            print(f"  catalog: {min(start + batch - 1, n):,}/{n:,} photos", flush=True)
    rng = random.Random(11)
    with cat.transaction() as db:
        for k in range(feedback):
            q = QUERIES[k % len(QUERIES)].text
            from smartalbum.search.feedback import query_key

            h = hashlib.blake2b(f"bench-photo-{rng.randint(1, n)}".encode(), digest_size=32).hexdigest()
            db.execute(
                "INSERT INTO feedback(query, query_key, hash, verdict, created_at) VALUES (?, ?, ?, ?, ?)",
                (q, query_key(q), h, rng.choice(("good", "bad")), now),
            )


def checkpoint(path: Path) -> None:
    if path.is_file():
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


def disk_sizes(lib: Path) -> dict[str, int]:
    def size(paths: Sequence[Path]) -> int:
        return sum(p.stat().st_size for p in paths if p.is_file())

    def db(p: Path) -> list[Path]:
        return [p, Path(f"{p}-wal"), Path(f"{p}-shm")]

    index = lib / "index"
    vec_files = list((index / "vectors").glob("*"))
    return {
        "catalog": size(db(lib / "catalog.sqlite3")),
        "fts": size(db(index / "fulltext.sqlite3")),
        "state": size(db(index / "state.sqlite3")),
        "vectors": size(vec_files),
        "faiss": size([p for p in vec_files if p.name.startswith("vectors.")]),
    }


class TimedState:
    """Stands in for SearchIndexes.state (an autocommit sqlite3 connection) while building: times every
    executemany and, with `batch`, runs each one inside BEGIN ... COMMIT instead of one commit per row."""

    def __init__(self, conn: sqlite3.Connection, batch: bool, phases: dict[str, float]) -> None:
        self.conn = conn
        self.batch = batch
        self.phases = phases

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        t = time.perf_counter()
        try:
            if not self.batch or self.conn.in_transaction:  # the indexer's own transaction batches already
                return self.conn.executemany(sql, rows)
            self.conn.execute("BEGIN")
            try:
                cur = self.conn.executemany(sql, rows)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return cur
        finally:
            self.phases["state rows"] += time.perf_counter() - t

    def close(self) -> None:
        self.conn.close()


def build(lib: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    from smartalbum.index import fulltext
    from smartalbum.search import indexer
    from smartalbum.search.engine import SearchEngine

    faithful = args.faithful_build or n <= args.shortcuts_above
    out: dict[str, Any] = {"n": n, "generator": GENERATOR_VERSION, "vectors": args.vectors}
    out["faithful"] = faithful
    # resumable: a catalog filled by an interrupted build is kept, and sync() picks up where it stopped
    filled = lib / "bench-catalog.json"
    wanted = {**out, "feedback": args.feedback}
    previous = json.loads(filled.read_text()) if filled.is_file() and not args.rebuild else None
    resumed = previous is not None and previous.get("wanted") == wanted
    if not resumed:
        if lib.exists():
            shutil.rmtree(lib)
        lib.mkdir(parents=True)
    out["resumed"] = resumed
    out["load_before"] = os.getloadavg()
    t0 = time.perf_counter()
    settings = settings_for(lib)
    cat = Catalog(settings.catalog_path)
    if resumed:
        assert previous is not None
        out["catalog_s"] = previous["catalog_s"]
        print("  resuming: the catalog is kept, the indexes continue where they stopped", flush=True)
    else:
        fill_catalog(cat, n, args.feedback)
        out["catalog_s"] = time.perf_counter() - t0
        filled.write_text(json.dumps({"wanted": wanted, "catalog_s": out["catalog_s"]}))

    embedder = make_embedder(lib.parent, args.vectors, "random")  # queries are not embedded while building
    engine = SearchEngine(settings, embedder=embedder, today=lambda: TODAY)
    phases = {"documents": 0.0, "fulltext": 0.0, "vectors": 0.0, "state rows": 0.0}
    idx = engine.indexes

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            state_before = phases["state rows"]
            try:
                return fn(*a, **kw)
            finally:
                # state rows written inside this phase are reported on their own line
                phases[name] += time.perf_counter() - t - (phases["state rows"] - state_before)

        return run

    def timed_docs(*a: Any, **kw: Any) -> Iterator[Any]:
        it = original_iter(*a, **kw)
        while True:
            t = time.perf_counter()
            try:
                d = next(it)
            except StopIteration:
                phases["documents"] += time.perf_counter() - t
                return
            phases["documents"] += time.perf_counter() - t
            yield d

    original_iter = indexer.iter_documents
    original_segment = fulltext.segment
    memo: MemoSegmenter | None = None
    if not faithful and not args.no_segment_cache:
        memo = MemoSegmenter(original_segment)
        check = list(original_iter(cat, list(range(1, min(n, SEGMENT_CHECK_DOCS) + 1))))
        for d in check:
            for text in d.fields.values():
                if memo(text) != original_segment(text):
                    raise SystemExit(f"memoised segmentation differs on photo {d.photo_id}: {text[:80]!r}")
        fulltext.segment = memo
    setattr(idx, "state", TimedState(idx.state, not faithful, phases))  # noqa: B010
    setattr(idx, "_write_fulltext", timed("fulltext", idx._write_fulltext))  # noqa: B010
    setattr(idx, "_write_vectors", timed("vectors", idx._write_vectors))  # noqa: B010
    indexer.iter_documents = timed_docs
    try:
        t0 = time.perf_counter()
        stats = engine.indexes.sync(cat)
        out["index_s"] = time.perf_counter() - t0
    finally:
        indexer.iter_documents = original_iter
        fulltext.segment = original_segment
    assert resumed or (stats.documents == n and stats.fulltext_updated == n), stats
    assert idx.vectors is not None and len(idx.vectors) == n, "the vector index misses photos"
    out["phases_s"] = phases
    out["segment_cache"] = memo is not None
    out["segment_misses"] = memo.misses if memo else None
    out["vector_kind"] = idx.vectors.kind if idx.vectors is not None else None
    out["vectors_from_source"] = [embedder.mixed, embedder.unmatched]
    out["build_peak_rss"] = _peak_rss()
    out["load_after"] = os.getloadavg()
    idx.close()
    cat.close()
    for p in (settings.catalog_path, lib / "index" / "fulltext.sqlite3", lib / "index" / "state.sqlite3"):
        checkpoint(p)
    out["disk"] = disk_sizes(lib)
    (lib / "bench-built.json").write_text(json.dumps(out, indent=2))
    return out


# ----------------------------------------------------------------------------------------- measuring

# where a search spends its time: (file suffix, function) -> label, read from a cProfile of one pass
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("search/engine.py", "search", "search() total"),
    ("search/query/__init__.py", "parse_query", "parse_query"),
    ("search/indexer.py", "sync", "indexes.sync (per-query check)"),
    ("catalog/db.py", "state_token", "  catalog.state_token"),
    ("search/engine.py", "_filters", "_filters (time and place in memory; read when they change)"),
    ("catalog/columns.py", "filter_photo_ids", "  FilterColumns.filter_photo_ids"),
    ("catalog/columns.py", "filter_among", "  FilterColumns.filter_among (candidates in a broad filter)"),
    ("catalog/db.py", "filter_photo_ids", "catalog.filter_photo_ids"),
    ("catalog/db.py", "filter_listing", "catalog.filter_listing"),
    ("catalog/db.py", "visible_photo_ids", "catalog.visible_photo_ids"),
    ("search/indexer.py", "query_vector", "query vector (kept from the warm-up)"),
    ("index/vectors.py", "search", "VectorIndex.search"),
    ("index/fulltext.py", "search", "FullTextIndex.search"),
    ("search/engine.py", "_broad", "_broad (is a filter too broad to read)"),
    ("search/engine.py", "_by_date", "_by_date (listings by date)"),
    ("search/engine.py", "_gathered", "_gathered (every match of a rare question)"),
    ("search/engine.py", "_scored", "  _scored (photos scored from their own vector and words)"),
    ("catalog/db.py", "newest_blocks", "  catalog.newest_blocks (the date walk)"),
    ("catalog/columns.py", "newest_blocks", "  FilterColumns.newest_blocks (the date walk)"),
    ("index/vectors.py", "cosines", "  VectorIndex.cosines"),
    ("index/fulltext.py", "term_matrix", "  FullTextIndex.term_matrix (kept match lists)"),
    ("search/engine.py", "_exclude", "_exclude (negation)"),
    ("search/engine.py", "_apply_feedback", "_apply_feedback"),
    ("catalog/db.py", "photo_summaries", "catalog.photo_summaries"),
    ("search/indexer.py", "doc_info", "indexes.doc_info"),
    ("search/engine.py", "_hit", "_hit (explanations)"),
    ("index/fulltext.py", "highlight", "  FullTextIndex.highlight"),
)


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    a = np.asarray(ms)
    return {
        "n": len(ms),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def _median_ms(fn: Callable[[], Any], times: int) -> float:
    ms = []
    for _ in range(times):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms)


def _components(prof: cProfile.Profile, queries: int) -> dict[str, float]:
    """Cumulative ms per query of the COMPONENTS (the profiler's own overhead included)."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for suffix, func, label in COMPONENTS:
        ct = sum(v[3] for (file, _, name), v in raw.items() if name == func and file.endswith(suffix))
        out[label] = ct * 1000 / queries
    return out


def measure(lib: Path, args: argparse.Namespace) -> dict[str, Any]:
    from smartalbum.search.engine import SearchEngine
    from smartalbum.search.query import parse_query
    from smartalbum.search.results import SearchFilters

    out: dict[str, Any] = {"load_before": os.getloadavg()}
    rss_start = _rss()
    embedder = make_embedder(lib.parent, "random", args.query_vectors)  # base vectors: building only
    if embedder.query_model is not None:
        embedder.query_model.embed(["warm up the model"], query=True)
    rss_model = _rss()
    settings = settings_for(lib)
    cat = Catalog(settings.catalog_path)
    engine = SearchEngine(settings, embedder=embedder, today=lambda: TODAY)
    t0 = time.perf_counter()
    stats = engine.indexes.sync(cat)  # opens the FTS database, loads and verifies the FAISS index
    out["open_s"] = time.perf_counter() - t0
    out["filter_columns_s"] = engine.prepare_filters(cat)
    if stats.documents or stats.rebuilt:
        raise SystemExit(f"the saved indexes were not used as they are: {stats}")
    vectors = engine.indexes.vectors
    out["vector_kind"] = vectors.kind if vectors is not None else None
    out["vector_count"] = len(vectors) if vectors is not None else 0
    rss_indexes = _rss()
    matcher = engine.place_matcher()
    out["kinds"] = {
        q.key: "date"
        if q.sort == "date"
        else "filter"
        if parse_query(q.text, today=TODAY, places=matcher).has_filters
        else "plain"
        for q in QUERIES
    }
    warm: dict[str, dict[str, Any]] = {}
    for q in QUERIES:  # first use: jieba's dictionary, the place matcher, the query's vector, page cache
        res = engine.search(cat, q.text, SearchFilters(sort=q.sort), LIMIT, 0)
        warm[q.key] = {
            "total": res.total,
            "exact": res.total_exact,
            "understood": res.understood,
            "semantic": res.semantic,
        }
    out["results"] = warm
    engine.indexes.fts.settle()  # the words' match lists that the first run asked for, read meanwhile
    out["rss"] = {"start": rss_start, "model": rss_model, "indexes": rss_indexes, "warm": _rss()}

    rng = random.Random(5)
    timings: dict[str, list[float]] = {q.key: [] for q in QUERIES}
    order: list[BenchQuery] = []
    while len(order) < args.queries_per_size:
        batch = list(QUERIES)
        rng.shuffle(batch)
        order += batch
    for q in order[: args.queries_per_size]:
        t = time.perf_counter()
        engine.search(cat, q.text, SearchFilters(sort=q.sort), LIMIT, 0)
        timings[q.key].append((time.perf_counter() - t) * 1000)
    out["timings"] = timings
    # every question once more with the words' kept match lists forgotten: what a question whose words no
    # question asked before costs (the timed passes reuse the lists, as a next page or a related one does)
    first_use = []
    for q in QUERIES:
        engine.indexes.fts._forget_matches()
        t = time.perf_counter()
        engine.search(cat, q.text, SearchFilters(sort=q.sort), LIMIT, 0)
        first_use.append((time.perf_counter() - t) * 1000)
        engine.indexes.fts.settle()  # not timed: what it read for the next question
    out["first_use"] = first_use
    out["load_after"] = os.getloadavg()

    # the parts of every search that do not depend on the query
    out["noop_sync_ms"] = _median_ms(lambda: engine.indexes.sync(cat), 20)
    out["state_token_ms"] = _median_ms(cat.state_token, 20)
    out["embedded_check_ms"] = _median_ms(
        lambda: engine.indexes.state.execute("SELECT 1 FROM docs WHERE embedded = 0 LIMIT 1").fetchone(), 20
    )
    out["query_embed_ms"] = _median_ms(lambda: embedder.embed(["dogs on the beach"], query=True), 20)
    out["feedback_rows"] = len(cat.active_feedback())

    prof = cProfile.Profile()
    prof.enable()
    for q in QUERIES:
        engine.search(cat, q.text, SearchFilters(sort=q.sort), LIMIT, 0)
    prof.disable()
    out["components"] = _components(prof, len(QUERIES))
    if args.profile:
        buf = io.StringIO()
        pst = pstats.Stats(prof, stream=buf)
        pst.sort_stats("cumulative").print_stats(r"smartalbum|sqlite3|faiss|jieba", 35)
        pst.sort_stats("tottime").print_stats(15)
        out["profile"] = buf.getvalue()
    engine.indexes.close()
    cat.close()
    return out


# ------------------------------------------------------------------------------------------ reporting


def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MB" if b < 10 * 2**30 else f"{b / 2**30:,.1f} GB"


def _fmt_s(s: float) -> str:
    return f"{s:,.1f} s" if s < 10 else f"{s:,.0f} s" if s < 600 else f"{s / 60:,.1f} min"


def _load(pair: Sequence[float]) -> str:
    return f"{pair[0]:.1f}"


def _per_s(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


def report(n: int, built: dict[str, Any], m: dict[str, Any], reused: bool) -> None:
    kinds = m["kinds"]
    all_ms = [t for ts in m["timings"].values() for t in ts]
    filt = [t for q, ts in m["timings"].items() if kinds[q] == "filter" for t in ts]
    plain = [t for q, ts in m["timings"].items() if kinds[q] == "plain" for t in ts]
    by_date = [t for q, ts in m["timings"].items() if kinds[q] == "date" for t in ts]
    ph = built["phases_s"]
    d = built["disk"]
    rss = m["rss"]
    print(f"\n### {n:,} photos{' (library reused from an earlier run)' if reused else ''}\n")
    print("| measure | value |")
    print("|---|---|")
    cat_s, idx_s = built["catalog_s"], built["index_s"]
    how = "as the code runs" if built["faithful"] else "memoised jieba, state rows batched (see notes)"
    if built.get("resumed"):
        how += "; resumed after an interruption: the index time counts the last run only"
    print(f"| build total ({how}) | {_fmt_s(cat_s + idx_s)} |")
    print(f"| - catalog rows (executemany) | {_fmt_s(cat_s)} ({_per_s(n, cat_s)} photos/s) |")
    print(f"| - SearchIndexes.sync | {_fmt_s(idx_s)} ({_per_s(n, idx_s)} photos/s) |")
    print(f"| -- documents (iter_documents) | {_fmt_s(ph['documents'])} ({_per_s(n, ph['documents'])}/s) |")
    seg = "memoised jieba" if built["segment_cache"] else "jieba"
    print(f"| -- full text: {seg} + FTS5 insert | {_fmt_s(ph['fulltext'])} ({_per_s(n, ph['fulltext'])}/s) |")
    kind = f"{built['vector_kind']}, {built['vectors']}"
    vec_s = ph["vectors"]
    print(f"| -- vectors ({kind}): embed + add + save | {_fmt_s(vec_s)} ({_per_s(n, vec_s)}/s) |")
    batched = "in the indexer's transactions of 500 rows"
    print(f"| -- state.sqlite3 rows ({batched}) | {_fmt_s(ph['state rows'])} |")
    print(f"| build peak RSS | {_mb(built['build_peak_rss'])} |")
    print(f"| disk: catalog | {_mb(d['catalog'])} |")
    print(f"| disk: FTS database | {_mb(d['fts'])} |")
    print(f"| disk: vectors (FAISS file {_mb(d['faiss'])}) | {_mb(d['vectors'])} |")
    print(f"| disk: state database | {_mb(d['state'])} |")
    print(f"| open indexes (first sync: FTS open, FAISS load + checksum) | {m['open_s'] * 1000:,.0f} ms |")
    print(f"| read the photos' time and place into memory (once) | {m['filter_columns_s'] * 1000:,.0f} ms |")
    print(
        f"| FAISS index in memory ({m['vector_kind']}, {m['vector_count']:,} vectors) | {_mb(d['faiss'])} |"
    )
    print(f"| RSS with the query model loaded | {_mb(rss['model'])} |")
    print(f"| RSS growth: indexes loaded | +{_mb(rss['indexes'] - rss['model'])} |")
    print(f"| RSS growth: after one run of every query | +{_mb(rss['warm'] - rss['model'])} |")
    groups = (("all", all_ms), ("filter queries", filt), ("plain queries", plain), ("by date", by_date))
    for label, ms in groups:
        if not ms:
            continue
        p = percentiles(ms)
        print(
            f"| latency, {label} (n={p['n']}): p50 / p95 / p99 | "
            f"{p['p50']:,.1f} / {p['p95']:,.1f} / {p['p99']:,.1f} ms |"
        )
    p = percentiles(m["first_use"])
    print(
        f"| latency, every query once with its words' lists read again (n={p['n']}): p50 / p95 / max | "
        f"{p['p50']:,.1f} / {p['p95']:,.1f} / {p['max']:,.1f} ms |"
    )
    print(f"| per query: index sync check, nothing changed | {m['noop_sync_ms']:.2f} ms |")
    print(f"| per query after any catalog commit: catalog.state_token() | {m['state_token_ms']:.2f} ms |")
    print(f"| per query after any catalog commit: 'embedded = 0' scan | {m['embedded_check_ms']:.2f} ms |")
    print(f"| per query: query embedding (not in the latencies above) | {m['query_embed_ms']:.1f} ms |")
    print(f"| load average during build / timing | {_load(built['load_after'])} / {_load(m['load_after'])} |")
    print("\nwhere the time goes (cProfile of one pass, ms per query, includes profiler overhead):")
    for label, ms in m["components"].items():
        print(f"  {label:<34} {ms:9.1f}")
    slow = sorted(m["timings"].items(), key=lambda kv: -statistics.median(kv[1]) if kv[1] else 0)
    print("\nslowest queries (median ms, results above the cut-off, kind, how it was read):")
    for q, ts in slow[:8]:
        if ts:
            r = m["results"][q]
            read = "; ".join(r["understood"])
            total = f"{r['total']:,}" if r.get("exact", True) else f"~{r['total']:,}"  # ~: estimated
            print(f"  {statistics.median(ts):8.1f}  {total:>7}  {kinds[q]:<6}  {q}  [{read}]")
    if "profile" in m:
        print("\nprofile of one pass over the queries:\n")
        print(m["profile"])


def describe(args: argparse.Namespace) -> None:
    qv = "the real all-MiniLM-L6-v2 (offline)" if args.query_vectors == "real" else "synthetic (bypassed)"
    print("## Search benchmark\n")
    print(f"- machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB RAM")
    print("- catalog: real schema; rows inserted with executemany (no image ingestion)")
    print(f"- document vectors: synthetic ({args.vectors}), embedder name '{EMBEDDER_NAME}'")
    print(
        f"- query vectors: {qv}; query embedding is measured separately: the timed searches reuse the "
        "vector the engine kept from the untimed run (as paging does)"
    )
    print("- query embedding: the embedder's own thread limit; faiss/OpenMP threads: default")
    print(
        f"- queries: {len(QUERIES)} (English and Chinese), {args.queries_per_size} timed searches per size, "
        f"limit {LIMIT}, today = {TODAY}"
    )
    print("- timed: SearchEngine.search() after one untimed run of every query")
    if args.faithful_build:
        print("- build: as the code runs at every size (--faithful-build)")
    else:
        print(
            f"- build above {args.shortcuts_above:,} photos: jieba memoised per text piece (same tokens; "
            f"checked on {SEGMENT_CHECK_DOCS} documents) and state.sqlite3 executemany calls wrapped in one "
            "transaction (statements the indexer runs outside its own transactions of 500 rows); "
            "--faithful-build turns both off"
        )


def worker_cmd(mode: str, lib: Path, n: int, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, __file__, "--_worker", mode, "--_lib", str(lib), "--sizes", str(n)]
    cmd += ["--vectors", args.vectors, "--query-vectors", args.query_vectors]
    cmd += ["--queries-per-size", str(args.queries_per_size), "--feedback", str(args.feedback)]
    cmd += ["--shortcuts-above", str(args.shortcuts_above)]
    for flag in ("no_segment_cache", "faithful_build", "profile", "rebuild"):
        if getattr(args, flag):
            cmd.append("--" + flag.replace("_", "-"))
    return cmd


def run_worker(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    marker = "BENCH-RESULT "
    for line in lines:
        if not line.startswith(marker):
            print(line, flush=True)
    if proc.returncode != 0 or not lines or not lines[-1].startswith(marker):
        raise SystemExit(f"worker failed ({proc.returncode}): {' '.join(cmd)}")
    result: dict[str, Any] = json.loads(lines[-1][len(marker) :])
    return result


def estimate(n: int, done: dict[int, dict[str, Any]]) -> str:
    ref = max((k for k, b in done.items() if not b["faithful"] or k == max(done)), default=None)
    if ref is None:
        return "unknown (no smaller build yet)"
    b = done[ref]
    per = (b["catalog_s"] + b["index_s"]) / ref
    peak = b["build_peak_rss"] / ref
    return (
        f"~{_fmt_s(per * n)} and ~{_mb(peak * n)} peak RSS (linear from the {ref:,} build; HNSW grows faster)"
    )


def _fit(n1: int, v1: float, n2: int, v2: float, target: int) -> float:
    """v at `target` on the power law through (n1, v1) and (n2, v2), its exponent clamped to [0, 1]: no part
    of a search should grow faster than the library, so a steeper measured slope is treated as noise."""
    if v1 <= 0 or v2 <= 0:
        return v2
    slope = min(max(float(np.log(v2 / v1) / np.log(n2 / n1)), 0.0), 1.0)
    return float(v2 * (target / n2) ** slope)


def _linear(n1: int, v1: float, n2: int, v2: float, target: int) -> float:
    """v at `target` on the line through (n1, v1) and (n2, v2): a fixed part plus a per-photo part."""
    return max(v2 + (v2 - v1) / (n2 - n1) * (target - n2), 0.0)


def project(target: int, done: dict[int, dict[str, Any]], measured: dict[int, dict[str, Any]]) -> None:
    """A projection to `target` photos from the two largest measured sizes."""
    n1, n2 = sorted(measured)[-2:]
    m1, m2 = measured[n1], measured[n2]
    print(f"\n### projected to {target:,} photos (not measured; from {n1:,} and {n2:,})\n")
    print(
        "Times: power law through the two sizes, exponent clamped to [0, 1] (query embedding is not in\n"
        "them: it does not depend on the library). Sizes: a straight line through the two sizes. Latency\n"
        "percentiles mix queries of very different cost: their projection is rough.\n"
    )
    print(f"| figure | at {n1:,} | at {n2:,} | projected |")
    print("|---|---|---|---|")

    def row(label: str, a: float, b: float, how: str = "power") -> None:
        p = {"power": _fit, "linear": _linear}[how](n1, a, n2, b, target) if how != "constant" else b
        fmt = _mb if how == "linear" else (lambda v: f"{v:,.1f} ms")
        print(f"| {label} | {fmt(a)} | {fmt(b)} | {fmt(p)} |")

    groups = (("all", None), ("filter queries", "filter"), ("plain queries", "plain"), ("by date", "date"))
    for label, kind in groups:
        stats = []
        for m in (m1, m2):
            ms = [t for q, ts in m["timings"].items() if kind is None or m["kinds"][q] == kind for t in ts]
            stats.append(percentiles(ms))
        for pct in ("p50", "p95", "p99"):
            row(f"latency {label} {pct}", stats[0][pct], stats[1][pct])
    for label in m2["components"]:
        row(label.strip(), m1["components"][label], m2["components"][label])
    row("index sync check, nothing changed", m1["noop_sync_ms"], m2["noop_sync_ms"])
    row("catalog.state_token() (after a commit)", m1["state_token_ms"], m2["state_token_ms"])
    row("'embedded = 0' scan (after a commit)", m1["embedded_check_ms"], m2["embedded_check_ms"])
    for key in ("catalog", "fts", "vectors", "state"):
        row(f"disk: {key}", done[n1]["disk"][key], done[n2]["disk"][key], "linear")
    g1 = m1["rss"]["warm"] - m1["rss"]["model"]
    g2 = m2["rss"]["warm"] - m2["rss"]["model"]
    row("RSS growth after warm-up", g1, g2, "linear")
    b2 = done[n2]
    build = (b2["catalog_s"] + b2["index_s"]) * target / n2
    peak = _linear(n1, done[n1]["build_peak_rss"], n2, b2["build_peak_rss"], target)
    print(
        f"\nbuild at {target:,}: about {_fmt_s(build)} linear from the {n2:,} build "
        f"({'as the code runs' if b2['faithful'] else 'with the build shortcuts'}; HNSW insertion grows "
        f"faster than linear), peak RSS about {_mb(peak)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated library sizes")
    ap.add_argument("--queries-per-size", type=int, default=160, help="timed searches per size")
    ap.add_argument("--keep", type=Path, help="build libraries here and reuse them (default: a temp cache)")
    ap.add_argument("--rebuild", action="store_true", help="build again even if a matching library exists")
    ap.add_argument("--vectors", choices=("mixed", "random"), default="mixed", help="document vectors")
    ap.add_argument("--query-vectors", choices=("real", "random"), default="real")
    ap.add_argument("--faithful-build", action="store_true", help="no build shortcuts at any size")
    ap.add_argument(
        "--shortcuts-above", type=int, default=10_000, help="sizes above this use the build shortcuts"
    )
    ap.add_argument("--no-segment-cache", action="store_true", help="plain jieba for every document")
    ap.add_argument("--feedback", type=int, default=50, help="feedback verdicts in the catalog")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one pass per size")
    ap.add_argument("--_worker", choices=("build", "measure"), help=argparse.SUPPRESS)
    ap.add_argument("--_lib", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]

    if args._worker:
        if args._worker == "build":
            result = build(args._lib, sizes[0], args)
        else:
            result = measure(args._lib, args)
        print("BENCH-RESULT " + json.dumps(result), flush=True)
        return

    root = args.keep or Path(tempfile.gettempdir()) / "smartalbum-bench-search"
    describe(args)
    print(f"- libraries: {root}{'' if args.keep else ' (a cache; delete it when done)'}\n", flush=True)
    if args.vectors == "mixed":
        base_vectors(load_sources(), root)  # once, here: the build workers' memory stays the library's
    done: dict[int, dict[str, Any]] = {}
    measured: dict[int, dict[str, Any]] = {}
    for n in sorted(sizes):
        lib = root / f"lib-{n}"
        meta = lib / "bench-built.json"
        built = json.loads(meta.read_text()) if meta.is_file() and not args.rebuild else None
        wanted = {"generator": GENERATOR_VERSION, "vectors": args.vectors, "n": n}
        reused = built is not None and all(built.get(k) == v for k, v in wanted.items())
        if not reused:
            print(f"building {n:,} photos: estimate {estimate(n, done)}", flush=True)
            t0 = time.perf_counter()
            built = run_worker(worker_cmd("build", lib, n, args))
            print(f"  built in {_fmt_s(time.perf_counter() - t0)}", flush=True)
        assert built is not None
        done[n] = built
        m = measured[n] = run_worker(worker_cmd("measure", lib, n, args))
        report(n, built, m, reused)
    if len(measured) >= 2 and max(measured) < 1_000_000:
        project(1_000_000, done, measured)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

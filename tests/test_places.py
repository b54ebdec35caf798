"""Offline reverse geocoding and place names, on the real GeoNames data and the hand-written tables."""

from __future__ import annotations

import csv
import math
import threading
from pathlib import Path

import pycountry
import pytest

from smartalbum.ingest import places
from smartalbum.ingest.places import Place, find_place_names, place_names, reverse_geocode
from tests.helpers import EVAL_PHOTOS

DATA = Path(places.__file__).parent / "data"
# Table cities that cities1000 lacks; their coordinates were entered by hand.
NOT_IN_CSV = {
    *("Pingyao", "Xuzhou", "Lianyungang", "Wuyishan", "Emeishan"),
    *("Baoji", "Yan'an", "Dunhuang", "Urumqi", "Turpan"),
}


def _one(lat: float, lon: float) -> Place:
    place = reverse_geocode([(lat, lon)])[0]
    assert place is not None, (lat, lon)
    return place


def _csv_rows() -> list[list[str]]:
    with places.cities1000_path().open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


def _tsv(name: str) -> list[dict[str, str]]:
    lines = [ln for ln in (DATA / name).read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * places.EARTH_RADIUS_KM * math.asin(math.sqrt(h))


@pytest.mark.parametrize(
    ("lat", "lon", "city", "city_zh", "region_zh", "country", "country_zh"),
    [
        (36.07, 120.38, "Qingdao", "青岛", "山东", "China", "中国"),
        (39.99, 116.30, "Beijing", "北京", "北京", "China", "中国"),  # Haidian: a district in GeoNames
        (40.43, 116.57, "Beijing", "北京", "北京", "China", "中国"),  # the Great Wall at Mutianyu
        (31.23, 121.47, "Shanghai", "上海", "上海", "China", "中国"),
        (22.54, 114.05, "Shenzhen", "深圳", "广东", "China", "中国"),
        (31.30, 120.62, "Suzhou", "苏州", "江苏", "China", "中国"),
        (34.26, 108.95, "Xi'an", "西安", "陕西", "China", "中国"),
        (18.25, 109.50, "Sanya", "三亚", "海南", "China", "中国"),
        (29.65, 91.13, "Lhasa", "拉萨", "西藏", "China", "中国"),
        (43.8256, 87.6168, "Urumqi", "乌鲁木齐", "新疆", "China", "中国"),  # not in cities1000 at all
        (22.28, 114.17, "Hong Kong", "香港", "湾仔", "Hong Kong", "香港"),
        (25.04, 121.56, "Taipei", "台北", "台北", "Taiwan", "台湾"),
        (48.8566, 2.3522, "Paris", "巴黎", None, "France", "法国"),
        (35.6762, 139.6503, "Tokyo", "东京", "东京都", "Japan", "日本"),
        (35.01, 135.77, "Kyoto", "京都", "京都府", "Japan", "日本"),
        (-33.8688, 151.2093, "Sydney", "悉尼", "新南威尔士", "Australia", "澳大利亚"),
        (40.75, -73.99, "New York City", "纽约", "纽约州", "United States", "美国"),  # nearest town: NJ
        (51.50, -0.12, "London", "伦敦", "英格兰", "United Kingdom", "英国"),
    ],
)
def test_known_places_in_english_and_chinese(
    lat: float,
    lon: float,
    city: str,
    city_zh: str,
    region_zh: str | None,
    country: str,
    country_zh: str,
) -> None:
    place = _one(lat, lon)
    assert (place.city, place.city_zh, place.region_zh) == (city, city_zh, region_zh)
    assert (place.country, place.country_zh) == (country, country_zh)


def test_qingdao_has_all_fields() -> None:
    assert _one(36.07, 120.38) == Place(
        city="Qingdao",
        region="Shandong",
        country="China",
        country_code="CN",
        city_zh="青岛",
        region_zh="山东",
        country_zh="中国",
    )


def test_small_place_outside_big_cities_keeps_its_own_name() -> None:
    place = _one(43.467448, 11.885127)  # Arezzo, Tuscany: not in the city table
    assert (place.city, place.city_zh, place.region, place.region_zh) == (
        "Arezzo",
        None,
        "Tuscany",
        "托斯卡纳",
    )


@pytest.mark.parametrize(
    "point",
    [
        (0.0, -140.0),  # mid-Pacific
        (-40.0, -30.0),  # mid-Atlantic
        (0.0, 0.0),  # the "no fix" value
        (float("nan"), 10.0),
        (10.0, float("inf")),
        (95.0, 10.0),
        (-91.0, 10.0),
        (10.0, 180.5),
        (89.99, 0.0),  # North Pole
        (-89.99, 45.0),  # South Pole
    ],
)
def test_nowhere_and_invalid_points_give_none(point: tuple[float, float]) -> None:
    assert reverse_geocode([point]) == [None]


def test_bad_values_do_not_break_the_batch() -> None:
    points: list[tuple[float, float]] = [(36.07, 120.38), ("x", 1.0), (None, None), (36.07, 120.38)]  # type: ignore[list-item]
    result = reverse_geocode(points)
    assert result[1] is None and result[2] is None
    assert result[0] == result[3] and result[0] is not None and result[0].city == "Qingdao"
    assert reverse_geocode([]) == []


def test_antimeridian_both_sides_agree() -> None:
    east, west = reverse_geocode([(-16.8, 179.99), (-16.8, -179.99)])  # Vanua Levu, Fiji
    assert east is not None and east == west and east.country_code == "FJ"
    chukotka = _one(65.7, -168.0)
    assert chukotka.country_code == "RU"


def test_far_north_and_south() -> None:
    assert _one(78.22, 15.65).country_code == "SJ"  # Longyearbyen, Svalbard
    assert _one(-54.8, -68.3).country_code == "AR"  # Ushuaia
    assert len(reverse_geocode([(-77.85, 166.67), (90.0, 0.0), (-90.0, 180.0)])) == 3  # must not crash


@pytest.mark.parametrize(
    ("lat", "lon", "country_code", "country"),
    [
        (43.467448, 11.885127, "IT", "Italy"),  # Tuscany
        (39.051344, -94.288772, "US", "United States"),  # near Kansas City
        (60.146706, 24.906772, "FI", "Finland"),  # Helsinki
        (40.446972, -3.724753, "ES", "Spain"),  # Madrid
        (-0.3713, 36.056417, "KE", "Kenya"),  # Nakuru
        (51.025, 7.591944, "DE", "Germany"),
        (43.785594, 11.234619, "IT", "Italy"),  # Florence
    ],
)
def test_corpus_gps_points(lat: float, lon: float, country_code: str, country: str) -> None:
    place = _one(lat, lon)
    assert (place.country_code, place.country) == (country_code, country)
    assert place.country_zh


def test_every_gps_point_in_the_corpus_has_a_country() -> None:
    manifest = EVAL_PHOTOS / "exif" / "manifest.csv"
    assert manifest.exists(), f"shared corpus missing: {manifest}"
    with manifest.open(newline="", encoding="utf-8") as f:
        points = [(float(r["gps_lat"]), float(r["gps_lon"])) for r in csv.DictReader(f) if r["gps_lat"]]
    assert points
    for point, place in zip(points, reverse_geocode(points), strict=True):
        assert place is not None and place.country_code and place.country_zh, point


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(places, "_index_value", None)
    results: list[list[Place | None]] = []
    indexes: set[int] = set()

    def work() -> None:
        results.append(reverse_geocode([(36.07, 120.38), (48.8566, 2.3522)]))
        indexes.add(id(places._index()))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert len(indexes) == 1


# --- the data tables --------------------------------------------------------------------------------------


def test_region_table_covers_china_and_matches_the_csv() -> None:
    rows = _csv_rows()
    csv_admin1 = {(r[5], r[3]) for r in rows}
    table = {(r["cc"], r["admin1"]) for r in _tsv("regions.tsv")}
    assert table <= csv_admin1, table - csv_admin1
    chinese = {(cc, a) for cc, a in csv_admin1 if cc in {"CN", "HK", "MO", "TW"} and a}
    assert chinese <= table, chinese - table
    assert len({a for cc, a in table if cc == "CN"}) == 31  # + Hong Kong, Macao, Taiwan = 34


def test_city_table_names_occur_in_the_csv() -> None:
    rows = _csv_rows()
    cities = _tsv("cities.tsv")
    chinese = [c for c in cities if c["cc"] in {"CN", "HK", "MO", "TW"}]
    assert len(chinese) >= 120 and len(cities) - len(chinese) >= 100
    by_name: dict[tuple[str, str], list[list[str]]] = {}
    for r in rows:
        by_name.setdefault((r[5], r[2]), []).append(r)
    for c in cities:
        lat, lon = float(c["lat"]), float(c["lon"])
        same = [
            r
            for r in by_name.get((c["cc"], c["name"]), [])
            if c["admin1"] in ("*", r[3]) and _km(lat, lon, float(r[0]), float(r[1])) < 1.0
        ]
        assert bool(same) != (c["en"] in NOT_IN_CSV), c


def test_every_table_city_is_reported_at_its_centre() -> None:
    cities = _tsv("cities.tsv")
    found = reverse_geocode([(float(c["lat"]), float(c["lon"])) for c in cities])
    for c, place in zip(cities, found, strict=True):
        assert place is not None and (place.city, place.city_zh, place.country_code) == (
            c["en"],
            c["zh"],
            c["cc"],
        )


def test_every_country_has_a_chinese_name() -> None:
    zh = {pn.country_code for pn in place_names() if pn.field == "country" and pn.lang == "zh"}
    missing = {c.alpha_2 for c in pycountry.countries} - zh
    assert not missing
    cc_in_csv = {r[5] for r in _csv_rows()}
    assert cc_in_csv <= zh | {""}


# --- names for the search side ----------------------------------------------------------------------------


def _targets(name: str) -> set[tuple[str, str, str]]:
    return {(pn.field, pn.canonical, pn.country_code) for pn in find_place_names(name)}


def test_qingdao_in_both_languages_is_one_place() -> None:
    zh = [pn for pn in place_names() if pn.name == "青岛"]
    en = [pn for pn in place_names() if pn.name == "Qingdao"]
    assert len(zh) == 1 and len(en) == 1
    assert (zh[0].field, zh[0].canonical, zh[0].region, zh[0].lang) == ("city", "Qingdao", "Shandong", "zh")
    assert (en[0].field, en[0].canonical, en[0].region, en[0].lang) == ("city", "Qingdao", "Shandong", "en")


@pytest.mark.parametrize(
    ("names", "target"),
    [
        (["美国", "美國", "USA", "US", "United States", "united states"], ("country", "United States", "US")),
        (["英国", "UK", "United Kingdom", "Britain"], ("country", "United Kingdom", "GB")),
        (["日本", "Japan"], ("country", "Japan", "JP")),
        (["中国", "China"], ("country", "China", "CN")),
        (["韩国", "South Korea"], ("country", "South Korea", "KR")),
        (["香港", "Hong Kong"], ("city", "Hong Kong", "HK")),
        (["香港", "Hong Kong"], ("country", "Hong Kong", "HK")),
        (["北京", "Beijing", "Peking"], ("city", "Beijing", "CN")),
        (["山东", "山东省", "Shandong", "Shandong Sheng"], ("region", "Shandong", "CN")),
        (["巴黎", "Paris", "paris"], ("city", "Paris", "FR")),
        (["纽约", "New York City", "NYC"], ("city", "New York City", "US")),
        (["东京", "東京", "Tokyo"], ("city", "Tokyo", "JP")),
        (["西安", "Xi'an"], ("city", "Xi'an", "CN")),
    ],
)
def test_aliases_map_to_canonical_places(names: list[str], target: tuple[str, str, str]) -> None:
    for name in names:
        assert target in _targets(name), name


def test_canonical_names_are_what_reverse_geocode_reports() -> None:
    qingdao = _one(36.07, 120.38)
    (city,) = find_place_names("青岛")
    (region,) = [pn for pn in find_place_names("山东") if pn.field == "region"]
    (country,) = find_place_names("中国")
    assert (city.canonical, region.canonical, country.canonical) == (
        qingdao.city,
        qingdao.region,
        qingdao.country,
    )


def test_everyday_words_are_flagged() -> None:
    assert all(pn.common_word for pn in find_place_names("Nice"))
    assert all(pn.common_word for pn in find_place_names("日照"))
    assert not any(pn.common_word for pn in find_place_names("Paris"))
    assert find_place_names("not a place") == ()

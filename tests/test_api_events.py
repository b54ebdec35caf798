"""The events and trips endpoints over HTTP: the real app over the generated life of tests/trip_library.py
(seven trips, days at home, two days out), indexed for real. Trips newest first with their titles, counts and
covers, one trip's events in time order, events of a trip and of the whole library, one event's photos paged,
the event of a photo, regrouping after a photo is gone, and bad input of every kind (a 4xx, never a 500).

The last test removes a photo: it runs last in file order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartalbum.api.app import create_app
from tests.event_fixtures import Life, build_life
from tests.test_api import assert_error
from tests.web_fixtures import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JAPAN_EN = "Tokyo and Kyoto, Japan, National Day 2024"


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    built = build_life(tmp_path_factory.mktemp("api-events"))
    yield built
    built.library.close()


@pytest.fixture(scope="module")
def client(life: Life) -> Iterator[TestClient]:
    with TestClient(create_app(life.library, token=TOKEN), headers=AUTH) as c:
        yield c


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.ERROR, logger="smartalbum"):
        yield
    errors = [r for r in caplog.records if r.name.startswith("smartalbum.api") and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def ok(response: Any) -> Any:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    return response.json()


def japan(client: TestClient) -> dict[str, Any]:
    return next(t for t in ok(client.get("/api/trips")) if "JP" in t["places"]["country_codes"])


# -- trips ------------------------------------------------------------------------------------------


def test_trips_newest_first_with_titles_counts_and_covers(client: TestClient, life: Life) -> None:
    trips = ok(client.get("/api/trips"))
    assert [t["title"]["zh"] for t in trips] == [
        "2026年11月 香港", "2026年7月 青岛", "2025年国庆 成都",
        "2025年5月 法国：巴黎、Le Chesnay、Versailles", "2025年1月 杭州", "2024年国庆 日本：东京、京都",
        "2024年7月 青岛",
    ]  # fmt: skip
    assert [t["start_local"] for t in trips] == sorted((t["start_local"] for t in trips), reverse=True)
    assert [t["photos"] for t in trips] == [12, 16, 16, 20, 8, 24, 20]
    jp = japan(client)
    assert jp["title"] == {"zh": "2024年国庆 日本：东京、京都", "en": JAPAN_EN}
    assert (jp["days"], jp["photos"]) == (6, 24)
    assert (jp["start_local"][:10], jp["end_local"][:10]) == ("2024-10-01", "2024-10-06")
    assert jp["places"]["cities_zh"] == ["东京", "京都"] and jp["places"]["countries_en"] == ["Japan"]
    # the cover is one of the trip's own photos, and its thumbnail is served
    assert jp["cover_photo_id"] in life.trip_ids("japan24")
    assert jp["cover"] == f"/api/photos/{jp['cover_photo_id']}/thumbnail?size=256"
    thumb = client.get(jp["cover"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert [t["id"] for t in ok(client.get("/api/trips", params={"limit": 2}))] == [
        t["id"] for t in trips[:2]
    ]


def test_a_trip_has_its_events_in_time_order(client: TestClient, life: Life) -> None:
    jp = japan(client)
    trip = ok(client.get(f"/api/trips/{jp['id']}"))
    assert {k: trip[k] for k in jp} == jp  # the same trip as in the list
    events = trip["events"]
    assert len(events) == 6
    assert [e["start_local"] for e in events] == sorted(e["start_local"] for e in events)
    assert [e["title"]["en"] for e in events] == [
        *["Tokyo, Japan, National Day 2024"] * 3,
        *["Kyoto, Japan, National Day 2024"] * 3,
    ]
    assert events[3]["title"]["zh"] == "2024年国庆 日本：京都"
    assert all(e["trip_id"] == jp["id"] and e["photos"] == 4 for e in events)
    # the first evening runs past midnight and is still one event
    assert (events[0]["start_local"], events[0]["end_local"][:10]) == ("2024-10-01T18:30:00", "2024-10-02")
    # Japan is +09:00: UTC is nine hours earlier than the local time
    assert events[0]["start_utc"] == "2024-10-01T09:30:00"
    assert events[0]["home_km"] > 1000 and events[0]["cover_photo_id"] in life.event_ids("japan24-d1")


def test_events_of_a_trip_and_of_the_library(client: TestClient) -> None:
    jp = japan(client)
    of_trip = ok(client.get("/api/events", params={"trip": jp["id"]}))
    detail = ok(client.get(f"/api/trips/{jp['id']}"))["events"]
    assert of_trip == list(reversed(detail))  # newest first here
    everything = ok(client.get("/api/events", params={"limit": 10_000}))
    assert [e["start_utc"] for e in everything] == sorted((e["start_utc"] for e in everything), reverse=True)
    trips = {t["id"] for t in ok(client.get("/api/trips"))}
    in_trips = [e for e in everything if e["trip_id"] is not None]
    assert {e["trip_id"] for e in in_trips} == trips
    assert sum(e["photos"] for e in in_trips) == 12 + 16 + 16 + 20 + 8 + 24 + 20
    assert any(e["trip_id"] is None for e in everything)  # days at home and days out
    assert ok(client.get("/api/events", params={"limit": 3})) == everything[:3]


def test_an_event_has_its_photos_in_time_order(client: TestClient, life: Life) -> None:
    kyoto = ok(client.get(f"/api/trips/{japan(client)['id']}"))["events"][4]  # day 5
    event = ok(client.get(f"/api/events/{kyoto['id']}"))
    assert {k: event[k] for k in kyoto} == kyoto
    ids = [p["photo_id"] for p in event["photo_list"]]
    assert ids == life.event_ids("japan24-d5") and event["offset"] == 0
    first = event["photo_list"][0]
    assert first["caption"]["en"] and first["caption"]["zh"]
    shot = next(s for s in life.shots if life.ids[s.name] == first["photo_id"])
    assert (first["caption"]["en"], first["caption"]["zh"]) == (shot.en, shot.zh)
    assert first["taken_at"] == shot.local.isoformat() and first["tz_offset"] == "+09:00"
    assert first["place"]["city"] == "Kyoto" and first["place"]["label"]["zh"].startswith("京都")
    assert first["urls"]["large"] == f"/api/photos/{first['photo_id']}/thumbnail?size=1024"
    # paged
    page = ok(client.get(f"/api/events/{kyoto['id']}", params={"limit": 2, "offset": 1}))
    assert [p["photo_id"] for p in page["photo_list"]] == ids[1:3] and page["offset"] == 1
    assert page["photos"] == 4  # the count is the whole event's
    assert ok(client.get(f"/api/events/{kyoto['id']}", params={"offset": 4}))["photo_list"] == []
    assert ok(client.get(f"/api/events/{kyoto['id']}", params={"limit": 0}))["photo_list"] == []


def test_the_event_of_a_photo(client: TestClient, life: Life) -> None:
    kyoto = life.event_ids("japan24-d4")
    for pid in (kyoto[0], kyoto[-1]):
        event = ok(client.get(f"/api/photos/{pid}/event"))
        assert event["title"]["en"] == "Kyoto, Japan, National Day 2024"
        photos = ok(client.get(f"/api/events/{event['id']}"))["photo_list"]
        assert [p["photo_id"] for p in photos] == kyoto
    # a photo taken at home belongs to an event that is part of no trip
    home = next(s for s in life.shots if s.event.startswith("home-") and s.local.year == 2025)
    event = ok(client.get(f"/api/photos/{life.ids[home.name]}/event"))
    assert event["trip_id"] is None and event["home_km"] is not None and event["home_km"] < 30
    photos = ok(client.get(f"/api/events/{event['id']}"))["photo_list"]
    assert [p["photo_id"] for p in photos] == life.event_ids(home.event)


# -- not found and bad input ------------------------------------------------------------------------


def test_unknown_ids_are_404(client: TestClient, life: Life) -> None:
    missing = max(life.ids.values()) + 1000
    assert_error(client.get(f"/api/trips/{missing}"), 404, f"no trip {missing}")
    assert_error(client.get("/api/events", params={"trip": missing}), 404, f"no trip {missing}")
    assert_error(client.get(f"/api/events/{missing}"), 404, f"no event {missing}")
    assert_error(client.get(f"/api/photos/{missing}/event"), 404, f"no photo {missing}")
    some = life.ids[life.shots[0].name]
    assert ok(client.get(f"/api/photos/{some}/event"))["photos"] >= 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/trips/0", "/api/trips/-1", "/api/trips/abc", "/api/trips/1.5", f"/api/trips/{2**63}",
        "/api/trips?limit=0", "/api/trips?limit=10001", "/api/trips?limit=x",
        "/api/events?trip=0", "/api/events?trip=abc", f"/api/events?trip={2**63}", "/api/events?limit=0",
        "/api/events?limit=10001", "/api/events/0", "/api/events/abc", "/api/events/1?limit=-1",
        "/api/events/1?limit=1001", "/api/events/1?offset=-1", "/api/events/1?offset=100001",
        "/api/photos/0/event", "/api/photos/abc/event", f"/api/photos/{2**63}/event",
    ],
)  # fmt: skip
def test_bad_input_is_a_422_with_a_message(client: TestClient, path: str) -> None:
    body = assert_error(client.get(path), 422)
    assert body["hint"] == "see /docs for what each parameter takes"


def test_writes_are_not_allowed(client: TestClient) -> None:
    assert_error(client.post("/api/trips", json={}), 405)
    assert_error(client.delete("/api/events/1"), 405)


def test_token_is_required(life: Life) -> None:
    with TestClient(create_app(life.library, token=TOKEN)) as anon:
        for path in ("/api/trips", "/api/trips/1", "/api/events", "/api/events/1", "/api/photos/1/event"):
            assert_error(anon.get(path), 401, "token")


def test_docs_list_the_endpoints(client: TestClient) -> None:
    docs = client.get("/docs").text
    for path in ("/api/trips/{trip_id}", "/api/events/{event_id}", "/api/photos/{photo_id}/event"):
        assert path in docs
    assert "only this trip&#x27;s events" in docs or "only this trip's events" in docs


# -- regrouping (runs last: it removes a photo) ------------------------------------------------------


def test_a_photo_gone_regroups_before_answering(client: TestClient, life: Life) -> None:
    day1 = life.event_ids("japan24-d1")
    gone, kept = day1[0], day1[1:]
    catalog = life.library.catalog
    path = catalog.photo(gone)["files"][0]["path"]
    assert catalog.mark_gone([path]) == 1
    # the photo's event is asked first, before any list: it is regrouped all the same
    event = ok(client.get(f"/api/photos/{kept[0]}/event"))
    assert event["photos"] == 3
    assert [p["photo_id"] for p in ok(client.get(f"/api/events/{event['id']}"))["photo_list"]] == kept
    assert japan(client)["photos"] == 23
    assert ok(client.get(f"/api/photos/{gone}/event")) is None  # a photo no file shows has no event

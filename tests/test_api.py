"""The HTTP API end to end: the real app over a real library (real JPEGs, ingestion, stored descriptions).

Every endpoint's happy path, the token, bad input of every kind (each a 4xx with a JSON message, never a 500),
files only by id and only inside a registered folder, ETags, and indexing jobs started over HTTP.
"""

from __future__ import annotations

import http.client
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from smartalbum.api.app import create_app
from smartalbum.api.server import check_bind, serve
from smartalbum.catalog import Catalog
from smartalbum.config import load_settings
from smartalbum.errors import ConfigError
from smartalbum.library import Library
from smartalbum.pipeline.ingest import ingest_library
from tests.helpers import make_photo, text_photo
from tests.tiny_qwen import tiny_qwen_dir
from tests.web_fixtures import (
    INDEX_OPTIONS,
    PHOTOS,
    TOKEN,
    BuiltLibrary,
    build_library,
    free_port,
    live_server,
    make_settings,
    write_photos,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> BuiltLibrary:
    return build_library(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(lib: BuiltLibrary) -> Iterator[TestClient]:
    with TestClient(create_app(lib.library, token=TOKEN), headers=AUTH) as c:
        yield c


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a test sends, the app must never hit an unexpected exception."""
    with caplog.at_level(logging.ERROR, logger="smartalbum"):
        yield
    errors = [r for r in caplog.records if r.name.startswith("smartalbum.api") and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def assert_error(response: Any, status: int | tuple[int, ...], *words: str) -> dict[str, Any]:
    """A 4xx with the JSON error shape, a message that names what was wrong, and no stack trace."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error", "hint"} and body["error"], body
    for word in words:
        assert word in body["error"], body
    assert "Traceback" not in response.text
    return dict(body)


def search(client: TestClient, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- happy paths ------------------------------------------------------------------------------------


def test_health_and_stats(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    stats = client.get("/api/stats").json()
    assert (stats["roots"], stats["photos"], stats["files_error"]) == (1, len(PHOTOS), 0)
    assert stats["analyses"]["qwen_vl"]["ok"] == len(PHOTOS)
    assert stats["job"] is None


def test_search_in_english_and_chinese(client: TestClient, lib: BuiltLibrary) -> None:
    for query, expected in [("sunset beach", "sunset_beach"), ("猫", "cat"), ("receipt", "receipt")]:
        data = search(client, query)
        assert data["hits"], (query, data)
        top = data["hits"][0]
        assert top["photo_id"] == lib.ids[expected], (query, data["hits"])
        assert top["why"], top
        # the score is the engine's, and the one min_score filters on
        assert top["score"] == lib.library.search(query).hits[0].score
        kept = search(client, query, min_score=top["score"])["hits"]
        assert top["photo_id"] in [h["photo_id"] for h in kept]
        assert top["urls"]["thumbnail"] == f"/api/photos/{top['photo_id']}/thumbnail?size=256"
    assert search(client, "猫")["language"] == "zh"


def test_search_paging_filters_and_sort(client: TestClient, lib: BuiltLibrary) -> None:
    first = search(client, "sunset beach", limit=1, offset=0)
    assert first["limit"] == 1 and first["total"] >= 1
    assert [h["photo_id"] for h in first["hits"]] == [lib.ids["sunset_beach"]]
    last = search(client, "sunset beach", offset=first["total"] - 1)
    assert len(last["hits"]) == 1 and last["total"] == first["total"]
    assert search(client, "sunset beach", offset=first["total"])["hits"] == []
    assert search(client, "sunset beach", after="2025-01-01")["hits"] == []  # taken in July 2024
    dated = search(client, "sunset beach", after="2024-07-01", before="2024-07-31", sort="date")
    assert [h["photo_id"] for h in dated["hits"]] == [lib.ids["sunset_beach"]]
    assert_error(
        client.get("/api/search", params={"q": "x", "after": "2024-02-01", "before": "2024-01-01"}), 400
    )


def test_photo_detail(client: TestClient, lib: BuiltLibrary) -> None:
    photo = client.get(f"/api/photos/{lib.ids['sunset_beach']}").json()
    assert photo["caption"]["zh"].startswith("海边的日落") and photo["caption"]["en"].startswith("A sunset")
    assert "sunset" in photo["tags"]["en"] and "日落" in photo["tags"]["zh"]
    assert {o["name"]["en"] for o in photo["objects"]} == {"sun", "waves"}
    assert photo["taken_at"] == "2024-07-12T19:42:00" and photo["time_source"] == "exif_original"
    assert photo["camera"] == {"make": "Apple", "model": "iPhone 15", "lens": None}
    assert photo["place"]["city"] and photo["place"]["label"]["zh"]
    assert photo["description_status"] == "ok" and photo["analyses"][0]["producer"] == "qwen_vl"
    receipt = client.get(f"/api/photos/{lib.ids['receipt']}").json()
    assert "TOTAL 42.50" in receipt["text"]


def test_thumbnails_have_etags_and_answer_304(client: TestClient, lib: BuiltLibrary) -> None:
    pid = lib.ids["cat"]
    for size in (256, 1024):
        r = client.get(f"/api/photos/{pid}/thumbnail", params={"size": size})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).format == "JPEG"
        assert r.headers["etag"].startswith(f'"{lib.hashes["cat"]}-{size}-')
        assert "max-age" in r.headers["cache-control"]
        again = client.get(
            f"/api/photos/{pid}/thumbnail?size={size}", headers={"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
    assert_error(client.get(f"/api/photos/{pid}/thumbnail?size=512"), 422, "size")


def test_original_is_the_file(client: TestClient, lib: BuiltLibrary) -> None:
    pid = lib.ids["receipt"]
    r = client.get(f"/api/photos/{pid}/original")
    assert r.status_code == 200 and r.content == (lib.photos_dir / "receipt.jpg").read_bytes()
    assert r.headers["content-type"] == "image/jpeg" and "receipt.jpg" in r.headers["content-disposition"]
    assert r.headers["etag"] == f'"{lib.hashes["receipt"]}-{len(r.content)}"'
    assert (
        client.get(f"/api/photos/{pid}/original", headers={"If-None-Match": r.headers["etag"]}).status_code
        == 304
    )


def test_similar(client: TestClient, lib: BuiltLibrary) -> None:
    r = client.get(f"/api/photos/{lib.ids['cat']}/similar", params={"limit": 3})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 3 and lib.ids["cat"] not in [h["photo_id"] for h in hits]
    scores = [h["score"] for h in hits]
    assert scores[0] > scores[1] > scores[2], scores  # most similar first, and told apart by the score
    assert_error(client.get("/api/photos/999999/similar"), 404)


def test_feedback_hides_a_photo_from_its_query_and_undo_brings_it_back(
    client: TestClient, lib: BuiltLibrary
) -> None:
    query, cat = "橘猫", lib.ids["cat"]
    assert cat in [h["photo_id"] for h in search(client, query)["hits"]]
    r = client.post("/api/feedback", json={"query": query, "photo_id": cat, "verdict": "bad"})
    assert r.status_code == 201
    fb = r.json()
    assert (fb["query"], fb["photo_id"], fb["verdict"]) == (query, cat, "bad")
    assert cat not in [h["photo_id"] for h in search(client, query)["hits"]]
    assert fb["id"] in [f["id"] for f in client.get("/api/feedback").json()]
    undone = client.delete(f"/api/feedback/{fb['id']}")
    assert undone.status_code == 200 and undone.json()["undone_at"]
    assert cat in [h["photo_id"] for h in search(client, query)["hits"]]
    assert fb["id"] not in [f["id"] for f in client.get("/api/feedback").json()]
    assert fb["id"] in [f["id"] for f in client.get("/api/feedback?include_undone=true").json()]
    assert_error(client.delete(f"/api/feedback/{fb['id']}"), 404)
    good = client.post("/api/feedback", json={"query": "sofa cat", "photo_id": cat, "verdict": "good"})
    assert good.status_code == 201
    assert client.delete(f"/api/feedback/{good.json()['id']}").status_code == 200


def test_libraries(client: TestClient, lib: BuiltLibrary, tmp_path: Path) -> None:
    roots = client.get("/api/libraries").json()
    assert [r["path"] for r in roots] == [str(lib.photos_dir.resolve())] and roots[0]["files"] == len(PHOTOS)
    extra = tmp_path / "more photos"
    extra.mkdir()
    r = client.post("/api/libraries", json={"path": str(extra)})
    assert r.status_code == 201 and r.json()["path"] == str(extra.resolve())
    assert str(extra.resolve()) in [x["path"] for x in client.get("/api/libraries").json()]
    lib.library.catalog.remove_root(extra.resolve())  # leave the shared library as it was
    assert_error(client.post("/api/libraries", json={"path": "relative/dir"}), 400, "absolute")
    assert_error(client.post("/api/libraries", json={"path": str(tmp_path / "missing")}), 400, "not a folder")
    assert_error(client.post("/api/libraries", json={"path": "/" + "x" * 300}), 400)
    assert_error(client.post("/api/libraries", json={"path": "/tmp/a\x00b"}), 422, "path")
    assert_error(client.post("/api/libraries", json={"path": str(extra), "evil": 1}), 422, "evil")


# -- indexing jobs over HTTP -----------------------------------------------------------------------


def wait_for_job(client: TestClient, job_id: int) -> tuple[dict[str, Any], set[str]]:
    """Polls until the job ends; a job that never ends fails the test at pytest's timeout, not at a guess."""
    seen: set[str] = set()
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        seen.add(job["state"])
        if job["state"] not in ("queued", "running"):
            return job, seen
        time.sleep(0.05)


def test_indexing_job_runs_in_the_background_and_reports_progress(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    folder = tmp_path / "photos"
    write_photos(folder, ["cat", "receipt", "snow_dog"])
    with TestClient(
        create_app(Library(settings, index_options=INDEX_OPTIONS), token=TOKEN), headers=AUTH
    ) as c:
        assert_error(c.post("/api/jobs"), 400, "no folders")
        assert c.post("/api/libraries", json={"path": str(folder)}).status_code == 201
        r = c.post("/api/jobs")
        assert r.status_code == 202 and r.json()["state"] in ("queued", "running")
        job_id = r.json()["id"]
        assert_error(c.post("/api/jobs"), 409, "already running")
        assert c.get("/api/stats").json()["job"]["id"] == job_id  # progress is visible while it runs
        while (state := c.get(f"/api/jobs/{job_id}").json())["state"] == "queued":
            time.sleep(0.02)
        assert state["state"] == "running", state
        assert c.get("/api/search", params={"q": "cat"}).status_code == 200  # indexing never blocks search
        job, _ = wait_for_job(c, job_id)
        assert job["state"] == "done", job
        assert job["result"]["ok"] == 3 and job["done"] >= 1 and job["finished_at"]
        assert [j["id"] for j in c.get("/api/jobs").json()] == [job_id]
        assert c.get("/api/stats").json()["photos"] == 3
        assert_error(c.get("/api/jobs/99"), 404)


def test_indexing_job_can_be_cancelled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    folder = tmp_path / "photos"
    for i in range(40):
        make_photo(folder / f"p{i:03}.jpg", size=(64, 48), seed=i)
    with TestClient(
        create_app(Library(settings, index_options=INDEX_OPTIONS), token=TOKEN), headers=AUTH
    ) as c:
        c.post("/api/libraries", json={"path": str(folder)})
        job_id = c.post("/api/jobs").json()["id"]
        cancelled = c.post(f"/api/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["message"] == "cancelling"
        job, _ = wait_for_job(c, job_id)
        assert job["state"] == "cancelled", job
        assert c.post(f"/api/jobs/{job_id}/cancel").json()["state"] == "cancelled"  # cancelling twice is fine
        again = c.post("/api/jobs")  # the next job resumes where the cancelled one stopped
        assert again.status_code == 202
        assert wait_for_job(c, again.json()["id"])[0]["state"] == "done"
        assert c.get("/api/stats").json()["photos"] == 40


@pytest.mark.slow
def test_indexing_job_runs_the_vision_model_and_ocr(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The job as a user's server runs it: the (tiny, random) Qwen3-VL and real OCR, neither switched off."""
    tiny = tiny_qwen_dir(tmp_path_factory)
    settings = load_settings(
        tmp_path / "library",
        workers=1,
        embed_model="offline",
        ocr_enabled=True,
        vlm_model=str(tiny),
        vlm_device="cpu",
        vlm_dtype="fp32",
        vlm_max_new_tokens=16,
        vlm_batch_size=2,
    )
    folder = tmp_path / "photos"
    sign = text_photo(folder / "sign.jpg", ["星巴克", "STARBUCKS 拿铁"])
    plain = [make_photo(folder / f"p{i}.jpg", size=(160, 120), seed=i) for i in range(2)]
    library = Library(settings)  # no index_options: the job runs every stage the settings enable
    with TestClient(create_app(library, token=TOKEN), headers=AUTH) as c:
        assert c.post("/api/libraries", json={"path": str(folder)}).status_code == 201
        r = c.post("/api/jobs")
        assert r.status_code == 202, r.text
        job, _ = wait_for_job(c, r.json()["id"])
        assert job["state"] == "done", job
        vlm, ocr = job["result"]["analysis"]["qwen_vl"], job["result"]["analysis"]["ocr"]
        assert (vlm["todo"], vlm["model_error"]) == (3, None), vlm
        assert (ocr["todo"], ocr["ok"]) == (3, 3), ocr
        # stored in the catalog: one row per photo from each producer, the VLM's under the tiny model's name
        for path in (sign, *plain):
            photo_hash = library.catalog.photo(str(path))["hash"]
            rows = {a["producer"]: a for a in library.catalog.analyses(photo_hash)}
            assert set(rows) == {"qwen_vl", "ocr"}, (path.name, rows)
            assert rows["qwen_vl"]["producer_version"].startswith(tiny.name)
            assert rows["ocr"]["status"] == "ok"
            assert bool(rows["ocr"]["data"]["text"]) == (path == sign), rows["ocr"]["data"]
        stats = c.get("/api/stats").json()["analyses"]
        assert sum(stats["qwen_vl"].values()) == 3 and stats["ocr"] == {"ok": 3}, stats
        sign_id = library.catalog.photo(str(sign))["id"]
        detail = c.get(f"/api/photos/{sign_id}").json()
        assert "星巴克" in "".join(detail["text"]) and "STARBUCKS" in "".join(detail["text"]), detail["text"]
        # the text read from the photo is searchable, in both languages
        zh = search(c, "星巴克")["hits"]
        assert zh and zh[0]["photo_id"] == sign_id, zh
        assert "[星巴克]" in zh[0]["highlights"].get("text", ""), zh[0]["highlights"]
        en = search(c, "starbucks")["hits"]
        assert en and en[0]["photo_id"] == sign_id, en
        assert any("starbucks" in w for w in en[0]["why"]), en[0]["why"]


# -- the token --------------------------------------------------------------------------------------


def test_token_is_required_everywhere_but_the_page_shell(lib: BuiltLibrary) -> None:
    pid = lib.ids["cat"]
    with TestClient(create_app(lib.library, token=TOKEN)) as anon:
        photo = f"/api/photos/{pid}"
        for path in [
            *("/api/health", "/api/stats", photo, f"{photo}/thumbnail", f"{photo}/original"),
            *("/api/search?q=cat", "/docs", "/openapi.json", "/nope"),
        ]:
            r = anon.get(path)
            assert_error(r, 401, "token")
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert_error(anon.post("/api/jobs"), 401)
        assert_error(anon.get("/api/health", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(anon.get("/api/health", headers={"Authorization": f"Basic {TOKEN}"}), 401)
        assert anon.get("/api/health", headers=AUTH).status_code == 200
        assert anon.get("/").status_code == 200 and anon.get("/static/app.js").status_code == 200

        assert anon.get("/?token=wrong", follow_redirects=False).status_code == 401
        assert "smartalbum_session" not in anon.cookies
        login = anon.get(f"/?token={TOKEN}", follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN not in cookie
        # the browser now sends the cookie: API calls and <img> requests work without the header
        assert anon.get("/api/stats").status_code == 200
        assert anon.get(f"/api/photos/{pid}/thumbnail").status_code == 200
        anon.cookies.set("smartalbum_session", "forged")
        assert_error(anon.get("/api/stats"), 401)


def test_without_a_token_only_loopback_names_and_same_site_writes(lib: BuiltLibrary) -> None:
    app = create_app(lib.library, token=None)
    with TestClient(app, base_url="http://127.0.0.1:8765") as local:
        assert local.get("/api/stats").status_code == 200
        assert local.get("/api/health", headers={"Host": "localhost:8765"}).status_code == 200
        # DNS rebinding: a hostile name that resolves to 127.0.0.1 is refused
        assert_error(local.get("/api/stats", headers={"Host": "evil.example:8765"}), 400, "host")
        # a page on another site cannot write through the visitor's browser
        r = local.post("/api/jobs", headers={"Origin": "http://evil.example"})
        assert_error(r, 403, "another site")
        same = local.post("/api/feedback", headers={"Origin": "http://127.0.0.1:8765"}, json={})
        assert same.status_code == 422  # passed the origin check, failed validation


def test_public_bind_without_a_token_is_refused(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(ConfigError) as err:
            check_bind(host, None)
        assert "token" in err.value.message and err.value.hint and "SMARTALBUM_TOKEN" in err.value.hint
    with pytest.raises(ConfigError, match="too short"):
        check_bind("0.0.0.0", "short")
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ConfigError):  # refused before anything listens
        serve(make_settings(tmp_path), host="0.0.0.0", port=free_port(), token=None)


def test_smartalbum_serve_prints_the_url_and_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SMARTALBUM_TOKEN": TOKEN}
    cmd = [sys.executable, "-c", "from smartalbum.cli import run; run()", "--library", str(tmp_path / "lib")]
    no_token = {k: v for k, v in os.environ.items() if k != "SMARTALBUM_TOKEN"}
    refused = subprocess.run(
        [*cmd, "serve", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60, env=no_token
    )
    assert (
        refused.returncode == 1 and "without a token" in refused.stderr and "Traceback" not in refused.stderr
    )
    out = subprocess.PIPE
    proc = subprocess.Popen([*cmd, "serve", "--port", str(port)], stdout=out, stderr=out, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        while True:  # until it listens, or exits; a server that hangs ends at pytest's timeout
            assert proc.poll() is None, proc.communicate()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("GET", "/api/health", headers=AUTH)
                assert conn.getresponse().status == 200
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(20)


# -- bad input: always a 4xx with a message --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"q": "cat", "limit": -1}, ["limit"]),
        ({"q": "cat", "limit": 100000}, ["limit"]),
        ({"q": "cat", "limit": "lots"}, ["limit"]),
        ({"q": "cat", "offset": -5}, ["offset"]),
        ({"q": "cat", "offset": 10**30}, ["offset"]),
        ({"q": "猫" * 5000}, ["q", "1000"]),
        ({"q": "cat", "min_score": 2}, ["min_score"]),
        ({"q": "cat", "min_score": "nan"}, ["min_score"]),
        ({"q": "cat", "sort": "random"}, ["sort"]),
        ({"q": "cat", "after": "2024-13-45"}, ["after"]),
        ({"q": "cat", "place": "x" * 500}, ["place"]),
        ({"q": "cat", "place": "a\x00b"}, ["place"]),
    ],
)
def test_bad_search_parameters(client: TestClient, params: dict[str, Any], words: list[str]) -> None:
    assert_error(client.get("/api/search", params=params), 422, *words)


@pytest.mark.parametrize(
    "path",
    [
        "/api/photos/abc",
        "/api/photos/-1",
        "/api/photos/0",
        f"/api/photos/{2**70}",
        "/api/photos/1.5/thumbnail",
        "/api/photos/1/thumbnail?size=-256",
        "/api/photos/1/similar?limit=0",
        "/api/photos/1/similar?limit=100000",
        "/api/jobs/abc",
        "/api/feedback?include_undone=maybe",
    ],
)
def test_bad_path_and_query_values(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 422)


def test_missing_things_are_404(client: TestClient) -> None:
    for path in ["/api/photos/424242", "/api/photos/424242/thumbnail", "/api/photos/424242/original",
                 "/api/jobs/424242", "/no/such/page", "/static/nope.js", "/static/index.html"]:  # fmt: skip
        assert_error(client.get(path), 404)
    assert_error(client.delete("/api/feedback/424242"), 404)
    assert_error(client.post("/api/feedback", json={"query": "x", "photo_id": 424242, "verdict": "bad"}), 404)
    assert_error(client.put("/api/stats"), 405)
    # an id made only of digits is never read as a content-hash prefix
    assert_error(client.get("/api/photos/12345678"), 404)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"query": "cat", "photo_id": 1, "verdict": "meh"}, ["verdict"]),
        ({"query": "", "photo_id": 1, "verdict": "bad"}, ["query"]),
        ({"query": "   ", "photo_id": 1, "verdict": "bad"}, ["query"]),
        ({"query": "x" * 1001, "photo_id": 1, "verdict": "bad"}, ["query"]),
        ({"query": "cat", "photo_id": -3, "verdict": "bad"}, ["photo_id"]),
        ({"query": "cat", "photo_id": "1; DROP TABLE photos", "verdict": "bad"}, ["photo_id"]),
        ({"query": "cat", "verdict": "bad"}, ["photo_id"]),
        ([1, 2, 3], ["body"]),
        ("just a string", ["body"]),
    ],
)
def test_bad_feedback_bodies(client: TestClient, body: Any, words: list[str]) -> None:
    assert_error(client.post("/api/feedback", json=body), 422, *words)


def test_malformed_json_and_huge_bodies(client: TestClient) -> None:
    json_type = {"Content-Type": "application/json"}
    assert_error(client.post("/api/feedback", content=b'{"query": "cat",', headers=json_type), 400, "JSON")
    assert_error(client.post("/api/feedback", content=b"\xff\xfe\x00garbage", headers=json_type), (400, 422))
    assert_error(client.post("/api/feedback", content=b"query=cat"), 422)  # not JSON at all
    huge = b'{"query": "' + b"x" * 200_000 + b'", "photo_id": 1, "verdict": "bad"}'
    assert_error(client.post("/api/feedback", content=huge, headers=json_type), 413)
    assert_error(client.post("/api/libraries", content=huge, headers=json_type), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted while reading
        yield b'{"path": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    assert_error(client.post("/api/libraries", content=chunks(), headers=json_type), 413)
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 KB of nesting: refused by size before any parsing
    assert_error(client.post("/api/feedback", content=deep, headers=json_type), 413)
    nested = b"[" * 20_000 + b"]" * 20_000  # under the size limit, deeper than the JSON parser goes
    assert_error(client.post("/api/feedback", content=nested, headers=json_type), (400, 422))


def test_path_traversal_never_reaches_the_file_system(client: TestClient) -> None:
    for path in [
        "/api/photos/..%2F..%2Fetc%2Fpasswd/original",
        "/api/photos/%2e%2e%2f%2e%2e%2fetc%2fpasswd/original",
        "/api/photos/1/..%2F..%2F..%2Fpyproject.toml",
        "/static/../../pyproject.toml",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/%252e%252e%252fpyproject.toml",
        "/static/app.js%00.txt",
        "/static//etc/passwd",
        "/static/..\\..\\pyproject.toml",
    ]:
        r = client.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert "[project]" not in r.text and "root:" not in r.text


def test_raw_traversal_requests_to_a_live_server(lib: BuiltLibrary) -> None:
    """Paths sent byte for byte, as an attacker would (no client-side normalisation of '..')."""
    with live_server(create_app(lib.library, token=TOKEN)) as url:
        port = int(url.rsplit(":", 1)[1])
        for path in [
            "/static/../../pyproject.toml",
            "/static/../../../../../../etc/passwd",
            "/static/..%2f..%2fpyproject.toml",
            "/api/photos/..%2F..%2Fetc%2Fpasswd/original",
            "/api/photos/../../../etc/passwd",
            "/../../../etc/passwd",
        ]:
            conn = http.client.HTTPConnection("127.0.0.1", port)  # a hang ends at pytest's timeout
            conn.putrequest("GET", path, skip_accept_encoding=True)
            conn.putheader("Authorization", AUTH["Authorization"])
            conn.endheaders()
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            assert 400 <= response.status < 500, (path, response.status)
            assert "[project]" not in body and "root:" not in body, path
            conn.close()


def test_a_symlink_out_of_the_root_is_not_served(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    root, outside = tmp_path / "root", tmp_path / "outside"
    secret = make_photo(outside / "secret.jpg", seed=7)
    make_photo(root / "inside.jpg", seed=8)
    (root / "link.jpg").symlink_to(secret)
    with Catalog(settings.catalog_path) as catalog:
        catalog.add_root(root.resolve())
        ingest_library(catalog, settings)
        files = {Path(r[0]).name: r[1] for r in catalog.db.execute("SELECT path, photo_id FROM files")}
    assert set(files) == {"inside.jpg", "link.jpg"}  # the link was followed and indexed under its own name
    linked, inside = {"id": files["link.jpg"]}, {"id": files["inside.jpg"]}
    with TestClient(
        create_app(Library(settings, index_options=INDEX_OPTIONS), token=TOKEN), headers=AUTH
    ) as c:
        assert c.get(f"/api/photos/{inside['id']}/original").status_code == 200
        assert_error(c.get(f"/api/photos/{linked['id']}/original"), 404)
        assert c.get(f"/api/photos/{linked['id']}/thumbnail").status_code == 200  # made by us, in the library


# -- headers, docs, static files -------------------------------------------------------------------


def test_security_headers_on_every_response(client: TestClient, lib: BuiltLibrary) -> None:
    for path in [
        "/",
        "/api/health",
        "/static/app.css",
        f"/api/photos/{lib.ids['cat']}/thumbnail",
        "/api/nope",
    ]:
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"


def test_docs_work_offline(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    photo = "/api/photos/{photo_id}"
    expected = {
        *("/api/search", photo, f"{photo}/thumbnail", f"{photo}/original", f"{photo}/similar"),
        *(f"{photo}/motion", f"{photo}/frames/{{index}}"),
        *("/api/feedback", "/api/feedback/{feedback_id}", "/api/libraries", "/api/stats", "/api/health"),
        *("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/cancel"),
        *("/api/people", "/api/people/{person_id}", "/api/people/{person_id}/name", "/api/people/me"),
        *("/api/people/{person_id}/hide", "/api/people/merge", "/api/faces/move", f"{photo}/faces"),
        "/api/faces/{face_id}/crop",
        "/api/transcribe",
        *("/api/trips", "/api/trips/{trip_id}", "/api/events", "/api/events/{event_id}", f"{photo}/event"),
        *("/api/duplicates", "/api/duplicates/{group_id}"),
    }
    assert set(spec["paths"]) == expected
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    for path in expected:
        assert path in docs.text
    assert "cdn" not in docs.text.lower() and "<script" not in docs.text


def test_page_and_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN: works offline
    for name, kind in [("app.js", "javascript"), ("i18n.js", "javascript"), ("app.css", "text/css"),
                       ("favicon.svg", "image/svg+xml")]:  # fmt: skip
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert client.get(f"/static/{name}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
        assert "https://" not in r.text
    assert client.get("/favicon.ico", follow_redirects=False).headers["location"] == "/static/favicon.svg"

"""Search shows one photo per group of near-duplicates, carrying the others (`similar`); the API exposes it on
hits, lists groups and expands one; `all_similar` (CLI --all-similar) keeps every photo."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartalbum.api.app import create_app
from smartalbum.search.results import SearchFilters
from tests.similar_fixtures import BURST, EXPORT, TRAP, SimilarLibrary, build_similar_library
from tests.web_fixtures import TOKEN

CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimilarLibrary]:
    built = build_similar_library(tmp_path_factory.mktemp("similar-search"))
    yield built
    built.library.close()


@pytest.fixture(scope="module")
def client(lib: SimilarLibrary) -> Iterator[TestClient]:
    with TestClient(create_app(lib.library, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def test_the_group_is_the_burst_and_its_export_not_the_other_beach(lib: SimilarLibrary) -> None:
    groups = lib.library.duplicates()
    assert len(groups) == 1
    assert sorted(p["photo_id"] for p in groups[0]["photos"]) == sorted(lib.group)
    assert groups[0]["id"] == min(lib.group)


def test_search_folds_a_group_into_its_best_hit_and_all_similar_keeps_them(lib: SimilarLibrary) -> None:
    every = lib.library.search("beach umbrellas", SearchFilters(all_similar=True), limit=50)
    ids = [h.photo_id for h in every.hits]
    assert set(lib.group) | {lib.ids[TRAP]} <= set(ids)
    assert all(h.similar is None for h in every.hits)
    one = lib.library.search("beach umbrellas", limit=50)
    shown = [h.photo_id for h in one.hits]
    assert one.total == every.total - (len(lib.group) - 1)
    kept = [pid for pid in shown if pid in lib.group]
    assert len(kept) == 1 and kept[0] == next(pid for pid in ids if pid in lib.group)  # the best-ranked stays
    hit = next(h for h in one.hits if h.photo_id == kept[0])
    assert hit.similar is not None
    assert hit.similar.group_id == min(lib.group)
    assert hit.similar.count == len(lib.group) - 1
    assert hit.similar.photo_ids == [pid for pid in ids if pid in lib.group and pid != kept[0]]  # rank order
    trap = next(h for h in one.hits if h.photo_id == lib.ids[TRAP])
    assert trap.similar is None  # another beach, described with the same words, is its own hit
    # paging counts groups: the second page starts after the group, not inside it
    page = lib.library.search("beach umbrellas", limit=1, offset=1)
    assert page.total == one.total and [h.photo_id for h in page.hits] == shown[1:2]


def test_a_date_only_listing_is_one_per_group_too(lib: SimilarLibrary) -> None:
    listed = lib.library.search("2024-07-12")
    shown = [h.photo_id for h in listed.hits]
    burst_ids = [lib.ids[n] for n in BURST]
    assert sum(pid in burst_ids for pid in shown) == 1  # the export was made later: not that day
    hit = next(h for h in listed.hits if h.photo_id in burst_ids)
    assert hit.similar is not None and hit.similar.count == len(BURST) - 1
    assert lib.ids[EXPORT] not in hit.similar.photo_ids


def _listed(lib: SimilarLibrary, question: str, all_similar: bool, limit: int, offset: int) -> Any:
    page = lib.library.search(question, SearchFilters(all_similar=all_similar), limit, offset)
    hits = [
        (h.photo_id, h.score, h.why, h.similar and (h.similar.group_id, h.similar.photo_ids))
        for h in page.hits
    ]
    return page.total, hits


@pytest.mark.parametrize("question", ["2024-07-12", "2024年", "photos from July"])
@pytest.mark.parametrize("all_similar", [False, True])
def test_a_filter_listing_pages_from_sql_as_the_general_path_lists(
    lib: SimilarLibrary, question: str, all_similar: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartalbum.search.engine import SearchEngine

    def both(limit: int, offset: int) -> tuple[Any, Any]:
        fast = _listed(lib, question, all_similar, limit, offset)
        with monkeypatch.context() as m:  # the general path: every match read, then folded and cut
            m.setattr(SearchEngine, "_listing_in_sql", lambda *a: False)
            return fast, _listed(lib, question, all_similar, limit, offset)

    (total, hits), (general_total, general_hits) = both(50, 0)
    assert (total, hits) == (general_total, general_hits)
    assert set(lib.group) & {h[0] for h in hits}  # the group is in each listing
    assert any(h[3] for h in hits) != all_similar  # folding happens, and only without all_similar
    for limit in (1, 2):
        pages = [both(limit, offset) for offset in range(0, total + 1, limit)]
        assert all(fast == general for fast, general in pages)
        assert [h for (_, page), _ in pages for h in page] == hits
    # four similar questions call one photo wrong: 1.0 x 0.6^4 is under the cut-off, so it leaves the
    # listing (the fast path must not keep it)
    shown = hits[0][0]
    added = [
        lib.library.add_feedback(q, shown, "bad")
        for q in (f"{question} x", f"{question} y", f"{question} z", f"{question} w")
    ]
    try:
        fast, general = both(50, 0)
        assert fast == general and shown not in {h[0] for h in fast[1]}
    finally:
        for fb in added:
            lib.library.undo_feedback(fb["id"])


def test_api_hits_carry_similar_and_the_group_expands(client: TestClient, lib: SimilarLibrary) -> None:
    data = client.get("/api/search", params={"q": "beach umbrellas"}).json()
    folded = [h for h in data["hits"] if h["similar"]]
    assert len(folded) == 1
    similar = folded[0]["similar"]
    assert similar["count"] == len(lib.group) - 1 and similar["group_id"] == min(lib.group)
    group = client.get(f"/api/duplicates/{similar['group_id']}").json()
    assert group["size"] == len(lib.group)
    assert {p["photo_id"] for p in group["photos"]} == set(lib.group)
    assert {folded[0]["photo_id"], *similar["photo_ids"]} == set(lib.group)
    first = group["photos"][0]
    assert first["urls"]["thumbnail"] == f"/api/photos/{first['photo_id']}/thumbnail?size=256"
    assert first["caption"]["en"].startswith("A sandy beach") and Path(first["path"]).name in [*BURST, EXPORT]
    every = client.get("/api/search", params={"q": "beach umbrellas", "all_similar": "true"}).json()
    assert every["total"] == data["total"] + len(lib.group) - 1
    assert all(h["similar"] is None for h in every["hits"])
    listed = client.get("/api/duplicates").json()
    assert [g["id"] for g in listed] == [similar["group_id"]]
    assert client.get("/api/duplicates", params={"min_size": 6}).json() == []
    missing = client.get(f"/api/duplicates/{lib.ids[TRAP]}")
    assert missing.status_code == 404 and "no group" in missing.json()["error"]
    assert client.get("/api/duplicates", params={"min_size": 1}).status_code == 422


def test_cli_search_folds_and_all_similar_lists_every_photo(lib: SimilarLibrary) -> None:
    def run(*args: str) -> Any:
        out = subprocess.run(
            [*CLI, "--library", str(lib.settings.library_dir), "search", "beach umbrellas", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    folded = json.loads(run("--json"))
    every = json.loads(run("--json", "--all-similar"))
    assert every["total"] == folded["total"] + len(lib.group) - 1
    hit = next(h for h in folded["hits"] if h["similar"])
    assert hit["similar"]["count"] == len(lib.group) - 1
    text = run()
    assert f"+{len(lib.group) - 1} similar: " in text
    assert all(f"#{pid}" in text for pid in hit["similar"]["photo_ids"])

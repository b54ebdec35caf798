"""Full-text search with bounded work: common words do not retrieve, they are matched in stored words.

`FullTextIndex.word_matches` must find exactly what FTS5 finds (tokens, folding, porter stems, Chinese
character phrases), and a relevance list must keep counting common words for the photos it shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smartalbum.index.fulltext as fulltext
from smartalbum.index.fulltext import FullTextIndex, query_terms
from smartalbum.library import Library
from test_search_correctness import _analysis, _library

TEXTS = [
    "Running dogs ran across the park; a dog runs",
    "The 1990s café on a rainy street, naïve art on the wall",
    "熊猫在吃竹子，旁边有一只小猫",
    "上海的外滩夜景和海边的日落",
    "一件白色的t恤和iPhone手机",
    "A 3.5 km trail with Wi-Fi signs and spies watching ponies",
    "Happy children playing happily; happiness everywhere",
    "ＡＢＣ fullwidth letters and 2019年的照片",
    "A quiet room with nothing in it",
    "海 边 写成了两个字",
    "热狗、狗、狗 and a blue-eyed cat",
    "ΟΔΟΣ and a dog running, 1.250 kg",
]
QUERIES = [
    "run dog",
    "running",
    "1990 1990s",
    "cafe café rainy",
    "猫",
    "海",
    "海边 日落",
    "竹子 外滩",
    "t恤 手机 iphone",
    "3.5 wi-fi spy pony",
    "happy happiness play",
    "abc 2019年",
    "naive art wall",
    "nothing here",
    "狗狗 eyed",
    "σ ς οδος",
]


@pytest.mark.parametrize("keep_max", [-1, 1000])
def test_word_matches_find_exactly_what_fts5_finds(tmp_path: Path, monkeypatch: Any, keep_max: int) -> None:
    """From the photos' stored words (no term's list short enough to keep), or from the kept lists."""
    with FullTextIndex(tmp_path / "fts.sqlite3") as fts:
        fts.upsert_many(
            (i, {"desc_en" if i % 2 else "desc_zh": text, "tags": text.split()[:2]})
            for i, text in enumerate(TEXTS, 1)
        )
        ids = list(range(1, len(TEXTS) + 1))
        # a term SQLite splits (1.25) once made every word of its batch unstemmed in the shared stem cache
        assert "running" in fts.highlight(len(TEXTS), "1.25 run").get("desc_zh", "")
        strong = weak = 0
        for query in QUERIES:
            terms = query_terms(query)
            with pytest.MonkeyPatch.context() as patch:  # FTS5's own matching, term by term
                patch.setattr(fulltext, "KEEP_MAX", -1)
                expected = fts._matched_terms(ids, terms)
            fts._forget_matches()
            monkeypatch.setattr(fulltext, "KEEP_MAX", keep_max)
            assert fts.word_matches(ids, terms) == expected, query  # the lists are read meanwhile
            fts.settle()
            assert bool(fts._matches) == (keep_max > 0)
            assert fts.word_matches(ids, terms) == expected, query  # from the kept lists, if any
            strong += sum(bool(s) for s, _ in expected.values())
            weak += sum(bool(w) for _, w in expected.values())
        assert strong >= 16 and weak >= 2  # the comparison covered word and character matches


def _index(fts: FullTextIndex) -> tuple[set[int], int]:
    """Ten photos with "white", two with "teapot", one of them both."""
    rows: list[tuple[int, dict[str, Any]]] = [
        (i, {"desc_en": f"a white plate number {i}"}) for i in range(1, 10)
    ]
    rows += [(10, {"desc_en": "a white teapot"}), (11, {"desc_en": "a blue teapot"})]
    rows += [(12, {"desc_en": "a green tree"})]
    fts.upsert_many(rows)
    return set(range(1, 11)), 10


def test_common_terms_do_not_retrieve_but_count_for_what_is_shown(tmp_path: Path) -> None:
    with FullTextIndex(tmp_path / "fts.sqlite3", rare_df=3) as fts:
        white, both = _index(fts)
        hits = fts.search("white teapot", 5, rescore=[])
        # beside another retriever, "white" (in ten photos, over rare_df) does not retrieve: only the teapots
        # are retrieved, the one with both words first
        assert [h.photo_id for h in hits] == [both, 11] and hits.partial
        assert hits[0].matched_terms == ("white", "teapot") and hits[1].matched_terms == ("teapot",)
        # photos found by other means have their words matched: here a white plate and the tree
        more = fts.search("white teapot", 5, rescore=[12, 3, both])
        assert [(h.photo_id, h.matched_terms, h.retrieved) for h in more[2:]] == [(3, ("white",), False)]
        # with a filter, a re-scored photo outside it stays out
        assert [h.photo_id for h in fts.search("white teapot", 5, {both, 11, 4}, rescore=[3, 4])] == [
            both,
            11,
            4,
        ]
        # a filter larger than rare_df: the rare word's matches are filtered, the common word still does not
        # retrieve (photo 10, white and a teapot, is outside the filter)
        wide = fts.search("white teapot", 5, {1, 2, 3, 4, 11}, rescore=[3, both])
        assert [(h.photo_id, h.matched_terms, h.retrieved) for h in wide] == [
            (11, ("teapot",), True),
            (3, ("white",), False),
        ]
        assert wide.partial
        # every match (no limit) is still every match
        every = fts.search("white teapot", None)
        assert {h.photo_id for h in every} == white | {11} and not every.partial
        assert not fts.search("teapot", 5, rescore=[]).partial


def test_photos_ranked_past_the_limit_are_rescored(tmp_path: Path) -> None:
    with FullTextIndex(tmp_path / "fts.sqlite3") as fts:
        # photo 1's long text ranks it last of 150 (BM25 prefers short texts)
        fts.upsert_many(
            [(1, {"desc_en": "a teapot " + " ".join(f"word{i}" for i in range(80))})]
            + [(i, {"desc_en": f"a teapot {i}"}) for i in range(2, 151)]
        )
        for limit in (5, 50):  # outside the pool of 100, and inside it but past the limit
            hits = fts.search("teapot", limit, rescore=[1, 3])
            assert len(hits) == limit + 1 and 1 not in {h.photo_id for h in hits[:limit]}
            assert hits[-1].photo_id == 1 and not hits[-1].retrieved and hits[-1].matched_terms == ("teapot",)


def test_without_another_retriever_every_word_retrieves(tmp_path: Path) -> None:
    with FullTextIndex(tmp_path / "fts.sqlite3", rare_df=3) as fts:
        white, _ = _index(fts)
        # words only (no embedder): nothing else would find the photos, so common words retrieve
        hits = fts.search("white teapot", 50)
        assert {h.photo_id for h in hits} == white | {11} and not hits.partial
        # inside a few allowed photos BM25 is computed for those only: every word retrieves there too
        hits = fts.search("white teapot", 50, {1, 2, 11}, rescore=[])
        assert {h.photo_id for h in hits} == {1, 2, 11} and not hits.partial


def test_rescoring_adds_nothing_when_the_list_is_already_complete(tmp_path: Path) -> None:
    with FullTextIndex(tmp_path / "fts.sqlite3") as fts:  # nothing common at the default rare_df
        white, both = _index(fts)
        hits = fts.search("white teapot", 50, rescore=[3, 12])
        assert {h.photo_id for h in hits} == white | {11} and all(h.retrieved for h in hits)
        assert not hits.partial
        assert hits[0].photo_id == both


def test_common_words_still_count_for_photos_found_by_meaning(tmp_path: Path) -> None:
    photos = [
        (f"car{i}.jpg", _analysis(f"一辆红色的汽车 {i}", f"A red car on the street {i}")) for i in range(8)
    ]
    photos += [
        ("cat.jpg", _analysis("一只猫", "A cat on a sofa")),
        ("tree.jpg", _analysis("一棵树", "A tree")),
    ]
    settings = _library(tmp_path, photos)
    results = {}
    for rare_df in (5_000, 2):
        with Library(settings) as lib:
            lib.search("warm up")  # builds the indexes
            lib._engine().indexes.fts.rare_df = rare_df  # 2: "red" and "car" are common here
            res = lib.search("red car", limit=20)
            results[rare_df] = {Path(h.path or "").name: h for h in res.hits}
            # words left out of retrieval: the list does not claim to hold every match
            assert res.complete == (rare_df > 8), res.notes
    bounded, exact = results[2], results[5_000]
    cars = {f"car{i}.jpg" for i in range(8)}
    assert set(bounded) == set(exact) and cars <= set(bounded)
    for name in cars:  # the words were matched photo by photo, not dropped: same evidence, same strength
        assert not bounded[name].weak and bounded[name].score >= 0.9 * exact[name].score, name


def test_term_matrix_is_fts5s_match_and_sees_another_connections_writes(tmp_path: Path) -> None:
    path = tmp_path / "fts.sqlite3"
    docs = {
        1: "a cat on a sofa",
        2: "two cats playing",
        3: "熊猫在吃竹子",  # 猫 only inside another word: a weak match
        4: "一只猫在睡觉",
        5: "a dog",
    }
    with FullTextIndex(path) as fts, FullTextIndex(path) as other:
        fts.upsert_many((pid, {"desc_en": text}) for pid, text in docs.items())
        ids = np.array([5, 4, 3, 2, 1, 99], dtype=np.int64)
        terms = ["cat", "猫"]
        got = fts.term_matrix(ids, terms)
        strong, weak = fts._term_matrix(ids, terms)
        assert (got.strong == strong).all() and (got.weak == weak).all()
        assert got.strong[:, 0].tolist() == [False, False, False, True, True, False]  # cats -> cat
        assert got.strong[:, 1].tolist() == [False, True, False, False, False, False]
        assert got.weak[:, 1].tolist() == [False, False, True, False, False, False]
        # the match lists are kept; a write by another connection is seen, and so is this one's own
        other.upsert_many([(5, {"desc_en": "a dog and a cat"})])
        assert fts.term_matrix(ids, terms).strong[0, 0]
        fts.delete([1])
        assert not fts.term_matrix(ids, terms).strong[4, 0]
        # word_matches answers the same from the kept lists as from the stored words
        expected = {5: (("cat",), ()), 4: (("猫",), ()), 3: ((), ("猫",)), 2: (("cat",), ())}
        assert fts.word_matches([5, 4, 3, 2], terms) == expected
        with FullTextIndex(path) as fresh:  # nothing kept: the stored words, and the lists read meanwhile
            assert not fresh._matches
            assert fresh.word_matches([5, 4, 3, 2], terms) == expected
            fresh.settle()
            assert fresh._listed(terms) == terms and fresh.word_matches([5, 4, 3, 2], terms) == expected
        with FullTextIndex(path) as fresh, pytest.MonkeyPatch.context() as patch:
            patch.setattr(fulltext, "KEEP_MAX", -1)  # every list too long to keep
            assert fresh.word_matches([5, 4, 3, 2], terms) == expected and not fresh._matches
            truth = fresh._matched_terms([5, 4, 3, 2, 1], ["dog", *terms])  # FTS5's, term by term
            # "dog" (one photo) kept, "cat" and 猫 (two each) read from the stored words
            patch.setattr(fulltext, "KEEP_MAX", 1)
            fresh._forget_matches()  # (what was too common under the old cap)
            assert fresh.word_matches([5, 4, 3, 2, 1], ["dog", *terms]) == truth
            fresh.settle()
            assert fresh.word_matches([5, 4, 3, 2, 1], ["dog", *terms]) == truth
            assert fresh._listed(["dog", *terms]) == ["dog"] and truth[5] == (("dog", "cat"), ())


def test_inside_a_filter_words_are_ranked_from_kept_lists_as_fts5_ranks_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """BM25 of an OR of terms is the sum of each term's: ranked from each term's kept (id, BM25) list, the
    allowed photos come back with FTS5's own scores; a write (this connection's or another's) is seen; a
    term in more than KEEP_MAX photos is left to FTS5."""
    import random

    rng = random.Random(3)
    words = ["sunset", "beach", "dog", "海边", "日落", "car", "red", "mountain", "snow", "熊猫"]
    docs = {pid: " ".join(rng.choices(words, k=rng.randint(1, 6))) for pid in range(1, 400)}
    path = tmp_path / "fts.sqlite3"
    with FullTextIndex(path) as fts, FullTextIndex(path) as other:
        fts.upsert_many((pid, {"desc_en": text, "tags": text.split()[:1]}) for pid, text in docs.items())
        allowed = set(rng.sample(sorted(docs), 120)) | {9999}  # an id the index lacks
        cases = ["sunset beach", "海边 日落", "red car in the snow", "猫", "dog"]

        def ranked(query: str, kept: bool) -> list[tuple[int, float]]:
            exprs = [fulltext._term_expr(t) for t in query_terms(query)]
            if kept:  # the first question reads the lists in the background
                with fts._lock:
                    fts._ranked(query, exprs, allowed, 15)
                fts.settle()
            with fts._lock:
                if not kept:
                    fts._forget_matches()
                    fts._too_common.update(exprs)  # every term left to FTS5
                got = fts._ranked(query, exprs, allowed, 15)
                assert got is not None
                assert kept == all(e in fts._scored for e in exprs)  # ranked from the kept lists, or not
                return sorted(got, key=lambda r: (round(r[1], 9), r[0]))

        for query in cases:
            mine, theirs = ranked(query, kept=True), ranked(query, kept=False)
            assert [p for p, _ in mine] == [p for p, _ in theirs], query
            assert np.allclose([s for _, s in mine], [s for _, s in theirs], rtol=1e-9), query
            assert 0 < len(mine) <= 15 and all(p in allowed for p, _ in mine)
        fts._forget_matches()
        ranked("sunset beach", kept=True)
        assert fts._scored  # kept
        other.upsert_many([(next(iter(allowed - {9999})), {"desc_en": "sunset sunset sunset beach"})])
        assert ranked("sunset beach", kept=True) == ranked("sunset beach", kept=False)
        monkeypatch.setattr(fulltext, "KEEP_MAX", 5)  # every term too common to keep
        fts._forget_matches()
        exprs = [fulltext._term_expr(t) for t in query_terms("sunset beach")]
        for _ in range(2):  # the first reads the lists (too long: not kept), the second knows it
            with fts._lock:
                left = fts._ranked("sunset beach", exprs, allowed, 15) or []
            fts.settle()
            assert not fts._scored and set(exprs) <= fts._too_common
        assert sorted(left, key=lambda r: (round(r[1], 9), r[0])) == ranked("sunset beach", kept=False)

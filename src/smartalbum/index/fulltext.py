"""Full-text search over photo texts: SQLite FTS5 in its own (derived, rebuildable) database file.

FTS5's tokenizers do not segment Chinese, so text is segmented here with jieba (search mode, which also
emits the shorter words inside long ones) and stored as space-joined tokens; FTS5's `unicode61` tokenizer
then only splits on those spaces and punctuation, and `porter` stems English words (Chinese passes through).
Queries go through the same segmentation, every term is quoted (so user input can never be FTS5 syntax) and
terms are OR-combined. A hidden `zh_chars` column holds
single Chinese characters so that 猫 finds 猫咪 and unknown words still match as character phrases; such a
match, found only among the characters of other words (猫 in 熊猫, 海 in 上海), is weak evidence: it counts
WEAK_TERM of a word match.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import logging
import queue
import re
import sqlite3
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from smartalbum.index.photoids import id_array

if TYPE_CHECKING:
    import jieba

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# porter: +3 MRR points for English BM25 on Flickr8k-CN val (bench/quality.py); it leaves Chinese tokens alone
TOKENIZER = "porter unicode61 remove_diacritics 2"

# field name -> bm25 weight; tags, objects, OCR text and places are short and precise, so they weigh more
FIELD_WEIGHTS: dict[str, float] = {
    "desc_zh": 1.0,
    "desc_en": 1.0,
    "tags": 3.0,
    "objects": 2.0,
    "text": 2.0,
    "places": 2.0,
    "files": 1.0,
}
FIELDS: tuple[str, ...] = tuple(FIELD_WEIGHTS)
_CHARS_COLUMN = "zh_chars"
_CHARS_WEIGHT = 0.3
_BM25_WEIGHTS = ", ".join(str(FIELD_WEIGHTS[f]) for f in FIELDS) + f", {_CHARS_WEIGHT}"  # FTS5 column order
WEAK_TERM = 0.25  # what a term found only inside other words (猫 in 熊猫) counts, against 1 for a word
_WORD_COLUMNS = "{" + " ".join(FIELDS) + "}"
_COLUMNS = (*FIELDS, _CHARS_COLUMN)

# words jieba's stock dictionary splits or misses, common in photo descriptions and searches
PHOTO_WORDS: tuple[str, ...] = (
    "日落",
    "日出",
    "晚霞",
    "朝霞",
    "海边",
    "海滩",
    "沙滩",
    "星空",
    "银河",
    "夜景",
    "雪景",
    "彩虹",
    "烟花",
    "樱花",
    "红叶",
    "星巴克",
    "自拍",
    "合影",
    "合照",
    "全家福",
    "截图",
    "截屏",
    "证件照",
    "毕业照",
    "婚纱照",
    "生日蛋糕",
    "二维码",
    "登机牌",
    "火车票",
    "发票",
    "收据",
    "小票",
    "菜单",
    "猫咪",
    "狗狗",
    "宠物",
    "奶茶",
    "火锅",
    "烧烤",
    "露营",
    "徒步",
    "滑雪",
    "潜水",
    "冲浪",
    "航拍",
    "全景",
    "逆光",
    "剪影",
)
# dropped from queries (kept in documents): they match nearly every photo and only add noise
QUERY_STOPWORDS = frozenset(
    (
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "是",
        "在",
        "有",
        "一",
        "一个",
        "一张",
        "一只",
        "这",
        "那",
        "这张",
        "那张",
        "照片",
        "图片",
        "相片",
        "我",
        "我的",
        "的照片",
        "里",
        "中",
        "上",
        "下",
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "and",
        "or",
        "with",
        "for",
        "from",
        "by",
        "is",
        "are",
        "was",
        "were",
        "be",
        "photo",
        "photos",
        "picture",
        "pictures",
        "image",
        "images",
        "pic",
        "pics",
        "my",
        "me",
        "i",
        "show",
        "find",
    )
)
SEGMENTER_VERSION = f"jieba-search-1:{len(PHOTO_WORDS)}:{TOKENIZER}"
MAX_QUERY_TERMS = 32
COORDINATION = 1.0
# In a relevance list (search() with a limit), a term found in more photos than this does not retrieve: FTS5
# ranks every match by BM25 (~2 us each, so a common word of a million photos costs a second) and such a
# word weighs little (low IDF). It still counts for the photos that the other terms, or other retrievers
# (`rescore`), found: it is matched in their stored words. bench/search.py; quality: bench/quality.py.
RARE_DF = 2_000
TERM_CACHE_IDS = 8_000_000  # photo ids kept of terms' whole match lists (64 MB), least recently used out
# A term's whole match list is read once and kept when it has at most KEEP_MAX photos (reading costs ~0.7 us
# a photo, ~2.5 us with BM25): the words of a page of photos are then looked up in it, not matched in their
# stored text (~60 us a photo), and inside a filter a term's matches are ranked from its list with each
# photo's BM25 (BM25 of an OR of terms is the sum of theirs), where FTS5 would read every match in each
# query (~40 ms for a word in 50,000 photos). SCORED_CACHE_IDS of the lists with BM25 are kept (16 bytes
# each).
KEEP_MAX = 250_000
SCORED_CACHE_IDS = 4_000_000
MAX_QUERY_CHARS = 2_000

_tokenizer: jieba.Tokenizer | None = None
_tokenizer_lock = threading.Lock()


def _jieba() -> jieba.Tokenizer:
    """A private jieba tokenizer with the photo words, built once (about a second) on first use."""
    global _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            import jieba as jieba_mod

            # jieba prints "Building prefix dict..." to stderr at INFO level
            jieba_mod.setLogLevel(logging.WARNING)
            tok = jieba_mod.Tokenizer()
            tok.initialize()
            for word in PHOTO_WORDS:
                tok.add_word(word)
            _tokenizer = tok
        return _tokenizer


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF


def _has_word_char(token: str) -> bool:
    # unicode61 keeps letters and numbers; a token of only symbols would be an empty FTS5 phrase
    return any(unicodedata.category(c)[0] in "LN" for c in token)


_FOLDABLE = re.compile("[\u0080-\u1fff]+")  # where diacritics can be: Latin, Greek, Cyrillic and the like


def _strip_marks(m: re.Match[str]) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", m.group()) if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Width-fold, lower-case and strip Latin diacritics, as unicode61 remove_diacritics=2 does."""
    text = unicodedata.normalize("NFKC", text).lower()
    if text.isascii():
        return text
    return _FOLDABLE.sub(_strip_marks, text)  # Chinese text has nothing to strip


def segment(text: str) -> list[str]:
    """Search-mode tokens of `text` (Chinese segmented by jieba, everything folded), in order."""
    if not text:
        return []
    tokens = []
    for word in _jieba().cut_for_search(fold(text)):
        w = word.strip()
        if w and _has_word_char(w):
            tokens.append(w)
    return tokens


def cjk_chars(text: str) -> list[str]:
    return [c for c in unicodedata.normalize("NFKC", text) if _is_cjk(c)]


def query_terms(query: str) -> list[str]:
    """The distinct terms of a user query, in order, stopwords dropped unless nothing else is left."""
    tokens = segment(query[:MAX_QUERY_CHARS])
    seen: dict[str, None] = {}
    for t in tokens:
        seen.setdefault(t, None)
    terms = [t for t in seen if t not in QUERY_STOPWORDS] or list(seen)
    return terms[:MAX_QUERY_TERMS]


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _term_expr(term: str) -> str:
    if len(term) > 1 and all(_is_cjk(c) for c in term):
        # the word itself, or its characters in sequence (finds words jieba cut differently)
        return f"({_quote(term)} OR {_quote(' '.join(term))})"
    return _quote(term)


class TextHits(list["TextHit"]):
    """search()'s hits; `partial`: terms too common to retrieve (or their character phrase) were left out,
    so photos that only they match may be missing (a relevance list is then not every match)."""

    partial = False


class TextHit(NamedTuple):
    photo_id: int
    score: float  # -bm25 times the share of terms matched: higher is better
    matched_terms: tuple[str, ...]  # terms found as words
    weak_terms: tuple[str, ...] = ()  # terms found only among the characters of other words
    retrieved: bool = True  # False: one of search()'s `rescore` photos, matched in its stored words (score 0)

    @property
    def coverage(self) -> float:
        """Terms matched, weak ones discounted (divide by the number of query terms for a share)."""
        return len(self.matched_terms) + WEAK_TERM * len(self.weak_terms)


@dataclass(frozen=True)
class WordEvidence:
    """Every photo that matches a query's terms, best first, in arrays (search_all(): a complete listing has
    tens of thousands, too many for one object each)."""

    terms: tuple[str, ...]
    ids: np.ndarray  # int64 photo ids, best first
    scores: np.ndarray  # -bm25 times the share of terms matched: higher is better
    strong: np.ndarray  # bool (photos x terms): the term found as a word
    weak: np.ndarray  # bool (photos x terms): found only among the characters of other words

    @classmethod
    def nothing(cls, terms: Sequence[str]) -> WordEvidence:
        none = np.zeros((0, len(terms)), dtype=bool)
        return cls(tuple(terms), np.empty(0, dtype=np.int64), np.empty(0), none, none)

    @classmethod
    def of_hits(cls, terms: Sequence[str], hits: Sequence[TextHit]) -> WordEvidence:
        """search()'s hits (a relevance list: a few hundred) as arrays."""
        return cls(
            tuple(terms),
            np.array([h.photo_id for h in hits], dtype=np.int64),
            np.array([h.score for h in hits], dtype=np.float64),
            np.array([[t in h.matched_terms for t in terms] for h in hits], dtype=bool).reshape(
                -1, len(terms)
            ),
            np.array([[t in h.weak_terms for t in terms] for h in hits], dtype=bool).reshape(-1, len(terms)),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def coverage(self) -> np.ndarray:
        """TextHit.coverage of every photo."""
        return self.strong.sum(axis=1) + WEAK_TERM * self.weak.sum(axis=1)

    def matched_rows(self, rows: np.ndarray) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """(terms found as words, terms found only inside other words) of the photos at `rows`: each
        distinct pattern of terms is turned into tuples once (a complete listing has tens of thousands)."""
        return _named(self.terms, self.strong[rows], self.weak[rows])


def _named(
    terms: Sequence[str], strong: np.ndarray, weak: np.ndarray
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each row of the (photos x terms) matrices as (terms found as words, terms found only inside other
    words); each distinct pattern is turned into tuples once."""
    if not len(strong):
        return []
    patterns, which = np.unique(np.concatenate([strong, weak], axis=1), axis=0, return_inverse=True)
    n = len(terms)
    named = [
        (
            tuple(t for t, m in zip(terms, p[:n], strict=True) if m),
            tuple(t for t, m in zip(terms, p[n:], strict=True) if m),
        )
        for p in patterns.tolist()
    ]
    return [named[k] for k in which.reshape(-1).tolist()]


FieldValue = str | Sequence[str] | None


_TOKEN = re.compile(r"[^\W_]+")  # a unicode61 token: letters and numbers (FTS5's default categories)


class _WordMatcher:
    """Which query terms a photo's stored (segmented, folded) words hold, as the terms' FTS5 expressions
    would find them: each term's tokens as a phrase, porter stems compared, and for an all-Chinese term also
    its characters as a phrase of single-character tokens (as words); and, for Chinese terms, the weak match
    among the characters of other words. Candidate words are found by their first letters, then stemmed."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = list(terms)
        self.single: dict[str, str] = {}  # term -> its one stem
        self.exact: list[tuple[str, re.Pattern[str]]] = []  # Chinese character phrases: no stemming
        self.phrases: list[tuple[str, list[str]]] = []  # Latin phrases of several tokens (rare)
        self.chars: dict[str, str] = {}  # all-Chinese term -> its characters, for the weak match
        prefixes: set[str] = set()
        for term in self.terms:
            tokens = _TOKEN.findall(fold(term))
            stems = porter_stems(tokens)
            if len(stems) == 1:
                self.single[term] = stems[0]
                # porter rewrites only a word's ending: a word with stem s starts with s less two letters.
                # The stored text is folded by Python, the stem by SQLite: both forms, and final sigma.
                for form in (stems[0], tokens[0]):
                    p = form[: max(1, len(form) - 2)]
                    prefixes.update((p, p.replace("σ", "ς")))
            elif stems:
                self.phrases.append((term, stems))
            if term and all(_is_cjk(c) for c in term):
                self.chars[term] = term
                if len(term) > 1:
                    sep = r"(?:[^\w\n\0]|_)+"  # between two tokens of a column (columns: \n, photos: NUL)
                    body = sep.join(map(re.escape, term))
                    self.exact.append((term, re.compile(rf"{body}(?![^\W_])")))  # a literal first: fast
        # one pattern a prefix: a pattern that starts with a literal is searched fast (4x a lookbehind's)
        self._starts = [re.compile(re.escape(p) + r"[^\W_]*") for p in prefixes]

    def match_all(self, docs: Sequence[tuple[str, str]]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """Per photo (its word columns joined by newlines, its zh_chars column): (terms found as words, terms
        found only among the characters). All photos are scanned at once: one search a pattern over their
        texts joined by NUL (not a token character), so the cost is in C, not in a loop per photo."""
        words = "\0".join(w for w, _ in docs)
        starts = list(itertools.accumulate((len(w) + 1 for w, _ in docs[:-1]), initial=0))
        found: list[set[str]] = [set() for _ in docs]
        if self._starts:
            by_doc: dict[int, set[str]] = {}
            for rx in self._starts:
                for m in rx.finditer(words):
                    if _starts_token(words, m.start()):
                        by_doc.setdefault(bisect.bisect_right(starts, m.start()) - 1, set()).add(m.group())
            for d, candidates in by_doc.items():
                stems = {_stem(w) for w in candidates}
                found[d].update(t for t, st in self.single.items() if st in stems)
        for term, rx in self.exact:
            hit = rx.search(words)
            while hit:  # not finditer: a match inside a word (热狗 狗) must not hide one that overlaps it
                if _starts_token(words, hit.start()):
                    found[bisect.bisect_right(starts, hit.start()) - 1].add(term)
                hit = rx.search(words, hit.start() + 1)
        if self.phrases:
            for d, (text, _) in enumerate(docs):
                for column in text.split("\n"):
                    col = [_stem(w) for w in _TOKEN.findall(column)]
                    for term, phrase in self.phrases:
                        k = len(phrase)
                        if any(col[i : i + k] == phrase for i in range(len(col) - k + 1)):
                            found[d].add(term)
        weak: list[list[str]] = [[] for _ in docs]
        if self.chars:
            chars = "\0".join(c.replace(" ", "") for _, c in docs)  # single characters, in order
            char_starts = list(
                itertools.accumulate((len(c.replace(" ", "")) + 1 for _, c in docs[:-1]), initial=0)
            )
            for term, c in self.chars.items():
                at = chars.find(c)
                while at >= 0:
                    d = bisect.bisect_right(char_starts, at) - 1
                    if term not in found[d] and term not in weak[d]:
                        weak[d].append(term)
                    at = chars.find(c, at + 1)
        return [
            (tuple(t for t in self.terms if t in f), tuple(t for t in self.chars if t in w))
            for f, w in zip(found, weak, strict=True)
        ]


def weak_matchable(term: str) -> bool:
    """Whether a term can be found only inside other words (a weak match): a Chinese one (猫 in 熊猫)."""
    return any(_is_cjk(c) for c in term)


def _match_exprs(term: str) -> tuple[str, ...]:
    """The FTS5 expressions of a term's matches: as a word (in the word columns), and for a Chinese term
    anywhere (the characters of other words too)."""
    expr = _term_expr(term)
    word = f"{_WORD_COLUMNS} : ({expr})"
    return (word, expr) if weak_matchable(term) else (word,)


def _best_inside(
    scored: Sequence[tuple[np.ndarray, np.ndarray]], allowed: AbstractSet[int], limit: int | None
) -> list[tuple[int, float]]:
    """(photo id, BM25 of an OR of terms) for the allowed photos matching any: each term's kept (ids, BM25),
    summed per photo (FTS5's BM25 of an OR is the sum of its phrases'); the best `limit` (lowest) or all."""
    wanted = np.unique(id_array(allowed))
    ids = np.concatenate([i[_among(i, wanted)] for i, _ in scored] or [np.empty(0, dtype=np.int64)])
    bm25 = np.concatenate([b[_among(i, wanted)] for i, b in scored] or [np.empty(0)])
    photos, at = np.unique(ids, return_inverse=True)
    total = np.bincount(at, weights=bm25, minlength=len(photos))
    if limit is not None and len(photos) > limit:
        best = np.argsort(total, kind="stable")[:limit]
        photos, total = photos[best], total[best]
    return list(zip(photos.tolist(), total.tolist(), strict=True))


def _among(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Which of `ids` are in `sorted_ids` (sorted, unique)."""
    if not len(sorted_ids) or not len(ids):
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.asarray(sorted_ids[at] == ids)


def _starts_token(text: str, i: int) -> bool:
    return i == 0 or not text[i - 1].isalnum()  # unicode61: letters and numbers make tokens


def _stem(token: str) -> str:
    """The term FTS5 indexes for one stored (folded) token. Every porter rule rewrites a Latin ending, so an
    ASCII token that does not end in a letter, or is shorter than three, passes as it is; any other token
    is asked of SQLite (cached), whose folding can differ from Python's (final sigma)."""
    if token.isascii() and (len(token) < 3 or not "a" <= token[-1] <= "z"):
        return token
    stem = _stem_cache.get(token)
    return stem if stem is not None else porter_stems([token])[0]


def _merge_matches(
    terms: Sequence[str],
    a: dict[int, tuple[tuple[str, ...], tuple[str, ...]]],
    b: dict[int, tuple[tuple[str, ...], tuple[str, ...]]],
) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Two sets of per-photo matches (of different terms) as one, in the query's term order."""
    out = {}
    nothing: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    for pid in a.keys() | b.keys():
        (s1, w1), (s2, w2) = a.get(pid, nothing), b.get(pid, nothing)
        strong, weak = {*s1, *s2}, {*w1, *w2}
        out[pid] = (tuple(t for t in terms if t in strong), tuple(t for t in terms if t in weak))
    return out


def _field_text(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "\n".join(str(v) for v in value if v)


class FullTextIndex:
    """An FTS5 index of photo texts in its own SQLite file; fill it from the catalog when `needs_rebuild`."""

    def __init__(self, path: str | Path, *, rare_df: int = RARE_DF) -> None:
        self.path = Path(path)
        self.rare_df = rare_df
        self._lock = threading.RLock()
        # True when the file was (re)created empty: new, from an older format, or unreadable
        self.needs_rebuild = False
        self._conn = self._open()
        # an FTS5 expression -> every photo it matches (sorted), while the index is unchanged: `_data_version`
        # (PRAGMA data_version) says when another connection wrote it; this one's writes clear it
        self._matches: OrderedDict[str, np.ndarray] = OrderedDict()
        # the same for one term's expression with each photo's BM25 (by id); expressions in more than
        # KEEP_MAX photos, whose lists are not kept
        self._scored: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._too_common: set[str] = set()
        # lists being read in the background (kind, expression), by one thread on its own connection;
        # `_generation` moves when the kept lists are forgotten, so a read from before is not kept
        self._reading: set[tuple[str, str]] = set()
        self._to_read: queue.Queue[tuple[str, str, int] | None] | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self._generation = 0
        self._closed = False
        self._data_version: int | None = None

    # ---- setup -------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32000")
        return conn

    def _open(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            meta = self._read_meta(conn)
            if (
                meta.get("format_version") == str(FORMAT_VERSION)
                and meta.get("segmenter") == SEGMENTER_VERSION
            ):
                conn.execute("SELECT count(*) FROM docs").fetchone()
                return conn
            log.info("full-text index %s is new or from another version; recreating it", self.path)
        except sqlite3.DatabaseError as exc:
            log.warning("full-text index %s is unreadable (%s); recreating it", self.path, exc)
        if conn is not None:
            conn.close()
        self._remove_files()
        conn = self._connect()
        self._create(conn)
        self.needs_rebuild = True
        return conn

    @staticmethod
    def _read_meta(conn: sqlite3.Connection) -> dict[str, str]:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not exists:
            return {}
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}

    def _remove_files(self) -> None:
        if str(self.path) == ":memory:":
            return
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        cols = ", ".join(_COLUMNS)
        conn.executescript(
            f"""
            BEGIN;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE docs (photo_id INTEGER PRIMARY KEY, fields TEXT NOT NULL);
            CREATE VIRTUAL TABLE fts USING fts5({cols}, tokenize = '{TOKENIZER}');
            INSERT INTO meta VALUES ('format_version', '{FORMAT_VERSION}');
            INSERT INTO meta VALUES ('segmenter', '{SEGMENTER_VERSION}');
            COMMIT;
            """
        )

    def close(self) -> None:
        self._closed = True  # the lists still queued are not read
        if self._to_read is not None:
            self._to_read.put(None)  # the reader stops after the read under way, and closes its connection
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FullTextIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- bookkeeping -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM docs").fetchone()[0])

    @property
    def state_token(self) -> str | None:
        """The catalog state this index was last synced to (set by the caller), or None."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='state_token'").fetchone()
            return None if row is None else str(row[0])

    @state_token.setter
    def state_token(self, token: str | None) -> None:
        with self._lock:
            if token is None:
                self._conn.execute("DELETE FROM meta WHERE key='state_token'")
            else:
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('state_token', ?)", (token,))

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM docs")
            self._conn.execute("DELETE FROM fts")
            self._conn.execute("DELETE FROM meta WHERE key='state_token'")
            self._conn.execute("COMMIT")
            self._forget_matches()

    # ---- writes ------------------------------------------------------------------------------------------

    def upsert(self, photo_id: int, fields: Mapping[str, FieldValue]) -> None:
        """Index (or re-index) one photo; `fields` maps names in FIELDS to text or lists of strings."""
        self.upsert_many([(photo_id, fields)])

    def upsert_many(self, rows: Iterable[tuple[int, Mapping[str, FieldValue]]]) -> int:
        """Index many photos in one transaction; returns how many."""
        prepared = []
        for photo_id, fields in rows:
            unknown = set(fields) - set(FIELDS)
            if unknown:
                raise ValueError(f"unknown full-text fields {sorted(unknown)}; expected some of {FIELDS}")
            raw = {k: _field_text(fields.get(k)) for k in FIELDS}
            segmented = [" ".join(segment(raw[k])) for k in FIELDS]
            chars = " ".join(cjk_chars(" ".join(raw.values())))
            prepared.append((int(photo_id), json.dumps(raw, ensure_ascii=False), segmented, chars))
        if not prepared:
            return 0
        placeholders = ", ".join("?" * (len(_COLUMNS) + 1))
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                for photo_id, raw_json, segmented, chars in prepared:
                    conn.execute("DELETE FROM fts WHERE rowid = ?", (photo_id,))
                    conn.execute(
                        f"INSERT INTO fts (rowid, {', '.join(_COLUMNS)}) VALUES ({placeholders})",
                        (photo_id, *segmented, chars),
                    )
                    conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?)", (photo_id, raw_json))
                conn.execute("COMMIT")
                self._forget_matches()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(prepared)

    def delete(self, ids: Iterable[int]) -> int:
        """Remove photos from the index; returns how many were there."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        payload = json.dumps(id_list)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                n = conn.execute(
                    "DELETE FROM docs WHERE photo_id IN (SELECT value FROM json_each(?))", (payload,)
                ).rowcount
                conn.execute("DELETE FROM fts WHERE rowid IN (SELECT value FROM json_each(?))", (payload,))
                conn.execute("COMMIT")
                self._forget_matches()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(n)

    # ---- search ------------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        limit: int | None = 50,
        allowed_ids: AbstractSet[int] | None = None,
        *,
        rescore: Sequence[int] | Callable[[], Sequence[int]] | None = None,
    ) -> TextHits:
        """Photos matching any query term: more distinct matched terms first, then by BM25; limit None: all.

        Scores are -bm25 (higher is better; not comparable across queries). Any input is safe: terms are
        quoted, so FTS5 operators in the query are searched as words.

        `rescore`: photos found by another retriever (the meaning). Given with a limit, the words' work is
        bounded: terms in more than `rare_df` photos (RARE_DF) do not retrieve, they are matched in the stored
        words of what was found, and `partial` says so; the `rescore` photos that the list left out but that
        match a term are added after it, with score 0 and retrieved=False. Without another retriever, or
        inside a few allowed photos (BM25 is then computed for those only), every term retrieves. A callable
        `rescore` is asked only when its photos are needed: the other retriever can run meanwhile.
        """
        if limit is None:
            ev = self.search_all(query, allowed_ids)
            named = ev.matched_rows(np.arange(len(ev)))
            return TextHits(
                TextHit(pid, score, *m)
                for pid, score, m in zip(ev.ids.tolist(), ev.scores.tolist(), named, strict=True)
            )
        terms = query_terms(query)
        if not terms or limit <= 0 or (allowed_ids is not None and not allowed_ids):
            return TextHits()
        bounded = rescore is not None and (allowed_ids is None or len(allowed_ids) > self.rare_df)
        with self._lock:
            # each term's FTS5 expression; bounded, within bounded work (None: it retrieves nothing)
            exprs = self._bounded_exprs(terms) if bounded else {t: _term_expr(t) for t in terms}
            exact = [t for t in terms if exprs[t] == _term_expr(t)]  # matched through the index
            others = [t for t in terms if t not in exact]  # matched in the stored words of what was found
            # a pool larger than `limit`, re-ordered by how many terms each photo matched (when some terms are
            # matched photo by photo, the pool is the limit)
            pool = limit if others else max(limit * 4, 100)
            retrieving = [e for e in exprs.values() if e]
            rows: list[tuple[int, float]] = []
            if retrieving:
                if bounded and allowed_ids is not None:
                    # only rare terms retrieve: every match of theirs (a few thousand at most) is filtered
                    # here, not a filter of a hundred thousand photos handed to SQLite
                    found = self._ranked(query, retrieving, None, None)
                    if found is not None:
                        found = sorted((r for r in found if r[0] in allowed_ids), key=lambda r: r[1])[:pool]
                else:
                    found = self._ranked(query, retrieving, allowed_ids, pool)
                if found is None:
                    return TextHits()
                rows = found
            ids = [r[0] for r in rows]
            matched = self._matched_terms(ids, exact)
            if others:
                matched = _merge_matches(terms, matched, self.word_matches(ids, others))
            hits = []
            n, nothing = len(terms), ((), ())
            for pid, rank in rows:
                strong, weak = matched.get(pid, nothing)
                share = (len(strong) + WEAK_TERM * len(weak)) / n  # TextHit.coverage / n
                hits.append(TextHit(pid, -float(rank) * share**COORDINATION, strong, weak))
            hits.sort(key=lambda h: -h.score)
            hits = hits[:limit]
            extra: list[int] = []
            if rescore is not None and (others or len(rows) > limit):
                rescore = rescore() if callable(rescore) else rescore
                # the list left matches out: the other retriever's photos among them get their words
                kept = {h.photo_id for h in hits}
                extra = [
                    int(p)
                    for p in dict.fromkeys(rescore or ())
                    if p not in kept and (allowed_ids is None or p in allowed_ids)
                ]
                if others or len(rows) >= pool:  # beyond the pool: read the words
                    unread = [p for p in extra if p not in matched]
                    matched.update(self.word_matches(unread, terms))
        more = [TextHit(pid, 0.0, *matched[pid], retrieved=False) for pid in extra if pid in matched]
        more.sort(key=lambda h: -h.coverage)  # stable: the caller's order among equals
        out = TextHits(hits + more)
        out.partial = bool(others)
        return out

    def search_all(self, query: str, allowed_ids: AbstractSet[int] | None = None) -> WordEvidence:
        """Every photo matching any query term (optionally among `allowed_ids`), as search() with no limit
        orders them, in arrays."""
        terms = query_terms(query)
        if not terms or (allowed_ids is not None and not allowed_ids):
            return WordEvidence.nothing(terms)
        with self._lock:
            rows = self._ranked(query, [_term_expr(t) for t in terms], allowed_ids, None)
            if rows is None:
                return WordEvidence.nothing(terms)
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            # every match: each term's own matches need no restriction to these (they are among them)
            strong, weak = self._term_matrix(ids, terms, within=allowed_ids is not None)
        rank = np.array([r[1] for r in rows], dtype=np.float64)
        share = (strong.sum(axis=1) + WEAK_TERM * weak.sum(axis=1)) / len(terms)
        scores = -rank * share**COORDINATION
        order = np.argsort(-scores, kind="stable")
        return WordEvidence(tuple(terms), ids[order], scores[order], strong[order], weak[order])

    def _ranked(
        self, query: str, exprs: Sequence[str], allowed_ids: AbstractSet[int] | None, limit: int | None
    ) -> list[tuple[int, float]] | None:
        """(rowid, bm25) of the photos matching any of `exprs` (among `allowed_ids`), the best `limit` or all,
        unordered then; None when FTS5 refused the query. Called with the lock held."""
        if allowed_ids is not None:
            self._check_version()
            scored = [self._scored.get(e) for e in exprs]
            if all(s is not None for s in scored):
                for e in exprs:
                    self._scored.move_to_end(e)
                return _best_inside([s for s in scored if s is not None], allowed_ids, limit)
            for e, s in zip(exprs, scored, strict=True):
                if s is None:
                    self._read_later("bm25", e)
        sql = f"SELECT rowid, bm25(fts, {_BM25_WEIGHTS}) AS rank FROM fts WHERE fts MATCH ?"
        params: list[object] = [" OR ".join(exprs)]
        if allowed_ids is not None:
            # '+rowid' keeps the id list out of the FTS lookup: without it FTS5 re-runs MATCH per id
            sql += " AND +rowid IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([int(i) for i in allowed_ids]))
        if limit is not None:
            sql += " ORDER BY rank LIMIT ?"
            params.append(limit)
        try:
            return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.OperationalError as exc:
            # quoting makes this unreachable for user text; never let a query crash the search
            log.warning("full-text query failed for %r: %s", query[:100], exc)
            return None

    def _read_later(self, kind: str, expr: str) -> None:
        """Read an expression's whole match list in the background ("ids", or "bm25": with each photo's BM25
        for it) and keep it, for the next question that asks; this one does without (a list of 250,000
        photos takes 0.2-0.6 s to read). An in-memory index is read now. The lock is held."""
        if (kind, expr) in self._reading or expr in self._too_common:
            return
        if str(self.path) == ":memory:":
            with contextlib.suppress(sqlite3.Error):  # the question's own query says why
                self._keep_list(kind, expr, self._read_list(self._conn, kind, expr), self._generation)
            return
        self._reading.add((kind, expr))
        if self._to_read is None:  # a daemon thread: a process that exits does not wait for its reads
            self._to_read = queue.Queue()
            threading.Thread(target=self._reader, name="fts-lists", daemon=True).start()
        self._to_read.put((kind, expr, self._generation))

    def _reader(self) -> None:
        assert self._to_read is not None
        while (item := self._to_read.get()) is not None:
            try:
                self._read_in_background(*item)
            finally:
                self._to_read.task_done()
        if self._reader_conn is not None:
            self._reader_conn.close()

    def _read_in_background(self, kind: str, expr: str, generation: int) -> None:
        rows: list[Any] | None = None
        if self._closed:
            return
        try:
            if self._reader_conn is None:  # only this thread uses it
                uri = f"file:{self.path}?mode=ro"
                self._reader_conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            rows = self._read_list(self._reader_conn, kind, expr)
        except sqlite3.Error as exc:
            log.warning("reading the match list of %r failed: %s", expr[:100], exc)
        with self._lock:
            self._reading.discard((kind, expr))
            if rows is not None:
                self._keep_list(kind, expr, rows, generation)

    @staticmethod
    def _read_list(conn: sqlite3.Connection, kind: str, expr: str) -> list[Any]:
        """Up to KEEP_MAX + 1 photos matching `expr`: (rowid,) or (rowid, BM25) rows."""
        what = "rowid" if kind == "ids" else f"rowid, bm25(fts, {_BM25_WEIGHTS})"
        return conn.execute(
            f"SELECT {what} FROM fts WHERE fts MATCH ? LIMIT ?", (expr, KEEP_MAX + 1)
        ).fetchall()

    def _keep_list(self, kind: str, expr: str, rows: list[Any], generation: int) -> None:
        """Keep a list read by `_read_list` unless the index changed since (the lock is held)."""
        if generation != self._generation:
            return
        if len(rows) > KEEP_MAX:
            self._too_common.add(expr)
        elif kind == "ids":
            self._keep_ids(expr, np.sort(np.array([r[0] for r in rows], dtype=np.int64)))
        else:
            table = np.array(rows, dtype=np.float64).reshape(-1, 2)
            order = np.argsort(table[:, 0], kind="stable")
            self._scored[expr] = (table[order, 0].astype(np.int64), table[order, 1])
            kept = sum(len(ids) for ids, _ in self._scored.values())
            while kept > SCORED_CACHE_IDS and len(self._scored) > 1:
                kept -= len(self._scored.popitem(last=False)[1][0])

    def _bounded_exprs(self, terms: Sequence[str]) -> dict[str, str | None]:
        """Per term, what retrieves it while reading at most `rare_df` photos' entries: its whole expression;
        for a Chinese word whose characters are all common, the word alone (a phrase of common characters
        reads them all, even when nothing matches); nothing for a term in more than `rare_df` photos."""
        sql = "SELECT count(*) FROM (SELECT 1 FROM fts WHERE fts MATCH ? LIMIT ?)"

        def common(expr: str) -> bool:
            return int(self._conn.execute(sql, (expr, self.rare_df + 1)).fetchone()[0]) > self.rare_df

        out: dict[str, str | None] = {}
        for term in terms:
            word = _quote(term)
            if common(word):
                out[term] = None
            elif _term_expr(term) != word and all(common(_quote(c)) for c in set(term)):
                out[term] = word
            else:
                out[term] = _term_expr(term)
        return out

    def term_matrix(self, ids: np.ndarray, terms: Sequence[str]) -> WordEvidence:
        """Which of `terms` each photo of `ids` (any order) matches, as `_term_matrix` (exactly FTS5's notion
        of a match), from each term's whole list of matches, read once and kept while the index is unchanged:
        a listing by date asks block after block of photos about the same words."""
        strong = np.zeros((len(ids), len(terms)), dtype=bool)
        weak = np.zeros((len(ids), len(terms)), dtype=bool)
        with self._lock:
            self._check_version()
            for j, term in enumerate(terms):
                exprs = _match_exprs(term)
                strong[:, j] = _among(ids, self._matching(exprs[0]))
                if len(exprs) > 1:
                    weak[:, j] = _among(ids, self._matching(exprs[1])) & ~strong[:, j]
        return WordEvidence(tuple(terms), ids, np.zeros(len(ids)), strong, weak)

    def matching(self, term: str) -> np.ndarray:
        """Every photo that has a query term as a word, sorted; kept as `term_matrix` keeps it."""
        with self._lock:
            self._check_version()
            return self._matching(_match_exprs(term)[0])

    def _check_version(self) -> None:
        """Forget the kept match lists when another connection has written the index since."""
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._forget_matches()
            self._data_version = version

    def _forget_matches(self) -> None:
        """The index changed: the kept match lists are out of date (and those being read)."""
        self._matches.clear()
        self._scored.clear()
        self._too_common.clear()
        self._reading.clear()
        self._generation += 1

    def settle(self) -> None:
        """Wait for the match lists being read in the background (tests, benchmarks)."""
        if self._to_read is not None:
            self._to_read.join()

    def _matching(self, expr: str) -> np.ndarray:
        """Every photo matching an FTS5 expression, sorted; kept (TERM_CACHE_IDS). The lock is held."""
        found = self._matches.get(expr)
        if found is not None:
            self._matches.move_to_end(expr)
            return found
        rows = self._conn.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (expr,))
        return self._keep_ids(expr, np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64)))

    def _keep_ids(self, expr: str, found: np.ndarray) -> np.ndarray:
        self._matches[expr] = found
        kept = sum(len(m) for m in self._matches.values())
        while kept > TERM_CACHE_IDS and len(self._matches) > 1:
            kept -= len(self._matches.popitem(last=False)[1])
        return found

    def word_matches(
        self, ids: Sequence[int], terms: Sequence[str]
    ) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        """`_matched_terms` for a few photos: looked up in the terms' kept match lists (`term_matrix`), and
        for a term too common to keep one, read from the photos' stored words (the cost depends on the
        photos, not on how common the term is; the same tokens, folding and stems as FTS5's unicode61 +
        porter, checked against it in tests)."""
        if not ids or not terms:
            return {}
        listed = self._listed(terms)
        found = self._from_lists(ids, listed) if listed else {}
        rest = [t for t in terms if t not in listed]
        if not rest:
            return found
        read = self._stored_matches(ids, rest)
        return _merge_matches(terms, found, read) if listed else read

    def _stored_matches(
        self, ids: Sequence[int], terms: Sequence[str]
    ) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        """word_matches from the photos' stored words."""
        matcher = _WordMatcher(terms)
        cols = ", ".join(f"c{i}" for i in range(len(_COLUMNS)))
        with self._lock:
            # FTS5's own content table (c0, c1, ... in column order): read by id, half the time of `fts`
            rows = self._conn.execute(
                f"SELECT id, {cols} FROM fts_content WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([int(i) for i in ids]),),
            ).fetchall()
        docs = [("\n".join(t or "" for t in texts[: len(FIELDS)]), texts[-1] or "") for _, *texts in rows]
        return {
            int(row[0]): (strong, weak)
            for row, (strong, weak) in zip(rows, matcher.match_all(docs), strict=True)
            if strong or weak
        }

    def _kept_matches(
        self, ids: Sequence[int], terms: Sequence[str]
    ) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]] | None:
        """`_matched_terms` looked up in the terms' kept match lists (`term_matrix`), read now if need be;
        None when a term is in more than KEEP_MAX photos (its list is not kept)."""
        return self._from_lists(ids, terms) if len(self._listed(terms)) == len(terms) else None

    def _listed(self, terms: Sequence[str]) -> list[str]:
        """The terms whose match lists are kept; the others' are read in the background."""
        with self._lock:
            self._check_version()
            listed = []
            for term in terms:
                missing = [e for e in _match_exprs(term) if e not in self._matches]
                for expr in missing:
                    self._read_later("ids", expr)
                if not missing:
                    listed.append(term)
            return listed

    def _from_lists(
        self, ids: Sequence[int], terms: Sequence[str]
    ) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Per photo of `ids` that matches one of `terms` (their lists kept): the terms, named."""
        arr = np.array(ids, dtype=np.int64)
        found = self.term_matrix(arr, terms)
        hit = np.flatnonzero(found.strong.any(axis=1) | found.weak.any(axis=1))
        return dict(zip(arr[hit].tolist(), found.matched_rows(hit), strict=True))

    def _matched_terms(
        self, ids: list[int], terms: list[str]
    ) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Per photo of `ids` that matches a term: (terms found as words, terms found only among the
        characters of other words); from the kept match lists when every term's is kept."""
        kept = self._kept_matches(ids, terms) if ids and terms else None
        if kept is not None:
            return kept
        strong, weak = self._term_matrix(np.array(ids, dtype=np.int64), terms)
        rows = np.flatnonzero(strong.any(axis=1) | weak.any(axis=1))
        return dict(
            zip([ids[row] for row in rows.tolist()], _named(terms, strong[rows], weak[rows]), strict=True)
        )

    def _term_matrix(
        self, ids: np.ndarray, terms: Sequence[str], *, within: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(strong, weak) bool matrices (ids x terms): the term found as a word; found only among the
        characters of other words. One MATCH per term over `ids`, first in the word columns, then anywhere:
        exactly FTS5's notion of a match (stemming, character phrases). within=False: `ids` holds every
        match of the terms, so each term's matches are read whole (no id list to look up in; about twice as
        fast)."""
        strong = np.zeros((len(ids), len(terms)), dtype=bool)
        weak = np.zeros((len(ids), len(terms)), dtype=bool)
        if not len(ids):
            return strong, weak
        pool: tuple[str, ...] = (json.dumps(ids.tolist()),) if within else ()
        sql = "SELECT rowid FROM fts WHERE fts MATCH ?"
        if within:
            sql += " AND +rowid IN (SELECT value FROM json_each(?))"

        def matching(expr: str) -> np.ndarray:
            found = [r[0] for r in self._conn.execute(sql, (expr, *pool))]
            return np.isin(ids, np.array(found, dtype=np.int64))

        for j, term in enumerate(terms):
            exprs = _match_exprs(term)
            strong[:, j] = matching(exprs[0])
            if len(exprs) > 1:
                weak[:, j] = matching(exprs[1]) & ~strong[:, j]
        return strong, weak

    def highlight(
        self, photo_id: int, query: str, *, start: str = "[", end: str = "]", width: int = 60
    ) -> dict[str, str]:
        """Snippets of the photo's original texts with the query's terms marked, for fields that match.

        The text is not escaped: a web page must escape it (and should use markers it can find again).
        """
        return self.highlights([photo_id], query, start=start, end=end, width=width).get(int(photo_id), {})

    def highlights(
        self, photo_ids: Sequence[int], query: str, *, start: str = "[", end: str = "]", width: int = 60
    ) -> dict[int, dict[str, str]]:
        """`highlight` for a page of photos at once: the query is read once, the texts in one lookup, and
        only words that can stem to a query term are stemmed (a search page marks 30 descriptions)."""
        terms = query_terms(query)
        if not terms or not photo_ids:
            return {}
        with self._lock:
            rows = self._conn.execute(
                "SELECT photo_id, fields FROM docs WHERE photo_id IN (SELECT value FROM json_each(?))",
                (json.dumps([int(i) for i in photo_ids]),),
            ).fetchall()
        cjk_terms = [t for t in terms if any(_is_cjk(c) for c in t)]
        stems = set(porter_stems([t for t in terms if t not in cjk_terms]))
        # the porter stemmer rewrites only a word's last letters, so a word whose stem is a query stem
        # starts with that stem less its last two letters: other words need no stemming
        # (a prefix with a separator, as of "1.25", is no word's: SQLite splits such a term)
        prefixes = {p for st in stems if _WORD.fullmatch(p := st[: max(1, len(st) - 2)])}
        # a prefix and the rest of its word (each alternative reads a whole word, so one scan finds what a
        # scan per prefix finds); a match is a word where it starts one
        rest = _WORD.pattern[:-1] + "*"
        starts = re.compile("|".join(re.escape(p) + rest for p in prefixes)) if prefixes else None
        longest_first = sorted(cjk_terms, key=len, reverse=True)
        cjk_pattern = re.compile("|".join(map(re.escape, longest_first))) if cjk_terms else None
        # each field's spans of Chinese terms, and its words that may stem to a query stem (stemmed at once)
        found: list[tuple[int, str, str, list[tuple[int, int]], list[re.Match[str]]]] = []
        for photo_id, fields in rows:
            for name, text in json.loads(fields).items():
                if not text:
                    continue
                folded = fold(text)
                # offsets in the folded text only map back when folding kept the length
                haystack = folded if len(folded) == len(text) else text.lower()
                spans = [(m.start(), m.end()) for m in cjk_pattern.finditer(haystack)] if cjk_pattern else []
                words = [
                    m
                    for m in (starts.finditer(haystack) if starts else ())
                    if (m.start() == 0 or not _WORD.match(haystack, m.start() - 1))
                    and (m.group().isascii() or not any(_is_cjk(c) for c in m.group()))
                ]
                if spans or words:
                    found.append((int(photo_id), name, text, spans, words))
        every = list(dict.fromkeys(m.group() for *_, words in found for m in words))
        stemmed = dict(zip(every, porter_stems(every), strict=True))
        out: dict[int, dict[str, str]] = {}
        for photo_id, name, text, spans, words in found:
            spans += [m.span() for m in words if stemmed[m.group()] in stems]
            if spans:
                out.setdefault(photo_id, {})[name] = _snippet(text, spans, start, end, width)
        return out


_WORD = re.compile(r"[^\W_\u3400-\u9fff\uf900-\ufaff]+")  # a Latin word ends where Chinese begins
_stem_conn: sqlite3.Connection | None = None
_stem_lock = threading.Lock()


_stem_cache: dict[str, str] = {}
_STEM_CACHE_MAX = 200_000


def porter_stems(words: Sequence[str]) -> list[str]:
    """The stems FTS5's porter tokenizer gives each word (asked of SQLite itself, so they always agree).

    Stems are cached per word: highlighting asks for the same description words on every search."""
    folded = [fold(w) for w in words]
    out = [_stem_cache.get(w) for w in folded]
    missing = list(dict.fromkeys(w for w, st in zip(folded, out, strict=True) if st is None))
    fresh = dict(zip(missing, _porter_stems_sqlite(missing), strict=True))
    if fresh:
        if len(_stem_cache) > _STEM_CACHE_MAX:
            _stem_cache.clear()
        _stem_cache.update(fresh)
    # from `out` and `fresh`, not the shared cache: another thread may clear it meanwhile
    return [st if st is not None else fresh[w] for w, st in zip(folded, out, strict=True)]


def _porter_stems_sqlite(words: Sequence[str]) -> list[str]:
    global _stem_conn
    if not words:
        return []
    with _stem_lock:
        if _stem_conn is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            conn.execute(f"CREATE VIRTUAL TABLE s USING fts5(t, tokenize = '{TOKENIZER}')")
            conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(s, 'instance')")
            _stem_conn = conn
        _stem_conn.execute("DELETE FROM s")
        _stem_conn.execute("INSERT INTO s (rowid, t) VALUES (1, ?)", ("\n".join(fold(w) for w in words),))
        rows = _stem_conn.execute('SELECT "offset", term FROM v ORDER BY "offset"').fetchall()
    if len(rows) == len(words):
        return [str(term) for _, term in rows]
    if len(words) == 1:  # SQLite splits it ("1.250") or drops it: no one stem
        return [fold(words[0])]
    return [_porter_stems_sqlite([w])[0] for w in words]  # find the word that split; the others stem


def _snippet(text: str, spans: list[tuple[int, int]], start: str, end: str, width: int) -> str:
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    lo, hi = 0, len(text)
    if len(text) > 2 * width:
        lo = max(0, merged[0][0] - width // 2)
        hi = min(len(text), lo + 2 * width)
    parts = ["…" if lo > 0 else ""]
    pos = lo
    for s, e in merged:
        if s >= hi:
            break
        if e <= lo:
            continue
        s, e = max(s, lo), min(e, hi)
        parts += [text[pos:s], start, text[s:e], end]
        pos = e
    parts += [text[pos:hi], "…" if hi < len(text) else ""]
    return "".join(parts)

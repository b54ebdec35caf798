"""Tolerant parsing of VLM output into a `PhotoAnalysis`.

Models wrap JSON in code fences and prose, leave trailing commas, write Python literals or Chinese
punctuation, and get cut off by the token limit. Everything usable is kept; what cannot be parsed is kept
as the raw description and marked 'unparsed'. An answer with nothing searchable is never a success.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from smartalbum.vision.base import AnalysisInput, AnalysisResult
from smartalbum.vision.schema import (
    LABELS_ZH,
    MAX_CAPTION_CHARS,
    PhotoAnalysis,
    clean_text,
    has_cjk,
    normalise_analysis_keys,
    validate_analysis,
)

log = logging.getLogger(__name__)

MAX_RAW_CHARS = 64_000  # more than any sane answer; a runaway model can emit megabytes
_MAX_DEPTH = 24
_MAX_STARTS = 16  # candidate '{' / '[' positions tried per text
_MAX_UNWRAP = 3

EMPTY_OUTPUT = "empty output"
REASONING_ONLY = "only reasoning, no answer"

_DECODER = json.JSONDecoder(strict=False)  # raw newlines inside strings are common and harmless
_STARTS = re.compile(r"[{\[｛［]")
_ENTITY = re.compile(r"&(?:quot|apos|amp|lt|gt|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^\s*```[\w-]*\s*$", re.MULTILINE)
_WORDISH = re.compile(r"[0-9A-Za-z\u3400-\u9fff]")


@dataclass
class ParsedAnalysis:
    """status: 'ok' (valid JSON matching the schema), 'partial' (repaired or coerced, still useful),
    'unparsed' (nothing usable; the raw text is kept as the caption)."""

    status: str
    data: dict[str, Any]
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ lenient JSON reader


class _Partial(str):
    """A string cut off by the end of the output."""

    __slots__ = ()


class _TooDeep(Exception):
    pass


_MISSING: Any = object()
_OPEN_OBJECT = "{｛"
_OPEN_ARRAY = "[［"
_CLOSE_OBJECT = "}｝"
_CLOSE_ARRAY = "]］"
_COMMAS = ",，"
_COLONS = ":：="
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "『": "』"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
_LITERALS: dict[str, Any] = {
    "true": True, "false": False, "null": None, "none": None, "nan": None, "undefined": None,
    "infinity": None, "-infinity": None,
}  # fmt: skip
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_AFTER_CLOSING_QUOTE = ",:}]，：｝］\n\r"
_KEY_END = re.compile(r"[:：=,，}｝{\[\n]")
_BARE_END = re.compile(r"[,，}｝\]］\n]")
_CLOSERS = _CLOSE_OBJECT + _CLOSE_ARRAY
_AFTER_KEY_NO_VALUE = _CLOSE_OBJECT + _COMMAS


class _LenientReader:
    """Reads JSON-like text: single or curly quotes, unquoted keys and values, Python literals, comments,
    trailing or Chinese commas; at the end of input it closes whatever is open and keeps what is complete."""

    def __init__(self, text: str, start: int) -> None:
        self.s = text
        self.n = len(text)
        self.i = start
        self.truncated = False
        self.repairs: set[str] = set()

    def read(self) -> Any:
        return self._value(0)

    def _skip(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c.isspace() or c in "\ufeff\u200b":
                self.i += 1
            elif s.startswith("//", self.i) or c == "#":
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end + 1
                self.repairs.add("comments")
            elif s.startswith("/*", self.i):
                end = s.find("*/", self.i + 2)
                self.i = n if end < 0 else end + 2
                self.repairs.add("comments")
            else:
                return

    def _value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _TooDeep
        self._skip()
        if self.i >= self.n:
            self.truncated = True
            return _MISSING
        c = self.s[self.i]
        if c in _OPEN_OBJECT:
            return self._object(depth)
        if c in _OPEN_ARRAY:
            return self._array(depth)
        if c in _QUOTES:
            return self._string(c)
        return self._bare()

    def _object(self, depth: int) -> dict[str, Any]:
        if self.s[self.i] != "{":
            self.repairs.add("full-width brackets")
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self._skip()
            if self.i >= self.n:
                self.truncated = True
                return out
            c = self.s[self.i]
            if c in _CLOSE_OBJECT:
                self.i += 1
                return out
            if c in _COMMAS:
                self._comma()
                continue
            if c in _CLOSE_ARRAY:
                self.repairs.add("mismatched brackets")
                self.i += 1
                return out
            start = self.i
            key = self._key()
            if key is _MISSING:
                if self.i >= self.n:
                    self.truncated = True
                    return out
                if self.i == start:
                    self.i += 1  # a stray character: skip it so the loop always advances
                continue
            self._skip()
            if self.i >= self.n:
                self.truncated = True
                return out
            if self.s[self.i] in _COLONS:
                self.i += 1
            else:
                self.repairs.add("missing colon")
                if self.s[self.i] in _AFTER_KEY_NO_VALUE:
                    continue
            value = self._value(depth + 1)
            if value is _MISSING:
                if self.i >= self.n:
                    return out
                continue
            out[key] = str(value) if isinstance(value, _Partial) else value

    def _array(self, depth: int) -> list[Any]:
        if self.s[self.i] != "[":
            self.repairs.add("full-width brackets")
        self.i += 1
        out: list[Any] = []
        while True:
            self._skip()
            if self.i >= self.n:
                self.truncated = True
                return out
            c = self.s[self.i]
            if c in _CLOSE_ARRAY:
                self.i += 1
                return out
            if c in _COMMAS:
                self._comma()
                continue
            if c in _CLOSE_OBJECT:
                self.repairs.add("mismatched brackets")
                self.i += 1
                return out
            start = self.i
            value = self._value(depth + 1)
            if value is _MISSING:
                if self.i >= self.n:
                    return out
                if self.i == start:
                    self.i += 1
                continue
            out.append(value)  # a cut string stays a _Partial: _settle decides whether it is content

    def _comma(self) -> None:
        self.i += 1
        self._skip()
        if self.i < self.n and self.s[self.i] in _CLOSERS:
            self.repairs.add("trailing commas")

    def _key(self) -> Any:
        c = self.s[self.i]
        if c in _QUOTES:
            key = self._string(c)
            return _MISSING if isinstance(key, _Partial) else key
        self.repairs.add("unquoted keys")
        start = self.i
        end = _KEY_END.search(self.s, start)
        self.i = end.start() if end else self.n
        key = self.s[start : self.i].strip().strip("\\\"'")
        if self.i >= self.n:
            return _MISSING
        return key or _MISSING

    def _string(self, quote: str) -> str:
        if quote not in "\"'":
            self.repairs.add("curly quotes")
        elif quote == "'":
            self.repairs.add("single quotes")
        closers = {_QUOTES[quote], '"'} if quote == "“" else {_QUOTES[quote]}
        s, n = self.s, self.n
        self.i += 1
        buf: list[str] = []
        while self.i < n:
            c = s[self.i]
            if c == "\\":
                if self.i + 1 >= n:
                    break
                e = s[self.i + 1]
                if e == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[self.i + 2 : self.i + 6]):
                    buf.append(chr(int(s[self.i + 2 : self.i + 6], 16)))
                    self.i += 6
                else:
                    buf.append(_ESCAPES.get(e, e))
                    self.i += 2
                continue
            if c in closers:
                if quote in "\"'" and not self._closes_here(self.i + 1):
                    self.repairs.add("unescaped quotes")  # a quote inside the text: keep it
                    buf.append(c)
                    self.i += 1
                    continue
                self.i += 1
                return _join_utf16("".join(buf))
            buf.append(c)
            self.i += 1
        self.i = n
        self.truncated = True
        return _Partial(_join_utf16("".join(buf)))

    def _closes_here(self, j: int) -> bool:
        """Whether a quote followed by position j ends the string (next is , : } ] or a line end)."""
        s, n = self.s, self.n
        while j < n and s[j] in " \t":
            j += 1
        return j >= n or s[j] in _AFTER_CLOSING_QUOTE or s.startswith("//", j) or s.startswith("/*", j)

    def _bare(self) -> Any:
        start = self.i
        end = _BARE_END.search(self.s, start)
        self.i = end.start() if end else self.n
        word = self.s[start : self.i].strip()
        if self.i >= self.n:
            self.truncated = True
            return _MISSING  # a scalar that runs into the end may be cut ("3" of "30", "tru")
        if not word:
            return _MISSING
        if word.lower() in _LITERALS:
            if word not in ("true", "false", "null"):
                self.repairs.add("Python literals")
            return _LITERALS[word.lower()]
        if _NUMBER.fullmatch(word):
            if len(word) > 40:
                return None
            number = float(word)
            return int(number) if number.is_integer() and re.fullmatch(r"[-+]?\d+", word) else number
        self.repairs.add("unquoted values")
        return word


# Compact keys (vision/schema.py COMPACT_KEYS) whose lists are [zh, en] pairs, or hold such pairs: a text cut
# off by the end of the output is kept there, as the long form keeps a cut {"zh": ..., "en": ...} value.
_CUT_KEPT_IN = frozenset({"cap", "sc", "who"})
_CUT_KEPT_IN_ITEMS = frozenset({"obj", "ani"})


def _settle(value: Any, keep_cut: bool = False, keep_cut_in_items: bool = False) -> Any:
    """Plain values from the lenient reader: a list item cut in half is noise (a tag "宠" of "宠物") and is
    dropped, except in a compact pair, where it is half a caption or a name."""
    if isinstance(value, dict):
        return {
            k: _settle(
                v, str(k).strip().lower() in _CUT_KEPT_IN, str(k).strip().lower() in _CUT_KEPT_IN_ITEMS
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_settle(v, keep_cut_in_items) for v in value if keep_cut or not isinstance(v, _Partial)]
    return str(value) if isinstance(value, _Partial) else value


def _join_utf16(text: str) -> str:
    """Re-pair surrogate halves that came from separate \\uXXXX escapes (emoji)."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


# ------------------------------------------------------------------------------------ finding the JSON


@dataclass
class _Found:
    value: dict[str, Any]
    strict: bool
    notes: list[str]


def _strip_reasoning(text: str) -> tuple[str, bool]:
    """Drop <think> blocks; returns the answer and whether there was reasoning."""
    had = "<think>" in text.lower() or "</think>" in text.lower()
    text = _THINK_BLOCK.sub("", text)
    low = text.lower()
    if "</think>" in low:  # chat templates that open the block themselves leave only the closing tag
        text = text[low.rfind("</think>") + len("</think>") :]
        low = text.lower()
    if low.lstrip().startswith("<think>"):  # reasoning cut off by the token limit: no answer after it
        text = ""
    return text, had


def _is_analysis(value: Any) -> bool:
    return isinstance(value, dict) and bool(normalise_analysis_keys(value)[0])


def _unwrap(value: Any, notes: list[str], depth: int = 0) -> dict[str, Any] | None:
    """The analysis object inside a list, a wrapper object ({"result": {...}}) or a JSON string."""
    if depth > _MAX_UNWRAP:
        return None
    if _is_analysis(value):
        return dict(value)
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        found = _search(value.strip(), depth + 1)
        if found is not None:
            notes.append("JSON inside a string")
            notes.extend(found.notes)
            return found.value
        return None
    if isinstance(value, list):
        for item in value[:8]:
            inner = _unwrap(item, [], depth + 1)
            if inner is not None:
                notes.append("list around the object")
                return inner
        return None
    bare_caption = isinstance(value, dict) and value and all(str(k).lower() in ("zh", "en") for k in value)
    if bare_caption and all(isinstance(v, str) for v in value.values()):
        notes.append("bare {zh, en} object taken as the caption")
        return {"caption": dict(value)}
    if isinstance(value, dict) and len(value) == 1:
        key, inner_value = next(iter(value.items()))
        inner = _unwrap(inner_value, notes, depth + 1)
        if inner is not None:
            notes.append(f"wrapper key {str(key)[:30]!r} removed")
            return inner
    return None


def _variants(text: str) -> list[tuple[str, str | None]]:
    """Texts to search, with the repair each one implies (None for the text as it is)."""
    out: list[tuple[str, str | None]] = []
    stripped = text.strip()
    if stripped.startswith('"') and stripped.endswith('"'):
        try:
            inner = _DECODER.decode(stripped)
        except ValueError:
            inner = None
        if isinstance(inner, str):
            out.append((inner, "JSON inside a string"))
    if '\\"' in text:
        try:
            unescaped = _DECODER.decode('"' + stripped + '"')
        except ValueError:
            unescaped = None
        if isinstance(unescaped, str):
            out.append((unescaped, "escaped JSON"))
    out.append((text, None))
    if _ENTITY.search(text):
        out.append((html.unescape(text), "HTML entities in JSON"))
    return out


def _search(text: str, depth: int = 0) -> _Found | None:
    """The first analysis-like object in the text: strict JSON first, then the lenient reader, per start."""
    for variant, repair in _variants(text):
        covered = 0  # starts inside a region the lenient reader already read are not tried again
        tried = 0
        for match in _STARTS.finditer(variant):
            start = match.start()
            if start < covered:
                continue
            tried += 1
            if tried > _MAX_STARTS:
                break
            notes = [repair] if repair else []
            found = _strict_at(variant, start, notes, depth)
            if found is None:
                found, covered = _lenient_at(variant, start, [repair] if repair else [], depth)
            if found is not None:
                found.strict = found.strict and repair is None
                return found
    return None


def _strict_at(text: str, start: int, notes: list[str], depth: int) -> _Found | None:
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    inner_notes: list[str] = []
    analysis = _unwrap(value, inner_notes, depth)
    if analysis is None:
        return None
    if _STARTS.search(text, end):
        inner_notes.append("text after the first JSON value ignored")
    return _Found(analysis, not inner_notes, notes + inner_notes)


def _lenient_at(text: str, start: int, notes: list[str], depth: int) -> tuple[_Found | None, int]:
    """The analysis read leniently from `start`, and where reading stopped."""
    reader = _LenientReader(text, start)
    try:
        value = reader.read()
    except (_TooDeep, RecursionError):
        return None, start + 1
    if value is _MISSING:
        return None, reader.i
    value = _settle(value)
    inner_notes: list[str] = []
    analysis = _unwrap(value, inner_notes, depth)
    if analysis is None:
        return None, reader.i
    repairs = sorted(reader.repairs)
    notes = [*notes, f"repaired JSON ({', '.join(repairs)})" if repairs else "repaired JSON", *inner_notes]
    if reader.truncated:
        notes.append("output was cut off; kept what was complete")
    return _Found(analysis, False, notes), reader.i


# ------------------------------------------------------------------------------------ public API


def _empty_data() -> dict[str, Any]:
    return PhotoAnalysis().model_dump()


def _json_strings(value: Any, limit: int = 64) -> list[str]:
    out: list[str] = []
    stack = [value]
    while stack and len(out) < limit:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str) and item.strip():
            out.append(item.strip())
    return out


def _unparsed(text: str, problems: list[str]) -> ParsedAnalysis:
    """Keep the raw answer as the description, marked, so a bad answer never becomes an empty success."""
    description = _FENCE.sub("", text).strip()
    try:
        decoded = _DECODER.decode(description)
    except (ValueError, RecursionError):
        decoded = _MISSING
    if decoded is not _MISSING:  # valid JSON without known fields: its strings are the description
        description = "; ".join(_json_strings(decoded))
    description = clean_text(description, MAX_CAPTION_CHARS)
    data = _empty_data()
    if _WORDISH.search(description):
        cjk = has_cjk(description)
        latin = bool(re.search(r"[A-Za-z]{2}", description))
        data["caption"] = {"zh": description if cjk else "", "en": description if latin or not cjk else ""}
    return ParsedAnalysis("unparsed", data, problems)


def parse_analysis(raw: str) -> ParsedAnalysis:
    """Parse one model answer. Never raises; see ParsedAnalysis for the statuses."""
    problems: list[str] = []
    text = raw if isinstance(raw, str) else str(raw)
    if len(text) > MAX_RAW_CHARS:
        text = text[:MAX_RAW_CHARS]
        problems.append(f"output longer than {MAX_RAW_CHARS} characters; the rest ignored")
    text = text.replace("\ufeff", "").replace("\x00", "")
    text, had_reasoning = _strip_reasoning(text)
    if not text.strip():
        return ParsedAnalysis("unparsed", _empty_data(), [REASONING_ONLY if had_reasoning else EMPTY_OUTPUT])
    try:
        found = _search(text)
    except RecursionError:
        found = None
    if found is None:
        return _unparsed(text, [*problems, "no JSON object with known fields found"])
    problems.extend(found.notes)
    try:
        analysis, coercions = validate_analysis(found.value)
    except (ValidationError, RecursionError, ValueError, TypeError) as exc:
        log.debug("schema validation failed after coercion: %s", exc)
        return _unparsed(text, [*problems, f"does not fit the schema: {str(exc)[:200]}"])
    problems.extend(coercions)
    if analysis.is_empty():
        return _unparsed(text, [*problems, "no caption, tags, objects or visible text"])
    status = "ok" if found.strict and not problems else "partial"
    return ParsedAnalysis(status, analysis.model_dump(), problems)


def is_blank_output(raw: str) -> bool:
    """True when the answer holds nothing once reasoning blocks are removed."""
    return not _strip_reasoning(raw.replace("\ufeff", ""))[0].strip()


def result_from_raw(photo_hash: str, raw: str) -> AnalysisResult:
    """Wrap a model answer as an AnalysisResult; empty output is an 'error' (retried next run)."""
    raw = raw if isinstance(raw, str) else str(raw)
    parsed = parse_analysis(raw)
    stored_raw = raw[:MAX_RAW_CHARS]
    if parsed.status == "unparsed" and parsed.problems[:1] in ([EMPTY_OUTPUT], [REASONING_ONLY]):
        message = "the model returned no answer" + (
            " (only reasoning; raise vlm_max_new_tokens)" if parsed.problems[0] == REASONING_ONLY else ""
        )
        return AnalysisResult(photo_hash, "error", {}, stored_raw, message)
    error = None
    if parsed.status == "unparsed":
        error = ("could not parse the model output: " + "; ".join(parsed.problems))[:500]
    elif parsed.problems:
        log.debug("photo %s: %s", photo_hash, "; ".join(parsed.problems))
    return AnalysisResult(photo_hash, parsed.status, parsed.data, stored_raw, error)


def analysis_text(data: dict[str, Any]) -> dict[str, str]:
    """Flatten an analysis into searchable text per language: {"zh": ..., "en": ...}, one item per line."""
    try:
        analysis, _ = validate_analysis(data if isinstance(data, dict) else {})
    except (ValidationError, ValueError, TypeError):
        analysis = PhotoAnalysis()
    zh: list[str] = [analysis.caption.zh, analysis.scene.zh, "，".join(analysis.tags.zh)]
    en: list[str] = [analysis.caption.en, analysis.scene.en, ", ".join(analysis.tags.en)]
    things = [*analysis.objects, *analysis.animals]
    zh.append("，".join(t.name.zh for t in things if t.name.zh))
    en.append(", ".join(t.name.en for t in things if t.name.en))
    if analysis.people.count > 0 or analysis.people.description.zh or analysis.people.description.en:
        desc = analysis.people.description
        zh.append(f"人物：{desc.zh}" if desc.zh else "人物" if analysis.people.count else "")
        en.append(f"people: {desc.en}" if desc.en else "people" if analysis.people.count else "")
    cues = [c for c in (analysis.time_of_day, analysis.season, analysis.weather) if c]
    zh.append("，".join(LABELS_ZH.get(c, c) for c in cues))
    en.append(", ".join(cues))
    # visible text is language-neutral: searchable from both sides
    zh.extend(analysis.text)
    en.extend(analysis.text)
    return {"zh": "\n".join(p for p in zh if p), "en": "\n".join(p for p in en if p)}


def analyse_in_chunks(
    batch: list[AnalysisInput],
    size: int,
    generate: Callable[[list[AnalysisInput]], list[str]],
    on_failure: Callable[[], None] = lambda: None,
) -> list[AnalysisResult]:
    """One parsed result per input, in order, for a local model backend: `generate` answers `size` photos at a
    time; when a chunk fails its photos are tried one at a time, and a photo that still fails is an 'error'
    result (retried next run). `on_failure` runs after each failure (e.g. to free cached GPU memory)."""

    def one(item: AnalysisInput) -> AnalysisResult:
        try:
            (raw,) = generate([item])
        except Exception as exc:
            on_failure()
            return error_result(item, exc)
        return result_from_raw(item.hash, raw)

    results: list[AnalysisResult] = []
    for start in range(0, len(batch), size):
        chunk = batch[start : start + size]
        if len(chunk) == 1:
            results.append(one(chunk[0]))
            continue
        try:
            raws = generate(chunk)
            results.extend(result_from_raw(item.hash, raw) for item, raw in zip(chunk, raws, strict=True))
            continue
        except Exception as exc:
            log.warning("batch of %d failed (%s); retrying one photo at a time", len(chunk), exc)
            on_failure()
        results.extend(one(item) for item in chunk)
    return results


def error_result(item: AnalysisInput, exc: BaseException) -> AnalysisResult:
    log.warning("photo %s could not be analysed: %s: %s", item.hash[:12], type(exc).__name__, exc)
    return AnalysisResult(hash=item.hash, status="error", error=f"{type(exc).__name__}: {exc}"[:1000])

"""Token levers of the vision analysis: counts in the real Qwen vocabulary (bench/tokens.py), the compact
answer form and its equivalence to the long one, and the prompt asking for every schema field."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.tokens import P1, chat_text, count_tokens, qwen_encoding, renderings, visual_tokens
from hypothesis import given, settings
from hypothesis import strategies as st

from smartalbum.config import Settings
from smartalbum.vision.parse import parse_analysis
from smartalbum.vision.prompt import EXAMPLE_ANALYSIS, EXAMPLE_ANSWER, SYSTEM_PROMPT, USER_PROMPT
from smartalbum.vision.schema import (
    COMPACT_KEYS,
    CUE_FIELDS,
    SEASON_VALUES,
    TIME_OF_DAY_VALUES,
    WEATHER_VALUES,
    PhotoAnalysis,
    to_compact,
    validate_analysis,
)

ROOT = Path(__file__).resolve().parents[1]


def _tight(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------- real tokens


def test_counts_use_the_real_qwen_vocabulary() -> None:
    enc = qwen_encoding()
    assert enc.n_vocab == 151669  # 151,643 BPE ranks + Qwen3-VL's special tokens up to </think>
    # known splits of the Qwen BPE: a JSON key is three tokens, 'overcast' two, common Chinese words one
    assert [enc.decode([t]) for t in enc.encode('"caption":')] == ['"', "caption", '":']
    assert [enc.decode([t]) for t in enc.encode(" overcast")] == [" over", "cast"]
    assert count_tokens("海滩") == 1 and count_tokens("两个人") == 1
    assert enc.encode("<|image_pad|>", allowed_special="all") == [151655]
    text = "傍晚海边 NO SWIMMING 🐶"
    assert enc.decode(enc.encode(text)) == text
    # the chat template: one token per image pad, around the prompt's text
    plain = count_tokens(chat_text("s", "u", 0))
    assert count_tokens(chat_text("s", "u", 196)) == plain + 196


def test_p1_baseline_is_what_the_long_example_costs() -> None:
    # p1 showed EXAMPLE_ANALYSIS as json.dumps with spaces: 214 tokens, 294 indented (models doc)
    assert count_tokens(json.dumps(EXAMPLE_ANALYSIS, ensure_ascii=False)) == P1["example"]
    assert count_tokens(json.dumps(EXAMPLE_ANALYSIS, ensure_ascii=False, indent=2)) == P1["example_indented"]


def test_prompt_and_example_answer_are_much_shorter_than_p1() -> None:
    prompt = count_tokens(SYSTEM_PROMPT) + count_tokens(USER_PROMPT)
    assert prompt <= 0.6 * (P1["system"] + P1["user"]), prompt
    assert count_tokens(EXAMPLE_ANSWER) <= 0.6 * P1["example"]
    forms = {k: count_tokens(v) for k, v in renderings(EXAMPLE_ANALYSIS).items()}
    assert forms["compact"] < forms["long, no spaces"] < forms["long"] == P1["example"]


def test_visual_tokens_follow_the_processor() -> None:
    budget = Settings().vlm_max_pixels
    assert visual_tokens(448, 448, budget) == 196  # one token per 32x32 px
    assert visual_tokens(1024, 1024, 448 * 448) == 196  # scaled down to the budget
    assert visual_tokens(100, 100, budget) == 64  # small images are scaled up to MIN_PIXELS
    assert visual_tokens(1024, 768, 320 * 320) < visual_tokens(1024, 768, 448 * 448)


@pytest.mark.slow
def test_tokens_bench_smoke_run() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/tokens.py", "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    now = re.search(r"^\| now \| (\d+) \| (\d+) \| (\d+) \|", out, re.MULTILINE)
    assert now and int(now.group(3)) == count_tokens(SYSTEM_PROMPT) + count_tokens(USER_PROMPT), out
    example = re.search(r"^\| prompt example \| (\d+) \| (\d+) \| (\d+) \|", out, re.MULTILINE)
    assert example and int(example.group(1)) == P1["example"], out
    assert int(example.group(3)) == count_tokens(EXAMPLE_ANSWER)
    assert re.search(r"^\| compact \| clean \| \d+ \| 100\.0% \| 100\.0% \| 100\.0% \|", out, re.MULTILINE), (
        out
    )
    assert re.search(r"^\| 448x448 \| \d+ \| \d+ \| \d+ \| 196 \|", out, re.MULTILINE), out


# ---------------------------------------------------------------------------------------- the prompt


def test_prompt_asks_for_every_schema_field() -> None:
    # a new schema field without a compact key, or a key the prompt no longer explains, fails here
    asked = {f for f in COMPACT_KEYS.values() if f != "cues"} | set(CUE_FIELDS)
    assert asked == set(PhotoAnalysis.model_fields)
    explained = {line.split(":")[0] for line in USER_PROMPT.splitlines() if re.match(r"^[a-z]+: ", line)}
    assert explained == set(COMPACT_KEYS)
    assert set(json.loads(EXAMPLE_ANSWER)) == set(COMPACT_KEYS)  # the example shows every key
    for value in (*TIME_OF_DAY_VALUES, *SEASON_VALUES, *WEATHER_VALUES):
        assert re.search(rf"\b{value}\b", USER_PROMPT), value


# ---------------------------------------------------------------------------------------- compact form

GOOD: dict[str, Any] = {
    "caption": {"zh": "一只猫坐在沙发上", "en": "A cat sitting on a sofa"},
    "scene": {"zh": "客厅", "en": "living room"},
    "tags": {"zh": ["猫", "沙发", "宠物"], "en": ["cat", "sofa", "pet"]},
    "objects": [
        {"name": {"zh": "沙发", "en": "sofa"}, "count": 1},
        {"name": {"zh": "灯", "en": "lamp"}, "count": 2},
    ],
    "people": {"count": 2, "description": {"zh": "两个孩子", "en": "two children"}},
    "animals": [{"name": {"zh": "猫", "en": "cat"}, "count": 1}],
    "time_of_day": "evening",
    "season": "winter",
    "weather": "indoor",
    "text": ["HOME", "欢迎"],
}
LONG = _tight(GOOD)
COMPACT = _tight(to_compact(GOOD))


def test_compact_form_of_the_example() -> None:
    assert json.loads(COMPACT) == {
        "cap": ["一只猫坐在沙发上", "A cat sitting on a sofa"],
        "sc": ["客厅", "living room"],
        "kw": [["猫", "沙发", "宠物"], ["cat", "sofa", "pet"]],
        "obj": [["沙发", "sofa"], ["灯", "lamp", 2]],
        "who": [2, "两个孩子", "two children"],
        "ani": [["猫", "cat"]],
        "cue": ["evening", "winter", "indoor"],
        "txt": ["HOME", "欢迎"],
    }
    long, compact = parse_analysis(LONG), parse_analysis(COMPACT)
    assert long.status == compact.status == "ok"
    assert compact.data == long.data == PhotoAnalysis.model_validate(GOOD).model_dump()


def test_empty_keys_are_left_out_and_mean_nothing() -> None:
    bare = {"caption": {"zh": "雪山", "en": "snowy mountains"}}
    assert to_compact(bare) == {"cap": ["雪山", "snowy mountains"]}
    parsed = parse_analysis(_tight(to_compact(bare)))
    assert parsed.status == "ok" and parsed.problems == []
    assert parsed.data == PhotoAnalysis.model_validate(bare).model_dump()
    assert parsed.data["people"]["count"] == 0 and parsed.data["weather"] is None


_ZH = st.text(alphabet="猫狗海滩日落人山水一二三的在招牌禁止游泳", max_size=10)
_EN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABC-'", max_size=14)
# quotes, digits, newlines, emoji, Chinese under en and English under zh; not a reasoning tag: the parser
# drops everything up to a "</think>" wherever it is (the protocol's marker, not content: hypothesis once
# made an animal named "</THINK>", which cut the long and the compact answers at different places)
_ANY = st.text(max_size=12).filter(lambda s: "think>" not in s.lower())
_TEXT = st.one_of(_ZH, _EN, _ANY)
_PAIR = st.fixed_dictionaries({"zh": st.one_of(_ZH, _ANY), "en": st.one_of(_EN, _ANY)})
_THINGS = st.lists(
    st.fixed_dictionaries({"name": _PAIR, "count": st.integers(min_value=0, max_value=1200)}), max_size=4
)
_CUE = st.one_of(st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz 夜雨", max_size=8))
_CONTENT = st.fixed_dictionaries(
    {
        "caption": _PAIR,
        "scene": _PAIR,
        "tags": st.fixed_dictionaries({"zh": st.lists(_TEXT, max_size=4), "en": st.lists(_TEXT, max_size=4)}),
        "objects": _THINGS,
        "people": st.fixed_dictionaries(
            {"count": st.integers(min_value=0, max_value=20), "description": _PAIR}
        ),
        "animals": _THINGS,
        "time_of_day": st.one_of(_CUE, st.sampled_from(TIME_OF_DAY_VALUES)),
        "season": st.one_of(_CUE, st.sampled_from(SEASON_VALUES)),
        "weather": st.one_of(_CUE, st.sampled_from(WEATHER_VALUES)),
        "text": st.lists(_TEXT, max_size=4),
    }
)


@settings(max_examples=300, deadline=None)
@given(_CONTENT)
def test_compact_parses_to_exactly_what_the_long_form_does(content: dict[str, Any]) -> None:
    # the content as the schema keeps it, written both ways, read back through the whole parser
    analysis, _ = validate_analysis(content)
    canonical = analysis.model_dump()
    long, compact = parse_analysis(_tight(canonical)), parse_analysis(_tight(to_compact(canonical)))
    assert compact.status == long.status
    if long.status == "unparsed":  # nothing searchable: both keep the answer's strings as the caption
        for lang in ("zh", "en"):
            assert sorted(compact.data["caption"][lang].split("; ")) == sorted(
                long.data["caption"][lang].split("; ")
            )
    else:
        assert compact.data == long.data == canonical


@settings(max_examples=200, deadline=None)
@given(_CONTENT)
def test_raw_model_values_read_the_same_in_both_forms(content: dict[str, Any]) -> None:
    # what a model writes before any cleaning (zero counts, unknown cue words, stray scripts): the compact
    # form of the same values reads to the same analysis as the long form
    compact: dict[str, Any] = {
        "cap": [content["caption"]["zh"], content["caption"]["en"]],
        "sc": [content["scene"]["zh"], content["scene"]["en"]],
        "kw": [content["tags"]["zh"], content["tags"]["en"]],
        "obj": [[t["name"]["zh"], t["name"]["en"], t["count"]] for t in content["objects"]],
        "who": [content["people"]["count"], content["people"]["description"]["zh"],
                content["people"]["description"]["en"]],
        "ani": [[t["name"]["zh"], t["name"]["en"], t["count"]] for t in content["animals"]],
        "cue": [content[f] for f in CUE_FIELDS],
        "txt": content["text"],
    }  # fmt: skip
    long, short = validate_analysis(content), validate_analysis(compact)
    if all(_only_its_own_cue(f, content[f]) for f in CUE_FIELDS):
        assert short[0] == long[0]
        assert bool(short[1]) == bool(long[1])  # coerced ('partial') in one form iff in the other
    else:  # the compact 'cue' list names no field: a word another cue's vocabulary knows may land there
        assert short[0].model_dump(exclude=set(CUE_FIELDS)) == long[0].model_dump(exclude=set(CUE_FIELDS))


def _only_its_own_cue(field: str, value: str | None) -> bool:
    """Whether the long form recognises `value` as `field` and as no other cue, or it is empty."""
    if value is None:
        return True
    known = {
        f for f in CUE_FIELDS if getattr(validate_analysis({"caption": "x", f: value})[0], f) is not None
    }
    return known in (set(), {field})


def _fence(t: str) -> str:
    return f"```json\n{t}\n```"


def _prose(t: str) -> str:
    return f"Here is the analysis:\n{t}\nHope this helps."


def _think(t: str) -> str:
    return f"<think>A cat on a sofa; answer in JSON.</think>{t}"


def _trailing_commas(t: str) -> str:
    return t.replace("]", ",]").replace("}", ",}")


def _single_quotes(t: str) -> str:
    return t.replace('"', "'")


def _unquoted_keys(t: str) -> str:
    return re.sub(r'"([a-z_]+)":', r"\1:", t)


def _full_width(t: str) -> str:
    return t.replace(",", "，").replace(":", "：").replace("[", "［").replace("]", "］")


def _wrapper(t: str) -> str:
    return f'{{"result": {t}}}'


def _listed(t: str) -> str:
    return f"[{t}]"


def _string(t: str) -> str:
    return json.dumps(t, ensure_ascii=False)


def _entities(t: str) -> str:
    return t.replace('"', "&quot;")


def _twice(t: str) -> str:
    return f"{t}\n{t}"


REPAIRS = [_fence, _prose, _think, _trailing_commas, _single_quotes, _unquoted_keys, _full_width, _wrapper,
           _listed, _string, _entities, _twice]  # fmt: skip


@pytest.mark.parametrize("repair", REPAIRS, ids=[r.__name__.strip("_") for r in REPAIRS])
def test_malformed_compact_recovers_as_the_long_form_does(repair: Any) -> None:
    long, compact = parse_analysis(repair(LONG)), parse_analysis(repair(COMPACT))
    assert long.status in ("ok", "partial")
    assert compact.status == long.status, compact.problems
    assert compact.data == long.data
    assert bool(compact.problems) == bool(long.problems)


def _cut_after(text: str, marker: str, keep: int) -> str:
    """The text cut `keep` characters into the first occurrence of `marker` (as a token limit cuts it)."""
    return text[: text.index(marker) + keep]


# (where to cut: a text found in both forms, how many of its characters stay; fields expected in both)
CUTS: list[tuple[str, int, dict[str, Any]]] = [
    ("一只猫坐在沙发上", 3, {"caption": {"zh": "一只猫", "en": ""}}),
    ("A cat sitting", 5, {"caption": {"zh": "一只猫坐在沙发上", "en": "A cat"}}),
    ("宠物", 1, {"tags": {"zh": ["猫", "沙发"], "en": []}}),  # a tag cut in half is dropped
    ("lamp", 2, {"objects": [{"name": {"zh": "沙发", "en": "sofa"}, "count": 1},
                             {"name": {"zh": "灯", "en": "la"}, "count": 1}]}),
    ("two children", 3, {"people": {"count": 2, "description": {"zh": "两个孩子", "en": "two"}}}),
    ("欢迎", 1, {"text": ["HOME"]}),
]  # fmt: skip


@pytest.mark.parametrize(("marker", "keep", "expected"), CUTS, ids=[c[0] for c in CUTS])
def test_cut_off_compact_keeps_what_the_long_form_keeps(
    marker: str, keep: int, expected: dict[str, Any]
) -> None:
    long, compact = (
        parse_analysis(_cut_after(LONG, marker, keep)),
        parse_analysis(_cut_after(COMPACT, marker, keep)),
    )
    assert long.status == compact.status
    for field, value in expected.items():
        assert long.data[field] == compact.data[field] == value, field
    if long.status != "unparsed":
        assert any("cut off" in p for p in compact.problems)


@pytest.mark.parametrize(
    "raw",
    ['{"cap":', '{"cap":[', '{"sc":["客厅","living room"]}', '{"cue":["night"],"kw":[[],[]]}', '{"who":3}'],
)
def test_compact_without_anything_searchable_is_unparsed_like_the_long_form(raw: str) -> None:
    parsed = parse_analysis(raw)
    assert parsed.status == "unparsed" and parsed.problems


def test_compact_tolerances() -> None:
    # cue words in any order, synonyms and Chinese; tag pairs; a count as a string; a single text
    parsed = parse_analysis(
        '{"cap":["一只猫"],"kw":[["猫","cat"],["沙发","sofa"],["宠物","pet"]],'
        '"obj":[["灯","lamp","3"],"2 chairs"],"who":["2","两个孩子","two children"],'
        '"cue":["下雪","dusk","fall","x-ray"]}'
    )
    d = parsed.data
    assert d["caption"] == {"zh": "一只猫", "en": ""}
    assert d["tags"] == {"zh": ["猫", "沙发", "宠物"], "en": ["cat", "sofa", "pet"]}
    assert [(t["name"]["en"], t["count"]) for t in d["objects"]] == [("lamp", 3), ("chairs", 2)]
    assert d["people"]["count"] == 2 and d["people"]["description"]["en"] == "two children"
    assert (d["time_of_day"], d["season"], d["weather"]) == ("sunset", "autumn", "snow")
    assert parsed.status == "partial"
    assert any("unknown value" in p and "x-ray" in p for p in parsed.problems)
    # a long key beside its compact one wins; a plain string caption is read by its script
    both = parse_analysis('{"cap":["甲","first"],"caption":{"zh":"乙","en":"second"}}')
    assert both.data["caption"] == {"zh": "乙", "en": "second"}
    assert parse_analysis('{"cap":"hat","size":3}').data["caption"]["en"] == "hat"


_CAP = '"cap":["一只猫","A cat"]'
_PAIRS_OF_TAGS = '[["猫","沙发","宠物"],["cat","sofa","pet"],["室内"]]'
# (answer, fields expected): compact answers off the prompt's exact shape that a model may write
OFF_SHAPE: list[tuple[str, str, dict[str, Any]]] = [
    ("tags in one list", f'{{{_CAP},"kw":[["猫","沙发","宠物","客厅"]]}}',
     {"tags": {"zh": ["猫", "沙发", "宠物", "客厅"], "en": []}}),
    ("tags in three lists", f'{{{_CAP},"kw":{_PAIRS_OF_TAGS}}}',
     {"tags": {"zh": ["猫", "沙发", "宠物", "室内"], "en": ["cat", "sofa", "pet"]}}),
    ("tags cut in the Chinese list", f'{{{_CAP},"kw":[["猫","沙发","宠物","客厅"',
     {"tags": {"zh": ["猫", "沙发", "宠物", "客厅"], "en": []}}),
    ("tags tag by tag", f'{{{_CAP},"kw":[["猫","cat"],["沙发","sofa"],["宠物","pet"]]}}',
     {"tags": {"zh": ["猫", "沙发", "宠物"], "en": ["cat", "sofa", "pet"]}}),
    ("one thing without its list", f'{{{_CAP},"obj":["灯","lamp",2]}}',
     {"objects": [{"name": {"zh": "灯", "en": "lamp"}, "count": 2}]}),
    ("a bare number is no thing", f'{{{_CAP},"obj":[["灯","lamp"],2]}}',
     {"objects": [{"name": {"zh": "灯", "en": "lamp"}, "count": 1}]}),
    ("count first, as a string", f'{{{_CAP},"obj":[["2","灯","lamp"]]}}',
     {"objects": [{"name": {"zh": "灯", "en": "lamp"}, "count": 2}]}),
    ("name as a pair inside", f'{{{_CAP},"obj":[[["灯","lamp"],2]]}}',
     {"objects": [{"name": {"zh": "灯", "en": "lamp"}, "count": 2}]}),
    ("people count as a word", f'{{{_CAP},"who":["two","两个孩子","two children"]}}',
     {"people": {"count": 2, "description": {"zh": "两个孩子", "en": "two children"}}}),
    ("people count in Chinese", f'{{{_CAP},"who":["两","两个孩子","two children"]}}',
     {"people": {"count": 2, "description": {"zh": "两个孩子", "en": "two children"}}}),
    ("people count with a classifier", f'{{{_CAP},"who":["2人","两个孩子","two children"]}}',
     {"people": {"count": 2, "description": {"zh": "两个孩子", "en": "two children"}}}),
    ("people one pair each", f'{{{_CAP},"who":[["男人","man"],["女人","woman"]]}}',
     {"people": {"count": 2, "description": {"zh": "男人; man; 女人; woman", "en": ""}}}),
    ("people description as a pair", f'{{{_CAP},"who":[2,["两个孩子","two children"]]}}',
     {"people": {"count": 2, "description": {"zh": "两个孩子", "en": "two children"}}}),
    ("cues in one string", f'{{{_CAP},"cue":"evening winter indoor"}}',
     {"time_of_day": "evening", "season": "winter", "weather": "indoor"}),
    ("two cues in one word list item", f'{{{_CAP},"cue":["sunny afternoon"]}}',
     {"time_of_day": "afternoon", "weather": "sunny", "season": None}),
    ("long keys, positional values",
     '{"caption":["一只猫","A cat"],"objects":[["灯","lamp",2]],"people":[2,"两个孩子","two children"],'
     '"animals":[["猫","cat"]]}',
     {"caption": {"zh": "一只猫", "en": "A cat"},
      "objects": [{"name": {"zh": "灯", "en": "lamp"}, "count": 2}],
      "people": {"count": 2, "description": {"zh": "两个孩子", "en": "two children"}},
      "animals": [{"name": {"zh": "猫", "en": "cat"}, "count": 1}]}),
    ("compact key beats an earlier alias", '{"description":"alias text","cap":["一只猫","A cat"]}',
     {"caption": {"zh": "一只猫", "en": "A cat"}}),
    ("compact and long things kept together",
     f'{{{_CAP},"obj":[["灯","lamp"]],"objects":[{{"name":{{"zh":"椅子","en":"chair"}},"count":1}}]}}',
     {"objects": [{"name": {"zh": "椅子", "en": "chair"}, "count": 1},
                  {"name": {"zh": "灯", "en": "lamp"}, "count": 1}]}),
    ("compact key with a language suffix", '{"cap_zh":"一只猫","cap_en":"A cat"}',
     {"caption": {"zh": "一只猫", "en": "A cat"}}),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in OFF_SHAPE], ids=[c[0] for c in OFF_SHAPE])
def test_compact_answers_off_the_exact_shape_keep_their_content(raw: str, expected: dict[str, Any]) -> None:
    parsed = parse_analysis(raw)
    assert parsed.status in ("ok", "partial"), parsed.problems
    for field, value in expected.items():
        assert parsed.data[field] == value, field
    assert not any("unknown value" in p for p in parsed.problems)  # every cue word found its field

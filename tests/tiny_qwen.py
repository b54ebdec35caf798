"""Build a tiny, randomly initialised Qwen3-VL checkpoint with the real transformers classes.

The directory it writes loads with `AutoProcessor.from_pretrained` and
`AutoModelForImageTextToText.from_pretrained` exactly like the published model, so the backend is tested
end to end without any download. Weights are random: the text it generates is nonsense.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_DIR_NAME = "tiny-qwen3-vl"

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# The structure of the published Qwen3-VL chat template, without the tool-calling branches.
CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) %}"
    "{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}"
    "{{- message.content }}"
    "{%- else %}"
    "{%- for content in message.content %}"
    "{%- if content.type == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}"
    "{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif content.type == 'video' or 'video' in content %}"
    "{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in content %}"
    "{{- content.text }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

_CORPUS = [
    "A cat sleeps on a red sofa next to the window in the afternoon sun.",
    "一只猫在下午的阳光里睡在窗边的红色沙发上。",
    '{"description_zh": "海边的日落", "description_en": "sunset at the beach", "tags": ["sea", "sunset"]}',
    "Two people walk a dog in the park; trees, grass, a bench and a bicycle.",
    "星巴克 STARBUCKS 拿铁 28元 咖啡 杯子 桌子 夜晚 城市 青岛 北京 上海",
    "objects scene time_of_day season weather text people animals: morning, winter, rain, snow.",
]


def _build_tokenizer(out: Path) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,  # ids 0..7, in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=32768,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_qwen(directory: Path) -> Path:
    """Write a tiny random Qwen3-VL (model, tokenizer, processors, chat template) into `directory`.

    Returns the directory. Does nothing when a complete build is already there.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    directory = Path(directory)
    marker = directory / ".complete"
    if marker.is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer(directory)
    vocab = tokenizer.get_vocab()  # type: ignore[attr-defined]
    ids = {t: vocab[t] for t in SPECIAL_TOKENS}

    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            # Large init so random logits are well separated: greedy results then do not hinge on 1e-6 noise.
            "initializer_range": 0.5,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [4, 2, 2],  # sums to head_dim / 2
                "mrope_interleaved": True,
            },
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0, 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    config.bos_token_id = ids["<|endoftext|>"]
    config.eos_token_id = ids["<|im_end|>"]
    config.pad_token_id = ids["<|endoftext|>"]

    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).eval()
    # The published generation config samples; the backend must override it to decode greedily.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repetition_penalty=1.0,
    )
    model.save_pretrained(directory)

    # Same pixel bounds as Qwen's own example, expressed in the installed processor's `size` names.
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 64 * 32 * 32, "longest_edge": 1280 * 32 * 32},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(directory)
    (directory / "BUILD.json").write_text(json.dumps({"special_token_ids": ids}), encoding="utf-8")
    marker.write_text("ok", encoding="utf-8")
    return directory


def tiny_qwen_dir(tmp_path_factory: object) -> Path:
    """The session's tiny model directory (pass pytest's `tmp_path_factory`); built on first use."""
    base = Path(tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    return build_tiny_qwen(base / TINY_DIR_NAME)

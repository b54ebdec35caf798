"""Throughput of the Qwen3-VL-2B-Instruct architecture, random weights, no download: images/s and tokens/s.

Same shapes and compute as the published model (values from shared/models/qwen3-vl-2b-instruct.md); the
text it generates is meaningless. Inputs are built directly: a prompt of --prompt-tokens text tokens around
one image of --image-size pixels (448x448 -> 196 visual tokens), identical for every row, so no padding.
Generation length is forced (min_new_tokens = max_new_tokens) so every run does the same work.

    python bench/vlm.py                                    # device and dtype as the app picks them
    python bench/vlm.py --batch-sizes 1,4 --new-tokens 8 --runs 1 --device cpu
    python bench/vlm.py --arch tiny                        # a seconds-long smoke run of the script itself
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from smartalbum.vision.qwen_vl import pick_device, pick_dtype  # the app's own choice of device and dtype

# Published Qwen3-VL-2B-Instruct values.
QWEN3_VL_2B: dict[str, Any] = {
    "text": {
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 262144,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5_000_000.0,
            "mrope_section": [24, 20, 20],
            "mrope_interleaved": True,
        },
    },
    "vision": {
        "depth": 24,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_heads": 16,
        "patch_size": 16,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "out_hidden_size": 2048,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [5, 11, 17],
    },
}

# A few-second stand-in with the same structure, to check the script itself.
TINY: dict[str, Any] = {
    "text": {
        **QWEN3_VL_2B["text"],
        "vocab_size": 1024,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rope_parameters": {**QWEN3_VL_2B["text"]["rope_parameters"], "mrope_section": [4, 2, 2]},
    },
    "vision": {
        **QWEN3_VL_2B["vision"],
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "deepstack_visual_indexes": [0, 1],
    },
}

# Qwen's special token ids, kept for the tiny stand-in too (its vocabulary is padded to hold them).
IMAGE_PAD, VISION_START, VISION_END, ENDOFTEXT, IM_END = 151655, 151652, 151653, 151643, 151645


@dataclass
class RunTiming:
    total_s: float
    prefill_s: float  # until the first new token's logits: vision encoder + prompt


class FirstTokenTimer:
    """A logits processor that only notes when the first decoding step arrives (the end of prefill)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.first: float | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.first is None:
            _sync(self.device)
            self.first = time.perf_counter()
        return scores


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def build_model(arch: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    from transformers import GenerationConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    text = dict(arch["text"])
    text["vocab_size"] = max(text["vocab_size"], IMAGE_PAD + 2)
    config = Qwen3VLConfig(
        text_config=text,
        vision_config=arch["vision"],
        image_token_id=IMAGE_PAD,
        video_token_id=IMAGE_PAD + 1,
        vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ENDOFTEXT, eos_token_id=[IM_END, ENDOFTEXT], pad_token_id=ENDOFTEXT, do_sample=False
    )
    return model


def build_inputs(
    arch: dict[str, Any], batch: int, image_size: int, prompt_tokens: int, device: str, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """What the processor would produce for `batch` copies of one prompt with one image_size^2 image."""
    vis = arch["vision"]
    patch, merge, temporal = vis["patch_size"], vis["spatial_merge_size"], vis["temporal_patch_size"]
    side = max(patch * merge, image_size // (patch * merge) * (patch * merge))  # the processor's rounding
    grid = side // patch
    n_patches = grid * grid
    n_image_tokens = n_patches // (merge * merge)
    gen = torch.Generator().manual_seed(0)
    before = prompt_tokens // 4  # system prompt and chat markup sit before the image, the request after it
    text_ids = torch.randint(1000, 150000, (prompt_tokens,), generator=gen)
    ids = torch.cat(
        [
            text_ids[:before],
            torch.tensor([VISION_START]),
            torch.full((n_image_tokens,), IMAGE_PAD),
            torch.tensor([VISION_END]),
            text_ids[before:],
        ]
    )
    mm_types = (ids == IMAGE_PAD).to(torch.int32)
    pixel_values = torch.randn(batch * n_patches, 3 * temporal * patch * patch, generator=gen)
    return {
        "input_ids": ids.unsqueeze(0).repeat(batch, 1).to(device),
        "attention_mask": torch.ones(batch, len(ids), dtype=torch.long, device=device),
        "mm_token_type_ids": mm_types.unsqueeze(0).repeat(batch, 1).to(device),
        "pixel_values": pixel_values.to(device=device, dtype=dtype),
        "image_grid_thw": torch.tensor([[1, grid, grid]] * batch, device=device),
    }


def run_once(model: Any, inputs: dict[str, torch.Tensor], new_tokens: int, device: str) -> RunTiming:
    from transformers import LogitsProcessorList

    timer = FirstTokenTimer(device)
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            logits_processor=LogitsProcessorList([timer]),
        )
    _sync(device)
    end = time.perf_counter()
    produced = out.shape[1] - inputs["input_ids"].shape[1]
    if produced != new_tokens:
        raise RuntimeError(f"generated {produced} tokens instead of {new_tokens}")
    return RunTiming(end - start, (timer.first or end) - start)


def _calibrate(device: str, dtype: torch.dtype) -> tuple[float, float, float]:
    """(matmul FLOP/s, memory bytes/s, random-init elements/s) measured here, for the time estimate."""
    x = torch.randn(512, 2048, device=device, dtype=dtype)
    w = torch.randn(6144, 2048, device=device, dtype=dtype)  # an MLP projection of the 2B model
    big = torch.zeros(32 * 1024 * 1024, device=device, dtype=dtype)
    dst = torch.zeros_like(big)  # touched first, so the copy below measures bandwidth, not page faults
    torch.nn.functional.linear(x, w)
    _sync(device)
    t = time.perf_counter()
    for _ in range(3):
        torch.nn.functional.linear(x, w)
    _sync(device)
    flops = 3 * 2 * x.shape[0] * w.numel() / max(time.perf_counter() - t, 1e-9)
    t = time.perf_counter()
    dst.copy_(big)
    _sync(device)
    bandwidth = 2 * big.numel() * big.element_size() / max(time.perf_counter() - t, 1e-9)
    t = time.perf_counter()
    big.normal_(0, 0.02)
    _sync(device)
    init_rate = big.numel() / max(time.perf_counter() - t, 1e-9)
    return flops, bandwidth, init_rate


# Whole-model speed relative to one large matmul (attention, norms, small shapes, Python overhead),
# from runs of this script on a 2-core CPU.
MODEL_EFFICIENCY = 0.4


def estimate_seconds(
    arch: dict[str, Any], batches: list[int], args: argparse.Namespace, dtype: torch.dtype, device: str
) -> float:
    """A rough forecast: prefill as compute, each decoding step as max(compute, reading all text weights)."""
    flops, bandwidth, init_rate = _calibrate(device, dtype)
    flops *= MODEL_EFFICIENCY
    t, v = arch["text"], arch["vision"]
    h, layers = t["hidden_size"], t["num_hidden_layers"]
    q, kv = t["num_attention_heads"] * t["head_dim"], t["num_key_value_heads"] * t["head_dim"]
    layer_params = h * (2 * q + 2 * kv) + 3 * h * t["intermediate_size"]
    text_params = layers * layer_params + t["vocab_size"] * h
    vh = v["hidden_size"]
    vision_params = v["depth"] * (4 * vh * vh + 2 * vh * v["intermediate_size"])
    side = max(32, args.image_size // 32 * 32)
    patches = (side // v["patch_size"]) ** 2
    seq = args.prompt_tokens + patches // 4 + 2
    bytes_per = torch.finfo(dtype).bits // 8
    seconds = 1.5 * (text_params + vision_params) / init_rate  # building = allocating + random init
    for bs in batches:
        attention = 2 * seq * seq * h * layers  # QK^T and AV over a causal half
        prefill = 2 * bs * (layers * layer_params * seq + attention + vision_params * patches)
        step = max(2 * bs * text_params / flops, text_params * bytes_per / bandwidth)
        runs = args.runs + (1 if args.warmup else 0)
        seconds += runs * (prefill / flops + args.new_tokens * step)
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", default="1,4,8", help="comma-separated, e.g. 1,4,8")
    p.add_argument("--new-tokens", type=int, default=None, help="forced new tokens (CPU 32, GPU 128)")
    p.add_argument("--image-size", type=int, default=448, help="square image side (448 -> 196 tokens)")
    p.add_argument("--prompt-tokens", type=int, default=600, help="text tokens in the prompt (ours is ~600)")
    p.add_argument("--dtype", default="auto", help="auto (as the app picks), bf16, fp16, fp32")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--runs", type=int, default=None, help="timed runs per batch size, median (3; CPU 1)")
    p.add_argument("--warmup", type=int, choices=[0, 1], default=None, help="untimed first run (GPU default)")
    p.add_argument("--arch", choices=["2b", "tiny"], default="2b", help="tiny: smoke-test this script")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)

    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    on_cpu = device == "cpu"
    args.new_tokens = args.new_tokens or (32 if on_cpu else 128)
    args.runs = args.runs or (1 if on_cpu else 3)
    args.warmup = (0 if on_cpu else 1) if args.warmup is None else args.warmup
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    arch = QWEN3_VL_2B if args.arch == "2b" else TINY
    dtype_name = str(dtype).removeprefix("torch.")

    where = f"{device} ({torch.cuda.get_device_name(device)})" if device.startswith("cuda") else device
    print(
        f"Qwen3-VL {args.arch}, random weights, on {where}, {dtype_name}, {torch.get_num_threads()} threads; "
        f"image {args.image_size}px, {args.prompt_tokens} prompt tokens, {args.new_tokens} new tokens, "
        f"runs {args.runs}, warmup {args.warmup}"
    )
    eta = estimate_seconds(arch, batches, args, dtype, device)
    print(f"rough estimate: {eta / 60:.1f} min in all (model build included)", flush=True)

    t0 = time.perf_counter()
    model = build_model(arch, device, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"built {n_params / 1e9:.2f} B parameters in {time.perf_counter() - t0:.1f} s", flush=True)

    header = (
        f"{'batch':>5} {'seq':>5} {'s/run':>8} {'prefill s':>9} {'images/s':>9} {'s/image':>8} "
        f"{'gen tok/s':>9} {'decode tok/s':>12}"
    )
    if device.startswith("cuda"):
        header += f" {'peak GiB':>8}"
    print(header, flush=True)
    for bs in batches:
        inputs = build_inputs(arch, bs, args.image_size, args.prompt_tokens, device, dtype)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        if args.warmup:
            run_once(model, inputs, min(args.new_tokens, 4), device)
        timings = [run_once(model, inputs, args.new_tokens, device) for _ in range(args.runs)]
        total = statistics.median(t.total_s for t in timings)
        prefill = statistics.median(t.prefill_s for t in timings)
        decode_s = max(total - prefill, 1e-9)
        row = (
            f"{bs:>5} {inputs['input_ids'].shape[1]:>5} {total:>8.2f} {prefill:>9.2f} {bs / total:>9.3f} "
            f"{total / bs:>8.2f} {bs * args.new_tokens / total:>9.2f} "
            f"{bs * (args.new_tokens - 1) / decode_s:>12.2f}"
        )
        if device.startswith("cuda"):
            row += f" {torch.cuda.max_memory_allocated(device) / 2**30:>8.1f}"
        print(row, flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

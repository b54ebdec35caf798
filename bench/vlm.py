"""Qwen3-VL-2B-Instruct architecture, random weights, no download: every engine side by side in one run.

Engines: PyTorch (transformers, the app's device and dtype) and OpenVINO GenAI's ContinuousBatchingPipeline at
INT4 and INT8 (the app's openvino engine). Same shapes and compute as the published model (values from
shared/models/qwen3-vl-2b-instruct.md); the text it generates is meaningless, so generation length is forced
(min_new_tokens = max_new_tokens) and every run does the same work: a prompt of about --prompt-tokens text
tokens around one --image-size^2 image (448 -> 196 visual tokens), identical for every photo of a batch.

Each engine runs in its own process (its peak RSS is its own). The OpenVINO rows need a checkpoint folder and
its export: the random model is saved with a small BPE tokenizer (its ids are a few hundred of the 151,936 the
embedding holds) and exported with bench/ov_export.py (`make export-env`), both cached under
.test-artifacts/bench-vlm/ (the 2B export takes ~10 GB RAM and 1.5 min, once). Prefill for OpenVINO is a run
with one new token; decode tok/s is the rest of a full run. "s/photo @300" projects a 300-token answer.

    python bench/vlm.py                                    # torch, ov-int4, ov-int8 at batch 1 and 4
    python bench/vlm.py --engines ov-int4 --batch-sizes 4 --new-tokens 128
    python bench/vlm.py --arch tiny                        # a seconds-long smoke run of the script itself
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
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


ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".test-artifacts" / "bench-vlm"
ENGINES = ("torch", "ov-int4", "ov-int8")
PROJECTED_TOKENS = 300


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def torch_rows(args: argparse.Namespace, arch: dict[str, Any], batches: list[int]) -> list[dict[str, Any]]:
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    if args.threads:
        torch.set_num_threads(args.threads)
    eta = estimate_seconds(arch, batches, args, dtype, device)
    log(f"torch: {device}, {str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads; "
        f"rough estimate {eta / 60:.1f} min")  # fmt: skip
    model = build_model(arch, device, dtype)
    rows = []
    for bs in batches:
        inputs = build_inputs(arch, bs, args.image_size, args.prompt_tokens, device, dtype)
        if args.warmup:
            run_once(model, inputs, min(args.new_tokens, 4), device)
        timings = [run_once(model, inputs, args.new_tokens, device) for _ in range(args.runs)]
        total = statistics.median(t.total_s for t in timings)
        prefill = statistics.median(t.prefill_s for t in timings)
        engine = f"torch {str(dtype).removeprefix('torch.')}" + (f" {device}" if device != "cpu" else "")
        rows.append(_row(engine, bs, int(inputs["input_ids"].shape[1]), prefill, total, args.new_tokens))
        if device.startswith("cuda"):
            rows[-1]["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return rows


def _row(engine: str, bs: int, seq: int, prefill: float, total: float, new_tokens: int) -> dict[str, Any]:
    decode = bs * (new_tokens - 1) / max(total - prefill, 1e-9)
    return {
        "engine": engine,
        "batch": bs,
        "seq": seq,
        "prefill_s": prefill,
        "decode_tok_s": decode,
        "s_per_photo": total / bs,
        "photos_per_hour": 3600 * bs / total,
        "s_per_photo_300": (prefill + bs * (PROJECTED_TOKENS - 1) / decode) / bs,
        "peak_rss_gib": peak_rss_gib(),
    }


def checkpoint_dir(arch_name: str, arch: dict[str, Any]) -> Path:
    """A random-weight checkpoint of `arch` with a small BPE tokenizer, processor, chat template (cached)."""
    folder = CACHE / f"qwen3-vl-{arch_name}-random"
    if (folder / ".complete").is_file():
        return folder
    sys.path.insert(0, str(ROOT / "tests"))
    from transformers import (
        GenerationConfig,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from ov_export import build_once
    from tiny_qwen import CHAT_TEMPLATE, SPECIAL_TOKENS, _build_tokenizer  # the tests' tokenizer recipe

    t0 = time.perf_counter()
    # another bench run may build it too: one builds (in a folder of its own), the other waits, then uses it
    with build_once(folder, ".complete") as tmp:
        if tmp is None:
            return folder
        tokenizer = _build_tokenizer(tmp)
        ids = {t: tokenizer.get_vocab()[t] for t in SPECIAL_TOKENS}  # type: ignore[attr-defined]
        text = {**arch["text"], "pad_token_id": ids["<|endoftext|>"]}
        config = Qwen3VLConfig(
            text_config=text,
            vision_config=arch["vision"],
            image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=True,
        )
        config.bos_token_id, config.eos_token_id = ids["<|endoftext|>"], ids["<|im_end|>"]
        torch.manual_seed(0)
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16).eval()
        model.generation_config = GenerationConfig(
            bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
            pad_token_id=ids["<|endoftext|>"], do_sample=False,
        )  # fmt: skip
        model.save_pretrained(tmp)
        del model
        image_processor = Qwen2VLImageProcessor(
            size={"shortest_edge": 64 * 32 * 32, "longest_edge": 1280 * 32 * 32},
            patch_size=16, temporal_patch_size=2, merge_size=2,
        )  # fmt: skip
        video_processor = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
        Qwen3VLProcessor(
            image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
            chat_template=CHAT_TEMPLATE,
        ).save_pretrained(tmp)  # fmt: skip
    log(f"saved the random {arch_name} checkpoint in {time.perf_counter() - t0:.0f} s")
    return folder


def exported(arch_name: str, arch: dict[str, Any], weights: str) -> Path:
    from ov_export import export_openvino

    src = checkpoint_dir(arch_name, arch)
    out = CACHE / f"qwen3-vl-{arch_name}-random-ov-{weights}"
    group = 16 if arch["text"]["hidden_size"] < 1024 else None  # the tiny model's rows are 64 wide
    seconds = export_openvino(src, out, weights, group)
    if seconds:
        log(f"exported {weights} in {seconds:.0f} s")
    return out


def ov_rows(
    args: argparse.Namespace, arch: dict[str, Any], batches: list[int], weights: str
) -> list[dict[str, Any]]:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    from smartalbum.vision.openvino_backend import kv_cache_gb, kv_value_bytes, release_weight_pages

    path = Path(args.ov_model) if weights == "model" else exported(args.arch, arch, weights)
    scheduler = ov_genai.SchedulerConfig()
    tokens = args.prompt_tokens + 512 + args.new_tokens
    # sized as the app sizes it
    scheduler.cache_size = kv_cache_gb(path, max(batches), tokens, kv_value_bytes("CPU", {}, path))
    scheduler.max_num_seqs = max(batches)
    scheduler.enable_prefix_caching = False  # identical photos: a cache would serve the prefill
    t0 = time.perf_counter()
    pipe = ov_genai.ContinuousBatchingPipeline(str(path), scheduler, "CPU")
    log(f"ov-{weights}: pipeline built in {time.perf_counter() - t0:.1f} s")
    tokenizer = pipe.get_tokenizer()
    # filler text of about --prompt-tokens tokens in this tokenizer, as system prompt and request
    rng = np.random.default_rng(0)
    vocab = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    n_vocab = len(vocab)
    ids = rng.integers(8, n_vocab, 4 * args.prompt_tokens)
    n = args.prompt_tokens
    for _ in range(3):  # decoded random ids re-encode to more tokens: scale to the target
        filler = tokenizer.decode([int(i) for i in ids[:n]])
        got = int(tokenizer.encode(filler).input_ids.get_shape()[1])
        n = max(1, min(len(ids), round(n * args.prompt_tokens / max(got, 1))))
    before = args.prompt_tokens // 4
    words = filler.split(" ")
    cut = max(1, len(words) * before // max(args.prompt_tokens, 1))
    system, request = " ".join(words[:cut]), " ".join(words[cut:])
    history = [
        {"role": "system", "content": system},
        {"role": "user", "content": "<ov_genai_image_0>" + request},
    ]
    image = rng.integers(0, 256, (1, args.image_size, args.image_size, 3), dtype=np.uint8)
    tensor = ov.Tensor(image)
    templated = tokenizer.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": request}],
        add_generation_prompt=True,
    )
    side = max(32, args.image_size // 32 * 32)
    seq = int(tokenizer.encode(templated).input_ids.get_shape()[1]) + (side // 32) ** 2 + 2

    def run(bs: int, new: int) -> float:
        config = pipe.get_config()
        config.do_sample, config.num_beams = False, 1
        config.max_new_tokens = config.min_new_tokens = new
        config.ignore_eos = True
        histories = [ov_genai.ChatHistory(history) for _ in range(bs)]
        start = time.perf_counter()
        out = pipe.generate(histories, images=[[tensor]] * bs, generation_config=[config] * bs)
        took = time.perf_counter() - start
        if len(out) != bs:
            raise RuntimeError(f"{len(out)} answers for {bs} photos")
        return took

    rows = []
    run(1, 2)  # first inference compiles kernels: not timed
    release_weight_pages(path)  # as the app does after its warm-up
    for bs in batches:
        prefill = statistics.median(run(bs, 1) for _ in range(args.runs))
        total = statistics.median(run(bs, args.new_tokens) for _ in range(args.runs))
        label = f"openvino {path.name}" if weights == "model" else f"openvino {weights}"
        rows.append(_row(label, bs, seq, prefill, total, args.new_tokens))
        log(f"{label} batch {bs}: prefill {prefill:.1f} s, {args.new_tokens} tokens {total:.1f} s")
    return rows


def _table_row(r: dict[str, Any]) -> str:
    return (
        f"| {r['engine']} | {r['batch']} | {r['prefill_s']:.2f} | {r['decode_tok_s']:.2f} | "
        f"{r['s_per_photo']:.2f} | {r['photos_per_hour']:.0f} | {r['peak_rss_gib']:.2f} | "
        f"{r['s_per_photo_300']:.1f} | {r['seq']} |"
    )


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def child(args: argparse.Namespace) -> int:
    arch = QWEN3_VL_2B if args.arch == "2b" else TINY
    batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if args.child == "torch":
        rows = torch_rows(args, arch, batches)
    else:
        rows = ov_rows(args, arch, batches, args.child.removeprefix("ov-"))
    for row in rows:
        print("ROW " + json.dumps(row), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    p.add_argument("--batch-sizes", default="1,4", help="comma-separated, e.g. 1,4,8")
    p.add_argument("--new-tokens", type=int, default=None, help="forced new tokens (CPU 32, GPU 128)")
    p.add_argument("--image-size", type=int, default=448, help="square image side (448 -> 196 tokens)")
    p.add_argument("--prompt-tokens", type=int, default=600, help="text tokens in the prompt (ours is ~600)")
    p.add_argument("--dtype", default="auto", help="torch: auto (as the app picks), bf16, fp16, fp32")
    p.add_argument("--device", default="auto", help="torch: auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--runs", type=int, default=None, help="timed runs per batch size, median (3; CPU 1)")
    p.add_argument("--warmup", type=int, choices=[0, 1], default=None, help="untimed first run (GPU default)")
    p.add_argument("--arch", choices=["2b", "tiny"], default="2b", help="tiny: smoke-test this script")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--ov-model", default=None, help="also time this OpenVINO export folder (engine ov-model)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    on_cpu = pick_device(args.device) == "cpu"
    args.new_tokens = args.new_tokens or (32 if on_cpu else 128)
    args.runs = args.runs or (1 if on_cpu else 3)
    args.warmup = (0 if on_cpu else 1) if args.warmup is None else args.warmup
    if args.child:
        return child(args)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.ov_model:
        engines.append("ov-model")
    unknown = set(engines) - {*ENGINES, "ov-model"}
    if unknown:
        p.error(f"unknown engines: {', '.join(sorted(unknown))}")

    print(
        f"Qwen3-VL {args.arch}, random weights; image {args.image_size}px, "
        f"~{args.prompt_tokens} prompt tokens, "
        f"{args.new_tokens} new tokens (forced), runs {args.runs}, {os.cpu_count()} CPUs; "
        f"s/photo @{PROJECTED_TOKENS} projects a {PROJECTED_TOKENS}-token answer",
        flush=True,
    )
    print("| engine | batch | prefill s | decode tok/s | s/photo | photos/hour | peak RSS GiB | "
          f"s/photo @{PROJECTED_TOKENS} | seq |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    t0 = time.perf_counter()
    passed = [a for a in (argv if argv is not None else sys.argv[1:])]
    for engine in engines:
        cmd = [sys.executable, str(Path(__file__).resolve()), *passed, "--engines", engine, "--child", engine]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:  # each row as soon as its engine has it
                if line.startswith("ROW "):
                    print(_table_row(json.loads(line[4:])), flush=True)
        if proc.returncode != 0:
            print(f"{engine} failed (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

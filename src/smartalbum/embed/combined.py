"""Several embedders as one vector space, so one FAISS inner-product index serves them all.

Documents: each part's unit vector scaled by 1/sqrt(k) and concatenated, so the inner product of two documents
is the mean of the parts' cosines (what "similar photos" uses). Queries: each part's unit vector scaled by its
weight, the whole normalised, so a query-document inner product is the weighted mean of the parts' cosines
times a constant (1 / (sqrt(k) * |w|)). Weights live on the query side only: changing them needs no re-index.

A part may rewrite query texts before embedding them (e.g. Chinese -> English dictionary glosses for an
English-only model); documents are embedded as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from smartalbum.embed.text import TextEmbedder, normalize_rows

QueryRewrite = Callable[[str], str]


class CombinedEmbedder:
    """Concatenation of `parts`; its name is the parts' names joined by '+' unless given."""

    def __init__(
        self,
        parts: Sequence[TextEmbedder],
        name: str | None = None,
        *,
        query_weights: Sequence[float] | None = None,
        query_rewrites: Sequence[QueryRewrite | None] | None = None,
    ) -> None:
        if len(parts) < 2:
            raise ValueError("a combined embedder needs at least two parts")
        self.parts = list(parts)
        self.name = name or "+".join(p.name for p in self.parts)
        self.query_weights = [float(w) for w in (query_weights or [1.0] * len(self.parts))]
        self.query_rewrites = list(query_rewrites or [None] * len(self.parts))
        if len(self.query_weights) != len(self.parts) or len(self.query_rewrites) != len(self.parts):
            raise ValueError("one query weight and one query rewrite (or None) per part")
        if min(self.query_weights) < 0 or max(self.query_weights) <= 0:
            raise ValueError("query weights must be >= 0, at least one > 0")

    def __repr__(self) -> str:
        return f"CombinedEmbedder({self.name!r})"

    @property
    def loaded(self) -> bool:
        return all(getattr(p, "loaded", True) for p in self.parts)

    def load(self) -> None:
        """Load every part now."""
        for p in self.parts:
            p.dim  # noqa: B018 - loads the part

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self.parts)

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        blocks = []
        for part, weight, rewrite in zip(self.parts, self.query_weights, self.query_rewrites, strict=True):
            inputs = [rewrite(t) for t in texts] if query and rewrite is not None else list(texts)
            block = normalize_rows(part.embed(inputs, query=query))
            if query:
                block *= np.float32(weight)
            blocks.append(block)
        # documents: unit blocks, so normalising scales each by 1/sqrt(k); queries: by weight / |weights|
        return normalize_rows(np.concatenate(blocks, axis=1))

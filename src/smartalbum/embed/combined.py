"""Several embedders as one: each part's unit vector scaled by 1/sqrt(k) and concatenated.

The result has unit norm, and the inner product of two combined vectors is the mean of the parts' cosines, so
one FAISS inner-product index over the combined vectors ranks by the average similarity of the models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from smartalbum.embed.text import TextEmbedder, normalize_rows


class CombinedEmbedder:
    """Concatenation of `parts`; its name is the parts' names joined by '+'."""

    def __init__(self, parts: Sequence[TextEmbedder], name: str | None = None) -> None:
        if len(parts) < 2:
            raise ValueError("a combined embedder needs at least two parts")
        self.parts = list(parts)
        self.name = name or "+".join(p.name for p in self.parts)
        self._scale = 1.0 / math.sqrt(len(self.parts))

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
        blocks = [normalize_rows(p.embed(texts, query=query)) for p in self.parts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.concatenate(blocks, axis=1)
        out *= np.float32(self._scale)
        # exact unit norm also for rows where a part gave a zero vector
        return normalize_rows(out)

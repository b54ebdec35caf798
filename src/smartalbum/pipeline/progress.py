"""Progress reporting and cancellation shared by every stage (CLI bars, web job status)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    """A stage's counters; `on_update` is called (from the pipeline thread) whenever they change."""

    stage: str = ""
    total: int = 0
    done: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)
    on_update: Callable[[Progress], None] | None = None
    detail: str = ""  # one line on how the stage is going, e.g. a queue's workers (queue/coordinator.py)

    def begin(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done, self.errors = stage, total, 0, 0
        self.detail = ""
        self.started = time.monotonic()
        self._emit()

    def describe(self, detail: str) -> None:
        if detail != self.detail:
            self.detail = detail
            self._emit()

    def advance(self, n: int = 1, errors: int = 0) -> None:
        self.done += n
        self.errors += errors
        self._emit()

    def finish(self) -> None:
        """Close a stage whose total was not known up front."""
        self.total = self.done
        self._emit()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 and self.total else None

    def _emit(self) -> None:
        if self.on_update:
            self.on_update(self)


class Cancelled(Exception):
    """Raised inside a stage when its cancel token is set; work already written stays written."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()

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
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    counted_from: int = 0  # `done` when the clock started: the rate counts only the work after it
    timed: bool = True  # False until start_clock() when begin(timed=False): no rate to tell yet

    def begin(self, stage: str, total: int, *, timed: bool = True) -> None:
        """Start a stage; with timed=False the rate and ETA wait for start_clock() (a stage whose first
        step loads a model would otherwise count the load as work time)."""
        self.stage, self.total, self.done, self.errors = stage, total, 0, 0
        self.detail = ""
        self.started, self.counted_from, self.timed = self.clock(), 0, timed
        self._emit()

    def start_clock(self) -> None:
        """Time the rate from now on, counting only the work done after this."""
        self.started, self.counted_from, self.timed = self.clock(), self.done, True

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
        """Items a second since the clock started; 0.0 while there is nothing to tell."""
        elapsed = self.clock() - self.started
        counted = self.done - self.counted_from
        return counted / elapsed if self.timed and elapsed > 0 and counted > 0 else 0.0

    @property
    def per_hour(self) -> float:
        return self.rate * 3600

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

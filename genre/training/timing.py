"""How the train loop times itself: each epoch's wall time and the part of it spent waiting for data."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any


class EpochClock:
    """Times one training epoch: the wall time, and the part of it spent waiting for the next batch."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.waiting = 0.0
        self._asked = self.started

    def asking(self) -> None:
        """The loop is about to wait for the loader."""
        self._asked = time.perf_counter()

    def received(self) -> None:
        """The loader delivered a batch."""
        self.waiting += time.perf_counter() - self._asked

    def perf(self, clips: int) -> dict[str, float]:
        """``perf/clips_per_second`` and ``perf/data_wait_fraction`` of the epoch so far."""
        seconds = max(time.perf_counter() - self.started, 1e-9)
        return {"perf/clips_per_second": clips / seconds, "perf/data_wait_fraction": min(self.waiting / seconds, 1.0)}


def timed(loader: Iterable[Any], clock: EpochClock) -> Iterator[Any]:
    """``loader``'s batches, with the time spent waiting for each one added to ``clock``."""
    iterator = iter(loader)
    while True:
        clock.asking()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        clock.received()
        yield batch

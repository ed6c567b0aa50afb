"""Per-layer progress of a native push: one line when a layer starts moving, one every few
seconds while it moves (bytes, rate), one when it is done (with layers done/total) — readable in a
pipeline log, never a line per block."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

INTERVAL_SECONDS = 5.0
MB = 1_000_000


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"


class PushProgress:
    def __init__(self, log: logging.Logger, total_layers: int, clock: Callable[[], float] = time.monotonic):
        self.log = log
        self.total = total_layers
        self.done = 0
        self.clock = clock
        self.lock = threading.Lock()

    def layer(self, name: str, size: int, verb: str) -> LayerProgress:
        return LayerProgress(self, name, size, verb)

    def finished(self, name: str, text: str) -> None:
        with self.lock:
            self.done += 1
            self.log.info("Layer %s %s (%d/%d layers done).", name, text, self.done, self.total)


class LayerProgress:
    """Counts the bytes of one layer's compression or upload; logs at most every INTERVAL_SECONDS."""

    def __init__(self, parent: PushProgress, name: str, size: int, verb: str):
        self.parent = parent
        self.name = name
        self.size = size
        self.verb = verb
        self.moved = 0
        self.started = parent.clock()
        self.last = self.started

    def __call__(self, count: int) -> None:
        self.moved += count
        now = self.parent.clock()
        if now - self.last >= INTERVAL_SECONDS and self.moved < self.size:
            self.last = now
            self.parent.log.info(
                "Layer %s: %s %s of %s (%s/s).",
                self.name,
                self.verb,
                megabytes(self.moved),
                megabytes(self.size),
                megabytes(int(self.moved / max(now - self.started, 1e-6))),
            )

    def rate(self) -> str:
        elapsed = max(self.parent.clock() - self.started, 1e-6)
        return f"{megabytes(self.moved)} in {elapsed:.1f} s ({megabytes(int(self.moved / elapsed))}/s)"

"""Progress of long transfers as a pipeline log should show it: sizes people read at a glance,
and byte counters that speak at most once per interval (never a line per block)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


def format_size(count: float) -> str:
    """`0 B`, `287 B`, `1.5 KB`, `37.0 MB`, `2.1 GB` (binary units, one decimal above bytes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class ByteMeter:
    """Counts the bytes of one transfer; `due()` says when the next periodic line may be written."""

    def __init__(self, total: int, interval: float, clock: Callable[[], float] = time.monotonic):
        self.total, self.interval, self.clock = total, interval, clock
        self.moved = 0
        self.started = self.last_report = clock()

    def add(self, count: int) -> bool:
        """Count `count` more bytes; True when a progress line is due (and the transfer not done)."""
        self.moved += count
        now = self.clock()
        if now - self.last_report >= self.interval and self.moved < self.total:
            self.last_report = now
            return True
        return False

    def speed(self) -> str:
        return f"{format_size(self.moved / max(self.clock() - self.started, 1e-6))}/s"

    def rate(self) -> str:
        """`12.0 MB in 1.5 s (8.0 MB/s)`: how the finished transfer went."""
        elapsed = max(self.clock() - self.started, 1e-6)
        return f"{format_size(self.moved)} in {elapsed:.1f} s ({self.speed()})"


# Per-layer lines of a native image push.
LAYER_INTERVAL_S = 5.0


class PushProgress:
    """One line every few seconds per moving layer, and one per finished layer with layers
    done/total. Layers move in parallel threads, hence the lock around the shared count."""

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


class LayerProgress(ByteMeter):
    """A layer's compression or upload, called with each block's size."""

    def __init__(self, parent: PushProgress, name: str, size: int, verb: str):
        super().__init__(size, LAYER_INTERVAL_S, parent.clock)
        self.parent, self.name, self.verb = parent, name, verb

    def __call__(self, count: int) -> None:
        if self.add(count):
            self.parent.log.info(
                "Layer %s: %s %s of %s (%s).",
                self.name,
                self.verb,
                format_size(self.moved),
                format_size(self.total),
                self.speed(),
            )


class ExportProgress(ByteMeter):
    """An image streaming out of the engine's export: a line every few seconds, against the
    engine's own idea of the image's size (the export adds tar headers, hence "about")."""

    def __init__(self, log: logging.Logger, size: int, clock: Callable[[], float] = time.monotonic):
        super().__init__(size, LAYER_INTERVAL_S, clock)
        self.log = log

    def __call__(self, count: int) -> None:
        if self.add(count):
            moved, total = format_size(self.moved), format_size(self.total)
            self.log.info("Exporting the image: %s of about %s (%s).", moved, total, self.speed())


# Upload progress lines only for bodies worth waiting for, and at most one per interval.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
PROGRESS_INTERVAL_S = 10.0


class UploadProgress(ByteMeter):
    """Periodic 'sent so far' lines for a long upload (npm's PUT): one line per interval, never a flood, and
    none at all for small bodies."""

    def __init__(
        self,
        total: int,
        log: logging.Logger,
        interval: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(total, interval, clock)
        self.log = log
        self.enabled = total >= PROGRESS_MIN_BYTES

    def advance(self, count: int) -> None:
        if self.add(count) and self.enabled:
            self.log.info("Uploading: %s", self.describe())

    def describe(self) -> str:
        percent = 100 * self.moved / self.total if self.total else 100
        return f"{format_size(self.moved)} of {format_size(self.total)} sent ({percent:.0f}%), {self.speed()}"

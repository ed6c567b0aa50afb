"""The link to the registry as a push sees it, and the gzip level chosen for it.

Level 6 (zlib's and docker's default) sends about a fifth fewer bytes than level 1 on text
layers and costs about three times the CPU. Layers are compressed in parallel while others
upload, so on a slow link (a pipeline's uplink through the internet: tens of Mbit/s, tens of ms
away) the bytes decide and level 6 is faster; on a fast one (the registry on the same host or
network) the CPU decides and level 1 is faster. The level is chosen once per push, when its
first layer is compressed, from what the push has measured by then:

- a registry answering within `NEAR_ANSWER` (the quickest answer so far) is on the same host or
  network: level 1, whatever an upload measured (a rate read on a loaded machine swings, and two
  pushes of one image to the same registry must get the same level and the same digests);
- a farther one gets level 1 only when the upload rate, measured on a megabyte or more that
  went up before (layers pushed as they are go first), is at or above `FAST_LINK`; else level 6,
  so a slow link never receives more bytes than docker would send it.

Once per push, not per layer: a rate measured on the first small uploads swings with the load of
the machine, and a level that changed halfway would give the same image other digests from one
run to the next. The same layer at the same level always gives the same bytes (see `compress`);
a layer compressed once is found again by its diff id and never compressed again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

FAST_LEVEL = 1
DEFAULT_LEVEL = 6
# Above this upload rate (bytes/s) level 6's extra CPU costs more time than its smaller layers
# save: two cores deflate text at level 6 at ~2 × 30 MB/s to ~27 % of its size, so the link is the
# bottleneck below ~16 MB/s of compressed bytes.
FAST_LINK = 16 << 20
# A registry this quick to answer (seconds, a small request's whole exchange, the quickest so far) is
# near: the same host or network even on a loaded machine; a shaped or internet link is farther. A
# fresh push has one answer by its first layer (the tag list): a loopback registry checking a bcrypt
# password gave it in ~4 ms, at worst ~20 ms under a load of 6 on 2 cores.
NEAR_ANSWER = 0.025
# Bytes uploaded before the rate is trusted over the answer time.
MEASURED_BYTES = 1 << 20


class LinkMeter:
    """The upload rate of one push: bytes sent over the time any upload was running (parallel
    uploads share the link, so their bytes add up against the same clock)."""

    def __init__(self, fastest_answer: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.fastest_answer = fastest_answer
        self.clock = clock
        self.sent = 0
        self.busy = 0.0
        self.active = 0
        self.since = 0.0
        self.chosen: int | None = None
        self.lock = threading.Lock()

    def started(self) -> None:
        with self.lock:
            if self.active == 0:
                self.since = self.clock()
            self.active += 1

    def finished(self) -> None:
        with self.lock:
            self.active -= 1
            if self.active == 0:
                self.busy += self.clock() - self.since

    def count(self, sent: int) -> None:
        with self.lock:
            self.sent += sent

    def rate(self) -> float | None:
        """Bytes per second so far, or None before enough has gone up to tell."""
        with self.lock:
            busy = self.busy + (self.clock() - self.since if self.active else 0.0)
            if self.sent < MEASURED_BYTES or busy <= 0:
                return None
            return self.sent / busy

    def level(self) -> int:
        """The push's gzip level, chosen at the first call from what is known by then."""
        with self.lock:
            if self.chosen is not None:
                return self.chosen
        rate = self.rate()
        near = self.fastest_answer is not None and self.fastest_answer < NEAR_ANSWER
        level = FAST_LEVEL if near or (rate is not None and rate >= FAST_LINK) else DEFAULT_LEVEL
        with self.lock:
            if self.chosen is None:
                self.chosen = level
            return self.chosen

    def counting(self, on_read: Callable[[int], None] | None) -> Callable[[int], None]:
        """`on_read` (a progress meter) that also counts the bytes for the rate."""

        def both(count: int) -> None:
            self.count(count)
            if on_read is not None:
                on_read(count)

        return both

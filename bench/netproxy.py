"""A shaping TCP proxy for the network benchmark: loopback made to behave like a real network.

Between a client and one upstream server (a sandbox registry) it adds, per profile:
- a one-way delay in each direction (every byte arrives `delay_ms` after it was sent);
- a bandwidth cap per direction, shared by every connection through the proxy (one link, as a
  Pipelines step has one path to the registry), bytes leaving in the order they were sent;
- set-up round trips charged to every new connection before its first byte goes through (two
  stand for TCP's handshake plus TLS's, which loopback plain HTTP does not have).

It also counts what each client did: connections, HTTP requests (parsed from the client's
stream, bodies and chunked encoding skipped), bytes each way, and when the first request came.
Buffers are bounded, so a fast sender is held back the way TCP flow control holds it back.

Unlike tests/faults/proxy.py (an HTTP proxy that answers with faults), this one never reads
requests to change them: it forwards bytes, only later and slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

READ_SIZE = 64 * 1024
QUEUED_CHUNKS = 64  # per direction and connection: ~4 MB at most in flight, above any BDP here
MAX_HEAD = 64 * 1024  # a request head longer than this means the stream is not HTTP
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS ClientHello record


@dataclass(frozen=True)
class Profile:
    name: str
    delay_ms: float = 0.0  # one way, each direction
    mbit: float | None = None  # per direction, shared by every connection; None: no cap
    setup_rtts: int = 0  # round trips a new connection waits before its first byte goes through

    @property
    def delay(self) -> float:
        return self.delay_ms / 1000

    @property
    def rate(self) -> float | None:
        """Bytes per second, or None."""
        return self.mbit * 1e6 / 8 if self.mbit else None

    def describe(self) -> str:
        if not self.delay_ms and not self.mbit:
            return "direct (through the proxy, not shaped)"
        cap = f"{self.mbit:g} Mbit/s per direction" if self.mbit else "no bandwidth cap"
        return f"{self.delay_ms:g} ms each way, {cap}, {self.setup_rtts} round trips per new connection"


PROFILES = {
    "direct": Profile("direct"),
    "25ms": Profile("25ms", delay_ms=25, mbit=100, setup_rtts=2),
    "50ms": Profile("50ms", delay_ms=50, mbit=20, setup_rtts=2),
}


@dataclass
class Counts:
    connections: int = 0
    tls_probes: int = 0  # connections that opened with a TLS handshake, closed uncharged (see below)
    requests: int = 0
    bytes_up: int = 0  # client to server
    bytes_down: int = 0
    first_request_at: float | None = None  # time.monotonic() when the first request's first byte came


class Link:
    """One direction of the shaped link. `arrival(size)` books `size` bytes on it: they leave once
    the bytes booked before them have (at the capped rate) and arrive `delay` later."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.free_at = 0.0

    def arrival(self, size: int, now: float) -> float:
        departure = now
        if self.profile.rate:
            departure = max(now, self.free_at) + size / self.profile.rate
            self.free_at = departure
        return departure + self.profile.delay


class RequestCounter:
    """Counts HTTP/1.1 requests in a client's byte stream: heads, then bodies by Content-Length or
    chunked encoding, skipped without being kept."""

    def __init__(self) -> None:
        self.pending = b""
        self.state = "head"
        self.left = 0
        self.in_head = False

    def feed(self, data: bytes) -> int:
        """The number of requests that started in `data`."""
        self.pending += data
        started = 0
        while self.pending:
            if self.state == "head":
                if not self.in_head:
                    self.pending = self.pending.lstrip(b"\r\n")
                    if not self.pending:
                        break
                    self.in_head, started = True, started + 1
                if not self._head():
                    break
            elif self.state in ("body", "chunk-data"):
                taken = min(self.left, len(self.pending))
                self.pending, self.left = self.pending[taken:], self.left - taken
                if not self.left:
                    self.state = "head" if self.state == "body" else "chunk-size"
            elif not self._line():
                break
        return started

    def _head(self) -> bool:
        end = self.pending.find(b"\r\n\r\n")
        if end < 0:
            if len(self.pending) > MAX_HEAD:  # not HTTP after all: stop looking, count nothing more
                self.state, self.left, self.pending = "body", 1 << 62, b""
            return False
        head, self.pending, self.in_head = self.pending[:end].lower(), self.pending[end + 4 :], False
        headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        length = int(headers.get(b"content-length", b"0").strip() or 0)
        if b"chunked" in headers.get(b"transfer-encoding", b""):
            self.state = "chunk-size"
        elif length:
            self.state, self.left = "body", length
        return True

    def _line(self) -> bool:
        """A chunk-size line, or a trailer line after the last chunk."""
        end = self.pending.find(b"\r\n")
        if end < 0:
            return False
        line, self.pending = self.pending[:end], self.pending[end + 2 :]
        if self.state == "chunk-size":
            size = int(line.split(b";")[0].strip() or b"0", 16)
            self.state, self.left = ("trailer", 0) if size == 0 else ("chunk-data", size + 2)
        elif not line:  # the empty line that ends the trailers
            self.state = "head"
        return True


@dataclass
class ShapingProxy:
    """127.0.0.1:<port> → upstream, shaped by `profile`; runs its own event loop in a thread."""

    upstream_host: str
    upstream_port: int
    profile: Profile
    counts: Counts = field(default_factory=Counts)
    port: int = 0

    def start(self) -> ShapingProxy:
        self.up, self.down = Link(self.profile), Link(self.profile)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True, name="shaping-proxy")
        self.thread.start()
        ready.wait(10)
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> Counts:
        """The counts so far; the next ones start from zero."""
        counts, self.counts = self.counts, Counts()
        return counts

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()
        server.close()
        while tasks := asyncio.all_tasks(self.loop):  # cancelling one may start another (a delivery)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    async def _connection(self, client_reader, client_writer) -> None:
        try:
            await self._relay(client_reader, client_writer)
        except asyncio.CancelledError:  # the proxy is closing: end quietly, the clients are done
            client_writer.close()

    async def _relay(self, client_reader, client_writer) -> None:
        accepted = self.loop.time()
        first = await client_reader.read(READ_SIZE)
        first_at = time.monotonic()
        if first[:1] == TLS_HANDSHAKE:
            # docker and skopeo try https first on an insecure registry and fall back to plain
            # http; a real registry would speak TLS on that very connection, which the set-up
            # round trips already stand for. So the probe is refused at once and not charged.
            self.counts.tls_probes += 1
            client_writer.close()
            return
        self.counts.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_writer.close()
            return
        setup = self.profile.setup_rtts * 2 * self.profile.delay
        await asyncio.sleep(max(0.0, accepted + setup - self.loop.time()))
        counter = RequestCounter()
        await asyncio.gather(
            self._pump(client_reader, upstream_writer, self.up, counter, first, first_at),
            self._pump(upstream_reader, client_writer, self.down, None),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            writer.close()

    async def _pump(
        self, reader, writer, link: Link, counter: RequestCounter | None, first: bytes = b"", first_at: float = 0.0
    ) -> None:
        """Read as the sender sends, book each chunk on the link, deliver it at its arrival time.
        `first` is what the client sent while the connection was being set up (at `first_at`)."""
        queue: asyncio.Queue = asyncio.Queue(QUEUED_CHUNKS)
        delivery = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            if first:
                self._count(first, counter, first_at)
                await queue.put((link.arrival(len(first), self.loop.time()), first))
            while data := await reader.read(READ_SIZE):
                now = self.loop.time()
                self._count(data, counter, time.monotonic())
                await queue.put((link.arrival(len(data), now), data))
        except OSError:
            pass
        finally:
            await queue.put(None)
            await delivery

    def _count(self, data: bytes, counter: RequestCounter | None, at: float) -> None:
        if counter is None:
            self.counts.bytes_down += len(data)
            return
        self.counts.bytes_up += len(data)
        started = counter.feed(data)
        if started and self.counts.first_request_at is None:
            self.counts.first_request_at = at
        self.counts.requests += started

    async def _deliver(self, queue: asyncio.Queue, writer) -> None:
        broken = False
        while (item := await queue.get()) is not None:
            arrival, data = item
            if broken:
                continue  # the receiver is gone: drain the queue so the reader side can finish
            await asyncio.sleep(max(0.0, arrival - self.loop.time()))
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                broken = True
        with contextlib.suppress(OSError, RuntimeError):
            if not broken and writer.can_write_eof():
                writer.write_eof()

"""A fault-injecting reverse proxy for the test bench: it sits on 127.0.0.1:<free port> in front of
one real registry and, on a seeded schedule, answers for the registry with 500/502/503/429
(`Retry-After`), resets the connection in the middle of a body, stalls, or truncates an answer.

Faults that happen *before* forwarding (statuses, a reset while the request body is still being
read) leave the registry untouched; faults *after* forwarding (reset mid-response, truncated
response) are the nasty ones: the registry did the write, the client cannot know it.

Every request is forwarded on a fresh connection with its `Host` header unchanged, so registries
that build absolute URLs from it (the OCI upload `Location`, npm tarball URLs) keep pointing at
the proxy. Only loopback upstreams are accepted.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Each fault kind, and whether the registry sees the request.
FAULTS_BEFORE = ("500", "502", "503", "429", "reset-request")
FAULTS_AFTER = ("reset-response", "truncate", "stall")
ALL_FAULTS = FAULTS_BEFORE + FAULTS_AFTER
# How often each kind is drawn: the slow ones (a 1 s Retry-After, a stall) less often, so that
# hundreds of faulted publishes fit in minutes; every kind still occurs many times per suite.
WEIGHTS = {"500": 3, "502": 3, "503": 3, "429": 1, "reset-request": 3, "reset-response": 3, "truncate": 3, "stall": 1}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
STALL_SECONDS = 0.5  # bounded: slow, never hung
RETRY_AFTER_SECONDS = 1
UPSTREAM_TIMEOUT = 120


@dataclass
class FaultSchedule:
    """Which request gets which fault: a seeded random draw per request, so a run is repeatable
    in its mix (thread interleaving may reorder which request draws which number)."""

    seed: int
    rate: float = 0.0
    kinds: tuple[str, ...] = ALL_FAULTS
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - a repeatable schedule, not a secret

    def next_fault(self) -> str | None:
        with self._lock:
            if self.rate <= 0 or self._random.random() >= self.rate:
                return None
            return self._random.choices(self.kinds, weights=[WEIGHTS.get(k, 1) for k in self.kinds])[0]


@dataclass
class CutOff:
    """A run interrupted at request number `at` (1-based): earlier requests pass, that one meets
    `kind` (e.g. `reset-response`: the registry did it, the client never hears), and every later
    one a 503 that the registry never sees, as when the network or the step goes away there."""

    at: int
    kind: str = "reset-response"
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_fault(self) -> str | None:
        with self._lock:
            self.seen += 1
            number = self.seen
        if number < self.at:
            return None
        return self.kind if number == self.at else "503"


class FaultProxy:
    """Start with `with FaultProxy(upstream, schedule) as proxy:`; `proxy.url` is the address to use."""

    def __init__(self, upstream: str, schedule: FaultSchedule | None = None):
        parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fault proxy only fronts loopback registries, not {parts.hostname}")
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.upstream_path = parts.path
        self.schedule: FaultSchedule | CutOff = schedule or FaultSchedule(seed=0)
        self.injected: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()  # every request seen, by method
        self.requests = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        # A short poll interval: shutdown() waits for it, and suites start hundreds of proxies.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The upstream URL with the proxy's address (same path, e.g. `/maven/`)."""
        return f"http://{self.netloc}{self.upstream_path}"

    @property
    def faults(self) -> int:
        return sum(self.injected.values())

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    @property
    def writes(self) -> int:
        """Requests that could change the registry."""
        return sum(self.methods[m] for m in ("PUT", "POST", "PATCH", "DELETE"))

    def draw(self, method: str) -> str | None:
        fault = self.schedule.next_fault()
        with self._lock:
            self.requests += 1
            self.methods[method] += 1
            if fault:
                self.injected[fault] += 1
        return fault

    def _handler_class(self):
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass  # quiet: the tests report counts, not request lines

    def _any(self) -> None:
        fault = self.owner.draw(self.command)
        if fault in ("500", "502", "503", "429"):
            self._drain_body()
            self._answer_status(int(fault))
            return
        if fault == "reset-request":
            # Read part of the body (if any), then reset: the registry never hears of it.
            self.rfile.read1(1024) if self._has_body() else None
            self._reset()
            return
        body = self._read_body()
        if fault == "stall":
            time.sleep(STALL_SECONDS)
        try:
            status, reason, headers, payload = self._forward(body)
        except OSError:
            self._answer_status(502)
            return
        if fault == "reset-response":
            self._send_head(status, reason, headers, len(payload))
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self._reset()
        elif fault == "truncate":
            self._send_head(status, reason, headers, len(payload))
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self._send_head(status, reason, headers, len(payload))
            self.wfile.write(payload)
            self.wfile.flush()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _any

    # -- request side -------------------------------------------------------------------------

    def _has_body(self) -> bool:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        return chunked or int(self.headers.get("Content-Length") or 0) > 0

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _drain_body(self) -> None:
        self._read_body()

    # -- upstream -----------------------------------------------------------------------------

    def _forward(self, body: bytes | None):
        owner = self.owner
        connection = http.client.HTTPConnection(owner.upstream_host, owner.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    connection.putheader(name, value)
            if body is not None or self.command in ("PUT", "POST", "PATCH"):
                connection.putheader("Content-Length", str(len(body or b"")))
            connection.endheaders(body or None)
            response = connection.getresponse()
            payload = response.read() if self.command != "HEAD" else b""
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            if self.command == "HEAD":
                # Keep the registry's Content-Length for HEAD: it describes the resource.
                return response.status, response.reason, headers, payload
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            return response.status, response.reason, headers, payload
        finally:
            connection.close()

    # -- response side ------------------------------------------------------------------------

    def _send_head(self, status: int, reason: str, headers: list[tuple[str, str]], length: int) -> None:
        self.send_response_only(status, reason)
        upstream = f"{self.owner.upstream_host}:{self.owner.upstream_port}"
        for name, value in headers:
            if name.lower() == "location":
                value = value.replace(upstream, self.owner.netloc)
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _answer_status(self, status: int) -> None:
        body = b'{"error":"injected fault"}'
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        if status == 429:
            self.send_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _reset(self) -> None:
        """Close with RST rather than FIN: the peer sees 'connection reset by peer'."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # shutdown() acts at once, whatever file objects still refer to the socket.
            self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

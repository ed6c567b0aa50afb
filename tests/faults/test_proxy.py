"""The fault proxy itself, in front of a tiny loopback upstream: each fault kind does to a client
what it claims, and the schedule is repeatable for a seed."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.faults.proxy import ALL_FAULTS, STALL_SECONDS, FaultProxy, FaultSchedule


class Fixed(FaultSchedule):
    def __init__(self, kind: str | None):
        super().__init__(seed=0)
        self.kind = kind

    def next_fault(self) -> str | None:
        return self.kind


@pytest.fixture(scope="module")
def upstream():
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.append(f"{self.command} {len(body)}")
            payload = b"x" * 4096
            self.send_response(201 if self.command in ("PUT", "POST") else 200)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/next")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    server.shutdown()
    server.server_close()


EXPECTED = {
    "500": 500,
    "502": 502,
    "503": 503,
    "429": 429,
    "reset-request": requests.ConnectionError,
    "reset-response": requests.exceptions.ChunkedEncodingError,
    "truncate": requests.exceptions.ChunkedEncodingError,
    "stall": 201,
}


@pytest.mark.parametrize("kind", ALL_FAULTS)
@pytest.mark.parametrize("body", [b"", b"y" * 5000])
def test_each_fault_does_what_it_says(upstream, kind: str, body: bytes):
    url, seen = upstream
    seen.clear()
    with FaultProxy(url, Fixed(kind)) as proxy:
        started = time.monotonic()
        expected = EXPECTED[kind]
        if isinstance(expected, int):
            response = requests.post(proxy.url + "x", data=body, timeout=10)
            assert response.status_code == expected
            if kind == "429":
                assert response.headers["Retry-After"] == "1"
        else:
            with pytest.raises(expected):
                requests.post(proxy.url + "x", data=body, timeout=10)
        elapsed = time.monotonic() - started
    # Faults before forwarding leave the upstream untouched; the others reach it.
    assert bool(seen) is (kind in ("reset-response", "truncate", "stall"))
    assert proxy.injected[kind] == 1 and proxy.writes == 1
    assert (elapsed >= STALL_SECONDS) is (kind == "stall")


def test_no_fault_forwards_and_points_locations_at_the_proxy(upstream):
    url, _ = upstream
    with FaultProxy(url, Fixed(None)) as proxy:
        response = requests.put(proxy.url + "x", data=b"abc", timeout=10)
    assert response.status_code == 201 and len(response.content) == 4096
    assert response.headers["Location"] == f"{proxy.url}next"


def test_the_schedule_is_repeatable_for_a_seed():
    first, second = FaultSchedule(seed=7, rate=0.5), FaultSchedule(seed=7, rate=0.5)
    drawn = [first.next_fault() for _ in range(50)]
    assert drawn == [second.next_fault() for _ in range(50)]
    assert None in drawn and set(drawn) - {None}  # some requests faulted, some not


def test_only_loopback_upstreams():
    with pytest.raises(ValueError, match="only fronts loopback"):
        FaultProxy("http://registry.example.com/")


def test_a_cut_off_passes_earlier_requests_and_fails_every_later_one(upstream):
    from tests.faults.proxy import CutOff

    base, seen = upstream
    with FaultProxy(base, CutOff(at=3, kind="500")) as proxy:
        statuses = [requests.get(f"{proxy.url}x", timeout=10).status_code for _ in range(5)]
    assert statuses == [200, 200, 500, 503, 503]

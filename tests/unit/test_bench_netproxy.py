"""The network benchmark's proxy: its request count and its link model (the timing itself is
checked against the settings by bench/netcheck.py before every benchmark profile)."""

from __future__ import annotations

import pytest

from bench.netproxy import Link, Profile, RequestCounter

GET = b"GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n"
PUT = b"PUT /v2/x/blobs/uploads/1?digest=d HTTP/1.1\r\nHost: r\r\nContent-Length: 11\r\n\r\nGET / HTTP/"
CHUNKED = (
    b"PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nGET /\r\n10;ext=1\r\nPUT / HTTP/1.1\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n"
)


@pytest.mark.parametrize("piece", [1, 3, 7, 4096])
def test_requests_are_counted_whatever_the_chunks_and_bodies_that_look_like_requests(piece):
    stream = GET + PUT + CHUNKED + GET
    counter = RequestCounter()
    started = sum(counter.feed(stream[i : i + piece]) for i in range(0, len(stream), piece))
    assert started == 4
    assert counter.state == "head" and counter.pending == b""


def test_a_stream_that_is_not_http_stops_being_counted():
    counter = RequestCounter()
    assert counter.feed(b"\0" * 70_000) == 1
    assert counter.feed(GET) == 0


def test_the_link_sends_in_order_at_its_rate_and_adds_the_delay():
    link = Link(Profile("t", delay_ms=25, mbit=8))  # 1 MB/s
    assert link.arrival(500_000, now=10.0) == pytest.approx(10.525)
    assert link.arrival(500_000, now=10.1) == pytest.approx(11.025)  # queued behind the first
    assert link.arrival(1000, now=20.0) == pytest.approx(20.026)  # the link was idle meanwhile
    assert Link(Profile("direct")).arrival(10**9, now=1.0) == 1.0

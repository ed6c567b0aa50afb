"""The shaping proxy measured against its own settings, before a benchmark trusts it.

A small TCP server on loopback answers three requests through the proxy: `PING` (one byte
back), `UP n` (n bytes sent, one byte back once all arrived) and `DOWN n` (n bytes back). From
them: the first answer on a new connection (set-up round trips plus one), the round trip on an
open one, and the rate each way. Each must be within 10 % of what the profile says.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time

from bench.netproxy import Profile, ShapingProxy

TOLERANCE = 0.10
TRANSFER_SECONDS = 1.0  # long enough for the rate to dominate the round trip


class Answering(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        stream = self.request.makefile("rb")
        while line := stream.readline():
            command, _, size = line.decode().strip().partition(" ")
            if command == "UP":
                left = int(size)
                while left:
                    left -= len(stream.read1(min(left, 65536)))
                self.request.sendall(b"k")
            elif command == "DOWN":
                self.request.sendall(b"\0" * int(size))
            else:
                self.request.sendall(b"k")


def receive(connection: socket.socket, size: int) -> None:
    while size:
        chunk = connection.recv(min(size, 65536))
        if not chunk:
            raise SystemExit("the proxy closed the connection during its own check")
        size -= len(chunk)


def timed(connection: socket.socket, request: bytes, answer: int) -> float:
    started = time.monotonic()
    connection.sendall(request)
    receive(connection, answer)
    return time.monotonic() - started


def measurements(profile: Profile, address: tuple[str, int]) -> list[tuple[str, float, float]]:
    """(what, measured, expected) for each check the profile calls for."""
    rtt = 2 * profile.delay
    started = time.monotonic()
    with socket.create_connection(address) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(b"PING\n")
        receive(connection, 1)
        checks = [("first answer on a new connection, s", time.monotonic() - started, (profile.setup_rtts + 1) * rtt)]
        checks.append(("round trip, s", timed(connection, b"PING\n", 1), rtt))
        if profile.rate:
            size = int(profile.rate * TRANSFER_SECONDS)
            up = timed(connection, f"UP {size}\n".encode() + b"\0" * size, 1)
            down = timed(connection, f"DOWN {size}\n".encode(), size)
            checks.append(("rate up, Mbit/s", size * 8 / 1e6 / (up - rtt), profile.mbit))
            checks.append(("rate down, Mbit/s", size * 8 / 1e6 / (down - rtt), profile.mbit))
    return checks


def validate(profile: Profile) -> list[str]:
    """Lines describing the checks; SystemExit when one is off by more than 10 %."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Answering)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = ShapingProxy("127.0.0.1", server.server_address[1], profile).start()
    try:
        checks = measurements(profile, ("127.0.0.1", proxy.port))
    finally:
        proxy.close()
        server.shutdown()
        server.server_close()
    lines = [f"proxy check, {profile.describe()}:"]
    failed = []
    for what, measured, expected in checks:
        off = abs(measured - expected) / expected if expected else 0.0
        lines.append(f"  {what}: {measured:.3f} (set {expected:.3f}, off {off:.0%})")
        if expected and off > TOLERANCE:
            failed.append(what)
    if failed:
        raise SystemExit("\n".join(lines) + f"\nthe proxy is off its settings by more than 10 %: {', '.join(failed)}")
    return lines

"""The one fake HTTP seam of the unit tests: a transport adapter mounted on the pipe's real session.

As with httpx's mock transport, nothing of the pipe is patched: a test builds its `Config` with
`transport=<a FakeTransport>` (or passes `transport=` to `pipe.http.new_session`), and every
client the pipe makes sends its requests here instead of the network. The session's retries,
timeouts, auth and redirects all run for real above it.

A fake registry subclasses `FakeTransport` and implements `handle`; scripted failures
(`fail_next`) and the record of requests (`calls`, `requests`) are common to all of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter


@dataclass
class Sent:
    """One request as the fake received it (the body read whole)."""

    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def path_and_query(self) -> str:
        query = urlsplit(self.url).query
        return self.path + (f"?{query}" if query else "")

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class ScriptedFailure:
    method: str
    path_pattern: str
    status: int | None  # None: raise `error` instead of answering
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | dict = b""
    error: BaseException | None = None
    times: int = 1


class FakeTransport(BaseAdapter):
    """A transport adapter that answers in memory. Subclasses implement `handle(sent)`; the base
    records every request and plays scripted failures first."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Sent] = []
        self.failures: list[ScriptedFailure] = []

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path?query) of every request, in order."""
        return [(sent.method, sent.path_and_query) for sent in self.requests]

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int | None = 503,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | dict = b"",
        error: BaseException | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests of `method` whose path matches `path_pattern` (a regex) get
        `status` (or raise `error`, e.g. `requests.ConnectionError`) before `handle` sees them."""
        self.failures.append(ScriptedFailure(method, path_pattern, status, headers or {}, body, error, times))

    # --- the transport ------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        sent = self.received(request)
        self.requests.append(sent)
        failure = self.scripted(sent)
        if failure is not None:
            if failure.error is not None:
                raise failure.error
            return self.answer(request, failure.status or 500, failure.body, failure.headers)
        return self.handle_request(request, sent)

    def handle_request(self, request: requests.PreparedRequest, sent: Sent) -> requests.Response:
        status, body, headers = self.handle(sent)
        return self.answer(request, status, body, headers)

    def handle(self, sent: Sent) -> tuple[int, bytes | dict | list | str, dict[str, str]]:
        """(status, body, headers) for one request. A dict/list body is sent as JSON."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def received(request: requests.PreparedRequest) -> Sent:
        body = request.body
        data = _read_all(body) if hasattr(body, "read") else body
        if data is not None and not isinstance(data, (bytes, bytearray, str)):
            data = b"".join(part.encode() if isinstance(part, str) else bytes(part) for part in data)
        data = data.encode() if isinstance(data, str) else bytes(data or b"")
        parts = urlsplit(request.url)
        return Sent(
            method=request.method or "",
            url=request.url or "",
            path=parts.path,
            query=parse_qs(parts.query),
            headers=dict(request.headers),
            body=data,
        )

    def scripted(self, sent: Sent) -> ScriptedFailure | None:
        for failure in self.failures:
            if failure.method == sent.method and re.search(failure.path_pattern, sent.path):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    @staticmethod
    def answer(
        request: requests.PreparedRequest,
        status: int,
        body: bytes | dict | list | str = b"",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        if isinstance(body, (dict, list)):
            content = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        else:
            content = body.encode() if isinstance(body, str) else body
        response._content = content
        # The body is all here: a streamed read (`iter_content`) and `close()` need no raw socket.
        response._content_consumed = True
        response.headers.update(headers or {})
        response.url = request.url
        response.request = request
        response.reason = requests.status_codes._codes.get(status, ("",))[0].upper()
        return response


def _read_all(stream: object) -> bytes:
    """A streamed body read to its end, as http.client reads it: a stream's `read` may return
    less than asked (the npm publish body hands out one encoded piece at a time)."""
    pieces = []
    while piece := stream.read(64 * 1024):  # type: ignore[attr-defined]
        pieces.append(piece.encode() if isinstance(piece, str) else piece)
    return b"".join(pieces)


class ScriptedTransport(FakeTransport):
    """Answers each request with the next outcome of a script: a status, (status, headers),
    (status, headers, body), or an exception to raise."""

    def __init__(self, script: list) -> None:
        super().__init__()
        self.script = list(script)

    def handle_request(self, request: requests.PreparedRequest, sent: Sent) -> requests.Response:
        outcome = self.script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        if not isinstance(outcome, tuple):
            outcome = (outcome,)
        status = outcome[0]
        headers = outcome[1] if len(outcome) > 1 else {}
        body = outcome[2] if len(outcome) > 2 else b"{}"
        return self.answer(request, status, body, headers)

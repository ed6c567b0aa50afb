"""A scripted npm registry for the unit tests, on the one HTTP seam (`tests/fakehttp.py`)."""

from __future__ import annotations

import json

import requests

from tests.fakehttp import FakeTransport, Sent


class ScriptedNpmRegistry(FakeTransport):
    """Answers from a script of (method, url) → answers in order, the last one repeating. An
    answer is (status, JSON body or bytes) or an exception to raise (a broken connection)."""

    def __init__(self, script: dict[tuple[str, str], list]):
        super().__init__()
        self.script = script

    def handle_request(self, request: requests.PreparedRequest, sent: Sent) -> requests.Response:
        queue = self.script.get((sent.method, sent.url))
        assert queue, f"unexpected {sent.method} {sent.url}"
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, BaseException):
            raise outcome
        status, payload = outcome
        return self.answer(request, status, payload if payload is not None else b"")

    @property
    def methods(self) -> list[str]:
        return [sent.method for sent in self.requests]

    @property
    def urls(self) -> list[tuple[str, str]]:
        return [(sent.method, sent.url) for sent in self.requests]

    def puts(self) -> list[Sent]:
        return [sent for sent in self.requests if sent.method == "PUT"]

    def put_json(self, index: int = 0) -> dict:
        return json.loads(self.puts()[index].body)

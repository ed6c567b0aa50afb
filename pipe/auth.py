"""Credentials: the Pipelines-provided pair or an Atlassian account email + API token.

Both are plain user + secret on the wire (HTTP Basic, or Basic to a token endpoint), so one
type serves every registry. The secret never appears in `repr` or `str`. Basic is encoded as
UTF-8 everywhere, as RFC 7617 and `docker` do: a token with a non-ASCII character (config admits
those up to U+00FF) reaches the registry and its token endpoint as the same bytes, where requests'
own `(user, token)` pair would send latin-1 to the token endpoint alone.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    username: str
    token: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, token=<hidden>)"

    __str__ = __repr__

    @property
    def basic_token(self) -> str:
        """base64(`user:token`), the value of an `Authorization: Basic` header."""
        return base64.b64encode(f"{self.username}:{self.token}".encode()).decode("ascii")

    @property
    def basic_header(self) -> str:
        return f"Basic {self.basic_token}"

    def as_requests_auth(self) -> BasicAuth:
        """The credentials as a session's `auth`: Basic, encoded as UTF-8 (RFC 7617), where
        requests' own `(user, token)` pair encodes as latin-1 and fails on any other character."""
        return BasicAuth(self)


class BasicAuth:
    """A requests auth hook (any callable taking the prepared request) that sets the Basic header."""

    def __init__(self, credentials: Credentials):
        self.credentials = credentials

    def __call__(self, request):
        request.headers["Authorization"] = self.credentials.basic_header
        return request

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BasicAuth) and other.credentials == self.credentials

    def __hash__(self) -> int:
        return hash(self.credentials)

    def __repr__(self) -> str:
        return f"BasicAuth({self.credentials!r})"

"""Credentials: the Pipelines-provided pair or an Atlassian account email + API token.

Both are plain user + secret on the wire (HTTP Basic, or Basic to a token endpoint), so one
type serves every registry. The secret never appears in `repr` or `str`.
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

    def as_requests_auth(self) -> tuple[str, str]:
        return (self.username, self.token)

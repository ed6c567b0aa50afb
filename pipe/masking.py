"""Keep secrets out of everything the pipe prints.

A token leaks in more shapes than its raw text: base64 of it (a `.npmrc` `_password`), base64
of `user:token` (a Basic header, Docker's `auth` field), the token inside a larger base64 blob
(Docker's `X-Registry-Auth` header is base64 of JSON), URL-encoded, or behind `Bearer`. The
masker is seeded with the credentials before anything else runs and learns registry tokens
as they are fetched, and every line of output goes through it.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import quote, urlsplit, urlunsplit

HIDDEN = "[secure]"

# Shorter strings would mask ordinary words; no real token is this short.
_MIN_SECRET_LENGTH = 4
# Base64 fragments shorter than this are too likely to appear by chance.
_MIN_FRAGMENT_LENGTH = 8

_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def base64_fragments(secret: bytes) -> set[str]:
    """Every run of base64 characters that encodes only `secret`'s bytes, for each of the
    three alignments the secret can have inside a larger encoded blob."""
    fragments = {_b64(secret)}
    for offset in range(3):
        encoded = _b64(b"\0" * offset + secret)
        first_group = 1 if offset else 0
        last_group = (offset + len(secret)) // 3
        fragment = encoded[4 * first_group : 4 * last_group]
        if len(fragment) >= _MIN_FRAGMENT_LENGTH:
            fragments.add(fragment)
    return fragments


def secret_forms(secret: str, username: str | None = None) -> set[str]:
    """The textual forms in which `secret` (and `username:secret`) may show up."""
    raw = secret.encode("utf-8")
    forms = {secret, quote(secret, safe=""), *base64_fragments(raw)}
    if username:
        forms.add(_b64(f"{username}:{secret}".encode()))
    return {form for form in forms if len(form) >= _MIN_SECRET_LENGTH}


def strip_userinfo(url: str) -> str:
    """`https://user:pw@host/x` → `https://host/x`: URLs are always printed without user-info."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class SecretMasker:
    """Replaces every registered secret form, any `Bearer`/`Basic` credential and any URL
    user-info in a piece of text."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str | None, username: str | None = None) -> None:
        if not secret or len(secret) < _MIN_SECRET_LENGTH:
            return
        self._forms |= secret_forms(secret, username)
        # Longest first, so a form that contains another is replaced whole.
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(form) for form in ordered))

    def mask(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(HIDDEN, text)
        text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {HIDDEN}", text)
        return _URL_USERINFO.sub(r"\1", text)


class MaskingFilter(logging.Filter):
    """Masks each log record once it is fully formatted (arguments, exceptions included)."""

    def __init__(self, masker: SecretMasker):
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        record.msg, record.args = self.masker.mask(message), None
        return True

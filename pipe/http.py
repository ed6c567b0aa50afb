"""The HTTP session every publisher uses, and the one place registry answers become errors.

- Every request has a timeout (requests has none by default, and a stalled registry must not
  hang a pipeline for hours).
- Idempotent reads (GET/HEAD) are retried on connection errors, 429 and 5xx, honouring
  `Retry-After`; writes are never retried blindly here — a publisher decides, after re-reading
  what the registry has, whether a write may be repeated.
- Redirects are not followed for uploads (callers pass `allow_redirects=False`), and requests
  itself drops `Authorization` when a redirect leaves the host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipe import __version__
from pipe.errors import RegistryError
from pipe.masking import strip_userinfo

USER_AGENT = f"bitbucket-packages-publish/{__version__} (+python-requests/{requests.__version__})"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0
RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)


class PipeSession(requests.Session):
    """A `requests.Session` whose requests time out unless the caller chose otherwise."""

    def __init__(self, timeout: tuple[float, float]):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, **kwargs)


def new_session(
    auth: tuple[str, str] | None = None,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
) -> PipeSession:
    session = PipeSession(timeout)
    session.headers["User-Agent"] = USER_AGENT
    # Credentials come from the pipe's variables only: never from ~/.netrc.
    session.trust_env = False
    session.auth = auth
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=RETRYABLE_STATUS,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def registry_message(response: requests.Response) -> str | None:
    """The registry's own words: OCI `{"errors":[…]}`, npm `{"error"|"reason"|"message"}`,
    or the start of a plain-text body."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join((response.text or "").split())
        return text[:200] or None
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(_describe_oci_error(e) for e in errors if isinstance(e, Mapping)) or None
        for key in ("error", "reason", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return json.dumps(body)[:200]


def _describe_oci_error(error: Mapping) -> str:
    code, message = error.get("code"), error.get("message")
    return f"{code}: {message}" if code and message else str(code or message)


def oci_error_code(response: requests.Response) -> str | None:
    try:
        errors = response.json().get("errors") or []
        return errors[0].get("code") if errors else None
    except (ValueError, AttributeError, IndexError):
        return None


GENERIC_HINTS = {
    401: "the registry did not accept the credentials: check BITBUCKET_PACKAGES_USERNAME and "
    "BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the write:package:bitbucket scope)",
    403: "the credentials have no permission for this: make sure the package exists in Bitbucket, "
    "is linked to this repository, and the token may write packages",
    404: "the registry has no such path: check REGISTRY_URL and WORKSPACE",
    405: "the registry does not accept this method at this URL: check REGISTRY_URL",
    413: "the registry refused the upload as too large: make the artifact smaller",
    429: "the registry is rate-limiting: re-run the step later",
}


def registry_error(response: requests.Response, action: str, hints: Mapping[int, str] | None = None) -> RegistryError:
    """One actionable error for a refused request: what was attempted, the status, the
    registry's message, and what to do (a publisher's hint for this status, else a generic one)."""
    status = response.status_code
    hint = (hints or {}).get(status) or GENERIC_HINTS.get(status)
    if hint is None and status >= 500:
        hint = "the registry failed on its side: re-run the step; if it persists, check the registry's status"
    said = registry_message(response)
    url = strip_userinfo(response.request.url if response.request else response.url)
    text = f"{action} failed: {url} answered {status}"
    if said:
        text += f" ({said})"
    if hint:
        text += f": {hint}"
    return RegistryError(text + ("" if text.endswith(".") else "."), status=status, code=oci_error_code(response))


def unreachable_error(url: str, error: requests.RequestException, action: str) -> RegistryError:
    """A connection that never got an answer: say where and that it is the network or the URL."""
    kind = "timed out" if isinstance(error, requests.Timeout) else "could not connect"
    return RegistryError(
        f"{action} failed: {kind} to {strip_userinfo(url)}: check REGISTRY_URL and that the registry is "
        "reachable from the build, then re-run the step."
    )

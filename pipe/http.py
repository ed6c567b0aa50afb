"""The HTTP session every publisher uses, and the one place registry answers become errors.

- Every request has a timeout (requests has none by default, and a stalled registry must not
  hang a pipeline for hours).
- One retry policy (`RetryPolicy`) for every publisher: bounded attempts *and* total time,
  exponential backoff with jitter, `Retry-After` honoured. Only idempotent requests are retried
  automatically: reads (GET/HEAD/OPTIONS) always, a PUT only on a session made with
  `idempotent_writes=True` (a Maven file PUT sends the same bytes to the same URL), and any request
  whose connection was refused before a byte was sent. Other writes (the npm publish PUT, an OCI
  upload POST) are never repeated here: the publisher re-reads what the registry has and decides.
- Redirects are not followed for uploads (callers pass `allow_redirects=False`), and requests
  itself drops `Authorization` when a redirect leaves the host.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from pipe import __version__
from pipe.errors import RegistryError
from pipe.masking import strip_userinfo

T = TypeVar("T")

USER_AGENT = f"bitbucket-packages-publish/{__version__} (+python-requests/{requests.__version__})"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0
# Connections a session keeps per host: as many as the publishers' requests at once.
POOL_CONNECTIONS = 64
RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Transport failures after which the request may be sent again (when its method allows it).
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_log = logging.getLogger("pipe.http")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a request is tried again. Every publisher uses the same one.

    `attempts` counts the first try; `total_seconds` bounds the whole exchange, waits included, so
    that a registry answering `Retry-After: 3600` fails the step quickly with a clear message
    instead of holding the pipeline for an hour."""

    attempts: int = 5
    total_seconds: float = 120.0
    backoff: float = 0.5
    backoff_max: float = 30.0
    # Each wait is stretched by a random factor in [1, 1 + jitter], so that parallel uploads
    # (and parallel pipelines) do not hit a recovering registry in lock-step.
    jitter: float = 0.5
    statuses: frozenset[int] = field(default_factory=lambda: frozenset(RETRYABLE_STATUS))

    def backoff_delay(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry `retry_number` (1, 2, …): backoff·2^(n-1), capped, with jitter."""
        base = min(self.backoff_max, self.backoff * (2 ** (retry_number - 1)))
        return base * (1 + self.jitter * rng())

    def delay(self, retry_number: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        """`Retry-After` wins when it asks for longer than the backoff (it is the registry's word)."""
        wait = self.backoff_delay(retry_number, rng)
        return max(wait, retry_after) if retry_after is not None else wait


DEFAULT_POLICY = RetryPolicy()


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now())


def never_sent(error: BaseException) -> bool:
    """A connection refused or a connect timeout: the registry saw nothing, so any method may be retried."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    cause = error.args[0]
    return isinstance(getattr(cause, "reason", cause), NewConnectionError)


class _Rewind:
    """Puts a request body back at its start before it is sent again; None when it cannot be."""

    def __init__(self, body: object):
        self.body = body
        self.position: int | None = None
        if hasattr(body, "seek") and hasattr(body, "tell"):
            try:
                self.position = body.tell()
            except OSError:
                self.position = None

    @property
    def possible(self) -> bool:
        return self.body is None or isinstance(self.body, bytes | str | dict | list) or self.position is not None

    def __call__(self) -> None:
        if self.position is not None:
            self.body.seek(self.position)


class PipeSession(requests.Session):
    """A `requests.Session` whose requests time out unless the caller chose otherwise, and are
    retried under one `RetryPolicy` when that is safe."""

    def __init__(
        self,
        timeout: tuple[float, float],
        policy: RetryPolicy | None = None,
        retry_methods: Iterable[str] = READ_METHODS,
    ):
        super().__init__()
        self.default_timeout = timeout
        self.policy = policy or DEFAULT_POLICY
        self.retry_methods = frozenset(m.upper() for m in retry_methods)
        # Seams for tests: time and randomness.
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic
        self.random: Callable[[], float] = random.random

    def budget(self) -> RetryBudget:
        """A fresh attempt/time budget under this session's policy, clock and sleep."""
        return RetryBudget(self.policy, self.clock, self.sleep, self.random)

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.default_timeout)
        rewind = _Rewind(kwargs.get("data"))
        may_retry = method.upper() in self.retry_methods and rewind.possible and not kwargs.get("files")

        refused: list[requests.Response] = []  # the retried answer, released before the next try

        def attempt() -> requests.Response:
            while refused:
                refused.pop().close()
            rewind()  # a no-op before the first try; puts the body back at its start before another
            response = super(PipeSession, self).request(method, url, **kwargs)
            if may_retry and response.status_code in self.policy.statuses:
                refused.append(response)
                raise _RetryableStatus(response)
            return response

        def verdict(error: BaseException) -> tuple[bool, float | None]:
            if isinstance(error, _RetryableStatus):
                return True, error.retry_after
            if isinstance(error, requests.exceptions.SSLError):
                return False, None  # a certificate that fails verification will not pass on a second try
            if isinstance(error, _TRANSIENT_ERRORS):
                return may_retry or (never_sent(error) and rewind.possible), None
            return False, None

        try:
            return retry(attempt, self.budget(), f"{method} {strip_userinfo(url)}", verdict)
        except _RetryableStatus as last:
            return last.response  # out of tries: the caller turns the refusal into the user's error


class _RetryableStatus(Exception):
    """A response with a status the policy retries, raised inside the session's retry loop only:
    the last one is handed back to the caller as the response it is."""

    def __init__(self, response: requests.Response):
        super().__init__(str(response.status_code))
        self.response = response
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


class RetryBudget:
    """The attempts and the time left for one logical request. `wait` sleeps before the next
    attempt, or says no when the policy's attempts or total time are used up."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ):
        # Looked up at call time, so that the test bench can shorten the waits for a whole run.
        self.policy = policy = policy or DEFAULT_POLICY
        self.clock, self.sleep, self.rng = clock, sleep, rng
        self.deadline = clock() + policy.total_seconds
        self.attempt = 1

    def wait(self, retry_after: float | None, why: str) -> bool:
        if self.attempt >= self.policy.attempts:
            return False
        delay = self.policy.delay(self.attempt, retry_after, self.rng)
        if self.clock() + delay > self.deadline:
            return False
        _log.debug("%s; retrying in %.1f s (attempt %d of %d)", why, delay, self.attempt + 1, self.policy.attempts)
        self.sleep(delay)
        self.attempt += 1
        return True


def is_transient(outcome: requests.Response | BaseException) -> bool:
    """A failure worth another try: a broken connection, or a status the policy retries."""
    if isinstance(outcome, requests.Response):
        return outcome.status_code in DEFAULT_POLICY.statuses
    return isinstance(outcome, _TRANSIENT_ERRORS)


def session_budget(session: requests.Session) -> RetryBudget:
    """The budget of a `PipeSession`, or the default policy for any other session (tests' fakes)."""
    return session.budget() if isinstance(session, PipeSession) else RetryBudget()


def new_session(
    auth: tuple[str, str] | Callable | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    idempotent_writes: bool = False,
    policy: RetryPolicy | None = None,
    transport: BaseAdapter | None = None,
) -> PipeSession:
    """A session with the pipe's timeouts, User-Agent and retry policy (`DEFAULT_POLICY`, with
    `retries` retries and a `backoff` base when given). `idempotent_writes=True` lets PUTs be
    retried too: only for PUTs that send the same bytes to the same URL. `transport` replaces the
    network (the one seam tests use, as httpx's mock transport): None means the real one."""
    policy = policy or DEFAULT_POLICY
    if retries is not None:
        policy = replace(policy, attempts=retries + 1)
    if backoff is not None:
        policy = replace(policy, backoff=backoff)
    methods = READ_METHODS | ({"PUT"} if idempotent_writes else set())
    session = PipeSession(timeout, policy, methods)
    session.headers["User-Agent"] = USER_AGENT
    # Credentials come from the pipe's variables only: never from ~/.netrc.
    session.trust_env = False
    session.auth = auth
    # The session retries (above), so urllib3 must not retry underneath it: that would multiply
    # the attempts and ignore the time budget. The Retry object still describes the policy.
    retry = Retry(
        total=0,
        connect=0,
        read=0,
        status=0,
        redirect=0,
        status_forcelist=policy.statuses,
        allowed_methods=methods,
        respect_retry_after_header=False,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    # Publishers run several uploads at once, each with its checksum or chunk requests beside it:
    # keep a connection for each rather than discarding (and logging) the surplus.
    adapter = transport or HTTPAdapter(max_retries=retry, pool_maxsize=POOL_CONNECTIONS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def registry_message(response: requests.Response) -> str | None:
    """The registry's own words: OCI `{"errors":[…]}`, npm `{"error"|"reason"|"message"}`, a
    token endpoint's `{"details"}`, or the gist of a plain-text or HTML body."""
    try:
        body = response.json()
    except ValueError:
        return _gist_of_text(response.text or "")
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(_describe_oci_error(e) for e in errors if isinstance(e, Mapping)) or None
        for key in ("error", "reason", "message", "details", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return json.dumps(body)[:200]


_HTML_HEADING = re.compile(r"<(h1|title)[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def _gist_of_text(text: str) -> str | None:
    """A web server's error page (nginx, a proxy) would put a whole HTML document into the ✖
    line: keep its heading, or its text without markup."""
    if _HTML_TAG.search(text):
        import html  # only for an error page: its entity table costs ~1 ms to import on every run

        heading = _HTML_HEADING.search(text)
        text = heading.group(2) if heading else _HTML_TAG.sub(" ", text)
        text = html.unescape(_HTML_TAG.sub(" ", text))
    return " ".join(text.split())[:200] or None


def _describe_oci_error(error: Mapping) -> str:
    code, message = error.get("code"), error.get("message")
    return f"{code}: {message}" if code and message else str(code or message)


def oci_error_code(response: requests.Response) -> str | None:
    try:
        errors = response.json().get("errors") or []
        return errors[0].get("code") if errors else None
    except (ValueError, AttributeError, IndexError):
        return None


def accepted(response: requests.Response) -> bool:
    """2xx only: `response.ok` is also true for a redirect, which publishes nothing."""
    return 200 <= response.status_code < 300


# What to check when the registry refuses the credentials, in every kind's 401 hint.
CHECK_CREDENTIALS = (
    "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the "
    "write:package:bitbucket scope)"
)
CREDENTIALS_HINT = f"the registry did not accept the credentials: {CHECK_CREDENTIALS}"

_REDIRECT_HINT = (
    "the registry redirected the request elsewhere: set REGISTRY_URL to the registry's final address "
    "(the pipe does not follow redirects with credentials)"
)

GENERIC_HINTS = {
    **dict.fromkeys((301, 302, 303, 307, 308), _REDIRECT_HINT),
    401: CREDENTIALS_HINT,
    403: "the credentials have no permission for this: make sure the package exists in Bitbucket, "
    "is linked to this repository, and the token may write packages",
    404: "the registry has no such path: check REGISTRY_URL and WORKSPACE",
    405: "the registry does not accept this method at this URL: check REGISTRY_URL",
    413: "the registry refused the upload as too large: make the artifact smaller",
    429: "the registry is rate-limiting: re-run the step later",
}


# A refused DELETE means something else than a refused upload: say what deleting needs.
DELETE_HINTS = {
    403: "deleting needs Write permission on the linked repository: use a token of a user with Write "
    "permission (an Atlassian API token needs the write:package:bitbucket scope)",
}


def registry_error(
    response: requests.Response, action: str, hints: Mapping[int, str] | None = None, transient: bool = False
) -> RegistryError:
    """One actionable error for a refused request: what was attempted, the status, the
    registry's message, and what to do (a publisher's hint for this status, else a generic one).
    `transient` when the caller would try the request again; the `Retry-After` goes with it."""
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
    return RegistryError(
        text + ("" if text.endswith(".") else "."),
        status=status,
        code=oci_error_code(response),
        transient=transient,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def unreachable_error(
    url: str, error: requests.RequestException, action: str, transient: bool = False
) -> RegistryError:
    """A connection that never got an answer: say where and that it is the network or the URL."""
    if isinstance(error, requests.exceptions.SSLError):
        return RegistryError(
            f"{action} failed: the TLS certificate of {strip_userinfo(url)} could not be verified: check REGISTRY_URL "
            "(the pipe always verifies certificates against the system's trusted authorities).",
            transient=transient,
        )
    kind = "timed out" if isinstance(error, requests.Timeout) else "could not connect"
    return RegistryError(
        f"{action} failed: {kind} to {strip_userinfo(url)}: check REGISTRY_URL and that the registry is "
        "reachable from the build, then re-run the step.",
        transient=transient,
    )


@contextmanager
def reaching(url: str, action: str, transient: bool = False) -> Iterator[None]:
    """Turns a connection failure inside the block into the user's error about `url`."""
    try:
        yield
    except requests.RequestException as error:
        raise unreachable_error(url, error, action, transient) from None


def transient_registry_error(error: BaseException) -> tuple[bool, float | None]:
    """Whether `error` is worth another try, and the wait the registry asked for: a transient
    `RegistryError`, as the publishers' own loops make them."""
    if isinstance(error, RegistryError):
        return error.transient, error.retry_after
    return False, None


def retry(
    attempt: Callable[[], T],
    budget: RetryBudget,
    what: str,
    verdict: Callable[[BaseException], tuple[bool, float | None]] = transient_registry_error,
) -> T:
    """The one retry loop: `attempt()`, again after each error that `verdict` calls worth another
    try, while `budget` allows (waiting at least the `Retry-After` that `verdict` passes on). Any
    other error, or the last one, is raised as it is."""
    while True:
        try:
            return attempt()
        except Exception as error:
            again, retry_after = verdict(error)
            if not again or not budget.wait(retry_after, f"{what}: {_failure_name(error)}"):
                raise


def _failure_name(error: BaseException) -> str:
    """For the debug line of a retry: the status of a refused answer, else the failure's type."""
    return str(error) if isinstance(error, _RetryableStatus) else type(error).__name__

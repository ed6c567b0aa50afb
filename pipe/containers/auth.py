"""The OCI registry's authorization handshake, learned once per registry per run and shared by
every client of the run (`RegistryReader`, `RegistryWriter`, `RegistryDeleter`), which keep only
the endpoints.

The registry says how it wants to be addressed in its first 401 (`WWW-Authenticate`):
- `Basic` → the pipe's credentials as Basic auth on every request;
- `Bearer realm=…,service=…` → a token fetched from the realm with those credentials, for the
  scopes the run's clients need (`repository:<name>:pull,push,delete`), merged into one token.

The first request already carries the credentials as Basic auth (over https, or to a loopback
registry): a Basic registry answers it at once, with no 401 round trip first; a token registry
answers it with its challenge, as it would a request without them. The challenge is met once: a
client made later in the run (the writer after the reader, a base image's reader) starts with the
authorization learned so far, and when it needs a scope the token does not cover, a token for all
of them is fetched at once, without another 401. A token that
stops working during a long push (it expired) is fetched again once; a 401 right after a fresh
token means no permission and is reported, never retried in a loop.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from pipe.auth import Credentials
from pipe.config import Registry, is_loopback
from pipe.errors import RegistryError
from pipe.http import new_session, reaching, registry_error
from pipe.masking import SecretMasker

if TYPE_CHECKING:
    from pipe.config import Config

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
DEFAULT_TOKEN_LIFETIME = 60.0
# A token this close to its end (at most a quarter of its life) is replaced before a request
# rather than after the request's 401.
EXPIRY_MARGIN = 5.0
# The order of a scope's actions, as registries and `docker` write them.
ACTIONS_ORDER = ("pull", "push", "delete")

# (repository, action): one permission a request needs.
Permission = tuple[str, str]


def token_lifetime(body: dict) -> float:
    try:
        return max(float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME), 1.0)
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_LIFETIME


@dataclass(frozen=True)
class Challenge:
    """What the registry's 401 asked for: the scheme (`basic`, `bearer`) and its parameters."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge:
        return cls(header.split(" ", 1)[0].lower(), dict(_CHALLENGE_PARAM.findall(header)))


def permissions(repository: str, actions: Iterable[str]) -> frozenset[Permission]:
    return frozenset((repository, action) for action in actions)


def scope_strings(wanted: Iterable[Permission]) -> list[str]:
    """`repository:<name>:<actions>` per repository, in the order the repositories were wanted."""
    by_repository: dict[str, set[str]] = {}
    for repository, action in wanted:
        by_repository.setdefault(repository, set()).add(action)
    return [
        f"repository:{repository}:{','.join(a for a in ACTIONS_ORDER if a in actions)}"
        for repository, actions in by_repository.items()
    ]


class RegistryAuth:
    """The authorization of one registry for one run: the session, the challenge learned from the
    registry, the current `Authorization` value and the permissions its token covers."""

    def __init__(self, registry: Registry, credentials: Credentials, masker: SecretMasker, session, log=None):
        self.registry = registry
        self.credentials = credentials
        self.masker = masker
        self.session = session
        self.log = log or logging.getLogger("pipe.containers.auth")
        # Every permission a client of the run has asked for, in order (a dict keeps the order).
        self._wanted: dict[Permission, None] = {}
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._authorization: str | None = credentials.basic_header if sends_basic_first(registry) else None
        self._covered: frozenset[Permission] = frozenset()
        self._expires_at = 0.0
        self._renew_at = 0.0
        # The token fetched because an earlier one was refused: refused too before it expires, it
        # lacks permission, and no thread fetches another.
        self._refreshed: str | None = None
        # How often the registry challenged the run, and how many tokens were fetched.
        self.challenges = 0
        self.tokens = 0
        # The quickest whole exchange with the registry so far (seconds): how near it is.
        self.fastest_answer: float | None = None

    @classmethod
    def for_run(cls, config: Config, log: logging.Logger, masker: SecretMasker) -> RegistryAuth:
        """The run's one authorization for its registry: made at the first client, shared after."""
        found = _RUN_AUTHS.get(id(config))
        if found is None:
            session = new_session(transport=config.transport)
            found = cls(config.registry, config.credentials, masker, session, log)
            _RUN_AUTHS[id(config)] = found
            # The config is the run: its authorization goes with it.
            weakref.finalize(config, _RUN_AUTHS.pop, id(config), None)
        return found

    def require(self, repository: str, actions: Iterable[str]) -> frozenset[Permission]:
        """Note what a client will need, so that the next token covers it; its permissions."""
        needed = permissions(repository, actions)
        with self._lock:
            self._wanted.update(dict.fromkeys(sorted(needed, key=lambda p: ACTIONS_ORDER.index(p[1]))))
        return needed

    @property
    def uses_tokens(self) -> bool:
        return (self._authorization or "").startswith("Bearer ")

    # --- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        action: str,
        needed: frozenset[Permission],
        hints: Mapping[int, str],
        body: Callable[[], object] | None = None,
        **kwargs,
    ) -> requests.Response:
        """A request answered after at most one auth challenge, sent with an authorization that
        covers `needed`. `body` makes a fresh request body for each send (an upload stream cannot
        be sent twice); `hints` say what to do when the token endpoint refuses."""
        used = self._authorization_for(needed, action, hints)
        response = self._send(method, url, action, used, body, **kwargs)
        if response.status_code == 401 and self._reauthorize(used, response, action, hints):
            response.close()
            response = self._send(method, url, action, self._authorization, body, **kwargs)
        return response

    def _send(
        self,
        method: str,
        url: str,
        action: str,
        authorization: str | None,
        body: Callable[[], object] | None,
        **kwargs,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if authorization:
            headers["Authorization"] = authorization
        if body is not None:
            kwargs["data"] = body()
        kwargs.setdefault("allow_redirects", True)
        # A broken connection is worth another try where the caller may retry.
        with reaching(url, action, transient=True):
            response = self.session.request(method, url, headers=headers, **kwargs)
        if body is None:  # an upload's time is its bytes', not the registry's distance
            elapsed = response.elapsed.total_seconds()
            self.fastest_answer = min(elapsed, self.fastest_answer or elapsed)
        return response

    def _authorization_for(self, needed: frozenset[Permission], action: str, hints: Mapping[int, str]) -> str | None:
        """The authorization to send: a new token first when the registry wants tokens and the
        current one does not cover `needed` or is about to expire (no 401 needed for that)."""
        with self._lock:
            if self._challenge is None or self._challenge.scheme != "bearer":
                return self._authorization
            if needed <= self._covered and time.monotonic() < self._renew_at:
                return self._authorization
            self._authorization = self._fetch_token(action, hints)
            return self._authorization

    def _reauthorize(
        self, used: str | None, response: requests.Response, action: str, hints: Mapping[int, str]
    ) -> bool:
        """Whether a 401 is worth one more try: with the first answer to a challenge, or with a
        fresh token when the one used was fetched earlier (it expired). Basic credentials that
        were refused stay refused, and a 401 with a token fetched for this very request means
        no permission: both are returned to the caller, never looped on."""
        with self._lock:
            if self._authorization != used:
                return True  # another request changed it meanwhile
            learned = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
            if used is not None and not used.startswith("Bearer ") and learned.scheme != "bearer":
                # Basic credentials refused where Basic is asked for (sent with the first request or
                # after the challenge): they stay refused. Asked for a token instead, it is fetched.
                self._challenge = self._challenge or learned
                return False
            if used is not None and used == self._refreshed and time.monotonic() < self._expires_at:
                return False  # a fresh token refused: a permission problem, whichever thread sees it
            self.challenges += 1
            first = self._challenge is None
            self._challenge = learned
            if self._challenge.scheme == "bearer":
                self._authorization = self._fetch_token(action, hints)
            else:
                # Basic (or no challenge at all): the pipe's credentials as they are.
                self._authorization = self.credentials.basic_header
            if used is not None and not first:
                self._refreshed = self._authorization
            return True

    def _fetch_token(self, action: str, hints: Mapping[int, str]) -> str:
        """A token for every permission wanted so far (called with the lock held)."""
        params = self._challenge.params if self._challenge else {}
        realm = params.get("realm")
        if not realm:
            raise RegistryError(
                f"{action} failed: the registry's Bearer challenge names no token realm: check REGISTRY_URL."
            )
        wanted = frozenset(self._wanted)
        scopes = scope_strings(self._wanted)
        query: dict[str, object] = {"scope": scopes[0] if len(scopes) == 1 else scopes}
        if params.get("service"):
            query["service"] = params["service"]
        with reaching(realm, action):
            response = self.session.get(realm, params=query, auth=self.credentials.as_requests_auth())
        if response.status_code != 200:
            raise registry_error(response, f"{action} (token request)", hints)
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{action} failed: the token endpoint {realm} returned no token: check REGISTRY_URL.")
        self.masker.add(token)
        self.tokens += 1
        self._covered = wanted
        # Token lifetimes are the issuer's (60 s when it names none, per the token spec).
        lifetime = token_lifetime(body)
        self._expires_at = time.monotonic() + lifetime
        self._renew_at = self._expires_at - min(EXPIRY_MARGIN, lifetime / 4)
        self.log.debug("Fetched a registry token for %s.", " ".join(scopes))
        return "Bearer " + token


def sends_basic_first(registry: Registry) -> bool:
    """Whether the first request may carry the credentials before the registry has asked: over
    https, or to loopback; never over plain http to another host, where only a registry that asks
    for Basic gets them."""
    return not registry.insecure or is_loopback(urlsplit(registry.url).hostname or "")


# The authorization of each run, by its config (one run, one config object).
_RUN_AUTHS: dict[int, RegistryAuth] = {}

"""Reads from an OCI registry over the distribution API: the tag list (to know the highest
release of each line) and the digest a tag points at (to tell a re-run from a move).

The reader asks for `pull` scope; the native pusher (`oci_push.RegistryWriter`) extends it with
`pull,push`. Auth follows the registry's challenge: `Basic` → the pipe's credentials as Basic auth;
`Bearer realm=…,service=…` → a token fetched from the realm with those credentials. A token that
stops working during a long push (it expired) is fetched again once; a 401 right after a fresh
token is reported, never retried in a loop.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import urljoin

import requests

from pipe.auth import Credentials
from pipe.config import Registry
from pipe.containers.archive import OCI_MANIFEST
from pipe.errors import RegistryError
from pipe.http import new_session, registry_error, unreachable_error
from pipe.masking import SecretMasker

# Registries answer manifest reads only for media types the client says it accepts.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
TAGS_PAGE_SIZE = 1000
DEFAULT_TOKEN_LIFETIME = 60.0


def token_lifetime(body: dict) -> float:
    try:
        return max(float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME), 1.0)
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_LIFETIME


def name_unknown_hint(image: str) -> str:
    return f"create the package '{image}' in Bitbucket Packages and link it to this repository, then re-run the step"


class RegistryReader:
    """Read-only access to one repository (`<workspace>/<image>`) of a registry."""

    # The token scope's actions on the repository; the writer asks for push too.
    actions = "pull"

    def __init__(
        self,
        registry: Registry,
        repository: str,
        credentials: Credentials,
        masker: SecretMasker,
        session: requests.Session | None = None,
    ):
        self.registry = registry
        self.base = registry.url.rstrip("/")
        self.repository = repository
        self.credentials = credentials
        self.masker = masker
        self.session = session or new_session()
        self._authorization: str | None = None
        # Parallel uploads share one token; only one of them fetches a fresh one.
        self._auth_lock = threading.Lock()
        # The token fetched because an earlier one was refused, and when it expires: refused
        # before then, it lacks permission, and no thread fetches another.
        self._refreshed: str | None = None
        self._refreshed_until = 0.0
        # Other repositories a token must cover (cross-repository mounts read from them).
        self.extra_scopes: tuple[str, ...] = ()
        self.hints = {
            401: "the registry did not accept the credentials: check BITBUCKET_PACKAGES_USERNAME and "
            "BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the write:package:bitbucket scope)",
            403: "the credentials may not read this image: check that the package is linked to this repository",
        }

    # --- auth -----------------------------------------------------------------------------

    def _request(
        self, method: str, url: str, action: str, body: Callable[[], object] | None = None, **kwargs
    ) -> requests.Response:
        """A request answered after at most one auth challenge. `body` makes a fresh request body
        for each send (an upload stream cannot be sent twice)."""
        used = self._authorization
        response = self._send(method, url, action, body, **kwargs)
        if response.status_code == 401 and self._reauthorize(used, response, action):
            response = self._send(method, url, action, body, **kwargs)
        return response

    def _reauthorize(self, used: str | None, response: requests.Response, action: str) -> bool:
        """Whether a 401 is worth one more try: with the first answer to a challenge, or with a
        fresh token when the one used was fetched earlier (it expired). Basic credentials that
        were refused stay refused, and a 401 with a token fetched for this very request means
        no permission: both are returned to the caller, never looped on."""
        with self._auth_lock:
            if self._authorization != used:
                return True  # another request refreshed it meanwhile
            if used is not None and not used.startswith("Bearer "):
                return False
            if used is not None and used == self._refreshed and time.monotonic() < self._refreshed_until:
                return False  # a fresh token refused: a permission problem, whichever thread sees it
            self._authorization = self._answer_challenge(response.headers.get("WWW-Authenticate", ""), action)
            if used is not None:
                self._refreshed = self._authorization
            return True

    def _send(
        self, method: str, url: str, action: str, body: Callable[[], object] | None = None, **kwargs
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self._authorization:
            headers["Authorization"] = self._authorization
        if body is not None:
            kwargs["data"] = body()
        kwargs.setdefault("allow_redirects", True)
        try:
            return self.session.request(method, url, headers=headers, **kwargs)
        except requests.RequestException as error:
            failure = unreachable_error(url, error, action)
            failure.transient = True  # a broken connection: worth another try where the caller may retry
            raise failure from None

    def _answer_challenge(self, challenge: str, action: str) -> str:
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "bearer":
            return "Bearer " + self._fetch_token(dict(_CHALLENGE_PARAM.findall(challenge)), action)
        # Basic (or no challenge at all): the pipe's credentials as they are.
        return self.credentials.basic_header

    def _fetch_token(self, params: dict[str, str], action: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(
                f"{action} failed: the registry's Bearer challenge names no token realm: check REGISTRY_URL."
            )
        scopes = [f"repository:{self.repository}:{self.actions}", *self.extra_scopes]
        query: dict[str, object] = {"scope": scopes[0] if len(scopes) == 1 else scopes}
        if params.get("service"):
            query["service"] = params["service"]
        try:
            response = self.session.get(realm, params=query, auth=self.credentials.as_requests_auth())
        except requests.RequestException as error:
            raise unreachable_error(realm, error, action) from None
        if response.status_code != 200:
            raise registry_error(response, f"{action} (token request)", self.hints)
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{action} failed: the token endpoint {realm} returned no token: check REGISTRY_URL.")
        self.masker.add(token)
        # Token lifetimes are the issuer's (60 s when it names none, per the token spec).
        self._refreshed_until = time.monotonic() + token_lifetime(body)
        return token

    # --- reads ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.repository}/{path}"

    def fail(self, response: requests.Response, action: str) -> RegistryError:
        return registry_error(response, action, self.hints)

    def get_manifest(self, reference: str) -> tuple[bytes, str] | None:
        """The manifest's bytes and media type, or None if there is none."""
        action = f"reading the manifest {self.repository}:{reference}"
        response = self._request("GET", self.url(f"manifests/{reference}"), action, headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, action)
        body = response.content
        media_type = response.headers.get("Content-Type") or json.loads(body).get("mediaType", OCI_MANIFEST)
        return body, media_type

    def get_blob(self, digest: str) -> bytes | None:
        action = f"reading blob {digest} of {self.repository}"
        response = self._request("GET", self.url(f"blobs/{digest}"), action)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, action)
        return response.content

    def list_tags(self) -> list[str]:
        """Every tag of the repository, following `Link` pages. A repository the registry does
        not know yet (`NAME_UNKNOWN`, 404) has no tags: it is created by the first push."""
        action = f"reading the tags of {self.repository}"
        url: str | None = f"{self.base}/v2/{self.repository}/tags/list?n={TAGS_PAGE_SIZE}"
        tags: list[str] = []
        while url:
            response = self._request("GET", url, action)
            if response.status_code == 404:
                return tags
            if response.status_code != 200:
                raise registry_error(response, action, self.hints)
            tags.extend(response.json().get("tags") or [])
            next_link = response.links.get("next", {}).get("url")
            url = urljoin(url, next_link) if next_link else None
        return tags

    def tag_digest(self, tag: str) -> str | None:
        """The manifest digest `tag` points at, or None when the tag does not exist."""
        action = f"reading {self.repository}:{tag}"
        url = f"{self.base}/v2/{self.repository}/manifests/{tag}"
        response = self._request("HEAD", url, action, headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise registry_error(response, action, self.hints)
        return response.headers.get("Docker-Content-Digest")

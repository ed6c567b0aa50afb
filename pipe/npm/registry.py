"""The npm registry over plain HTTP: packument reads, the streamed publish PUT, dist-tags, the
unpublish requests, and the translation of refusals into what to do. Nothing of `requests`
leaves this module: answers come back as packuments, typed outcomes or `RegistryError`s."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import requests

from pipe.config import Config
from pipe.errors import RegistryError
from pipe.http import (
    CREDENTIALS_HINT,
    DELETE_HINTS,
    RetryBudget,
    accepted,
    is_transient,
    new_session,
    reaching,
    registry_error,
    session_budget,
    unreachable_error,
)
from pipe.masking import SecretMasker
from pipe.npm.manifest import attachment_name
from pipe.progress import UploadProgress

# Raw bytes base64-encoded per step: a multiple of 3, so that the pieces concatenate into one
# valid base64 text without padding in the middle.
ENCODE_CHUNK = 3 * 256 * 1024
DOWNLOAD_CHUNK = 1024 * 1024
# Registries answer "this version already exists" with one of these (npmjs 403, Verdaccio and
# GitHub 409, some 400): the packument, re-read, says what really happened.
CONFLICT_STATUSES = (400, 403, 409)


# A part of a URL the registry's own answers supply (a tarball's file name, a document revision):
# plain characters only, so that it can neither leave its place in the path nor add a query.
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*")


def is_safe_segment(value: object) -> bool:
    return isinstance(value, str) and _SAFE_SEGMENT.fullmatch(value) is not None and ".." not in value


def checked_segment(value: str, what: str, action: str) -> str:
    """`value` when it is a safe URL segment; else the run stops before the request is sent."""
    if not is_safe_segment(value):
        raise RegistryError(
            f"{action} stopped: the registry gave {what} '{value[:80]}', which cannot be part of a URL "
            "safely; nothing was sent. Check the package in the registry."
        )
    return value


def escape_name(name: str) -> str:
    """`@scope/name` → `@scope%2fname`, as npm writes it in registry paths."""
    return name.replace("/", "%2f")


class PublishBody:
    """The PUT document as a stream: the JSON before the tarball, the tarball's base64 in pieces,
    the JSON after it. Its length is known up front (Content-Length, no chunked encoding), and
    memory holds one piece at a time, whatever the tarball's size."""

    def __init__(
        self,
        document: Mapping,
        name: str,
        version: str,
        tarball: Path,
        size: int,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ):
        head = json.dumps(dict(document), separators=(",", ":"), ensure_ascii=False)
        attachment = json.dumps(attachment_name(name, version), ensure_ascii=False)
        self.prefix = (
            head[:-1] + f',"_attachments":{{{attachment}:{{"content_type":"application/octet-stream","data":"'
        ).encode("utf-8")
        self.suffix = f'","length":{size}}}}}}}'.encode("ascii")
        self.length = len(self.prefix) + 4 * ((size + 2) // 3) + len(self.suffix)
        self.tarball, self.size = tarball, size
        self.progress = UploadProgress(self.length, log, clock=clock)
        self._pieces = self._generate()
        self._buffer = b""
        self._offset = 0

    def __len__(self) -> int:
        return self.length

    def _generate(self):
        yield self.prefix
        with self.tarball.open("rb") as handle:
            while chunk := _read_fully(handle, ENCODE_CHUNK):
                yield base64.b64encode(chunk)
        yield self.suffix

    def read(self, size: int = -1) -> bytes:
        """File-like read for http.client: at most `size` bytes, b'' at the end."""
        if size is None or size < 0:
            size = self.length
        while self._offset >= len(self._buffer):
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._buffer, self._offset = piece, 0
        data = self._buffer[self._offset : self._offset + size]
        self._offset += len(data)
        self.progress.advance(len(data))
        return data


def _read_fully(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    while data and len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            break
        data += more
    return data


@dataclass(frozen=True)
class Packument:
    """What the registry knows about a package: its versions and dist-tags."""

    versions: Mapping[str, Mapping]
    dist_tags: Mapping[str, str]

    @classmethod
    def from_json(cls, body: object) -> Packument:
        body = body if isinstance(body, Mapping) else {}
        versions = body.get("versions") if isinstance(body.get("versions"), Mapping) else {}
        tags = body.get("dist-tags") if isinstance(body.get("dist-tags"), Mapping) else {}
        return cls(versions=versions, dist_tags={k: v for k, v in tags.items() if isinstance(v, str)})


def _hints(name: str, registry_url: str) -> dict[int, str]:
    package_hint = (
        f"create the package {name} in Bitbucket Packages and link it to this repository, and make sure the "
        "token may write packages (BITBUCKET_PACKAGES_TOKEN from Pipelines, or an API token with "
        "write:package:bitbucket)"
    )
    return {
        401: CREDENTIALS_HINT,
        403: f"no permission to publish {name}: {package_hint}",
        404: f"the registry has no place for {name} at {registry_url}: check REGISTRY_URL / WORKSPACE, "
        f"the package's scope, and {package_hint}",
        413: "the registry refused the package as too large: make it smaller (check the packed file list "
        "for build output or assets that do not belong in it, and use `files` or .npmignore)",
    }


class Answer(Enum):
    """How the registry took a publish PUT."""

    PUBLISHED = "published"  # 2xx
    CONFLICT = "conflict"  # an "already exists" status: the packument, re-read, says what happened
    REFUSED = "refused"  # any other refusal: final
    TRANSIENT = "transient"  # 429/5xx, or the connection broke: the outcome is unknown


@dataclass(frozen=True)
class UploadOutcome:
    """A publish PUT's result. `error` is what to raise when a re-read of the packument does not
    settle it (its `transient` says whether another PUT may follow); `broke_off` names the
    connection failure when no answer came at all."""

    answer: Answer
    error: RegistryError | None = None
    status: int | None = None
    broke_off: str | None = None

    @property
    def published(self) -> bool:
        return self.answer is Answer.PUBLISHED


class NpmRegistry:
    """One registry base URL (with trailing slash) and the authenticated session to it."""

    def __init__(self, session: requests.Session, base_url: str, log: logging.Logger):
        self.session, self.base_url, self.log = session, base_url, log

    @classmethod
    def from_config(cls, config: Config, log: logging.Logger, masker: SecretMasker) -> NpmRegistry:
        """The client for the configured registry, with the run's credentials and transport. The
        masker already holds the credentials (the CLI seeds it); the argument keeps one shape
        for every kind's client."""
        session = new_session(auth=config.credentials.as_requests_auth(), transport=config.transport)
        # A tarball DELETE repeated after a lost answer meets 404, read as "already gone"; the
        # publish PUT is never repeated by the session (the publisher re-reads and decides).
        session.retry_methods = session.retry_methods | {"DELETE"}
        return cls(session, config.registry.url, log)

    def budget(self) -> RetryBudget:
        """A fresh retry budget under this client's policy, for the callers' own retry loops."""
        return session_budget(self.session)

    def package_url(self, name: str) -> str:
        return f"{self.base_url}{escape_name(name)}"

    def read_packument(self, name: str) -> Packument | None:
        """The package's document, or None when the registry does not know the package yet."""
        url = self.package_url(name)
        action = f"reading {name} from the registry"
        with reaching(url, action):
            response = self.session.get(url, headers={"Accept": "application/json"})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise registry_error(response, action, _hints(name, self.base_url))
        try:
            return Packument.from_json(response.json())
        except ValueError:
            raise RegistryError(
                f"{action} failed: {url} answered 200 with a body that is not JSON: check that REGISTRY_URL "
                "is the npm registry's URL (for Bitbucket: https://npm.apkg.io/<workspace>/)."
            ) from None

    def download(self, url: str, target: Path) -> None:
        """A published tarball, streamed to `target`. Credentials go only to the registry's own
        host, and over its own scheme: npm publish writes `dist.tarball` as http:// even for an
        https registry, so such a URL is fetched over https, as the npm client does."""
        parts, base = urlsplit(url), urlsplit(self.base_url)
        same_host = parts.netloc == base.netloc
        if same_host and parts.scheme == "http" and base.scheme == "https":
            url = parts._replace(scheme="https").geturl()
        action = "downloading the published tarball to compare contents"
        auth = None if same_host else _NoAuth()
        with reaching(url, action), self.session.get(url, stream=True, auth=auth) as response:
            if response.status_code != 200:
                raise registry_error(response, action)
            with target.open("wb") as out:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    out.write(chunk)

    def put_package(self, name: str, version: str, body: PublishBody) -> UploadOutcome:
        """The publish PUT. Never retried blindly: the caller re-reads the packument to decide."""
        url = self.package_url(name)
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Content-Length": str(len(body))}
        action = f"publishing {name}@{version}"
        try:
            response = self.session.put(url, data=body, headers=headers, allow_redirects=False)
        except requests.RequestException as error:
            failure = unreachable_error(url, error, action, transient=is_transient(error))
            return UploadOutcome(Answer.TRANSIENT, failure, broke_off=type(error).__name__)
        status = response.status_code
        if accepted(response):
            return UploadOutcome(Answer.PUBLISHED, status=status)
        if is_transient(response):
            return UploadOutcome(Answer.TRANSIENT, self.refusal(response, name, version, transient=True), status)
        answer = Answer.CONFLICT if status in CONFLICT_STATUSES else Answer.REFUSED
        return UploadOutcome(answer, self.refusal(response, name, version), status)

    def set_dist_tag(self, name: str, tag: str, version: str) -> None:
        url = f"{self.base_url}-/package/{escape_name(name)}/dist-tags/{tag}"
        action = f"setting the dist-tag {tag} of {name} to {version}"
        with reaching(url, action):
            response = self.session.put(
                url, data=json.dumps(version), headers={"Content-Type": "application/json"}, allow_redirects=False
            )
        if response.status_code not in (200, 201, 204):
            raise registry_error(response, action, _hints(name, self.base_url))

    def refusal(self, response: requests.Response, name: str, version: str, transient: bool = False) -> RegistryError:
        return registry_error(response, f"publishing {name}@{version}", _hints(name, self.base_url), transient)

    # --- unpublish (npm's protocol: the packument rewritten with its `_rev`, then the tarball) ---

    def read_for_write(self, name: str) -> dict | None:
        """The whole packument as the registry stores it, `_rev` included (`?write=true`)."""
        url = self.package_url(name)
        action = f"reading {name} from the registry"
        with reaching(url, action, transient=True):
            response = self.session.get(url, params={"write": "true"}, headers={"Accept": "application/json"})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise registry_error(response, action, self.unpublish_hints(name), is_transient(response))
        try:
            return response.json()
        except ValueError:
            raise RegistryError(f"{action} failed: {url} answered 200 with a body that is not JSON.") from None

    def write_packument(self, name: str, document: Mapping, rev: str, version: str) -> None:
        """Writes the packument back over revision `rev`. A 409 (the packument changed since it
        was read) is transient like a broken connection: the caller reads again and decides."""
        action = f"unpublishing {name}@{version}"
        url = f"{self.package_url(name)}/-rev/{checked_segment(rev, 'the revision', action)}"
        body = json.dumps(dict(document), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        with reaching(url, action, transient=True):
            response = self.session.put(url, data=body, headers=headers, allow_redirects=False)
        if not accepted(response):
            transient = is_transient(response) or response.status_code == 409
            raise registry_error(response, action, self.unpublish_hints(name), transient)

    def delete_tarball(self, name: str, file: str, rev: str, version: str) -> None:
        """Deletes a tarball the packument no longer lists; one already gone (404) is fine."""
        action = f"deleting the tarball of {name}@{version}"
        file, rev = checked_segment(file, "the file name", action), checked_segment(rev, "the revision", action)
        url = f"{self.package_url(name)}/-/{file}/-rev/{rev}"
        with reaching(url, action, transient=True):
            response = self.session.delete(url, allow_redirects=False)
        if not accepted(response) and response.status_code != 404:
            raise registry_error(response, action, self.unpublish_hints(name), is_transient(response))

    def unpublish_hints(self, name: str) -> dict[int, str]:
        return _hints(name, self.base_url) | DELETE_HINTS


class _NoAuth(requests.auth.AuthBase):
    """Sends a request without the session's credentials (a tarball hosted elsewhere)."""

    def __call__(self, request):
        request.headers.pop("Authorization", None)
        return request

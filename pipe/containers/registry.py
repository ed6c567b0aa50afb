"""The distribution-API client for one repository of an OCI registry: reads (tag list, manifests,
blobs, the digest a tag points at) in `RegistryReader`, writes (blob uploads, mounts, manifest
PUTs) in `RegistryWriter`, manifest deletes in `RegistryDeleter`. The push algorithm that drives
the writer is `oci_push`; the cleanup that drives the deleter is `containers.cleanup`.

The clients keep only the endpoints. Authorization is `containers.auth.RegistryAuth`'s, one per
registry per run, shared by every client of the run: each client says which actions it needs on
its repository (the reader `pull`, the writer `pull,push`, the deleter `pull,delete`), and the
run's token covers them all. Get a client with `from_config(config, log, masker)`.

Writes are retried by the writer, not by the session (an upload is not idempotent): on a broken
connection, 408, 429 (after `Retry-After`) and 5xx, bounded by the session's retry policy; the
pusher starts each retry with a HEAD, so what the registry already has is never sent again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from pipe.containers.auth import Permission, RegistryAuth
from pipe.containers.blobs import Blob, BlobSource, is_digest, shown
from pipe.containers.mediatypes import ACCEPT_MANIFESTS, OCI_MANIFEST
from pipe.errors import RegistryError
from pipe.http import (
    CHECK_CREDENTIALS,
    CREDENTIALS_HINT,
    DELETE_HINTS,
    is_transient,
    oci_error_code,
    registry_error,
    retry,
    session_budget,
)
from pipe.masking import SecretMasker, strip_userinfo

if TYPE_CHECKING:
    from pipe.config import Config

TAGS_PAGE_SIZE = 1000


def name_unknown_hint(image: str) -> str:
    return f"create the package '{image}' in Bitbucket Packages and link it to this repository, then re-run the step"


def image_repository(config: Config) -> str:
    """The name the distribution API uses under `/v2/` for the configured image:
    `[registry path/]workspace/image`."""
    parts = (config.registry.path, config.workspace, str(config.docker.image_name))
    return "/".join(part for part in parts if part)


# A tag, as the distribution spec allows it.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def is_reference(value: object, tags: bool = True) -> bool:
    """A manifest reference (a tag or a digest; only a digest with `tags=False`) that cannot
    change the meaning of the URL it goes into."""
    return is_digest(value) or (tags and isinstance(value, str) and TAG.fullmatch(value) is not None)


def checked_reference(value: str, repository: str, tags: bool = True) -> str:
    """`value`, when it is safe in a URL path; references come from archives, images and the
    registry's own answers, any of which may be hostile."""
    if not is_reference(value, tags):
        kind = "tag or digest" if tags else "digest"
        raise RegistryError(
            f"'{shown(value)}' in {repository} is not a valid {kind} (a tag is up to 128 letters, digits, . _ -; a "
            "digest is sha256:<64 hex digits>): it is not sent to the registry: check the image or the registry."
        )
    return value


def run_actions(config: Config) -> tuple[str, ...]:
    """The actions a run needs on its image's repository: a dry run only reads."""
    if config.dry_run:
        return ("pull",)
    return ("pull", "delete") if config.action == "cleanup" else ("pull", "push")


class RegistryReader:
    """Read-only access to one repository (`<workspace>/<image>`) of a registry."""

    # The actions on the repository the client's requests need; the writer adds push.
    actions: tuple[str, ...] = ("pull",)

    def __init__(self, auth: RegistryAuth, repository: str):
        self.auth = auth
        self.base = auth.registry.url.rstrip("/")
        self.repository = repository
        self.needed = auth.require(repository, self.actions)
        self.hints = {
            401: CREDENTIALS_HINT,
            403: "the credentials may not read this image: check that the package is linked to this repository",
        }

    @classmethod
    def from_config(cls, config: Config, log: logging.Logger, masker: SecretMasker, repository: str | None = None):
        """A client of the run's registry, for the configured image or another `repository`."""
        auth = RegistryAuth.for_run(config, log, masker)
        # What the run will do with its image, known before its first request: the first token
        # covers the writer or deleter made later too, with no second token request.
        auth.require(image_repository(config), run_actions(config))
        return cls(auth, repository or image_repository(config))

    @property
    def session(self) -> requests.Session:
        return self.auth.session

    @property
    def masker(self) -> SecretMasker:
        return self.auth.masker

    def _request(
        self,
        method: str,
        url: str,
        action: str,
        body: Callable[[], object] | None = None,
        needed: frozenset[Permission] | None = None,
        **kwargs,
    ) -> requests.Response:
        return self.auth.request(method, url, action, needed or self.needed, self.hints, body, **kwargs)

    # --- reads ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.repository}/{path}"

    def manifest_url(self, reference: str) -> str:
        return self.url(f"manifests/{checked_reference(reference, self.repository)}")

    def blob_url(self, digest: str) -> str:
        return self.url(f"blobs/{checked_reference(digest, self.repository, tags=False)}")

    def fail(self, response: requests.Response, action: str) -> RegistryError:
        return registry_error(response, action, self.hints)

    def get_manifest(self, reference: str) -> tuple[bytes, str] | None:
        """The manifest's bytes and media type, or None if there is none."""
        action = f"reading the manifest {self.repository}:{reference}"
        response = self._request("GET", self.manifest_url(reference), action, headers={"Accept": ACCEPT_MANIFESTS})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, action)
        body = response.content
        media_type = response.headers.get("Content-Type") or json.loads(body).get("mediaType", OCI_MANIFEST)
        return body, media_type

    def get_blob(self, digest: str) -> bytes | None:
        action = f"reading blob {digest} of {self.repository}"
        response = self._request("GET", self.blob_url(digest), action)
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
            tags.extend(self._page_of_tags(response, action))
            next_link = response.links.get("next", {}).get("url")
            url = self._next_page(url, next_link, action) if next_link else None
        return tags

    @staticmethod
    def _page_of_tags(response: requests.Response, action: str) -> list[str]:
        """The page's `tags`, or one ✖ when the answer is no tag list (a proxy's page, say)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        tags = body.get("tags") if isinstance(body, dict) else None
        if tags is None and isinstance(body, dict):
            return []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise RegistryError(
                f'{action} failed: {response.url} answered 200 with no tag list ({{"tags": [...]}}): '
                "check REGISTRY_URL."
            )
        return tags

    def _next_page(self, url: str, next_link: str, action: str) -> str:
        """The next page's URL; the credentials go along, so it must stay on the registry."""
        following = urljoin(url, next_link)
        if urlsplit(following)[:2] != urlsplit(self.base)[:2]:
            raise RegistryError(
                f"{action} stopped: the registry's next page of tags is on another host "
                f"({strip_userinfo(following)}), where the pipe does not send its credentials: check REGISTRY_URL."
            )
        return following

    def tag_digest(self, tag: str) -> str | None:
        """The manifest digest `tag` points at, or None when the tag does not exist."""
        action = f"reading {self.repository}:{tag}"
        url = self.manifest_url(tag)
        response = self._request("HEAD", url, action, headers={"Accept": ACCEPT_MANIFESTS})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise registry_error(response, action, self.hints)
        return response.headers.get("Docker-Content-Digest")


# Chunk size when a registry refuses a monolithic upload (and names no minimum).
DEFAULT_CHUNK = 16 << 20
DIGEST_HEADER = "Docker-Content-Digest"

# What to do about the registry's `{"errors": [{"code": …}]}`, by code.
CODE_HINTS = {
    "DENIED": "the credentials may not push this image: give them write access to the package and link it to "
    "this repository",
    "MANIFEST_INVALID": "the registry refused the image's manifest: check that it supports OCI images",
    "MANIFEST_BLOB_UNKNOWN": "a blob the manifest names is missing in the registry: re-run the step",
    "BLOB_UPLOAD_INVALID": "the registry lost the upload: re-run the step",
    "DIGEST_INVALID": "the uploaded bytes did not match their digest: re-run the step; if it persists, "
    "re-create the image archive",
    "SIZE_INVALID": "the uploaded bytes did not match their size: re-create the image archive",
    "TOOMANYREQUESTS": "the registry is rate-limiting: re-run the step later",
}
# Codes after which a fresh upload may succeed.
RETRY_CODES = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID"})


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryWriter(RegistryReader):
    """Push access to one repository (and pull access to the repositories it mounts from)."""

    actions = ("pull", "push")

    def __init__(self, auth: RegistryAuth, repository: str):
        super().__init__(auth, repository)
        self.hints = dict(self.hints) | {
            401: f"the registry refused these credentials for pushing to {self.repository}: {CHECK_CREDENTIALS}",
            403: CODE_HINTS["DENIED"],
        }

    # --- errors ---------------------------------------------------------------------------

    def fail(self, response: requests.Response, action: str) -> RegistryError:
        """The refusal as one actionable error; marked transient when another try may succeed."""
        hints = dict(self.hints)
        status, code = response.status_code, oci_error_code(response)
        if status == 401 and self.auth.uses_tokens:
            # The token endpoint accepted the credentials and a fresh token did not help.
            hints[401] = (
                f"the credentials were accepted but their token does not allow pushing to {self.repository}, even "
                "freshly issued: this is a permission problem: give the user write access to the package (and "
                "link the package to this repository)"
            )
        if code == "NAME_UNKNOWN":
            hints[status] = name_unknown_hint(self.image_name)
        elif code in CODE_HINTS and status != 401:
            hints[status] = CODE_HINTS[code]
        return registry_error(response, action, hints, transient=is_transient(response) or code in RETRY_CODES)

    @property
    def image_name(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    def with_retries(self, attempt: Callable[[], object], what: str):
        """`attempt()` again after transient failures, within the session's retry budget."""
        return retry(attempt, session_budget(self.session), what)

    # --- blobs ----------------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        action = f"checking blob {digest} in {self.repository}"
        response = self._request("HEAD", self.blob_url(digest), action)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.fail(response, action)

    def mount_from(self, repositories: Iterable[str]) -> None:
        """Repositories whose blobs this writer may mount: its token must allow reading them too."""
        for repository in repositories:
            self.auth.require(repository, ("pull",))

    def start_upload(self, query: Mapping[str, str] | None = None) -> requests.Response:
        action = f"starting an upload to {self.repository}"
        suffix = "?" + urlencode(query) if query else ""
        # A mount reads from the source repository: the authorization has to cover that too.
        source = (query or {}).get("from")
        needed = self.needed | self.auth.require(source, ("pull",)) if source else None
        response = self._request(
            "POST",
            self.url(f"blobs/uploads/{suffix}"),
            action,
            needed=needed,
            headers={"Content-Length": "0"},
            allow_redirects=False,
        )
        if response.status_code not in (201, 202):
            raise self.fail(response, action)
        return response

    def mount(self, digest: str, source_repository: str) -> str | None:
        """Mount `digest` from another repository: None when done (201), else the upload
        location the registry opened instead (202), to upload the bytes to."""
        response = self.start_upload({"mount": digest, "from": source_repository})
        return None if response.status_code == 201 else self.location(response)

    def location(self, response: requests.Response) -> str:
        where = response.headers.get("Location")
        if not where:
            raise RegistryError(
                f"the registry opened an upload to {self.repository} without a Location: check REGISTRY_URL."
            )
        return urljoin(response.url or self.base + "/", where)

    def upload(self, blob: Blob, location: str | None = None, on_read=None) -> None:
        """Upload `blob`: one PUT with the bytes; chunked when the registry refuses that."""
        if location is None:
            opened = self.start_upload()
            location = self.location(opened)
            if opened.status_code == 201:
                return
        action = f"uploading blob {blob.digest} to {self.repository}"
        response = self._request(
            "PUT",
            with_query(location, digest=blob.digest),
            action,
            body=lambda: blob.open(on_read),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
            allow_redirects=False,
        )
        if response.status_code == 413:
            # Too large for one request (a proxy's body limit): the chunked protocol instead.
            minimum = int(response.headers.get("OCI-Chunk-Min-Length") or 0)
            self.upload_chunked(blob, max(minimum, DEFAULT_CHUNK), on_read)
            return
        if response.status_code != 201:
            raise self.fail(response, action)

    def upload_chunked(self, blob: Blob, chunk: int, on_read=None) -> None:
        action = f"uploading blob {blob.digest} to {self.repository} in chunks"
        blob.verify()  # the chunks are read apart: the blob is checked as a whole first
        opened = self.start_upload()
        location = self.location(opened)
        chunk = max(chunk, int(opened.headers.get("OCI-Chunk-Min-Length") or 0))
        for start in range(0, blob.size, chunk):
            length = min(chunk, blob.size - start)
            piece = BlobSource(blob.source.path, blob.source.offset + start, length)
            response = self._request(
                "PATCH",
                location,
                action,
                body=lambda piece=piece: piece.open_with(on_read) if on_read else piece.open(),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(length),
                    "Content-Range": f"{start}-{start + length - 1}",
                },
                allow_redirects=False,
            )
            if response.status_code != 202:
                raise self.fail(response, action)
            location = self.location(response)
        response = self._request(
            "PUT", with_query(location, digest=blob.digest), action, headers={"Content-Length": "0"}
        )
        if response.status_code != 201:
            raise self.fail(response, action)

    # --- manifests ------------------------------------------------------------------------

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> str:
        action = f"pushing the manifest {self.repository}:{reference}"
        response = self._request(
            "PUT",
            self.manifest_url(reference),
            action,
            data=body,
            headers={"Content-Type": media_type},
            allow_redirects=False,
        )
        if response.status_code not in (200, 201):
            raise self.fail(response, action)
        expected = sha256_digest(body)
        said = response.headers.get(DIGEST_HEADER)
        if said and said != expected:
            raise RegistryError(
                f"{action} failed: the registry stored digest {said} instead of {expected}: "
                "re-run the step; if it persists, the registry rewrites manifests and cannot keep digests."
            )
        return expected


def with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


# A registry that keeps manifests forever answers a DELETE with 405 (code UNSUPPORTED).
NO_API_DELETES = (
    "the registry does not allow deletes through the API: delete the tags in the Bitbucket UI "
    "(the package's page in Bitbucket Packages)"
)


class RegistryDeleter(RegistryReader):
    """Reads and manifest deletes. Distribution's token auth wants the `delete` action for a
    DELETE (`repository:<name>:delete` or `*`), so the token asks for it. The API deletes
    manifests by digest, with every tag on them: it has no call that deletes a tag alone."""

    actions = ("pull", "delete")

    def __init__(self, auth: RegistryAuth, repository: str):
        super().__init__(auth, repository)
        # A DELETE by digest is idempotent (a second one answers 404, read as "already gone").
        auth.session.retry_methods = auth.session.retry_methods | {"DELETE"}
        self.hints = dict(self.hints) | DELETE_HINTS | {405: NO_API_DELETES}

    def fail(self, response: requests.Response, action: str) -> RegistryError:
        hints = dict(self.hints)
        if response.status_code == 401 and self.auth.uses_tokens:
            # The token endpoint accepted the credentials; the token it gave does not allow this.
            hints[401] = f"the credentials were accepted but may not delete in {self.repository}: {DELETE_HINTS[403]}"
        if oci_error_code(response) == "UNSUPPORTED":
            hints[response.status_code] = NO_API_DELETES
        return registry_error(response, action, hints)

    def delete_manifest(self, digest: str) -> bool:
        """Deletes one manifest; False when it was already gone (a re-run after an interruption,
        or a retry after a lost answer: a DELETE by digest is idempotent)."""
        action = f"deleting {self.repository}@{digest}"
        response = self._request("DELETE", self.manifest_url(digest), action)
        if response.status_code in (200, 202):
            return True
        if response.status_code == 404:
            return False
        raise self.fail(response, action)

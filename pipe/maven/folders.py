"""What a Maven cleanup needs from the repository beyond a deploy: folder listings (the index page
a repository serves for a folder URL ending in `/`, as nginx, Apache, Nexus and Artifactory do)
and deletes (WebDAV `DELETE` of a file, or of a folder with a trailing `/`)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import requests

from pipe.cleanup import DELETE_HINTS
from pipe.errors import RegistryError
from pipe.http import accepted, registry_error
from pipe.maven.deploy import MavenRepository

NO_API_DELETES = (
    "the repository does not allow deletes through the API: delete the versions in the Bitbucket UI "
    "(the package's page, Versions)"
)
CLEANUP_HINTS = {**DELETE_HINTS, 405: NO_API_DELETES, 501: NO_API_DELETES}
# Answers to a folder DELETE from servers that delete files but not whole folders: then the
# folder's files are deleted one by one.
_FOLDER_REFUSALS = (400, 405, 409, 501)
# Answers to the delete check that say deletes cannot work here; anything else lets the real
# deletes speak for themselves.
_DELETE_CHECK_REFUSALS = (401, 403, 405, 501)
_HREF = re.compile(r"""href\s*=\s*["']([^"'#?]+)""", re.IGNORECASE)
# Checksum files go after the file they describe, the POM after everything else: a folder that
# still holds its POM is still recognised (and finished) by the next run.
_CHECKSUM_SUFFIXES = (".md5", ".sha1", ".sha256", ".sha512", ".asc")


@dataclass(frozen=True)
class Listing:
    folders: tuple[str, ...]
    files: tuple[str, ...]


def parse_listing(page: str, folder_url: str) -> Listing:
    """The direct children a folder's index page links to (relative or absolute links)."""
    base = urlsplit(folder_url).path
    folders: dict[str, None] = {}
    files: dict[str, None] = {}
    for href in _HREF.findall(page):
        path = urlsplit(urljoin(folder_url, html.unescape(href))).path
        if not path.startswith(base) or path == base:
            continue
        name = unquote(path[len(base) :])
        if name.endswith("/") and "/" not in name[:-1]:
            folders[name[:-1]] = None
        elif name and "/" not in name:
            files[name] = None
    return Listing(tuple(folders), tuple(files))


def deletion_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """Artifacts first, each followed by its checksum files, the POM (and its checksums) last."""

    def key(name: str) -> tuple[bool, str, bool]:
        stem = next((name.removesuffix(s) for s in _CHECKSUM_SUFFIXES if name.endswith(s)), name)
        return (stem.endswith(".pom"), stem, stem != name)

    return sorted(names, key=key)


class CleanupRepository(MavenRepository):
    """The deploy's repository client, plus listing and deleting."""

    def listing(self, folder: str) -> Listing | None:
        """The folder's children, or None when the repository serves no index page for it."""
        action = f"listing {folder}/"
        response = self._request("GET", f"{folder}/", action)
        if response.status_code in (401, 403):
            raise registry_error(response, action)
        if response.status_code != 200 or "html" not in response.headers.get("Content-Type", "html"):
            return None
        return parse_listing(response.text, self.url(f"{folder}/"))

    def last_modified(self, path: str, action: str) -> str | None:
        """The file's Last-Modified header, None when the file or the header is missing."""
        response = self._request("HEAD", path, action)
        return response.headers.get("Last-Modified") if response.status_code == 200 else None

    def check_deletes(self, folder: str) -> None:
        """Before anything changes: a DELETE of a file that does not exist shows whether the
        repository takes deletes (404) or refuses them (405) or the token may not (403)."""
        response = self._request("DELETE", f"{folder}/.delete-check", f"checking that deletes are allowed in {folder}")
        if response.status_code in _DELETE_CHECK_REFUSALS:
            raise registry_error(response, f"checking that deletes are allowed in {folder}", CLEANUP_HINTS)

    def delete(self, path: str) -> bool:
        """True when the file was deleted, False when it was gone already."""
        response = self._request("DELETE", path, f"deleting {path}")
        if response.status_code == 404:
            return False
        if not accepted(response):
            raise registry_error(response, f"deleting {path}", CLEANUP_HINTS)
        return True

    def delete_folder(self, folder: str) -> None:
        """The folder in one request where the server allows it, else file by file."""
        action = f"deleting {folder}/"
        response = self._request("DELETE", f"{folder}/", action)
        if accepted(response) or response.status_code == 404:
            return
        if response.status_code not in _FOLDER_REFUSALS:
            raise registry_error(response, action, CLEANUP_HINTS)
        listing = self.listing(folder)
        if listing is None:
            raise refused_folder(response, action)
        for name in deletion_order(listing.files):
            self.delete(f"{folder}/{name}")


def refused_folder(response: requests.Response, action: str) -> RegistryError:
    return RegistryError(
        f"{action} failed: the repository answered {response.status_code} and lists no files to delete one by one: "
        f"{NO_API_DELETES}.",
        status=response.status_code,
    )

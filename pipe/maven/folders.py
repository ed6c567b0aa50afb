"""Folder listings of a Maven repository (the index page it serves for a folder URL ending in
`/`, as nginx, Apache, Nexus and Artifactory do), and the order a folder's files are deleted in."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

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

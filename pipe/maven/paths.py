"""Where things live in a Maven repository: the one place a repository path is made from
coordinates, versions and file names, and the checks that keep each of its parts inside its
folder and the URL meaning what it says.

A path is `<group as folders>/<artifactId>[/<version>][/<file name>]`. Every part is checked
before it is joined: Maven's own rules for coordinates (DefaultModelValidator: ids of letters,
digits, `_`, `-` and `.`; versions without `\\ / : " < > | ? *` or `${`), and on top of them what
would let a part leave its folder or change the URL (`.`/`..`, `%`, `#`, `?`, `;`, whitespace,
control characters, empty parts, names longer than a file system stores). Values read back from
a registry (versions in `maven-metadata.xml`, names in a folder listing) go through the same
checks before any request is built from them.
"""

from __future__ import annotations

import re
import unicodedata

from pipe.errors import InputError

METADATA = "maven-metadata.xml"
# What Maven accepts in a groupId / artifactId (DefaultModelValidator's ID_REGEX).
_ID = re.compile(r"[A-Za-z0-9_\-.]+")
# What Maven refuses in a version (DefaultModelValidator's ILLEGAL_VERSION_CHARS).
_MAVEN_VERSION_BANNED = '\\/:"<>|?*'
# What would end a path segment, decode into something else, or start a query, fragment or
# path parameter, in any part of a URL path.
_URL_BANNED = "/\\%#?;"
# A file or folder name: most file systems (and so most repositories) store at most this many bytes.
MAX_NAME_BYTES = 255


class UnsafePath(InputError):
    """A part of a repository path that could leave its folder or change the URL."""


def printable(value: str) -> str:
    """The value as it may be printed: characters that do not print (control characters, line
    separators) written as escapes, never sent raw to the log."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in value)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be one part of a repository path, or None when it can."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"'{name}' names a folder of the path itself"
    banned = next((c for c in name if c in _URL_BANNED), None)
    if banned is not None:
        return f"it contains '{banned}', which would change the URL"
    odd = next((c for c in name if c.isspace() or unicodedata.category(c).startswith("C")), None)
    if odd is not None:
        return "it contains a space" if odd == " " else f"it contains the character '{printable(odd)}'"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than the {MAX_NAME_BYTES} bytes a repository stores as one name"
    return None


def id_problem(value: str, what: str) -> str | None:
    """Why a groupId or artifactId (`what`) is not valid, or None: Maven's pattern, and for a
    groupId, parts between its dots that are folder names."""
    if not _ID.fullmatch(value):
        return "use letters, digits, '.', '-' and '_' only"
    parts = value.split(".") if what == "groupId" else [value]
    if what == "groupId" and "" in parts:
        return "its parts between dots must not be empty (e.g. com.example)"
    return next((problem for part in parts if (problem := name_problem(part))), None)


def version_problem(version: str) -> str | None:
    """Why `version` cannot be a Maven version in a repository, or None."""
    if "${" in version:
        return "it holds an unresolved ${…} expression"
    banned = next((c for c in version if c in _MAVEN_VERSION_BANNED), None)
    if banned is not None:
        return f"it contains '{banned}'"
    return name_problem(version)


def checked_name(name: str, what: str) -> str:
    problem = name_problem(name)
    if problem:
        raise UnsafePath(f"{what} '{printable(name)}' cannot be part of a repository URL ({problem}): rename it.")
    return name


def repository_path(group_id: str, artifact_id: str, version: str | None = None, name: str | None = None) -> str:
    """`<group as folders>/<artifactId>[/<version>][/<name>]`, every part checked (UnsafePath)."""
    for value, what in ((group_id, "groupId"), (artifact_id, "artifactId")):
        problem = id_problem(value, what)
        if problem:
            raise UnsafePath(f"{what} '{printable(value)}' is not valid: {problem}.")
    parts = [*group_id.split("."), artifact_id]
    if version is not None:
        problem = version_problem(version)
        if problem:
            raise UnsafePath(f"version '{printable(version)}' is not valid ({problem}).")
        parts.append(version)
    if name is not None:
        parts.append(checked_name(name, "the file name"))
    return "/".join(parts)


def path_problem(path: str) -> str | None:
    """Why a relative repository path (a folder may end with '/') is unsafe, or None."""
    parts = path.removesuffix("/").split("/")
    return next((f"'{printable(part)}': {problem}" for part in parts if (problem := name_problem(part))), None)

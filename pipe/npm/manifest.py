"""package.json: read it (from a folder or from inside a `.tgz`), validate it as npm would before
a publish, apply `VERSION`, and build the registry's PUT document around it."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from pipe.context import PipelinesRun
from pipe.errors import ConfigError, InputError
from pipe.npm.normalize import publish_manifest
from pipe.npm.package_tree import PackageTree, TarballTree
from pipe.versioning import SemVer, default_dist_tag, strip_v

MAX_NAME_LENGTH = 214
# Real package.json files are a few KB; a huge one is a mistake (or an attack on the registry).
MAX_PACKAGE_JSON_BYTES = 1024 * 1024
# Objects and arrays nested deeper than this are refused: real manifests nest a few levels (the
# deepest, `exports` conditions, rarely ten), and every later step may walk the document.
MAX_JSON_NESTING = 100
# Characters npm refuses in new package names (validate-npm-package-name).
_SPECIAL_NAME_CHARS = re.compile(r"[~'!()*]")
_SCOPED_NAME = re.compile(r"^@([^/]+)/([^/]+)$")
_RESERVED_NAMES = ("node_modules", "favicon.ico")
_DIST_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# npm's semver refuses a version longer than this, or with a major/minor/patch above
# Number.MAX_SAFE_INTEGER: npm cannot install such a version, so it must never be published.
MAX_VERSION_LENGTH = 256
MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class PackageJson:
    """A parsed package.json and the exact bytes it was read from (kept, so that an unchanged
    manifest goes into the tarball byte for byte, as `npm pack` puts it)."""

    data: dict
    raw: bytes
    source: str  # where it was read from, for messages


def parse_package_json(raw: bytes, source: str) -> PackageJson:
    if len(raw) > MAX_PACKAGE_JSON_BYTES:
        raise InputError(
            f"{source} is {len(raw) // 1024} KB, more than the {MAX_PACKAGE_JSON_BYTES // 1024} KB a package.json "
            "may hold here: keep only the package's metadata in it (registries refuse oversized documents)."
        )
    too_deep = False
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text: save it as UTF-8 and re-run.") from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"{source} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}): "
            "fix the syntax (`npm pkg get name` shows whether npm can read it)."
        ) from None
    except RecursionError:  # the parser's own stack ran out: nested far beyond the limit below
        data, too_deep = None, True
    if too_deep or nested_deeper_than(data, MAX_JSON_NESTING):
        raise InputError(
            f"{source} nests objects or arrays more than {MAX_JSON_NESTING} levels deep: no package.json needs "
            "that; keep its fields to the package's metadata."
        )
    if not isinstance(data, dict):
        raise InputError(f"{source} must hold a JSON object ({{...}}): fix its content.")
    return PackageJson(data=data, raw=raw, source=source)


def nested_deeper_than(value: object, limit: int) -> bool:
    """Does `value` nest objects/arrays more than `limit` levels? Walked with a stack of its own,
    so no depth can exhaust Python's."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def read_folder_package_json(folder: Path, shown: str) -> PackageJson:
    path = folder / "package.json"
    if not path.is_file():
        raise InputError(
            f"{shown} has no package.json: point NPM_PACKAGE at the package folder (the one with "
            "package.json) or at a .tgz made by `npm pack`."
        )
    return parse_package_json(path.read_bytes(), f"{shown}/package.json")


def _tarball_root_member(names: list[str], wanted: str) -> str | None:
    """`package/package.json` (or `<any root>/package.json`: some packers use another root)."""
    for name in names:
        parts = PurePosixPath(name).parts
        if len(parts) == 2 and parts[1] == wanted:
            return name
    return None


def read_tarball_package(tgz: Path, shown: str) -> tuple[PackageJson, TarballTree]:
    """The manifest inside a `.tgz`, and its files as npm's normalization looks at them, without
    unpacking it to disk."""
    try:
        with tarfile.open(tgz, mode="r:gz") as archive:
            members = archive.getmembers()
            names = [m.name for m in members if m.isfile()]
            manifest_name = _tarball_root_member(names, "package.json")
            if manifest_name is None:
                raise InputError(
                    f"{shown} has no package/package.json: it is not an npm package tarball; "
                    "make it with `npm pack` or point NPM_PACKAGE at the package folder."
                )
            manifest = parse_package_json(archive.extractfile(manifest_name).read(), f"{shown}:package.json")
            return manifest, TarballTree(tgz, members)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InputError(
            f"{shown} is not a readable gzip tarball ({error}): make it with `npm pack` or point "
            "NPM_PACKAGE at the package folder."
        ) from None


def validate_name(name: object, source: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f'{source} has no "name": add "name": "<package name>" (for example "@scope/my-lib").')
    problem = name_problem(name)
    if problem:
        raise InputError(f'{source} "name" "{name}" is not a valid npm package name ({problem}): rename the package.')
    return name


def name_problem(name: str) -> str | None:
    """Why npm would refuse `name` for a new package, or None."""
    if len(name) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters"
    if name != name.strip():
        return "leading or trailing spaces"
    if name != name.lower():
        return "capital letters"
    if name.startswith((".", "_")):
        return "starts with . or _"
    if name in _RESERVED_NAMES:
        return "a reserved name"
    if _SPECIAL_NAME_CHARS.search(name.split("/")[-1]):
        return "contains one of ~'!()*"
    scoped = _SCOPED_NAME.match(name)
    parts = scoped.groups() if scoped else (name,)
    if name.startswith("@") and not scoped:
        return "a scoped name must look like @scope/name"
    if any(quote(part, safe="") != part for part in parts):
        return "contains characters that are not URL-safe"
    return None


NOT_SEMVER = "not a semantic version"


def read_npm_version(text: str) -> SemVer | str:
    """`text` as a version npm's semver accepts (a leading `v` allowed), or why not: NOT_SEMVER,
    or the limit it breaks. The length goes first: it keeps absurd digit runs from being parsed."""
    if len(text) > MAX_VERSION_LENGTH:
        return f"longer than {MAX_VERSION_LENGTH} characters, the most npm's semver accepts"
    parsed = SemVer.parse(text)
    if parsed is None:
        return NOT_SEMVER
    for part, number in (("major", parsed.major), ("minor", parsed.minor), ("patch", parsed.patch)):
        if number > MAX_SAFE_INTEGER:
            return f"its {part} number is above {MAX_SAFE_INTEGER}, the largest npm's semver accepts"
    return parsed


def validate_version(version: object, source: str) -> SemVer:
    if not isinstance(version, str) or not version.strip():
        raise InputError(f'{source} has no "version": add "version": "1.0.0", or set VERSION.')
    read = read_npm_version(version)
    if read == NOT_SEMVER:
        raise InputError(
            f'{source} "version" "{_shorten(version)}" is not a semantic version: use MAJOR.MINOR.PATCH '
            '(for example "1.4.0" or "2.0.0-beta.1"), or set VERSION.'
        )
    if isinstance(read, str):
        raise InputError(
            f'{source} "version" "{_shorten(version)}" cannot be published ({read}, so npm could not install it): '
            "use a smaller version, or set VERSION."
        )
    return read


def _shorten(text: str, limit: int = 80) -> str:
    """A user's value for a message: whole when short, else its start (a 300-character version
    would bury the advice)."""
    return text if len(text) <= limit else text[:limit] + "…"


def check_not_private(manifest: Mapping, source: str) -> None:
    if manifest.get("private") is True:
        raise InputError(
            f'{source} has "private": true, which tells npm never to publish it: remove the "private" '
            "field to publish this package."
        )


def publish_version(manifest: Mapping, override: str | None, source: str) -> SemVer:
    """The version to publish: VERSION (a leading `v` dropped) or package.json's. Build metadata
    is dropped, as npm's `semver.clean` does, so `1.2.3+build.4` publishes as 1.2.3."""
    if override:
        read = read_npm_version(strip_v(override))
        if read == NOT_SEMVER:
            raise ConfigError(
                f"VERSION '{_shorten(override)}' is not a semantic version: use MAJOR.MINOR.PATCH such as 1.4.0 "
                "(a leading v is fine, so VERSION: $BITBUCKET_TAG works on tag pipelines)."
            )
        if isinstance(read, str):
            raise ConfigError(
                f"VERSION '{_shorten(override)}' cannot be published ({read}, so npm could not install it): "
                "use a smaller version."
            )
        parsed = read
    else:
        parsed = validate_version(manifest.get("version"), source)
    return SemVer(parsed.major, parsed.minor, parsed.patch, parsed.prerelease)


def check_tag_matches(context: PipelinesRun, version: SemVer, from_variable: bool) -> None:
    """On a tag pipeline for a semver tag, publishing another version is almost always a forgotten
    bump: stop before anything is written."""
    tagged = context.tag_version
    if tagged is None:
        return
    tagged = SemVer(tagged.major, tagged.minor, tagged.patch, tagged.prerelease)
    if str(tagged) == str(version):
        return
    origin = "VERSION" if from_variable else "package.json"
    raise ConfigError(
        f"this tag pipeline is for {context.tag} but the version to publish is {version} (from {origin}): "
        f"set VERSION: $BITBUCKET_TAG in the pipe's variables, or bump package.json's version to {tagged} "
        "and tag that commit."
    )


def choose_dist_tag(explicit: str | None, manifest: Mapping, version: SemVer) -> str:
    """NPM_DIST_TAG, else publishConfig.tag (as npm honours it), else latest / the prerelease word."""
    publish_config = manifest.get("publishConfig")
    configured = publish_config.get("tag") if isinstance(publish_config, Mapping) else None
    tag = explicit or (configured if isinstance(configured, str) and configured else None)
    if tag is None:
        return default_dist_tag(version)
    if not _DIST_TAG.match(tag) or SemVer.parse(tag) is not None or re.match(r"^v?\d", tag):
        raise ConfigError(
            f"NPM_DIST_TAG '{tag}' is not a usable dist-tag (npm refuses tags that look like versions or hold "
            "spaces or slashes): use a word such as latest, next or beta."
        )
    return tag


def tarball_manifest_bytes(package: PackageJson, version: str) -> bytes:
    """What goes into package/package.json: the user's file untouched when its version is the one
    published, else the same object with the version replaced (npm's 2-space JSON)."""
    if package.data.get("version") == version:
        return package.raw
    updated = dict(package.data)
    updated["version"] = version
    return (json.dumps(updated, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def unscoped(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith("@") and "/" in name else name


def attachment_name(name: str, version: str) -> str:
    """npm names the attachment `<name>-<version>.tgz`, scope included."""
    return f"{name}-{version}.tgz"


def tarball_url(registry_url: str, name: str, version: str) -> str:
    return f"{registry_url}{name}/-/{unscoped(name)}-{version}.tgz"


@dataclass(frozen=True)
class Dist:
    integrity: str  # sha512-<base64>
    shasum: str  # sha1 hex
    size: int


def version_manifest(
    data: Mapping, version: str, tree: PackageTree, dist: Dist, registry_url: str, from_tarball: bool = False
) -> dict:
    """The manifest as npm sends it under `versions[<version>]`: package.json normalized as
    `npm publish` normalizes it (`pipe/npm/normalize.py`), with `_id` and `dist`."""
    manifest = publish_manifest(dict(data), version, tree, from_tarball)
    name = manifest["name"]
    manifest["_id"] = f"{name}@{version}"
    given = manifest.get("dist")
    manifest["dist"] = {
        **(given if isinstance(given, dict) else {}),
        "integrity": dist.integrity,
        "shasum": dist.shasum,
        "tarball": document_tarball_url(registry_url, name, version),
    }
    return manifest


def document_tarball_url(registry_url: str, name: str, version: str) -> str:
    """`dist.tarball` as npm publish writes it: the attachment's name (scope included) under the
    package, and http:// even for an https registry — npm's choice, so that a mirror serving
    plain http works; clients fetch from the registry's own scheme, and registries rewrite it."""
    url = f"{registry_url}{name}/-/{attachment_name(name, version)}"
    return "http://" + url[len("https://") :] if url.startswith("https://") else url


def publish_document(manifest: Mapping, dist_tags: Mapping[str, str]) -> dict:
    """The PUT document without `_attachments` (the tarball is streamed after it)."""
    publish_config = manifest.get("publishConfig")
    access = publish_config.get("access") if isinstance(publish_config, Mapping) else None
    document = {"_id": manifest["name"], "name": manifest["name"]}
    if "description" in manifest:  # npm leaves the key out when there is none
        document["description"] = manifest["description"]
    return document | {
        "dist-tags": dict(dist_tags),
        "versions": {manifest["version"]: dict(manifest)},
        "access": access if access in ("public", "restricted") else None,
    }

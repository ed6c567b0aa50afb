"""Dependency ranges made publishable, as `pnpm pack` writes them: `workspace:` ranges become the
sibling's version or the written range, `catalog:` ranges the catalog's entry, `jsr:` ranges an
npm alias of the JSR mirror. Nothing with a protocol a consumer's install cannot resolve is ever
published: a range that names no sibling, a sibling whose version does not satisfy the range, a
catalog entry that does not exist — each stops the run before anything is written.

pnpm's rules (pnpm 10, `createExportableManifest`), for dependencies, devDependencies and
optionalDependencies:
- `workspace:*`, `workspace:^`, `workspace:~`, `workspace:` → the sibling's version with that
  operator (none for `*`); `workspace:<alias>@^` the same for the sibling named <alias>, written
  `npm:<alias>@^1.2.3` when the dependency has another name;
- `workspace:./path` → the version of the sibling in that folder (an `npm:` alias when named otherwise);
- `workspace:<range>` → `<range>`; `workspace:<name>@<range>` → `npm:<name>@<range>`.
peerDependencies: `workspace:` followed by an operator (`^ ~ * >= > <= <`) and no version → the
operator and the sibling's version (`*` none); with a version, `workspace:` dropped.
A `workspace:<range>` the sibling's version does not satisfy is refused (pnpm 10 links the sibling
anyway and publishes the range, which the version published beside it does not satisfy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import InputError
from pipe.npm.manifest import PackageJson
from pipe.npm.semver_range import RangeError, parse_range, satisfies
from pipe.npm.workspace_graph import Member
from pipe.versioning import SemVer

WORKSPACE = "workspace:"
CATALOG = "catalog:"
JSR = "jsr:"
DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies")
PEER_FIELD = "peerDependencies"
_WORKSPACE_SHORT = re.compile(r"^workspace:(?:(.+)@)?([\^~*])?$")
_PEER_WORKSPACE = re.compile(r"workspace:([\^~*]|>=|>|<=|<)?((\d+|[xX*])(\.(\d+|[xX*])){0,2})?")
_JSR_NAME = re.compile(r"^@([^/@]+)/([^/@]+)(?:@(.*))?$")


@dataclass(frozen=True)
class Resolution:
    """What the ranges are resolved against: the workspace's packages and the versions they are
    published with, and the catalogs."""

    members: tuple[Member, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    catalogs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    where: str = "the workspace"  # for messages: what the catalogs/siblings come from


@dataclass(frozen=True)
class _Dependency:
    """One dependency of one package, for messages."""

    package: Member | None
    source: str
    name: str
    spec: str
    folder: Path

    def problem(self, what: str, fix: str) -> InputError:
        return InputError(f'{self.source} depends on "{self.name}": "{self.spec}", but {what}: {fix}')


def needs_resolution(data: Mapping) -> bool:
    """Does this package.json hold a range only a workspace can resolve?"""
    return any(
        isinstance(spec, str) and (WORKSPACE in spec or spec.startswith(CATALOG))
        for field_name in (*DEPENDENCY_FIELDS, PEER_FIELD)
        if isinstance(data.get(field_name), dict)
        for spec in data[field_name].values()
    )


def publishable_dependencies(data: dict, folder: Path, source: str, resolution: Resolution) -> dict:
    """`data` (a copy) with every dependency field's ranges made publishable."""
    data = json.loads(json.dumps(data))
    for field_name in (*DEPENDENCY_FIELDS, PEER_FIELD):
        ranges = data.get(field_name)
        if not isinstance(ranges, dict):
            continue
        for name, spec in ranges.items():
            if isinstance(spec, str):
                dependency = _Dependency(None, source, name, spec, folder)
                ranges[name] = convert(dependency, resolution, peer=field_name == PEER_FIELD)
    return data


def rewrite_package(package: PackageJson, folder: Path, resolution: Resolution) -> PackageJson:
    """`package` with its ranges made publishable; the same object when nothing needed it."""
    if not needs_resolution(package.data) and not _has_jsr(package.data):
        return package
    data = publishable_dependencies(package.data, folder, package.source, resolution)
    raw = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return PackageJson(data=data, raw=raw, source=package.source)


def _has_jsr(data: Mapping) -> bool:
    return any(
        isinstance(spec, str) and spec.startswith(JSR)
        for field_name in (*DEPENDENCY_FIELDS, PEER_FIELD)
        if isinstance(data.get(field_name), dict)
        for spec in data[field_name].values()
    )


def convert(dependency: _Dependency, resolution: Resolution, peer: bool) -> str:
    """pnpm's converters in pnpm's order: workspace:, then catalog:, then jsr:."""
    spec = dependency.spec
    if peer and WORKSPACE in spec:
        spec = _peer_workspace(dependency, resolution)
    elif not peer and spec.startswith(WORKSPACE):
        spec = _workspace(dependency, resolution)
    if spec.startswith(CATALOG):
        spec = _catalog(dependency, resolution)
    if spec.startswith(JSR):
        spec = _jsr(dependency, spec)
    return spec


def _workspace(dependency: _Dependency, resolution: Resolution) -> str:
    spec = dependency.spec
    short = _WORKSPACE_SHORT.match(spec)
    if short:
        target = _sibling_named(dependency, short.group(1) or dependency.name, resolution)
        token = short.group(2) if short.group(2) in ("^", "~") else ""
        version = _version_of(dependency, target, resolution)
        return f"{token}{version}" if target.name == dependency.name else f"npm:{target.name}@{token}{version}"
    body = spec[len(WORKSPACE) :]
    if body.startswith(("./", "../")):
        target = _sibling_in(dependency, (dependency.folder / body).resolve(), resolution)
        version = _version_of(dependency, target, resolution)
        return version if target.name == dependency.name else f"npm:{target.name}@{version}"
    aliased = body.rfind("@") > 0
    name, wanted = body.rsplit("@", 1) if aliased else (dependency.name, body)
    target = _sibling_named(dependency, name, resolution)
    _check_satisfied(dependency, target, wanted, resolution)
    return f"npm:{body}" if "@" in body else body


def _peer_workspace(dependency: _Dependency, resolution: Resolution) -> str:
    spec = dependency.spec
    if spec.startswith((WORKSPACE + "./", WORKSPACE + "../")):
        # pnpm writes the version followed by the path ("1.0.0../lib"), a range no install reads.
        raise dependency.problem(
            "pnpm publishes a folder path in peerDependencies as an invalid range",
            "write workspace:^ (or workspace:*, workspace:~) for the peer dependency.",
        )
    match = _PEER_WORKSPACE.search(spec)
    if match is None:
        return spec.replace(WORKSPACE, "", 1)
    operator, version = match.group(1) or "", match.group(2)
    target = _sibling_named(dependency, dependency.name, resolution)
    if version:
        _check_satisfied(dependency, target, spec.replace(WORKSPACE, "", 1), resolution)
        return spec.replace(WORKSPACE, "", 1)
    token = "" if operator == "*" else operator
    published = spec[: match.start()] + token + _version_of(dependency, target, resolution) + spec[match.end() :]
    try:
        parse_range(published)
    except RangeError:
        # pnpm splices the version into whatever surrounds `workspace:` (an alias, a path).
        raise dependency.problem(
            f'pnpm would publish it as "{published}", which is not a version range',
            "write workspace:^ (or workspace:*, workspace:~) for the peer dependency.",
        ) from None
    return published


def _sibling_named(dependency: _Dependency, name: str, resolution: Resolution) -> Member:
    target = next((m for m in resolution.members if m.name == name), None)
    if target is None:
        raise dependency.problem(
            f"{resolution.where} has no package named {name}",
            "fix the range, or add the package to the workspace.",
        )
    return target


def _sibling_in(dependency: _Dependency, folder: Path, resolution: Resolution) -> Member:
    target = next((m for m in resolution.members if m.folder.resolve() == folder), None)
    if target is None:
        raise dependency.problem(
            f"{resolution.where} has no package in that folder", "fix the path, or add the folder to the workspace."
        )
    return target


def _version_of(dependency: _Dependency, target: Member, resolution: Resolution) -> str:
    version = resolution.versions.get(target.name) or target.package.data.get("version")
    if not isinstance(version, str) or not version:
        raise dependency.problem(
            f"{target.relative}/package.json has no version to publish it with",
            'add "version" there, or set VERSION.',
        )
    return version


def _check_satisfied(dependency: _Dependency, target: Member, wanted: str, resolution: Resolution) -> None:
    version = _version_of(dependency, target, resolution)
    parsed = SemVer.parse(version)
    try:
        ok = parsed is not None and satisfies(parsed, wanted)
    except RangeError:
        raise dependency.problem(
            f'"{wanted}" is not a version range pnpm can resolve in {resolution.where}',
            "write workspace:*, workspace:^, workspace:~ or workspace:<range>.",
        ) from None
    if not ok:
        raise dependency.problem(
            f"{target.name} in {target.relative} is at {version}, which does not satisfy {wanted}",
            f"change the range (e.g. workspace:^), or the version of {target.name}.",
        )


def _catalog(dependency: _Dependency, resolution: Resolution) -> str:
    name = dependency.spec[len(CATALOG) :].strip() or "default"
    shown = "default catalog" if name == "default" else f"catalog '{name}'"
    entries = resolution.catalogs.get(name)
    if entries is None:
        raise dependency.problem(
            f"{resolution.where} has no {shown}",
            "define it (catalog: / catalogs: in pnpm-workspace.yaml) or fix the catalog name.",
        )
    entry = entries.get(dependency.name)
    if entry is None:
        raise dependency.problem(
            f"the {shown} in {resolution.where} has no entry for {dependency.name}",
            "add the entry to the catalog, or write the range in package.json.",
        )
    if entry.startswith((CATALOG, WORKSPACE, "link:", "file:")):
        raise dependency.problem(
            f"the {shown} gives {dependency.name} the range {entry!r}, which pnpm does not accept in a catalog",
            "write a version range there.",
        )
    return entry


def _jsr(dependency: _Dependency, spec: str) -> str:
    """`jsr:@scope/name@^1` → `npm:@jsr/scope__name@^1` (the npm mirror of JSR); `jsr:^1` for a
    dependency named `@scope/name` likewise."""
    body = spec[len(JSR) :]
    named = _JSR_NAME.match(body)
    if named:
        scope, name, selector = named.group(1), named.group(2), named.group(3)
    else:
        own = _JSR_NAME.match(dependency.name)
        if own is None:
            raise dependency.problem(
                "a JSR package's name must be scoped (@scope/name)", "write jsr:@scope/name@<range>."
            )
        scope, name, selector = own.group(1), own.group(2), body or None
    return f"npm:@jsr/{scope}__{name}" + (f"@{selector}" if selector else "")

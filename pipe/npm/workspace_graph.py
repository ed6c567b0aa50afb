"""An npm workspace as data: which folders its `workspaces` globs name, which packages they hold,
which of them a run publishes, in which order, and the `workspace:` ranges rewritten to the
versions being published.

Globs follow npm's map-workspaces: a pattern names folders (each with a package.json) relative to
the root, `*`/`?`/`[…]` stay within one path segment and do not match a leading dot, `**` spans
segments, `{a,b}` expands, a `!pattern` removes what earlier patterns matched (a later pattern can
add it back), and nothing under `node_modules` is ever a workspace.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipe.errors import ConfigError, InputError
from pipe.npm.manifest import PackageJson, parse_package_json

DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
# What a consumer's install resolves (devDependencies stay with the package's own developers).
RUNTIME_FIELDS = ("dependencies", "peerDependencies", "optionalDependencies")
WORKSPACE_PROTOCOL = "workspace:"
# How deep `**` looks for package folders; real monorepos nest two or three levels.
MAX_GLOBSTAR_DEPTH = 8
# `workspace:<name>@<range>` refers to a sibling under another name (an alias).
_ALIASED = re.compile(r"^((?:@[^/@]+/)?[^/@]+)@(.*)$")


@dataclass(frozen=True)
class Member:
    """One workspace package: its folder (absolute, and as written relative to the root) and manifest."""

    folder: Path
    relative: str
    package: PackageJson

    @property
    def name(self) -> str:
        name = self.package.data.get("name")
        return name if isinstance(name, str) and name else Path(self.relative).name

    @property
    def private(self) -> bool:
        return self.package.data.get("private") is True


def workspace_patterns(data: Mapping, source: str) -> list[str]:
    """The `workspaces` globs: an array, or `{"packages": [...]}` as Yarn writes it."""
    declared = data.get("workspaces")
    if isinstance(declared, Mapping):
        declared = declared.get("packages", [])
    if not isinstance(declared, list) or not all(isinstance(item, str) for item in declared):
        raise InputError(
            f'{source} "workspaces" must be a list of folder globs (e.g. ["packages/*"]) or '
            '{"packages": [...]}: fix the field.'
        )
    return [item.strip() for item in declared if item.strip()]


# ---------------------------------------------------------------------------------------------
# Globs
# ---------------------------------------------------------------------------------------------


def expand_braces(pattern: str) -> list[str]:
    """`a/{b,c}` -> `a/b`, `a/c` (nested sets too); a `{` without a matching `}` stays literal."""
    depth, start = 0, None
    for index, char in enumerate(pattern):
        if char == "{":
            depth, start = depth + 1, index if depth == 0 else start
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                options = _split_top_level(pattern[start + 1 : index])
                if len(options) < 2:
                    continue
                head, tail = pattern[:start], pattern[index + 1 :]
                return [expanded for option in options for expanded in expand_braces(head + option + tail)]
    return [pattern]


def _split_top_level(body: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in body:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current += char
    return [*parts, current]


def _segment_regex(segment: str) -> re.Pattern:
    out, index = [], 0
    while index < len(segment):
        char = segment[index]
        closing = segment.find("]", index + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif closing != -1:
            body = segment[index + 1 : closing]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            index = closing
        else:
            out.append(re.escape(char))
        index += 1
    # Wildcards do not match a leading dot, as in glob without `dot`.
    prefix = "" if segment.startswith(".") else r"(?!\.)"
    return re.compile(prefix + "".join(out) + r"\Z")


def _normalised(pattern: str) -> str:
    return re.sub(r"^\.?/+", "", pattern.replace("\\", "/")).rstrip("/")


def glob_matches(pattern: str, relative: str) -> bool:
    """Does the folder `relative` (posix, from the root) match the workspace glob `pattern`?"""
    parts = relative.split("/") if relative else []
    return any(_match_segments(option.split("/"), parts) for option in expand_braces(_normalised(pattern)))


def _match_segments(segments: list[str], parts: list[str]) -> bool:
    if not segments:
        return not parts
    head, rest = segments[0], segments[1:]
    if head == "**":
        return any(_match_segments(rest, parts[skip:]) for skip in range(len(parts) + 1))
    if not parts or not _segment_regex(head).match(parts[0]):
        return False
    return _match_segments(rest, parts[1:])


def _candidate_folders(root: Path, depth: int) -> list[str]:
    """Folders below `root` (posix, relative), skipping node_modules and dot folders (glob's `*` and
    `**` do not enter them either)."""
    found = []
    for current, dirs, _files in os.walk(root):
        level = 0 if Path(current) == root else len(Path(current).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if d != "node_modules" and not d.startswith(".")) if level < depth else []
        found += [(Path(current) / d).relative_to(root).as_posix() for d in dirs]
    return found


def matched_folders(root: Path, patterns: list[str]) -> list[str]:
    """The folders the patterns name, in pattern order (sorted within one pattern), each once."""
    positive = [_normalised(p) for p in patterns if not p.startswith("!")]
    deep = any("**" in p for p in positive)
    depth = MAX_GLOBSTAR_DEPTH if deep else max((p.count("/") + 1 for p in positive), default=0)
    candidates = _candidate_folders(root, depth)
    chosen: list[str] = []
    for pattern in patterns:
        negated = pattern.startswith("!")
        hits = [c for c in candidates if glob_matches(pattern.lstrip("!"), c)]
        if negated:
            chosen = [c for c in chosen if c not in hits]
        else:
            chosen += [c for c in hits if c not in chosen]
    return chosen


# ---------------------------------------------------------------------------------------------
# Members and selection
# ---------------------------------------------------------------------------------------------


def discover(root: Path, patterns: list[str], source: str) -> list[Member]:
    members = []
    for relative in matched_folders(root, patterns):
        manifest = root / relative / "package.json"
        if manifest.is_file():
            members.append(
                Member(root / relative, relative, parse_package_json(manifest.read_bytes(), f"{relative}/package.json"))
            )
    if not members:
        raise InputError(
            f'{source} "workspaces" ({", ".join(patterns) or "empty"}) names no folder with a package.json: '
            "fix the globs (they are relative to the workspace root), or remove the field to publish the root package."
        )
    by_name: dict[str, list[str]] = {}
    for member in members:
        by_name.setdefault(member.name, []).append(member.relative)
    twice = {name: folders for name, folders in by_name.items() if len(folders) > 1}
    if twice:
        clashes = "; ".join(f"{name} in {', '.join(folders)}" for name, folders in twice.items())
        raise InputError(f"the workspace has several packages with the same name ({clashes}): give each its own name.")
    return members


def describe(members: list[Member]) -> str:
    return ", ".join(f"{m.name} ({m.relative}{', private' if m.private else ''})" for m in members)


def select(members: list[Member], wanted: tuple[str, ...], root: Path) -> list[Member]:
    """The members to publish: the public ones, or those NPM_WORKSPACES names (by name or folder)."""
    if not wanted:
        return [member for member in members if not member.private]
    chosen: list[Member] = []
    for entry in wanted:
        member = _find(members, entry, root)
        if member is None:
            raise ConfigError(
                f"NPM_WORKSPACES names '{entry}', which is not a package of the workspace: use one of "
                f"{describe(members)} (a name or a folder)."
            )
        if member.private:
            raise ConfigError(
                f'NPM_WORKSPACES names {member.name}, whose package.json has "private": true: remove it from '
                'NPM_WORKSPACES, or remove "private" to publish it.'
            )
        if member not in chosen:
            chosen.append(member)
    return [member for member in members if member in chosen]


def _find(members: list[Member], entry: str, root: Path) -> Member | None:
    folder = (root / entry).resolve()
    return next((m for m in members if entry == m.name or folder == m.folder.resolve()), None)


# ---------------------------------------------------------------------------------------------
# workspace: ranges
# ---------------------------------------------------------------------------------------------


def published_range(spec: str, sibling_version: str) -> str:
    """What pnpm publishes for a `workspace:` range: `*` the exact version, `^`/`~` that operator on
    it, any other range as written."""
    body = spec[len(WORKSPACE_PROTOCOL) :]
    if body in ("*", ""):
        return sibling_version
    if body in ("^", "~"):
        return body + sibling_version
    return body


def rewrite_workspace_ranges(member: Member, members: list[Member], versions: Mapping[str, str]) -> PackageJson:
    """`member`'s package.json with its `workspace:` ranges made publishable; unchanged when it has none."""
    data = json.loads(json.dumps(member.package.data))
    changed = False
    for field_name in DEPENDENCY_FIELDS:
        ranges = data.get(field_name)
        if not isinstance(ranges, dict):
            continue
        for dependency, spec in ranges.items():
            if isinstance(spec, str) and spec.startswith(WORKSPACE_PROTOCOL):
                ranges[dependency] = _resolve(member, dependency, spec, members, versions)
                changed = True
    if not changed:
        return member.package
    raw = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return PackageJson(data=data, raw=raw, source=member.package.source)


def _resolve(member: Member, dependency: str, spec: str, members: list[Member], versions: Mapping[str, str]) -> str:
    body = spec[len(WORKSPACE_PROTOCOL) :]
    if body.startswith((".", "/")):
        folder = (member.folder / body).resolve()
        target = next((m for m in members if m.folder.resolve() == folder), None)
        return _version_of(member, dependency, spec, target, versions)
    aliased = _ALIASED.match(body)
    if aliased and not body.startswith(("^", "~")):
        target = next((m for m in members if m.name == aliased.group(1)), None)
        version = _version_of(member, dependency, spec, target, versions)
        return f"npm:{target.name}@{published_range(WORKSPACE_PROTOCOL + aliased.group(2), version)}"
    target = next((m for m in members if m.name == dependency), None)
    return published_range(spec, _version_of(member, dependency, spec, target, versions))


def _version_of(member: Member, dependency: str, spec: str, target: Member | None, versions: Mapping[str, str]) -> str:
    if target is None:
        raise InputError(
            f'{member.package.source} depends on "{dependency}": "{spec}", but the workspace has no such package: '
            "fix the range, or add the package to the workspace."
        )
    version = versions.get(target.name)
    if not version:
        raise InputError(
            f'{member.package.source} depends on "{dependency}": "{spec}", but {target.relative}/package.json has no '
            'version to publish it with: add "version" there, or set VERSION.'
        )
    return version


# ---------------------------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------------------------


def sibling_dependencies(member: Member, names: set[str]) -> set[str]:
    """The siblings (among `names`) that `member` depends on, in any dependency field."""
    found = set()
    for field_name in DEPENDENCY_FIELDS:
        ranges = member.package.data.get(field_name)
        if isinstance(ranges, dict):
            found |= {_target_name(dep, spec) for dep, spec in ranges.items()} & names
    return found - {member.name}


def private_runtime_dependencies(member: Member, members: list[Member]) -> list[str]:
    """Private siblings that `member` needs at run time: its consumers could not install it."""
    private = {m.name for m in members if m.private}
    needed: set[str] = set()
    for field_name in RUNTIME_FIELDS:
        ranges = member.package.data.get(field_name)
        if isinstance(ranges, dict):
            needed |= {_target_name(dep, spec) for dep, spec in ranges.items()} & private
    return sorted(needed)


def _target_name(dependency: str, spec: object) -> str:
    if isinstance(spec, str) and spec.startswith(WORKSPACE_PROTOCOL):
        aliased = _ALIASED.match(spec[len(WORKSPACE_PROTOCOL) :])
        if aliased:
            return aliased.group(1)
    return dependency


def dependency_order(members: list[Member]) -> tuple[list[Member], list[str]]:
    """`members` with each after the siblings it depends on (otherwise in workspace order), and the
    names whose dependencies form a cycle (published in workspace order among themselves)."""
    names = {member.name for member in members}
    waiting = {member.name: sibling_dependencies(member, names) for member in members}
    ordered: list[Member] = []
    cycle: list[str] = []
    while len(ordered) < len(members):
        done = {m.name for m in ordered}
        ready = [m for m in members if m.name not in done and waiting[m.name] <= done]
        if not ready:
            # A cycle (often through devDependencies): no order satisfies it, so keep the workspace order.
            left = [m for m in members if m.name not in done]
            cycle = cycle or [m.name for m in left]
            ready = left
        ordered.append(ready[0])
    return ordered, cycle

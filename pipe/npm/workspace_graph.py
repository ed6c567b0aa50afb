"""An npm workspace as data: which folders its `workspaces` globs name, which packages they hold,
which of them a run publishes and in which order (the `workspace:` ranges are rewritten by
`workspace_ranges.py`).

Globs follow npm's map-workspaces: a pattern names folders (each with a package.json) relative to
the root, `*`/`?`/`[…]` stay within one path segment and do not match a leading dot, `**` spans
segments, `{a,b}` expands, a `!pattern` removes what earlier patterns matched (a later pattern can
add it back), and nothing under `node_modules` is ever a workspace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipe.errors import ConfigError, InputError
from pipe.npm.manifest import PackageJson, parse_package_json
from pipe.npm.semver_range import RangeError, satisfies
from pipe.versioning import SemVer

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


def candidate_folders(root: Path, patterns: list[str]) -> list[str]:
    """The folders below `root` deep enough for any of the patterns to name them: one walk serves
    every pattern."""
    positive = [_normalised(p) for p in patterns if not p.startswith("!")]
    deep = any("**" in p for p in positive)
    depth = MAX_GLOBSTAR_DEPTH if deep else max((p.count("/") + 1 for p in positive), default=0)
    return _candidate_folders(root, depth)


def matched_folders(root: Path, patterns: list[str]) -> list[str]:
    """The folders the patterns name, in pattern order (sorted within one pattern), each once."""
    candidates = candidate_folders(root, patterns)
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
    """The packages the globs name; `source` says where the globs come from, for messages."""
    members = []
    for relative in matched_folders(root, patterns):
        manifest = root / relative / "package.json"
        if manifest.is_file():
            members.append(
                Member(root / relative, relative, parse_package_json(manifest.read_bytes(), f"{relative}/package.json"))
            )
    if not members:
        raise InputError(
            f"{source} ({', '.join(patterns) or 'empty'}) names no folder with a package.json: "
            "fix the globs (they are relative to the workspace root)."
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
# Order
# ---------------------------------------------------------------------------------------------


def sibling_dependencies(
    member: Member, versions: Mapping[str, str], fields: tuple[str, ...] = DEPENDENCY_FIELDS
) -> set[str]:
    """The siblings (names of `versions`, each with its package.json version) that `member`
    depends on, in `fields`, as pnpm links them: a `workspace:` range always, any other range
    only when the sibling's version satisfies it (a dependency on an older published release of
    a sibling is no edge)."""
    found = set()
    for field_name in fields:
        ranges = member.package.data.get(field_name)
        if not isinstance(ranges, dict):
            continue
        for dependency, spec in ranges.items():
            target = _target_name(dependency, spec)
            if target in versions and _links(spec, versions[target]):
                found.add(target)
    return found - {member.name}


def _links(spec: object, version: str) -> bool:
    if not isinstance(spec, str):
        return False
    if spec.startswith(WORKSPACE_PROTOCOL):
        return True
    parsed = SemVer.parse(version)
    try:
        return parsed is not None and satisfies(parsed, spec)
    except RangeError:
        return False  # a git URL, a file: path, an npm: alias — not the sibling in the workspace


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


def dependency_order(
    members: list[Member], fields: tuple[str, ...] = DEPENDENCY_FIELDS
) -> tuple[list[Member], list[list[str]]]:
    """`members` with each after the siblings it depends on, and the cycles found.

    The packages that depend on each other in a cycle (a strongly connected component of the
    dependency graph, often through devDependencies) go out together; among themselves they
    follow their runtime dependencies where those alone form no cycle, else workspace order.
    Every package outside a cycle still follows its dependencies, and a cycle follows what its
    packages depend on outside it. Among packages free to go, workspace order decides."""
    versions = {member.name: str(member.package.data.get("version") or "") for member in members}
    edges = {member.name: sibling_dependencies(member, versions, fields) for member in members}
    position = {member.name: index for index, member in enumerate(members)}
    components = strongly_connected(list(position), edges)
    component_of = {name: index for index, component in enumerate(components) for name in component}
    waiting = {
        index: {component_of[dep] for name in component for dep in edges[name]} - {index}
        for index, component in enumerate(components)
    }
    done: set[int] = set()
    ordered: list[Member] = []
    while len(done) < len(components):
        ready = [index for index in range(len(components)) if index not in done and waiting[index] <= done]
        chosen = min(ready, key=lambda index: min(position[name] for name in components[index]))
        done.add(chosen)
        ordered += _within_cycle([m for m in members if m.name in components[chosen]], fields)
    cycles = [sorted(c, key=position.__getitem__) for c in components if len(c) > 1]
    return ordered, sorted(cycles, key=lambda cycle: position[cycle[0]])


def _within_cycle(cycle: list[Member], fields: tuple[str, ...]) -> list[Member]:
    """The packages of one cycle (in workspace order): by their runtime dependencies alone when
    the cycle goes through devDependencies, so that no package precedes what it needs at run time."""
    if len(cycle) < 2 or fields == RUNTIME_FIELDS:
        return cycle
    return dependency_order(cycle, RUNTIME_FIELDS)[0]


def strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (a deep dependency chain must not
    exhaust Python's recursion limit)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in nodes:
        if start in index_of:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index_of[start] = low[start] = len(index_of)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index_of:
                    index_of[child] = low[child] = len(index_of)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index_of[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index_of[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                components.append(component)
    return components

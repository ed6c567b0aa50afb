"""A multi-module project (a reactor): the POMs an aggregator's `<modules>` name, recursively,
with their coordinates resolved the way Maven resolves them inside a reactor (groupId, version
and `<properties>` inherited from a parent that is part of the project or on disk at its
`relativePath`), sorted in Maven's reactor order: a parent before its children, a module after
the reactor modules it depends on, declaration order otherwise.

Profiles are not read: modules listed only inside a `<profile>` are not part of the reactor.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipe.errors import ConfigError, InputError
from pipe.maven.pom import (
    Pom,
    declared_artifact_id,
    module_paths,
    parent_reference,
    pom_from_root,
    read_root,
    referenced_coordinates,
    resolve,
)

SKIP_PROPERTY = "maven.deploy.skip"


@dataclass(frozen=True)
class Module:
    pom: Pom
    # "groupId:artifactId" of the reactor modules that must be deployed before this one.
    needs: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.pom.group_id}:{self.pom.artifact_id}"

    @property
    def skipped(self) -> bool:
        """`<maven.deploy.skip>true</maven.deploy.skip>` in effect (its own or inherited), as the deploy
        plugin reads it."""
        value = self.pom.properties.get(SKIP_PROPERTY, "")
        try:
            value = resolve(value, SKIP_PROPERTY, _with_coordinates(self.pom), "")
        except InputError:
            return False
        return value.strip().lower() == "true"


def _with_coordinates(pom: Pom) -> dict[str, str]:
    """The values `${…}` may name inside this POM: its properties and its own coordinates."""
    values = dict(pom.properties)
    for name, value in (("groupId", pom.group_id), ("artifactId", pom.artifact_id), ("version", pom.version)):
        values[f"project.{name}"] = values[f"pom.{name}"] = value
    return values


class ReactorReader:
    """Reads the POM tree under one aggregator; `show` turns a path into the one the user wrote."""

    def __init__(self, show: Callable[[Path], str]):
        self.show = show
        self.roots: dict[Path, ET.Element] = {}  # every POM of the reactor, in declaration order
        self.poms: dict[Path, Pom] = {}
        self.in_progress: set[Path] = set()

    def collect(self, path: Path, label: str) -> None:
        """`path` and, depth first in the order written, the modules it aggregates."""
        if path in self.roots:
            raise InputError(
                f"{self.show(path)} is listed twice in the project's <modules> (or its modules form a loop): "
                "list each module once."
            )
        root = read_root(path, label)
        self.roots[path] = root
        for entry in module_paths(root):
            self.collect(module_pom(path, entry, self.show), f"module {entry}")

    def pom(self, path: Path) -> Pom:
        """The coordinates of `path`, after those of its parent (whose properties it inherits)."""
        if path in self.poms:
            return self.poms[path]
        if path in self.in_progress:
            raise InputError(f"{self.show(path)} is its own ancestor through <parent>: fix the <parent> elements.")
        self.in_progress.add(path)
        root = self.roots.get(path)
        if root is None:
            root = read_root(path, "parent POM")
        parent = self.parent_path(path, root)
        inherited = self.pom(parent).properties if parent is not None else {}
        label = "MAVEN_POM" if path == next(iter(self.roots)) else f"module {self.show(path.parent)}"
        self.poms[path] = pom_from_root(root, path, label, inherited)
        self.in_progress.discard(path)
        return self.poms[path]

    def parent_path(self, path: Path, root: ET.Element) -> Path | None:
        """The parent POM on disk, found as Maven finds it: at `relativePath` when the artifactId
        there matches, else a reactor POM with that artifactId. None when it is not local."""
        reference = parent_reference(root)
        if reference is None:
            return None
        _, artifact_id, relative = reference
        if relative:
            candidate = (path.parent / relative).resolve()
            candidate = candidate / "pom.xml" if candidate.is_dir() else candidate
            if candidate.is_file() and _raw_artifact_id(self.roots.get(candidate), candidate) == artifact_id:
                return candidate
        return next((p for p, r in self.roots.items() if p != path and _raw_artifact_id(r, p) == artifact_id), None)

    def module(self, path: Path, keys: set[str]) -> Module:
        """The module at `path` with the reactor modules (among `keys`) it needs first."""
        pom = self.pom(path)
        root = self.roots[path]
        values = _with_coordinates(pom)
        referenced = list(referenced_coordinates(root))
        reference = parent_reference(root)
        if reference is not None:
            referenced.insert(0, (reference[0], reference[1]))
        needs = []
        for group, artifact in referenced:
            try:
                key = f"{resolve(group, 'groupId', values, '')}:{resolve(artifact, 'artifactId', values, '')}"
            except InputError:
                continue  # a property of a parent outside the project: not a reactor module
            if key in keys and key != f"{pom.group_id}:{pom.artifact_id}" and key not in needs:
                needs.append(key)
        return Module(pom, tuple(needs))


def _raw_artifact_id(root: ET.Element | None, path: Path) -> str:
    return declared_artifact_id(root if root is not None else read_root(path, "parent POM"))


def module_pom(aggregator: Path, entry: str, show: Callable[[Path], str]) -> Path:
    """A `<module>` entry: a folder holding pom.xml, or a POM file, relative to the aggregator."""
    target = (aggregator.parent / entry).resolve()
    pom = target / "pom.xml" if target.is_dir() else target
    if not pom.is_file():
        raise InputError(
            f"module '{entry}' listed in {show(aggregator)}'s <modules> has no POM at {show(pom)}: fix the <module> "
            "entry or check that the module's folder is in the clone."
        )
    return pom


def read_reactor(root_pom: Path, show: Callable[[Path], str]) -> list[Module]:
    """Every module of the project under `root_pom` (itself included), in reactor order."""
    reader = ReactorReader(show)
    reader.collect(root_pom, "MAVEN_POM")
    poms = [reader.pom(path) for path in reader.roots]
    seen: dict[str, Path] = {}
    for pom in poms:
        key = f"{pom.group_id}:{pom.artifact_id}"
        if key in seen:
            raise InputError(
                f"two modules of the project are {key} ({show(seen[key])} and {show(pom.path)}): give each module "
                "its own artifactId."
            )
        seen[key] = pom.path
    modules = [reader.module(path, set(seen)) for path in reader.roots]
    return reactor_order(modules)


def reactor_order(modules: list[Module]) -> list[Module]:
    """Depth first over the declaration order, each module after what it needs (Maven's sort)."""
    by_key = {module.key: module for module in modules}
    ordered: list[Module] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(module: Module) -> None:
        if module.key in done:
            return
        if module.key in visiting:
            cycle = " -> ".join([*visiting[visiting.index(module.key) :], module.key])
            raise InputError(
                f"the project's modules depend on each other in a cycle ({cycle}): Maven cannot build it either; "
                "remove one of these dependencies."
            )
        visiting.append(module.key)
        for key in module.needs:
            visit(by_key[key])
        visiting.pop()
        done.add(module.key)
        ordered.append(module)

    for module in modules:
        visit(module)
    return ordered


def select_modules(modules: list[Module], names: tuple[str, ...]) -> list[Module]:
    """MAVEN_MODULES: only the modules with these artifactIds (all when it is empty), in reactor order."""
    if not names:
        return modules
    known = [module.pom.artifact_id for module in modules]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"MAVEN_MODULES names {', '.join(unknown)}, which the project does not have: use the artifactIds of "
            f"its modules: {', '.join(known)}."
        )
    return [module for module in modules if module.pom.artifact_id in names]

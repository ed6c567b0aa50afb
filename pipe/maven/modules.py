"""A multi-module project (a reactor): its modules as `maven/model.py` reads them (profiles,
inherited and interpolated properties, deploy skip), sorted in Maven's reactor order.

The order is Maven's own sort (ProjectSorter): an edge from a module to each reactor module it
references by groupId:artifactId and version (a specific version must be the module's; a range
or no version matches it) — dependencies, its parent, build plugins and their dependencies, build
extensions — added one by one. A dependency edge that closes a cycle is an error; a plugin or
extension edge that would is dropped, as Maven drops it; a parent edge wins over the reverse
edge. Then depth first over the modules in Maven's collection order (an aggregator after the
modules it lists), each after what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipe.errors import ConfigError, InputError
from pipe.maven.model import BuildContext, ModuleModel, Reference, read_project
from pipe.maven.pom import Pom

_SAFE_KINDS = ("plugin", "extension")


@dataclass(frozen=True)
class Module:
    pom: Pom
    # "groupId:artifactId" of the reactor modules that must be deployed before this one, in Maven's edge order.
    needs: tuple[str, ...]
    skip: bool | None = False  # None: undecidable (reported, not deployed)
    skip_why: str = ""
    uses_revision: bool = False  # its version comes from ${revision}

    @property
    def key(self) -> str:
        return f"{self.pom.group_id}:{self.pom.artifact_id}"

    @property
    def skipped(self) -> bool:
        return self.skip is True


def _is_specific(version: str) -> bool:
    return bool(version) and not version.startswith(("[", "("))


class Graph:
    """Maven's DAG: vertices in collection order, edges in insertion order, cycles checked per edge."""

    def __init__(self, keys: list[str]):
        self.edges: dict[str, list[str]] = {key: [] for key in keys}

    def path(self, start: str, goal: str) -> list[str] | None:
        """A path start → … → goal along the edges, if there is one."""
        stack, seen = [[start]], {start}
        while stack:
            trail = stack.pop()
            if trail[-1] == goal:
                return trail
            for nxt in self.edges[trail[-1]]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append([*trail, nxt])
        return None

    def add(self, source: str, target: str, kind: str) -> None:
        if source == target or target in self.edges[source]:
            return
        if kind == "parent" and source in self.edges[target]:
            self.edges[target].remove(source)
        back = self.path(target, source)
        if back is not None:
            if kind in _SAFE_KINDS:
                return
            cycle = " -> ".join([source, *back])
            raise InputError(
                f"the project's modules depend on each other in a cycle ({cycle}): Maven cannot build it either; "
                "remove one of these dependencies."
            )
        self.edges[source].append(target)


def _targets(reference: Reference, versions: dict[str, str]) -> list[str]:
    key = f"{reference.group}:{reference.artifact}"
    if key not in versions:
        return []
    return [key] if not _is_specific(reference.version) or reference.version == versions[key] else []


def sort_reactor(models: list[ModuleModel]) -> list[Module]:
    versions = {f"{m.pom.group_id}:{m.pom.artifact_id}": m.pom.version for m in models}
    graph = Graph(list(versions))
    for model in models:
        source = f"{model.pom.group_id}:{model.pom.artifact_id}"
        for reference in model.references:
            for target in _targets(reference, versions):
                graph.add(source, target, reference.kind)
    modules = {
        f"{m.pom.group_id}:{m.pom.artifact_id}": Module(
            m.pom, tuple(graph.edges[f"{m.pom.group_id}:{m.pom.artifact_id}"]), m.skip, m.skip_why, m.uses_revision
        )
        for m in models
    }
    ordered: list[Module] = []
    done: set[str] = set()

    def visit(key: str) -> None:
        done.add(key)
        for target in graph.edges[key]:
            if target not in done:
                visit(target)
        ordered.append(modules[key])

    for key in modules:
        if key not in done:
            visit(key)
    return ordered


def read_reactor(
    root_pom: Path, show: Callable[[Path], str], context: BuildContext | None = None
) -> tuple[list[Module], list[str]]:
    """Every module of the project under `root_pom` (itself included), in reactor order, and the
    ⚠ lines about modules the pipe could not decide."""
    models, warnings = read_project(root_pom, context or BuildContext({}), show)
    seen: dict[str, Path] = {}
    for model in models:
        pom = model.pom
        key = f"{pom.group_id}:{pom.artifact_id}"
        if key in seen:
            raise InputError(
                f"two modules of the project are {key} ({show(seen[key])} and {show(pom.path)}): give each module "
                "its own artifactId."
            )
        seen[key] = pom.path
    return sort_reactor(models), warnings


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

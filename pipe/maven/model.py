"""The effective model of a project's POMs, read the way Maven builds it, as far as deploying needs:

- each POM with the profiles the build ran with (`maven/activation.py`), its `<properties>`
  inherited from parents on disk (at `relativePath` or in the reactor) and interpolated with the
  user properties first (`maven/interpolation.py`: MAVEN_PROPERTIES, VERSION as `${revision}`);
- the coordinates the module deploys under, and its POM flattened for consumers
  (`maven/flatten.py`) when it uses CI-friendly placeholders;
- whether the deploy plugin skips it: `<skip>` in its configuration (plugins and
  pluginManagement, inherited, interpolated), else `maven.deploy.skip`;
- what Maven orders the reactor by: dependencies (versions managed), the parent, build plugins
  and their dependencies, build extensions, each as groupId:artifactId:version;
- the reactor: `<modules>` of each aggregator and of its active profiles, recursively.

Parents that come from a repository are not read: what they define is unknown, and said so.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipe.config import Config, MavenSettings
from pipe.context import PipelinesRun
from pipe.errors import InputError
from pipe.maven.activation import ProfileState, select_profiles
from pipe.maven.flatten import flattened
from pipe.maven.interpolation import CI_FRIENDLY, REFERENCE, Values
from pipe.maven.pom import Pom, check_coordinates, check_ids, module_paths, read_root
from pipe.maven.xmltree import at, child, children, local, text
from pipe.versioning import strip_v

DEPLOY_PLUGIN = ("org.apache.maven.plugins", "maven-deploy-plugin")
SKIP_PROPERTY = "maven.deploy.skip"
DEFAULT_PLUGIN_GROUP = "org.apache.maven.plugins"
# Where a profile may add to what matters here (the same paths below <project> and <profile>).
_PROFILE_SECTIONS = ("properties", "modules", "dependencies", "dependencyManagement", "build")


@dataclass(frozen=True)
class BuildContext:
    """What the build was run with, as far as the pipe is told: `-D` properties (MAVEN_PROPERTIES,
    with VERSION as `revision`)."""

    user: Mapping[str, str]
    version: str | None = None  # VERSION, without a leading v


@dataclass(frozen=True)
class PomFile:
    """One POM as written, with the profiles the build ran with."""

    path: Path
    root: ET.Element
    profiles: tuple[ET.Element, ...]
    undecided: tuple[ProfileState, ...]

    def sections(self, path: str) -> list[ET.Element]:
        """The element at `path` in the POM, then in each active profile (which Maven merges over it)."""
        found = [at(self.root, path), *(at(profile, path) for profile in self.profiles)]
        return [element for element in found if element is not None]

    def entries(self, path: str, name: str) -> list[ET.Element]:
        return [entry for section in self.sections(path) for entry in children(section, name)]

    def own_properties(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for section in self.sections("properties"):
            values.update({local(p.tag): (p.text or "").strip() for p in section if local(p.tag)})
        return values


@dataclass(frozen=True)
class Reference:
    """A groupId:artifactId:version the build of a module needs first; `kind` is dependency,
    parent, plugin or extension (the last two never make a cycle: Maven drops such edges)."""

    group: str
    artifact: str
    version: str
    kind: str


@dataclass(frozen=True)
class ModuleModel:
    pom: Pom
    references: tuple[Reference, ...]
    skip: bool | None  # None: the pipe cannot tell (named in a ⚠ line)
    skip_why: str
    uses_revision: bool  # the version comes from ${revision}


class ProjectReader:
    """Reads POMs once each; `show` turns a path into the one the user wrote."""

    def __init__(self, context: BuildContext, show: Callable[[Path], str]):
        self.context = context
        self.show = show
        self.files: dict[Path, PomFile] = {}
        self.reactor: list[Path] = []  # every reactor POM, the root first
        # Maven's collection order, the one its reactor sort starts from: an aggregator after its modules.
        self.collected: list[Path] = []
        self.warnings: list[str] = []
        self.models: dict[Path, ModuleModel] = {}

    def load(self, path: Path, label: str) -> PomFile:
        if path not in self.files:
            root = read_root(path, label)
            own = PomFile(path, root, (), ()).own_properties()

            def lookup(name: str) -> str | None:
                return self.context.user.get(name, own.get(name))

            states = select_profiles(root, path.parent, self.context.user, lookup, lambda p: self.built(path, p))
            active = tuple(s.profile for s in states if s.active)
            self.files[path] = PomFile(path, root, active, tuple(s for s in states if s.active is None))
            self.warn_undecided(self.files[path])
            self.warn_built_but_inactive(path, [s for s in states if s.active is False])
        return self.files[path]

    def built(self, path: Path, profile: ET.Element) -> bool:
        """Evidence that the build ran with `profile`: one of its modules has built files in target/."""
        for entry in module_paths(profile):
            target = (path.parent / entry).resolve()
            pom = target / "pom.xml" if target.is_dir() else target
            artifact = _declared_artifact_id(pom)
            folder = pom.parent / "target"
            if artifact and folder.is_dir() and any(f.name.startswith(f"{artifact}-") for f in folder.iterdir()):
                return True
        return False

    def warn_undecided(self, pom: PomFile) -> None:
        for state in pom.undecided:
            modules = module_paths(state.profile)
            where = f"profile {state.id} of {self.show(pom.path)}"
            if modules:
                self.warnings.append(
                    f"module {', '.join(modules)} of {where} is not deployed: whether the build ran with the profile "
                    f"depends on {state.why}, and its target/ holds no built artifacts; build it before the pipe, or "
                    "set MAVEN_PROPERTIES so that the profile's activation is decided."
                )
            elif _touches_deploy(state.profile):
                self.warnings.append(
                    f"{where} is read as inactive: whether the build ran with it depends on {state.why}."
                )

    def warn_built_but_inactive(self, path: Path, inactive: list[ProfileState]) -> None:
        """Built modules of a profile that is decided inactive: the build may have had a -D the pipe was not given."""
        for state in inactive:
            modules = ", ".join(module_paths(state.profile))
            if modules and self.built(path, state.profile):
                self.warnings.append(
                    f"module {modules} of profile {state.id} of {self.show(path)} has "
                    "built files in target/ but is not deployed: the profile is not active with the values the pipe "
                    "has; if the build activated it (-D…), give the same values in MAVEN_PROPERTIES."
                )

    def collect(self, path: Path, label: str) -> None:
        """`path` and, depth first in the order written, the modules it and its active profiles aggregate."""
        if path in self.reactor:
            raise InputError(
                f"{self.show(path)} is listed twice in the project's <modules> (or its modules form a loop): "
                "list each module once."
            )
        pom = self.load(path, label)
        self.reactor.append(path)
        seen: set[Path] = set()
        for module in pom.entries("modules", "module"):
            entry = (module.text or "").strip()
            target = module_pom(path, entry, self.show) if entry else None
            if target is not None and target not in seen:
                seen.add(target)
                self.collect(target, f"module {entry}")
        self.collected.append(path)

    def label(self, path: Path) -> str:
        return "MAVEN_POM" if not self.reactor or path == self.reactor[0] else f"module {self.show(path.parent)}"

    def parent_path(self, pom: PomFile) -> Path | None:
        """The parent POM on disk, found as Maven finds it: at `relativePath` when the artifactId
        there matches, else a reactor POM with that artifactId. None when it is not local."""
        parent = child(pom.root, "parent")
        if parent is None:
            return None
        artifact = text(parent, "artifactId") or ""
        relative_element = child(parent, "relativePath")
        relative = "../pom.xml" if relative_element is None else (relative_element.text or "").strip()
        if relative:
            candidate = (pom.path.parent / relative).resolve()
            candidate = candidate / "pom.xml" if candidate.is_dir() else candidate
            if candidate.is_file() and self.artifact_id(candidate) == artifact:
                return candidate
        return next((p for p in self.reactor if p != pom.path and self.artifact_id(p) == artifact), None)

    def artifact_id(self, path: Path) -> str:
        """The artifactId written in a POM (read once when it is part of the project)."""
        loaded = self.files.get(path)
        return (text(loaded.root, "artifactId") or "") if loaded is not None else _declared_artifact_id(path)

    def lineage(self, path: Path) -> list[PomFile]:
        """The POM and its parents on disk, the farthest first."""
        chain: list[PomFile] = []
        current: Path | None = path
        while current is not None:
            if any(pom.path == current for pom in chain):
                raise InputError(
                    f"{self.show(current)} is its own ancestor through <parent>: fix the <parent> elements."
                )
            pom = self.load(current, self.label(current) if current == path else "parent POM")
            chain.append(pom)
            current = self.parent_path(pom)
        return chain[::-1]

    def model(self, path: Path) -> ModuleModel:
        if path not in self.models:
            self.models[path] = effective_model(self.lineage(path), self.context, self.label(path))
        return self.models[path]


def _touches_deploy(profile: ET.Element) -> bool:
    """Whether an undecided profile could change what is deployed: the deploy plugin, its skip
    property or a CI-friendly version property."""
    written = ET.tostring(profile, encoding="unicode")
    return any(name in written for name in ("maven-deploy-plugin", SKIP_PROPERTY, *CI_FRIENDLY))


def _declared_artifact_id(path: Path) -> str:
    try:
        return text(read_root(path, "parent POM"), "artifactId") or ""
    except InputError:
        return ""


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


def module_values(lineage: list[PomFile], context: BuildContext, label: str) -> Values:
    """The names `${…}` may use in the last POM of `lineage`, by Maven's precedence."""
    me = lineage[-1]
    parent = child(me.root, "parent")
    raw = {
        "groupId": text(me.root, "groupId") or text(parent, "groupId"),
        "artifactId": text(me.root, "artifactId"),
        "version": text(me.root, "version") or text(parent, "version"),
        "packaging": text(me.root, "packaging") or "jar",
        "parent.groupId": text(parent, "groupId"),
        "parent.artifactId": text(parent, "artifactId"),
        "parent.version": text(parent, "version"),
        "basedir": me.path.parent.as_posix(),
    }
    project = {f"{prefix}.{k}": v for k, v in raw.items() if v is not None for prefix in ("project", "pom")}
    project["basedir"] = me.path.parent.as_posix()
    properties: dict[str, str] = {}
    for pom in lineage:
        properties.update(pom.own_properties())
    unprefixed = {k: v for k, v in raw.items() if v is not None and "." not in k}
    hint = ""
    top = child(lineage[0].root, "parent")
    if top is not None:
        hint = (
            f" (the parent {text(top, 'groupId')}:{text(top, 'artifactId')} is not on disk, so the pipe cannot read it)"
        )
    return Values((project, context.user, properties, unprefixed), label, hint)


def require_written(values: Values, path: Path, label: str, names: tuple[str, ...]) -> None:
    """Each of `names` (groupId, artifactId, version) written in the POM or inherited from `<parent>`."""
    missing = [name for name in names if values.raw(f"project.{name}") is None]
    if missing:
        listed = ", ".join(f"<{name}>" for name in missing)
        inherit = " (or a <parent> to inherit groupId/version from)" if "artifactId" not in missing else ""
        raise InputError(f"{label} {path.name} has no {listed}: add {listed} to the POM{inherit}.")


def artifact_ids(values: Values, label: str) -> tuple[str, str]:
    """groupId and artifactId, interpolated and checked by Maven's rules."""
    group = values.expand(values.raw("project.groupId") or "", "groupId")
    artifact = values.expand(values.raw("project.artifactId") or "", "artifactId")
    check_ids({"groupId": group, "artifactId": artifact}, label)
    return group, artifact


def effective_model(lineage: list[PomFile], context: BuildContext, label: str) -> ModuleModel:
    me = lineage[-1]
    values = module_values(lineage, context, label)
    require_written(values, me.path, label, ("groupId", "artifactId", "version"))
    group, artifact = artifact_ids(values, label)
    version = values.expand(values.raw("project.version") or "", "version")
    uses_revision = "revision" in values.done and values.done["revision"] is not None
    coordinates = {"groupId": group, "artifactId": artifact, "version": version}
    packaging = values.expand(values.raw("project.packaging") or "jar", "packaging")
    check_coordinates(coordinates, packaging, label)
    properties: dict[str, str] = {}
    for pom in lineage:
        properties.update(pom.own_properties())
    pom = Pom(
        path=me.path,
        group_id=coordinates["groupId"],
        artifact_id=coordinates["artifactId"],
        version=version,
        packaging=packaging,
        properties=properties,
        deployed=flattened(me.path, values),
    )
    skip, why = deploy_skip(lineage, values, pom.is_snapshot)
    return ModuleModel(pom, tuple(references(lineage, values)), skip, why, uses_revision)


def _plugin_key(plugin: ET.Element) -> tuple[str, str]:
    return text(plugin, "groupId") or DEFAULT_PLUGIN_GROUP, text(plugin, "artifactId") or ""


def _inherited(plugin: ET.Element, pom: PomFile, me: PomFile) -> bool:
    return pom is me or (text(plugin, "inherited") or "true").lower() != "false"


def _skip_setting(lineage: list[PomFile], section: str) -> str | None:
    """The deploy plugin's `<skip>` in `section` plugins, the nearest POM's winning (execution
    `default-deploy`, the one the lifecycle runs, over the plugin's own configuration)."""
    setting = None
    for pom in lineage:
        for plugin in pom.entries(section, "plugin"):
            if _plugin_key(plugin) != DEPLOY_PLUGIN or not _inherited(plugin, pom, lineage[-1]):
                continue
            setting = text(child(plugin, "configuration"), "skip") or setting
            for execution in children(child(plugin, "executions"), "execution"):
                if text(execution, "id") == "default-deploy":
                    setting = text(child(execution, "configuration"), "skip") or setting
    return setting


def deploy_skip(lineage: list[PomFile], values: Values, snapshot: bool) -> tuple[bool | None, str]:
    """Whether maven-deploy-plugin skips this module (its `skip` is true, `releases` or `snapshots`),
    and why, in words; None when it depends on something the pipe cannot read."""
    configured = _skip_setting(lineage, "build/plugins") or _skip_setting(lineage, "build/pluginManagement/plugins")
    written = configured if configured is not None else f"${{{SKIP_PROPERTY}}}"
    value = values.substitute(written).strip()
    if REFERENCE.search(value):
        if configured is None:
            return False, ""
        names = [m.group(1) for m in REFERENCE.finditer(value)]
        if values.hint or any(name.startswith("env.") for name in names):
            return (
                None,
                f"the deploy plugin's <skip>{configured}</skip> uses {', '.join(names)}, which the pipe cannot read",
            )
        return False, ""  # Maven reads the unresolved text, which is not "true"
    lowered = value.lower()
    skipped = lowered == "true" or (value == "releases" and not snapshot) or (value == "snapshots" and snapshot)
    source = f"the deploy plugin's <skip>{configured}</skip>" if configured is not None else SKIP_PROPERTY
    return skipped, f"{source} is {value}"


def _version(element: ET.Element, values: Values, managed: Mapping[tuple[str, str], str]) -> Reference:
    group = values.substitute(text(element, "groupId") or "")
    artifact = values.substitute(text(element, "artifactId") or "")
    version = text(element, "version")
    resolved = values.substitute(version) if version else managed.get((group, artifact), "")
    return Reference(group, artifact, resolved, "dependency")


def references(lineage: list[PomFile], values: Values) -> list[Reference]:
    """What Maven's reactor sorter reads, in its order: dependencies (the module's, then inherited),
    the parent, build plugins with their dependencies, build extensions."""
    me = lineage[-1]
    managed: dict[tuple[str, str], str] = {}
    for pom in lineage:
        for entry in pom.entries("dependencyManagement/dependencies", "dependency"):
            reference = _version(entry, values, {})
            managed[(reference.group, reference.artifact)] = reference.version
    found = [
        _version(d, values, managed) for pom in reversed(lineage) for d in pom.entries("dependencies", "dependency")
    ]
    parent = child(me.root, "parent")
    if parent is not None:
        found.append(
            Reference(
                *(values.substitute(text(parent, n) or "") for n in ("groupId", "artifactId", "version")), "parent"
            )
        )
    found += plugin_references(lineage, values)
    for pom in lineage:
        for extension in children(at(pom.root, "build/extensions"), "extension"):
            group = values.substitute(text(extension, "groupId") or "")
            found.append(
                Reference(
                    group,
                    *(values.substitute(text(extension, n) or "") for n in ("artifactId", "version")),
                    "extension",
                )
            )
    return found


def plugin_references(lineage: list[PomFile], values: Values) -> list[Reference]:
    """Build plugins (inherited ones first) and their dependencies, with those pluginManagement adds."""
    me = lineage[-1]
    management: dict[tuple[str, str], list[ET.Element]] = {}
    for pom in lineage:
        for plugin in pom.entries("build/pluginManagement/plugins", "plugin"):
            if _inherited(plugin, pom, me):
                management.setdefault(_plugin_key(plugin), []).append(plugin)
    found: list[Reference] = []
    seen: set[tuple[str, str]] = set()
    for pom in lineage:
        for plugin in pom.entries("build/plugins", "plugin"):
            key = _plugin_key(plugin)
            if key in seen or not _inherited(plugin, pom, me):
                continue
            seen.add(key)
            managed_version = next((text(p, "version") for p in management.get(key, []) if text(p, "version")), "")
            version = values.substitute(text(plugin, "version") or managed_version or "")
            group, artifact = (values.substitute(part) for part in key)
            found.append(Reference(group, artifact, version, "plugin"))
            for declared in [plugin, *management.get(key, [])]:
                for dependency in children(child(declared, "dependencies"), "dependency"):
                    found.append(_kind(_version(dependency, values, {}), "plugin"))
    return found


def _kind(reference: Reference, kind: str) -> Reference:
    return Reference(reference.group, reference.artifact, reference.version, kind)


def read_project(
    root_pom: Path, context: BuildContext, show: Callable[[Path], str]
) -> tuple[list[ModuleModel], list[str]]:
    """Every module of the project under `root_pom`, in Maven's collection order (each aggregator
    after its modules), and the ⚠ lines about what the pipe could not decide."""
    reader = ProjectReader(context, show)
    reader.collect(root_pom, "MAVEN_POM")
    models = [reader.model(path) for path in reader.collected]
    return models, reader.warnings


def read_single(path: Path, context: BuildContext, show: Callable[[Path], str]) -> tuple[ModuleModel, list[str]]:
    """One POM deployed on its own (no `<modules>`), with its parents on disk."""
    reader = ProjectReader(context, show)
    reader.reactor.append(path)
    return reader.model(path), reader.warnings


def build_context(settings: MavenSettings) -> BuildContext:
    """MAVEN_PROPERTIES as `-D` values, with VERSION (a leading v dropped) as `revision`."""
    user = dict(settings.properties)
    if settings.version is not None:
        user["revision"] = settings.version
    return BuildContext(user, settings.version)


def check_versions(modules: list[tuple[Pom, bool]], context: BuildContext, run: PipelinesRun) -> None:
    """(POM, whether its version comes from ${revision}) of each module to deploy. VERSION applies
    through ${revision}: a POM that writes its version literally, and differently, would be published
    under a version VERSION does not name. On a tag without VERSION, a ${revision} project is told
    how to take the tag's version."""
    tag = run.tag if run.tag_version is not None else None
    for pom, uses_revision in modules:
        if context.version is not None and not uses_revision and pom.version != context.version:
            raise InputError(
                f"VERSION is {context.version} but {pom.group_id}:{pom.artifact_id}'s version is {pom.version}, "
                f"written in {pom.path.name}: set it before the pipe "
                f"(mvn versions:set -DnewVersion={context.version}), "
                "or write <version>${revision}</version> with a <revision> default in <properties> so that VERSION "
                "sets it."
            )
        if tag and context.version is None and uses_revision and pom.version != strip_v(tag):
            raise InputError(
                f"this pipeline runs for tag {tag} but {pom.group_id}:{pom.artifact_id}'s version is {pom.version} "
                "(from ${revision}): set VERSION: $BITBUCKET_TAG so that ${revision} is the tag's version, as "
                "mvn -Drevision=… did for the build."
            )


def _shown(config: Config) -> Callable[[Path], str]:
    def show(file: Path) -> str:
        return str(file.relative_to(config.working_dir)) if file.is_relative_to(config.working_dir) else str(file)

    return show


def project_model(config: Config, path: Path, log: logging.Logger) -> ModuleModel:
    """MAVEN_POM deployed on its own: its coordinates with parents on disk, MAVEN_PROPERTIES and
    VERSION, its POM flattened when it uses CI-friendly versions, and whether the deploy plugin skips it
    (VERSION is checked against it by `check_versions` once it is to be deployed)."""
    context = build_context(config.maven)
    model, warnings = read_single(path, context, _shown(config))
    for warning in warnings:
        log.warning("%s", warning)
    return model


def project_artifact(config: Config, path: Path) -> tuple[str, str]:
    """groupId and artifactId of MAVEN_POM read as publishing reads them (parents on disk,
    MAVEN_PROPERTIES, VERSION as `revision`), for cleanup: it works on every version of the
    artifact, so a version nothing defines (`${revision}` without VERSION) does not stop it."""
    context = build_context(config.maven)
    reader = ProjectReader(context, _shown(config))
    reader.reactor.append(path)
    lineage = reader.lineage(path)
    label = reader.label(path)
    values = module_values(lineage, context, label)
    require_written(values, path, label, ("groupId", "artifactId"))
    return artifact_ids(values, label)

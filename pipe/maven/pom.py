"""Coordinates from a POM: groupId, artifactId, version and packaging, with groupId and version
inherited from `<parent>` and `${property}` references resolved from `<properties>`.

Only the POM itself is read (no parent POM from a repository, no settings, no profiles): what
the pipe needs is the coordinates the file will be deployed under, which is what a consumer
will ask for.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import InputError
from pipe.maven.interpolation import REFERENCE, Values
from pipe.maven.paths import id_problem, printable, version_problem

# A DTD is the only way to declare entities (external ones read files or URLs; nested ones
# explode in memory). A POM never needs one, so any DOCTYPE or ENTITY is refused unparsed.
_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# What Maven accepts as packaging (DefaultModelValidator's ID_REGEX).
_ID = re.compile(r"^[A-Za-z0-9_\-.]+$")


@dataclass(frozen=True)
class Pom:
    path: Path
    group_id: str
    artifact_id: str
    version: str
    packaging: str
    # The `<properties>` in effect (the POM's own over those inherited from a reactor parent).
    properties: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The bytes to deploy instead of the file, when CI-friendly versions were flattened (maven/flatten.py).
    deployed: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def gav(self) -> str:
        return f"{self.group_id}:{self.artifact_id}:{self.version}"

    @property
    def is_snapshot(self) -> bool:
        return self.version.endswith("-SNAPSHOT")


def _local(tag: object) -> str:
    """`{http://maven.apache.org/POM/4.0.0}version` → `version` (POMs may or may not use the namespace)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: ET.Element | None, name: str) -> str | None:
    child = _child(element, name)
    text = (child.text or "").strip() if child is not None else ""
    return text or None


def read_root(path: Path, label: str) -> ET.Element:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{label} {path.name} was not found in {path.parent}: set MAVEN_POM to the POM to publish "
            "(relative to the clone directory)."
        ) from None
    except OSError as error:
        raise InputError(f"{label} {path} cannot be read ({error.strerror}): check the file's permissions.") from None
    if _DTD_MARKERS.search(data):
        raise InputError(
            f"{label} {path.name} declares a DOCTYPE or ENTITY, which the pipe refuses to parse (it could read "
            "files or exhaust memory): remove the <!DOCTYPE …>/<!ENTITY …> declarations from the POM."
        )
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD can be present (checked above)
    except ET.ParseError as error:
        raise InputError(f"{label} {path.name} is not well-formed XML ({error}): fix the POM and re-run.") from None
    if _local(root.tag) != "project":
        raise InputError(
            f"{label} {path.name} is not a Maven POM (its root element is <{_local(root.tag)}>, not <project>): "
            "set MAVEN_POM to the project's pom.xml."
        )
    return root


def declared_properties(root: ET.Element, inherited: Mapping[str, str]) -> dict[str, str]:
    """`<properties>`, over those inherited from the parent (Maven's inheritance)."""
    values = dict(inherited)
    properties = _child(root, "properties")
    if properties is not None:
        for prop in properties:
            name = _local(prop.tag)
            if name:
                values[name] = (prop.text or "").strip()
    return values


def _properties(root: ET.Element, raw: dict[str, str | None], inherited: Mapping[str, str]) -> dict[str, str]:
    """The values `${…}` may refer to: `<properties>` and the project's own coordinates."""
    values = declared_properties(root, inherited)
    for key, value in raw.items():
        if value is not None:
            values[key] = value
            values[key.replace("project.", "pom.", 1)] = value
    return values


def _resolve(value: str, what: str, properties: dict[str, str], label: str) -> str:
    """`${…}` in `value` from `properties`, expanded within bounds (maven/interpolation.py)."""
    result = Values((properties,), label).substitute(value)
    missing = REFERENCE.search(result)
    if missing:
        name = missing.group(1)
        raise InputError(
            f"{label}'s {what} '{value}' uses the property ${{{name}}}, which the POM does not define: "
            f"define it in <properties> (e.g. <{name}>1.2.3</{name}>) or write the {what} literally "
            "(a -D value given to mvn does not reach the pipe)."
        )
    return result


def parse_pom(path: Path, label: str = "MAVEN_POM") -> Pom:
    return pom_from_root(read_root(path, label), path, label)


def pom_from_root(root: ET.Element, path: Path, label: str, inherited: Mapping[str, str] | None = None) -> Pom:
    """The coordinates of an already read POM; `inherited` are its parent's properties."""
    parent = _child(root, "parent")
    raw = {
        "project.groupId": _child_text(root, "groupId") or _child_text(parent, "groupId"),
        "project.artifactId": _child_text(root, "artifactId"),
        "project.version": _child_text(root, "version") or _child_text(parent, "version"),
        "project.parent.groupId": _child_text(parent, "groupId"),
        "project.parent.artifactId": _child_text(parent, "artifactId"),
        "project.parent.version": _child_text(parent, "version"),
    }
    missing = [name for name in ("groupId", "artifactId", "version") if raw[f"project.{name}"] is None]
    if missing:
        names = ", ".join(f"<{name}>" for name in missing)
        inherit = " (or a <parent> to inherit groupId/version from)" if "artifactId" not in missing else ""
        raise InputError(f"{label} {path.name} has no {names}: add {names} to the POM{inherit}.")
    properties = _properties(root, raw, inherited or {})
    coordinates = {
        name: _resolve(str(raw[f"project.{name}"]), name, properties, label)
        for name in ("groupId", "artifactId", "version")
    }
    packaging = _resolve(_child_text(root, "packaging") or "jar", "packaging", properties, label)
    _check_coordinates(coordinates, packaging, label)
    return Pom(
        path=path,
        group_id=coordinates["groupId"],
        artifact_id=coordinates["artifactId"],
        version=coordinates["version"],
        packaging=packaging,
        properties=declared_properties(root, inherited or {}),
    )


def _check_coordinates(coordinates: dict[str, str], packaging: str, label: str) -> None:
    """Maven's rules, and what keeps the coordinates inside their folder of the repository (`paths.py`)."""
    for name in ("groupId", "artifactId"):
        problem = id_problem(coordinates[name], name)
        if problem:
            raise InputError(f"{label}'s {name} '{printable(coordinates[name])}' is not valid: {problem}.")
    version = coordinates["version"]
    problem = version_problem(version)
    if problem:
        raise InputError(
            f"{label}'s version '{printable(version)}' is not valid ({problem}): use a version such as 1.2.3 or "
            "1.3.0-SNAPSHOT."
        )
    if not _ID.match(packaging):
        raise InputError(f"{label}'s packaging '{packaging}' is not valid: use e.g. jar, war or pom.")


def resolve(value: str, what: str, properties: Mapping[str, str], label: str) -> str:
    """`${…}` references in `value` replaced from `properties` (InputError naming `label` if one is missing)."""
    return _resolve(value, what, dict(properties), label)


def declared_artifact_id(root: ET.Element) -> str:
    return _child_text(root, "artifactId") or ""


def module_paths(root: ET.Element) -> list[str]:
    """The `<modules>` of an aggregator POM, as written (folders or POM files, relative to it)."""
    return [text for text in (_text(module) for module in _children(_child(root, "modules"), "module")) if text]


def parent_reference(root: ET.Element) -> tuple[str, str, str] | None:
    """(groupId, artifactId, relativePath) of `<parent>`, relativePath defaulting to Maven's `../pom.xml`."""
    parent = _child(root, "parent")
    if parent is None:
        return None
    relative = _child(parent, "relativePath")
    path = "../pom.xml" if relative is None else (relative.text or "").strip()
    return _child_text(parent, "groupId") or "", _child_text(parent, "artifactId") or "", path


def referenced_coordinates(root: ET.Element) -> list[tuple[str, str]]:
    """(groupId, artifactId) as written, of what the build of this POM needs first: `<dependencies>`,
    BOMs imported in `<dependencyManagement>`, and build plugins (what Maven sorts a reactor by)."""
    management = _child(_child(root, "dependencyManagement"), "dependencies")
    imported = [d for d in _children(management, "dependency") if _child_text(d, "scope") == "import"]
    plugins = _children(_child(_child(root, "build"), "plugins"), "plugin")
    wanted = _children(_child(root, "dependencies"), "dependency") + imported + plugins
    return [
        (_child_text(e, "groupId") or "org.apache.maven.plugins", _child_text(e, "artifactId") or "") for e in wanted
    ]


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name] if element is not None else []

"""A POM file read safely (no DTD, well-formed, a `<project>`), the coordinates a module deploys
under (`Pom`) and Maven's rules for them. What the coordinates are — parents on disk, profiles,
`${…}` with MAVEN_PROPERTIES and VERSION — is `model.py`'s part: publishing and cleanup both read
them there.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import InputError
from pipe.maven.paths import id_problem, printable, version_problem
from pipe.maven.xmltree import child, children, local

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
    if local(root.tag) != "project":
        raise InputError(
            f"{label} {path.name} is not a Maven POM (its root element is <{local(root.tag)}>, not <project>): "
            "set MAVEN_POM to the project's pom.xml."
        )
    return root


def check_ids(coordinates: dict[str, str], label: str) -> None:
    """groupId and artifactId by Maven's rules, and so that they stay inside their folder of the repository."""
    for name in ("groupId", "artifactId"):
        problem = id_problem(coordinates[name], name)
        if problem:
            raise InputError(f"{label}'s {name} '{printable(coordinates[name])}' is not valid: {problem}.")


def check_coordinates(coordinates: dict[str, str], packaging: str, label: str) -> None:
    """Maven's rules, and what keeps the coordinates inside their folder of the repository (`paths.py`)."""
    check_ids(coordinates, label)
    version = coordinates["version"]
    problem = version_problem(version)
    if problem:
        raise InputError(
            f"{label}'s version '{printable(version)}' is not valid ({problem}): use a version such as 1.2.3 or "
            "1.3.0-SNAPSHOT."
        )
    if not _ID.match(packaging):
        raise InputError(f"{label}'s packaging '{packaging}' is not valid: use e.g. jar, war or pom.")


def module_paths(root: ET.Element) -> list[str]:
    """The `<modules>` of an aggregator POM or of one of its profiles, as written (folders or POM files,
    relative to the POM)."""
    return [
        entry
        for entry in ((module.text or "").strip() for module in children(child(root, "modules"), "module"))
        if entry
    ]

"""`maven-metadata.xml`: read what the repository has, merge the new deploy into it, write it.

Artifact level (`<group>/<artifactId>/maven-metadata.xml`) lists the versions, and names the
newest `latest` and `release`. Version level (`…/<version>/maven-metadata.xml`, SNAPSHOTs only)
names the newest timestamped build and, per classifier/extension, the file to download.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from pipe.errors import RegistryError
from pipe.maven.paths import version_problem
from pipe.maven.versions import highest, is_snapshot
from pipe.versioning import SemVer

_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# A buildNumber as Maven writes it (an int): ASCII digits, not so many that they stop being a count.
_BUILD_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass
class ArtifactMetadata:
    group_id: str
    artifact_id: str
    versions: list[str] = field(default_factory=list)
    latest: str | None = None
    release: str | None = None
    last_updated: str | None = None


@dataclass(frozen=True)
class SnapshotFile:
    classifier: str
    extension: str
    value: str
    updated: str


@dataclass
class SnapshotMetadata:
    group_id: str
    artifact_id: str
    version: str
    timestamp: str | None = None
    build_number: int = 0
    last_updated: str | None = None
    files: list[SnapshotFile] = field(default_factory=list)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _find(element: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if element is None:
            return None
        element = next((child for child in element if _local(child.tag) == name), None)
    return element


def _text(element: ET.Element | None, *path: str) -> str | None:
    found = _find(element, *path)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name] if element is not None else []


def _parse(data: bytes, url: str) -> ET.Element:
    """The repository's metadata, refused (not guessed at) when it cannot be read safely."""
    if _DTD_MARKERS.search(data):
        raise RegistryError(f"{url} declares a DOCTYPE or ENTITY, which the pipe refuses to parse: repair that file.")
    try:
        return ET.fromstring(data)  # noqa: S314 - no DTD can be present (checked above)
    except ET.ParseError as error:
        raise RegistryError(
            f"{url} is not well-formed XML ({error}): repair or delete that file in the repository, then re-run."
        ) from None


def parse_artifact_metadata(data: bytes, url: str, group_id: str, artifact_id: str) -> ArtifactMetadata:
    root = _parse(data, url)
    versioning = _find(root, "versioning")
    return ArtifactMetadata(
        group_id=group_id,
        artifact_id=artifact_id,
        versions=[
            v.text.strip() for v in _children(_find(versioning, "versions"), "version") if (v.text or "").strip()
        ],
        latest=_text(versioning, "latest"),
        release=_text(versioning, "release"),
        last_updated=_text(versioning, "lastUpdated"),
    )


def parse_snapshot_metadata(data: bytes, url: str, group_id: str, artifact_id: str, version: str) -> SnapshotMetadata:
    root = _parse(data, url)
    versioning = _find(root, "versioning")
    build_number = _text(versioning, "snapshot", "buildNumber") or "0"
    if not _BUILD_NUMBER.fullmatch(build_number):
        raise RegistryError(
            f"{url} has <buildNumber>{build_number[:40]}</buildNumber>, which is no build number (at most 9 digits): "
            "repair that file in the repository (or delete it to start counting again), then re-run."
        )
    files = [
        SnapshotFile(
            classifier=_text(entry, "classifier") or "",
            extension=_text(entry, "extension") or "",
            value=_text(entry, "value") or "",
            updated=_text(entry, "updated") or "",
        )
        for entry in _children(_find(versioning, "snapshotVersions"), "snapshotVersion")
    ]
    return SnapshotMetadata(
        group_id=group_id,
        artifact_id=artifact_id,
        version=version,
        timestamp=_text(versioning, "snapshot", "timestamp"),
        build_number=int(build_number),
        last_updated=_text(versioning, "lastUpdated"),
        files=[f for f in files if f.extension and f.value],
    )


def _newer(candidate: str, current: str | None) -> bool:
    """Whether `candidate` should replace `current` as latest/release. Semantic versions are
    compared, so a hotfix of an older line does not become `release`; anything else follows
    Maven's rule (the version being deployed wins)."""
    if current is None or current == candidate:
        return True
    new, old = SemVer.parse(candidate.removesuffix("-SNAPSHOT")), SemVer.parse(current.removesuffix("-SNAPSHOT"))
    if new is None or old is None:
        return True
    if new == old:  # 1.0.0-SNAPSHOT vs 1.0.0: the release is newer
        return not candidate.endswith("-SNAPSHOT")
    return new > old


def merge_version(metadata: ArtifactMetadata, version: str, now: str) -> ArtifactMetadata:
    """The existing artifact-level metadata with `version` added (order kept, as Maven does)."""
    versions = list(metadata.versions)
    if version not in versions:
        versions.append(version)
    latest = version if _newer(version, metadata.latest) else metadata.latest
    release = metadata.release
    if not version.endswith("-SNAPSHOT") and _newer(version, metadata.release):
        release = version
    return ArtifactMetadata(metadata.group_id, metadata.artifact_id, versions, latest, release, now)


def merge_snapshot(
    metadata: SnapshotMetadata, timestamp: str, build_number: int, files: list[SnapshotFile], now: str
) -> SnapshotMetadata:
    """The version-level metadata naming this build; entries for files this build does not
    have (another classifier deployed earlier) are kept, as Maven keeps them."""
    deployed = {(f.classifier, f.extension) for f in files}
    kept = [f for f in metadata.files if (f.classifier, f.extension) not in deployed]
    return SnapshotMetadata(
        group_id=metadata.group_id,
        artifact_id=metadata.artifact_id,
        version=metadata.version,
        timestamp=timestamp,
        build_number=build_number,
        last_updated=now,
        files=kept + list(files),
    )


def _add(parent: ET.Element, name: str, text: str | None) -> ET.Element:
    element = ET.SubElement(parent, name)
    if text is not None:
        element.text = text
    return element


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def render_artifact_metadata(metadata: ArtifactMetadata) -> bytes:
    root = ET.Element("metadata")
    _add(root, "groupId", metadata.group_id)
    _add(root, "artifactId", metadata.artifact_id)
    versioning = _add(root, "versioning", None)
    if metadata.latest:
        _add(versioning, "latest", metadata.latest)
    if metadata.release:
        _add(versioning, "release", metadata.release)
    versions = _add(versioning, "versions", None)
    for version in metadata.versions:
        _add(versions, "version", version)
    _add(versioning, "lastUpdated", metadata.last_updated)
    return _serialise(root)


def render_snapshot_metadata(metadata: SnapshotMetadata) -> bytes:
    root = ET.Element("metadata", modelVersion="1.1.0")
    _add(root, "groupId", metadata.group_id)
    _add(root, "artifactId", metadata.artifact_id)
    _add(root, "version", metadata.version)
    versioning = _add(root, "versioning", None)
    snapshot = _add(versioning, "snapshot", None)
    _add(snapshot, "timestamp", metadata.timestamp)
    _add(snapshot, "buildNumber", str(metadata.build_number))
    _add(versioning, "lastUpdated", metadata.last_updated)
    entries = _add(versioning, "snapshotVersions", None)
    for file in metadata.files:
        entry = _add(entries, "snapshotVersion", None)
        if file.classifier:
            _add(entry, "classifier", file.classifier)
        _add(entry, "extension", file.extension)
        _add(entry, "value", file.value)
        _add(entry, "updated", file.updated)
    return _serialise(root)


def without_versions(metadata: ArtifactMetadata, removed: set[str], now: str) -> ArtifactMetadata:
    """The artifact-level metadata with `removed` gone. `latest` and `release` stay when they
    name a remaining version, else they become the newest remaining one in Maven's order (so
    they never name a deleted version)."""
    versions = [v for v in metadata.versions if v not in removed]
    # Entries that are no valid version stay listed (the pipe deletes only what it can name), but
    # never become `latest`/`release`.
    valid = [v for v in versions if version_problem(v) is None]
    releases = [v for v in valid if not is_snapshot(v)]
    latest = metadata.latest if metadata.latest in versions else highest(valid)
    release = metadata.release if metadata.release in releases else highest(releases)
    return ArtifactMetadata(metadata.group_id, metadata.artifact_id, versions, latest, release, now)


def without_builds(metadata: SnapshotMetadata, removed: set[str]) -> SnapshotMetadata:
    """The version-level metadata without the `<snapshotVersion>` entries of deleted builds;
    `<snapshot>` (the newest build, never deleted) and `<lastUpdated>` stay as they are."""
    files = [f for f in metadata.files if f.value not in removed]
    return SnapshotMetadata(
        metadata.group_id,
        metadata.artifact_id,
        metadata.version,
        metadata.timestamp,
        metadata.build_number,
        metadata.last_updated,
        files,
    )

"""The Maven repository layout: which local files belong to the POM's coordinates, and where
each one goes in the repository (release and timestamped SNAPSHOT names)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipe.errors import InputError
from pipe.maven.pom import Pom

# Packaging → extension of the main artifact (Maven's standard artifact handlers); any other
# packaging is its own extension (war, ear, rar, aar, …).
PACKAGING_EXTENSIONS = {"maven-plugin": "jar", "ejb": "jar", "bundle": "jar", "java-source": "jar", "javadoc": "jar"}
# Checksums Maven writes next to every file; the first two are what every consumer checks.
REQUIRED_CHECKSUMS = ("md5", "sha1")
EXTRA_CHECKSUMS = ("sha256", "sha512")
CHECKSUM_EXTENSIONS = REQUIRED_CHECKSUMS + EXTRA_CHECKSUMS
# Files in target/ that are never artifacts even when named like one.
_NOT_ARTIFACTS = CHECKSUM_EXTENSIONS + ("lastUpdated", "original")
_CHUNK = 1 << 20


def main_extension(packaging: str) -> str:
    return PACKAGING_EXTENSIONS.get(packaging, packaging)


@dataclass(frozen=True)
class Checksums:
    md5: str
    sha1: str
    sha256: str
    sha512: str

    def get(self, algorithm: str) -> str:
        return getattr(self, algorithm)


def checksums_of(path: Path) -> Checksums:
    """All four digests in one streamed pass over the file."""
    digests = {name: hashlib.new(name) for name in CHECKSUM_EXTENSIONS}
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            for digest in digests.values():
                digest.update(chunk)
    return Checksums(**{name: digest.hexdigest() for name, digest in digests.items()})


def checksums_of_bytes(data: bytes) -> Checksums:
    return Checksums(**{name: hashlib.new(name, data).hexdigest() for name in CHECKSUM_EXTENSIONS})


@dataclass(frozen=True)
class Artifact:
    """One file to deploy: its local path, classifier ('' for the main one) and extension."""

    path: Path
    classifier: str
    extension: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.classifier, self.extension)

    def describe(self) -> str:
        return f"{self.classifier or 'main'} {self.extension}"


def file_name(artifact_id: str, version: str, classifier: str, extension: str) -> str:
    """`<artifactId>-<version>[-<classifier>].<ext>`; for SNAPSHOTs `version` is the timestamped one."""
    suffix = f"-{classifier}" if classifier else ""
    return f"{artifact_id}-{version}{suffix}.{extension}"


def snapshot_timestamp(now: datetime) -> str:
    """`yyyyMMdd.HHmmss` in UTC, the timestamp in a deployed SNAPSHOT's file names."""
    return now.strftime("%Y%m%d.%H%M%S")


def snapshot_version(base_version: str, timestamp: str, build_number: int) -> str:
    """`1.0-SNAPSHOT` → `1.0-20240102.030405-7`."""
    return f"{base_version.removesuffix('-SNAPSHOT')}-{timestamp}-{build_number}"


def split_classifier_extension(rest: str) -> tuple[str, str] | None:
    """What follows `<artifactId>-<version>` in a file name: `.ext` → ('', 'ext'), or
    `-classifier.ext` → ('classifier', 'ext'); a multi-part extension is kept whole (`.jar.asc` →
    ('', 'jar.asc')). None for anything else."""
    classifier = ""
    if rest.startswith("-"):
        classifier, dot, extension = rest[1:].partition(".")
        if not classifier or not dot:
            return None
    elif rest.startswith("."):
        extension = rest[1:]
    else:
        return None
    return (classifier, extension) if extension else None


def parse_artifact_name(name: str, pom: Pom) -> tuple[str, str] | None:
    """(classifier, extension) when `name` is `<artifactId>-<version>[-<classifier>].<ext>` and not
    a checksum or signature of one, else None."""
    prefix = f"{pom.artifact_id}-{pom.version}"
    if not name.startswith(prefix):
        return None
    parsed = split_classifier_extension(name[len(prefix) :])
    if parsed is None or parsed[1].split(".")[-1] in _NOT_ARTIFACTS:
        return None
    return parsed


def discover_artifacts(target: Path, pom: Pom) -> list[Artifact]:
    """Files in `target/` named after the POM's coordinates (what `mvn package` leaves there)."""
    if not target.is_dir():
        return []
    found = []
    for path in sorted(target.iterdir()):
        parsed = parse_artifact_name(path.name, pom) if path.is_file() else None
        if parsed is None:
            continue
        classifier, extension = parsed
        if not classifier and extension == "pom":
            continue  # the POM itself is MAVEN_POM, deployed first
        found.append(Artifact(path, classifier, extension))
    return found


def named_artifacts(paths: list[Path], pom: Pom) -> list[Artifact]:
    """MAVEN_ARTIFACTS: each file must exist and be named after the POM's coordinates, since the
    name is what tells the classifier and extension apart."""
    artifacts = []
    for path in paths:
        if not path.is_file():
            raise InputError(
                f"MAVEN_ARTIFACTS file {path} does not exist: build it first (e.g. mvn package) or fix the path."
            )
        parsed = parse_artifact_name(path.name, pom)
        if parsed is None:
            example = file_name(pom.artifact_id, pom.version, "", main_extension(pom.packaging))
            raise InputError(
                f"MAVEN_ARTIFACTS file {path.name} is not named after the POM's coordinates ({pom.gav}): name it "
                f"<artifactId>-<version>[-<classifier>].<ext>, e.g. {example}, or check that MAVEN_POM is the "
                "POM it was built from."
            )
        artifacts.append(Artifact(path, *parsed))
    return artifacts


def order_artifacts(artifacts: list[Artifact], pom: Pom, source: str) -> tuple[Artifact | None, list[Artifact]]:
    """Split into the main artifact and the attached ones (sorted), refusing duplicates and a
    missing main artifact for packagings that have one."""
    seen: dict[tuple[str, str], Path] = {}
    for artifact in artifacts:
        if artifact.key in seen:
            raise InputError(
                f"{source} has two files for the {artifact.describe()} artifact ({seen[artifact.key].name} and "
                f"{artifact.path.name}): keep only one."
            )
        seen[artifact.key] = artifact.path
    extension = main_extension(pom.packaging)
    main = next((a for a in artifacts if not a.classifier and a.extension == extension), None)
    attached = sorted((a for a in artifacts if a is not main), key=lambda a: (a.classifier, a.extension))
    if pom.packaging != "pom" and main is None:
        expected = file_name(pom.artifact_id, pom.version, "", extension)
        raise InputError(
            f"no main artifact {expected} for {pom.gav} (packaging {pom.packaging}) in {source}: build it first "
            "(mvn package), or list it in MAVEN_ARTIFACTS."
        )
    return main, attached

"""Reading a staging folder (MAVEN_STAGING_DIR): a tree in Maven repository layout that the build
wrote itself (`mvn deploy` to a `file:` repository, Gradle's `maven-publish` to a local folder,
sbt, Bazel). Everything here is local and happens before the repository is asked anything: the
layout is recognised, every file is tied to `<group>/<artifactId>/<version>/`, and the checksum
files the build wrote are verified, so that a folder the pipe cannot read faithfully stops the
run with nothing uploaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import InputError
from pipe.maven.layout import CHECKSUM_EXTENSIONS, Checksums, checksums_of, split_classifier_extension
from pipe.maven.paths import METADATA, id_problem, name_problem, printable, repository_path, version_problem
from pipe.maven.repository import in_parallel

SNAPSHOT_SUFFIX = "-SNAPSHOT"
# `<base>-<yyyyMMdd.HHmmss>-<buildNumber>`: the version in a deployed SNAPSHOT build's file names.
_BUILD = re.compile(r"(?P<timestamp>\d{8}\.\d{6})-(?P<number>[1-9]\d*)")
# How much of a staged checksum file is read: its digest and then some.
_CHECKSUM_READ_BYTES = 1024
# Names a problem list shows before "and N more": the first few say what is wrong.
_SHOWN_NAMES = 8


@dataclass(frozen=True)
class StagedFile:
    """One staged file: where it is, its name in the repository, and what it is."""

    source: Path
    name: str
    classifier: str
    extension: str
    # (timestamp, buildNumber) of a timestamped SNAPSHOT build; None for releases and for SNAPSHOT
    # files named `…-SNAPSHOT…` (those are given a build when deployed).
    build: tuple[str, int] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.classifier, self.extension)

    @property
    def is_pom(self) -> bool:
        return self.key == ("", "pom")

    def describe(self) -> str:
        return "POM" if self.is_pom else f"{self.classifier or 'main'} {self.extension}"


@dataclass
class StagedVersion:
    """The files of one `<group path>/<artifactId>/<version>/` folder."""

    group_id: str
    artifact_id: str
    version: str
    files: list[StagedFile] = field(default_factory=list)

    @property
    def folder(self) -> str:
        """The folder in the repository (and in the staging folder)."""
        return repository_path(self.group_id, self.artifact_id, self.version)

    @property
    def gav(self) -> str:
        return f"{self.group_id}:{self.artifact_id}:{self.version}"

    @property
    def is_snapshot(self) -> bool:
        return self.version.endswith(SNAPSHOT_SUFFIX)

    @property
    def builds(self) -> list[tuple[str, int]]:
        """The timestamped builds staged, oldest first (empty for releases and plain SNAPSHOT names)."""
        return sorted({file.build for file in self.files if file.build is not None})


@dataclass
class Problems:
    """What makes the folder unreadable, gathered over the whole tree and reported in one line."""

    stray: list[str] = field(default_factory=list)
    escaping: list[str] = field(default_factory=list)
    misnamed: list[str] = field(default_factory=list)
    without_pom: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def sentences(self) -> list[str]:
        said = [
            (self.escaping, "symbolic links that point outside the folder"),
            (self.unsafe, "names no Maven coordinates or file in a repository can have"),
            (self.special, "entries that are not regular files (broken links, pipes, sockets, devices)"),
            (self.unreadable, "files or folders the pipe may not read"),
            (self.stray, "files outside a <group>/<artifactId>/<version>/ folder"),
            (self.misnamed, "files not named <artifactId>-<version>[-<classifier>].<ext> after their folder"),
            (self.without_pom, "version folders without their POM"),
            (self.mixed, "SNAPSHOT folders with both timestamped and -SNAPSHOT file names"),
            (self.orphans, "checksum files without the file they are for"),
        ]
        return [f"{what} ({listed(sorted(names))})" for names, what in said if names]


def listed(names: list[str]) -> str:
    shown = ", ".join(printable(name) for name in names[:_SHOWN_NAMES])
    more = len(names) - _SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def read_staging_folder(root: Path, shown_root: str) -> list[StagedVersion]:
    """Every version staged under `root`, in folder order; one ✖ for anything that does not fit."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise InputError(
            f"MAVEN_STAGING_DIR {shown_root} {what}: let the build write its staging repository there first "
            '(e.g. ./gradlew publish with a maven { url = layout.buildDirectory.dir("staging-deploy") } '
            "repository, or mvn deploy -DaltDeploymentRepository=stage::file:target/staging-deploy) in the same "
            "step, and set MAVEN_STAGING_DIR to that folder (relative to the clone directory)."
        )
    problems = Problems()
    folders = files_by_folder(root, problems)
    versions = [read_version(root, folder, names, problems) for folder, names in folders]
    sentences = problems.sentences()
    if sentences:
        raise InputError(
            f"MAVEN_STAGING_DIR {shown_root} has {'; '.join(sentences)}: it must hold only what the build "
            "wrote in Maven repository layout (<group path>/<artifactId>/<version>/<artifactId>-<version>…); "
            "remove those files or point MAVEN_STAGING_DIR at the staging folder itself. Nothing was uploaded."
        )
    staged = [version for version in versions if version is not None]
    if not staged:
        raise InputError(
            f"MAVEN_STAGING_DIR {shown_root} holds no <group path>/<artifactId>/<version>/ folder to deploy: "
            "run the build's publishing into it first in the same step (e.g. ./gradlew publish, or mvn deploy "
            "-DaltDeploymentRepository=stage::file:target/staging-deploy), and check the path."
        )
    return staged


def files_by_folder(root: Path, problems: Problems) -> list[tuple[tuple[str, ...], list[str]]]:
    """(folder parts relative to `root`, file names) of every folder holding something other than
    metadata, in sorted order. Symbolic links are followed only while they stay inside `root`."""
    real_root = os.path.realpath(root)
    seen: set[str] = set()
    found = []

    def unreadable(error: OSError) -> None:  # a folder os.walk cannot list would be left out silently
        problems.unreadable.append(f"{Path(str(error.filename)).relative_to(root).as_posix()}/")

    for directory, subdirectories, names in os.walk(root, onerror=unreadable, followlinks=True):
        relative = Path(directory).relative_to(root).parts
        seen.add(os.path.realpath(directory))
        for name in list(subdirectories):
            target = os.path.realpath(Path(directory, name))
            if not inside(target, real_root):
                problems.escaping.append("/".join((*relative, name)))
            if not inside(target, real_root) or target in seen:
                subdirectories.remove(name)  # outside, or a loop back into the tree
        subdirectories.sort()
        kept = [name for name in sorted(names) if is_deployable(Path(directory, name), relative, real_root, problems)]
        if kept:
            found.append((relative, kept))
    return found


def is_deployable(path: Path, relative: tuple[str, ...], real_root: str, problems: Problems) -> bool:
    """Whether a file found in the folder is one to deploy: a readable regular file (or a link to
    one inside the folder) that is not metadata; anything else is noted in `problems`."""
    shown_path = "/".join((*relative, path.name))
    if path.is_symlink() and not inside(os.path.realpath(path), real_root):
        problems.escaping.append(shown_path)
    elif not path.is_file():
        problems.special.append(shown_path)  # a FIFO, socket or device would hang or lie when read
    elif not os.access(path, os.R_OK):
        problems.unreadable.append(shown_path)
    else:
        return not is_metadata(path.name)
    return False


def inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


def is_metadata(name: str) -> bool:
    """The folder's own `maven-metadata.xml` (and its checksums): never copied, the repository's is merged."""
    return name == METADATA or any(name == f"{METADATA}.{algorithm}" for algorithm in CHECKSUM_EXTENSIONS)


def read_version(root: Path, parts: tuple[str, ...], names: list[str], problems: Problems) -> StagedVersion | None:
    """The version staged in one folder, or None (with the reason in `problems`)."""
    if len(parts) < 3:
        problems.stray.extend("/".join((*parts, name)) for name in names)
        return None
    unsafe = unsafe_names(parts, names)
    if unsafe:
        problems.unsafe.extend(unsafe)
        return None
    version = StagedVersion(".".join(parts[:-2]), parts[-2], parts[-1])
    checksums = {name for name in names if name.rsplit(".", 1)[-1] in CHECKSUM_EXTENSIONS}
    for name in names:
        if name in checksums and name.rsplit(".", 1)[0] in names:
            continue  # the checksum file of a staged file: verified with it
        parsed = parse_staged_name(name, version.artifact_id, version.version)
        if name in checksums:
            problems.orphans.append(f"{version.folder}/{name}")
        elif parsed is None:
            problems.misnamed.append(f"{version.folder}/{name}")
        else:
            version.files.append(StagedFile(root.joinpath(*parts, name), name, *parsed))
    if not any(file.is_pom for file in version.files):
        problems.without_pom.append(f"{version.folder}/ (no {version.artifact_id}-{version.version}.pom)")
    if version.builds and any(file.build is None for file in version.files):
        problems.mixed.append(f"{version.folder}/")
    return version


def unsafe_names(parts: tuple[str, ...], names: list[str]) -> list[str]:
    """The paths of a version folder that cannot be Maven coordinates or repository file names, by
    the rules of every repository path (paths.py). A group folder with a dot in it is refused too:
    it would be another group in the repository than on disk."""
    folder = "/".join(parts)
    group_id, artifact_id, version = ".".join(parts[:-2]), parts[-2], parts[-1]
    if (
        any("." in part for part in parts[:-2])
        or id_problem(group_id, "groupId")
        or id_problem(artifact_id, "artifactId")
        or version_problem(version)
    ):
        return [f"{folder}/"]
    return [f"{folder}/{name}" for name in names if name_problem(name)]


def parse_staged_name(name: str, artifact_id: str, version: str) -> tuple[str, str, tuple[str, int] | None] | None:
    """(classifier, extension, build) for `<artifactId>-<version>[-<classifier>].<ext>`; in a
    SNAPSHOT folder the version may also be a timestamped build (`1.0-20240102.030405-1`)."""
    prefix = f"{artifact_id}-"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    if rest.startswith(version):
        parsed = classifier_extension(rest[len(version) :])
        return None if parsed is None else (*parsed, None)
    base = version.removesuffix(SNAPSHOT_SUFFIX)
    if base == version or not rest.startswith(f"{base}-"):
        return None
    build = _BUILD.match(rest, len(base) + 1)
    parsed = classifier_extension(rest[build.end() :]) if build else None
    if build is None or parsed is None:
        return None
    return (*parsed, (build["timestamp"], int(build["number"])))


def classifier_extension(rest: str) -> tuple[str, str] | None:
    """What follows the version, as `layout.split_classifier_extension` reads it; an extension
    starting with a number is another version's file (`lib-1.0.1.jar` in the folder of 1.0), not
    an extension, and an empty part is no extension either."""
    parsed = split_classifier_extension(rest)
    if parsed is None:
        return None
    parts = parsed[1].split(".")
    return None if parts[0].isdigit() or "" in parts else parsed


def verify_checksums(versions: list[StagedVersion], shown_root: str) -> dict[Path, Checksums]:
    """Each staged file's checksums, checked against every checksum file the build wrote next to it;
    one ✖ naming every file whose checksum does not match, before anything is uploaded."""
    files = [file for version in versions for file in version.files]
    sums = in_parallel(lambda f: checksums_of(f.source), files)
    computed = dict(zip((file.source for file in files), sums, strict=True))
    wrong = [
        f"{version.folder}/{file.name}.{algorithm}"
        for version in versions
        for file in version.files
        for algorithm in CHECKSUM_EXTENSIONS
        if (sidecar := file.source.with_name(f"{file.name}.{algorithm}")).is_file()
        and staged_digest(sidecar) != computed[file.source].get(algorithm)
    ]
    if wrong:
        raise InputError(
            f"MAVEN_STAGING_DIR {shown_root} has checksum files that do not match their files ({listed(wrong)}): "
            "the folder changed after the build wrote it (or a copy broke it); rebuild the staging folder in the "
            "same step and re-run. Nothing was uploaded."
        )
    return computed


def staged_digest(path: Path) -> str:
    """The digest a checksum file holds: its first word, as Maven reads it (`<hex>  <file name>` too).
    Only the start is read: a digest is at most 128 hex digits, whatever else the file holds."""
    with path.open("rb") as handle:
        words = handle.read(_CHECKSUM_READ_BYTES).split()
    return words[0].decode("ascii", errors="replace").lower() if words else ""

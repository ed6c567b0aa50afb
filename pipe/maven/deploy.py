"""The per-POM steps of a Maven deploy, shared by the single-POM publish (`publish.py`) and the
reactor (`reactor.py`): which files belong to the POM, whether each release file is already
published, the timestamped SNAPSHOT build, the upload order and the metadata written last.

Everything is read and decided before the first write: the POM's coordinates, the files, and
for a release whether each file is already published (same checksum: skipped; different: the
run stops before uploading anything). Files go up in Maven's order, POM, main artifact,
attached artifacts, and the metadata last, so that no consumer sees metadata naming a file that
is not there yet.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pipe.config import Config
from pipe.context import PipelinesRun
from pipe.errors import ConflictError, InputError, RegistryError
from pipe.maven.flatten import pom_upload
from pipe.maven.layout import (
    Artifact,
    checksums_of,
    checksums_of_bytes,
    discover_artifacts,
    file_name,
    main_extension,
    named_artifacts,
    order_artifacts,
    snapshot_timestamp,
    snapshot_version,
)
from pipe.maven.metadata import (
    ArtifactMetadata,
    SnapshotFile,
    merge_snapshot,
    merge_version,
    parse_artifact_metadata,
    render_artifact_metadata,
    render_snapshot_metadata,
)
from pipe.maven.paths import METADATA, repository_path
from pipe.maven.pom import Pom
from pipe.maven.repository import METADATA_ROUNDS, MavenRepository, Upload, in_parallel, settle_time
from pipe.versioning import strip_v

# Packaged files that, found in target/ under another name, hint that the POM and the build disagree.
_PACKAGED_SUFFIXES = (".jar", ".war", ".ear", ".rar", ".aar", ".zip")


@dataclass(frozen=True)
class Snapshot:
    timestamp: str
    build_number: int
    version: str  # the timestamped version, e.g. 1.0-20240102.030405-7


@dataclass
class Plan:
    pom: Pom
    version: str  # the version files are named with (timestamped for SNAPSHOTs)
    uploads: list[Upload]
    skipped: list[Upload] = field(default_factory=list)
    snapshot: Snapshot | None = None


def check_tag(context: PipelinesRun, pom: Pom, whose: str = "the POM's") -> None:
    """On a tag pipeline for a semantic version, the POM must carry that version: publishing
    1.2.2 from the tag v1.2.3 is almost always a forgotten version bump."""
    if context.tag_version is None or pom.version == strip_v(context.tag or ""):
        return
    wanted = str(context.tag_version)
    raise InputError(
        f"this pipeline runs for tag {context.tag} but {whose} version is {pom.version}: set <version>{wanted}"
        f"</version> in the POM before this step (e.g. mvn versions:set -DnewVersion={wanted}), "
        f"or tag the commit v{pom.version}."
    )


def select_artifacts(config: Config, pom: Pom) -> tuple[Artifact | None, list[Artifact]]:
    if config.maven.artifacts:
        artifacts = named_artifacts([config.resolve(path) for path in config.maven.artifacts], pom)
        return order_artifacts(artifacts, pom, "MAVEN_ARTIFACTS")
    return built_artifacts(config, pom)


def built_artifacts(config: Config, pom: Pom) -> tuple[Artifact | None, list[Artifact]]:
    """What `mvn package` left in the POM's own target/, named after its coordinates."""
    target = pom.path.parent / "target"
    artifacts = discover_artifacts(target, pom)
    source = f"{shown(target, config)}/"
    if not artifacts and pom.packaging != "pom":
        expected = file_name(pom.artifact_id, pom.version, "", main_extension(pom.packaging))
        others = sorted(p.name for p in target.glob("*") if p.suffix in _PACKAGED_SUFFIXES) if target.is_dir() else []
        found = f"; it has {', '.join(others)}, which are not named after {pom.gav}" if others else ""
        raise InputError(
            f"no artifacts for {pom.gav} found in {source} (looked for {expected}{found}): build them before the "
            "pipe (e.g. mvn package in the same step), check that MAVEN_POM is the POM they were built from, "
            "or list the files in MAVEN_ARTIFACTS."
        )
    return order_artifacts(artifacts, pom, source)


def shown(path: Path, config: Config) -> str:
    """A path as the user wrote it: relative to the clone when it is inside it."""
    try:
        return str(path.relative_to(config.working_dir))
    except ValueError:
        return str(path)


def planned_uploads(pom: Pom, version: str, main: Artifact | None, attached: list[Artifact]) -> list[Upload]:
    """POM, main artifact, attached artifacts: Maven's deploy order."""

    def path(classifier: str, extension: str) -> str:
        name = file_name(pom.artifact_id, version, classifier, extension)
        return repository_path(pom.group_id, pom.artifact_id, pom.version, name)

    uploads = [pom_upload(path("", "pom"), pom.path, pom.deployed)]
    for artifact in ([main] if main else []) + attached:
        uploads.append(
            Upload(
                path=path(artifact.classifier, artifact.extension),
                label=artifact.describe(),
                checksums=checksums_of(artifact.path),
                source=artifact.path,
                attached=artifact is not main,
            )
        )
    return uploads


def plan_release(repository: MavenRepository, pom: Pom, main: Artifact | None, attached: list[Artifact]) -> Plan:
    """Releases are immutable: compare every planned file with what the repository has, and
    stop before any upload if one differs."""
    planned = planned_uploads(pom, pom.version, main, attached)
    plan, conflicts = sort_release(pom, planned, release_states(repository, planned))
    if conflicts:
        raise conflict_error([(pom.gav, conflicts)])
    return plan


def release_states(repository: MavenRepository, planned: list[Upload]) -> list[str]:
    """Per planned file, what the repository holds there: "new" (nothing), "same" (this file and
    its checksum files), "repair" (this file without matching checksum files: an earlier run broke
    off in between, so the same bytes go up again and Maven's checksum check passes) or "other"."""

    def state(upload: Upload) -> str:
        remote = repository.remote_sha1(upload.path)
        if remote is None:
            return "new"
        if remote != upload.checksums.sha1:
            return "other"
        return "same" if repository.checksums_match(upload.path, upload.checksums) else "repair"

    return in_parallel(state, planned)


def sort_release(pom: Pom, planned: list[Upload], states: list[str]) -> tuple[Plan, list[str]]:
    """The release plan from the states of its files, and the names of the files that differ."""
    plan = Plan(pom=pom, version=pom.version, uploads=[])
    conflicts = []
    for upload, state in zip(planned, states, strict=True):
        if state == "other":
            conflicts.append(upload.path.rsplit("/", 1)[-1])
        else:
            (plan.skipped if state == "same" else plan.uploads).append(upload)
    return plan, conflicts


def conflict_error(conflicts: list[tuple[str, list[str]]], scope: str = "") -> ConflictError:
    """One line for every release that differs from what is published: (coordinates, file names)."""
    if len(conflicts) == 1:
        gav, files = conflicts[0]
        what = f"{gav} is already published with different content ({', '.join(files)})"
    else:
        listed = "; ".join(f"{gav} ({', '.join(files)})" for gav, files in conflicts)
        what = f"{listed} are already published with different content"
    return ConflictError(
        f"{what}: releases are immutable; bump the version in the POM and re-run. Nothing was uploaded{scope}."
    )


def plan_snapshot(
    repository: MavenRepository, pom: Pom, main: Artifact | None, attached: list[Artifact], now: datetime
) -> Plan:
    """A SNAPSHOT gets a new timestamped build: buildNumber = the repository's + 1."""
    previous = repository.read_snapshot_metadata(pom.group_id, pom.artifact_id, pom.version)
    build_number = previous.build_number + 1
    timestamp = snapshot_timestamp(now)
    version = snapshot_version(pom.version, timestamp, build_number)
    return Plan(
        pom=pom,
        version=version,
        uploads=planned_uploads(pom, version, main, attached),
        snapshot=Snapshot(timestamp, build_number, version),
    )


def show_files(plan: Plan, config: Config, log: logging.Logger) -> None:
    show_uploads(plan.uploads, plan.skipped, config, log)


def show_uploads(uploads: list[Upload], skipped: list[Upload], config: Config, log: logging.Logger) -> None:
    """One line per file: what goes up, from where, and what is already published."""
    for upload in uploads:
        source = shown(upload.source, config) if upload.source else "generated"
        log.info("  upload %s (%s, %s bytes, from %s)", upload.path, upload.label, upload.size, source)
    for upload in skipped:
        log.info("  skip   %s (%s: already published with the same SHA-1)", upload.path, upload.label)


def upload_in_order(repository: MavenRepository, plan: Plan) -> None:
    """POM first, then the main artifact, each on its own (so that the first upload also settles
    which checksum files the repository takes); the attached artifacts after them, together."""
    for upload in plan.uploads:
        if not upload.attached:
            repository.put(upload)
    repository.put_all([upload for upload in plan.uploads if upload.attached])


def write_metadata(repository: MavenRepository, plan: Plan, now: datetime, log: logging.Logger) -> bool:
    """Metadata last, each re-read right before it is written so that a deploy finishing in
    between is merged rather than overwritten. Returns whether anything was written."""
    pom, stamp = plan.pom, now.strftime("%Y%m%d%H%M%S")
    written = False
    if plan.snapshot is not None:
        snapshot = plan.snapshot
        files = [
            SnapshotFile(*_classifier_extension(upload, pom, snapshot.version), snapshot.version, stamp)
            for upload in plan.uploads
        ]
        previous = repository.read_snapshot_metadata(pom.group_id, pom.artifact_id, pom.version)
        merged = merge_snapshot(previous, snapshot.timestamp, snapshot.build_number, files, stamp)
        repository.put_metadata(
            repository_path(pom.group_id, pom.artifact_id, pom.version, METADATA), render_snapshot_metadata(merged)
        )
        written = True
    read_started = time.monotonic()
    empty = ArtifactMetadata(pom.group_id, pom.artifact_id)
    current, data, held = read_artifact_metadata(repository, pom.group_id, pom.artifact_id, [pom.version], empty)
    path = repository_path(pom.group_id, pom.artifact_id, name=METADATA)
    if pom.version in current.versions and not plan.uploads:
        if held:
            log.info("%s already lists %s; metadata left as it is.", path, pom.version)
            return written
        # An earlier run broke off between the metadata and its checksum files: complete them.
        repository.put_metadata(path, data or b"")
        return True
    write_artifact_metadata(repository, pom.group_id, pom.artifact_id, [pom.version], current, stamp, log, read_started)
    return True


def read_artifact_metadata(
    repository: MavenRepository, group_id: str, artifact_id: str, versions: list[str], missing: ArtifactMetadata
) -> tuple[ArtifactMetadata, bytes | None, bool]:
    """The repository's artifact-level metadata (`missing` when it has none), its bytes, and whether it
    lists every one of `versions` with matching checksum files."""
    path = repository_path(group_id, artifact_id, name=METADATA)
    data = repository.read(path, f"reading {path}")
    if data is None:
        return missing, None, False
    current = parse_artifact_metadata(data, repository.url(path), group_id, artifact_id)
    listed = all(version in current.versions for version in versions)
    return current, data, listed and repository.checksums_match(path, checksums_of_bytes(data))


def write_artifact_metadata(
    repository: MavenRepository,
    group_id: str,
    artifact_id: str,
    versions: list[str],
    current: ArtifactMetadata,
    stamp: str,
    log: logging.Logger,
    read_started: float,
) -> None:
    """Merge `versions` into the artifact's list, write, and check that the write held: another deploy
    writing at the same moment may have overwritten ours (a lost update), or crossed our checksum
    files with its own. After a short, jittered pause the file is re-read; until it lists every one
    of `versions` with matching checksums, it is merged and written again (a bounded number of times)."""
    path = repository_path(group_id, artifact_id, name=METADATA)
    for round_number in range(1, METADATA_ROUNDS + 1):
        merged = current
        for version in versions:
            merged = merge_version(merged, version, stamp)
        repository.put_metadata(path, render_artifact_metadata(merged))
        time.sleep(settle_time(read_started))
        read_started = time.monotonic()
        current, _, held = read_artifact_metadata(repository, group_id, artifact_id, versions, current)
        if held:
            return
        log.info("%s was changed by another deploy at the same time; merging again (%d).", path, round_number)
    which = "the version" if len(versions) == 1 else "the versions"
    raise RegistryError(
        f"{repository.url(path)} kept changing under other deploys and does not list {', '.join(versions)}: the "
        f"files are uploaded; re-run the step to add {which} to the metadata."
    )


def _classifier_extension(upload: Upload, pom: Pom, version: str) -> tuple[str, str]:
    """Back from a planned file name to (classifier, extension) for `<snapshotVersion>`."""
    name = upload.path.rsplit("/", 1)[-1].removeprefix(f"{pom.artifact_id}-{version}")
    if name.startswith("-"):
        classifier, _, extension = name[1:].partition(".")
        return classifier, extension
    return "", name[1:]


def plan_variables(plan: Plan) -> dict[str, str]:
    return {
        "PUBLISHED_GROUP_ID": plan.pom.group_id,
        "PUBLISHED_ARTIFACT_ID": plan.pom.artifact_id,
        "PUBLISHED_VERSION": plan.version,
    }


def plan_details(plan: Plan, config: Config) -> dict[str, object]:
    return {
        "group_id": plan.pom.group_id,
        "artifact_id": plan.pom.artifact_id,
        "version": plan.version,
        "base_version": plan.pom.version,
        "packaging": plan.pom.packaging,
        "registry": config.registry.url,
        "skipped": [upload.path for upload in plan.skipped],
    }

"""Publisher for PACKAGE_TYPE=maven: deploy a POM and its built files to a Maven repository over
plain HTTP, the way `mvn deploy` lays them out (no JDK, no Maven, no settings.xml).

Everything is read and decided before the first write: the POM's coordinates, the files, and
for a release whether each file is already published (same checksum: skipped; different: the
run stops before uploading anything). Files go up in Maven's order, POM, main artifact,
attached artifacts, and the metadata last, so that no consumer sees metadata naming a file that
is not there yet.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipe.config import Config
from pipe.context import PipelinesRun
from pipe.errors import ConflictError, InputError, RegistryError
from pipe.http import new_session
from pipe.masking import SecretMasker
from pipe.maven.layout import (
    Artifact,
    artifact_dir,
    checksums_of,
    checksums_of_bytes,
    discover_artifacts,
    file_name,
    main_extension,
    named_artifacts,
    order_artifacts,
    snapshot_timestamp,
    snapshot_version,
    version_dir,
)
from pipe.maven.metadata import (
    ArtifactMetadata,
    SnapshotFile,
    SnapshotMetadata,
    merge_snapshot,
    merge_version,
    parse_artifact_metadata,
    parse_snapshot_metadata,
    render_artifact_metadata,
    render_snapshot_metadata,
)
from pipe.maven.pom import Pom, module_paths, pom_from_root, read_root
from pipe.maven.repository import MavenRepository, Upload, in_parallel
from pipe.maven.staging import deploy_staged
from pipe.outputs import Publication
from pipe.versioning import strip_v

METADATA = "maven-metadata.xml"
# Lost-update check of the artifact metadata: rounds of write + re-read. Before the re-read the
# pipe pauses for twice as long as its own read-merge-write took (bounded): another deploy over
# the same network needs about as long between reading the file and writing it back, so a write
# of theirs that could drop our version has landed by then. Jitter keeps two deploys apart.
METADATA_ROUNDS = 5
METADATA_SETTLE_MIN_S = 0.02
METADATA_SETTLE_MAX_S = 0.5
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


def publish(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    if config.maven.staging_dir:
        return deploy_staged(config, log)
    path = config.resolve(config.maven.pom)
    root = read_root(path, "MAVEN_POM")
    if module_paths(root):
        # Imported here: the reactor is built from this module's per-POM steps.
        from pipe.maven.reactor import publish_reactor

        return publish_reactor(config, log, path)
    pom = pom_from_root(root, path, "MAVEN_POM")
    log.info("Publishing %s (packaging %s) from %s.", pom.gav, pom.packaging, shown(pom.path, config))
    check_tag(config.context, pom)
    main, attached = select_artifacts(config, pom)
    repository = open_repository(config, log)
    now = datetime.now(UTC)
    if pom.is_snapshot:
        plan = plan_snapshot(repository, pom, main, attached, now)
    else:
        plan = plan_release(repository, pom, main, attached)
    show_plan(plan, config, log)
    if config.dry_run:
        return dry_run_result(plan, config)
    upload_in_order(repository, plan)
    metadata_written = write_metadata(repository, plan, now, log)
    return result(plan, config, repository, metadata_written)


def open_repository(config: Config, log: logging.Logger) -> MavenRepository:
    return MavenRepository(
        # A file PUT sends the same bytes to the same URL: safe to retry under the shared policy.
        config.registry.url,
        new_session(auth=config.credentials.as_requests_auth(), idempotent_writes=True),
        log.getChild("http"),
    )


def upload_in_order(repository: MavenRepository, plan: Plan) -> None:
    """POM first, then the main artifact, each on its own (so that the first upload also settles
    which checksum files the repository takes); the attached artifacts after them, together."""
    for upload in plan.uploads:
        if not upload.attached:
            repository.put(upload)
    repository.put_all([upload for upload in plan.uploads if upload.attached])


def shown(path: Path, config: Config) -> str:
    """A path as the user wrote it: relative to the clone when it is inside it."""
    try:
        return str(path.relative_to(config.working_dir))
    except ValueError:
        return str(path)


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


def planned_uploads(pom: Pom, version: str, main: Artifact | None, attached: list[Artifact]) -> list[Upload]:
    """POM, main artifact, attached artifacts: Maven's deploy order."""
    directory = version_dir(pom)
    uploads = [
        Upload(
            path=f"{directory}/{file_name(pom.artifact_id, version, '', 'pom')}",
            label="POM",
            checksums=checksums_of(pom.path),
            source=pom.path,
        )
    ]
    for artifact in ([main] if main else []) + attached:
        uploads.append(
            Upload(
                path=f"{directory}/{file_name(pom.artifact_id, version, artifact.classifier, artifact.extension)}",
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
    previous = read_snapshot_metadata(repository, pom)
    build_number = previous.build_number + 1
    timestamp = snapshot_timestamp(now)
    version = snapshot_version(pom.version, timestamp, build_number)
    return Plan(
        pom=pom,
        version=version,
        uploads=planned_uploads(pom, version, main, attached),
        snapshot=Snapshot(timestamp, build_number, version),
    )


def read_snapshot_metadata(repository: MavenRepository, pom: Pom) -> SnapshotMetadata:
    path = f"{version_dir(pom)}/{METADATA}"
    data = repository.read(path, f"reading {path}")
    if data is None:
        return SnapshotMetadata(pom.group_id, pom.artifact_id, pom.version)
    return parse_snapshot_metadata(data, repository.url(path), pom.group_id, pom.artifact_id, pom.version)


def read_artifact_metadata(repository: MavenRepository, pom: Pom) -> ArtifactMetadata:
    path = f"{artifact_dir(pom.group_id, pom.artifact_id)}/{METADATA}"
    data = repository.read(path, f"reading {path}")
    if data is None:
        return ArtifactMetadata(pom.group_id, pom.artifact_id)
    return parse_artifact_metadata(data, repository.url(path), pom.group_id, pom.artifact_id)


def show_plan(plan: Plan, config: Config, log: logging.Logger) -> None:
    log.info("Repository: %s", config.registry.url)
    show_files(plan, config, log)


def show_files(plan: Plan, config: Config, log: logging.Logger) -> None:
    for upload in plan.uploads:
        log.info("  upload %s (%s, %s bytes, from %s)", upload.path, upload.label, upload.size, _from(upload, config))
    for upload in plan.skipped:
        log.info(
            "  skip   %s (%s: already published with the same SHA-1)",
            upload.path,
            upload.label,
        )


def _from(upload: Upload, config: Config) -> str:
    return shown(upload.source, config) if upload.source else "generated"


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
        merged = merge_snapshot(
            read_snapshot_metadata(repository, pom), snapshot.timestamp, snapshot.build_number, files, stamp
        )
        _put_metadata(repository, f"{version_dir(pom)}/{METADATA}", render_snapshot_metadata(merged))
        written = True
    read_started = time.monotonic()
    current = read_artifact_metadata(repository, pom)
    path = f"{artifact_dir(pom.group_id, pom.artifact_id)}/{METADATA}"
    if pom.version in current.versions and not plan.uploads:
        content = repository.read(path, f"reading {path}") or b""
        if repository.checksums_match(path, checksums_of_bytes(content)):
            log.info("%s already lists %s; metadata left as it is.", path, pom.version)
            return written
        # An earlier run broke off between the metadata and its checksum files: complete them.
        _put_metadata(repository, path, content)
        return True
    write_artifact_metadata(repository, pom, current, stamp, log, read_started)
    return True


def settle_time(read_started: float) -> float:
    """How long to wait before re-reading: twice our own read-to-written time, bounded, jittered."""
    window = min(max(2 * (time.monotonic() - read_started), METADATA_SETTLE_MIN_S), METADATA_SETTLE_MAX_S)
    return window * (1 + random.random())  # noqa: S311 - jitter, not a secret


def write_artifact_metadata(
    repository: MavenRepository,
    pom: Pom,
    current: ArtifactMetadata,
    stamp: str,
    log: logging.Logger,
    read_started: float,
) -> None:
    """Merge, write, and check that the write held: a deploy of another version writing at the same
    moment may have overwritten ours (a lost update), or crossed our checksum files with its own.
    After a short, jittered pause the file is re-read; until it lists this version with matching
    checksums, it is merged and written again (a bounded number of times)."""
    path = f"{artifact_dir(pom.group_id, pom.artifact_id)}/{METADATA}"
    for round_number in range(1, METADATA_ROUNDS + 1):
        _put_metadata(repository, path, render_artifact_metadata(merge_version(current, pom.version, stamp)))
        time.sleep(settle_time(read_started))
        read_started = time.monotonic()
        data = repository.read(path, f"reading {path}")
        if data is not None:
            current = parse_artifact_metadata(data, repository.url(path), pom.group_id, pom.artifact_id)
            if pom.version in current.versions and repository.checksums_match(path, checksums_of_bytes(data)):
                return
        log.info("%s was changed by another deploy at the same time; merging again (%d).", METADATA, round_number)
    raise RegistryError(
        f"{repository.url(path)} kept changing under other deploys and does not list {pom.version}: the files are "
        "uploaded; re-run the step to add the version to the metadata."
    )


def _classifier_extension(upload: Upload, pom: Pom, version: str) -> tuple[str, str]:
    """Back from a planned file name to (classifier, extension) for `<snapshotVersion>`."""
    name = upload.path.rsplit("/", 1)[-1].removeprefix(f"{pom.artifact_id}-{version}")
    if name.startswith("-"):
        classifier, _, extension = name[1:].partition(".")
        return classifier, extension
    return "", name[1:]


def _put_metadata(repository: MavenRepository, path: str, content: bytes) -> None:
    repository.put(Upload(path=path, label="metadata", checksums=checksums_of_bytes(content), content=content))


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


def dry_run_result(plan: Plan, config: Config) -> Publication:
    coordinates = f"{plan.pom.group_id}:{plan.pom.artifact_id}:{plan.version}"
    details = {**plan_details(plan, config), "planned": [upload.path for upload in plan.uploads]}
    if not plan.uploads:
        summary = f"dry run: {coordinates} is already published at {config.registry.url} with the same content"
    else:
        summary = (
            f"dry run: would publish {coordinates} ({len(plan.uploads)} files with checksums, then metadata) "
            f"to {config.registry.url}; nothing was uploaded"
        )
    return Publication(summary=summary, details=details)


def result(plan: Plan, config: Config, repository: MavenRepository, metadata_written: bool) -> Publication:
    coordinates = f"{plan.pom.group_id}:{plan.pom.artifact_id}:{plan.version}"
    details = {**plan_details(plan, config), "uploaded": list(repository.uploaded)}
    if not plan.uploads:
        note = "; metadata updated" if metadata_written else ""
        summary = f"{coordinates} is already published at {config.registry.url} with the same content{note}"
    else:
        skipped = f", {len(plan.skipped)} already there" if plan.skipped else ""
        summary = f"published {coordinates} ({len(plan.uploads)} files{skipped}) to {config.registry.url}"
    return Publication(summary=summary, variables=plan_variables(plan), details=details)

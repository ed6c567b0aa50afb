"""Deploying a staging folder (MAVEN_STAGING_DIR) as staged: every file of every
`<group>/<artifactId>/<version>/` keeps its name, goes up with its checksum files, and the
repository's `maven-metadata.xml` files are merged with the staged versions (the folder's own are
never copied: they know nothing of what the repository already has).

Everything is read and decided before the first write: the folder (staged_tree.py), the
checksums the build wrote, and for every file whether the repository already has it (same
checksum: skipped, so a re-run uploads nothing twice; different: the run stops before any upload).
SNAPSHOT builds keep their staged timestamped names (each CI run stages build 1 again: its
timestamp makes it unique); files a build staged as `…-SNAPSHOT…` get a new timestamped build, as
the pipe's own SNAPSHOT deploys do. POMs go up first, then every other file, the metadata last, so
that no consumer sees metadata naming a file that is not there yet.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipe.config import Config
from pipe.errors import InputError
from pipe.masking import SecretMasker
from pipe.maven.deploy import (
    conflict_error,
    read_artifact_metadata,
    release_states,
    show_uploads,
    shown,
    write_artifact_metadata,
)
from pipe.maven.layout import Checksums, snapshot_timestamp, snapshot_version
from pipe.maven.metadata import (
    ArtifactMetadata,
    SnapshotFile,
    merge_snapshot,
    render_snapshot_metadata,
)
from pipe.maven.paths import METADATA, repository_path
from pipe.maven.repository import MavenRepository, Upload, in_parallel
from pipe.maven.staged_tree import (
    StagedFile,
    StagedVersion,
    listed,
    read_staging_folder,
    verify_checksums,
)
from pipe.maven.versions import MavenVersion
from pipe.outputs import Publication
from pipe.versioning import strip_v

# Artifacts whose metadata is written at the same time (each a few small requests and a pause).
METADATA_WORKERS = 16


@dataclass
class VersionPlan:
    staged: StagedVersion
    uploads: list[Upload] = field(default_factory=list)
    skipped: list[Upload] = field(default_factory=list)
    # SNAPSHOTs: the build the version-level metadata names, and its files' (classifier, extension, version).
    build: tuple[str, int] | None = None
    entries: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def coordinates(self) -> str:
        """group:artifact:version, the timestamped build for SNAPSHOTs."""
        version = self.staged.version
        if self.build is not None:
            version = snapshot_version(version, *self.build)
        return f"{self.staged.group_id}:{self.staged.artifact_id}:{version}"


def deploy_staged(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    root = config.resolve(str(config.maven.staging_dir))
    shown_root = shown(root, config)
    versions = read_staging_folder(root, shown_root)
    found = ", ".join(version.gav for version in versions)
    log.info("Staging folder %s: %s: %s.", shown_root, counted(len(versions)), found)
    check_versions(config, versions)
    checksums = verify_checksums(versions, shown_root)
    repository = MavenRepository.from_config(config, log, masker)
    now = datetime.now(UTC)
    plans = plan_versions(repository, versions, checksums, now)
    show_plans(plans, config, log)
    if config.dry_run:
        return staged_result(plans, config, None)
    upload_in_order(repository, plans)
    stamp = now.strftime("%Y%m%d%H%M%S")
    in_parallel(lambda group: write_metadata(repository, group, stamp, log), by_artifact(plans), METADATA_WORKERS)
    return staged_result(plans, config, repository)


def check_versions(config: Config, versions: list[StagedVersion]) -> None:
    """VERSION, or on a tag pipeline for a semantic version the tag, must be every staged version:
    the folder's files are built already, so a version that differs is a build that was not told
    (or a forgotten version bump), never something the pipe could rename."""
    if config.maven.version is not None:
        wanted, said, other_fix = config.maven.version, f"VERSION is {config.maven.version}", "set VERSION to it"
    elif config.context.tag_version is not None:
        wanted = strip_v(config.context.tag or "")
        said, other_fix = f"this pipeline runs for tag {config.context.tag}", "tag the commit with the staged version"
    else:
        return
    other = [version.gav for version in versions if version.version != wanted]
    if other:
        raise InputError(
            f"{said} but the staging folder holds {listed(other)}: set the build's version to {wanted} before it "
            f"stages (e.g. version = '{wanted}' in Gradle, mvn versions:set -DnewVersion={wanted} or "
            f"-Drevision={wanted}), or {other_fix}. Nothing was uploaded."
        )


# --- planning -------------------------------------------------------------------------------------


def plan_versions(
    repository: MavenRepository, versions: list[StagedVersion], checksums: dict[Path, Checksums], now: datetime
) -> list[VersionPlan]:
    """One plan per staged version. Files keeping their staged names are compared with the
    repository in one batch, and every file that differs, of every version, is reported together."""
    plans = in_parallel(lambda version: plan_version(repository, version, checksums, now), versions)
    # Files given a new build here cannot be in the repository yet: only staged names are compared.
    candidates = [upload for plan in plans if plan.build is None or plan.staged.builds for upload in plan.uploads]
    states = dict(zip((upload.path for upload in candidates), release_states(repository, candidates), strict=True))
    conflicts = []
    for plan in plans:
        differing = [upload.path.rsplit("/", 1)[-1] for upload in plan.uploads if states.get(upload.path) == "other"]
        if differing:
            conflicts.append((plan.coordinates, differing))
        plan.skipped = [upload for upload in plan.uploads if states.get(upload.path) == "same"]
        plan.uploads = [upload for upload in plan.uploads if states.get(upload.path) != "same"]
    if conflicts:
        raise conflict_error(conflicts)
    return plans


def plan_version(
    repository: MavenRepository, version: StagedVersion, checksums: dict[Path, Checksums], now: datetime
) -> VersionPlan:
    """The files of one version under their repository names: staged names, except SNAPSHOT files
    staged as `…-SNAPSHOT…`, which become the next build (the repository's buildNumber + 1)."""
    plan = VersionPlan(version)
    build = version.builds[-1] if version.builds else None
    if version.is_snapshot and build is None:
        previous = repository.read_snapshot_metadata(version.group_id, version.artifact_id, version.version)
        build = (snapshot_timestamp(now), previous.build_number + 1)
    plan.build = build if version.is_snapshot else None
    for file in deploy_order(version.files):
        name = file.name
        if plan.build is not None and file.build is None:
            # `<artifactId>-1.0-SNAPSHOT<rest>` → `<artifactId>-1.0-<timestamp>-<build><rest>`
            rest = name[len(version.artifact_id) + 1 + len(version.version) :]
            name = f"{version.artifact_id}-{snapshot_version(version.version, *plan.build)}{rest}"
        path = repository_path(version.group_id, version.artifact_id, version.version, name)
        plan.uploads.append(Upload(path, file.describe(), checksums[file.source], source=file.source))
        if plan.build is not None and file.build in (None, plan.build):
            plan.entries.append((file.classifier, file.extension, snapshot_version(version.version, *plan.build)))
    return plan


def deploy_order(files: list[StagedFile]) -> list[StagedFile]:
    """POM first, then files without a classifier, then the others: Maven's order."""
    return sorted(files, key=lambda file: (not file.is_pom, file.classifier != "", file.classifier, file.name))


def show_plans(plans: list[VersionPlan], config: Config, log: logging.Logger) -> None:
    log.info("Repository: %s", config.registry.url)
    for plan in plans:
        log.info("Version %s:", plan.coordinates)
        show_uploads(plan.uploads, plan.skipped, config, log)


# --- writing --------------------------------------------------------------------------------------


def upload_in_order(repository: MavenRepository, plans: list[VersionPlan]) -> None:
    """The first file alone (it settles which checksum files the repository takes), then every
    POM, then every other file; each file with its checksum files."""
    uploads = [upload for plan in plans for upload in plan.uploads]
    if not uploads:
        return
    poms = [upload for upload in uploads if upload.label == "POM"]
    first = (poms or uploads)[0]
    repository.put(first)
    repository.put_all([upload for upload in poms if upload is not first])
    repository.put_all([upload for upload in uploads if upload.label != "POM" and upload is not first])


def by_artifact(plans: list[VersionPlan]) -> list[list[VersionPlan]]:
    """The plans grouped by group:artifact (one artifact-level metadata file each)."""
    groups: dict[tuple[str, str], list[VersionPlan]] = {}
    for plan in plans:
        groups.setdefault((plan.staged.group_id, plan.staged.artifact_id), []).append(plan)
    return list(groups.values())


def write_metadata(repository: MavenRepository, plans: list[VersionPlan], stamp: str, log: logging.Logger) -> None:
    """One artifact's metadata: each SNAPSHOT version's own first, then the artifact's list of versions."""
    for plan in plans:
        if plan.build is not None:
            write_snapshot_metadata(repository, plan, plan.build, stamp, log)
    write_versions(repository, plans, stamp, log)


def write_snapshot_metadata(
    repository: MavenRepository, plan: VersionPlan, build: tuple[str, int], stamp: str, log: logging.Logger
) -> None:
    """The version-level metadata naming the staged `build`. A re-run that uploaded nothing leaves
    it as it is when it already names these files (a newer build deployed since stays the newest)."""
    staged = plan.staged
    path = repository_path(staged.group_id, staged.artifact_id, staged.version, METADATA)
    current = repository.read_snapshot_metadata(staged.group_id, staged.artifact_id, staged.version)
    values = {(c, e): value for c, e, value in plan.entries}
    named = {(file.classifier, file.extension): file.value for file in current.files}
    if not plan.uploads and all(named.get(key) == value for key, value in values.items()):
        log.info("%s already names %s; left as it is.", path, plan.coordinates)
        return
    files = [SnapshotFile(classifier, extension, value, stamp) for classifier, extension, value in plan.entries]
    merged = merge_snapshot(current, build[0], build[1], files, stamp)
    repository.put_metadata(path, render_snapshot_metadata(merged))


def write_versions(repository: MavenRepository, plans: list[VersionPlan], stamp: str, log: logging.Logger) -> None:
    """The artifact's list of versions, with every staged one merged in; left as it is when a re-run
    that uploaded nothing finds it listing them with matching checksum files."""
    staged = plans[0].staged
    versions = sorted((plan.staged.version for plan in plans), key=MavenVersion)
    started = time.monotonic()
    empty = ArtifactMetadata(staged.group_id, staged.artifact_id)
    current, _, held = read_artifact_metadata(repository, staged.group_id, staged.artifact_id, versions, empty)
    if held and not any(plan.uploads for plan in plans):
        path = repository_path(staged.group_id, staged.artifact_id, name=METADATA)
        log.info("%s already lists %s; left as it is.", path, ", ".join(versions))
        return
    write_artifact_metadata(repository, staged.group_id, staged.artifact_id, versions, current, stamp, log, started)


# --- the result -----------------------------------------------------------------------------------


def staged_result(plans: list[VersionPlan], config: Config, repository: MavenRepository | None) -> Publication:
    """The ✔ sentence, outputs and details; `repository` is None for a dry run (nothing written)."""
    names = ", ".join(plan.coordinates for plan in plans)
    files = sum(len(plan.uploads) for plan in plans)
    present = sum(len(plan.skipped) for plan in plans)
    url = config.registry.url
    count = counted(len(plans))
    if not files:
        summary = (
            f"{count} ({names}) {'is' if len(plans) == 1 else 'are'} already published at {url} with the same content"
        )
    elif repository is None:
        planned = f"{counted(files, 'file')} with checksums, then metadata"
        summary = f"would publish {count} ({names}; {planned}) to {url}; nothing was uploaded"
    else:
        already = f", {present} already there" if present else ""
        summary = f"published {count} ({names}; {counted(files, 'file')}{already}) to {url}"
    details: dict[str, object] = {
        "registry": url,
        "staging_dir": shown(config.resolve(str(config.maven.staging_dir)), config),
        "versions": [plan_details(plan) for plan in plans],
    }
    if repository is None:
        return Publication(summary=f"dry run: {summary}", details=details)
    details["uploaded"] = list(repository.uploaded)
    first = plans[0]
    variables = {
        "PUBLISHED_GROUP_ID": first.staged.group_id,
        "PUBLISHED_ARTIFACT_ID": first.staged.artifact_id,
        "PUBLISHED_VERSION": first.coordinates.rsplit(":", 1)[-1],
        "PUBLISHED_MODULES": " ".join(plan.coordinates for plan in plans),
    }
    return Publication(summary=summary, variables=variables, details=details)


def counted(number: int, noun: str = "version") -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def plan_details(plan: VersionPlan) -> dict[str, object]:
    return {
        "group_id": plan.staged.group_id,
        "artifact_id": plan.staged.artifact_id,
        "version": plan.coordinates.rsplit(":", 1)[-1],
        "base_version": plan.staged.version,
        "planned": [upload.path for upload in plan.uploads],
        "skipped": [upload.path for upload in plan.skipped],
    }

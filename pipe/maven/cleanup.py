"""ACTION=cleanup for PACKAGE_TYPE=maven: delete old versions (and old SNAPSHOT builds) of the
artifact MAVEN_POM names, in an order no consumer can trip over:

1. the artifact-level `maven-metadata.xml` is written without the versions (and its checksum
   files after it; `latest`/`release` never name a deleted version), and re-read to see that it
   held; only then are the versions' folders deleted;
2. for each SNAPSHOT version that stays, the version-level `maven-metadata.xml` loses the entries
   of older builds first, then those builds' files go.

A run stopped anywhere leaves metadata that names only whole versions. The next run finds what
is left through the repository's folder listing: a version folder that still holds its POM but
is no longer in the metadata, or files of an old build, are deleted when the rules still say so.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from pipe import cleanup as core
from pipe.config import CleanupRules, Config
from pipe.errors import RegistryError
from pipe.masking import SecretMasker
from pipe.maven.folders import Listing, deletion_order
from pipe.maven.layout import checksums_of_bytes
from pipe.maven.metadata import (
    ArtifactMetadata,
    SnapshotMetadata,
    parse_artifact_metadata,
    parse_snapshot_metadata,
    render_artifact_metadata,
    render_snapshot_metadata,
    without_builds,
    without_versions,
)
from pipe.maven.model import project_artifact
from pipe.maven.paths import METADATA, name_problem, printable, repository_path, version_problem
from pipe.maven.repository import METADATA_ROUNDS, MavenRepository, settle_time
from pipe.maven.versions import MavenVersion, highest, is_snapshot
from pipe.outputs import Publication

KIND_LABEL = "Maven artifact"
LAST_VERSION = "kept: the artifact's last version"
LEFTOVER = " (a folder an interrupted cleanup left behind: not in maven-metadata.xml)"
# `<artifactId>-<base>-<yyyyMMdd.HHmmss>-<buildNumber>` followed by `-classifier` or `.ext`.
_BUILD = r"(?P<timestamp>\d{8}\.\d{6})-(?P<number>\d+)(?=[-.])"


@dataclass(frozen=True)
class Coordinates:
    """The artifact MAVEN_POM names, read as publishing reads it (`model.project_artifact`)."""

    group_id: str
    artifact_id: str


@dataclass(frozen=True)
class Version:
    name: str
    listed: bool  # in maven-metadata.xml; False for a folder an interrupted cleanup left behind
    published: datetime | None = None


@dataclass
class Build:
    name: str  # 1.0-20240102.030405-7
    number: int
    published: datetime | None
    files: list[str] = field(default_factory=list)


@dataclass
class SnapshotPlan:
    version: str
    builds: dict[str, Build]
    decisions: list[core.Decision]


def cleanup(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    artifact = Coordinates(*project_artifact(config, config.resolve(config.maven.pom)))
    coordinates = f"{artifact.group_id}:{artifact.artifact_id}"
    repository = MavenRepository.from_config(config, log, masker)
    log.info("Reading %s from %s.", coordinates, config.registry.url)
    now = datetime.now(UTC)
    folder = repository_path(artifact.group_id, artifact.artifact_id)
    metadata = checked_metadata(repository.read_artifact_metadata(artifact.group_id, artifact.artifact_id), folder, log)
    listing = repository.listing(folder)
    versions = list_versions(repository, artifact, metadata, listing, config.cleanup)
    if not versions:
        log.info("%s is not in this repository: nothing to clean up (check REGISTRY_URL and MAVEN_POM).", coordinates)
    decisions = plan_versions(versions, metadata, config.cleanup, now)
    core.print_plan(log, KIND_LABEL, decisions, config.dry_run, package=coordinates)
    doomed = [d.name for d in reversed(decisions) if d.delete]  # oldest first
    snapshots = plan_snapshots(repository, artifact, [d.name for d in decisions if not d.delete], config.cleanup, now)
    for snapshot in snapshots:
        core.print_plan(log, "SNAPSHOT builds of", snapshot.decisions, config.dry_run, package=snapshot.version)
    everything = decisions + [d for s in snapshots for d in s.decisions]
    deleted: list[str] = []
    if not config.dry_run and any(d.delete for d in everything):
        repository.check_deletes(folder)
        deleted += remove_versions(repository, artifact, doomed, log)
        for snapshot in snapshots:
            deleted += prune_builds(repository, artifact, snapshot, log)
    return core.cleanup_publication(KIND_LABEL, coordinates, deleted, everything, config.dry_run)


def checked_metadata(metadata: ArtifactMetadata, folder: str, log: logging.Logger) -> ArtifactMetadata:
    """The metadata without the versions (and `<latest>`/`<release>`) that are no valid Maven
    version or could leave the artifact's folder in a URL: each is reported and skipped, so that no
    request is ever built from it (it stays in the file: the pipe deletes only what it can name)."""
    where = f"{folder}/{METADATA}"

    def named(element: str, value: str | None) -> str | None:
        return value if value and valid_versions([value], f"{where} names as <{element}>", log) else None

    return replace(
        metadata,
        versions=valid_versions(dict.fromkeys(metadata.versions), f"{where} lists the version", log),
        latest=named("latest", metadata.latest),
        release=named("release", metadata.release),
    )


def valid_versions(names: Iterable[str], where: str, log: logging.Logger) -> list[str]:
    """The names that are valid versions; a ⚠ line for each other one, which is skipped."""
    valid = []
    for name in names:
        problem = version_problem(name)
        if problem:
            log.warning(
                "%s '%s', which is not a valid Maven version (%s): skipped, nothing is read or deleted by that "
                "name; repair the repository by hand if it is a mistake.",
                where,
                printable(name),
                problem,
            )
        else:
            valid.append(name)
    return valid


def list_versions(
    repository: MavenRepository,
    artifact: Coordinates,
    metadata: ArtifactMetadata,
    listing: Listing | None,
    rules: CleanupRules,
) -> list[Version]:
    """The versions in the metadata, plus version folders it no longer lists that still hold a POM
    (left by an interrupted cleanup). Ages are read only when OLDER_THAN_DAYS needs them."""
    names = [(v, True) for v in dict.fromkeys(metadata.versions)]
    folder = repository_path(artifact.group_id, artifact.artifact_id)
    unlisted = [name for name in (listing.folders if listing else ()) if name not in metadata.versions]
    for name in valid_versions(unlisted, f"{folder}/ holds the folder", repository.log):
        if holds_pom(repository, artifact, name):
            names.append((name, False))
    aged = rules.older_than_days is not None
    return [Version(name, listed, published_at(repository, artifact, name) if aged else None) for name, listed in names]


def holds_pom(repository: MavenRepository, artifact: Coordinates, version: str) -> bool:
    listing = repository.listing(repository_path(artifact.group_id, artifact.artifact_id, version))
    stem = f"{artifact.artifact_id}-{version.removesuffix('-SNAPSHOT')}"
    return listing is not None and any(f.startswith(stem) and f.endswith(".pom") for f in listing.files)


def published_at(repository: MavenRepository, artifact: Coordinates, version: str) -> datetime | None:
    """A SNAPSHOT's `<lastUpdated>` from its own metadata, else the Last-Modified of the POM."""
    pom_name = f"{artifact.artifact_id}-{version}.pom"
    if is_snapshot(version):
        snapshot = repository.read_snapshot_metadata(artifact.group_id, artifact.artifact_id, version)
        stamp = metadata_time(snapshot.last_updated)
        if stamp is not None:
            return stamp
        value = next((f.value for f in snapshot.files if f.extension == "pom" and not f.classifier), None)
        if value is None:
            return None
        pom_name = f"{artifact.artifact_id}-{value}.pom"
        if name_problem(pom_name):
            return None  # a timestamped value no URL can be built from: no age to read
    path = repository_path(artifact.group_id, artifact.artifact_id, version, pom_name)
    return http_time(
        repository.last_modified(path, f"reading the age of {artifact.group_id}:{artifact.artifact_id}:{version}")
    )


def metadata_time(stamp: str | None, pattern: str = "%Y%m%d%H%M%S") -> datetime | None:
    """`yyyyMMddHHmmss` (`<lastUpdated>`) or, with another pattern, a build's timestamp, as UTC."""
    try:
        return datetime.strptime(stamp or "", pattern).replace(tzinfo=UTC)
    except ValueError:
        return None


def http_time(value: str | None) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(UTC) if value else None
    except (TypeError, ValueError):
        return None


def release_key(version: str) -> MavenVersion | None:
    """Maven's order for releases; None for SNAPSHOTs and prereleases (alpha, beta, milestone, rc)."""
    key = MavenVersion(version)
    return key if key.is_release and not is_snapshot(version) else None


def plan_versions(
    versions: list[Version], metadata: ArtifactMetadata, rules: CleanupRules, now: datetime
) -> list[core.Decision]:
    """Releases in Maven's order (see `release_key`). Never deleted: the newest
    release, what `<release>` and `<latest>` name, the newest release the metadata lists (a
    newer unlisted folder may be a deploy still under way), and the artifact's last version."""
    candidates = core.plan_order(core.Candidate(v.name, v.published, release_key(v.name)) for v in versions)
    protected = {}
    for element, name in (("release", metadata.release), ("latest", metadata.latest)):
        if name:
            protected.setdefault(name, f"protected: <{element}> in maven-metadata.xml")
    newest_listed = highest([v.name for v in versions if v.listed and release_key(v.name)])
    if newest_listed:
        protected.setdefault(newest_listed, "protected: newest release in maven-metadata.xml")
    decisions = core.decide(candidates, rules, protected, now)
    if decisions and all(d.delete for d in decisions):
        last = highest([d.name for d in decisions])
        decisions = [core.Decision(d.name, False, LAST_VERSION) if d.name == last else d for d in decisions]
    leftovers = {v.name for v in versions if not v.listed}
    return [replace(d, reason=d.reason + LEFTOVER) if d.name in leftovers else d for d in decisions]


def plan_snapshots(
    repository: MavenRepository, artifact: Coordinates, kept: list[str], rules: CleanupRules, now: datetime
) -> list[SnapshotPlan]:
    """For each SNAPSHOT version that stays: which timestamped builds go. Only KEEP_RELEASES (the
    newest N builds stay) and OLDER_THAN_DAYS apply to builds; the newest build and the one
    `<snapshot>` names always stay."""
    if rules.keep_releases is None and rules.older_than_days is None:
        return []
    build_rules = CleanupRules(keep_releases=rules.keep_releases, older_than_days=rules.older_than_days)
    plans = []
    for version in (v for v in kept if is_snapshot(v)):
        metadata = repository.read_snapshot_metadata(artifact.group_id, artifact.artifact_id, version)
        builds = find_builds(repository, artifact, version, metadata)
        if len(builds) < 2:
            continue
        candidates = core.plan_order(core.Candidate(b.name, b.published, (b.number, b.name)) for b in builds.values())
        protected = {}
        if metadata.timestamp:
            current = f"{version.removesuffix('-SNAPSHOT')}-{metadata.timestamp}-{metadata.build_number}"
            protected[current] = "protected: the <snapshot> build in maven-metadata.xml"
        decisions = [
            replace(d, reason=d.reason.replace("release", "build"))
            for d in core.decide(candidates, build_rules, protected, now)
        ]
        plans.append(SnapshotPlan(version, builds, decisions))
    return plans


def find_builds(
    repository: MavenRepository, artifact: Coordinates, version: str, metadata: SnapshotMetadata
) -> dict[str, Build]:
    """The timestamped builds whose files the version's folder holds (older builds appear in no
    metadata: only the listing shows them)."""
    folder = repository_path(artifact.group_id, artifact.artifact_id, version)
    base = version.removesuffix("-SNAPSHOT")
    listing = repository.listing(folder)
    names = list(listing.files) if listing else []
    if listing is None:
        repository.log.info("%s/ has no folder listing: its older SNAPSHOT builds cannot be found.", folder)
        names = [f"{artifact.artifact_id}-{f.value}.{f.extension}" for f in metadata.files]
    pattern = re.compile(re.escape(f"{artifact.artifact_id}-{base}-") + _BUILD)
    builds: dict[str, Build] = {}
    for name in names:
        match = pattern.match(name)
        if match is None:
            continue
        problem = name_problem(name)
        if problem:
            repository.log.warning(
                "%s/ holds '%s', which cannot be deleted by URL (%s): skipped.", folder, printable(name), problem
            )
            continue
        label = f"{base}-{match['timestamp']}-{match['number']}"
        published = metadata_time(match["timestamp"], "%Y%m%d.%H%M%S")
        builds.setdefault(label, Build(label, int(match["number"]), published)).files.append(
            repository_path(artifact.group_id, artifact.artifact_id, version, name)
        )
    return builds


def rewrite_metadata(repository: MavenRepository, path: str, clean, rewrite, log: logging.Logger) -> None:
    """Write `rewrite(current)` until the file, re-read after a short pause, is `clean` and its
    checksum files match it: a deploy writing at the same moment may have put a removed entry
    back, and an earlier run may have stopped between the file and its checksums."""
    for round_number in range(METADATA_ROUNDS + 1):
        data = repository.read(path, f"reading {path}")
        if data is None:
            return  # no metadata names anything
        if clean(data) and repository.checksums_match(path, checksums_of_bytes(data)):
            return
        if round_number == METADATA_ROUNDS:
            break
        if round_number:
            log.info("%s was changed at the same time by another run; writing it again (%d).", path, round_number)
        started = time.monotonic()
        repository.put_metadata(path, rewrite(data))
        time.sleep(settle_time(started))
    raise RegistryError(
        f"{repository.url(path)} kept changing under other runs: nothing was deleted from its versions' files; "
        "re-run the step."
    )


def remove_versions(
    repository: MavenRepository, artifact: Coordinates, doomed: list[str], log: logging.Logger
) -> list[str]:
    """The metadata without `doomed` first (one write for all of them), then their folders."""
    path, removed = repository_path(artifact.group_id, artifact.artifact_id, name=METADATA), set(doomed)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")

    def parsed(data: bytes) -> ArtifactMetadata:
        return parse_artifact_metadata(data, repository.url(path), artifact.group_id, artifact.artifact_id)

    if doomed:
        rewrite_metadata(
            repository,
            path,
            lambda data: not removed & set(parsed(data).versions),
            lambda data: render_artifact_metadata(without_versions(parsed(data), removed, stamp)),
            log,
        )
    for version in doomed:
        repository.delete_folder(repository_path(artifact.group_id, artifact.artifact_id, version))
        log.info("Deleted %s:%s:%s.", artifact.group_id, artifact.artifact_id, version)
    return list(doomed)


def prune_builds(
    repository: MavenRepository, artifact: Coordinates, snapshot: SnapshotPlan, log: logging.Logger
) -> list[str]:
    """The version-level metadata without the doomed builds' entries first, then their files."""
    doomed = [d.name for d in reversed(snapshot.decisions) if d.delete]
    if not doomed:
        return []
    path = repository_path(artifact.group_id, artifact.artifact_id, snapshot.version, METADATA)
    values = set(doomed)

    def parsed(data: bytes) -> SnapshotMetadata:
        return parse_snapshot_metadata(
            data, repository.url(path), artifact.group_id, artifact.artifact_id, snapshot.version
        )

    rewrite_metadata(
        repository,
        path,
        lambda data: not any(f.value in values for f in parsed(data).files),
        lambda data: render_snapshot_metadata(without_builds(parsed(data), values)),
        log,
    )
    for name in doomed:
        for file in deletion_order(snapshot.builds[name].files):
            repository.delete(file)
        log.info("Deleted SNAPSHOT build %s of %s:%s.", name, artifact.group_id, artifact.artifact_id)
    return doomed

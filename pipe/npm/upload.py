"""One package version against the registry: what the registry already has of it, the dist-tags
of the PUT, and the PUT itself until the registry's copy settles the outcome. Shared by the
single-package entry (`npm/publish.py`) and workspaces (`npm/workspaces.py`)."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pipe.config import Config
from pipe.errors import ConflictError, RegistryError
from pipe.http import retry
from pipe.npm import tarball
from pipe.npm.manifest import Dist, publish_document, tarball_url
from pipe.npm.package import Packed
from pipe.npm.registry import Answer, NpmRegistry, Packument, PublishBody, UploadOutcome
from pipe.outputs import Publication
from pipe.progress import format_size
from pipe.versioning import SemVer


@dataclass(frozen=True)
class Plan:
    name: str
    version: str
    dist_tag: str
    # The dist-tags sent with the PUT; `latest` may be held at a higher version already there.
    dist_tags: dict[str, str]
    tag_applied: bool


def plan_dist_tags(packument: Packument | None, tag: str, version: SemVer, log: logging.Logger) -> tuple[dict, bool]:
    """The dist-tags for the PUT. `latest` never moves down: when a higher version holds it, the
    PUT names that version for `latest` (a no-op) and the new version gets no tag."""
    if tag == "latest" and packument is not None:
        current = packument.dist_tags.get("latest")
        current_version = SemVer.parse(current) if current else None
        if current_version is not None and current_version > version:
            log.warning(
                "latest stays on %s, which is higher than %s; set NPM_DIST_TAG to give this version a tag of its own.",
                current,
                version,
            )
            return {"latest": current}, False
    return {tag: str(version)}, True


def plan_package(
    registry: NpmRegistry, name: str, version: SemVer, dist_tag: str, log: logging.Logger
) -> tuple[Packument | None, Plan]:
    """Read what the registry has of `name` and decide the dist-tags of the PUT."""
    log.info("Checking %s at %s.", name, registry.base_url)
    packument = registry.read_packument(name)
    dist_tags, applied = plan_dist_tags(packument, dist_tag, version, log)
    return packument, Plan(name, str(version), dist_tag, dist_tags, applied)


def tag_text(plan: Plan) -> str:
    return f"dist-tag {plan.dist_tag}" if plan.tag_applied else "no dist-tag (latest stays)"


def same_contents(registry: NpmRegistry, existing: dict, ours: Path, dist: Dist, plan: Plan, work: Path) -> bool:
    """Is the published version the same package? Identical bytes settle it at once; otherwise the
    file contents decide, because another packer's gzip differs for the same files."""
    published_dist = existing.get("dist") if isinstance(existing.get("dist"), dict) else {}
    if published_dist.get("integrity") == dist.integrity:
        return True
    url = published_dist.get("tarball") or tarball_url(registry.base_url, plan.name, plan.version)
    theirs = work / "published.tgz"
    registry.download(url, theirs)
    with ours.open("rb") as mine, theirs.open("rb") as published:
        return tarball.tarball_digests(mine) == tarball.tarball_digests(published)


def conflict_error(plan: Plan, config: Config) -> ConflictError:
    return ConflictError(
        f"{plan.name}@{plan.version} is already published at {config.registry.url} with different contents: "
        "versions are immutable; bump the version (package.json's version, or VERSION) and re-run."
    )


def is_published(
    registry: NpmRegistry, packument: Packument | None, plan: Plan, packed: Packed, work: Path, config: Config
) -> bool:
    """True when the version is there with identical contents, False when absent; a ConflictError
    when it is there with other contents."""
    existing = packument.versions.get(plan.version) if packument else None
    if existing is None:
        return False
    if not same_contents(registry, dict(existing), packed.tgz, packed.dist, plan, work):
        raise conflict_error(plan, config)
    return True


def results(plan: Plan, dist: Dist) -> dict[str, str]:
    variables = {"PUBLISHED_NAME": plan.name, "PUBLISHED_VERSION": plan.version, "NPM_INTEGRITY": dist.integrity}
    if plan.tag_applied:
        variables["NPM_DIST_TAG"] = plan.dist_tag
    return variables


def details(plan: Plan, dist: Dist, config: Config, outcome: str, files: int) -> dict[str, object]:
    return {
        "name": plan.name,
        "version": plan.version,
        "dist_tag": plan.dist_tag if plan.tag_applied else None,
        "dist_tags_sent": plan.dist_tags,
        "integrity": dist.integrity,
        "shasum": dist.shasum,
        "size": dist.size,
        "files": files,
        "registry": config.registry.url,
        "outcome": outcome,
    }


def already_published(
    registry: NpmRegistry, packument: Packument, plan: Plan, dist: Dist, config: Config, log: logging.Logger
) -> Publication:
    """The version exists with identical contents: make sure the requested dist-tag points at it, and succeed."""
    where = f"{plan.name}@{plan.version} at {config.registry.url}"
    if plan.tag_applied and packument.dist_tags.get(plan.dist_tag) != plan.version:
        if config.dry_run:
            log.info("Would point the dist-tag %s at %s.", plan.dist_tag, plan.version)
        else:
            registry.set_dist_tag(plan.name, plan.dist_tag, plan.version)
            log.info("Pointed the dist-tag %s at %s.", plan.dist_tag, plan.version)
    summary = f"{where} is already published with identical contents: nothing to publish"
    if config.dry_run:
        return Publication(f"Dry run: {summary}.", {}, details(plan, dist, config, "already-published", 0))
    return Publication(summary + ".", results(plan, dist), details(plan, dist, config, "already-published", 0))


def upload(
    registry: NpmRegistry, plan: Plan, dist: Dist, manifest: dict, tgz: Path, log: logging.Logger
) -> UploadOutcome:
    """The PUT, streamed, and how the registry took it."""
    body = PublishBody(publish_document(manifest, plan.dist_tags), plan.name, plan.version, tgz, dist.size, log)
    started = time.monotonic()
    outcome = registry.put_package(plan.name, plan.version, body)
    if outcome.broke_off:
        log.warning("The upload broke off (%s); checking whether the registry got it.", outcome.broke_off)
        return outcome
    elapsed = max(time.monotonic() - started, 1e-6)
    log.debug("PUT answered %s after %.1f s", outcome.status, elapsed)
    if outcome.published:
        log.info("Uploaded %s in %.1f s (%s/s).", format_size(len(body)), elapsed, format_size(len(body) / elapsed))
    return outcome


def upload_until_settled(
    registry: NpmRegistry,
    plan: Plan,
    dist: Dist,
    manifest: dict,
    tgz: Path,
    config: Config,
    work: Path,
    log: logging.Logger,
) -> Publication | None:
    """The PUT until it is accepted (None) or the registry's copy settles the run (a Publication).
    Only a re-read showing the version absent after a transient failure makes a second PUT safe."""
    uploads = itertools.count(1)

    def attempt() -> Publication | None:
        if next(uploads) > 1:
            log.warning("The registry does not have %s@%s; uploading again.", plan.name, plan.version)
        outcome = upload(registry, plan, dist, manifest, tgz, log)
        if outcome.published:
            return None
        return settle_after_refusal(registry, outcome, plan, dist, config, tgz, work, log)

    return retry(attempt, registry.budget(), f"publishing {plan.name}@{plan.version}")


def settle_after_refusal(
    registry: NpmRegistry,
    outcome: UploadOutcome,
    plan: Plan,
    dist: Dist,
    config: Config,
    tgz: Path,
    work: Path,
    log: logging.Logger,
) -> Publication | None:
    """A refused or broken PUT: re-read the packument. The version there with our contents means
    another run (or this one, before the connection broke) published it — a success; with other
    contents, a conflict; absent after a transient failure (broken connection, 429, 5xx), the
    failure raised as transient, so that `retry` sends the PUT again; absent otherwise, the refusal
    stands."""
    # Every answer but PUBLISHED carries its error; the fallback only keeps the types honest.
    error = outcome.error or RegistryError(f"publishing {plan.name}@{plan.version} failed.")
    if outcome.answer is Answer.REFUSED:
        raise error
    packument = registry.read_packument(plan.name)
    existing = packument.versions.get(plan.version) if packument else None
    if existing is None:
        raise error
    if not same_contents(registry, dict(existing), tgz, dist, plan, work):
        raise conflict_error(plan, config)
    if outcome.broke_off:
        log.info("The registry has %s@%s with identical contents.", plan.name, plan.version)
        return None
    return already_published(registry, packument, plan, dist, config, log)

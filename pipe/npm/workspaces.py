"""Publisher for a workspace: every public package of a pnpm workspace (pnpm-workspace.yaml) or
of the root package.json's `workspaces` (or those NPM_WORKSPACES names), in dependency order, and
the root too when it is a public package itself (as `pnpm -r publish` does). Packages of a pnpm
workspace are packed as `pnpm pack` packs them, the others as `npm pack --workspace <name>` does.

Everything is validated before the first PUT: each package is packed and its packument read, and
one version already published with other contents stops the run with nothing published. Versions
already there with identical contents are skipped, so a re-run after a failure publishes the rest.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipe.config import Config
from pipe.errors import ConflictError, InputError, PipeError
from pipe.masking import SecretMasker
from pipe.npm import pnpm_pack
from pipe.npm.manifest import (
    check_tag_matches,
    choose_dist_tag,
    validate_name,
    version_manifest,
)
from pipe.npm.manifest import publish_version as choose_version
from pipe.npm.package import Packed, Source, pack_source
from pipe.npm.package_tree import FolderTree
from pipe.npm.pnpm_workspace import WorkspaceRoot, check_every_glob_matches
from pipe.npm.registry import NpmRegistry, Packument
from pipe.npm.upload import (
    Plan,
    already_published,
    conflict_error,
    details,
    is_published,
    plan_package,
    tag_text,
    upload_until_settled,
)
from pipe.npm.workspace_files import outer_ignore_texts
from pipe.npm.workspace_graph import (
    Member,
    dependency_order,
    describe,
    discover,
    private_runtime_dependencies,
    select,
)
from pipe.npm.workspace_ranges import Resolution, rewrite_package
from pipe.outputs import Publication
from pipe.versioning import SemVer


@dataclass(frozen=True)
class Release:
    """One package of the run, decided before anything is read from the registry."""

    member: Member
    source: Source  # its folder, with the publishable package.json (workspace: ranges rewritten)
    version: SemVer
    dist_tag: str


@dataclass(frozen=True)
class Staged:
    """A release packed and checked against the registry."""

    release: Release
    packed: Packed
    packument: Packument | None
    plan: Plan
    work: Path
    present: bool  # already published with identical contents
    conflict: bool = False  # already published with other contents

    @property
    def spec(self) -> str:
        return f"{self.plan.name}@{self.plan.version}"


def lockstep_versions(members: list[Member], config: Config) -> dict[str, str]:
    """The version each workspace package is (or would be) published with: VERSION for all of
    them when it is set (lockstep), else each package.json's own."""
    if config.npm.version:
        return {m.name: str(choose_version(m.package.data, config.npm.version, m.package.source)) for m in members}
    return {m.name: str(m.package.data.get("version") or "") for m in members}


def prepare(member: Member, resolution: Resolution, workspace: WorkspaceRoot, config: Config) -> Release:
    source = member.package.source
    validate_name(member.package.data.get("name"), source)
    version = choose_version(member.package.data, config.npm.version, source)
    check_tag_matches(config.context, version, from_variable=bool(config.npm.version))
    folder, package = member.folder, member.package
    if workspace.pnpm:
        folder, package = pnpm_pack.publish_folder(folder, package, member.relative)
        package = pnpm_pack.exportable_package(package, folder, resolution)
        outer, pnpm_root = (), workspace.folder
    else:
        package = rewrite_package(package, folder, resolution)
        outer = () if member.relative == "." else outer_ignore_texts(workspace.folder, folder)
        pnpm_root = None
    shown = member.relative
    release_source = Source(folder, shown, False, package, FolderTree(folder), outer, pnpm_root)
    return Release(member, release_source, version, choose_dist_tag(config.npm.dist_tag, package.data, version))


def refuse_private_needs(chosen: list[Member], members: list[Member]) -> None:
    """A published package whose consumers need a private sibling could never be installed."""
    needs = [(member.name, private_runtime_dependencies(member, members)) for member in chosen]
    needs = [(name, private) for name, private in needs if private]
    if needs:
        listed = "; ".join(f"{name} needs {', '.join(private)}" for name, private in needs)
        raise InputError(
            f'workspace packages depend at run time on packages marked "private": true, which are never published '
            f'({listed}), so their installs would fail: remove "private" from those packages, or move the '
            "dependency to devDependencies."
        )


def workspace_members(root_source: Source, workspace: WorkspaceRoot, log: logging.Logger) -> list[Member]:
    """The workspace's packages; the root first when it is a package to publish itself."""
    check_every_glob_matches(workspace)
    members = discover(workspace.folder, list(workspace.patterns), workspace.source)
    root = root_source.package
    # As `pnpm -r publish`: a root with a name and a version and not private is a package too.
    if root.data.get("private") is not True and root.data.get("name") and root.data.get("version"):
        members = [Member(workspace.folder, ".", root), *members]
        log.info("The workspace root %s is a public package: it is published too.", root_source.shown)
    log.info("Workspace packages (%d): %s.", len(members), describe(members))
    return members


def publishable(members: list[Member], workspace: WorkspaceRoot, log: logging.Logger) -> list[Member]:
    """In a pnpm workspace, packages without a name or a version are not for publishing (an app, a
    test fixture), as `pnpm -r publish` skips them."""
    if not workspace.pnpm:
        return members
    unversioned = [m for m in members if not m.package.data.get("name") or not m.package.data.get("version")]
    if unversioned:
        log.info("Not published (no name or version): %s.", ", ".join(m.relative for m in unversioned))
    return [m for m in members if m not in unversioned]


def releases_in_order(
    root_source: Source, workspace: WorkspaceRoot, config: Config, log: logging.Logger
) -> list[Release]:
    root = workspace.folder.resolve()
    members = workspace_members(root_source, workspace, log)
    chosen = select(publishable(members, workspace, log), config.npm.workspaces, root)
    skipped = [m.name for m in members if m not in chosen and m.package.data.get("version")]
    if skipped:
        reason = "not in NPM_WORKSPACES or private" if config.npm.workspaces else "private"
        log.info("Not published (%s): %s.", reason, ", ".join(skipped))
    if not chosen:
        raise InputError(
            'every workspace package has "private": true, so there is nothing to publish: remove "private" from the '
            "packages to publish."
        )
    refuse_private_needs(chosen, members)
    ordered, cycles = dependency_order(chosen)
    for cycle in cycles:
        log.warning(
            "These packages depend on each other in a cycle, so among themselves only their runtime dependencies "
            "order them (else workspace order): %s.",
            ", ".join(cycle),
        )
    where = workspace.source if workspace.pnpm else "the workspace"
    resolution = Resolution(tuple(members), lockstep_versions(members, config), workspace.catalogs, where)
    return [prepare(member, resolution, workspace, config) for member in ordered]


def stage(release: Release, work: Path, registry: NpmRegistry, config: Config, log: logging.Logger) -> Staged:
    name, version = release.member.name, release.version
    work.mkdir()
    packed = pack_source(release.source, name, str(version), work, config, log)
    packument, plan = plan_package(registry, name, version, release.dist_tag, log)
    try:
        present = is_published(registry, packument, plan, packed, work, config)
    except ConflictError:
        return Staged(release, packed, packument, plan, work, present=False, conflict=True)
    return Staged(release, packed, packument, plan, work, present)


def stage_all(releases: list[Release], work: Path, registry: NpmRegistry, config: Config, log: logging.Logger):
    """Pack and check every package; conflicts are collected, so that one run names them all."""
    staged = [stage(release, work / str(index), registry, config, log) for index, release in enumerate(releases)]
    conflicts = [item for item in staged if item.conflict]
    if len(conflicts) == 1:
        raise ConflictError(f"{conflict_error(conflicts[0].plan, config).message} Nothing was published.")
    if conflicts:
        raise ConflictError(
            f"{', '.join(item.spec for item in conflicts)} are already published at {config.registry.url} with "
            "different contents, so nothing was published: versions are immutable; bump their versions "
            "(package.json's version, or VERSION) and re-run."
        )
    return staged


def log_plan(staged: list[Staged], log: logging.Logger) -> None:
    log.info("Plan (%d packages, in dependency order):", len(staged))
    for number, item in enumerate(staged, start=1):
        action = "already published with identical contents, skip" if item.present else "publish"
        log.info(
            "  %d. %s (%s) with %s: %s", number, item.spec, item.release.member.relative, tag_text(item.plan), action
        )


def publish_one(item: Staged, registry: NpmRegistry, config: Config, log: logging.Logger) -> str:
    """Publish one staged package; its outcome for the summary."""
    plan, dist = item.plan, item.packed.dist
    if item.present:
        already_published(registry, item.packument, plan, dist, config, log)
        log.info("%s is already published with identical contents: skipped.", item.spec)
        return "already-published"
    source = item.release.source
    manifest = version_manifest(source.package.data, plan.version, source.tree, dist, config.registry.url)
    log.info("Publishing %s to %s with %s.", item.spec, config.registry.url, tag_text(plan))
    settled = upload_until_settled(registry, plan, dist, manifest, item.packed.tgz, config, item.work, log)
    return "published" if settled is None else "already-published"


def publish_all(staged: list[Staged], registry: NpmRegistry, config: Config, log: logging.Logger) -> list[str]:
    outcomes: list[str] = []
    for item in staged:
        try:
            outcomes.append(publish_one(item, registry, config, log))
        except PipeError as error:
            done = [s.spec for s, outcome in zip(staged, outcomes, strict=False) if outcome == "published"]
            if not done:
                raise
            raise type(error)(
                f"{error.message} Published before this failure: {', '.join(done)}; re-run the step to publish the "
                "rest (versions already published with identical contents are skipped)."
            ) from None
    return outcomes


def summary(staged: list[Staged], outcomes: list[str], config: Config) -> str:
    published = [s for s, outcome in zip(staged, outcomes, strict=True) if outcome == "published"]
    present = [s.spec for s, outcome in zip(staged, outcomes, strict=True) if outcome != "published"]
    where = config.registry.url
    if not published:
        verb = "is" if len(present) == 1 else "are"
        return f"{', '.join(present)} at {where} {verb} already published with identical contents: nothing to publish."
    listed = ", ".join(f"{s.spec} ({tag_text(s.plan)})" for s in published)
    text = f"Published {len(published)} workspace package{'s' if len(published) > 1 else ''} to {where}: {listed}"
    return text + (f"; already published with identical contents: {', '.join(present)}." if present else ".")


def dry_run_result(staged: list[Staged], config: Config) -> Publication:
    new = [s.spec for s in staged if not s.present]
    present = [s.spec for s in staged if s.present]
    text = f"would publish {', '.join(new)} to {config.registry.url}" if new else "nothing to publish"
    if present:
        text += f" ({', '.join(present)} already published with identical contents)"
    packages = [details(s.plan, s.packed.dist, config, "dry-run", len(s.packed.files)) for s in staged]
    return Publication(f"Dry run: {text}; nothing was written.", {}, {"packages": packages})


def publish(
    config: Config, log: logging.Logger, masker: SecretMasker, root_source: Source, workspace: WorkspaceRoot
) -> Publication:
    releases = releases_in_order(root_source, workspace, config, log)
    with tempfile.TemporaryDirectory(prefix="bbpp-npm-") as work_dir:
        registry = NpmRegistry.from_config(config, log, masker)
        staged = stage_all(releases, Path(work_dir), registry, config, log)
        log_plan(staged, log)
        if config.dry_run:
            return dry_run_result(staged, config)
        outcomes = publish_all(staged, registry, config, log)
    packages = [
        details(s.plan, s.packed.dist, config, outcome, len(s.packed.files))
        for s, outcome in zip(staged, outcomes, strict=True)
    ]
    variables = {"PUBLISHED_PACKAGES": " ".join(s.spec for s in staged)}
    return Publication(summary(staged, outcomes, config), variables, {"packages": packages})

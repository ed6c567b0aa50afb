"""Deploying a multi-module project (a reactor) in one run, with the per-POM steps of the single
deploy: every module's files are found, and every release compared with the repository, before
the first upload, so that one module already published with other content stops the whole run
with nothing uploaded. Modules then go up in reactor order (a parent before its children, a
dependency before its dependents), each file with its checksum files, and the metadata of all
modules last. A SNAPSHOT reactor gets one timestamp for all of its modules.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from pipe.config import Config
from pipe.errors import ConfigError, InputError
from pipe.masking import SecretMasker
from pipe.maven.deploy import (
    Plan,
    built_artifacts,
    check_tag,
    conflict_error,
    plan_details,
    plan_snapshot,
    plan_variables,
    planned_uploads,
    release_states,
    show_files,
    shown,
    sort_release,
    upload_in_order,
    write_metadata,
)
from pipe.maven.layout import Artifact
from pipe.maven.model import SKIP_PROPERTY, build_context, check_versions
from pipe.maven.modules import Module, read_reactor, select_modules
from pipe.maven.repository import MavenRepository, in_parallel
from pipe.outputs import Publication

Built = tuple[Artifact | None, list[Artifact]]
# Modules whose metadata is written at the same time (each write is a few small requests and a pause).
METADATA_WORKERS = 16


def publish_reactor(config: Config, log: logging.Logger, masker: SecretMasker, root_pom: Path) -> Publication:
    if config.maven.artifacts:
        raise ConfigError(
            f"MAVEN_ARTIFACTS lists files for one POM, but {shown(root_pom, config)} has <modules>: leave "
            "MAVEN_ARTIFACTS out (each module's files are taken from its own target/), or set MAVEN_POM to one "
            "module's POM to deploy that module alone."
        )
    context = build_context(config.maven)
    modules, warnings = read_reactor(root_pom, lambda path: shown(path, config), context)
    found = ", ".join(f"{module.pom.artifact_id} ({module.pom.packaging})" for module in modules)
    log.info("Project %s: %d modules, in reactor order: %s.", shown(root_pom, config), len(modules), found)
    for warning in warnings:
        log.warning("%s", warning)
    selected = select_modules(modules, config.maven.modules)
    deployed, skipped = deployable(selected, log)
    check_versions([(m.pom, m.uses_revision) for m in deployed], context, config.context)
    for module in deployed:
        check_tag(config.context, module.pom, f"module {module.pom.artifact_id}'s")
    built = {module.key: built_artifacts(config, module.pom) for module in deployed}
    repository = MavenRepository.from_config(config, log, masker)
    now = datetime.now(UTC)
    plans = plan_reactor(repository, deployed, built, now)
    show_reactor_plan(plans, config, log)
    if config.dry_run:
        return reactor_result(plans, config, skipped, None)
    for plan in plans:
        upload_in_order(repository, plan)
    # Each module's metadata write waits a moment before checking that it held: those waits overlap.
    in_parallel(lambda plan: write_metadata(repository, plan, now, log), plans, workers=METADATA_WORKERS)
    return reactor_result(plans, config, skipped, repository)


def deployable(modules: list[Module], log: logging.Logger) -> tuple[list[Module], list[Module]]:
    """The modules to deploy, and those the deploy plugin skips (said, not deployed). A module whose
    skip the pipe cannot decide is named in a ⚠ line and not deployed: a release cannot be taken back."""
    skipped = [module for module in modules if module.skipped]
    for module in skipped:
        log.info("Skipping %s: %s.", module.pom.gav, module.skip_why)
    for module in modules:
        if module.skip is None:
            log.warning(
                "%s is not deployed: %s; set the value in MAVEN_PROPERTIES or in the POM so that it is decided.",
                module.pom.gav,
                module.skip_why,
            )
    deployed = [module for module in modules if module.skip is False]
    if not deployed:
        states = ", ".join(f"{m.pom.artifact_id} {'skipped' if m.skipped else 'undecided'}" for m in modules)
        raise InputError(
            f"no module is left to deploy ({states}): the deploy plugin skips them or the pipe cannot tell; remove "
            f"<skip> / {SKIP_PROPERTY} from the modules to publish, give MAVEN_PROPERTIES, or check MAVEN_MODULES."
        )
    return deployed, skipped


def plan_reactor(
    repository: MavenRepository, modules: list[Module], built: dict[str, Built], now: datetime
) -> list[Plan]:
    """One plan per module, in reactor order. The files of every release are checked in one batch,
    and all differing files of all modules are reported together; SNAPSHOT modules all get the
    timestamp of `now`, each with its own next buildNumber."""
    releases = [module for module in modules if not module.pom.is_snapshot]
    snapshots = [module for module in modules if module.pom.is_snapshot]
    plans = dict(
        zip(
            (module.key for module in snapshots),
            in_parallel(lambda m: plan_snapshot(repository, m.pom, *built[m.key], now), snapshots),
            strict=True,
        )
    )
    planned = {module.key: planned_uploads(module.pom, module.pom.version, *built[module.key]) for module in releases}
    states = iter(release_states(repository, [upload for uploads in planned.values() for upload in uploads]))
    conflicts = []
    for module in releases:
        uploads = planned[module.key]
        plans[module.key], differing = sort_release(module.pom, uploads, list(islice(states, len(uploads))))
        if differing:
            conflicts.append((module.pom.gav, differing))
    if conflicts:
        raise conflict_error(conflicts, " for any module")
    return [plans[module.key] for module in modules]


def show_reactor_plan(plans: list[Plan], config: Config, log: logging.Logger) -> None:
    log.info("Repository: %s", config.registry.url)
    for plan in plans:
        log.info("Module %s (%s, from %s):", coordinates(plan), plan.pom.packaging, shown(plan.pom.path, config))
        show_files(plan, config, log)


def coordinates(plan: Plan) -> str:
    return f"{plan.pom.group_id}:{plan.pom.artifact_id}:{plan.version}"


def reactor_result(
    plans: list[Plan], config: Config, skipped: list[Module], repository: MavenRepository | None
) -> Publication:
    """The ✔ sentence, outputs and details; `repository` is None for a dry run (nothing written)."""
    names = ", ".join(coordinates(plan) for plan in plans)
    files = sum(len(plan.uploads) for plan in plans)
    present = sum(len(plan.skipped) for plan in plans)
    url = config.registry.url
    opted_out = f"; skipped {', '.join(m.pom.gav for m in skipped)} (deploy plugin skip)" if skipped else ""
    if not files:
        summary = f"{len(plans)} modules ({names}) are already published at {url} with the same content{opted_out}"
    elif repository is None:
        summary = (
            f"would publish {len(plans)} modules ({names}; {files} files with checksums, then metadata) to "
            f"{url}{opted_out}; nothing was uploaded"
        )
    else:
        already = f", {present} already there" if present else ""
        summary = f"published {len(plans)} modules ({names}; {files} files{already}) to {url}{opted_out}"
    details: dict[str, object] = {
        "registry": url,
        "modules": [plan_details(plan, config) for plan in plans],
        "skipped_modules": [module.pom.gav for module in skipped],
    }
    if repository is None:
        return Publication(summary=f"dry run: {summary}", details=details)
    details["uploaded"] = list(repository.uploaded)
    variables = {**plan_variables(plans[0]), "PUBLISHED_MODULES": " ".join(coordinates(plan) for plan in plans)}
    return Publication(summary=summary, variables=variables, details=details)

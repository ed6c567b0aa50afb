"""Publisher for PACKAGE_TYPE=maven: deploy a POM and its built files to a Maven repository over
plain HTTP, the way `mvn deploy` lays them out (no JDK, no Maven, no settings.xml).

The entry only: a POM with `<modules>` is a reactor (`reactor.py`); one POM is deployed here with
the per-POM steps of `deploy.py`, through the client `MavenRepository.from_config` builds.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pipe.config import Config
from pipe.errors import InputError
from pipe.masking import SecretMasker
from pipe.maven.deploy import (
    Plan,
    check_tag,
    plan_details,
    plan_release,
    plan_snapshot,
    plan_variables,
    select_artifacts,
    show_files,
    shown,
    upload_in_order,
    write_metadata,
)
from pipe.maven.model import SKIP_PROPERTY, ModuleModel, build_context, check_versions, project_model
from pipe.maven.pom import module_paths, read_root
from pipe.maven.reactor import publish_reactor
from pipe.maven.repository import MavenRepository
from pipe.maven.staging import deploy_staged
from pipe.outputs import Publication


def publish(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    if config.maven.staging_dir:
        return deploy_staged(config, log, masker)
    path = config.resolve(config.maven.pom)
    root = read_root(path, "MAVEN_POM")
    if module_paths(root):
        return publish_reactor(config, log, masker, path)
    model = project_model(config, path, log)
    pom = model.pom
    if model.skip is not False:
        return not_deployed(model, config, log)
    check_versions([(pom, model.uses_revision)], build_context(config.maven), config.context)
    log.info("Publishing %s (packaging %s) from %s.", pom.gav, pom.packaging, shown(pom.path, config))
    check_tag(config.context, pom)
    main, attached = select_artifacts(config, pom)
    repository = MavenRepository.from_config(config, log, masker)
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


def not_deployed(model: ModuleModel, config: Config, log: logging.Logger) -> Publication:
    """What `mvn deploy` does with a POM its deploy plugin skips: nothing. A skip the pipe cannot
    decide stops the run, since a release cannot be taken back."""
    pom = model.pom
    if model.skip is None:
        raise InputError(
            f"{pom.gav} ({shown(pom.path, config)}) is not deployed: {model.skip_why}; set the value in "
            "MAVEN_PROPERTIES or in the POM so that it is decided."
        )
    log.info("Skipping %s: %s.", pom.gav, model.skip_why)
    dry = "dry run: " if config.dry_run else ""
    return Publication(
        summary=f"{dry}{pom.gav} is not published: the deploy plugin skips it ({model.skip_why}); remove the <skip> "
        f"or {SKIP_PROPERTY} to publish it",
        details={"registry": config.registry.url, "skipped_modules": [pom.gav]},
    )


def show_plan(plan: Plan, config: Config, log: logging.Logger) -> None:
    log.info("Repository: %s", config.registry.url)
    show_files(plan, config, log)


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

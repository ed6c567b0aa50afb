"""Publisher for PACKAGE_TYPE=npm: pack a folder (or take a `.tgz` as it is), check what the
registry already has, and publish with one streamed PUT — no Node.js, no .npmrc.

Everything that can be refused before the upload is checked before it: the manifest, the
version against the tag pipeline, the registry's copy of the version, the dist-tag plan. A
workspace root (pnpm-workspace.yaml, or `workspaces` in package.json) goes to `npm/workspaces.py`;
a package inside a workspace has its ranges resolved from it (`npm/enclosing_workspace.py`); the
steps for one package live in `npm/package.py` (source, packing) and `npm/upload.py` (registry
checks, the PUT)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from pipe.config import Config
from pipe.errors import ConfigError, InputError
from pipe.masking import SecretMasker
from pipe.npm import enclosing_workspace, workspaces
from pipe.npm.manifest import (
    check_not_private,
    check_tag_matches,
    choose_dist_tag,
    validate_name,
    version_manifest,
)
from pipe.npm.manifest import publish_version as choose_version
from pipe.npm.package import Source, pack_source, read_source
from pipe.npm.package_tree import FolderTree
from pipe.npm.pnpm_workspace import workspace_at
from pipe.npm.registry import NpmRegistry
from pipe.npm.upload import (
    already_published,
    details,
    is_published,
    plan_package,
    results,
    tag_text,
    upload_until_settled,
)
from pipe.outputs import Publication


def publish(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    source = read_source(config)
    if not source.is_tarball:
        workspace = workspace_at(source.path, source.shown, source.package)
        if workspace is not None:
            return workspaces.publish(config, log, masker, source, workspace)
        source = placed_in_workspace(source, config, log)
    data = source.package.data
    check_no_workspace_selection(config, source)
    name = validate_name(data.get("name"), source.package.source)
    check_not_private(data, source.package.source)
    version = choose_version(data, config.npm.version, source.package.source)
    check_tag_matches(config.context, version, from_variable=bool(config.npm.version))
    if source.is_tarball and data.get("version") != str(version):
        raise InputError(
            f"{source.shown} holds version {data.get('version')} but {version} is to be published: a .tgz is "
            "published byte for byte, so remove VERSION, or pack again with that version, or point NPM_PACKAGE "
            "at the package folder."
        )
    dist_tag = choose_dist_tag(config.npm.dist_tag, data, version)

    with tempfile.TemporaryDirectory(prefix="bbpp-npm-") as work_dir:
        work = Path(work_dir)
        packed = pack_source(source, name, str(version), work, config, log)
        registry = NpmRegistry.from_config(config, log, masker)
        packument, plan = plan_package(registry, name, version, dist_tag, log)
        if is_published(registry, packument, plan, packed, work, config):
            return already_published(registry, packument, plan, packed.dist, config, log)

        if config.dry_run:
            target = f"{name}@{version} to {config.registry.url} with {tag_text(plan)}"
            summary = f"Dry run: would publish {target}; nothing was written."
            return Publication(summary, {}, details(plan, packed.dist, config, "dry-run", len(packed.files)))

        manifest = version_manifest(
            data, plan.version, source.tree, packed.dist, config.registry.url, from_tarball=source.is_tarball
        )
        log.info("Publishing %s@%s to %s with %s.", name, version, config.registry.url, tag_text(plan))
        settled = upload_until_settled(registry, plan, packed.dist, manifest, packed.tgz, config, work, log)
        if settled is not None:
            return settled
        return Publication(
            f"Published {name}@{version} to {config.registry.url} with {tag_text(plan)}.",
            results(plan, packed.dist),
            details(plan, packed.dist, config, "published", len(packed.files)),
        )


def placed_in_workspace(source: Source, config: Config, log: logging.Logger) -> Source:
    """A package folder inside a workspace, with its ranges resolved from the workspace (and packed
    as pnpm packs, in a pnpm workspace)."""
    placement = enclosing_workspace.place(source.path, source.shown, source.package, config.working_dir, log)
    if placement is None:
        return source
    return replace(
        source,
        path=placement.folder,
        package=placement.package,
        tree=FolderTree(placement.folder),
        pnpm_root=placement.pnpm_root,
        outer_rules=placement.outer_rules,
    )


def check_no_workspace_selection(config: Config, source: Source) -> None:
    if config.npm.workspaces:
        raise ConfigError(
            f'NPM_WORKSPACES is set but {source.package.source} has no "workspaces": point NPM_PACKAGE at the '
            "workspace root (the folder whose package.json lists the workspaces), or remove NPM_WORKSPACES."
        )

"""A single package (NPM_PACKAGE: packages/x) that lives inside a workspace: published as
`pnpm publish` in that folder publishes it, never with a raw `workspace:` or `catalog:` range.

The enclosing workspace is the nearest folder above the package, up to the working directory,
with a pnpm-workspace.yaml, or whose package.json `workspaces` globs name the package's folder.
In a pnpm workspace the package is packed as `pnpm pack` packs it (publishConfig overrides, the
root's LICENSE, pnpm's modes); in an npm/Yarn workspace as `npm pack` does, with its ranges
resolved the same way. Ranges that need a workspace and find none stop the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipe.errors import InputError
from pipe.npm import pnpm_pack
from pipe.npm.manifest import PackageJson
from pipe.npm.pnpm_workspace import WorkspaceRoot, enclosing_root, workspace_at
from pipe.npm.workspace_files import outer_ignore_texts
from pipe.npm.workspace_graph import Member, discover, private_runtime_dependencies
from pipe.npm.workspace_ranges import Resolution, needs_resolution, rewrite_package


@dataclass(frozen=True)
class Placement:
    """What to pack for a package inside a workspace."""

    folder: Path  # the folder to pack (publishConfig.directory in a pnpm workspace)
    package: PackageJson  # its publishable package.json
    pnpm_root: Path | None  # the pnpm workspace root, when packed as pnpm packs
    # npm packs a workspace package with the ignore files above it, from inside its folder too.
    outer_rules: tuple[str, ...] = ()


def find_workspace(folder: Path, top: Path) -> tuple[WorkspaceRoot, list[Member]] | None:
    """The workspace enclosing `folder` and its packages, or None."""
    found = enclosing_root(folder, top)
    if found is None:
        return None
    root, package = found
    shown = root.relative_to(top.resolve()).as_posix() if root != top.resolve() else "."
    workspace = workspace_at(root, shown, package)
    if workspace is None:
        return None
    members = discover(root, list(workspace.patterns), workspace.source)
    if not workspace.pnpm:
        relative = folder.resolve().relative_to(root).as_posix()
        if not any(m.relative == relative for m in members):
            return None  # a folder below a workspace root that is not one of its packages
    return workspace, members


def place(folder: Path, shown: str, package: PackageJson, top: Path, log: logging.Logger) -> Placement | None:
    """How to publish the package in `folder`; None when no workspace encloses it and it needs none."""
    found = find_workspace(folder, top)
    if found is None:
        if needs_resolution(package.data):
            raise InputError(
                f"{package.source} has workspace: or catalog: ranges, but no workspace above {shown} declares its "
                'siblings (no pnpm-workspace.yaml, no package.json whose "workspaces" names the folder): point '
                "NPM_PACKAGE at the workspace root, or replace those ranges with versions."
            )
        return None
    workspace, members = found
    log.info(
        "%s is a package of the %s workspace at %s: its workspace: and catalog: ranges are resolved from it.",
        shown,
        "pnpm" if workspace.pnpm else "npm",
        workspace.shown,
    )
    me = Member(folder, shown, package)
    private = private_runtime_dependencies(me, members)
    if private:
        raise InputError(
            f'{package.source} depends at run time on {", ".join(private)}, marked "private": true and so never '
            'published: installs would fail; remove "private" there, or move the dependency to devDependencies.'
        )
    where = workspace.source if workspace.pnpm else "the workspace"
    resolution = Resolution(tuple(members), {}, workspace.catalogs, where)
    if not workspace.pnpm:
        outer = outer_ignore_texts(workspace.folder, folder.resolve())
        return Placement(folder, rewrite_package(package, folder, resolution), None, outer)
    target, inner = pnpm_pack.publish_folder(folder, package, shown)
    return Placement(target, pnpm_pack.exportable_package(inner, target, resolution), workspace.folder)

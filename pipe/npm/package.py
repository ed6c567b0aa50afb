"""One npm package as a source and a tarball: what NPM_PACKAGE points at (a folder or a ready
`.tgz`), packed as `npm pack` packs it, with its file list checked and shown. Used by the
single-package entry (`npm/publish.py`) and by workspaces alike; nothing here talks to a registry."""

from __future__ import annotations

import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pipe.config import Config
from pipe.errors import InputError
from pipe.npm import packlist, pnpm_pack, tarball
from pipe.npm.manifest import (
    Dist,
    PackageJson,
    read_folder_package_json,
    read_tarball_package,
    tarball_manifest_bytes,
)
from pipe.npm.package_tree import FolderTree, PackageTree
from pipe.npm.pnpm_workspace import WORKSPACE_FILE as PNPM_WORKSPACE_FILE
from pipe.npm.tarball import compute_dist
from pipe.progress import format_size

# A dry run lists the packed files; beyond this many, the rest is summarised in one line.
MAX_LISTED_FILES = 500
# Where Pipelines keeps pipes' storage inside the clone (this pipe's JSON summary too).
PIPELINES_GENERATED = Path(".bitbucket") / "pipelines" / "generated"


@dataclass(frozen=True)
class Source:
    """What NPM_PACKAGE points at: a package folder or a ready `.tgz`."""

    path: Path
    shown: str  # as the user wrote it, for messages
    is_tarball: bool
    package: PackageJson
    tree: PackageTree  # its files, as npm's normalization of the manifest looks at them
    # Ignore files of the folders above a workspace package, which npm applies to it too.
    outer_rules: tuple[str, ...] = ()
    # The workspace root of a pnpm workspace's package, which is then packed as `pnpm pack` packs it.
    pnpm_root: Path | None = None


@dataclass(frozen=True)
class Packed:
    """A package ready to send: its tarball, the files in it, and its digests."""

    tgz: Path
    files: list[packlist.PackFile]
    dist: Dist


def read_source(config: Config) -> Source:
    shown = config.npm.package
    path = config.resolve(shown)
    if not path.exists():
        raise InputError(
            f"NPM_PACKAGE '{shown}' does not exist in {config.working_dir}: point it at the package folder "
            "(the one with package.json) or at a .tgz made by `npm pack`."
        )
    if path.is_dir():
        if not (path / "package.json").exists() and (path / PNPM_WORKSPACE_FILE).is_file():
            # pnpm needs no package.json at a workspace root: a root without one publishes nothing itself.
            package = PackageJson({}, b"{}", f"{shown.rstrip('/')}/package.json")
            return Source(path, shown, False, package, FolderTree(path))
        return Source(path, shown, False, read_folder_package_json(path, shown), FolderTree(path))
    package, tree = read_tarball_package(path, shown)
    return Source(path, shown, True, package, tree)


def pipe_storage_dirs(config: Config) -> list[Path]:
    """Folders Pipelines fills during the step, which are no part of any package."""
    dirs = [Path(folder) for folder in config.context.storage_dirs]
    if config.context.clone_dir:
        dirs.append(Path(config.context.clone_dir) / PIPELINES_GENERATED)
    return [config.resolve(str(folder)) for folder in dirs]


def leave_out(files: list[packlist.PackFile], folder: Path, excluded: list[Path]) -> list[packlist.PackFile]:
    """`files` without those under an excluded folder. Pipes' storage lives inside the clone, so a
    package at the clone's root would otherwise pack an earlier pipe's summary, and a re-run in
    the same clone would look like different contents."""
    prefixes = []
    for candidate in excluded:
        try:
            prefixes.append(candidate.relative_to(folder.resolve()).as_posix() + "/")
        except ValueError:
            continue  # not inside the package
    return [f for f in files if not any(f.path.startswith(prefix) for prefix in prefixes)]


def pack_folder(
    source: Source, version: str, target: Path, log: logging.Logger, excluded: list[Path] | None = None
) -> list[packlist.PackFile]:
    manifest = dict(source.package.data, version=version)
    if source.pnpm_root is not None:
        listed = pnpm_pack.package_files(source.path, manifest, source.pnpm_root)
    else:
        listed = packlist.list_package_files(source.path, manifest, source.outer_rules)
    files = leave_out(listed, source.path, excluded or [])
    if len(files) < len(listed):
        log.info("Left out %d file(s) of Pipelines' pipe storage (not part of the package).", len(listed) - len(files))
    manifest_bytes = tarball_manifest_bytes(source.package, version)
    with target.open("wb") as out:
        tarball.write_tarball(source.path, files, manifest_bytes, out)
    return files


def tarball_files(path: Path) -> list[packlist.PackFile]:
    """The files of a ready `.tgz`, as the packer describes them (for the listing and the secret check)."""
    # Refuse unsafe members (`../`, absolute paths, links) before anything is published.
    with path.open("rb") as handle:
        tarball.tarball_digests(handle)
    with tarfile.open(path, mode="r:gz") as archive:
        return [
            packlist.PackFile(path=m.name.split("/", 1)[-1], mode=m.mode, size=m.size)
            for m in archive.getmembers()
            if m.isfile()
        ]


def warn_about_secrets(files: list[packlist.PackFile], log: logging.Logger) -> None:
    suspicious = packlist.likely_secrets(files)
    if suspicious:
        log.warning(
            "The package includes files that may hold secrets: %s. If they must not be published, list what "
            'to publish in package.json\'s "files" field or exclude them in .npmignore.',
            ", ".join(suspicious),
        )


def log_file_list(files: list[packlist.PackFile], log: logging.Logger) -> None:
    log.info("Files in the package (%d):", len(files))
    for item in files[:MAX_LISTED_FILES]:
        log.info("  %s (%s, mode %o)", item.path, format_size(item.size), item.mode)
    if len(files) > MAX_LISTED_FILES:
        log.info("  … and %d more", len(files) - MAX_LISTED_FILES)


def pack_source(source: Source, name: str, version: str, work: Path, config: Config, log: logging.Logger) -> Packed:
    """The tarball to publish: a `.tgz` as it is, or the folder packed like `npm pack` packs it."""
    if source.is_tarball:
        tgz, files = source.path, tarball_files(source.path)
        log.info("Using %s as packed (%d files).", source.shown, len(files))
    else:
        tgz = work / "package.tgz"
        files = pack_folder(source, version, tgz, log, pipe_storage_dirs(config))
    dist = compute_dist(tgz)
    log.info("Packed %s@%s: %d files, %s, %s.", name, version, len(files), format_size(dist.size), dist.integrity)
    warn_about_secrets(files, log)
    if config.dry_run:
        log_file_list(files, log)
    return Packed(tgz, files, dist)

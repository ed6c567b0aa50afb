"""A package of a pnpm workspace, packed as `pnpm pack` (pnpm 10) packs it.

The manifest (pnpm's "exportable manifest"): the `pnpm` and `packageManager` fields and the
pack/publish lifecycle scripts dropped (`scripts` then comes last), dependency ranges made
publishable (`workspace_ranges.py`), and the `publishConfig` fields pnpm allows to override
(`PUBLISH_CONFIG_OVERRIDES`) moved to the top level, `publishConfig` dropped when nothing else is
left in it. It goes into the tarball as pnpm writes it: two-space JSON without a final newline.

The files: npm's selection over that manifest (so a `main` or `bin` from publishConfig is
always packed; a root `bun.lockb` is packed, as pnpm's older packlist does); mode 0644 for
every file and 0755 for bin targets and `publishConfig.executableFiles`, whatever their mode on
disk; and when the package has no
license file (no packed path containing LICENSE/LICENCE, any case), the workspace root's
`LICENSE`/`LICENCE` files (`LICEN{S,C}E{,.*}`) are packed at the package's root.
`publishConfig.directory` publishes that folder, with its own package.json, instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipe.errors import InputError
from pipe.npm import packlist
from pipe.npm.manifest import PackageJson, read_folder_package_json
from pipe.npm.workspace_ranges import Resolution, publishable_dependencies

# pnpm's PUBLISH_CONFIG_WHITELIST: the manifest fields publishConfig may replace.
PUBLISH_CONFIG_OVERRIDES = (
    "bin",
    "engines",
    "type",
    "imports",
    "main",
    "module",
    "typings",
    "types",
    "exports",
    "browser",
    "esnext",
    "es2015",
    "unpkg",
    "umd:main",
    "os",
    "cpu",
    "libc",
    "typesVersions",
)
DROPPED_FIELDS = ("pnpm", "scripts", "packageManager")
DROPPED_SCRIPTS = ("prepublishOnly", "prepack", "prepare", "postpack", "publish", "postpublish")
_LICENSE_IN_PATH = re.compile(r"LICEN[CS]E(?:\..+)?", re.IGNORECASE)
_ROOT_LICENSE = re.compile(r"^LICEN[SC]E(?:\..*)?$")
FILE_MODE, EXECUTABLE_MODE = 0o644, 0o755
# pnpm 10 lists files with npm-packlist 5, which packs a root `bun.lockb` (npm 11 leaves it out).
PNPM_STRICT_RULES = tuple(rule for rule in packlist.ROOT_STRICT_RULES if rule != "/bun.lockb")


def publish_folder(folder: Path, package: PackageJson, shown: str) -> tuple[Path, PackageJson]:
    """The folder pnpm packs for this package and its package.json: `publishConfig.directory`
    (which holds its own package.json) when set, else the folder itself."""
    publish_config = package.data.get("publishConfig")
    directory = publish_config.get("directory") if isinstance(publish_config, dict) else None
    if directory is None:
        return folder, package
    target = (folder / str(directory)).resolve()
    if not isinstance(directory, str) or not directory.strip() or folder.resolve() not in (target, *target.parents):
        raise InputError(
            f'{package.source} "publishConfig.directory" must name a folder inside the package ("{directory}"): '
            "fix the field."
        )
    if not target.is_dir():
        raise InputError(
            f'{package.source} "publishConfig.directory" is "{directory}", which does not exist: run the build '
            "that fills it before this step, or fix the field."
        )
    inner = read_folder_package_json(target, f"{shown.rstrip('/')}/{Path(directory).as_posix().strip('/')}")
    for key in ("name", "version"):
        if inner.data.get(key) != package.data.get(key):
            # The run plans, orders and checks the package by the outer package.json.
            raise InputError(
                f'{inner.source} has "{key}": {json.dumps(inner.data.get(key))} but {package.source} has '
                f"{json.dumps(package.data.get(key))}: publishConfig.directory must hold the same package; copy the "
                "name and version there in the build."
            )
    return target, inner


def exportable_package(package: PackageJson, folder: Path, resolution: Resolution) -> PackageJson:
    """The package.json `pnpm pack` writes into the tarball (and `pnpm publish` publishes)."""
    original = package.data
    manifest = {key: value for key, value in original.items() if key not in DROPPED_FIELDS}
    scripts = original.get("scripts")
    if isinstance(scripts, dict):
        manifest["scripts"] = {name: value for name, value in scripts.items() if name not in DROPPED_SCRIPTS}
    elif scripts is not None:
        manifest["scripts"] = scripts
    manifest = publishable_dependencies(manifest, folder, package.source, resolution)
    apply_publish_config(manifest)
    raw = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
    return PackageJson(data=manifest, raw=raw, source=package.source)


def apply_publish_config(manifest: dict) -> None:
    publish_config = manifest.get("publishConfig")
    if not isinstance(publish_config, dict):
        return
    remaining = dict(publish_config)
    for key in publish_config:
        if key in PUBLISH_CONFIG_OVERRIDES:
            manifest[key] = remaining.pop(key)
    if remaining:
        manifest["publishConfig"] = remaining
    else:
        del manifest["publishConfig"]


def package_files(folder: Path, manifest: dict, workspace_root: Path | None) -> list[packlist.PackFile]:
    """The files of the tarball, with pnpm's modes; `manifest` is the exportable manifest."""
    listed = packlist.list_package_files(folder, manifest, strict_rules=PNPM_STRICT_RULES)
    executables = set(packlist.normalized_bins(manifest, folder).values()) | _executable_files(manifest)
    files = [packlist.PackFile(f.path, EXECUTABLE_MODE if f.path in executables else FILE_MODE, f.size) for f in listed]
    if workspace_root is not None and workspace_root.resolve() != folder.resolve():
        if not any(_LICENSE_IN_PATH.search(f.path) for f in files):
            files += root_licenses(workspace_root)
    return files


def _executable_files(manifest: dict) -> set[str]:
    publish_config = manifest.get("publishConfig")
    listed = publish_config.get("executableFiles") if isinstance(publish_config, dict) else None
    if not isinstance(listed, list):
        return set()
    return {packlist.posix_clean(item) for item in listed if isinstance(item, str)}


def root_licenses(workspace_root: Path) -> list[packlist.PackFile]:
    """The workspace root's license files, packed into a package that has none."""
    found = []
    for path in sorted(workspace_root.iterdir()):
        if _ROOT_LICENSE.match(path.name) and path.is_file() and not path.is_symlink():
            found.append(packlist.PackFile(path.name, FILE_MODE, path.stat().st_size, origin=path))
    return found

"""Which folder is a workspace root, and what it declares: `pnpm-workspace.yaml` (pnpm) or the
root package.json's `workspaces` (npm, Yarn).

From pnpm-workspace.yaml the pipe reads `packages` (the member globs, `!` to exclude; pnpm's
default when absent is every package below the root), `catalog` (the default catalog) and
`catalogs` (named ones), as pnpm 10 reads them; other settings do not change what is published.

A package folder named by NPM_PACKAGE may sit inside a workspace: its enclosing root is the
nearest folder above it, up to the working directory, with a pnpm-workspace.yaml or with a
package.json whose `workspaces` globs name the package's folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipe.errors import InputError
from pipe.npm.manifest import PackageJson, parse_package_json
from pipe.npm.workspace_graph import candidate_folders, glob_matches, workspace_patterns

WORKSPACE_FILE = "pnpm-workspace.yaml"
# pnpm's own default when pnpm-workspace.yaml has no `packages`: every package below the root.
PNPM_DEFAULT_PATTERNS = ("**",)
# A workspace file is a few KB; a huge one is a mistake.
MAX_WORKSPACE_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WorkspaceRoot:
    """A workspace root as the pipe uses it."""

    folder: Path
    shown: str  # as the user sees it, for messages
    patterns: tuple[str, ...]
    pnpm: bool  # a pnpm workspace (pnpm-workspace.yaml): packed and rewritten as `pnpm pack` does
    source: str  # the file the patterns come from, for messages
    # catalog name ("default" for `catalog`) -> dependency name -> range
    catalogs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # An explicit `packages` list (each glob must find a package); pnpm's default otherwise.
    explicit: bool = True


def read_pnpm_workspace(folder: Path, shown: str) -> WorkspaceRoot | None:
    """The pnpm workspace whose root is `folder`, or None when it has no pnpm-workspace.yaml."""
    path = folder / WORKSPACE_FILE
    if not path.is_file():
        return None
    where = f"{shown.rstrip('/')}/{WORKSPACE_FILE}" if shown not in ("", ".") else WORKSPACE_FILE
    document = _load_yaml(path, where)
    declared = document.get("packages")
    if declared is not None and (
        not isinstance(declared, list) or not all(isinstance(item, str) and item.strip() for item in declared)
    ):
        raise InputError(f'{where}: "packages" must be a list of folder globs (e.g. ["packages/*"]): fix the field.')
    patterns = tuple(item.strip() for item in declared) if declared is not None else PNPM_DEFAULT_PATTERNS
    patterns = tuple(p for p in patterns if _normalised(p) not in ("", "."))  # the root is handled on its own
    return WorkspaceRoot(
        folder, shown, patterns, True, where, _catalogs(document, where), explicit=declared is not None
    )


def _normalised(pattern: str) -> str:
    return pattern.lstrip("!").replace("\\", "/").strip().rstrip("/").removeprefix("./")


def _load_yaml(path: Path, where: str) -> dict:
    raw = path.read_bytes()
    if len(raw) > MAX_WORKSPACE_FILE_BYTES:
        raise InputError(
            f"{where} is larger than {MAX_WORKSPACE_FILE_BYTES // 1024} KB: keep only the workspace settings in it."
        )
    try:
        document = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text: save it as UTF-8 and re-run.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InputError(
            f"{where} is not valid YAML ({problem}{at}): fix the syntax (`pnpm ls -r` shows whether pnpm can read it)."
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InputError(
            f"{where} must hold a mapping (packages:, catalog:, …), not a {type(document).__name__}: fix its content."
        )
    return document


def _catalogs(document: Mapping, where: str) -> dict[str, dict[str, str]]:
    default, named = document.get("catalog"), document.get("catalogs")
    if named is not None and not isinstance(named, dict):
        raise InputError(f'{where}: "catalogs" must map catalog names to {{dependency: range}}: fix the field.')
    named = dict(named or {})
    if default is not None and named.get("default") is not None:
        raise InputError(
            f'{where} defines the default catalog twice ("catalog" and "catalogs.default"): keep one of them, '
            "as pnpm requires."
        )
    if default is not None:
        named["default"] = default
    catalogs: dict[str, dict[str, str]] = {}
    for name, entries in named.items():
        if entries is None:
            continue
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            shown = "catalog" if name == "default" and default is not None else f"catalogs.{name}"
            raise InputError(f'{where}: "{shown}" must map dependency names to version ranges: fix the field.')
        catalogs[str(name)] = {str(k): v for k, v in entries.items()}
    return catalogs


def enclosing_root(package_folder: Path, top: Path) -> tuple[Path, PackageJson | None] | None:
    """The nearest folder strictly above `package_folder` (up to `top`, included) that is a workspace
    root: one with pnpm-workspace.yaml, or whose package.json declares `workspaces`. Returns it and
    its parsed package.json (None when it has none). Whether its globs name the package is for the
    caller to decide."""
    folder, top = package_folder.resolve(), top.resolve()
    if folder != top and top not in folder.parents:
        return None
    while folder != top:
        folder = folder.parent
        manifest = folder / "package.json"
        package = None
        if manifest.is_file():
            try:
                shown = folder.relative_to(top).as_posix()
                package = parse_package_json(manifest.read_bytes(), f"{shown}/package.json")
            except InputError:
                package = None
        if (folder / WORKSPACE_FILE).is_file():
            return folder, package
        if package is not None and "workspaces" in package.data:
            return folder, package
    return None


def workspace_at(folder: Path, shown: str, package: PackageJson | None) -> WorkspaceRoot | None:
    """The workspace whose root is `folder`: pnpm-workspace.yaml first (pnpm ignores package.json's
    `workspaces` then), else a non-empty `workspaces` in its package.json; None when neither."""
    pnpm = read_pnpm_workspace(folder, shown)
    if pnpm is not None:
        return pnpm
    if package is None or "workspaces" not in package.data:
        return None
    patterns = workspace_patterns(package.data, package.source)
    if not patterns:
        return None
    return WorkspaceRoot(folder, shown, tuple(patterns), False, f'{package.source} "workspaces"', npm_catalogs(package))


def npm_catalogs(package: PackageJson) -> dict[str, dict[str, str]]:
    """Catalogs declared beside the globs, as Bun reads them: `workspaces.catalog`/`catalogs`."""
    declared = package.data.get("workspaces")
    if not isinstance(declared, Mapping) or ("catalog" not in declared and "catalogs" not in declared):
        return {}
    return _catalogs(declared, f'{package.source} "workspaces"')


def check_every_glob_matches(workspace: WorkspaceRoot) -> None:
    """A glob that finds no package is a typo or a moved folder: its packages would silently not
    be published, so the run stops instead."""
    if not workspace.explicit:
        return
    candidates = candidate_folders(workspace.folder, list(workspace.patterns))
    for pattern in workspace.patterns:
        if pattern.startswith("!"):
            continue
        found = [folder for folder in candidates if glob_matches(pattern, folder)]
        if not any((workspace.folder / folder / "package.json").is_file() for folder in found):
            raise InputError(
                f'{workspace.source} has the glob "{pattern}", which matches no folder with a package.json: fix the '
                "glob (it is relative to the workspace root) or remove it."
            )

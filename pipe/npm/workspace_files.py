"""The files of a workspace package, selected as `npm pack --workspace <name>` selects them.

Inside a workspace, npm-packlist also reads the ignore files of the folders between the workspace
root and the package (the root itself included, the package's own folder excluded): in each of
them the `.npmignore`, or the `.gitignore` when there is no `.npmignore`. Their lines join npm's
default rules of the package's root folder, so they are matched relative to the package folder,
and everything evaluated after the defaults (the `files` field, the package's own ignore files,
the files that are always included) still wins over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import InputError
from pipe.npm import packlist

IGNORE_FILES = (".npmignore", ".gitignore")


def outer_ignore_texts(root: Path, package_folder: Path) -> tuple[str, ...]:
    """The ignore files npm reads outside `package_folder`, from the workspace `root` down."""
    texts = []
    folder = root
    for part in (None, *package_folder.parent.relative_to(root).parts):
        folder = folder / part if part else folder
        for name in IGNORE_FILES:
            path = folder / name
            if path.is_file():
                texts.append(_read(path, root))
                break
    return tuple(texts)


def _read(path: Path, root: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        shown = path.relative_to(root).as_posix()
        raise InputError(f"cannot read {shown} ({error.strerror}): fix its permissions.") from None


# The packer takes rules only from inside the package folder; this walker of the package's root
# folder is the one place the outer rules go in, so the packer's own selection stays untouched.
@dataclass
class _WorkspacePackageRoot(packlist._Walker):
    """The walker of the package's root folder with the outer rules appended to its defaults;
    the folders below it inherit them through their parent, as npm-packlist's do."""

    outer_rules: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        super().__post_init__()
        extra = [rule for text in self.outer_rules for rule in packlist._rules(text)]
        self.rules[packlist.DEFAULTS] = [*self.rules[packlist.DEFAULTS], *extra]


def list_files(folder: Path, manifest: dict, outer_rules: tuple[str, ...] = ()) -> list[packlist.PackFile]:
    """npm pack's selection for `folder`; with `outer_rules` (see `outer_ignore_texts`) as in a workspace."""
    if not outer_rules:
        return packlist.list_package_files(folder, manifest)
    folder = Path(folder).resolve()
    packlist._refuse_bundled_dependencies(manifest)
    bins = packlist.normalized_bins(manifest, folder)
    root = _WorkspacePackageRoot(
        folder,
        parent=None,
        rule_sets=packlist.ROOT_RULE_SETS,
        is_package=True,
        manifest=manifest,
        bins=bins,
        outer_rules=outer_rules,
    )
    paths = root.walk()
    return [packlist._pack_file(folder, path, bins) for path in packlist.sort_like_npm(paths)]

"""The ignore files outside a workspace package that `npm pack --workspace <name>` also reads.

Inside a workspace, npm-packlist also reads the ignore files of the folders between the workspace
root and the package (the root itself included, the package's own folder excluded): in each of
them the `.npmignore`, or the `.gitignore` when there is no `.npmignore`. Their lines join npm's
default rules of the package's root folder, so they are matched relative to the package folder,
and everything evaluated after the defaults (the `files` field, the package's own ignore files,
the files that are always included) still wins over them.
"""

from __future__ import annotations

from pathlib import Path

from pipe.errors import InputError

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

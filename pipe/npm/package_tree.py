"""The files of a package as `npm publish` looks at them while it normalizes package.json (which
README, whether `index.d.ts` or `server.js` exist, what `directories.bin` holds, the commit of the
enclosing git checkout): a folder on disk, or the members of a ready `.tgz`.

Listings come in the order npm's glob yields them: a folder's entries in reverse code-point
order, breadth first. That order decides, for example, that README.md wins over README.es.md."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path, PurePosixPath

# Files npm reads whole while normalizing (README, AUTHORS); a bigger one is read as absent.
MAX_READ_BYTES = 64 * 1024 * 1024
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REF = re.compile(r"^refs/[A-Za-z0-9._/+-]+$")


class PackageTree:
    """Read-only questions about the package's files, by POSIX path relative to its root."""

    def entries(self, folder: str) -> list[tuple[str, bool]] | None:
        """(name, is_dir) of the folder's entries, npm's glob order; None when it is no folder."""
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def read_text(self, path: str) -> str | None:
        """The file as UTF-8 text (invalid bytes replaced, as Node's reader does), or None."""
        raise NotImplementedError

    def git_head(self) -> str | None:
        """The commit checked out around the package, as npm records it in `gitHead`."""
        return None

    def walk(self, folder: str) -> list[tuple[str, bool]]:
        """Every entry under `folder` (not `.`-names, nor under them), breadth first in glob order:
        (path relative to `folder`, is_dir)."""
        found: list[tuple[str, bool]] = []
        pending = [""]
        while pending:
            prefix = pending.pop(0)
            for name, is_dir in self.entries(_join(folder, prefix)) or []:
                if name.startswith("."):
                    continue
                relative = _join(prefix, name)
                found.append((relative, is_dir))
                if is_dir:
                    pending.append(relative)
        return found


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _glob_order(entries: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    # Node lists a folder sorted by the names' UTF-8 bytes (code-point order); npm's glob then
    # yields the entries last to first.
    return sorted(entries, reverse=True)


class FolderTree(PackageTree):
    def __init__(self, root: Path):
        self.root = root

    def _inside(self, path: str) -> Path | None:
        """`path` under the root, or None when it would lead outside (never looked at)."""
        target = (self.root / path).resolve()
        base = self.root.resolve()
        return target if target == base or base in target.parents else None

    def entries(self, folder: str) -> list[tuple[str, bool]] | None:
        target = self._inside(folder)
        if target is None or not target.is_dir():
            return None
        try:
            return _glob_order([(child.name, child.is_dir()) for child in target.iterdir()])
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        target = self._inside(path)
        return target is not None and target.exists()

    def read_text(self, path: str) -> str | None:
        target = self._inside(path)
        try:
            if target is None or not target.is_file() or target.stat().st_size > MAX_READ_BYTES:
                return None
            return target.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return None

    def git_head(self) -> str | None:
        return git_head_above(self.root.absolute())


def git_head_above(folder: Path) -> str | None:
    """npm's rule: the nearest folder upwards holding `.git`; its `.git/HEAD`, a branch's ref
    followed through `.git/<ref>` or `packed-refs`. Only a commit id is taken (a hostile HEAD
    naming any other file is read as no commit)."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return _read_head(candidate / ".git")
    return None


def _read_head(git: Path) -> str | None:
    head = _small_text(git / "HEAD")
    if not head:
        return None
    if not head.startswith("ref: "):
        commit = head.strip()
    else:
        ref = head[len("ref: ") :].strip()
        if not _REF.match(ref) or ".." in ref:
            return None
        commit = (_small_text(git / ref) or "").removeprefix("ref: ").strip() or _packed_ref(git, ref)
    return commit if commit and _SHA.match(commit) else None


def _packed_ref(git: Path, ref: str) -> str | None:
    for line in (_small_text(git / "packed-refs") or "").split("\n"):
        match = re.match(r"^([0-9a-f]{40}) (.+)$", line)
        if match and match.group(2).strip() == ref:
            return match.group(1)
    return None


def _small_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.stat().st_size < 1024 * 1024 else None
    except OSError:
        return None


class TarballTree(PackageTree):
    """The members of a `.tgz` under its root folder (`package/`), as npm unpacks it to read them."""

    def __init__(self, path: Path, members: list[tarfile.TarInfo]):
        self.path = path
        self.files: dict[str, str] = {}  # relative path → member name, for regular files
        self.folders: set[str] = {""}
        for member in members:
            parts = PurePosixPath(member.name).parts[1:]
            relative = "/".join(parts)
            if not relative:
                continue
            self.folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
            if member.isdir():
                self.folders.add(relative)
            elif member.isfile() and member.size <= MAX_READ_BYTES:
                self.files[relative] = member.name

    def entries(self, folder: str) -> list[tuple[str, bool]] | None:
        folder = folder.strip("/")
        if folder not in self.folders:
            return None
        prefix = f"{folder}/" if folder else ""
        names = {
            path[len(prefix) :].split("/", 1)[0]
            for path in (*self.files, *self.folders)
            if path.startswith(prefix) and path != folder
        }
        return _glob_order([(name, _join(folder, name) in self.folders) for name in names])

    def exists(self, path: str) -> bool:
        path = str(PurePosixPath(path)).strip("/") if path not in ("", ".") else ""
        return path in self.files or path in self.folders

    def read_text(self, path: str) -> str | None:
        member = self.files.get(str(PurePosixPath(path)))
        if member is None:
            return None
        with tarfile.open(self.path, mode="r:gz") as archive:
            handle = archive.extractfile(member)
            return handle.read().decode("utf-8", errors="replace") if handle else None

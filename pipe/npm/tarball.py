"""The package tarball: written like `npm pack` writes it, and read back for content comparison.

Writing: every file under `package/`, in the order given (npm's order), regular-file entries only
(no directory entries, as npm), the fixed mtime npm uses (1985-10-26T08:15:00Z, because zip tools
choke on the Unix epoch), uid/gid 0 and no user/group names, the modes chosen by the packlist,
then gzip with no file name and a zero timestamp — so the same input gives the same bytes.
File contents are streamed from disk in chunks; only `package.json` comes from memory, because
the publisher may have rewritten its version.

Reading (`tarball_digests`): the SHA-512 of every file's contents, keyed by its path inside the
package, to compare two tarballs by content rather than by gzip bytes (another packer's gzip
output differs for identical files).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pipe.errors import InputError
from pipe.npm.manifest import Dist
from pipe.npm.packlist import PackFile

NPM_MTIME = 499162500  # 1985-10-26T08:15:00Z
PREFIX = "package/"
CHUNK = 1024 * 1024
# npm compresses at level 9. Up to LARGE_PACKAGE bytes we do the same (smallest tarball, and the
# time is negligible); above it level 1, which is several times faster and only a few percent
# bigger — a 100 MB package would otherwise spend seconds in zlib. The choice depends only on the
# input, so the output stays deterministic.
SMALL_PACKAGE_LEVEL = 9
LARGE_PACKAGE_LEVEL = 1
LARGE_PACKAGE = 16 * 1024 * 1024


def gzip_level(files: list[PackFile]) -> int:
    return LARGE_PACKAGE_LEVEL if sum(packed.size for packed in files) > LARGE_PACKAGE else SMALL_PACKAGE_LEVEL


def _header(path: str, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(PREFIX + path)
    info.size = size
    info.mode = mode
    info.mtime = NPM_MTIME
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _SizeChecked(io.RawIOBase):
    """Reads a file for the tarball and notices when it changed size since it was listed."""

    def __init__(self, path: Path, display: str, expected: int):
        self._file = path.open("rb")
        self._display = display
        self._left = expected

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        if count == 0 and self._left > 0:
            raise InputError(
                f"{self._display} changed while it was being packed: run the pipe again once it is stable."
            )
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def write_tarball(
    folder: Path, files: list[PackFile], manifest_bytes: bytes, out: BinaryIO, level: int | None = None
) -> None:
    """Write the gzip tarball of `files` (from `folder`) to `out`; package.json is `manifest_bytes`.
    `level` overrides the gzip level chosen from the package size."""
    level = gzip_level(files) if level is None else level
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=level, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK) as archive,
    ):
        for packed in files:
            if packed.path == "package.json":
                archive.addfile(_header(packed.path, len(manifest_bytes), packed.mode), io.BytesIO(manifest_bytes))
                continue
            _add_from_disk(archive, Path(folder), packed)


def _add_from_disk(archive: tarfile.TarFile, folder: Path, packed: PackFile) -> None:
    path = packed.origin or folder / packed.path
    try:
        size = path.stat().st_size
        source = _SizeChecked(path, packed.path, size)
    except OSError as exc:
        raise InputError(
            f"cannot read {packed.path} in the package folder ({exc.strerror}): fix its permissions."
        ) from exc
    with source:
        try:
            archive.addfile(_header(packed.path, size, packed.mode), io.BufferedReader(source, CHUNK))
        except OSError as exc:
            raise InputError(
                f"cannot read {packed.path} in the package folder ({exc}): fix the file and retry."
            ) from exc


def tarball_digests(tgz: BinaryIO) -> dict[str, str]:
    """Path inside the package (first component stripped) -> sha512 hex of its contents."""
    digests: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=gzip.GzipFile(fileobj=tgz, mode="rb"), mode="r|") as archive:
            for member in archive:
                if member.isdir():
                    continue  # some packers write directory entries; they carry no content
                path = _package_path(member)
                source = archive.extractfile(member)
                digests[path] = _sha512(source) if source else hashlib.sha512(b"").hexdigest()
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise InputError(f"the tarball is not a valid gzip file ({exc}): pass a .tgz written by `npm pack`.") from exc
    except tarfile.TarError as exc:
        raise InputError(f"the tarball is not a valid tar archive ({exc}): pass a .tgz written by `npm pack`.") from exc
    return digests


def _package_path(member: tarfile.TarInfo) -> str:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or len(parts) < 2:
        raise InputError(
            f"the tarball holds an entry with an unsafe path ({name!r}): "
            "a package tarball keeps every file under package/; repack it with `npm pack`."
        )
    if not member.isreg():
        raise InputError(
            f"the tarball holds {name!r}, which is not a regular file (link or device): "
            "npm packages contain regular files only; repack it with `npm pack`."
        )
    return "/".join(parts[1:])


def _sha512(source: BinaryIO) -> str:
    digest = hashlib.sha512()
    while chunk := source.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def compute_dist(path: Path) -> Dist:
    """sha512 (integrity) and sha1 (shasum) of a tarball, in one pass over the file."""
    sha512, sha1, size = hashlib.sha512(), hashlib.sha1(), 0  # noqa: S324 - npm's legacy shasum is sha1
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha512.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
    return Dist(f"sha512-{base64.b64encode(sha512.digest()).decode('ascii')}", sha1.hexdigest(), size)

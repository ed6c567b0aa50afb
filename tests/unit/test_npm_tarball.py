"""The deterministic tarball writer and the content digests used to compare tarballs."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from pipe.errors import InputError
from pipe.npm.packlist import PackFile, list_package_files
from pipe.npm.tarball import NPM_MTIME, tarball_digests, write_tarball

MANIFEST = b'{"name":"demo","version":"2.0.0"}\n'


@pytest.fixture
def package(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    (folder / "lib").mkdir(parents=True)
    (folder / "package.json").write_text('{"name":"demo","version":"1.0.0"}\n')
    (folder / "lib" / "index.js").write_text("module.exports = 1\n")
    (folder / "cli.js").write_text("#!/usr/bin/env node\n")
    os.chmod(folder / "cli.js", 0o755)  # noqa: S103 - an executable is what is being packed
    return folder


def pack(folder: Path, manifest: bytes = MANIFEST) -> bytes:
    files = list_package_files(folder, {"name": "demo", "version": "1.0.0"})
    out = io.BytesIO()
    write_tarball(folder, files, manifest, out)
    return out.getvalue()


def test_entries_headers_and_manifest_override(package: Path) -> None:
    data = pack(package)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ["package/cli.js", "package/lib/index.js", "package/package.json"]
        for member in members:
            assert member.isreg()
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (NPM_MTIME, 0, 0, "", "")
        assert [m.mode for m in members] == [0o755, 0o644, 0o644]
        assert archive.extractfile("package/package.json").read() == MANIFEST
        assert archive.extractfile("package/lib/index.js").read() == b"module.exports = 1\n"


def test_gzip_header_has_no_name_and_no_timestamp(package: Path) -> None:
    data = pack(package)
    assert data[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no FNAME flag
    assert data[4:8] == b"\0\0\0\0"  # mtime 0


def test_same_input_gives_same_bytes(package: Path) -> None:
    first = pack(package)
    os.utime(package / "lib" / "index.js", (0, 1_700_000_000))
    assert pack(package) == first
    assert pack(package, MANIFEST.replace(b"2.0.0", b"2.0.1")) != first


def test_long_paths_survive(tmp_path: Path) -> None:
    folder = tmp_path / "long"
    deep = folder / ("d" * 60) / ("e" * 60) / ("f" * 60)
    deep.mkdir(parents=True)
    (deep / "file.js").write_text("x")
    (folder / "package.json").write_text("{}")
    out = io.BytesIO()
    write_tarball(folder, list_package_files(folder, {"name": "long", "version": "1.0.0"}), b"{}", out)
    out.seek(0)
    assert f"{'d' * 60}/{'e' * 60}/{'f' * 60}/file.js" in tarball_digests(out)


def test_large_files_are_streamed_not_held_in_memory(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "package.json").write_text("{}")
    with (folder / "blob.bin").open("wb") as blob:
        for _ in range(24):
            blob.write(os.urandom(1024 * 1024))
    files = list_package_files(folder, {"name": "big", "version": "1.0.0"})

    class Sink(io.RawIOBase):
        written = 0

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            self.written += len(data)
            return len(data)

    sink = Sink()
    tracemalloc.start()
    write_tarball(folder, files, b"{}", sink)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.written > 24 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes: the writer holds the file in memory"


def test_a_file_that_shrinks_while_packing_is_reported(package: Path) -> None:
    files = [PackFile("lib/index.js", 0o644, 19), PackFile("package.json", 0o644, 10)]
    target = package / "lib" / "index.js"
    original_open = Path.open

    def shrinking_open(self, *args, **kwargs):
        handle = original_open(self, *args, **kwargs)
        if self == target:
            os.truncate(target, 0)  # truncated after the size was taken, before the read
        return handle

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", shrinking_open)
        with pytest.raises(InputError) as caught:
            write_tarball(package, files, MANIFEST, io.BytesIO())
    assert str(caught.value) == "lib/index.js changed while it was being packed: run the pipe again once it is stable."


def test_missing_file_is_an_input_error(package: Path) -> None:
    with pytest.raises(InputError) as caught:
        write_tarball(package, [PackFile("gone.js", 0o644, 1)], MANIFEST, io.BytesIO())
    assert (
        str(caught.value)
        == "cannot read gone.js in the package folder (No such file or directory): fix its permissions."
    )


# --- digests ----------------------------------------------------------------------------------------


def tgz(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    raw.seek(0)
    return raw


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_digests_strip_the_first_component_and_skip_directories(package: Path) -> None:
    ours = tarball_digests(io.BytesIO(pack(package)))
    assert ours["lib/index.js"] == hashlib.sha512(b"module.exports = 1\n").hexdigest()
    assert set(ours) == {"cli.js", "lib/index.js", "package.json"}
    other = tgz((entry("pkg/", tarfile.DIRTYPE), None), (entry("pkg/a.js"), b"a"))
    assert tarball_digests(other) == {"a.js": hashlib.sha512(b"a").hexdigest()}


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (
            (entry("/etc/passwd"), b"x"),
            "the tarball holds an entry with an unsafe path ('/etc/passwd'): a package tarball keeps every file "
            "under package/; repack it with `npm pack`.",
        ),
        (
            (entry("package/../../x"), b"x"),
            "the tarball holds an entry with an unsafe path ('package/../../x'): a package tarball keeps every "
            "file under package/; repack it with `npm pack`.",
        ),
        (
            (entry("package/link", tarfile.SYMTYPE, "/etc/passwd"), None),
            "the tarball holds 'package/link', which is not a regular file (link or device): npm packages "
            "contain regular files only; repack it with `npm pack`.",
        ),
        (
            (entry("package/hard", tarfile.LNKTYPE, "package/a"), None),
            "the tarball holds 'package/hard', which is not a regular file (link or device): npm packages "
            "contain regular files only; repack it with `npm pack`.",
        ),
    ],
)
def test_digests_reject_unsafe_entries(member, message: str) -> None:
    with pytest.raises(InputError) as caught:
        tarball_digests(tgz(member))
    assert str(caught.value) == message


def test_digests_reject_non_gzip_and_non_tar_input() -> None:
    with pytest.raises(InputError) as caught:
        tarball_digests(io.BytesIO(b"PK\x03\x04 this is a zip"))
    assert str(caught.value).startswith("the tarball is not a valid gzip file (")
    assert str(caught.value).endswith("): pass a .tgz written by `npm pack`.")
    with pytest.raises(InputError) as caught:
        tarball_digests(io.BytesIO(gzip.compress(b"not a tar archive at all" * 40)))
    assert str(caught.value).startswith("the tarball is not a valid tar archive (")


def test_gzip_level_is_npms_for_small_packages_and_fast_for_large_ones() -> None:
    from pipe.npm.tarball import gzip_level

    assert gzip_level([PackFile("a.js", 0o644, 1000)]) == 9
    assert gzip_level([PackFile("a.bin", 0o644, 10 * 1024 * 1024), PackFile("b.bin", 0o644, 10 * 1024 * 1024)]) == 1

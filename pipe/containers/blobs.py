"""Blobs as byte ranges of files on disk: what an archive's layer is, what a compressed layer
becomes, and what the registry client uploads. Below the archive reader, the compressor and the
client alike, so that none of them imports another for these types.

A blob read from an archive can be damaged (or made to lie): `BlobCheck` says what its bytes must
hash to, its digest and, for a layer, its uncompressed `diff_id` as the image config lists it;
`Blob.open` checks both while the bytes stream to the registry, and a mismatch ends the read with
an `InputError`, before any manifest names the blob. Digests are also checked for their form
(`algorithm:hex` of the algorithm's length) before anything uses them as a path or in a URL.
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipe.errors import InputError

READ_BLOCK = 1 << 20
# The digest algorithms of the OCI image spec, with the length of their hex digest.
DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")


def is_digest(value: object) -> bool:
    return isinstance(value, str) and DIGEST.fullmatch(value) is not None


def shown(value: object) -> str:
    """A value from outside, printable on one line and short (it may hold anything)."""
    text = ascii(value) if not isinstance(value, str) else ascii(value)[1:-1]
    return text if len(text) <= 80 else text[:77] + "..."


def hasher(digest: str):
    """A fresh hash object for the algorithm of `digest` (sha256 or sha512)."""
    return hashlib.new(digest.partition(":")[0])


@dataclass(frozen=True)
class BlobSource:
    """`size` bytes of `path` from `offset` on: a blob inside an archive or a file of a folder."""

    path: Path
    offset: int
    size: int

    def open(self) -> BlobReader:
        return BlobReader(self)

    def open_with(self, on_read) -> BlobReader:
        """A reader that reports every block it reads to `on_read(count)` (progress)."""
        return BlobReader(self, on_read)

    def read_all(self) -> bytes:
        with self.open() as reader:
            return reader.read()


class BlobReader(io.RawIOBase):
    """A read-only file over a `BlobSource`, with a length (so requests sends Content-Length and
    streams it) and an optional callback for every block read (progress)."""

    def __init__(self, source: BlobSource, on_read=None):
        super().__init__()
        self.source = source
        self.file = open(source.path, "rb")  # closed with the reader
        self.file.seek(source.offset)
        self.position = 0
        self.on_read = on_read

    def __len__(self) -> int:
        return self.source.size - self.position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            position = self.source.size + position
        elif whence == io.SEEK_CUR:
            position = self.position + position
        self.position = max(0, min(position, self.source.size))
        self.file.seek(self.source.offset + self.position)
        return self.position

    def read(self, size: int = -1) -> bytes:
        left = self.source.size - self.position
        size = left if size is None or size < 0 else min(size, left)
        data = self.file.read(size) if size else b""
        self.position += len(data)
        if data and self.on_read:
            self.on_read(len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.file.close()
        super().close()


@dataclass(frozen=True)
class BlobCheck:
    """What a blob's bytes must be: `digest` of the stored bytes; `diff_id` of the bytes once
    uncompressed (`compression` "gzip"; "" when stored uncompressed; None when the pipe cannot
    uncompress them, so only the digest is checked); `name` says which blob for the message."""

    digest: str
    diff_id: str | None
    compression: str | None
    name: str

    def failure(self, stored: str, unpacked: str | None) -> InputError | None:
        """The error for what the bytes hashed to, or None when they are what they claim."""
        if stored != self.digest:
            return InputError(
                f"{self.name} is damaged: its bytes hash to {stored}, not to the digest {self.digest} it is stored "
                "under: re-create the image archive; nothing was tagged."
            )
        if unpacked is not None and self.diff_id is not None and unpacked != self.diff_id:
            return InputError(
                f"{self.name} is damaged: it unpacks to {unpacked}, but the image config lists {self.diff_id} for "
                "it (pulls would fail): re-create the image archive; nothing was tagged."
            )
        return None


class CheckedReader(BlobReader):
    """A `BlobReader` that hashes what it reads (and what it unpacks to) and raises the check's
    error at the end of the bytes. Read from the start again (a retried request), it starts over."""

    def __init__(self, source: BlobSource, check: BlobCheck, on_read=None):
        super().__init__(source, on_read)
        self.check = check
        self.restart()

    def restart(self) -> None:
        self.stored = hasher(self.check.digest)
        self.unpacked = (
            hasher(self.check.diff_id) if self.check.diff_id and self.check.compression is not None else None
        )
        self.gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.check.compression == "gzip" else None
        self.hashed = 0

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        position = super().seek(position, whence)
        if position == 0:
            self.restart()
        return position

    def read(self, size: int = -1) -> bytes:
        start = self.position
        data = super().read(size)
        if start == self.hashed:  # a read in order: anything else is not hashed (and not checked)
            self.take(data)
        return data

    def take(self, data: bytes) -> None:
        self.stored.update(data)
        if self.unpacked is not None:
            self.unpack(data) if self.gunzip else self.unpacked.update(data)
        self.hashed += len(data)
        if self.hashed == self.source.size:
            self.finish()

    def unpack(self, data: bytes) -> None:
        """Gunzip `data` into the diff hash a block at a time (memory stays flat even for a gzip
        bomb); several gzip members one after another are one layer, as for containerd."""
        try:
            while data:
                self.unpacked.update(self.gunzip.decompress(data, READ_BLOCK))
                if self.gunzip.eof:
                    data, self.gunzip = self.gunzip.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    data = self.gunzip.unconsumed_tail
        except zlib.error as error:
            raise InputError(
                f"{self.check.name} is damaged: its bytes are not gzip as its media type says ({error}): re-create "
                "the image archive; nothing was tagged."
            ) from None

    def finish(self) -> None:
        unpacked = None
        if self.unpacked is not None:
            if self.gunzip is not None:
                self.unpacked.update(self.gunzip.flush())
            unpacked = f"{self.check.diff_id.partition(':')[0]}:{self.unpacked.hexdigest()}"
        stored = f"{self.check.digest.partition(':')[0]}:{self.stored.hexdigest()}"
        error = self.check.failure(stored, unpacked)
        if error is not None:
            raise error


@dataclass(frozen=True)
class Blob:
    """Bytes ready to upload: where they are, their digest and size, their media type, and what
    to check them against while they are read (None: the pipe made them, nothing to check)."""

    source: BlobSource
    digest: str
    size: int
    media_type: str
    check: BlobCheck | None = None

    def open(self, on_read=None) -> BlobReader:
        """A reader of the bytes for an upload, checking them as they pass when there is a check."""
        if self.check is None:
            return BlobReader(self.source, on_read)
        return CheckedReader(self.source, self.check, on_read)

    def verify(self) -> None:
        """Read the whole blob once to check it (for an upload that does not read it in order)."""
        if self.check is not None:
            with self.open() as reader:
                while reader.read(READ_BLOCK):
                    pass

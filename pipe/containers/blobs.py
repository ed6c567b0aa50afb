"""Blobs as byte ranges of files on disk: what an archive's layer is, what a compressed layer
becomes, and what the registry client uploads. Below the archive reader, the compressor and the
client alike, so that none of them imports another for these types."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

READ_BLOCK = 1 << 20


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
class Blob:
    """Bytes ready to upload: where they are, their digest and size, their media type."""

    source: BlobSource
    digest: str
    size: int
    media_type: str

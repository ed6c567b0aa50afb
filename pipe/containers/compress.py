"""Layer compression for native pushes: deterministic, only where it pays, never twice.

- Deterministic: gzip with a fixed header (mtime 0, no file name, OS "unknown") around zlib's raw
  deflate at a given level (chosen for the link by `containers.link`), so the same layer at the
  same level always gives the same bytes and digest, and a re-push finds its blobs already in
  the registry.
- Never twice: layers stored compressed (gzip, zstd) are pushed as they are.
- Only where it pays: a few samples of the layer are deflated first. Layers that barely shrink
  (random data, media, archives, already-compressed files) are pushed uncompressed, which the
  OCI media types allow (`application/vnd.oci.image.layer.v1.tar`): zlib manages ~35 MB/s on
  such data, slower than most uplinks, and the saving is a few percent. Text and binaries
  shrink 2-5x, where compression is worth its CPU on any network slower than ~1 Gbit/s.
- Parallel: zlib and hashlib release the GIL, so layers compress in parallel threads.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from pipe.containers.archive import Layer
from pipe.containers.blobs import READ_BLOCK, Blob, BlobSource
from pipe.containers.link import DEFAULT_LEVEL
from pipe.containers.mediatypes import DOCKER_LAYER, OCI_LAYER

# The samples that decide whether a layer is worth compressing are deflated at level 1: the
# quickest look. The level of the layer itself is chosen for the link (`containers.link`).
SAMPLE_LEVEL = 1
# Compress a layer only if its samples shrink to at most this fraction of their size.
WORTHWHILE_RATIO = 0.85
SAMPLE_SIZE = 1 << 20
SAMPLES = 4
GZIP_MEDIA_TYPES = {OCI_LAYER: OCI_LAYER + "+gzip", DOCKER_LAYER: DOCKER_LAYER + ".gzip"}
# Magic numbers of compressed streams, for layers whose media type says "uncompressed".
COMPRESSED_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")
GZIP_HEADER = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"


def sample_ratio(source: BlobSource) -> float:
    """Compressed/original size of a few evenly spread samples (the whole layer if small)."""
    if source.size <= SAMPLE_SIZE * SAMPLES:
        offsets = [0]
        length = source.size
    else:
        step = (source.size - SAMPLE_SIZE) // (SAMPLES - 1)
        offsets = [i * step for i in range(SAMPLES)]
        length = SAMPLE_SIZE
    raw = packed = 0
    with source.open() as reader:
        for offset in offsets:
            reader.seek(offset)
            data = reader.read(length)
            raw += len(data)
            packed += len(zlib.compress(data, SAMPLE_LEVEL))
    return packed / raw if raw else 1.0


def looks_compressed(source: BlobSource) -> bool:
    with source.open() as reader:
        head = reader.read(4)
    return any(head.startswith(magic) for magic in COMPRESSED_MAGIC)


def compression_pays(layer: Layer) -> bool:
    if not layer.uncompressed or layer.source.size == 0 or looks_compressed(layer.source):
        return False
    return sample_ratio(layer.source) <= WORTHWHILE_RATIO


def gzip_layer(
    source: BlobSource, target: Path, on_read=None, algorithm: str = "sha256", level: int = DEFAULT_LEVEL
) -> tuple[str, int, str]:
    """Deterministic gzip of `source` into `target` at `level` (the same bytes for the same layer
    and level): its digest and size, and the digest of what was read (`algorithm`), which the
    layer is checked against on the way."""
    digest = hashlib.sha256()
    read = hashlib.new(algorithm)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = 0
    size = 0

    def write(out, data: bytes) -> None:
        nonlocal size
        if data:
            out.write(data)
            digest.update(data)
            size += len(data)

    with source.open() as reader, open(target, "wb") as out:
        write(out, GZIP_HEADER)
        while block := reader.read(READ_BLOCK):
            crc = zlib.crc32(block, crc)
            read.update(block)
            write(out, deflate.compress(block))
            if on_read:
                on_read(len(block))
        write(out, deflate.flush())
        write(out, struct.pack("<II", crc & 0xFFFFFFFF, source.size & 0xFFFFFFFF))
    return "sha256:" + digest.hexdigest(), size, f"{algorithm}:{read.hexdigest()}"


def sha256_of(source: BlobSource) -> str:
    digest = hashlib.sha256()
    with source.open() as reader:
        while block := reader.read(READ_BLOCK):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def prepare_layer(
    layer: Layer, scratch: Path, on_read=None, level: int = DEFAULT_LEVEL, cpu: AbstractContextManager | None = None
) -> Blob:
    """The blob to push for `layer`: gzip'd when that pays, else the stored bytes as they are.
    Either way the layer's bytes are checked against its digest and diff id as they are read (a
    damaged layer is an `InputError`): here while they are compressed, else while they upload.
    `cpu` is held while compressing (a turn among the push's layers), not while deciding."""
    check = layer.check
    if compression_pays(layer):
        target = scratch / f"{layer.diff_id or id(layer)}.gz".replace(":", "-")
        algorithm = (check.digest if check else "sha256:").partition(":")[0]
        with cpu or nullcontext():
            digest, size, read = gzip_layer(layer.source, target, on_read, algorithm, level)
        error = check.failure(read, read) if check else None
        if error is not None:
            raise error
        return Blob(BlobSource(target, 0, size), digest, size, GZIP_MEDIA_TYPES[layer.media_type])
    digest = layer.digest or sha256_of(layer.source)
    return Blob(layer.source, digest, layer.source.size, layer.media_type, check)

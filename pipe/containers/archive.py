"""Images on disk, read without a Docker engine: `docker save` tarballs (the legacy layout with
`manifest.json`, and the OCI-layout variant of Docker 25+), OCI image layout folders and their
tars (kaniko, buildah, jib, bazel, skopeo …), optionally gzip-compressed as a whole.

Nothing is extracted: a layer is a byte range of the archive (`BlobSource`), read when it is
compressed or uploaded, so memory stays flat whatever the image size. An archive compressed as a
whole is decompressed once into a temporary file, because tar members need random access.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipe.errors import InputError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# Layers stored uncompressed: the only ones the pipe may compress.
UNCOMPRESSED_LAYERS = (OCI_LAYER, DOCKER_LAYER)
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


@dataclass
class Layer:
    """One layer as the archive stores it. `digest` is the stored bytes' digest (for an
    uncompressed layer also its diff id); `diff_id` is known for uncompressed layers and from the
    image config."""

    source: BlobSource
    media_type: str
    digest: str | None
    diff_id: str | None
    descriptor: dict = field(default_factory=dict)  # the original descriptor (annotations …)

    @property
    def uncompressed(self) -> bool:
        return self.media_type in UNCOMPRESSED_LAYERS


@dataclass
class ImageManifest:
    """One image (one platform): its config bytes, its layers, and the manifest as archived
    (`raw`, None for a legacy `docker save`, where the pipe writes the manifest)."""

    config: bytes
    config_media_type: str
    layers: list[Layer]
    media_type: str = OCI_MANIFEST
    raw: bytes | None = None
    platform: dict | None = None

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def diff_ids(self) -> list[str]:
        return list(json.loads(self.config).get("rootfs", {}).get("diff_ids", []))


@dataclass
class ArchivedImage:
    """What an archive holds: one image, or several platforms of one image (`index` set)."""

    manifests: list[ImageManifest]
    kind: str  # "docker save", "OCI layout"
    index: dict | None = None  # the archived index (annotations), when multi-platform
    index_media_type: str = OCI_INDEX
    index_raw: bytes | None = None  # its bytes, pushed as they are when no manifest changed

    @property
    def multi_platform(self) -> bool:
        return self.index is not None


# --- opening ---------------------------------------------------------------------------------


@contextmanager
def open_archive(path: Path, label: str = "IMAGE_ARCHIVE") -> Iterator[ArchivedImage]:
    """The image in `path` (a tar, a gzip'd tar, or an OCI layout folder); temporary files made
    along the way are removed on exit."""
    if path.is_dir():
        yield read_layout(FolderFiles(path), label)
        return
    if not path.is_file():
        raise InputError(
            f"{label} '{path}' does not exist: set {label} to a `docker save` tarball or an OCI image "
            "layout (folder or tar), relative to the repository."
        )
    with tempfile.TemporaryDirectory(prefix="bbpp-archive-") as scratch:
        tar_path = gunzip_if_needed(path, Path(scratch))
        try:
            files = TarFiles(tar_path)
        except tarfile.TarError as error:
            raise InputError(
                f"{label} '{path}' is not a tar archive ({error}): set {label} to a `docker save` tarball "
                "or an OCI image layout."
            ) from None
        yield read_layout(files, label)


def gunzip_if_needed(path: Path, scratch: Path) -> Path:
    with open(path, "rb") as head:
        if head.read(2) != b"\x1f\x8b":
            return path
    target = scratch / "image.tar"
    with gzip.open(path, "rb") as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, READ_BLOCK)
    return target


class FolderFiles:
    """The files of an OCI layout folder, by their path in the layout."""

    def __init__(self, root: Path):
        self.root = root

    def source(self, name: str) -> BlobSource | None:
        path = self.root / name
        if not path.is_file():
            return None
        return BlobSource(path, 0, path.stat().st_size)


class TarFiles:
    """The regular files of a tar (symlinks followed), by their normalised path."""

    def __init__(self, path: Path):
        self.path = path
        self.members: dict[str, tarfile.TarInfo] = {}
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                self.members[normalise(member.name)] = member

    def source(self, name: str, depth: int = 0) -> BlobSource | None:
        member = self.members.get(normalise(name))
        if member is None or depth > 8:
            return None
        if member.issym() or member.islnk():
            target = member.linkname if member.islnk() else str(PurePosixPath(name).parent / member.linkname)
            return self.source(target, depth + 1)
        if not member.isfile():
            return None
        return BlobSource(self.path, member.offset_data, member.size)


def normalise(name: str) -> str:
    parts: list[str] = []
    for part in PurePosixPath(name).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def read_layout(files, label: str) -> ArchivedImage:
    """`index.json` (OCI layout, also in Docker 25+ saves) wins; else the legacy `manifest.json`."""
    if files.source("index.json") is not None and files.source("oci-layout") is not None:
        return read_oci_layout(files, label)
    if files.source("manifest.json") is not None:
        return read_docker_save(files, label)
    raise InputError(
        f"{label} holds neither an OCI layout (index.json) nor a `docker save` manifest (manifest.json): "
        f"point {label} at the output of `docker save` or an OCI image layout."
    )


def read_json(files, name: str, label: str) -> object:
    source = files.source(name)
    if source is None:
        raise InputError(f"{label} is incomplete: {name} is missing: re-create the archive.")
    try:
        return json.loads(source.read_all())
    except ValueError as error:
        raise InputError(f"{label} is damaged: {name} is not JSON ({error}): re-create the archive.") from None


# --- legacy `docker save` ----------------------------------------------------------------------


def read_docker_save(files, label: str) -> ArchivedImage:
    entries = read_json(files, "manifest.json", label)
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{label}'s manifest.json lists no image: re-create it with `docker save <image>`.")
    if len(entries) > 1:
        names = ", ".join(" ".join(entry.get("RepoTags") or ["<untagged>"]) for entry in entries)
        raise InputError(
            f"{label} holds {len(entries)} images ({names}): save exactly one image, "
            "e.g. docker save my-image:tag -o image.tar."
        )
    entry = entries[0]
    config_source = files.source(entry["Config"])
    if config_source is None:
        raise InputError(f"{label} is incomplete: {entry['Config']} is missing: re-create the archive.")
    config = config_source.read_all()
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(entry["Layers"]):
        raise InputError(f"{label} is damaged: the config lists a different number of layers than manifest.json.")
    layers = []
    for name, diff_id in zip(entry["Layers"], diff_ids, strict=True):
        source = files.source(name)
        if source is None:
            raise InputError(f"{label} is incomplete: layer {name} is missing: re-create the archive.")
        # A legacy save stores layers uncompressed: their digest is the diff id.
        layers.append(Layer(source, OCI_LAYER, diff_id, diff_id))
    return ArchivedImage([ImageManifest(config, OCI_CONFIG, layers)], kind="docker save")


# --- OCI image layout --------------------------------------------------------------------------


def blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def read_blob(files, digest: str, label: str) -> tuple[bytes, BlobSource]:
    source = files.source(blob_path(digest))
    if source is None:
        raise InputError(f"{label} is incomplete: blob {digest} is missing: re-create the archive.")
    return source.read_all(), source


def read_oci_layout(files, label: str) -> ArchivedImage:
    index = read_json(files, "index.json", label)
    descriptors = [d for d in index.get("manifests") or [] if d.get("mediaType") in INDEX_TYPES + MANIFEST_TYPES]
    if not descriptors:
        raise InputError(f"{label}'s index.json lists no image manifest: re-create the archive.")
    if len(descriptors) == 1 and descriptors[0]["mediaType"] in INDEX_TYPES:
        raw, _ = read_blob(files, descriptors[0]["digest"], label)
        inner = json.loads(raw)
        children = [d for d in inner.get("manifests") or [] if d.get("mediaType") in MANIFEST_TYPES]
        manifests = [read_oci_manifest(files, d, label) for d in children]
        return ArchivedImage(
            manifests, "OCI layout", index=inner, index_media_type=descriptors[0]["mediaType"], index_raw=raw
        )
    if len(descriptors) == 1:
        return ArchivedImage([read_oci_manifest(files, descriptors[0], label)], "OCI layout")
    if all(d.get("platform") for d in descriptors):
        manifests = [read_oci_manifest(files, d, label) for d in descriptors]
        return ArchivedImage(manifests, "OCI layout", index={"schemaVersion": 2, "mediaType": OCI_INDEX})
    names = ", ".join(
        (d.get("annotations") or {}).get("org.opencontainers.image.ref.name", d["digest"][:19]) for d in descriptors
    )
    raise InputError(
        f"{label} holds {len(descriptors)} images ({names}): save exactly one image (or one multi-platform index)."
    )


def read_oci_manifest(files, descriptor: dict, label: str) -> ImageManifest:
    raw, _ = read_blob(files, descriptor["digest"], label)
    manifest = json.loads(raw)
    config, _ = read_blob(files, manifest["config"]["digest"], label)
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    layers = []
    for position, layer in enumerate(manifest.get("layers") or []):
        _, source = read_blob(files, layer["digest"], label)
        media_type = layer.get("mediaType", OCI_LAYER)
        diff_id = diff_ids[position] if position < len(diff_ids) else None
        layers.append(Layer(source, media_type, layer["digest"], diff_id, dict(layer)))
    return ImageManifest(
        config=config,
        config_media_type=manifest["config"].get("mediaType", OCI_CONFIG),
        layers=layers,
        media_type=manifest.get("mediaType") or descriptor.get("mediaType") or OCI_MANIFEST,
        raw=raw,
        platform=descriptor.get("platform"),
    )

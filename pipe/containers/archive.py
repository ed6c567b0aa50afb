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
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pipe.containers.blobs import READ_BLOCK, BlobCheck, BlobSource, hasher, is_digest, shown
from pipe.containers.mediatypes import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    REFERENCE_TYPE,
    UNCOMPRESSED_LAYERS,
)
from pipe.errors import InputError


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
    origin: str = "IMAGE_ARCHIVE"  # where it was read, for messages
    # Its digest was computed from its bytes as they were read (an engine export): no check left.
    verified: bool = False

    @property
    def uncompressed(self) -> bool:
        return self.media_type in UNCOMPRESSED_LAYERS

    @property
    def check(self) -> BlobCheck | None:
        """What the layer's bytes must hash to, checked while they are read for the push."""
        if self.digest is None or self.verified:
            return None
        name = f"layer {self.digest[:19]}… of {self.origin}"
        return BlobCheck(self.digest, self.diff_id, layer_compression(self.media_type), name)


def layer_compression(media_type: str) -> str | None:
    """How a layer's bytes unpack to its diff: "" stored as they are, "gzip", or None for a
    compression the pipe does not read (zstd), whose diff id is then left to the registry."""
    if media_type.endswith(("+gzip", ".gzip")):
        return "gzip"
    return None if "zstd" in media_type else ""


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
    annotations: dict | None = None  # the index descriptor's (an attestation's reference)

    @property
    def is_attestation(self) -> bool:
        return REFERENCE_TYPE in (self.annotations or {})

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def diff_ids(self) -> list[str]:
        return list(config_diff_ids(json.loads(self.config), "", "") or [])

    @property
    def base_hints(self) -> tuple[dict, dict]:
        """The config's labels and the manifest's annotations: where a builder may have named the
        base image."""
        labels = mapping(mapping(json.loads(self.config)).get("config")).get("Labels")
        annotations = mapping(json.loads(self.raw)).get("annotations") if self.raw else {}
        return mapping(labels), mapping(annotations)


def mapping(value: object) -> dict:
    """`value` when it is a JSON object, else an empty one (a field a hostile archive mistyped)."""
    return value if isinstance(value, dict) else {}


@dataclass
class ArchivedImage:
    """What an archive holds: one image, or several platforms of one image (`index` set)."""

    manifests: list[ImageManifest]
    kind: str  # "docker save", "OCI layout"
    index: dict | None = None  # the archived index (annotations), when multi-platform
    index_media_type: str = OCI_INDEX
    index_raw: bytes | None = None  # its bytes, pushed as they are when no manifest changed
    # The tags the layout names the image by (`org.opencontainers.image.ref.name`), for the log.
    ref_names: tuple[str, ...] = ()

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
    if not path.exists():
        raise InputError(
            f"{label} '{path}' does not exist: set {label} to a `docker save` tarball or an OCI image "
            "layout (folder or tar), relative to the repository."
        )
    if not path.is_file():
        raise InputError(
            f"{label} '{path}' is not a regular file or a folder (a device, a pipe or a socket): set {label} to a "
            "`docker save` tarball or an OCI image layout (folder or tar)."
        )
    with tempfile.TemporaryDirectory(prefix="bbpp-archive-") as scratch:
        tar_path = gunzip_if_needed(path, Path(scratch))
        try:
            files = tar_files(tar_path)
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


class ArchiveFiles:
    """The regular files of a tar by their normalised path, symlinks and hard links followed.
    An entry is the file's bytes (`BlobSource`) or, for a link, the path it points to."""

    def __init__(self, entries: dict[str, BlobSource | str | None]):
        self.entries = entries

    def source(self, name: str, depth: int = 0) -> BlobSource | None:
        entry = self.entries.get(normalise(name))
        if isinstance(entry, str):
            return self.source(entry, depth + 1) if depth < 8 else None
        return entry

    def total_size(self) -> int:
        return sum(entry.size for entry in self.entries.values() if isinstance(entry, BlobSource))


def tar_files(path: Path) -> ArchiveFiles:
    """A tar on disk: its files stay in place, as byte ranges of the tar."""
    entries: dict[str, BlobSource | str | None] = {}
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            source = BlobSource(path, member.offset_data, member.size) if member.isfile() else None
            entries[normalise(member.name)] = link_target(member) or source
    return ArchiveFiles(entries)


def read_tar_stream(stream: BinaryIO, scratch: Path, on_file: Callable[[str, BlobSource, str], None]) -> ArchiveFiles:
    """A tar read once from `stream` (an engine export): each regular file is copied into
    `scratch` as it passes and hashed on the way, and `on_file(name, source, digest)` hears of
    it at once, so its upload can start while the rest of the stream is still coming."""
    entries: dict[str, BlobSource | str | None] = {}
    for member, body in stream_members(stream):
        name = normalise(member.name)
        target = link_target(member)
        if target is not None or not member.isfile():
            entries[name] = target
            continue
        path = scratch / f"member-{len(entries)}"  # never the member's own name: it comes from outside
        digest = copy_hashing(body, path)
        entries[name] = BlobSource(path, 0, member.size)
        on_file(name, entries[name], digest)
    return ArchiveFiles(entries)


def stream_members(stream: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, BoundedReader]]:
    """The members of a tar stream with a reader over each one's bytes, read in one pass.

    `tarfile`'s own stream mode copies every byte several times through small buffers (a third
    of the time of reading a 300 MB export); here the bytes go from the stream to the caller.
    Headers are still parsed by `tarfile`; pax and GNU long-name headers apply to the member
    that follows them, as in `tarfile`."""
    pending: dict[str, str] = {}
    while True:
        block = read_exactly(stream, tarfile.BLOCKSIZE)
        if len(block) < tarfile.BLOCKSIZE:  # a whole tar ends with zero blocks: this one was cut
            raise tarfile.ReadError("the stream ended before the end of the archive")
        if block == bytes(tarfile.BLOCKSIZE):
            return
        member = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        if member.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            data = read_exactly(stream, member.size + padding(member.size))[: member.size]
            pending.update(extended_header(member.type, data))
            continue
        member.name = pending.get("path", member.name)
        member.linkname = pending.get("linkpath", member.linkname)
        member.size = int(pending.get("size", member.size))
        pending = {}
        # As in `tarfile`: regular files and unknown types carry data, links and folders none.
        carries_data = member.isreg() or member.type not in tarfile.SUPPORTED_TYPES
        body = BoundedReader(stream, member.size if carries_data else 0)
        yield member, body
        body.skip_rest()
        read_exactly(stream, padding(body.size))


def extended_header(kind: bytes, data: bytes) -> dict[str, str]:
    """What a pax header (`<length> <key>=<value>\n` records) or a GNU long name/link says;
    global pax headers apply to no member here."""
    if kind == tarfile.GNUTYPE_LONGNAME:
        return {"path": data.rstrip(b"\0").decode("utf-8", "surrogateescape")}
    if kind == tarfile.GNUTYPE_LONGLINK:
        return {"linkpath": data.rstrip(b"\0").decode("utf-8", "surrogateescape")}
    if kind == tarfile.XGLTYPE:
        return {}
    fields: dict[str, str] = {}
    position = 0
    while position < len(data):
        length_text, _, _ = data[position : position + 32].partition(b" ")
        if not length_text.isdigit() or int(length_text) <= 0:
            raise tarfile.HeaderError("malformed pax header")
        record = data[position : position + int(length_text)]
        key, _, value = record.partition(b" ")[2].rstrip(b"\n").partition(b"=")
        fields[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += int(length_text)
    return {key: value for key, value in fields.items() if key in ("path", "linkpath", "size")}


def padding(size: int) -> int:
    return -size % tarfile.BLOCKSIZE


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes, fewer only at the end of the stream (raw streams may return short reads)."""
    parts = []
    while size > 0:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


class BoundedReader:
    """The next `size` bytes of a stream, read at most once."""

    def __init__(self, stream: BinaryIO, size: int):
        self.stream = stream
        self.size = size
        self.left = size

    def read(self, count: int = -1) -> bytes:
        count = self.left if count is None or count < 0 else min(count, self.left)
        data = self.stream.read(count) if count else b""
        if count and not data:
            raise tarfile.ReadError("unexpected end of the stream")
        self.left -= len(data)
        return data

    def skip_rest(self) -> None:
        while self.left:
            self.read(READ_BLOCK)


def copy_hashing(source: BinaryIO, path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        while block := source.read(READ_BLOCK):
            digest.update(block)
            out.write(block)
    return "sha256:" + digest.hexdigest()


def link_target(member: tarfile.TarInfo) -> str | None:
    if member.islnk():
        return normalise(member.linkname)
    if member.issym():
        return normalise(str(PurePosixPath(member.name).parent / member.linkname))
    return None


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


def damaged(label: str, what: str) -> InputError:
    return InputError(f"{label} is damaged: {what}: re-create the archive.")


def parse_object(data: bytes, what: str, label: str) -> dict:
    """`data` as a JSON object; anything else (not JSON, nested beyond reason, not an object)
    is the archive's damage, named."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else f"{error}"
        raise damaged(label, f"{what} is not JSON ({shown(reason)})") from None
    if not isinstance(document, dict):
        raise damaged(label, f"{what} is not a JSON object")
    return document


def read_json(files, name: str, label: str) -> object:
    try:
        return json.loads(read_json_bytes(files, name, label))
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else f"{error}"
        raise damaged(label, f"{name} is not JSON ({shown(reason)})") from None


def checked_digest(value: object, what: str, label: str) -> str:
    """A digest from the archive, in the form the OCI spec allows, before it is used as a path
    (`sha256:../../x` would read outside the layout) or in a URL."""
    if not is_digest(value):
        raise damaged(
            label, f"{what} names the digest '{shown(value)}', which is not sha256:<64 hex digits> or sha512:<128>"
        )
    return str(value)


def config_diff_ids(config: dict, what: str, label: str) -> list[str] | None:
    """The config's `rootfs.diff_ids`, each checked; None when it lists none (not an image)."""
    diff_ids = mapping(config.get("rootfs")).get("diff_ids")
    if diff_ids is None:
        return None
    if not isinstance(diff_ids, list):
        raise damaged(label, f"{what}'s rootfs.diff_ids is not a list")
    return [checked_digest(diff_id, f"{what}'s rootfs.diff_ids", label) for diff_id in diff_ids]


# --- legacy `docker save` ----------------------------------------------------------------------


def read_docker_save(files, label: str) -> ArchivedImage:
    entry = docker_save_entry(read_json(files, "manifest.json", label), label)
    config_source = files.source(entry["Config"])
    if config_source is None:
        raise InputError(f"{label} is incomplete: {shown(entry['Config'])} is missing: re-create the archive.")
    config = config_source.read_all()
    what = f"the image config {shown(entry['Config'])}"
    diff_ids = config_diff_ids(parse_object(config, what, label), what, label) or []
    if len(diff_ids) != len(entry["Layers"]):
        raise InputError(f"{label} is damaged: the config lists a different number of layers than manifest.json.")
    layers = []
    for name, diff_id in zip(entry["Layers"], diff_ids, strict=True):
        source = files.source(name)
        if source is None:
            raise InputError(f"{label} is incomplete: layer {shown(name)} is missing: re-create the archive.")
        # A legacy save stores layers uncompressed: their digest is the diff id.
        layers.append(Layer(source, OCI_LAYER, diff_id, diff_id, origin=label))
    return ArchivedImage([ImageManifest(config, OCI_CONFIG, layers)], kind="docker save")


def docker_save_entry(entries: object, label: str) -> dict:
    """The one image of a `docker save` manifest.json, its fields checked."""
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{label}'s manifest.json lists no image: re-create it with `docker save <image>`.")
    if len(entries) > 1:
        names = ", ".join(" ".join(map(shown, mapping(entry).get("RepoTags") or ["<untagged>"])) for entry in entries)
        raise InputError(
            f"{label} holds {len(entries)} images ({names}): save exactly one image, "
            "e.g. docker save my-image:tag -o image.tar."
        )
    entry = mapping(entries[0])
    layers = entry.get("Layers")
    if (
        not isinstance(entry.get("Config"), str)
        or not isinstance(layers, list)
        or not all(isinstance(name, str) for name in layers)
    ):
        raise damaged(label, "manifest.json names no Config file and Layers list for its image")
    return entry


# --- OCI image layout --------------------------------------------------------------------------


def blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def blob_source(files, descriptor: object, what: str, label: str) -> tuple[str, BlobSource]:
    """The digest and the bytes' place of the blob a descriptor names (nothing read yet); its
    digest checked for form and its size, when given, against the file's."""
    descriptor = mapping(descriptor)
    digest = checked_digest(descriptor.get("digest"), what, label)
    source = files.source(blob_path(digest))
    if source is None:
        raise InputError(f"{label} is incomplete: blob {digest} is missing: re-create the archive.")
    size = descriptor.get("size")
    if isinstance(size, int) and size != source.size:
        raise damaged(label, f"blob {digest} holds {source.size} bytes where {what} says {size}")
    return digest, source


def read_blob(files, descriptor: object, what: str, label: str) -> bytes:
    """A small blob (an index, a manifest, a config) read whole and checked against its digest."""
    digest, source = blob_source(files, descriptor, what, label)
    data = source.read_all()
    found = hasher(digest)
    found.update(data)
    actual = f"{digest.partition(':')[0]}:{found.hexdigest()}"
    if actual != digest:
        raise damaged(label, f"blob {digest} ({what}) hashes to {actual}")
    return data


REF_NAME = "org.opencontainers.image.ref.name"


def image_descriptors(index: dict, label: str) -> list[dict]:
    """The images index.json lists, each once: a layout that names one image by several tags
    (`skopeo copy … oci:L:1.0.0`, then `oci:L:latest`) lists it once per tag."""
    listed = index.get("manifests") or []
    if not isinstance(listed, list):
        raise damaged(label, "index.json's manifests is not a list")
    unique: dict[str, dict] = {}
    for descriptor in map(mapping, listed):
        if descriptor.get("mediaType") in INDEX_TYPES + MANIFEST_TYPES:
            digest = checked_digest(descriptor.get("digest"), "index.json", label)
            unique.setdefault(digest, descriptor)
    return list(unique.values())


def ref_names(index: dict) -> tuple[str, ...]:
    names = (mapping(mapping(d).get("annotations")).get(REF_NAME) for d in index.get("manifests") or [])
    return tuple(dict.fromkeys(name for name in names if isinstance(name, str) and name))


def read_oci_layout(files, label: str) -> ArchivedImage:
    index = parse_object(read_json_bytes(files, "index.json", label), "index.json", label)
    descriptors = image_descriptors(index, label)
    names = ref_names(index)
    if not descriptors:
        raise InputError(f"{label}'s index.json lists no image manifest: re-create the archive.")
    if len(descriptors) == 1 and descriptors[0]["mediaType"] in INDEX_TYPES:
        raw = read_blob(files, descriptors[0], "index.json", label)
        inner = parse_object(raw, f"the image index {descriptors[0]['digest']}", label)
        children = [d for d in map(mapping, inner.get("manifests") or []) if d.get("mediaType") in MANIFEST_TYPES]
        manifests = [read_oci_manifest(files, d, label) for d in children]
        return ArchivedImage(
            manifests, "OCI layout", inner, descriptors[0]["mediaType"], index_raw=raw, ref_names=names
        )
    if len(descriptors) == 1:
        return ArchivedImage([read_oci_manifest(files, descriptors[0], label)], "OCI layout", ref_names=names)
    if all(d.get("platform") for d in descriptors):
        manifests = [read_oci_manifest(files, d, label) for d in descriptors]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX}
        return ArchivedImage(manifests, "OCI layout", index=index, ref_names=names)
    listed = ", ".join(shown(mapping(d.get("annotations")).get(REF_NAME, d["digest"][:19])) for d in descriptors)
    raise InputError(
        f"{label} holds {len(descriptors)} images ({listed}): save exactly one image (or one multi-platform index)."
    )


def read_json_bytes(files, name: str, label: str) -> bytes:
    source = files.source(name)
    if source is None:
        raise InputError(f"{label} is incomplete: {name} is missing: re-create the archive.")
    return source.read_all()


def read_oci_manifest(files, descriptor: dict, label: str) -> ImageManifest:
    raw = read_blob(files, descriptor, "index.json", label)
    what = f"the manifest {descriptor['digest']}"
    manifest = parse_object(raw, what, label)
    config_descriptor = mapping(manifest.get("config"))
    config = read_blob(files, config_descriptor, f"{what}'s config", label)
    diff_ids = config_diff_ids(parse_object(config, f"{what}'s config", label), f"{what}'s config", label)
    listed = manifest.get("layers") or []
    if not isinstance(listed, list) or (diff_ids is not None and len(diff_ids) != len(listed)):
        raise damaged(label, f"{what} lists {len(listed)} layers where its config lists {len(diff_ids or [])}")
    layers = []
    for position, layer in enumerate(map(mapping, listed)):
        digest, source = blob_source(files, layer, f"{what}'s layer {position + 1}", label)
        media_type = str(layer.get("mediaType") or OCI_LAYER)
        diff_id = diff_ids[position] if diff_ids is not None else None
        layers.append(Layer(source, media_type, digest, diff_id, dict(layer), origin=label))
    return ImageManifest(
        config=config,
        config_media_type=str(config_descriptor.get("mediaType") or OCI_CONFIG),
        layers=layers,
        media_type=str(manifest.get("mediaType") or descriptor.get("mediaType") or OCI_MANIFEST),
        raw=raw,
        platform=descriptor.get("platform"),
        annotations=descriptor.get("annotations"),
    )

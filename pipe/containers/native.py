"""The native push path of the container publisher: an image (an IMAGE_ARCHIVE, or an image of
the engine exported with `docker save`) pushed over the distribution API by `oci_push`."""

from __future__ import annotations

import logging
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pipe.config import Config
from pipe.containers import engine
from pipe.containers.archive import ArchivedImage, ArchiveFiles, Layer, mapping, read_layout, read_tar_stream
from pipe.containers.blobs import BlobSource
from pipe.containers.mediatypes import OCI_LAYER
from pipe.containers.oci_push import (
    READ_WORKERS,
    ImagePusher,
    KnownLayer,
    PushResult,
    PushStats,
    in_parallel,
    json_object,
    known_layers,
    point_tags,
    verify_tags,
)
from pipe.containers.registry import RegistryReader, RegistryWriter, sha256_digest
from pipe.errors import RegistryError
from pipe.masking import SecretMasker
from pipe.progress import ExportProgress, format_size

if TYPE_CHECKING:  # docker-py is slow to import, and an IMAGE_ARCHIVE push never needs it
    import docker

EXPORT_CHUNK = 1 << 20


def writer_for(
    config: Config, log: logging.Logger, masker: SecretMasker, bases: Sequence[tuple[str, str]] = ()
) -> RegistryWriter:
    """The run's writer for the configured image, allowed to mount from the base images'
    repositories: its first token covers reading them, no second challenge for the mounts."""
    writer = RegistryWriter.from_config(config, log, masker)
    writer.mount_from(base for base, _ in bases)
    return writer


def base_layers(writer: RegistryWriter, bases: Sequence[tuple[str, str]], log: logging.Logger) -> dict[str, KnownLayer]:
    """The layers of the base images (`(repository, tag)` in the same workspace), which the
    registry can mount instead of taking them again. A base it will not show is only a missed
    shortcut: its layers are then pushed like the others."""
    known: dict[str, KnownLayer] = {}
    for repository, reference in bases:
        reader = RegistryReader(writer.auth, repository)
        try:
            known.update(known_layers(reader, [reference], source=repository))
        except RegistryError as error:
            log.debug("Base image %s:%s not read (%s): its layers are pushed.", repository, reference, error)
    if known:
        names = ", ".join(f"{repository}:{reference}" for repository, reference in bases)
        log.info("Layers of the base image %s are mounted from there rather than uploaded.", names)
    return known


def reference_tags(tags: Sequence[str], before: Mapping[str, str | None], existing: Sequence[str]) -> list[str]:
    """Tags whose images may share layers with this one: the planned tags that exist, and latest."""
    chosen = [tag for tag in tags if before.get(tag)]
    if "latest" in existing and "latest" not in chosen:
        chosen.append("latest")
    return chosen


class CurrentTags(dict):
    """Tag → the digest it points at now, for the planned tags that exist; and the manifests read
    to learn it (`latest` too), by tag, which the push reuses instead of reading them again."""

    def __init__(self, digests: Mapping[str, str | None], manifests: Mapping[str, tuple[bytes, str] | None]):
        super().__init__(digests)
        self.manifests = dict(manifests)


def list_tags_reading_manifests(
    reader: RegistryReader, guesses: Sequence[str]
) -> tuple[list[str], dict[str, tuple[bytes, str] | None]]:
    """The repository's tags, and the manifests of `guesses` (tags the run may push) read at the
    same time rather than after: an unchanged re-push learns all it needs in one round trip. A
    guess the tag list does not name is dropped, whatever its read said; the tag list's failure
    is the one reported."""
    if not guesses:
        return reader.list_tags(), {}
    with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(guesses)), thread_name_prefix="read") as pool:
        reads = {tag: pool.submit(reader.get_manifest, tag) for tag in guesses}
        existing = reader.list_tags()
        return existing, {tag: read.result() for tag, read in reads.items() if tag in existing}


def current_tags(
    reader: RegistryReader,
    tags: Sequence[str],
    existing: Sequence[str],
    fetched: Mapping[str, tuple[bytes, str] | None] | None = None,
) -> CurrentTags:
    """What the planned tags point at now, read all at once (one round trip, not one per tag),
    with `latest`'s manifest, whose layers a new image often shares; `fetched`: manifests already
    read, by tag."""
    wanted = reference_tags(tags, dict.fromkeys((tag for tag in tags if tag in existing), "?"), existing)
    manifests = read_manifests(reader, wanted, fetched or {})
    digests = {tag: sha256_digest(found[0]) if found else None for tag, found in manifests.items() if tag in tags}
    return CurrentTags(digests, manifests)


def read_manifests(
    reader: RegistryReader, references: Sequence[str], fetched: Mapping[str, tuple[bytes, str] | None]
) -> dict[str, tuple[bytes, str] | None]:
    """The manifests of `references`, those not in `fetched` read in parallel."""
    missing = [reference for reference in references if reference not in fetched]
    read = dict(zip(missing, in_parallel(reader.get_manifest, missing), strict=True))
    return {reference: fetched[reference] if reference in fetched else read[reference] for reference in references}


def manifests_known(before: Mapping[str, str | None]) -> Mapping[str, tuple[bytes, str] | None]:
    return before.manifests if isinstance(before, CurrentTags) else {}


def push_archive(
    writer: RegistryWriter,
    image: ArchivedImage,
    tags: Sequence[str],
    before: Mapping[str, str | None],
    existing: Sequence[str],
    log: logging.Logger,
    bases: Sequence[tuple[str, str]] = (),
) -> tuple[PushResult, list[str]]:
    """Push the image's blobs and manifests once, point every tag at it, read the tags back.
    `bases`: base images in other repositories (repository, tag) to mount layers from. An image
    a tag already holds (the same config) is not pushed again: only tags are updated."""
    references = reference_tags(tags, before, existing)
    manifests = read_manifests(writer, references, manifests_known(before))
    if image.ref_names:
        log.info("The image layout names this image %s; it is pushed once.", ", ".join(image.ref_names))
    shortcut = None if image.multi_platform else already_pushed(image.manifests[0].config_digest, manifests)
    if shortcut is not None:
        return retag(writer, shortcut, tags, before, log)
    known = base_layers(writer, bases, log) | known_layers(writer, references, fetched=manifests)
    layers = sum(len(manifest.layers) for manifest in image.manifests)
    attestations = sum(manifest.is_attestation for manifest in image.manifests)
    platforms = f", {len(image.manifests) - attestations} platforms" if image.multi_platform else ""
    platforms += f" and {attestations} attestation(s)" if attestations else ""
    log.info("Pushing %d layer(s)%s natively over the distribution API.", layers, platforms)
    with tempfile.TemporaryDirectory(prefix="bbpp-push-") as scratch:
        with ImagePusher(writer, log, Path(scratch), known) as pusher:
            result = pusher.push(image)
    return finish_push(writer, result, tags, before, log)


def finish_push(
    writer: RegistryWriter, result: PushResult, tags: Sequence[str], before: Mapping[str, str | None], log
) -> tuple[PushResult, list[str]]:
    stats = result.stats
    log.info(
        "Blobs: %d uploaded (%s), %d already in the registry, %d mounted; %d layer(s) compressed.",
        stats.uploaded,
        format_size(stats.uploaded_bytes),
        stats.present,
        stats.mounted,
        stats.compressed,
    )
    return point_and_verify(writer, result, tags, before, log)


def retag(
    writer: RegistryWriter, shortcut: PushResult, tags: Sequence[str], before: Mapping[str, str | None], log
) -> tuple[PushResult, list[str]]:
    log.info("The registry already holds this image (%s): only tags are updated.", shortcut.digest)
    return point_and_verify(writer, shortcut, tags, before, log)


def point_and_verify(
    writer: RegistryWriter, result: PushResult, tags: Sequence[str], before: Mapping[str, str | None], log
) -> tuple[PushResult, list[str]]:
    """Point the tags at the pushed manifest and read back those that were written (a tag left
    alone was read just before: reading it again would tell nothing new)."""
    unchanged = point_tags(writer, result, tags, before, log)
    verify_tags(writer, [tag for tag in tags if tag not in unchanged], result.digest)
    return result, unchanged


def image_id_of(image: ArchivedImage, result: PushResult) -> str:
    """What identifies the image like `docker images` would: the config digest (the index
    digest of a multi-platform image)."""
    return result.digest if image.multi_platform else image.manifests[0].config_digest


def already_pushed(image_id: str, manifests: Mapping[str, tuple[bytes, str] | None]) -> PushResult | None:
    """The manifest of an existing tag whose config is this image's (same id = same config
    bytes, hence the same layers): a re-push then needs no upload (and no export) at all."""
    for found in manifests.values():
        if found is None:
            continue
        body, media_type = found
        if mapping(json_object(body).get("config")).get("digest") == image_id:
            return PushResult(sha256_digest(body), media_type, body, PushStats())
    return None


def push_engine_image(
    api: docker.APIClient,
    writer: RegistryWriter,
    image: engine.EngineImage,
    tags,
    before,
    existing,
    log,
    bases: Sequence[tuple[str, str]] = (),
) -> tuple[PushResult, list[str]]:
    """An image of the engine, read from the engine's export (`docker save`) as a stream: each
    layer is pushed as soon as it has passed, while the engine is still sending the next, and
    memory stays flat. An image the registry already holds is not exported at all."""
    references = reference_tags(tags, before, existing)
    manifests = read_manifests(writer, references, manifests_known(before))  # read once, used twice
    shortcut = already_pushed(image.id, manifests)
    if shortcut is not None:
        return retag(writer, shortcut, tags, before, log)
    known = base_layers(writer, bases, log) | known_layers(writer, references, fetched=manifests)
    log.info("Exporting the image from the engine; its %d layer(s) go up as they arrive.", len(image.diff_ids))
    with tempfile.TemporaryDirectory(prefix="bbpp-export-") as scratch:
        # An image may hold the same layer twice (an empty one, say): it is pushed, and counted, once.
        layers = len(set(image.diff_ids))
        with ImagePusher(writer, log, Path(scratch), known, expected_layers=layers) as pusher:
            meter = ExportProgress(log, image.size)
            files = export(api, image.id, Path(scratch), start_layers(pusher, set(image.diff_ids)), meter)
            log.info("Exported the image from the engine (%s).", format_size(files.total_size()))
            result = pusher.push(read_layout(files, "the exported image"))
    return finish_push(writer, result, tags, before, log)


def start_layers(pusher: ImagePusher, diff_ids: set[str]) -> Callable[[str, BlobSource, str], None]:
    """For each file of the export: a file whose digest is one of the image's diff ids is an
    uncompressed layer, and its push starts now."""

    def on_file(name: str, source: BlobSource, digest: str) -> None:
        pusher.raise_if_failed()
        if digest in diff_ids:
            # Hashed as it was copied out of the stream: its digest is its bytes'.
            pusher.start_layer(Layer(source, OCI_LAYER, digest, digest, origin="the exported image", verified=True))

    return on_file


def export(api: docker.APIClient, image_id: str, scratch: Path, on_file, on_read=None) -> ArchiveFiles:
    try:
        chunks = engine.export_chunks(api, image_id, EXPORT_CHUNK)
        return read_tar_stream(ChunkStream(chunks, on_read), scratch, on_file)
    except tarfile.TarError as error:
        raise engine.export_error(image_id, error) from None


class ChunkStream:
    """A read-only stream over an iterator of byte chunks (the engine's export response).
    `read` hands out the chunks themselves where it can: no copy of 300 MB through a buffer."""

    def __init__(self, chunks: Iterable[bytes], on_read: Callable[[int], None] | None = None):
        self.chunks = iter(chunks)
        self.pending = b""
        self.on_read = on_read

    def read(self, size: int = -1) -> bytes:
        if not self.pending:
            self.pending = next(self.chunks, b"")
            if self.on_read and self.pending:
                self.on_read(len(self.pending))
        if size is None or size < 0 or size >= len(self.pending):
            data, self.pending = self.pending, b""
            return data
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

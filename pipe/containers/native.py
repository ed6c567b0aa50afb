"""The native push path of the container publisher: an image (an IMAGE_ARCHIVE, or an image of
the engine exported with `docker save`) pushed over the distribution API by `oci_push`."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import docker
import requests
from docker.errors import APIError

from pipe.config import Config
from pipe.containers.archive import ArchivedImage, open_archive
from pipe.containers.oci_push import (
    ImagePusher,
    PushResult,
    PushStats,
    RegistryWriter,
    known_layers,
    point_tags,
    sha256_digest,
    verify_tags,
)
from pipe.errors import EngineError
from pipe.masking import SecretMasker
from pipe.progress import format_size

EXPORT_CHUNK = 1 << 20


def writer_for(config: Config, repository: str, masker: SecretMasker) -> RegistryWriter:
    return RegistryWriter(config.registry, repository, config.credentials, masker)


def reference_tags(tags: Sequence[str], before: Mapping[str, str | None], existing: Sequence[str]) -> list[str]:
    """Tags whose images may share layers with this one: the planned tags that exist, and latest."""
    chosen = [tag for tag in tags if before.get(tag)]
    if "latest" in existing and "latest" not in chosen:
        chosen.append("latest")
    return chosen


def push_archive(
    writer: RegistryWriter,
    image: ArchivedImage,
    tags: Sequence[str],
    before: Mapping[str, str | None],
    existing: Sequence[str],
    log: logging.Logger,
) -> tuple[PushResult, list[str]]:
    """Push the image's blobs and manifests once, point every tag at it, read the tags back."""
    known = known_layers(writer, reference_tags(tags, before, existing))
    layers = sum(len(manifest.layers) for manifest in image.manifests)
    platforms = f", {len(image.manifests)} platforms" if image.multi_platform else ""
    log.info("Pushing %d layer(s)%s natively over the distribution API.", layers, platforms)
    with tempfile.TemporaryDirectory(prefix="bbpp-push-") as scratch:
        result = ImagePusher(writer, log, Path(scratch), known).push(image)
    stats = result.stats
    log.info(
        "Blobs: %d uploaded (%s), %d already in the registry, %d mounted; %d layer(s) compressed.",
        stats.uploaded,
        format_size(stats.uploaded_bytes),
        stats.present,
        stats.mounted,
        stats.compressed,
    )
    unchanged = point_tags(writer, result, tags, before, log)
    verify_tags(writer, tags, result.digest)
    return result, unchanged


def image_id_of(image: ArchivedImage, result: PushResult) -> str:
    """What identifies the image like `docker images` would: the config digest (the index
    digest of a multi-platform image)."""
    return result.digest if image.multi_platform else image.manifests[0].config_digest


def already_pushed(writer: RegistryWriter, image_id: str, references: Sequence[str]) -> PushResult | None:
    """The manifest of an existing tag whose config is this engine image (same id = same config
    bytes, hence the same layers): a re-push then needs no export at all."""
    for reference in references:
        found = writer.get_manifest(reference)
        if found is None:
            continue
        body, media_type = found
        document = json.loads(body)
        if document.get("config", {}).get("digest") == image_id:
            return PushResult(sha256_digest(body), media_type, body, PushStats())
    return None


def push_engine_image(
    config: Config, api: docker.APIClient, writer: RegistryWriter, image_id: str, tags, before, existing, log
) -> tuple[PushResult, list[str]]:
    """An image of the engine, exported with `docker save` into a temporary file (streamed, so
    memory stays flat) and pushed like an archive."""
    shortcut = already_pushed(writer, image_id, reference_tags(tags, before, existing))
    if shortcut is not None:
        log.info("The registry already holds this image (%s): only tags are updated.", shortcut.digest)
        unchanged = point_tags(writer, shortcut, tags, before, log)
        verify_tags(writer, tags, shortcut.digest)
        return shortcut, unchanged
    with tempfile.TemporaryDirectory(prefix="bbpp-export-") as scratch:
        path = Path(scratch) / "image.tar"
        export(api, image_id, path)
        log.info("Exported the image from the engine (%s).", format_size(path.stat().st_size))
        with open_archive(path, "the exported image") as image:
            return push_archive(writer, image, tags, before, existing, log)


def export(api: docker.APIClient, image_id: str, path: Path) -> None:
    try:
        with open(path, "wb") as out:
            for chunk in api.get_image(image_id, chunk_size=EXPORT_CHUNK):
                out.write(chunk)
    except (APIError, requests.RequestException) as error:
        raise EngineError(
            f"the Docker engine could not export image {image_id[:19]} ({' '.join(str(error).split())[:160]}): "
            "re-run the step, or set PUSH_METHOD: engine to push through the engine."
        ) from None

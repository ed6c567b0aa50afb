"""Pushing an image over the OCI distribution API without a Docker engine: the algorithm;
the requests are `registry.RegistryWriter`'s.

Per blob: HEAD (skip what the registry has) → cross-repository mount when another repository
may hold it → POST an upload → one monolithic PUT of the bytes (PATCH chunks then PUT when the
registry refuses a body that large). Blobs move in parallel (bounded), layers are compressed in
the same workers just before their upload, and every blob is pushed once whatever the number of
tags. Then the manifests (and the index of a multi-platform image), each with its own media type;
a tag that already points at the digest is left alone; every tag is read back at the end.

Each blob's push is retried as a whole through the writer (`RegistryWriter.with_retries`), and
each retry starts with a HEAD, so what the registry already has is never sent again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pipe.containers.archive import ArchivedImage, ImageManifest, Layer, mapping
from pipe.containers.blobs import Blob, BlobSource, is_digest
from pipe.containers.compress import prepare_layer
from pipe.containers.link import LinkMeter
from pipe.containers.mediatypes import DOCKER_LAYER, DOCKER_MANIFEST, OCI_LAYER, OCI_MANIFEST, REFERENCE_DIGEST
from pipe.containers.registry import RegistryReader, RegistryWriter, sha256_digest
from pipe.errors import RegistryError
from pipe.progress import PushProgress, format_size

UPLOAD_WORKERS = 4
# Blob jobs running at once (each waits for its turn to compress and to upload, see ImagePusher).
MAX_BLOB_THREADS = 32
# Reads (manifests of tags, tags read back) sent at once: they only wait on the network.
READ_WORKERS = 8
T = TypeVar("T")
R = TypeVar("R")
# --- what the registry already has -----------------------------------------------------------


@dataclass(frozen=True)
class KnownLayer:
    """A layer the registry holds, by its diff id: in some image of this repository, or of
    `source`, another repository it can be mounted from (a base image's)."""

    digest: str
    size: int
    media_type: str
    source: str | None = None


def known_layers(
    reader: RegistryReader,
    references: Iterable[str],
    source: str | None = None,
    fetched: Mapping[str, tuple[bytes, str] | None] | None = None,
) -> dict[str, KnownLayer]:
    """diff id → pushed layer, from the images that `references` (existing tags) point at: a
    re-push finds its layers without compressing them again. Layer i of a manifest is the
    compressed form of diff id i of its config. `source` names the reader's repository when it
    is not the one pushed to (the layers are mounted from there); `fetched` holds manifests the
    caller has already read, by reference."""
    fetched = fetched or {}
    known: dict[str, KnownLayer] = {}
    seen: set[str] = set()
    queue = list(references)
    while queue:
        reference = queue.pop()
        if reference in seen:
            continue
        seen.add(reference)
        found = fetched[reference] if reference in fetched else reader.get_manifest(reference)
        # Two tags on one manifest (1.0.0 and latest): its config is read once.
        if found is None or sha256_digest(found[0]) in seen:
            continue
        seen.add(sha256_digest(found[0]))
        manifest = json_object(found[0])
        if "manifests" in manifest:
            queue.extend(d["digest"] for d in listed(manifest, "manifests") if is_digest(d.get("digest")))
            continue
        config_digest = mapping(manifest.get("config")).get("digest")
        config = reader.get_blob(config_digest) if is_digest(config_digest) else None
        if config:
            known.update(layers_by_diff_id(json_object(config), listed(manifest, "layers"), source))
    return known


def layers_by_diff_id(config: dict, layers: list[dict], source: str | None) -> dict[str, KnownLayer]:
    """Layer i of a manifest is the compressed form of diff id i of its config; entries that are
    not what they should be (another tool's image, a damaged one) teach nothing and are left out."""
    diff_ids = mapping(config.get("rootfs")).get("diff_ids")
    known = {}
    for diff_id, layer in zip(diff_ids if isinstance(diff_ids, list) else [], layers, strict=False):
        if is_digest(diff_id) and is_digest(layer.get("digest")) and isinstance(layer.get("size"), int):
            media_type = str(layer.get("mediaType") or OCI_LAYER + "+gzip")
            known[diff_id] = KnownLayer(layer["digest"], layer["size"], media_type, source)
    return known


def json_object(data: bytes) -> dict:
    """A document the registry holds, as a JSON object (an empty one when it is not)."""
    try:
        return mapping(json.loads(data))
    except (ValueError, RecursionError):
        return {}


def listed(document: dict, key: str) -> list[dict]:
    value = document.get(key)
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def layer_type_for(manifest_type: str, media_type: str) -> str:
    """A known layer's media type in the family of the manifest it goes into."""
    compression = media_type.rsplit("+", 1)[-1] if "+" in media_type else media_type.rsplit(".", 1)[-1]
    compression = "" if compression in ("tar", "diff") else compression
    if manifest_type == DOCKER_MANIFEST:
        return DOCKER_LAYER + (".gzip" if compression == "gzip" else "")
    return OCI_LAYER + (f"+{compression}" if compression else "")


# --- the push --------------------------------------------------------------------------------


@dataclass
class PushStats:
    uploaded: int = 0
    uploaded_bytes: int = 0
    present: int = 0
    mounted: int = 0
    compressed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class PushResult:
    digest: str
    media_type: str
    manifest: bytes
    stats: PushStats


class ImagePusher:
    """Pushes one archived image (all its platforms) once, then points every tag at it.

    Layers can be started before the whole image is known (`start_layer`): an image exported
    from the engine arrives as a stream, and each layer goes up while the next one is read.
    `push` then picks those uploads up by digest. Use it as a context manager: the worker pool
    lives until the end of the `with`, and an error stops what has not started yet."""

    def __init__(
        self,
        writer: RegistryWriter,
        log: logging.Logger,
        scratch: Path,
        known: Mapping[str, KnownLayer] | None = None,
        workers: int = UPLOAD_WORKERS,
        expected_layers: int | None = None,
    ):
        self.writer = writer
        self.log = log
        self.scratch = scratch
        self.known = dict(known or {})
        self.stats = PushStats()
        # Compressing takes the CPU, uploading the link: a blob waits for its turn at each apart, so
        # layers that go as they are (random data, compressed ones) start uploading at once instead
        # of queueing behind the compression of others. One worker keeps everything in order.
        self.compressing = threading.BoundedSemaphore(max(1, min(workers, os.cpu_count() or 1)))
        self.uploading = threading.BoundedSemaphore(workers)
        threads = MAX_BLOB_THREADS if workers > 1 else 1
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="blob")
        self.progress = PushProgress(log, expected_layers) if expected_layers is not None else None
        # The link as this push measures it: each layer's gzip level is chosen from it.
        self.link = LinkMeter(writer.auth.fastest_answer)
        self._blobs: dict[str, Future] = {}
        self._blobs_lock = threading.Lock()
        # Layers prepared (compressed) once, by diff id: platforms of one image often share a
        # layer, and two compressions of it into the same scratch file at once would corrupt it.
        self._prepared: dict[str, Future] = {}
        # Layers started ahead of `push`, by digest: pushed as uncompressed OCI layers, the only
        # kind an engine export holds.
        self._early: dict[str, Future] = {}

    def __enter__(self) -> ImagePusher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def start_layer(self, layer: Layer) -> None:
        """Start pushing an uncompressed layer now; `push` takes the result for the same digest.
        Layers counted before the image is known need `expected_layers`."""
        if self.progress is None:
            raise ValueError("start_layer needs the pusher made with expected_layers")
        if layer.digest not in self._early:
            self._early[layer.digest] = self.pool.submit(self.push_layer, OCI_MANIFEST, layer, self.progress)

    def raise_if_failed(self) -> None:
        """Stop early when a layer started ahead has already failed (bad credentials, say)."""
        for job in self._early.values():
            if job.done() and job.exception() is not None:
                raise job.exception()

    def push(self, image: ArchivedImage) -> PushResult:
        if self.progress is None:
            self.progress = PushProgress(self.log, sum(len(manifest.layers) for manifest in image.manifests))
        progress = self.progress
        jobs = [
            [self.layer_job(manifest, layer, progress) for layer in manifest.layers] for manifest in image.manifests
        ]
        configs = [self.pool.submit(self.push_config, manifest) for manifest in image.manifests]
        layer_descriptors = [
            [job.result() | annotations(layer) for job, layer in zip(manifest_jobs, manifest.layers, strict=True)]
            for manifest_jobs, manifest in zip(jobs, image.manifests, strict=True)
        ]
        for config in configs:
            config.result()
        manifests = [
            self.manifest_bytes(manifest, descriptors)
            for manifest, descriptors in zip(image.manifests, layer_descriptors, strict=True)
        ]
        if not image.multi_platform:
            body, media_type = manifests[0]
            return PushResult(sha256_digest(body), media_type, body, self.stats)
        for body, media_type in manifests:
            self.writer.with_retries(
                lambda body=body, media_type=media_type: self.writer.put_manifest(
                    sha256_digest(body), body, media_type
                ),
                "pushing a platform manifest",
            )
        body, media_type = self.index_bytes(image, manifests)
        return PushResult(sha256_digest(body), media_type, body, self.stats)

    def layer_job(self, manifest: ImageManifest, layer: Layer, progress: PushProgress) -> Future:
        """The layer's push: the one started ahead for the same kind of layer, else a new one."""
        early = self._early.get(layer.digest or "")
        if early is not None and layer.media_type == OCI_LAYER and manifest.media_type == OCI_MANIFEST:
            return early
        return self.pool.submit(self.push_layer, manifest.media_type, layer, progress)

    # --- blobs ------------------------------------------------------------------------------

    def push_layer(self, manifest_type: str, layer: Layer, progress: PushProgress) -> dict:
        name = (layer.diff_id or layer.digest or "?").removeprefix("sha256:")[:12]
        known = self.known.get(layer.diff_id or "")
        outcome = known and self.writer.with_retries(lambda: self.link_known(known), "checking a blob")
        if outcome:
            text = {"present": "already in the registry", "mounted": f"mounted from {known.source}"}[outcome]
            progress.finished(name, f"{text} ({format_size(known.size)})")
            return {"mediaType": layer_type_for(manifest_type, known.media_type), "digest": known.digest,
                    "size": known.size}  # fmt: skip
        meter = progress.layer(name, layer.source.size, "compressed")
        level = self.link.level()
        blob = self.prepare_once(layer, meter, level)
        if blob.digest != layer.digest:
            self.stats.add(compressed=1)
            self.log.debug(
                "Layer %s compressed at level %d to %s: %s", name, level, format_size(blob.size), meter.rate()
            )
        outcome, meter = self.push_blob(blob, lambda: progress.layer(name, blob.size, "uploaded"))
        text = {"present": "already in the registry"}.get(outcome)
        kind = f"gzip level {level}" if blob.digest != layer.digest else "uncompressed"
        done = f"{text} ({format_size(blob.size)} {kind})" if text else f"pushed, {kind}: {meter.rate()}"
        progress.finished(name, done)
        return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}

    def prepare_once(self, layer: Layer, meter, level: int) -> Blob:
        """`prepare_layer` for the first layer with this diff id; later ones wait for its blob."""
        key = layer.diff_id or layer.digest or str(id(layer))
        _, blob = self.once(
            self._prepared, key, lambda: prepare_layer(layer, self.scratch, meter, level, self.compressing)
        )
        return blob

    def link_known(self, known: KnownLayer) -> str | None:
        """ "present" when this repository has the layer's blob, "mounted" when the registry
        linked it from the base image's repository, else None (it has to be uploaded)."""
        if self.writer.blob_exists(known.digest):
            self.stats.add(present=1)
            return "present"
        if known.source and self.writer.mount(known.digest, known.source) is None:
            self.stats.add(mounted=1)
            return "mounted"
        return None

    def push_config(self, manifest: ImageManifest) -> None:
        path = self.scratch / f"config-{manifest.config_digest.removeprefix('sha256:')}.json"
        path.write_bytes(manifest.config)
        blob = Blob(BlobSource(path, 0, len(manifest.config)), manifest.config_digest, len(manifest.config), "")
        self.push_blob(blob, lambda: None)

    def push_blob(self, blob: Blob, meter_factory) -> tuple[str, object]:
        """Push `blob` once even when several layers or platforms share it."""

        def send() -> tuple[str, object]:
            meter = meter_factory()
            return self.writer.with_retries(lambda: self.send_blob(blob, meter), f"pushing blob {blob.digest}"), meter

        mine, (outcome, meter) = self.once(self._blobs, blob.digest, send)
        return (outcome if mine else "present"), meter

    def once(self, jobs: dict[str, Future], key: str, make: Callable[[], T]) -> tuple[bool, T]:
        """`make()` for the first caller with `key`; later callers wait for its result (or its
        error). Whether this call made it, and the result."""
        with self._blobs_lock:
            mine = key not in jobs
            if mine:
                jobs[key] = Future()
            shared = jobs[key]
        if not mine:
            return False, shared.result()
        try:
            result = make()
        except BaseException as error:
            shared.set_exception(error)
            raise
        shared.set_result(result)
        return True, result

    def send_blob(self, blob: Blob, meter) -> str:
        """One attempt: skip it if present, else upload."""
        if self.writer.blob_exists(blob.digest):
            self.stats.add(present=1)
            return "present"
        if meter is not None:
            meter.moved = 0
        with self.uploading:
            self.link.started()
            try:
                self.writer.upload(blob, None, self.link.counting(meter))
            finally:
                self.link.finished()
        self.stats.add(uploaded=1, uploaded_bytes=blob.size)
        return "uploaded"

    # --- manifests --------------------------------------------------------------------------

    def manifest_bytes(self, manifest: ImageManifest, layers: list[dict]) -> tuple[bytes, str]:
        """The archived manifest as it is when no layer changed (its digest, and any signature
        over it, survive); else the manifest with the pushed layers."""
        unchanged = [layer.digest for layer in manifest.layers] == [d["digest"] for d in layers]
        if manifest.raw is not None and unchanged:
            return manifest.raw, manifest.media_type
        if manifest.raw is not None:
            document = json.loads(manifest.raw)
            document["layers"] = layers
        else:
            document = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": manifest.config_media_type,
                    "digest": manifest.config_digest,
                    "size": len(manifest.config),
                },
                "layers": layers,
            }
        return canonical(document), manifest.media_type

    def index_bytes(self, image: ArchivedImage, manifests: list[tuple[bytes, str]]) -> tuple[bytes, str]:
        unchanged = all(m.raw == body for m, (body, _) in zip(image.manifests, manifests, strict=True))
        if image.index_raw is not None and unchanged:
            return image.index_raw, image.index_media_type
        document = dict(image.index or {})
        document.setdefault("schemaVersion", 2)
        document["mediaType"] = image.index_media_type
        # A manifest whose layers were compressed has a new digest: its attestation follows it.
        renamed = {
            sha256_digest(manifest.raw): sha256_digest(body)
            for manifest, (body, _) in zip(image.manifests, manifests, strict=True)
            if manifest.raw is not None
        }
        document["manifests"] = [
            {"mediaType": media_type, "digest": sha256_digest(body), "size": len(body)}
            | ({"platform": manifest.platform} if manifest.platform else {})
            | ({"annotations": relinked(manifest.annotations, renamed)} if manifest.annotations else {})
            for manifest, (body, media_type) in zip(image.manifests, manifests, strict=True)
        ]
        return canonical(document), image.index_media_type


def relinked(annotations: dict, renamed: Mapping[str, str]) -> dict:
    """A descriptor's annotations, an attestation's reference pointing at the image's new digest."""
    subject = annotations.get(REFERENCE_DIGEST)
    return annotations | ({REFERENCE_DIGEST: renamed[subject]} if subject in renamed else {})


def annotations(layer: Layer) -> dict:
    return {"annotations": layer.descriptor["annotations"]} if layer.descriptor.get("annotations") else {}


def canonical(document: dict) -> bytes:
    """Compact JSON in a fixed key order: the same image always gives the same manifest digest."""
    return json.dumps(document, separators=(",", ":"), sort_keys=False).encode()


def in_parallel(call: Callable[[T], R], items: Sequence[T], workers: int = READ_WORKERS) -> list[R]:
    """`call` on every item at once (requests that wait on the network, not on each other); the
    results in order, the first failure raised."""
    if len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="read") as pool:
        return list(pool.map(call, items))


def point_tags(
    writer: RegistryWriter, result: PushResult, tags: Iterable[str], current: Mapping[str, str | None], log
) -> list[str]:
    """PUT the manifest at each tag that does not already point at it (all at once); the tags left alone."""
    unchanged = [tag for tag in tags if current.get(tag) == result.digest]
    for tag in unchanged:
        log.info("Tag %s already points at %s.", tag, result.digest)
    moving = [tag for tag in tags if tag not in unchanged]

    def put(tag: str) -> None:
        writer.with_retries(lambda: writer.put_manifest(tag, result.manifest, result.media_type), f"pushing tag {tag}")

    in_parallel(put, moving)
    for tag in moving:
        log.info("Tagged %s:%s.", writer.repository, tag)
    return unchanged


def verify_tags(writer: RegistryWriter, tags: Sequence[str], digest: str) -> None:
    """Read every tag back (all at once): each must name the pushed digest."""
    for tag, found in zip(tags, in_parallel(writer.tag_digest, list(tags)), strict=True):
        if found != digest:
            raise RegistryError(
                f"after the push, {writer.repository}:{tag} points at {found or 'nothing'} instead of {digest}: "
                "another pipeline may have pushed the same tag meanwhile; re-run the step."
            )

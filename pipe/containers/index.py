"""INDEX_FROM_TAGS: one OCI image index made of single-platform images already in the repository
(pushed by parallel steps, say `1.4.0-amd64` from the cloud and `1.4.0-arm64` from an ARM runner).

Each source is read from the registry: a manifest gives one entry, whose platform comes from its
config (os, architecture, variant, os.version, os.features); an index gives its platform entries
and its attestation manifests (buildx provenance: `unknown/unknown`, tied to their image by the
`vnd.docker.reference.*` annotations), which are kept as they are. Every source lives in the
repository the index goes to, so the index references blobs the registry already holds there and
nothing is copied. Everything is checked before anything is pushed: a missing source, a source in
another repository, two images for one platform.

The index bytes are deterministic (entries in the order of INDEX_FROM_TAGS, no timestamps): the
same sources always give the same digest, which is what makes a re-run a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipe.containers.mediatypes import INDEX_TYPES, OCI_INDEX, REFERENCE_DIGEST, REFERENCE_TYPE
from pipe.containers.oci_push import canonical
from pipe.containers.registry import sha256_digest
from pipe.containers.tags import expand_template, placeholder_values
from pipe.context import PipelinesRun
from pipe.errors import ConfigError, InputError

PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant")
# Variants a platform has when it names none (containerd's normalisation): arm64 is arm64/v8.
DEFAULT_VARIANTS = {"arm64": "v8"}


class ManifestSource(Protocol):
    """What the index needs from the registry (`RegistryReader` is one)."""

    def get_manifest(self, reference: str) -> tuple[bytes, str] | None: ...

    def get_blob(self, digest: str) -> bytes | None: ...


@dataclass(frozen=True)
class Entry:
    """One descriptor of the index, and the source tag it came from."""

    descriptor: dict
    source: str

    @property
    def digest(self) -> str:
        return self.descriptor["digest"]

    @property
    def platform(self) -> dict:
        return self.descriptor.get("platform") or {}

    @property
    def is_attestation(self) -> bool:
        return REFERENCE_TYPE in (self.descriptor.get("annotations") or {})

    @property
    def platform_name(self) -> str:
        return platform_name(self.platform)


@dataclass(frozen=True)
class ImageIndex:
    """The index to push: its bytes (pushed as they are) and what it holds."""

    body: bytes
    entries: tuple[Entry, ...]

    @property
    def document(self) -> dict:
        return json.loads(self.body)

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(entry.platform_name for entry in self.entries if not entry.is_attestation)


def platform_name(platform: dict) -> str:
    """`os/architecture[/variant]`, as `docker buildx --platform` writes it."""
    parts = [platform.get("os") or "unknown", platform.get("architecture") or "unknown"]
    if platform.get("variant"):
        parts.append(platform["variant"])
    return "/".join(parts)


def platform_key(platform: dict) -> tuple[str, ...]:
    """What makes two platforms the same one: arm64 and arm64/v8 are; two Windows versions are not."""
    architecture = platform.get("architecture") or ""
    variant = platform.get("variant") or DEFAULT_VARIANTS.get(architecture, "")
    return (platform.get("os") or "", architecture, variant, platform.get("os.version") or "")


def platform_of(config: dict) -> dict:
    """The platform fields of an image config, in the order the OCI image spec lists them."""
    return {name: config[name] for name in PLATFORM_FIELDS if config.get(name)}


# --- sources ---------------------------------------------------------------------------------


def expand_sources(templates: Iterable[str], context: PipelinesRun) -> tuple[str, ...]:
    """INDEX_FROM_TAGS with the TAGS placeholders filled in: `{version}-arm64` names the tag the
    ARM64 step pushed with `TAGS: ['{version}-arm64']`."""
    values = placeholder_values(context)
    sources = tuple(expand_template(template, values, context, "INDEX_FROM_TAGS") for template in templates)
    twice = sorted({source for source in sources if sources.count(source) > 1})
    if twice:
        raise ConfigError(
            f"INDEX_FROM_TAGS names {', '.join(twice)} more than once (after its placeholders are filled in): "
            "list each platform's tag once."
        )
    return sources


def source_tag(source: str, repository: str, reference: str) -> str:
    """The tag (or digest) of a source in this repository. A tag is just a tag; a full reference
    (`[host/]name:tag`, `name@sha256:…`) is accepted only when it names this repository, since
    the index may only point at images whose blobs are here."""
    if not any(mark in source for mark in "/:@"):
        return source
    name, at, digest = source.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    name = name[: len(name) - len(tag) - 1] if tag else name
    if name in (repository, reference) and (tag or digest) and not (tag and digest):
        return digest if at else tag
    raise ConfigError(
        f"INDEX_FROM_TAGS entry '{source}' names another repository: an index can only tie images of "
        f"{reference}: list their tags (e.g. 1.0.0-amd64), push each platform to {reference} first."
    )


def source_entries(registry: ManifestSource, source: str, reference: str) -> list[Entry] | None:
    """The index entries a source contributes, or None when it does not exist."""
    found = registry.get_manifest(reference)
    if found is None:
        return None
    body, media_type = found
    document = json.loads(body)
    media_type = document.get("mediaType") or media_type
    if media_type in INDEX_TYPES or "manifests" in document:
        return [with_platform(registry, Entry(dict(d), source)) for d in document.get("manifests") or []]
    descriptor = {"mediaType": media_type, "digest": sha256_digest(body), "size": len(body)}
    return [Entry(descriptor | {"platform": manifest_platform(registry, document, source)}, source)]


def with_platform(registry: ManifestSource, entry: Entry) -> Entry:
    """An index entry that names no platform gets the one of its image's config."""
    if entry.platform or entry.is_attestation:
        return entry
    found = registry.get_manifest(entry.digest)
    manifest = json.loads(found[0]) if found else {}
    return Entry(entry.descriptor | {"platform": manifest_platform(registry, manifest, entry.source)}, entry.source)


def manifest_platform(registry: ManifestSource, manifest: dict, source: str) -> dict:
    digest = (manifest.get("config") or {}).get("digest")
    config = registry.get_blob(digest) if digest else None
    platform = platform_of(json.loads(config)) if config else {}
    if not platform.get("os") or not platform.get("architecture"):
        raise InputError(
            f"INDEX_FROM_TAGS entry '{source}' has no os/architecture in its image config: "
            "push an image built for one platform under that tag."
        )
    return platform


def read_sources(registry: ManifestSource, sources: Sequence[str], repository: str, reference: str) -> list[Entry]:
    """Every source's entries, in order; all missing sources are named in one error."""
    tags = [source_tag(source, repository, reference) for source in sources]
    entries: list[Entry] = []
    missing = []
    for source, tag in zip(sources, tags, strict=True):
        found = source_entries(registry, source, tag)
        if found is None:
            missing.append(source)
        else:
            entries.extend(found)
    if missing:
        names = ", ".join(missing)
        raise InputError(
            f"INDEX_FROM_TAGS names {names}, which {'is' if len(missing) == 1 else 'are'} not in {reference}: "
            "push each platform's image under its tag first (e.g. TAGS: '{version}-arm64' in that step), "
            "and list tags exactly as pushed."
        )
    return entries


# --- the index -------------------------------------------------------------------------------


def deduplicate(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per platform. The same image listed twice is kept once; two different images
    for one platform is an error, since a puller could get either."""
    kept: list[Entry] = []
    by_platform: dict[tuple[str, ...], Entry] = {}
    seen: set[str] = set()
    for entry in entries:
        if entry.digest in seen:
            continue
        if not entry.is_attestation:
            other = by_platform.get(platform_key(entry.platform))
            if other is not None:
                raise InputError(
                    f"INDEX_FROM_TAGS has two images for {entry.platform_name}: {other.source} ({other.digest[:19]}) "
                    f"and {entry.source} ({entry.digest[:19]}): list one tag per platform."
                )
            by_platform[platform_key(entry.platform)] = entry
        seen.add(entry.digest)
        kept.append(entry)
    return [entry for entry in kept if not entry.is_attestation or attests_a_kept_image(entry, seen)]


def attests_a_kept_image(entry: Entry, digests: set[str]) -> bool:
    """An attestation stays with the image it describes (and goes when that image is not kept)."""
    subject = (entry.descriptor.get("annotations") or {}).get(REFERENCE_DIGEST)
    return subject is None or subject in digests


def build_index(entries: Iterable[Entry]) -> ImageIndex:
    kept = deduplicate(entries)
    if not any(not entry.is_attestation for entry in kept):
        raise InputError("INDEX_FROM_TAGS names no image with a platform: list the tags of single-platform images.")
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry.descriptor for entry in kept]}
    return ImageIndex(canonical(document), tuple(kept))


def index_from_tags(registry: ManifestSource, sources: Sequence[str], repository: str, reference: str) -> ImageIndex:
    """The index tying `sources` (tags in `repository`, shown to users as `reference`)."""
    return build_index(read_sources(registry, sources, repository, reference))


def readable(index: ImageIndex) -> list[str]:
    """The index as JSON lines a person can read in a log: one line per entry."""
    document = index.document
    head = {key: value for key, value in document.items() if key != "manifests"}
    lines = [json.dumps(head, separators=(", ", ": "))[:-1] + ', "manifests": [']
    entries = document["manifests"]
    for position, descriptor in enumerate(entries):
        comma = "," if position < len(entries) - 1 else ""
        lines.append("  " + json.dumps(descriptor, separators=(", ", ": ")) + comma)
    lines.append("]}")
    return lines

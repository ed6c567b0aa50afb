"""ACTION=cleanup for PACKAGE_TYPE=docker: delete old tags of one image repository over the OCI
distribution API. No Docker engine is needed.

Each tag is resolved to its manifest digest; its age is the image config's `created` (for an
index: its `org.opencontainers.image.created` annotation, else the newest of its images). The
distribution API deletes manifests, not tags (`DELETE /v2/<name>/manifests/<digest>` removes every
tag on that digest), so a digest that a kept tag also points at is kept, and the plan says so.
An index's images go with it, only those that nothing kept references, and before the index: a
cleanup stopped at any request leaves every kept tag whole, every listed tag resolvable, and
nothing untagged behind that a re-run would not find.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pipe.cleanup import (
    Candidate,
    Decision,
    cleanup_publication,
    decide,
    parse_time,
    plan_order,
    print_plan,
    semver_release,
)
from pipe.config import Config
from pipe.containers.blobs import shown
from pipe.containers.mediatypes import INDEX_TYPES
from pipe.containers.publish import Target
from pipe.containers.registry import RegistryDeleter, is_reference, sha256_digest
from pipe.masking import SecretMasker
from pipe.outputs import Publication

CREATED_ANNOTATION = "org.opencontainers.image.created"
# The floating tags the release rules move (`latest`, `X`, `X.Y`): what they point at stays.
FLOATING_TAG = re.compile(r"^(latest|v?(0|[1-9]\d*)(\.(0|[1-9]\d*))?)$")
KIND_LABEL = "image"


@dataclass(frozen=True)
class Manifest:
    """One manifest by digest: an image's config `created`, or an index's children."""

    digest: str
    created: datetime | None
    children: tuple[str, ...] = ()


class Catalog:
    """The repository's manifests as the cleanup needs them (each read once), over the client."""

    def __init__(self, registry: RegistryDeleter):
        self.registry = registry
        self.manifests: dict[str, Manifest] = {}

    def resolve(self, tag: str) -> str | None:
        """The digest `tag` points at (None when it went meanwhile), its manifest read and kept."""
        found = self.registry.get_manifest(tag)
        return self.read(*found).digest if found else None

    def read(self, body: bytes, media_type: str) -> Manifest:
        digest = sha256_digest(body)
        if digest not in self.manifests:
            document = json.loads(body)
            if media_type in INDEX_TYPES or document.get("mediaType") in INDEX_TYPES:
                self.manifests[digest] = self.read_index(digest, document)
            else:
                self.manifests[digest] = Manifest(digest, self.config_created(document))
        return self.manifests[digest]

    def read_index(self, digest: str, document: dict) -> Manifest:
        # A child that is not a digest cannot be read or deleted by URL: it is left alone.
        listed = (entry.get("digest") for entry in document.get("manifests") or [] if isinstance(entry, dict))
        children = tuple(child for child in listed if is_reference(child, tags=False))
        created = parse_time((document.get("annotations") or {}).get(CREATED_ANNOTATION))
        if created is None:
            times = [self.child(child).created for child in children]
            created = max((t for t in times if t is not None), default=None)
        return Manifest(digest, created, children)

    def child(self, digest: str) -> Manifest:
        if digest not in self.manifests:
            found = self.registry.get_manifest(digest)
            self.manifests[digest] = self.read(*found) if found else Manifest(digest, None)
        return self.manifests[digest]

    def config_created(self, document: dict) -> datetime | None:
        config = document.get("config") or {}
        blob = self.registry.get_blob(str(config.get("digest"))) if config.get("digest") else None
        try:
            return parse_time(json.loads(blob).get("created")) if blob else None
        except (ValueError, AttributeError):
            return None  # not an image config (an artifact): its age is unknown


def protected_tags(digests: dict[str, str]) -> dict[str, str]:
    """Floating tags, and the tags on the digests they point at, with the reason."""
    protected = {}
    for tag, digest in digests.items():
        if FLOATING_TAG.match(tag):
            protected[tag] = "protected: floating tag"
            for other, same in digests.items():
                if same == digest and other != tag and not FLOATING_TAG.match(other):
                    protected.setdefault(other, f"protected: floating tag {tag} points at it")
    return protected


def kept_references(decisions: list[Decision], digests: dict[str, str], catalog: Catalog) -> dict[str, str]:
    """Digest → why a kept tag needs it: the kept tags' own digests, and the images of kept indexes."""
    needed: dict[str, str] = {}
    for decision in decisions:
        if not decision.delete:
            digest = digests[decision.name]
            needed.setdefault(digest, f"digest also tagged {decision.name}")
            for child in catalog.manifests[digest].children:
                needed.setdefault(child, f"part of the index tagged {decision.name}")
    return needed


def keep_shared_digests(decisions: list[Decision], digests: dict[str, str], catalog: Catalog) -> list[Decision]:
    """A tag to delete whose digest a kept tag needs is kept: the registry can only delete the digest."""
    needed = kept_references(decisions, digests, catalog)
    return [
        Decision(d.name, False, f"kept: {needed[digests[d.name]]} (the registry deletes digests, not tags)")
        if d.delete and digests[d.name] in needed
        else d
        for d in decisions
    ]


def candidates(digests: dict[str, str], catalog: Catalog) -> list[Candidate]:
    return plan_order(Candidate(tag, catalog.manifests[d].created, semver_release(tag)) for tag, d in digests.items())


def read_tags(catalog: Catalog, log: logging.Logger) -> dict[str, str]:
    """Tag → digest for every tag (paged tag list, one manifest read per tag)."""
    digests = {}
    for tag in catalog.registry.list_tags():
        if not is_reference(tag):
            log.warning("The registry lists a tag '%s' that is not a valid tag: it is skipped.", shown(tag))
            continue
        digest = catalog.resolve(tag)
        if digest is not None:  # deleted by someone else since the list was read
            digests[tag] = digest
    log.info("Read %d tags of %s.", len(digests), catalog.registry.repository)
    return digests


def delete_tags(catalog: Catalog, decisions: list[Decision], digests: dict[str, str], log: logging.Logger) -> list[str]:
    """Deletes each doomed digest; returns the tags gone, in order. An index's own images go
    first (those nothing kept needs), the index last: stopped in between, the index is still
    tagged and a re-run finds it and finishes, instead of leaving untagged images nobody lists."""
    needed = kept_references(decisions, digests, catalog)
    tagged = set(digests.values())
    deleted: list[str] = []
    done: set[str] = set()
    for decision in decisions:
        digest = digests[decision.name]
        if not decision.delete or digest in done:
            continue
        children = [c for c in catalog.manifests[digest].children if c not in needed and c not in tagged]
        for child in children:
            if child not in done:
                catalog.registry.delete_manifest(child)
                done.add(child)
        catalog.registry.delete_manifest(digest)
        done.add(digest)
        tags = [d.name for d in decisions if d.delete and digests[d.name] == digest]
        images = f" and {len(children)} image{'s' if len(children) != 1 else ''} of its index" if children else ""
        log.info("Deleted %s (%s)%s.", " ".join(tags), digest, images)
        deleted.extend(tags)
    return deleted


def cleanup(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    target = Target.from_config(config)
    catalog = Catalog(RegistryDeleter.from_config(config, log, masker))
    log.info("Reading the tags of %s.", target.reference)
    digests = read_tags(catalog, log)
    now = datetime.now(UTC)
    decisions = decide(candidates(digests, catalog), config.cleanup, protected_tags(digests), now)
    decisions = keep_shared_digests(decisions, digests, catalog)
    print_plan(log, KIND_LABEL, decisions, config.dry_run, package=target.reference)
    deleted = [] if config.dry_run else delete_tags(catalog, decisions, digests, log)
    return cleanup_publication(KIND_LABEL, target.reference, deleted, decisions, config.dry_run)

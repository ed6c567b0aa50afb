"""Publisher for PACKAGE_TYPE=docker: build an image (or take LOCAL_IMAGE, or an IMAGE_ARCHIVE),
tag it by the release rules, push every tag — natively over the distribution API (`native`,
`oci_push`) or through the Docker engine (`engine`) — and report the digest. INDEX_FROM_TAGS
instead ties images already in the repository into one multi-platform index (`index`).

Order matters: local inputs, then the registry's tag list (which also proves the credentials),
then the tag plan, printed in full, and only then the engine — so a mistake never leaves half a
release behind.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pipe.auth import Credentials
from pipe.config import Config
from pipe.containers import bases, engine, index, native
from pipe.containers.archive import ArchivedImage, open_archive
from pipe.containers.mediatypes import OCI_INDEX
from pipe.containers.oci_push import PushResult, PushStats, in_parallel, point_tags, verify_tags
from pipe.containers.registry import RegistryReader, RegistryWriter, image_repository, sha256_digest
from pipe.containers.tags import TagPlan, plan_tags
from pipe.errors import ConfigError, InputError
from pipe.masking import SecretMasker
from pipe.outputs import Publication

OCI = "org.opencontainers.image."
# What PUSH_METHOD "auto" means for an image in the engine, chosen by bench/oci_push.py (README).
AUTO_PUSH_METHOD = "native"


@dataclass(frozen=True)
class Target:
    """Where the image goes: the engine's reference (`host[/path]/ws/image`) and the name the
    distribution API uses under `/v2/` (`[path/]ws/image`)."""

    reference: str
    name: str
    image: str

    @classmethod
    def from_config(cls, config: Config) -> Target:
        name = image_repository(config)
        return cls(reference=f"{config.registry.host}/{name}", name=name, image=str(config.docker.image_name))


def publish(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    if config.docker.index_from_tags:
        return publish_index(config, log, masker)
    with ExitStack() as stack:
        archive = None
        if config.docker.image_archive:
            archive = stack.enter_context(open_archive(config.resolve(config.docker.image_archive)))
        return publish_image(config, log, masker, archive)


def publish_image(
    config: Config, log: logging.Logger, masker: SecretMasker, archive: ArchivedImage | None
) -> Publication:
    settings = config.docker
    target = Target.from_config(config)
    build_request = None if settings.local_image or archive else prepare_build(config)
    configured_cache = None
    if build_request is not None:
        # The build's modules (BuildKit, the cache) load only for a build: a run pushing an image
        # it was given starts sooner without them.
        from pipe.containers import build, build_cache

        configured_cache = build_cache.configured_sources(settings.cache_from, config.context, target.reference)

    reader = RegistryReader.from_config(config, log, masker)
    guesses = () if config.dry_run else tags_to_guess(config)
    existing, prefetched = native.list_tags_reading_manifests(reader, guesses)
    log.info("%s has %d tag(s) in the registry.", target.reference, len(existing))
    plan = plan_tags(settings.tags, config.context, existing)
    log_plan(plan, target, log)
    if config.dry_run:
        return dry_run(config, target, plan, log)

    # What the tags point at now, to tell a re-run from a move once the digest is known.
    before = native.current_tags(reader, plan.tags, existing, prefetched)
    if archive is not None:
        return push_image_archive(config, target, plan, archive, before, existing, log, masker)
    api = engine.connect(config.environment)
    if build_request is None:
        local = use_local_image(api, config, log)
        image_id = local.id
    else:
        local = None
        sources = []
        if settings.cache_from != ():
            sources = build_cache.cache_sources(configured_cache, plan.tags, existing, before, target.reference)
        bases_here = build_cache.registry_bases(dockerfile_bases(build_request), config.registry.host)
        request = replace(build_request, labels=image_labels(config, plan))
        image_id = build.build_image(api, config, request, sources, bases_here, reader.auth.credentials, log)
    engine.tag_image(api, image_id, target.reference, plan.tags)
    if push_method(config) == "native":
        image = local or engine.describe_image(api, image_id)
        images = dockerfile_bases(build_request) + bases.declared_bases(image.labels)
        writer, sources = native_writer(config, target, log, masker, images)
        result, _ = native.push_engine_image(api, writer, image, plan.tags, before, existing, log, sources)
        digest = result.digest
    else:
        digest = push_all(api, reader.auth.credentials, target, plan, log)
    return publication(target, plan, digest, before, image_id)


def tags_to_guess(config: Config) -> tuple[str, ...]:
    """Every tag the run may push (each floating tag of a release, as if all moved) and latest:
    their manifests are read while the tag list is, not after it."""
    try:
        planned = plan_tags(config.docker.tags, config.context, ()).tags
    except ConfigError:
        return ()  # reported once the tag list is read, as it always was
    return tuple(dict.fromkeys((*planned, "latest")))


def dockerfile_bases(build_request: engine.BuildRequest | None) -> list[str]:
    """The images the Dockerfile just built names in its `FROM` lines."""
    if build_request is None:
        return []
    text = build_request.dockerfile.read_text(encoding="utf-8", errors="replace")
    return bases.base_images(text, build_request.build_args)


def native_writer(
    config: Config, target: Target, log: logging.Logger, masker: SecretMasker, base_images: list[str]
) -> tuple[RegistryWriter, list[tuple[str, str]]]:
    """The registry writer, and those base images that live in this workspace of the registry:
    their layers are mounted from there instead of uploaded."""
    sources = bases.mount_sources(base_images, config.registry.host, target.name)
    return native.writer_for(config, log, masker, sources), sources


def push_method(config: Config) -> str:
    method = config.docker.push_method
    return AUTO_PUSH_METHOD if method == "auto" else method


def push_image_archive(
    config: Config, target: Target, plan: TagPlan, archive: ArchivedImage, before, existing, log, masker
) -> Publication:
    """IMAGE_ARCHIVE: no engine, no build; the archive's image as it is."""
    warn_ignored_build_settings(config, log, "IMAGE_ARCHIVE")
    log.info("Pushing IMAGE_ARCHIVE %s (%s) with no Docker engine.", config.docker.image_archive, archive.kind)
    declared = [name for manifest in archive.manifests for name in bases.declared_bases(*manifest.base_hints)]
    writer, sources = native_writer(config, target, log, masker, declared)
    result, _ = native.push_archive(writer, archive, plan.tags, before, existing, log, sources)
    return publication(target, plan, result.digest, before, native.image_id_of(archive, result))


def publish_index(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    """INDEX_FROM_TAGS: the images already in the repository tied into one index, tagged by the
    release rules. Every source is read and checked before anything is written; no engine."""
    warn_ignored_build_settings(config, log, "INDEX_FROM_TAGS")
    target = Target.from_config(config)
    sources = index.expand_sources(config.docker.index_from_tags, config.context)
    reader = RegistryReader.from_config(config, log, masker)
    built = index.index_from_tags(reader, sources, target.name, target.reference)
    digest = sha256_digest(built.body)
    attestations = len(built.entries) - len(built.platforms)
    log.info(
        "Index of %s: %s%s (%s).", " ".join(sources), " ".join(built.platforms),
        f", {attestations} attestation(s)" if attestations else "", digest,
    )  # fmt: skip
    existing = reader.list_tags()
    plan = plan_tags(config.docker.tags, config.context, existing)
    check_index_tags(plan, [index.source_tag(source, target.name, target.reference) for source in sources])
    log_plan(plan, target, log)
    if config.dry_run:
        log.info("Dry run: the index that would be pushed:")
        for line in index.readable(built):
            log.info("%s", line)
        summary = f"dry run: would push the index of {' '.join(built.platforms)} as {target.reference}:"
        return Publication(summary=summary + " ".join(plan.tags), details=plan_details(target, plan))
    present = [tag for tag in plan.tags if tag in existing]
    before = dict(zip(present, in_parallel(reader.tag_digest, present), strict=True))
    if all(before.get(tag) == digest for tag in plan.tags):
        log.info("The index is already at every tag with the same digest: nothing to push.")
    else:
        writer = native.writer_for(config, log, masker)
        # By digest first, so the index exists before any tag names it; then the same bytes per tag.
        writer.with_retries(lambda: writer.put_manifest(digest, built.body, OCI_INDEX), "pushing the index")
        log.info("Pushed the index %s (%d entries).", digest, len(built.entries))
        point_tags(writer, PushResult(digest, OCI_INDEX, built.body, PushStats()), plan.tags, before, log)
        verify_tags(writer, plan.tags, digest)
    done = publication(target, plan, digest, before, digest)
    platforms = " ".join(built.platforms)
    return replace(
        done,
        summary=done.summary.replace("pushed ", f"pushed the index of {platforms} as ", 1),
        variables=dict(done.variables) | {"IMAGE_PLATFORMS": platforms},
        details=dict(done.details) | {"platforms": list(built.platforms), "sources": list(sources)},
    )


def check_index_tags(plan: TagPlan, source_tags: list[str]) -> None:
    """The index must not take the tag of one of its own sources: that image would be lost."""
    clash = [tag for tag in plan.tags if tag in source_tags]
    if clash:
        raise ConfigError(
            f"the index would be tagged {' '.join(clash)}, which INDEX_FROM_TAGS names as a source: give the "
            "platform images their own tags (e.g. TAGS: '{version}-amd64' in their steps) and the index the release's."
        )


def use_local_image(api, config: Config, log: logging.Logger) -> engine.EngineImage:
    warn_ignored_build_settings(config, log)
    image = engine.describe_image(api, str(config.docker.local_image))
    log.info("Using LOCAL_IMAGE %s (%s).", config.docker.local_image, short_id(image.id))
    return image


# --- inputs ----------------------------------------------------------------------------------


def prepare_build(config: Config) -> engine.BuildRequest:
    """Check the build inputs before anything talks to the registry or the engine."""
    settings = config.docker
    context = config.resolve(settings.build_context)
    dockerfile = config.resolve(settings.dockerfile)
    if not context.is_dir():
        raise InputError(
            f"BUILD_CONTEXT '{settings.build_context}' is not a directory: "
            "set BUILD_CONTEXT to the folder to build from."
        )
    if not dockerfile.is_file():
        raise InputError(
            f"DOCKERFILE '{settings.dockerfile}' does not exist: set DOCKERFILE to the Dockerfile's path "
            "(relative to the repository), or set LOCAL_IMAGE to push an image built earlier in the step."
        )
    return engine.BuildRequest(
        context=context,
        dockerfile=dockerfile,
        build_args=dict(settings.build_args),
        labels={},  # they name the version, known once the tags are planned: see image_labels
        target=settings.build_target,
    )


def image_labels(config: Config, plan: TagPlan) -> dict[str, str]:
    """The OCI labels (org.opencontainers.image.*), then the user's LABELS, which win on a clash."""
    context = config.context
    labels = {
        OCI + "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        OCI + "title": str(config.docker.image_name),
    }
    optional = {"revision": context.commit, "source": context.git_origin, "version": plan.version_label}
    labels.update({OCI + key: value for key, value in optional.items() if value})
    labels.update(dict(config.docker.labels))
    return labels


def warn_ignored_build_settings(config: Config, log: logging.Logger, source: str = "LOCAL_IMAGE") -> None:
    settings = config.docker
    ignored = [
        name
        for name, value in (
            ("BUILD_ARGS", settings.build_args),
            ("BUILD_TARGET", settings.build_target),
            ("LABELS", settings.labels),
            ("BUILDER", settings.builder != "auto"),
            ("CACHE_FROM", settings.cache_from is not None),
            ("BUILD_NETWORK", settings.build_network),
        )
        if value
    ]
    if ignored:
        log.warning(
            "%s is set, so nothing is built and %s %s ignored.",
            source,
            ", ".join(ignored),
            "is" if len(ignored) == 1 else "are",
        )


# --- plan and results ------------------------------------------------------------------------


def log_plan(plan: TagPlan, target: Target, log: logging.Logger) -> None:
    for note in plan.notes:
        log.info("%s.", note)
    log.info("Tags to push to %s: %s", target.reference, " ".join(plan.tags))
    if plan.release is not None:
        for floating in plan.floating:
            log.info("  %s", floating.describe(plan.release))


def dry_run(config: Config, target: Target, plan: TagPlan, log: logging.Logger) -> Publication:
    if config.docker.image_archive:
        source = f"IMAGE_ARCHIVE {config.docker.image_archive}"
    elif config.docker.local_image:
        source = f"LOCAL_IMAGE {config.docker.local_image}"
    else:
        source = config.docker.dockerfile
    log.info("Dry run: nothing is built or pushed.")
    moving = [tag.describe(plan.release) for tag in plan.moving if plan.release and tag.previous is not None]
    summary = f"dry run: would push {source} as {target.reference}:{' '.join(plan.tags)}"
    if moving:
        summary += f" ({'; '.join(moving)})"
    return Publication(summary=summary, details=plan_details(target, plan))


def push_all(api, credentials: Credentials, target: Target, plan: TagPlan, log: logging.Logger) -> str:
    digests: dict[str, str] = {}
    for tag in plan.tags:
        log.info("Pushing %s:%s", target.reference, tag)
        digests[tag] = engine.push(api, target.reference, tag, credentials, target.image, log)
    digest = digests[plan.tags[0]]
    if len(set(digests.values())) > 1:
        log.warning("The registry reported different digests per tag: %s", digests)
    return digest


def publication(
    target: Target, plan: TagPlan, digest: str, before: dict[str, str | None], image_id: str
) -> Publication:
    tags = " ".join(plan.tags)
    unchanged = [tag for tag in plan.tags if before.get(tag) == digest]
    if len(unchanged) == len(plan.tags):
        summary = f"{target.reference}:{tags} already pointed at {digest}: nothing changed"
    else:
        summary = f"pushed {target.reference}:{tags} ({digest})"
    details = plan_details(target, plan) | {
        "digest": digest,
        "image_id": image_id,
        "unchanged_tags": unchanged,
        "previous_digests": {tag: value for tag, value in before.items() if value},
    }
    return Publication(
        summary=summary,
        variables={"IMAGE_DIGEST": digest, "IMAGE_REFERENCE": f"{target.reference}@{digest}", "IMAGE_TAGS": tags},
        details=details,
    )


def plan_details(target: Target, plan: TagPlan) -> dict[str, object]:
    return {
        "repository": target.reference,
        "tags": list(plan.tags),
        "version": plan.version_label,
        "floating": {tag.name: tag.describe(plan.release) for tag in plan.floating} if plan.release else {},
    }


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]

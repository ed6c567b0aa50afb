"""Images a build uses from the registry: its cache sources (CACHE_FROM) and base images on the
pipe's own registry, pulled into the engine with the pipe's credentials before the build and
removed from it afterwards, unless the engine had them before.

Why the pipe pulls them itself: BuildKit in the Docker engine fetches a `cachefrom` image on its
own only from a registry that lets it in without credentials (it has no session to ask for them,
and ignores a source that answers 401 without a word); from an image in the engine it reads the
inline cache metadata and reuses the layers of every step that matches. The classic builder uses
pulled images as cache the same way (`--cache-from`). A base image on the pipe's registry
(`FROM <registry>/<workspace>/base:1`) needs credentials just the same; both builders use the
engine's copy when there is one.

Each Pipelines step gets a fresh Docker engine: the image the last release pushed is the only
cache there is. So by default the sources are the tags this run is about to move that already
exist (`latest`, the branch's tag…), which makes every release after the first start warm.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipe.auth import Credentials
from pipe.containers.engine import engine_auth, engine_errors, stream_error
from pipe.containers.tags import check_tag, expand_template, placeholder_values
from pipe.context import PipelinesRun
from pipe.errors import ConfigError

if TYPE_CHECKING:
    import docker

# distribution's reference grammar: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
REFERENCE = re.compile(
    rf"^(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


@dataclass(frozen=True)
class CacheSource:
    """An image to build from: a full reference, and whether the registry's tag list already
    says it does not exist (for tags of the image being published)."""

    reference: str
    missing: bool = False


@dataclass
class PulledImages:
    """What the build step has in the engine for the build: the cache sources it can use, and
    the references it pulled (to remove afterwards)."""

    cache_from: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)


# --- which sources -----------------------------------------------------------------------------


def full_reference(entry: str, target_reference: str) -> str:
    """A CACHE_FROM entry (placeholders filled in) as a full reference: a bare tag is a tag of
    the image being published; a reference without tag or digest means `:latest`, as for docker."""
    if not any(mark in entry for mark in "/:@"):
        return f"{target_reference}:{check_tag(entry, f'CACHE_FROM entry {entry!r}')}"
    if not REFERENCE.match(entry):
        raise ConfigError(
            f"CACHE_FROM entry '{entry[:120]}' is not a valid image reference: write a tag of IMAGE_NAME "
            "(e.g. latest or {branch}) or a full reference like registry.example.com/team/image:tag."
        )
    last = entry.rsplit("/", 1)[-1]
    return entry if (":" in last or "@" in last) else f"{entry}:latest"


def configured_sources(
    entries: tuple[str, ...] | None, context: PipelinesRun, target_reference: str
) -> tuple[str, ...] | None:
    """CACHE_FROM as full references (checked before anything talks to a registry); None when
    it is not set (the default sources follow from the tag plan)."""
    if entries is None:
        return None
    values = placeholder_values(context)
    references = (full_reference(expand_template(entry, values, context, "CACHE_FROM"), target_reference)
                  for entry in entries)  # fmt: skip
    return tuple(dict.fromkeys(references))


def cache_sources(
    configured: tuple[str, ...] | None,
    plan_tags: Sequence[str],
    existing: Iterable[str],
    digests: Mapping[str, str | None],
    target_reference: str,
) -> list[CacheSource]:
    """The sources to pull: CACHE_FROM's, or by default the tags this run moves that already
    exist, one per image (the floating tags of a release usually name the same one)."""
    existing = set(existing)
    if configured is not None:
        prefix = f"{target_reference}:"
        return [
            CacheSource(reference, missing=reference.startswith(prefix) and reference[len(prefix):] not in existing)
            for reference in configured
        ]  # fmt: skip
    sources: list[CacheSource] = []
    seen: set[str] = set()
    for tag in plan_tags:
        digest = digests.get(tag)
        if tag in existing and (digest is None or digest not in seen):
            sources.append(CacheSource(f"{target_reference}:{tag}"))
            seen.add(digest or tag)
    return sources


def registry_bases(base_images: Iterable[str], registry_host: str) -> list[str]:
    """The Dockerfile's base images on the pipe's registry (which need its credentials)."""
    found = [image for image in base_images if image.partition("/")[0] == registry_host and "/" in image]
    return list(dict.fromkeys(found))


# --- into the engine and out again -------------------------------------------------------------


class PullFailed(Exception):
    """A pull that did not bring the image; its message is the engine's words."""


def in_engine(api: docker.APIClient, reference: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        api.inspect_image(reference)
    except ImageNotFound:
        return False
    except engine_errors():
        return False
    return True


def pull(api: docker.APIClient, reference: str, auth: Mapping[str, str] | None) -> str | None:
    """Pull one image; its digest as the engine reports it."""
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(reference)
    digest = None
    try:
        for chunk in api.pull(repository, tag=tag, stream=True, decode=True, auth_config=dict(auth) if auth else None):
            message = stream_error(chunk)
            if message is not None:
                raise PullFailed(" ".join(message.split()))
            status = str(chunk.get("status") or "")
            if status.startswith("Digest: "):
                digest = status.removeprefix("Digest: ").strip()
    except APIError as error:
        raise PullFailed(" ".join(str(error.explanation or error).split())) from None
    except engine_errors() as error:
        raise PullFailed(" ".join(str(error).split())[:200]) from None
    return digest


def auth_for(reference: str, registry_host: str, credentials: Credentials) -> dict[str, str] | None:
    """The pipe's credentials go to the pipe's registry only, never to another host."""
    if reference.partition("/")[0] != registry_host:
        return None
    return engine_auth(credentials)


def bring_in(
    api: docker.APIClient, reference: str, registry_host: str, credentials: Credentials, pulled: list[str]
) -> str:
    """Make sure the engine has `reference`: what happened, for the log. Raises PullFailed."""
    if in_engine(api, reference):
        return "in the Docker engine already"
    digest = pull(api, reference, auth_for(reference, registry_host, credentials))
    pulled.append(reference)
    return f"pulled{f' ({digest})' if digest else ''}"


def prepare(
    api: docker.APIClient,
    sources: Sequence[CacheSource],
    bases: Sequence[str],
    registry_host: str,
    credentials: Credentials,
    log: logging.Logger,
) -> PulledImages:
    """Pull the base images and cache sources the engine lacks. A cache source that is missing
    or cannot be pulled is a warning: the build goes on without it, cold. A base image that cannot
    be pulled is left to the builder, which reports it in its own words."""
    images = PulledImages()
    for base in bases:
        try:
            log.info("Base image %s: %s.", base, bring_in(api, base, registry_host, credentials, images.pulled))
        except PullFailed as failure:
            log.debug("pulling the base image %s failed: %s", base, failure)
    for source in sources:
        if source.missing:
            log.warning("Cache source %s does not exist in the registry: building without it.", source.reference)
            continue
        try:
            done = bring_in(api, source.reference, registry_host, credentials, images.pulled)
        except PullFailed as failure:
            log.warning("Cache source %s could not be pulled (%s): building without it.", source.reference, failure)
            continue
        log.info("Cache source %s: %s.", source.reference, done)
        images.cache_from.append(source.reference)
    return images


def remove_pulled(api: docker.APIClient, images: PulledImages, built: str | None, log: logging.Logger) -> None:
    """Take out what `prepare` pulled: by reference, never by id or by force, so that an image
    that also carries another name stays; and never the image just built (a build entirely from
    the cache can come out as the very image it was cached from)."""
    for reference in images.pulled:
        with contextlib.suppress(*engine_errors()):
            if built is not None and api.inspect_image(reference).get("Id") == built:
                continue
            api.remove_image(reference)
            log.debug("removed %s from the Docker engine", reference)

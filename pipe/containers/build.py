"""The build step of an image release: which builder (BUILDER), which network for the RUN steps
(BUILD_NETWORK), which cache (CACHE_FROM, see `build_cache`), and the log line that says which
builder ran and why.

`auto` builds with BuildKit when the engine has it, and must never break a build that works
with the classic builder today: an engine without a bridge network gets BuildKit's RUN steps
without network (what the classic builder's get there), and BuildKit that cannot run at all on an
engine (a refusal, no network) falls back to the classic builder with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pipe.auth import Credentials
from pipe.config import Config, DockerSettings
from pipe.containers import build_cache, buildkit, engine
from pipe.containers.build_cache import CacheSource
from pipe.errors import ConfigError, EngineError

if TYPE_CHECKING:
    import docker

# The modes BuildKit's RUN steps know; any other BUILD_NETWORK names a network of the engine,
# which only the classic builder can attach a build to.
BUILDKIT_NETWORKS = ("default", "host", "none")
NO_BRIDGE_NOTE = (
    "RUN steps without network: the Docker engine has no bridge network, and the classic builder's get none "
    "there either; BUILD_NETWORK: host gives them the host's"
)


@dataclass(frozen=True)
class BuilderChoice:
    builder: str  # "buildkit" or "classic"
    network: str | None
    why: str = ""  # why this builder or network, for the log
    remedy: str = ""  # what to do when the Dockerfile needs BuildKit and this is the classic builder


def choose_builder(api: docker.APIClient, settings: DockerSettings) -> BuilderChoice:
    network = settings.build_network
    if settings.builder == "classic":
        return BuilderChoice("classic", network, "BUILDER is classic", "set BUILDER to auto (or buildkit)")
    supported, described = buildkit.engine_support(api)
    if not supported:
        if settings.builder == "buildkit":
            raise EngineError(
                f"BUILDER is buildkit, but the Docker engine ({described}) has no BuildKit: run the step on a "
                "Docker engine of version 18.09 or later, or set BUILDER to auto or classic."
            )
        remedy = "run the step on a Docker engine with BuildKit (18.09 or later)"
        return BuilderChoice("classic", network, f"the Docker engine ({described}) has no BuildKit", remedy)
    if network is not None and network not in BUILDKIT_NETWORKS:
        if settings.builder == "buildkit":
            raise ConfigError(
                f"BUILD_NETWORK '{network}' names a network, which BuildKit's RUN steps cannot join: set "
                "BUILD_NETWORK to default, host or none, or BUILDER to classic."
            )
        why = f"BUILD_NETWORK '{network}' names a network, which only the classic builder can use"
        return BuilderChoice("classic", network, why, "set BUILD_NETWORK to default, host or none")
    if network in (None, "default") and not buildkit.has_bridge_network(api):
        return BuilderChoice("buildkit", "none", NO_BRIDGE_NOTE)
    return BuilderChoice("buildkit", network)


def build_image(
    api: docker.APIClient,
    config: Config,
    request: engine.BuildRequest,
    sources: Sequence[CacheSource],
    bases: Sequence[str],
    credentials: Credentials,
    log: logging.Logger,
) -> str:
    """Build the image with the chosen builder from the cache sources (pulled for it and removed
    again after it, with the registry client's `credentials`); the image id."""
    choice = choose_builder(api, config.docker)
    log_building(config.docker, choice, log)
    if not sources:
        off = config.docker.cache_from == ()
        log.info("CACHE_FROM is none: building without cache sources." if off else
                 "No earlier image of these tags in the registry: this build starts cold.")  # fmt: skip
    images = build_cache.prepare(api, sources, bases, config.registry.host, credentials, log)
    built = None
    try:
        request = replace(request, cache_from=tuple(images.cache_from), network=choice.network)
        built = run_builder(api, config, choice, request, log)
    finally:
        build_cache.remove_pulled(api, images, built, log)
    log.info("Built image %s.", built.removeprefix("sha256:")[:12])
    return built


def log_building(settings: DockerSettings, choice: BuilderChoice, log: logging.Logger) -> None:
    what = f"{settings.dockerfile} (context {settings.build_context})"
    if choice.builder == "buildkit":
        log.info("Building %s with BuildKit%s.", what, f" ({choice.why})" if choice.why else "")
    else:
        log.info("Building %s with the classic builder (%s).", what, choice.why)


def run_builder(
    api: docker.APIClient, config: Config, choice: BuilderChoice, request: engine.BuildRequest, log: logging.Logger
) -> str:
    settings = config.docker
    if choice.builder == "buildkit":
        try:
            return buildkit.build(api, request, log)
        except buildkit.BuildKitUnusable as error:
            if settings.builder != "auto":
                raise
            log.warning("BuildKit could not build on this Docker engine (%s)", error.message.rstrip("."))
            why = "BuildKit could not build on this Docker engine"
            choice = BuilderChoice("classic", settings.build_network, why, "see the warning above")
            request = replace(request, network=settings.build_network)
            log_building(settings, choice, log)
    try:
        return engine.build(api, request, log)
    except engine.NeedsBuildKit as error:
        raise EngineError(f"{error.message}, and {choice.why}: {choice.remedy}.") from None

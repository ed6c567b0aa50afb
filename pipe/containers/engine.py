"""The Docker engine, through docker-py's low-level API: build (classic builder), tag, push.

docker-py reports build and push failures *inside* the streamed JSON (`{"error": …}`), not as
exceptions, so every streamed line is checked here. Credentials are passed per push call
(`auth_config`): nothing runs `docker login` and nothing is written to `~/.docker/config.json`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from pipe.auth import Credentials
from pipe.containers.registry import name_unknown_hint
from pipe.errors import EngineError, InputError, RegistryError
from pipe.http import CREDENTIALS_HINT

# Engine calls that should answer at once (ping, inspect, tag).
API_TIMEOUT = 60
# Build and push stream; a silent build step may legitimately take long between two lines.
STREAM_TIMEOUT = 3600

ENGINE_HINT = "add `services: - docker` to the step (or point DOCKER_HOST at a running Docker engine)"

# docker-py takes ~15 ms to import and an IMAGE_ARCHIVE push never talks to an engine, so it is
# imported by `connect` alone. Every other function here takes the client `connect` returned:
# docker is loaded by then, and their own `from docker.errors import …` costs nothing.
if TYPE_CHECKING:
    import docker


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    target: str | None
    # Images in the engine to use as build cache (`build_cache` pulls them first).
    cache_from: tuple[str, ...] = ()
    # `docker build --network`; None: the engine's default.
    network: str | None = None


class NeedsBuildKit(EngineError):
    """The classic builder met syntax only BuildKit knows (`RUN --mount`, `COPY --chmod`, …)."""


def engine_errors() -> tuple[type[BaseException], ...]:
    """What a failed engine call raises: the engine's refusal or the connection to it failing.
    Modules that drive the engine catch these without importing docker or requests themselves."""
    from docker.errors import APIError

    return (APIError, requests.RequestException)


def connect(environment: Mapping[str, str]) -> docker.APIClient:
    """The engine named by DOCKER_HOST (Pipelines' docker service). Asking for its API version
    (which docker-py does first) proves it answers: no separate ping."""
    import docker
    from docker.errors import DockerException

    where = environment.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient.from_env(environment=dict(environment), timeout=API_TIMEOUT)
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"cannot reach the Docker engine at {where} ({short_reason(error)}): {ENGINE_HINT}."
        ) from None
    return client.api


def short_reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "No such file or directory", "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return " ".join(text.split())[:160]


@dataclass(frozen=True)
class EngineImage:
    """An image of the engine as its inspection tells: id, layers (uncompressed digests), size
    and labels, all known before any export."""

    id: str
    diff_ids: tuple[str, ...]
    size: int
    labels: Mapping[str, str]


def describe_image(api: docker.APIClient, reference: str) -> EngineImage:
    """An image already in the engine (LOCAL_IMAGE, or one just built)."""
    from docker.errors import APIError, ImageNotFound

    try:
        details = api.inspect_image(reference)
    except ImageNotFound:
        raise InputError(
            f"LOCAL_IMAGE '{reference}' is not in the Docker engine: build it earlier in the same step "
            "(e.g. docker build -t " + reference + " .), or leave LOCAL_IMAGE out to let the pipe build it."
        ) from None
    except (APIError, requests.RequestException) as error:
        raise EngineError(
            f"the Docker engine could not inspect '{reference}' ({short_reason(error)}): {ENGINE_HINT}."
        ) from None
    return EngineImage(
        id=details["Id"],
        diff_ids=tuple(details.get("RootFS", {}).get("Layers") or ()),
        size=int(details.get("Size") or 0),
        labels=dict((details.get("Config") or {}).get("Labels") or {}),
    )


# --- build -----------------------------------------------------------------------------------


def build(api: docker.APIClient, request: BuildRequest, log: logging.Logger) -> str:
    """Build with the classic builder, streaming its output as log lines; the image id."""
    from docker.errors import APIError

    try:
        stream = api.build(
            path=str(request.context),
            dockerfile=str(request.dockerfile),
            buildargs=dict(request.build_args),
            labels=dict(request.labels),
            target=request.target,
            cache_from=list(request.cache_from) or None,
            network_mode=request.network,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=STREAM_TIMEOUT,
        )
        return follow_build(stream, log)
    except APIError as error:
        raise EngineError(f"the Docker engine refused the build: {error.explanation or error}.") from None
    except requests.RequestException as error:
        raise EngineError(f"lost the Docker engine during the build ({short_reason(error)}): {ENGINE_HINT}.") from None


def stream_error(chunk: Mapping) -> str | None:
    """The error a line of the engine's streamed answer reports (`{"error": …}` or `errorDetail`),
    None for any other line: docker-py raises nothing for these."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    return str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or "unknown error")


def engine_auth(credentials: Credentials) -> dict[str, str]:
    """The pipe's credentials as the engine's `auth_config`: given per request, never stored."""
    return {"username": credentials.username, "password": credentials.token}


def follow_build(stream: Iterable[Mapping], log: logging.Logger) -> str:
    """Log the builder's output and return the image id; an error line ends the build with the
    instruction that failed and the builder's words."""
    step = None
    image_id = None
    pending = ""
    for chunk in stream:
        message = stream_error(chunk)
        if message is not None:
            where = f" at {step.strip()}" if step else ""
            if "requires buildkit" in message.lower():
                # "the --mount option requires BuildKit. Refer to <docs> to learn how to …": the first sentence.
                raise NeedsBuildKit(f"the Dockerfile needs BuildKit ({message.split('. ')[0].strip()})")
            raise EngineError(
                f"the image build failed{where}: {' '.join(message.split())}: fix the Dockerfile and re-run."
            )
        if "aux" in chunk and isinstance(chunk["aux"], Mapping) and chunk["aux"].get("ID"):
            image_id = chunk["aux"]["ID"]
        text = chunk.get("stream")
        if not text:
            continue
        # The classic builder sends "Step 1/4 : FROM x" and its newline as separate chunks.
        pending += text
        *lines, pending = pending.split("\n")
        for line in lines:
            if line.startswith("Step "):
                step = line
            if line.strip():
                log.log(builder_line_level(line), "  %s", line.rstrip())
    if pending.strip():
        log.info("  %s", pending.rstrip())
    if not image_id:
        raise EngineError(
            "the image build ended without an image id: re-run the step; if it persists, run with DEBUG: 'true'."
        )
    return image_id


def builder_line_level(line: str) -> int:
    """The builder's own bookkeeping (layer ids, intermediate containers) only with DEBUG; the
    steps and what they print always."""
    text = line.strip()
    if text.startswith("--->") or text.startswith("Removing intermediate container"):
        return logging.DEBUG
    return logging.INFO


# --- export ----------------------------------------------------------------------------------


def export_chunks(api: docker.APIClient, image_id: str, chunk_size: int) -> Iterator[bytes]:
    """The engine's `docker save` of one image as a stream of chunks; the engine failing on the
    way is the user's error about the export."""
    from docker.errors import APIError

    try:
        yield from api.get_image(image_id, chunk_size=chunk_size)
    except (APIError, requests.RequestException) as error:
        raise export_error(image_id, error) from None


def export_error(image_id: str, error: Exception) -> EngineError:
    return EngineError(
        f"the Docker engine could not export image {image_id[:19]} ({short_reason(error)}): "
        "re-run the step, or set PUSH_METHOD: engine to push through the engine."
    )


# --- tag and push ----------------------------------------------------------------------------


def tag_image(api: docker.APIClient, image_id: str, repository: str, tags: Iterable[str]) -> None:
    from docker.errors import APIError

    for tag in tags:
        try:
            api.tag(image_id, repository, tag, force=True)
        except (APIError, requests.RequestException) as error:
            raise EngineError(
                f"the Docker engine could not tag the image as {repository}:{tag} ({short_reason(error)})."
            ) from None


def push(
    api: docker.APIClient, repository: str, tag: str, credentials: Credentials, image: str, log: logging.Logger
) -> str:
    """Push one tag; its manifest digest as the registry reported it."""
    from docker.errors import APIError

    try:
        stream = api.push(repository, tag=tag, auth_config=engine_auth(credentials), stream=True, decode=True)
        return follow_push(stream, f"{repository}:{tag}", image, log)
    except APIError as error:
        raise push_error(f"{repository}:{tag}", str(error.explanation or error), image) from None
    except requests.RequestException as error:
        raise EngineError(
            f"lost the Docker engine while pushing {repository}:{tag} ({short_reason(error)}): {ENGINE_HINT}."
        ) from None


def follow_push(stream: Iterable[Mapping], reference: str, image: str, log: logging.Logger) -> str:
    digest = None
    for chunk in stream:
        message = stream_error(chunk)
        if message is not None:
            raise push_error(reference, message, image)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            digest = aux["Digest"]
        status = chunk.get("status")
        if status in ("Pushed", "Layer already exists", "Mounted from"):
            log.debug("layer %s: %s", chunk.get("id"), status)
    if not digest:
        raise EngineError(f"pushing {reference} ended without a digest from the registry: re-run the step.")
    return digest


# The registry's refusal, as the engine words it, → what to do about it.
PUSH_REFUSALS = (
    (
        ("unauthorized", "authentication required", "no basic auth credentials", "incorrect username or password"),
        CREDENTIALS_HINT,
    ),
    (
        ("name unknown", "name_unknown", "repository name not known"),
        None,  # name_unknown_hint(image)
    ),
    (
        ("denied", "forbidden", "insufficient_scope", "not authorized"),
        "the credentials may not push this image: link the package to this repository in Bitbucket and "
        "make sure the token may write packages",
    ),
    (
        ("server gave http response to https client",),
        "the Docker engine talks HTTPS to this registry: use an https:// REGISTRY_URL, or add the registry "
        "to the engine's insecure-registries",
    ),
    (
        ("connection refused", "no such host", "i/o timeout", "dial tcp", "tls:", "x509"),
        "the Docker engine could not reach the registry: check REGISTRY_URL and that the registry is reachable",
    ),
)


def push_error(reference: str, message: str, image: str) -> RegistryError:
    said = " ".join(message.split())
    lowered = said.lower()
    for needles, hint in PUSH_REFUSALS:
        if any(needle in lowered for needle in needles):
            return RegistryError(f"pushing {reference} failed ({said}): {hint or name_unknown_hint(image)}.")
    return RegistryError(
        f"pushing {reference} failed ({said}): re-run the step; if it persists, run with DEBUG: 'true'."
    )

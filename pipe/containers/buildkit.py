"""Builds with BuildKit through the Docker Engine API: `POST /build?version=2` with the build
context as a tar in the body. No BuildKit session is needed for that: the engine's built-in
Dockerfile frontend reads the context from the tar (no build secrets or ssh forwarding, which
would need one). Images get BuildKit's inline cache metadata, so a later build can use them as
its cache (`build_cache`).

docker-py builds only with the classic builder, so the request is made here, on its API client
(a requests session), and the stream read line by line; progress arrives as encoded status
messages that `buildkit_progress` turns into log lines.
"""

from __future__ import annotations

import json
import logging
import tarfile
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

import requests

from pipe.containers.buildkit_progress import TRACE_ID, BuildProgress, decode_trace
from pipe.containers.engine import ENGINE_HINT, STREAM_TIMEOUT, BuildRequest, short_reason, stream_error
from pipe.errors import EngineError

if TYPE_CHECKING:
    import docker

# BuildKit came with Docker 18.09 (API 1.39), on Linux engines.
MIN_API_VERSION = (1, 39)
# Asks BuildKit to write its cache metadata into the image's config.
INLINE_CACHE_ARG = "BUILDKIT_INLINE_CACHE"
# The longest name a plain tar header holds in one 512-byte block (see context_tar).
PLAIN_NAME_BYTES = 99


class BuildKitUnusable(EngineError):
    """BuildKit itself could not run on this engine (refused, or no network for RUN steps):
    BUILDER auto falls back to the classic builder on this, never on a Dockerfile's own error."""


def engine_support(api: docker.APIClient) -> tuple[bool, str]:
    """Whether the engine builds with BuildKit, and how it describes itself."""
    from docker.errors import APIError

    try:
        version = api.version()
    except (APIError, requests.RequestException) as error:
        reason = short_reason(error)
        raise EngineError(f"the Docker engine did not say its version ({reason}): {ENGINE_HINT}.") from None
    api_version = str(version.get("ApiVersion") or "0")
    system = str(version.get("Os") or "unknown")
    described = f"Docker {version.get('Version') or '?'}, API {api_version}, {system}"
    return system == "linux" and version_tuple(api_version) >= MIN_API_VERSION, described


def version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)


def has_bridge_network(api: docker.APIClient) -> bool:
    """BuildKit's RUN steps use the engine's `bridge` network by default; an engine started
    without one (dockerd --bridge=none) fails them with "network bridge not found"."""
    from docker.errors import APIError

    try:
        networks = api.networks(names=["bridge"])
    except (APIError, requests.RequestException):
        return True  # unknown: let the build say
    return any(network.get("Name") == "bridge" for network in networks)


# --- the context -------------------------------------------------------------------------------


def ignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path, dockerfile_name: str) -> list[str]:
    """The context's paths that .dockerignore keeps (docker's own matching rules), ordered so
    that the first entry has a short plain name (see context_tar)."""
    from docker.utils.build import exclude_paths

    paths = exclude_paths(str(context), ignore_patterns(context), dockerfile=dockerfile_name)
    return sorted(paths, key=lambda path: (not is_plain_name(path), path))


def is_plain_name(name: str) -> bool:
    return name.isascii() and len(name.encode()) <= PLAIN_NAME_BYTES


def add_path(tar: tarfile.TarFile, full_path: Path, name: str) -> None:
    info = tar.gettarinfo(str(full_path), arcname=name)
    if info is None:  # a socket: not part of any image
        return
    # Whole seconds and no owner names keep every header to one plain block; owners are root's,
    # as the classic builder makes every COPY'd file.
    info.mtime = int(info.mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isfile():
        with open(full_path, "rb") as content:
            tar.addfile(info, content)
    else:
        tar.addfile(info)


def context_tar(context: Path, dockerfile: Path) -> tuple[IO[bytes], str]:
    """The build context as a tar file, and the Dockerfile's name in it.

    The engine hands the tar to BuildKit as a remote context, and BuildKit decides from its first
    1024 bytes whether it is a tar at all: so the first entry must have a one-block header (no
    PAX or long-name extension, which Python writes for fractional times and long names), or,
    failing that, the tar is gzip'd, which BuildKit recognises by its magic bytes.
    A Dockerfile outside the context travels in the tar under a name of its own, as docker does."""
    try:
        name = dockerfile.relative_to(context).as_posix()
        outside = False
    except ValueError:
        name, outside = f".dockerfile.{uuid.uuid4().hex[:12]}", True
    files = context_files(context, name)
    first = name if outside else (files[0] if files else name)
    body = tempfile.TemporaryFile()
    mode = "w" if is_plain_name(first) else "w:gz"
    with tarfile.open(fileobj=body, mode=mode, format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
        if outside:
            add_path(tar, dockerfile, name)
        for path in files:
            add_path(tar, context / path, path)
    body.seek(0)
    return body, name


# --- the build -------------------------------------------------------------------------------


def build_params(request: BuildRequest, dockerfile_name: str) -> dict[str, str]:
    params = {
        "version": "2",
        "dockerfile": dockerfile_name,
        "buildargs": json.dumps(dict(request.build_args) | {INLINE_CACHE_ARG: "1"}),
        "labels": json.dumps(dict(request.labels)),
    }
    if request.target:
        params["target"] = request.target
    if request.network:
        params["networkmode"] = request.network
    if request.cache_from:
        params["cachefrom"] = json.dumps(list(request.cache_from))
    return params


def build(api: docker.APIClient, request: BuildRequest, log: logging.Logger) -> str:
    """Build with BuildKit, the progress in the log; the image id."""
    body, dockerfile_name = context_tar(request.context, request.dockerfile)
    url = f"{api.base_url}/v{api.api_version}/build"
    try:
        with body:
            response = api.post(
                url,
                params=build_params(request, dockerfile_name),
                data=body,
                headers={"Content-Type": "application/x-tar"},
                stream=True,
                timeout=STREAM_TIMEOUT,
            )
            with response:
                if response.status_code >= 400:
                    raise BuildKitUnusable(f"the Docker engine refused the BuildKit build: {refusal(response)}.")
                return follow(stream_lines(response), log)
    except requests.RequestException as error:
        raise EngineError(f"lost the Docker engine during the build ({short_reason(error)}): {ENGINE_HINT}.") from None


def refusal(response: requests.Response) -> str:
    try:
        message = response.json().get("message")
    except ValueError:
        message = None
    return " ".join(str(message or response.text or f"HTTP {response.status_code}").split())[:300]


def stream_lines(response: requests.Response) -> Iterator[Mapping]:
    """The engine's stream: one JSON object per line."""
    for line in response.iter_lines():
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                continue  # not a message: nothing to show


def follow(stream: Iterable[Mapping], log: logging.Logger) -> str:
    """Log the build's progress and return the image id; an error ends the build with the step
    that failed (its output is in the log already) and BuildKit's words."""
    progress = BuildProgress(log)
    image_id = None
    for chunk in stream:
        message = stream_error(chunk)
        if message is not None:
            progress.finish()
            raise build_failure(" ".join(message.split()), progress.failed_step)
        if chunk.get("id") == TRACE_ID:
            status = decode_trace(chunk.get("aux"))
            if status is not None:
                progress.update(status)
            continue
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            image_id = aux["ID"]
        elif chunk.get("stream"):
            log.debug("  %s", str(chunk["stream"]).rstrip())
    progress.finish()
    if not image_id:
        raise EngineError(
            "the image build ended without an image id: re-run the step; if it persists, run with DEBUG: 'true'."
        )
    return image_id


def build_failure(message: str, step: str | None) -> EngineError:
    where = f" at {step}" if step else ""
    if "network bridge not found" in message:
        return BuildKitUnusable(
            f"the image build failed{where}: {message}: the Docker engine has no bridge network for BuildKit's "
            "RUN steps: set BUILD_NETWORK to host or none."
        )
    return EngineError(f"the image build failed{where}: {message}: fix the Dockerfile and re-run.")

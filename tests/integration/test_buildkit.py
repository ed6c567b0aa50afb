"""Builds with BuildKit on the sandbox's Docker engine, warm from the registry's cache, against
both real registries: the sandbox's CNCF registry (htpasswd, Basic) and the token-auth one.
What was built is checked by the registries' own answers and by `docker pull` from a clean
state, never by the pipe's word."""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import pytest
import requests

from tests.conftest import REPO_ROOT, engine_objects_named, remove_engine_objects
from tests.integration.test_oci_push import (  # noqa: F401 - token_registry is a fixture
    MANIFEST_ACCEPT,
    WRITER,
    pull_from_clean_state,
    run_pipe,
    token_registry,
)
from tests.integration.test_oci_push import pipe_env as oci_pipe_env

INLINE_CACHE_KEY = "moby.buildkit.cache.v0"
EXPENSIVE_STEP = "RUN --mount=type=cache,target=/var/cache/deps"
# Syntax only BuildKit builds: a cache mount, COPY --chmod, and a stage that fails but is not needed.
MODERN_DOCKERFILE = f"""\
FROM {{base}} AS broken
RUN echo "this stage is not needed by the image" && exit 3

FROM {{base}}
{EXPENSIVE_STEP} sleep 2 && head -c 32 /dev/urandom | sha256sum > /deps.lock && cp /deps.lock /var/cache/deps/
COPY --chmod=755 run.sh /usr/local/bin/run.sh
COPY app.txt /app.txt
"""


@dataclass(frozen=True)
class Registry:
    host: str
    user: str
    token: str


@pytest.fixture(scope="module")
def busybox(sandbox) -> str:
    """A small base image with a shell, imported into the engine by the project's own script."""
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "busybox-image")],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_HOST": sandbox.docker_host},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(params=["htpasswd", "token"])
def registry(request, sandbox) -> Registry:
    if request.param == "htpasswd":
        return Registry(sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token)
    return Registry(request.getfixturevalue("token_registry").host, *WRITER)


@pytest.fixture
def htpasswd(sandbox) -> Registry:
    return Registry(sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token)


def modern_project(folder: Path, base: str, app: str = "version 1") -> Path:
    (folder / "Dockerfile").write_text(MODERN_DOCKERFILE.format(base=base))
    (folder / "run.sh").write_text("#!/bin/sh\ncat /app.txt\n")
    (folder / "app.txt").write_text(app + "\n")
    return folder


def build_env(registry: Registry, image: str, tmp_path: Path, sandbox, **overrides) -> dict[str, str]:
    return oci_pipe_env(registry.host, registry.user, registry.token, image, tmp_path,
                        DOCKER_HOST=sandbox.docker_host, **overrides)  # fmt: skip


def release(registry: Registry, image: str, folder: Path, tmp_path: Path, sandbox, **overrides):
    result = run_pipe(build_env(registry, image, tmp_path, sandbox, **overrides), folder, registry.user, registry.token)
    assert result.code == 0, result.output
    return result


def pulled_layers(registry: Registry, reference: str, tmp_path: Path, sandbox, docker_engine) -> list[str]:
    """The image's layers (uncompressed digests) as `docker pull` from a clean state finds them."""
    _, image = pull_from_clean_state(
        docker_engine, sandbox.docker_host, registry.host, registry.user, registry.token, reference, tmp_path
    )
    return image.attrs["RootFS"]["Layers"]


def fresh_engine(docker_engine, image: str) -> None:
    """What a new Pipelines step starts with: none of this image's tags, and no build cache."""
    remove_engine_objects(docker_engine, *engine_objects_named(docker_engine, [image]))
    docker_engine.api.prune_builds(all=True)


def registry_json(sandbox, image: str, path: str) -> dict:
    response = requests.get(
        f"{sandbox.oci_url}/v2/acme/{image}/{path}", auth=sandbox.writer, headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )  # fmt: skip
    response.raise_for_status()
    return response.json()


def step_line(result, text: str) -> str:
    lines = [line for line in result.lines if line.startswith("  [") and text in line]
    assert len(lines) == 1, result.output
    return lines[0]


# --- BuildKit's Dockerfiles ------------------------------------------------------------------


def test_cache_mounts_chmod_and_an_unneeded_failing_stage_build_and_push(
    sandbox, htpasswd, busybox, workdir, tmp_path, unique
):
    image = unique("bk-modern")
    result = release(htpasswd, image, modern_project(workdir, busybox), tmp_path, sandbox, BITBUCKET_TAG="v1.0.0")
    assert any(line.startswith("Building Dockerfile (context .) with BuildKit") for line in result.lines)
    assert "No earlier image of these tags in the registry: this build starts cold." in result.lines
    assert not any("not needed by the image" in line for line in result.lines)
    assert not step_line(result, EXPENSIVE_STEP).endswith("CACHED")

    manifest = registry_json(sandbox, image, "manifests/1.0.0")
    config = registry_json(sandbox, image, f"blobs/{manifest['config']['digest']}")
    assert INLINE_CACHE_KEY in config  # the next build can use this image as its cache
    chmod_layer = requests.get(
        f"{sandbox.oci_url}/v2/acme/{image}/blobs/{manifest['layers'][2]['digest']}", auth=sandbox.writer, timeout=10
    )
    with tarfile.open(fileobj=io.BytesIO(chmod_layer.content)) as layer:
        assert layer.getmember("usr/local/bin/run.sh").mode & 0o777 == 0o755


@pytest.mark.parametrize("debug", ["false", "true"])
def test_a_release_on_a_fresh_engine_reuses_the_expensive_layer_from_the_registry(
    sandbox, registry, busybox, workdir, tmp_path, unique, docker_engine, debug
):
    image = unique("bk-warm")
    reference = f"{registry.host}/acme/{image}"
    project = modern_project(workdir, busybox)
    release(registry, image, project, tmp_path, sandbox, BITBUCKET_TAG="v1.0.0")
    first = pulled_layers(registry, f"{reference}:1.0.0", tmp_path, sandbox, docker_engine)
    old_image = docker_engine.images.get(f"{reference}:1.0.0").id

    fresh_engine(docker_engine, image)
    (project / "app.txt").write_text("version 2\n")  # new sources, same dependencies
    second_run = release(registry, image, project, tmp_path, sandbox, BITBUCKET_TAG="v1.0.1", DEBUG=debug)

    assert f"Cache source {reference}:1.0: pulled (sha256:" in second_run.output
    assert step_line(second_run, EXPENSIVE_STEP).endswith(" CACHED")
    assert not step_line(second_run, "COPY app.txt").endswith(" CACHED")
    second = pulled_layers(registry, f"{reference}:1.0.1", tmp_path, sandbox, docker_engine)
    assert second[:3] == first[:3] and second[3] != first[3]  # base, deps, run.sh reused; app.txt new
    with pytest.raises(docker.errors.ImageNotFound):  # the pulled cache image went with the run
        docker_engine.images.get(old_image)


def test_missing_cache_sources_are_warnings_and_the_build_goes_on_cold(
    sandbox, htpasswd, busybox, workdir, tmp_path, unique
):
    image, elsewhere = unique("bk-missing"), unique("bk-elsewhere")
    sources = f"gone,{sandbox.oci_registry}/acme/{elsewhere}:1"
    result = release(htpasswd, image, modern_project(workdir, busybox), tmp_path, sandbox,
                     BITBUCKET_BRANCH="main", CACHE_FROM=sources)  # fmt: skip
    warnings = [line for line in result.lines if line.startswith("⚠ ")]
    assert warnings[0] == (
        f"⚠ Cache source {sandbox.oci_registry}/acme/{image}:gone does not exist in the registry: building without it."
    )
    assert warnings[1].startswith(f"⚠ Cache source {sandbox.oci_registry}/acme/{elsewhere}:1 could not be pulled (")
    assert warnings[1].endswith("): building without it.") and len(warnings) == 2
    assert result.last_line.startswith(f"✔ pushed {sandbox.oci_registry}/acme/{image}:main")


def test_an_invalid_cache_source_is_refused_before_the_registry(sandbox, htpasswd, busybox, workdir, tmp_path, unique):
    image = unique("bk-invalid")
    env = build_env(htpasswd, image, tmp_path, sandbox, BITBUCKET_BRANCH="main", CACHE_FROM="Team/Image:1")
    result = run_pipe(env, modern_project(workdir, busybox), htpasswd.user, htpasswd.token)
    assert result.code == 1
    assert result.lines == [
        "✖ CACHE_FROM entry 'Team/Image:1' is not a valid image reference: write a tag of IMAGE_NAME (e.g. latest "
        "or {branch}) or a full reference like registry.example.com/team/image:tag."
    ]


# --- the classic builder ---------------------------------------------------------------------


def test_classic_builds_a_plain_dockerfile(sandbox, htpasswd, busybox, workdir, tmp_path, unique):
    image = unique("bk-classic")
    (workdir / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo classic > /built.txt\n")
    result = release(htpasswd, image, workdir, tmp_path, sandbox, BITBUCKET_TAG="v1.0.0", BUILDER="classic")
    assert "Building Dockerfile (context .) with the classic builder (BUILDER is classic)." in result.lines
    assert any(line.startswith("  Step 2/") and "RUN echo classic" in line for line in result.lines)
    config = registry_json(
        sandbox, image, f"blobs/{registry_json(sandbox, image, 'manifests/1.0.0')['config']['digest']}"
    )
    assert INLINE_CACHE_KEY not in config


def test_classic_refuses_buildkit_syntax_with_one_line(sandbox, htpasswd, busybox, workdir, tmp_path, unique):
    image = unique("bk-classic")
    (workdir / "Dockerfile").write_text(f"FROM {busybox}\nRUN --mount=type=cache,target=/c true\n")
    env = build_env(htpasswd, image, tmp_path, sandbox, BITBUCKET_TAG="v1.0.0", BUILDER="classic")
    result = run_pipe(env, workdir, htpasswd.user, htpasswd.token)
    assert result.code == 1
    assert result.last_line == (
        "✖ the Dockerfile needs BuildKit (the --mount option requires BuildKit), and BUILDER is classic: "
        "set BUILDER to auto (or buildkit)."
    )
    assert sum(line.startswith("✖") for line in result.lines) == 1
    tags = requests.get(f"{sandbox.oci_url}/v2/acme/{image}/tags/list", auth=sandbox.writer, timeout=10)
    assert tags.status_code == 404  # nothing pushed


# --- base images that need the pipe's credentials --------------------------------------------


def test_a_base_image_of_the_workspace_is_pulled_with_credentials_and_removed_after(
    sandbox, registry, busybox, workdir, tmp_path, unique, docker_engine
):
    base, app = unique("bk-base"), unique("bk-app")
    (workdir / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo base > /base.txt\n")
    release(registry, base, workdir, tmp_path, sandbox, BITBUCKET_TAG="v1.0.0")
    base_reference = f"{registry.host}/acme/{base}:1.0.0"
    fresh_engine(docker_engine, base)  # the engine must fetch it, with credentials

    (workdir / "Dockerfile").write_text(f"FROM {base_reference}\nRUN cat /base.txt > /app.txt\n")
    result = release(registry, app, workdir, tmp_path, sandbox, BITBUCKET_TAG="v1.0.0")
    assert f"Base image {base_reference}: pulled (sha256:" in result.output
    assert sum("mounted from" in line for line in result.lines) >= 1
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.images.get(base_reference)
    layers = pulled_layers(registry, f"{registry.host}/acme/{app}:1.0.0", tmp_path, sandbox, docker_engine)
    assert len(layers) == 3


# --- the network of RUN steps ----------------------------------------------------------------


@pytest.mark.parametrize(("network", "only_loopback"), [(None, True), ("host", False)])
def test_run_steps_get_the_build_network(sandbox, htpasswd, busybox, workdir, tmp_path, unique, network, only_loopback):
    """The sandbox's engine has no bridge network: by default BuildKit's RUN steps get none (as
    the classic builder's there), and BUILD_NETWORK: host gives them the host's interfaces."""
    image = unique("bk-network")
    (workdir / "Dockerfile").write_text(
        f"FROM {busybox}\nRUN echo interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | sort | tr -d ' ')\n"
    )
    extra = {"BUILD_NETWORK": network} if network else {}
    result = release(htpasswd, image, workdir, tmp_path, sandbox, BITBUCKET_BRANCH="main", **extra)
    interfaces = next(line for line in result.lines if line.startswith("    interfaces:")).split()[1:]
    assert "lo" in interfaces
    assert (interfaces == ["lo"]) is only_loopback, interfaces

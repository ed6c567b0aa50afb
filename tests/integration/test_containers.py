"""PACKAGE_TYPE=docker against the real Docker engine and the real OCI registry of sandbox/.

Every check of the result goes to the registry itself (distribution API) or to the real
consumer (`docker pull` from a clean state), never to the pipe's own word.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import assert_no_secret, assert_no_secret_in_tree, base_env, run_subprocess

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DOCKERFILE = """\
FROM scratch
ARG GREETING=hi
LABEL greeting=$GREETING
ENV GREETING=$GREETING
COPY hello.txt /hello.txt
"""


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    (workdir / "hello.txt").write_text("hello from the pipe's tests\n", encoding="utf-8")
    return workdir


@pytest.fixture
def image(unique) -> str:
    return unique("img")


def pipe_env(sandbox, image: str, tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    values = {
        "PACKAGE_TYPE": "docker",
        "REGISTRY_URL": sandbox.oci_registry,
        "BITBUCKET_PACKAGES_USERNAME": sandbox.writer_user,
        "BITBUCKET_PACKAGES_TOKEN": sandbox.writer_token,
        "BITBUCKET_REPO_SLUG": image,
        "BITBUCKET_COMMIT": COMMIT,
        "BITBUCKET_GIT_HTTP_ORIGIN": "https://bitbucket.org/acme/widget",
        "DOCKER_HOST": sandbox.docker_host,
        "BITBUCKET_PIPELINES_VARIABLES_PATH": str(tmp_path / "pipeline-variables"),
        "BITBUCKET_PIPE_STORAGE_DIR": str(tmp_path / "pipe-storage"),
    }
    values.update(overrides)
    return base_env(**values)


def run_pipe(sandbox, env: dict[str, str], cwd: Path):
    result = run_subprocess(env, cwd)
    assert_no_secret(result.output, sandbox.writer_user, sandbox.writer_token)
    assert "Traceback" not in result.output
    return result


def release(sandbox, image: str, project: Path, tmp_path: Path, git_tag: str, **extra: str):
    result = run_pipe(sandbox, pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG=git_tag, **extra), project)
    assert result.code == 0, result.output
    return result


def registry_tags(sandbox, image: str) -> set[str]:
    response = requests.get(f"{sandbox.oci_url}/v2/acme/{image}/tags/list", auth=sandbox.writer, timeout=10)
    response.raise_for_status()
    return set(response.json()["tags"])


def registry_digest(sandbox, image: str, tag: str) -> str:
    response = requests.head(
        f"{sandbox.oci_url}/v2/acme/{image}/manifests/{tag}",
        auth=sandbox.writer,
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    assert response.status_code == 200, f"{image}:{tag} is not in the registry"
    return response.headers["Docker-Content-Digest"]


def registry_image_config(sandbox, image: str, tag: str) -> dict:
    base = f"{sandbox.oci_url}/v2/acme/{image}"
    manifest = requests.get(
        f"{base}/manifests/{tag}", auth=sandbox.writer, headers={"Accept": MANIFEST_ACCEPT}, timeout=10
    )
    manifest.raise_for_status()
    blob = requests.get(f"{base}/blobs/{manifest.json()['config']['digest']}", auth=sandbox.writer, timeout=10)
    blob.raise_for_status()
    return blob.json()["config"]


def output_variables(tmp_path: Path) -> list[str]:
    return (tmp_path / "pipeline-variables").read_text(encoding="utf-8").splitlines()


def docker_cli(sandbox, config_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real docker client, with a throw-away config dir (never ~/.docker)."""
    return subprocess.run(
        ["docker", "--config", str(config_dir), *args],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": sandbox.docker_host},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --- releases --------------------------------------------------------------------------------


def test_release_tags_follow_the_rules_and_never_move_backwards(sandbox, image, project, tmp_path):
    reference = f"{sandbox.oci_registry}/acme/{image}"

    first = release(sandbox, image, project, tmp_path, "v1.4.2")
    d142 = registry_digest(sandbox, image, "1.4.2")
    assert registry_tags(sandbox, image) == {"1.4.2", "1.4", "1", "latest"}
    assert {registry_digest(sandbox, image, tag) for tag in ("1.4", "1", "latest")} == {d142}
    assert first.last_line == f"✔ pushed {reference}:1.4.2 1.4 1 latest ({d142})"
    assert f"Tags to push to {reference}: 1.4.2 1.4 1 latest" in first.lines

    second = release(sandbox, image, project, tmp_path, "v2.0.1")
    d201 = registry_digest(sandbox, image, "2.0.1")
    assert d201 != d142
    assert registry_digest(sandbox, image, "latest") == d201
    assert registry_digest(sandbox, image, "1") == d142
    assert "  latest moves from 1.4.2 to 2.0.1" in second.lines

    hotfix = release(sandbox, image, project, tmp_path, "v1.9.1")
    d191 = registry_digest(sandbox, image, "1.9.1")
    assert registry_digest(sandbox, image, "1.9") == d191
    assert registry_digest(sandbox, image, "1") == d191
    assert registry_digest(sandbox, image, "latest") == d201
    assert registry_digest(sandbox, image, "1.4") == d142
    assert f"Tags to push to {reference}: 1.9.1 1.9 1" in hotfix.lines
    assert "  latest stays on 2.0.1 (a higher release)" in hotfix.lines

    before_rc = {tag: registry_digest(sandbox, image, tag) for tag in registry_tags(sandbox, image)}
    release(sandbox, image, project, tmp_path, "v3.0.0-rc.1")
    assert registry_tags(sandbox, image) == set(before_rc) | {"3.0.0-rc.1"}
    assert {tag: registry_digest(sandbox, image, tag) for tag in before_rc} == before_rc

    # Re-running the hotfix's pipeline succeeds and still leaves latest alone. The rebuild is a
    # new image (its created label), unless it lands in the same second as the first build.
    rerun = release(sandbox, image, project, tmp_path, "v1.9.1")
    assert rerun.last_line.startswith(
        (f"✔ pushed {reference}:1.9.1 1.9 1 (sha256:", f"✔ {reference}:1.9.1 1.9 1 already pointed at {d191}")
    )
    assert registry_digest(sandbox, image, "latest") == d201

    assert registry_tags(sandbox, image) == {
        "1.4.2", "1.4", "1", "latest", "2.0.1", "2.0", "2", "1.9.1", "1.9", "3.0.0-rc.1"
    }  # fmt: skip


def test_pushed_image_carries_build_args_and_labels_and_pulls_from_a_clean_state(
    sandbox, image, project, tmp_path, docker_engine
):
    result = release(
        sandbox, image, project, tmp_path, "v1.0.0", BUILD_ARGS="GREETING=howdy", LABELS="team=platform tier=2"
    )
    reference = f"{sandbox.oci_registry}/acme/{image}"
    digest = registry_digest(sandbox, image, "1.0.0")

    assert output_variables(tmp_path) == [
        f"IMAGE_DIGEST={digest}",
        f"IMAGE_REFERENCE={reference}@{digest}",
        "IMAGE_TAGS=1.0.0 1.0 1 latest",
    ]
    summary = json.loads((tmp_path / "pipe-storage" / "bitbucket-packages-publish.json").read_text())
    assert summary["outputs"]["IMAGE_DIGEST"] == digest
    assert summary["details"]["tags"] == ["1.0.0", "1.0", "1", "latest"]
    assert result.last_line == f"✔ pushed {reference}:1.0.0 1.0 1 latest ({digest})"

    config = registry_image_config(sandbox, image, "1.0.0")
    labels = config["Labels"]
    assert labels["greeting"] == "howdy"
    assert labels["team"] == "platform" and labels["tier"] == "2"
    assert labels["org.opencontainers.image.revision"] == COMMIT
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    assert labels["org.opencontainers.image.title"] == image
    assert labels["org.opencontainers.image.source"] == "https://bitbucket.org/acme/widget"
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert "GREETING=howdy" in config["Env"]

    # A clean state: no image of this repository left in the engine, then the real client pulls.
    image_id = docker_engine.images.get(f"{reference}:1.0.0").id
    docker_engine.images.remove(image_id, force=True)
    with pytest.raises(Exception, match="No such image"):
        docker_engine.images.get(f"{reference}:1.0.0")
    client_config = tmp_path / "docker-client"
    client_config.mkdir()
    login = docker_cli(
        sandbox,
        client_config,
        "login",
        sandbox.oci_registry,
        "-u",
        sandbox.writer_user,
        "--password-stdin",
        stdin=sandbox.writer_token,
    )
    assert login.returncode == 0, login.stderr
    pull = docker_cli(sandbox, client_config, "pull", f"{reference}:1")
    assert pull.returncode == 0, pull.stderr
    assert f"Digest: {digest}" in pull.stdout
    pulled = docker_engine.images.get(f"{reference}:1")
    assert f"{reference}@{digest}" in pulled.attrs["RepoDigests"]
    assert pulled.labels["greeting"] == "howdy"
    assert_no_secret_in_tree(project, sandbox.writer_user, sandbox.writer_token)


def test_local_image_rerun_succeeds_and_says_nothing_changed(sandbox, image, project, tmp_path, docker_engine):
    local = f"local-{image}:build"
    docker_engine.images.build(path=str(project), tag=local, rm=True)
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v0.3.0", LOCAL_IMAGE=local)
    reference = f"{sandbox.oci_registry}/acme/{image}"

    first = run_pipe(sandbox, env, project)
    assert first.code == 0, first.output
    digest = registry_digest(sandbox, image, "0.3.0")
    assert first.last_line == f"✔ pushed {reference}:0.3.0 0.3 0 latest ({digest})"
    assert "Building" not in first.output

    again = run_pipe(sandbox, env, project)
    assert again.code == 0, again.output
    assert again.last_line == f"✔ {reference}:0.3.0 0.3 0 latest already pointed at {digest}: nothing changed"
    assert registry_digest(sandbox, image, "latest") == digest


def test_branch_build_pushes_sanitised_branch_and_commit_tags(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_BRANCH="feature/Login_2")
    result = run_pipe(sandbox, env, project)
    assert result.code == 0, result.output
    assert registry_tags(sandbox, image) == {"feature-Login_2", "sha-0123456"}
    assert (
        "The branch 'feature/Login_2' is tagged as 'feature-Login_2' "
        "(image tags allow only letters, digits, '_', '.', '-')." in result.lines
    )
    labels = registry_image_config(sandbox, image, "sha-0123456")["Labels"]
    assert labels["org.opencontainers.image.version"] == "feature/Login_2"


def test_explicit_tags_with_placeholders(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v5.6.7", TAGS="{version} v{major} build-{build_number}")
    result = run_pipe(sandbox, env, project)
    assert result.code == 0, result.output
    assert registry_tags(sandbox, image) == {"5.6.7", "v5", "build-42"}


def test_dry_run_touches_neither_engine_nor_registry(sandbox, image, project, tmp_path):
    release(sandbox, image, project, tmp_path, "v1.0.0")
    before = {tag: registry_digest(sandbox, image, tag) for tag in registry_tags(sandbox, image)}
    # An engine that does not exist proves the dry run never talks to one.
    env = pipe_env(
        sandbox, image, tmp_path, BITBUCKET_TAG="v1.1.0", DRY_RUN="true", DOCKER_HOST="unix:///nonexistent/docker.sock"
    )
    result = run_pipe(sandbox, env, project)
    assert result.code == 0, result.output
    reference = f"{sandbox.oci_registry}/acme/{image}"
    assert result.lines[-6:] == [
        f"Tags to push to {reference}: 1.1.0 1.1 1 latest",
        "  1.1 is new",
        "  1 moves from 1.0.0 to 1.1.0",
        "  latest moves from 1.0.0 to 1.1.0",
        "Dry run: nothing is built or pushed.",
        f"✔ dry run: would push Dockerfile as {reference}:1.1.0 1.1 1 latest "
        "(1 moves from 1.0.0 to 1.1.0; latest moves from 1.0.0 to 1.1.0)",
    ]
    assert {tag: registry_digest(sandbox, image, tag) for tag in registry_tags(sandbox, image)} == before


# --- failures: exit 1, one actionable line, no traceback, no secret ----------------------------


def fails_with(sandbox, env: dict[str, str], cwd: Path, line: str) -> None:
    result = run_pipe(sandbox, env, cwd)
    assert result.code == 1, result.output
    assert result.last_line == line
    assert [text for text in result.lines if text.startswith("✖")] == [line]


def test_wrong_token_is_refused_before_anything_is_built(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", BITBUCKET_PACKAGES_TOKEN="wrong-token-123456")
    result = run_subprocess(env, project)
    assert_no_secret(result.output, sandbox.writer_user, "wrong-token-123456")
    assert result.code == 1
    assert result.last_line == (
        f"✖ reading the tags of acme/{image} failed: http://{sandbox.oci_registry}/v2/acme/{image}/tags/list?n=1000 "
        "answered 401 (UNAUTHORIZED: authentication required): the registry did not accept the credentials: "
        "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN "
        "(an Atlassian API token needs the write:package:bitbucket scope)."
    )
    assert "Building" not in result.output


def test_missing_token(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", BITBUCKET_PACKAGES_TOKEN=None)
    fails_with(
        sandbox,
        env,
        project,
        "✖ BITBUCKET_PACKAGES_TOKEN is missing: pass them as pipe variables, e.g. "
        "BITBUCKET_PACKAGES_USERNAME: $BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN: "
        "$BITBUCKET_PACKAGES_TOKEN (or an Atlassian account email and an API token with write:package:bitbucket).",
    )


def test_missing_engine(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", DOCKER_HOST="unix:///nonexistent/docker.sock")
    fails_with(
        sandbox,
        env,
        project,
        "✖ cannot reach the Docker engine at unix:///nonexistent/docker.sock (no such file or directory): "
        "add `services: - docker` to the step (or point DOCKER_HOST at a running Docker engine).",
    )
    assert registry_tags_or_none(sandbox, image) is None


def test_engine_that_refuses_connections(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", DOCKER_HOST="tcp://127.0.0.1:1")
    fails_with(
        sandbox,
        env,
        project,
        "✖ cannot reach the Docker engine at tcp://127.0.0.1:1 (connection refused): "
        "add `services: - docker` to the step (or point DOCKER_HOST at a running Docker engine).",
    )


@pytest.mark.parametrize(
    ("builder", "line"),
    [
        (
            "classic",
            "✖ the image build failed at Step 2/7 : COPY missing.txt /: COPY failed: file not found in build context "
            "or excluded by .dockerignore: stat missing.txt: file does not exist: fix the Dockerfile and re-run.",
        ),
        (
            "auto",
            '✖ the image build failed at [1/1] COPY missing.txt /: failed to compute cache key: "/missing.txt" not '
            "found: not found: fix the Dockerfile and re-run.",
        ),
    ],
)
def test_build_error_names_the_instruction(sandbox, image, project, tmp_path, builder, line):
    (project / "Dockerfile").write_text("FROM scratch\nCOPY missing.txt /\n", encoding="utf-8")
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", BUILDER=builder)
    fails_with(sandbox, env, project, line)
    assert registry_tags_or_none(sandbox, image) is None


def test_missing_dockerfile(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", DOCKERFILE="docker/Dockerfile.prod")
    fails_with(
        sandbox,
        env,
        project,
        "✖ DOCKERFILE 'docker/Dockerfile.prod' does not exist: set DOCKERFILE to the Dockerfile's path (relative to "
        "the repository), or set LOCAL_IMAGE to push an image built earlier in the step.",
    )


def test_unknown_local_image(sandbox, image, project, tmp_path):
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_TAG="v1.0.0", LOCAL_IMAGE=f"nowhere-{image}:1")
    fails_with(
        sandbox,
        env,
        project,
        f"✖ LOCAL_IMAGE 'nowhere-{image}:1' is not in the Docker engine: build it earlier in the same step "
        f"(e.g. docker build -t nowhere-{image}:1 .), or leave LOCAL_IMAGE out to let the pipe build it.",
    )


def registry_tags_or_none(sandbox, image: str) -> set[str] | None:
    response = requests.get(f"{sandbox.oci_url}/v2/acme/{image}/tags/list", auth=sandbox.writer, timeout=10)
    return set(response.json()["tags"]) if response.status_code == 200 else None


def test_debug_output_has_no_secret(sandbox, image, project, tmp_path):
    # DEBUG lets docker-py and urllib3 log; the X-Registry-Auth header and the Basic header must stay masked.
    # The engine push is the path that hands credentials to docker-py, so it is the one to watch.
    env = pipe_env(sandbox, image, tmp_path, BITBUCKET_BRANCH="main", DEBUG="true", PUSH_METHOD="engine")
    result = run_pipe(sandbox, env, project)
    assert result.code == 0, result.output
    assert "DEBUG: Sending supplied auth config" in result.lines
    assert registry_tags(sandbox, image) == {"main", "sha-0123456"}


# --- base images of the same workspace ---------------------------------------------------------


def test_layers_of_a_base_image_in_the_workspace_are_mounted_not_uploaded(sandbox, project, tmp_path, unique):
    """Team images built `FROM <registry>/<workspace>/base`: the registry links the base's
    layers into the new repository (cross-repository mount) instead of receiving them again."""
    base, app = unique("base"), unique("app")
    (project / "big.bin").write_bytes(os.urandom(2_000_000))
    (project / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\nCOPY hello.txt /base.txt\n")
    release(sandbox, base, project, tmp_path, "v1.0.0")
    base_layers = requests.get(
        f"{sandbox.oci_url}/v2/acme/{base}/manifests/1.0.0",
        auth=sandbox.writer, headers={"Accept": MANIFEST_ACCEPT}, timeout=10,
    ).json()["layers"]  # fmt: skip

    (project / "Dockerfile").write_text(
        f"ARG BASE_TAG=0.0.0\nFROM {sandbox.oci_registry}/acme/{base}:${{BASE_TAG}}\nCOPY hello.txt /app.txt\n"
    )
    result = release(sandbox, app, project, tmp_path, "v2.0.0", BUILD_ARGS="BASE_TAG=1.0.0")
    assert f"Layers of the base image acme/{base}:1.0.0 are mounted from there rather than uploaded." in result.lines
    assert sum(f"mounted from acme/{base}" in line for line in result.lines) == 2
    assert "2 mounted" in result.output and "Blobs: 2 uploaded" in result.output  # the new layer, the config

    manifest = requests.get(
        f"{sandbox.oci_url}/v2/acme/{app}/manifests/2.0.0",
        auth=sandbox.writer, headers={"Accept": MANIFEST_ACCEPT}, timeout=10,
    ).json()  # fmt: skip
    assert manifest["layers"][:2] == base_layers
    for layer in manifest["layers"]:  # every blob is now the app repository's own
        blob = requests.head(
            f"{sandbox.oci_url}/v2/acme/{app}/blobs/{layer['digest']}", auth=sandbox.writer, timeout=10
        )
        assert blob.status_code == 200


def test_a_local_image_labelled_with_its_base_mounts_the_base_layers(sandbox, project, tmp_path, unique, docker_engine):
    """LOCAL_IMAGE names no Dockerfile: the base comes from the OCI base-name label its builder set."""
    base, app = unique("lbase"), unique("lapp")
    (project / "big.bin").write_bytes(os.urandom(1_000_000))
    (project / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\n")
    release(sandbox, base, project, tmp_path, "v1.0.0")
    base_reference = f"{sandbox.oci_registry}/acme/{base}:1.0.0"
    (project / "Dockerfile").write_text(
        f"FROM {base_reference}\nLABEL org.opencontainers.image.base.name={base_reference}\nCOPY hello.txt /\n"
    )
    local, _ = docker_engine.images.build(path=str(project), tag=f"bbpp-labelled:{app}", rm=True)
    try:
        result = release(sandbox, app, project, tmp_path, "v1.0.0", LOCAL_IMAGE=f"bbpp-labelled:{app}")
    finally:
        docker_engine.images.remove(local.id, force=True)
    assert sum(f"mounted from acme/{base}" in line for line in result.lines) == 1
    assert "1 mounted" in result.output

"""The pipe's image, run exactly as Bitbucket Pipelines runs a pipe, publishing to the real local
registries; every publication is checked with the registry's API and a real consumer."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import PipelineRun, Pipelines, Registries, unique_name

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
MISSING_CREDENTIALS = (
    "✖ BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN are missing: pass them as pipe variables, "
    "e.g. BITBUCKET_PACKAGES_USERNAME: $BITBUCKET_PACKAGES_USERNAME and "
    "BITBUCKET_PACKAGES_TOKEN: $BITBUCKET_PACKAGES_TOKEN "
    "(or an Atlassian account email and an API token with write:package:bitbucket)."
)
ENGINE_HINT = "add `services: - docker` to the step (or point DOCKER_HOST at a running Docker engine)."
WRONG_TOKEN = "ATBB-wr0ng-t0ken-e2e-7c41d09b"
REJECTED_CREDENTIALS = (
    "the registry did not accept the credentials: check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN "
    "(an Atlassian API token needs the write:package:bitbucket scope)."
)


def docker(*args: str, registries: Registries, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        env={**os.environ, "DOCKER_HOST": registries.docker_host, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_succeeded(run: PipelineRun) -> None:
    assert run.code == 0, run.output
    assert run.last_line.startswith("✔ "), run.output
    assert "✖" not in run.output


def assert_failed_once(run: PipelineRun) -> str:
    """Exit 1 with exactly one ✖ line, the last one, and no traceback; returns that line."""
    assert run.code == 1, run.output
    failures = [line for line in run.lines if line.startswith("✖")]
    assert failures == [run.last_line], run.output
    assert "Traceback" not in run.output
    return run.last_line


def pipe_variables(
    pipelines: Pipelines, registries: Registries, defaults: dict[str, str], overrides: dict[str, str | None]
) -> dict[str, str]:
    """Build variables plus the pipe's variables, publishing as the sandbox's writer by default."""
    user, token = registries.writer
    credentials = {"BITBUCKET_PACKAGES_USERNAME": user, "BITBUCKET_PACKAGES_TOKEN": token}
    return pipelines.build_variables(**{**credentials, **defaults, **overrides})


# --- containers ---------------------------------------------------------------------------


def write_scratch_image(clone: Path, marker: str) -> None:
    (clone / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n", encoding="utf-8")
    (clone / "hello.txt").write_text(marker, encoding="utf-8")


def container_variables(pipelines: Pipelines, registries: Registries, image: str, **overrides: str | None):
    defaults = {"PACKAGE_TYPE": "docker", "REGISTRY_URL": registries.oci, "IMAGE_NAME": image}
    return pipe_variables(pipelines, registries, defaults, overrides)


def registry_tags(registries: Registries, repository: str) -> list[str]:
    response = requests.get(f"http://{registries.oci}/v2/{repository}/tags/list", auth=registries.reader, timeout=30)
    response.raise_for_status()
    return sorted(response.json()["tags"])


def manifest_digest(registries: Registries, repository: str, tag: str) -> str:
    response = requests.head(
        f"http://{registries.oci}/v2/{repository}/manifests/{tag}",
        headers={"Accept": MANIFEST_TYPES},
        auth=registries.reader,
        timeout=30,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def pull_and_read(registries: Registries, reference: str, path: str, docker_config: Path) -> str:
    """`docker pull` as a consumer (its own login, in a throw-away DOCKER_CONFIG), then read a file."""
    env = {"DOCKER_CONFIG": str(docker_config)}
    user, token = registries.reader
    login = subprocess.run(
        ["docker", "login", "--username", user, "--password-stdin", registries.oci],
        input=token,
        env={**os.environ, "DOCKER_HOST": registries.docker_host, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    pulled = docker("pull", reference, registries=registries, env=env)
    assert pulled.returncode == 0, pulled.stderr
    created = docker("create", reference, "/none", registries=registries)
    assert created.returncode == 0, created.stderr
    container = created.stdout.strip()
    try:
        copied = docker("cp", f"{container}:{path}", "-", registries=registries)
        assert copied.returncode == 0, copied.stderr
        # `docker cp … -` writes a tar stream; the file's text is in it verbatim.
        return copied.stdout
    finally:
        docker("rm", container, registries=registries)


def remove_local_tags(registries: Registries, repository: str) -> None:
    """The pipe built the image in this same engine: drop its tags so that the pull is real."""
    listed = docker("images", "--format", "{{.Repository}}:{{.Tag}}", f"{repository}", registries=registries)
    for reference in listed.stdout.split():
        docker("rmi", "--force", reference, registries=registries)


def test_container_image_is_built_and_pushed_with_release_tags(
    pipelines: Pipelines, registries: Registries, tmp_path: Path
) -> None:
    image = unique_name("e2e-image")
    marker = f"hello from {image}"
    write_scratch_image(pipelines.clone, marker)
    variables = container_variables(pipelines, registries, image, BITBUCKET_TAG="v1.2.3", BITBUCKET_BRANCH=None)

    run = pipelines.run(variables, with_docker=True)

    assert_succeeded(run)
    repository = f"e2e/{image}"
    reference = f"{registries.oci}/{repository}"
    digest = run.outputs["IMAGE_DIGEST"]
    assert digest.startswith("sha256:") and len(digest) == 71
    assert run.outputs["IMAGE_REFERENCE"] == f"{reference}@{digest}"
    assert run.outputs["IMAGE_TAGS"].split() == ["1.2.3", "1.2", "1", "latest"]
    assert registry_tags(registries, repository) == ["1", "1.2", "1.2.3", "latest"]
    for tag in ("1.2.3", "latest"):
        assert manifest_digest(registries, repository, tag) == digest
    assert run.summary is not None and run.summary["outputs"] == run.outputs

    remove_local_tags(registries, reference)
    assert marker in pull_and_read(registries, f"{reference}@{digest}", "/hello.txt", tmp_path / "docker-config")
    inspected = docker(
        "image", "inspect", "--format", "{{json .Config.Labels}}", f"{reference}@{digest}", registries=registries
    )
    labels = json.loads(inspected.stdout)
    assert labels["org.opencontainers.image.revision"] == variables["BITBUCKET_COMMIT"]
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    pipelines.assert_nothing_leaked(run, *registries.writer)


def test_container_branch_build_pushes_branch_and_commit_tags(pipelines: Pipelines, registries: Registries) -> None:
    image = unique_name("e2e-branch")
    write_scratch_image(pipelines.clone, "branch build")
    variables = container_variables(pipelines, registries, image, BITBUCKET_BRANCH="feature/login")

    run = pipelines.run(variables, with_docker=True)

    assert_succeeded(run)
    assert run.outputs["IMAGE_TAGS"].split() == ["feature-login", "sha-0123456"]
    assert registry_tags(registries, f"e2e/{image}") == ["feature-login", "sha-0123456"]
    pipelines.assert_nothing_leaked(run, *registries.writer)


def test_container_build_through_the_engine_over_tcp(pipelines: Pipelines, registries: Registries) -> None:
    """Pipelines hands a pipe its docker service as DOCKER_HOST=tcp://localhost:2375, no socket."""
    image = unique_name("e2e-tcp")
    write_scratch_image(pipelines.clone, "built over tcp")
    variables = container_variables(pipelines, registries, image, BITBUCKET_BRANCH="main")

    run = pipelines.run(variables, docker_tcp=registries.env["SANDBOX_DOCKER_TCP"])

    assert_succeeded(run)
    assert run.outputs["IMAGE_TAGS"].split() == ["main", "sha-0123456"]
    assert manifest_digest(registries, f"e2e/{image}", "main") == run.outputs["IMAGE_DIGEST"]
    pipelines.assert_nothing_leaked(run, *registries.writer)


def test_container_pushes_an_image_built_earlier_in_the_step(pipelines: Pipelines, registries: Registries) -> None:
    image = unique_name("e2e-local")
    write_scratch_image(pipelines.clone, "built by the step's own script")
    local = f"{image}:built-by-script"
    built = docker("build", "--network", "none", "--tag", local, str(pipelines.clone), registries=registries)
    assert built.returncode == 0, built.stderr
    variables = container_variables(pipelines, registries, image, LOCAL_IMAGE=local, TAGS="rc {short_commit}")

    run = pipelines.run(variables, with_docker=True)

    assert_succeeded(run)
    assert run.outputs["IMAGE_TAGS"].split() == ["rc", "0123456"]
    local_id = docker("image", "inspect", "--format", "{{.Id}}", local, registries=registries).stdout.strip()
    pushed_id = docker(
        "image", "inspect", "--format", "{{.Id}}", f"{registries.oci}/e2e/{image}:rc", registries=registries
    ).stdout.strip()
    assert pushed_id == local_id  # tagged and pushed as it was, not rebuilt
    assert manifest_digest(registries, f"e2e/{image}", "0123456") == run.outputs["IMAGE_DIGEST"]
    pipelines.assert_nothing_leaked(run, *registries.writer)


def test_container_without_docker_service_says_how_to_add_it(pipelines: Pipelines, registries: Registries) -> None:
    write_scratch_image(pipelines.clone, "no engine")
    variables = container_variables(pipelines, registries, unique_name("e2e-noengine"))

    run = pipelines.run(variables, with_docker=False)

    line = assert_failed_once(run)
    assert line.startswith("✖ cannot reach the Docker engine"), line
    assert line.endswith(ENGINE_HINT), line
    pipelines.assert_nothing_leaked(run, *registries.writer)


# --- npm --------------------------------------------------------------------------------------


def write_npm_package(clone: Path, name: str, version: str) -> None:
    package = {"name": name, "version": version, "description": "e2e package", "main": "index.js", "license": "MIT"}
    (clone / "package.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
    (clone / "index.js").write_text(f"module.exports = {json.dumps(name)};\n", encoding="utf-8")
    (clone / "README.md").write_text(f"# {name}\n", encoding="utf-8")


def npm_variables(pipelines: Pipelines, registries: Registries, **overrides: str | None) -> dict[str, str]:
    defaults = {"PACKAGE_TYPE": "npm", "REGISTRY_URL": registries.npm}
    return pipe_variables(pipelines, registries, defaults, overrides)


def test_npm_package_is_published_and_installable(pipelines: Pipelines, registries: Registries, tmp_path: Path) -> None:
    name = unique_name("e2e-npm")
    write_npm_package(pipelines.clone, name, "1.4.0")
    variables = npm_variables(pipelines, registries, BITBUCKET_TAG="v1.4.0", BITBUCKET_BRANCH=None)

    run = pipelines.run(variables)

    assert_succeeded(run)
    assert f"{name}@1.4.0" in run.last_line
    assert run.outputs["PUBLISHED_NAME"] == name
    assert run.outputs["PUBLISHED_VERSION"] == "1.4.0"
    assert run.outputs["NPM_DIST_TAG"] == "latest"
    assert run.outputs["NPM_INTEGRITY"].startswith("sha512-")

    viewed = registries.helper("npm-view", f"{name}@1.4.0", "dist.integrity")
    assert viewed.returncode == 0, viewed.stderr
    assert viewed.stdout.strip() == run.outputs["NPM_INTEGRITY"]
    installed = registries.helper("npm-install", str(tmp_path / "consumer"), f"{name}@1.4.0")
    assert installed.returncode == 0, installed.stderr
    index = tmp_path / "consumer" / "node_modules" / name / "index.js"
    assert index.read_text(encoding="utf-8") == f'module.exports = "{name}";\n'
    pipelines.assert_nothing_leaked(run, *registries.writer)

    # Re-running the step (a fresh clone of the same commit) is a success that says the
    # version is already there, and gives later steps the same outputs.
    rerun = pipelines.fresh_clone("rerun")
    write_npm_package(rerun.clone, name, "1.4.0")
    again = rerun.run(variables)
    assert_succeeded(again)
    assert "already" in again.last_line
    assert again.outputs == run.outputs
    rerun.assert_nothing_leaked(again, *registries.writer)


def test_npm_dry_run_publishes_nothing(pipelines: Pipelines, registries: Registries) -> None:
    name = unique_name("e2e-dry")
    write_npm_package(pipelines.clone, name, "3.0.0")

    run = pipelines.run(npm_variables(pipelines, registries, DRY_RUN="true"))

    assert_succeeded(run)
    assert run.last_line.lower().startswith("✔ dry run"), run.last_line
    viewed = registries.helper("npm-view", name, "versions")
    assert viewed.returncode != 0 and "E404" in viewed.stderr, viewed.stderr
    pipelines.assert_nothing_leaked(run, *registries.writer)


def test_npm_without_credentials_says_which_variables_to_pass(pipelines: Pipelines, registries: Registries) -> None:
    write_npm_package(pipelines.clone, unique_name("e2e-nocreds"), "1.0.0")
    variables = npm_variables(pipelines, registries, BITBUCKET_PACKAGES_USERNAME=None, BITBUCKET_PACKAGES_TOKEN=None)

    run = pipelines.run(variables)

    assert run.code == 1
    assert run.lines == [MISSING_CREDENTIALS]
    assert run.outputs == {}


# --- Maven ------------------------------------------------------------------------------------


def write_maven_project(clone: Path, group: str, artifact: str, version: str) -> bytes:
    (clone / "pom.xml").write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>{group}</groupId>
  <artifactId>{artifact}</artifactId>
  <version>{version}</version>
  <packaging>jar</packaging>
</project>
""",
        encoding="utf-8",
    )
    jar = clone / "target" / f"{artifact}-{version}.jar"
    jar.parent.mkdir()
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        archive.writestr("e2e/marker.txt", f"{group}:{artifact}:{version}\n")
    return jar.read_bytes()


def maven_variables(pipelines: Pipelines, registries: Registries, **overrides: str | None) -> dict[str, str]:
    defaults = {"PACKAGE_TYPE": "maven", "REGISTRY_URL": registries.maven}
    return pipe_variables(pipelines, registries, defaults, overrides)


def test_maven_artifact_is_deployed_and_resolvable(
    pipelines: Pipelines, registries: Registries, tmp_path: Path
) -> None:
    group, artifact = "org.example.e2e", unique_name("lib")
    jar = write_maven_project(pipelines.clone, group, artifact, "2.0.0")

    run = pipelines.run(maven_variables(pipelines, registries, BITBUCKET_TAG="v2.0.0", BITBUCKET_BRANCH=None))

    assert_succeeded(run)
    assert run.outputs == {"PUBLISHED_GROUP_ID": group, "PUBLISHED_ARTIFACT_ID": artifact, "PUBLISHED_VERSION": "2.0.0"}
    metadata = requests.get(
        f"{registries.maven}org/example/e2e/{artifact}/maven-metadata.xml", auth=registries.reader, timeout=30
    )
    assert metadata.status_code == 200
    assert "<release>2.0.0</release>" in metadata.text
    resolved = registries.helper("mvn-get", f"{group}:{artifact}:2.0.0", str(tmp_path / "resolved"))
    assert resolved.returncode == 0, resolved.stderr
    assert (tmp_path / "resolved" / f"{artifact}-2.0.0.jar").read_bytes() == jar
    pipelines.assert_nothing_leaked(run, *registries.writer)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["docker", "npm", "maven"])
def test_wrong_token_fails_with_one_line_and_no_secret(pipelines: Pipelines, registries: Registries, kind: str) -> None:
    name = unique_name(f"e2e-wrong-{kind}")
    user = registries.writer[0]
    overrides = {"BITBUCKET_PACKAGES_USERNAME": user, "BITBUCKET_PACKAGES_TOKEN": WRONG_TOKEN}
    if kind == "docker":
        write_scratch_image(pipelines.clone, "wrong token")
        variables = container_variables(pipelines, registries, name, **overrides)
    elif kind == "npm":
        write_npm_package(pipelines.clone, name, "1.0.0")
        variables = npm_variables(pipelines, registries, **overrides)
    else:
        write_maven_project(pipelines.clone, "org.example.e2e", name, "1.0.0")
        variables = maven_variables(pipelines, registries, **overrides)

    run = pipelines.run(variables, with_docker=kind == "docker")

    line = assert_failed_once(run)
    assert " answered 401" in line, line
    assert line.endswith(REJECTED_CREDENTIALS), line
    assert run.outputs == {}
    pipelines.assert_nothing_leaked(run, user, WRONG_TOKEN)


@pytest.mark.parametrize("kind", ["npm", "maven"])
def test_read_only_token_is_refused_before_anything_is_published(
    pipelines: Pipelines, registries: Registries, kind: str
) -> None:
    """The sandbox's reader may read but not write (like a token without write:package:bitbucket)."""
    name = unique_name(f"e2e-readonly-{kind}")
    user, token = registries.reader
    overrides = {"BITBUCKET_PACKAGES_USERNAME": user, "BITBUCKET_PACKAGES_TOKEN": token}
    if kind == "npm":
        write_npm_package(pipelines.clone, name, "1.0.0")
        variables = npm_variables(pipelines, registries, **overrides)
    else:
        write_maven_project(pipelines.clone, "org.example.e2e", name, "1.0.0")
        variables = maven_variables(pipelines, registries, **overrides)

    run = pipelines.run(variables)

    line = assert_failed_once(run)
    assert " answered 403" in line, line
    assert run.outputs == {}
    if kind == "npm":
        published = registries.helper("npm-view", f"{name}@1.0.0", "version")
        assert published.returncode != 0 and "E404" in published.stderr, published.stderr
    else:
        pom = f"{registries.maven}org/example/e2e/{name}/1.0.0/{name}-1.0.0.pom"
        assert requests.get(pom, auth=registries.reader, timeout=30).status_code == 404
    pipelines.assert_nothing_leaked(run, user, token)

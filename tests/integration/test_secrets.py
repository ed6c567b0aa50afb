"""The secret hunt: every scenario runs with a recognisable token, and its stdout and stderr, the
JSON summary, the output-variables file, the clone directory and the step's HOME are scanned for
the token in every form (raw, base64, base64 of user:token and its fragments, URL-encoded,
`Bearer …`) — with DEBUG off and on, on successes, refusals and crashes, for the three kinds."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.conftest import assert_no_secret, assert_no_secret_in_tree, base_env, run_in_process, run_subprocess

# A canary that no registry knows: the refusal scenarios send it, and it must never come back.
CANARY = f"bbpp-canary-{uuid.uuid4().hex}"
KINDS = ("npm", "maven", "docker")


@pytest.fixture(scope="module")
def local_image(sandbox, docker_engine, tmp_path_factory) -> str:
    context = tmp_path_factory.mktemp("secrets-image")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\n", encoding="utf-8")
    (context / "a.txt").write_text(f"secrets {uuid.uuid4()}\n", encoding="utf-8")
    reference = f"bbpp-secrets-local/{uuid.uuid4().hex[:12]}:1"
    docker_engine.images.build(path=str(context), tag=reference, rm=True)
    yield reference
    docker_engine.images.remove(reference, force=True)


def make_project(kind: str, clone: Path, name: str) -> None:
    if kind == "npm":
        (clone / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "main": "index.js"}))
        (clone / "index.js").write_text("module.exports = 1;\n")
    elif kind == "maven":
        (clone / "pom.xml").write_text(
            f"<project><modelVersion>4.0.0</modelVersion><groupId>org.bbpp.secrets</groupId>"
            f"<artifactId>{name}</artifactId><version>1.0.0</version></project>"
        )
        (clone / "target").mkdir()
        with zipfile.ZipFile(clone / "target" / f"{name}-1.0.0.jar", "w") as jar:
            jar.writestr("a.txt", name)
    else:
        (clone / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\n")
        (clone / "a.txt").write_text(name)


def scenario_env(sandbox, kind: str, step: Path, name: str, token: str, **extra: str) -> dict[str, str]:
    registry = {"npm": sandbox.npm_registry, "maven": sandbox.maven_registry, "docker": sandbox.oci_registry}[kind]
    return base_env(
        PACKAGE_TYPE=kind,
        REGISTRY_URL=registry,
        BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user,
        BITBUCKET_PACKAGES_TOKEN=token,
        BITBUCKET_REPO_SLUG=name,
        BITBUCKET_TAG="v1.0.0",
        BITBUCKET_CLONE_DIR=str(step / "clone"),
        BITBUCKET_PIPELINES_VARIABLES_PATH=str(step / "outputs.env"),
        BITBUCKET_PIPE_STORAGE_DIR=str(step / "storage"),
        DOCKER_HOST=sandbox.docker_host,
        HOME=str(step / "home"),
        **extra,
    )


def new_step(tmp_path: Path, label: str) -> Path:
    step = tmp_path / label
    for folder in ("clone", "storage", "home"):
        (step / folder).mkdir(parents=True)
    return step


def scan(step: Path, output: str, user: str, token: str) -> None:
    """Output, summary, outputs file, clone directory and HOME: no form of the token anywhere,
    and no credential file written."""
    assert_no_secret(output, user, token)
    assert_no_secret_in_tree(step, user, token)
    for credential_file in (".npmrc", "settings.xml", ".docker/config.json", ".m2/settings.xml"):
        for root in (step / "clone", step / "home"):
            assert not (root / credential_file).exists(), f"{root / credential_file} was written"


@pytest.mark.parametrize("debug", ["false", "true"])
@pytest.mark.parametrize("kind", KINDS)
def test_publish_and_rerun_leak_nothing(sandbox, unique, tmp_path: Path, kind: str, debug: str, local_image: str):
    name = unique("bbpp-secrets")
    step = new_step(tmp_path, "publish")
    make_project(kind, step / "clone", name)
    extra = {"DEBUG": debug, **({"LOCAL_IMAGE": local_image} if kind == "docker" else {})}
    env = scenario_env(sandbox, kind, step, name, sandbox.writer_token, **extra)
    first = run_subprocess(env, step / "clone")
    again = run_subprocess(env, step / "clone")
    assert first.code == 0, first.output
    assert again.code == 0, again.output
    if debug == "true":
        assert "DEBUG: " in first.output  # the verbose path really ran
    assert (step / "storage" / "bitbucket-packages-publish.json").exists()
    assert (step / "outputs.env").read_text()
    scan(step, first.output + again.output, sandbox.writer_user, sandbox.writer_token)


@pytest.mark.parametrize("debug", ["false", "true"])
@pytest.mark.parametrize("kind", KINDS)
def test_refused_credentials_leak_nothing(sandbox, unique, tmp_path: Path, kind: str, debug: str, local_image: str):
    name = unique("bbpp-secrets")
    step = new_step(tmp_path, "refused")
    make_project(kind, step / "clone", name)
    extra = {"DEBUG": debug, **({"LOCAL_IMAGE": local_image} if kind == "docker" else {})}
    run = run_subprocess(scenario_env(sandbox, kind, step, name, CANARY, **extra), step / "clone")
    assert run.code == 1, run.output
    assert run.last_line.startswith("✖ ") and "401" in run.last_line
    scan(step, run.output, sandbox.writer_user, CANARY)


@pytest.mark.parametrize("debug", ["false", "true"])
@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_registry_and_dry_run_leak_nothing(sandbox, unique, tmp_path: Path, kind: str, debug: str):
    name = unique("bbpp-secrets")
    step = new_step(tmp_path, "unreachable")
    make_project(kind, step / "clone", name)
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    url = {"npm": "http://127.0.0.1:9/", "maven": "http://127.0.0.1:9/maven/", "docker": "127.0.0.1:9"}[kind]
    env = {**scenario_env(sandbox, kind, step, name, CANARY, DEBUG=debug, DRY_RUN="true"), "REGISTRY_URL": url}
    run = run_subprocess(env, step / "clone")
    assert run.code == 1, run.output
    assert run.last_line.startswith("✖ ")
    scan(step, run.output, sandbox.writer_user, CANARY)


# What a careless library might put in an exception: the header, the URL with user-info, the token.
def leaky_error(user: str, token: str) -> RuntimeError:
    import base64

    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    return RuntimeError(
        f"boom: Authorization: Basic {basic}; url=https://{user}:{token}@registry.example.com/; "
        f"Bearer {token}; raw {token}; {base64.b64encode(token.encode()).decode()}"
    )


CRASH_POINTS = {
    "npm": ("pipe.npm.registry.NpmRegistry", "read_packument"),
    "maven": ("pipe.maven.repository.MavenRepository", "remote_sha1"),
    "docker": ("pipe.containers.registry.RegistryReader", "list_tags"),
}


@pytest.mark.parametrize("debug", ["false", "true"])
@pytest.mark.parametrize("kind", KINDS)
def test_crashes_leak_nothing(sandbox, unique, tmp_path: Path, monkeypatch, capfd, kind: str, debug: str):
    import importlib

    module_name, attribute = CRASH_POINTS[kind]
    module, _, class_name = module_name.rpartition(".")
    target = getattr(importlib.import_module(module), class_name)

    def crash(*args, **kwargs):
        raise leaky_error(sandbox.writer_user, sandbox.writer_token)

    monkeypatch.setattr(target, attribute, crash)
    name = unique("bbpp-secrets")
    step = new_step(tmp_path, "crash")
    make_project(kind, step / "clone", name)
    run = run_in_process(
        scenario_env(sandbox, kind, step, name, sandbox.writer_token, DEBUG=debug, LOCAL_IMAGE="unused"),
        step / "clone",
    )
    captured = capfd.readouterr()
    assert run.code == 1, run.output
    assert run.last_line.startswith("✖ unexpected error (RuntimeError: boom")
    assert ("Traceback" in run.output) is (debug == "true")
    scan(step, run.output + captured.out + captured.err, sandbox.writer_user, sandbox.writer_token)


def test_the_scan_would_find_a_leak(tmp_path: Path):
    """The scanner itself: each form planted in a file is found."""
    import base64

    for form in (CANARY, base64.b64encode(CANARY.encode()).decode(), f"Bearer {CANARY}"):
        (tmp_path / "leak.txt").write_text(f"x {form} y")
        with pytest.raises(AssertionError):
            assert_no_secret_in_tree(tmp_path, "u", CANARY)
        with pytest.raises(AssertionError):
            assert_no_secret(io.StringIO(f"x {form} y").getvalue(), "u", CANARY)

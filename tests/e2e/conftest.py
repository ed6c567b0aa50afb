"""Fixtures for the end-to-end tests: the pipe's real image, run the way Bitbucket Pipelines
runs a pipe.

Pipelines starts a pipe with `docker run`: the clone directory mounted at
/opt/atlassian/pipelines/agent/build and used as the working directory, the BITBUCKET_* build
variables and the pipe's variables passed with `--env`, the step's Docker service reachable
through DOCKER_HOST, the pipe's storage directory under the clone and the output-variables file
in the agent's temporary folder. Here the engine has no bridge network, so the container shares
the host's network and reaches the sandbox registries on 127.0.0.1.

The image is built once per session from the real Dockerfile on the Debian stand-in base
(scripts/base-image, scripts/build-image). A failed build fails the tests; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import (
    REPO_ROOT,
    PipeRun,
    apply_overrides,
    assert_no_secret,
    assert_no_secret_in_tree,
    once_per_run,
    session_name,
)
from tests.sandbox_env import load_sandbox_env

SANDBOX_DIR = REPO_ROOT / "sandbox"
AGENT = "/opt/atlassian/pipelines/agent"
CLONE_DIR = f"{AGENT}/build"
AGENT_TMP = f"{AGENT}/tmp"
PIPE_STORAGE = f"{CLONE_DIR}/.bitbucket/pipelines/generated/pipeline/pipes/bitbucket-packages-publish"
OUTPUTS_FILE = f"{AGENT_TMP}/pipe-outputs.env"
DOCKER_SOCKET = "/var/run/docker.sock"
# Building the base takes a few minutes on a fresh machine (debootstrap), then seconds.
BUILD_TIMEOUT_S = 1200
UP_TIMEOUT_S = 900
RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Registries:
    oci: str  # host:port
    npm: str  # URL, trailing slash
    maven: str  # URL, trailing slash
    writer: tuple[str, str]
    reader: tuple[str, str]
    docker_host: str
    env: dict[str, str] = field(repr=False)

    def helper(self, name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a sandbox/ consumer helper (npm-view, npm-install, mvn-get)."""
        return subprocess.run(
            [str(SANDBOX_DIR / name), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def run_script(command: list[str], timeout: float, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False
        )
    return done.stdout


@pytest.fixture(scope="session")
def registries() -> Registries:
    values = load_sandbox_env()
    run_script([str(SANDBOX_DIR / "up")], UP_TIMEOUT_S, values)
    return Registries(
        oci=values["SANDBOX_OCI_REGISTRY"],
        npm=values["SANDBOX_NPM_REGISTRY"],
        maven=values["SANDBOX_MAVEN_REGISTRY"],
        writer=(values["SANDBOX_WRITER_USER"], values["SANDBOX_WRITER_TOKEN"]),
        reader=(values["SANDBOX_READER_USER"], values["SANDBOX_READER_TOKEN"]),
        docker_host=values["DOCKER_HOST"],
        env=values,
    )


@pytest.fixture(scope="session")
def pipe_image(registries: Registries, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pipe's image, built from the working tree once per run (layer cache makes re-builds
    quick), however many workers run the e2e tests."""

    def build() -> str:
        output = run_script(
            [str(REPO_ROOT / "scripts" / "build-image")], BUILD_TIMEOUT_S, {"DOCKER_HOST": registries.docker_host}
        )
        return output.strip().splitlines()[-1]

    return once_per_run(tmp_path_factory, "pipe-image", build)


@dataclass
class PipelineRun(PipeRun):
    outputs: dict[str, str]
    summary: dict[str, object] | None


@dataclass
class Pipelines:
    """A Pipelines step in miniature: a clone directory, an agent tmp folder, and `run(...)`."""

    image: str
    clone: Path
    agent_tmp: Path
    docker_host: str

    @property
    def docker_socket(self) -> str:
        if not self.docker_host.startswith("unix://"):
            raise AssertionError(f"the e2e tests need a unix-socket DOCKER_HOST, got {self.docker_host}")
        return self.docker_host.removeprefix("unix://")

    def build_variables(self, **overrides: str | None) -> dict[str, str]:
        """What Pipelines sets for every step (a branch build of widget in workspace e2e)."""
        variables = {
            "CI": "true",
            "BITBUCKET_CLONE_DIR": CLONE_DIR,
            "BITBUCKET_WORKSPACE": "e2e",
            "BITBUCKET_REPO_SLUG": "widget",
            "BITBUCKET_REPO_FULL_NAME": "e2e/widget",
            "BITBUCKET_GIT_HTTP_ORIGIN": "http://bitbucket.org/e2e/widget",
            "BITBUCKET_COMMIT": "0123456789abcdef0123456789abcdef01234567",
            "BITBUCKET_BUILD_NUMBER": "7",
            "BITBUCKET_BRANCH": "main",
            "BITBUCKET_STEP_UUID": "{" + str(uuid.uuid4()) + "}",
            "BITBUCKET_PIPELINE_UUID": "{" + str(uuid.uuid4()) + "}",
            "BITBUCKET_PIPE_STORAGE_DIR": PIPE_STORAGE,
            "BITBUCKET_PIPE_SHARED_STORAGE_DIR": f"{CLONE_DIR}/.bitbucket/pipelines/generated/pipeline/pipes",
            "BITBUCKET_PIPELINES_VARIABLES_PATH": OUTPUTS_FILE,
        }
        return apply_overrides(variables, overrides)

    def run(self, variables: dict[str, str], with_docker: bool = False, docker_tcp: str | None = None) -> PipelineRun:
        """`docker run` the pipe. Values travel as `--env NAME` (taken from the docker client's
        environment) so that tokens stay out of the command line. `docker_tcp` (host:port) hands
        the pipe the engine over TCP instead, as the Pipelines docker service does."""
        command = ["docker", "run", "--rm", "--network", "host", "--label", "org.bitbucket.pipelines.system=true"]
        command += ["--volume", f"{self.clone}:{CLONE_DIR}", "--volume", f"{self.agent_tmp}:{AGENT_TMP}"]
        command += ["--workdir", CLONE_DIR]
        if docker_tcp:
            command += ["--env", f"DOCKER_HOST=tcp://{docker_tcp}"]
        elif with_docker:
            # The step's Docker service, as the pipe sees it: a socket at the usual place. (The
            # docker CLI below has its own DOCKER_HOST, so this one is passed by value.)
            command += ["--volume", f"{self.docker_socket}:{DOCKER_SOCKET}"]
            command += ["--env", f"DOCKER_HOST=unix://{DOCKER_SOCKET}"]
        for name in sorted(variables):
            command += ["--env", name]
        command.append(self.image)
        client_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"), **variables}
        client_env["DOCKER_HOST"] = self.docker_host
        done = subprocess.run(
            command,
            env=client_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        return PipelineRun(done.returncode, done.stdout, self.read_outputs(), self.read_summary())

    def fresh_clone(self, name: str) -> Pipelines:
        """A re-run of the step: Pipelines clones again, into a new build directory."""
        clone = self.clone.parent / name
        agent_tmp = self.agent_tmp.parent / f"{name}-agent-tmp"
        clone.mkdir()
        agent_tmp.mkdir()
        return Pipelines(self.image, clone, agent_tmp, self.docker_host)

    def read_outputs(self) -> dict[str, str]:
        path = self.agent_tmp / Path(OUTPUTS_FILE).name
        if not path.exists():
            return {}
        pairs = (line.partition("=") for line in path.read_text(encoding="utf-8").splitlines() if line)
        return {key: value for key, _, value in pairs}

    def read_summary(self) -> dict[str, object] | None:
        storage = self.clone / Path(PIPE_STORAGE).relative_to(CLONE_DIR)
        files = sorted(storage.glob("*.json")) if storage.is_dir() else []
        return json.loads(files[-1].read_text(encoding="utf-8")) if files else None

    def assert_nothing_leaked(self, run: PipeRun, user: str, token: str) -> None:
        """No form of the token in the output, in the clone directory (often kept as an
        artifact) or in the agent's tmp folder (the output variables)."""
        assert_no_secret(run.output, user, token)
        assert "Traceback" not in run.output
        assert_no_secret_in_tree(self.clone, user, token)
        assert_no_secret_in_tree(self.agent_tmp, user, token)
        assert not list(self.clone.rglob(".npmrc")), "an .npmrc was left in the clone"
        assert not list(self.clone.rglob("settings.xml")), "a settings.xml was left in the clone"
        assert not list(self.clone.rglob("config.json")), "a Docker config.json was left in the clone"


@pytest.fixture
def pipelines(pipe_image: str, registries: Registries, tmp_path: Path) -> Pipelines:
    clone = tmp_path / "build"
    agent_tmp = tmp_path / "agent-tmp"
    clone.mkdir()
    agent_tmp.mkdir()
    return Pipelines(pipe_image, clone, agent_tmp, registries.docker_host)


def unique_name(prefix: str) -> str:
    """Registry data outlives a test run: every run publishes under new names (recorded, so that
    what a test leaves in the engine under them is removed after it)."""
    return session_name(prefix, 10)

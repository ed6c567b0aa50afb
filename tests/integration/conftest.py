"""Fixtures for tests that run against the local registries of sandbox/.

The `sandbox` fixture starts them once per session with `sandbox/up`
(idempotent: a quick no-op when they already run) and describes them with
the values of `sandbox/sandbox.env`, where the environment wins over the
file, exactly as the shell scripts read it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import session_name
from tests.sandbox_env import load_sandbox_env

REPO_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_DIR = REPO_ROOT / "sandbox"

# sandbox/up installs packages on a fresh machine (apt, Verdaccio) before it
# starts the servers; each server then has its own readiness timeout.
UP_TIMEOUT_S = 900


def unique_name(prefix: str = "bbpp") -> str:
    """A name no earlier run has used: lowercase, valid as a Docker
    repository component, an npm package name and a Maven artifactId;
    recorded as this session's (tests/conftest.py removes what it names)."""
    return session_name(prefix)


@dataclass(frozen=True)
class Sandbox:
    oci_registry: str  # host:port, plain http
    npm_registry: str  # URL with trailing slash
    maven_registry: str  # URL with trailing slash
    writer_user: str
    writer_token: str
    reader_user: str
    reader_token: str
    state: Path
    docker_host: str
    env: dict[str, str] = field(repr=False)  # every KEY=value, as above

    @property
    def writer(self) -> tuple[str, str]:
        """(user, password) for requests' `auth=`."""
        return (self.writer_user, self.writer_token)

    @property
    def reader(self) -> tuple[str, str]:
        return (self.reader_user, self.reader_token)

    @property
    def oci_url(self) -> str:
        return f"http://{self.oci_registry}"

    def script(self, name: str) -> Path:
        """Path of a helper in sandbox/ (mvn-get, npm-view, npm-install...)."""
        return SANDBOX_DIR / name

    def run(
        self, name: str, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 300, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a sandbox/ helper with this sandbox's values in its environment."""
        env = {**os.environ, **self.env, **(extra_env or {})}
        return subprocess.run(
            [str(self.script(name)), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def require_installed(self, consumer: Path, spec: str, module: str) -> subprocess.CompletedProcess[str]:
        """Install `spec` with the real npm client into `consumer` and print what `require(module)`
        exports there, as a consumer of the published package sees it."""
        installed = self.run("npm-install", str(consumer), spec)
        assert installed.returncode == 0, installed.stderr
        return subprocess.run(
            ["node", "-e", f"console.log(require('{module}'))"], cwd=consumer, capture_output=True, text=True
        )

    @classmethod
    def from_env(cls, values: dict[str, str]) -> Sandbox:
        return cls(
            oci_registry=values["SANDBOX_OCI_REGISTRY"],
            npm_registry=values["SANDBOX_NPM_REGISTRY"],
            maven_registry=values["SANDBOX_MAVEN_REGISTRY"],
            writer_user=values["SANDBOX_WRITER_USER"],
            writer_token=values["SANDBOX_WRITER_TOKEN"],
            reader_user=values["SANDBOX_READER_USER"],
            reader_token=values["SANDBOX_READER_TOKEN"],
            state=Path(values["SANDBOX_STATE"]),
            docker_host=values["DOCKER_HOST"],
            env=dict(values),
        )


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """The local registries, started (once per session) and described."""
    values = load_sandbox_env()
    proc = subprocess.run(
        [str(SANDBOX_DIR / "up")],
        env={**os.environ, **values},
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_S,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"sandbox/up failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return Sandbox.from_env(values)


@pytest.fixture(scope="session")
def docker_engine(sandbox: Sandbox):
    """A docker-py client for the sandbox's engine."""
    import docker

    client = docker.DockerClient(base_url=sandbox.docker_host, timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def unique():
    """Factory for collision-free names: `unique("img")` -> "img-3f2a..."."""
    return unique_name

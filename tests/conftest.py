"""Helpers shared by every test layer: running the pipe and hunting for leaked secrets."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_USER = "pipe-user"
TEST_TOKEN = "ATBB-uNiQuE-t0ken-9d8c7b6a5f4e"


@dataclass
class PipeRun:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    @property
    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""


# Each test folder's tests carry its marker, so that e.g. `-m "not integration"` selects the fast ones.
FOLDER_MARKERS = ("integration", "e2e", "faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        folder = Path(str(item.fspath)).resolve().relative_to(tests_dir).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))


def apply_overrides(env: dict[str, str], overrides: dict[str, str | None]) -> dict[str, str]:
    """`env` with `overrides` applied: a value replaces, None removes."""
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def base_env(**overrides: str) -> dict[str, str]:
    """A Pipelines-like environment with the test credentials; overrides win, None removes."""
    env = {
        "BITBUCKET_PACKAGES_USERNAME": TEST_USER,
        "BITBUCKET_PACKAGES_TOKEN": TEST_TOKEN,
        "BITBUCKET_WORKSPACE": "acme",
        "BITBUCKET_REPO_SLUG": "widget",
        "BITBUCKET_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "BITBUCKET_BUILD_NUMBER": "42",
    }
    return apply_overrides(env, overrides)


def run_in_process(env: dict[str, str], cwd: Path) -> PipeRun:
    """The pipe's `main` with an injected environment and a captured stream."""
    from pipe.cli import main

    stream = io.StringIO()
    code = main(environ=env, cwd=cwd, stream=stream)
    return PipeRun(code, stream.getvalue())


def run_subprocess(env: dict[str, str], cwd: Path, timeout: float = 600) -> PipeRun:
    """`python3 -m pipe` as a separate process, stdout and stderr together."""
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "HOME": os.environ.get("HOME", "/root"),
    }
    full_env.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "pipe"],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PipeRun(done.returncode, done.stdout)


def secret_forms(user: str, token: str) -> list[str]:
    """Every form in which a token could leak: raw, base64 of it, base64 of user:token,
    URL-encoded, and the token in each base64 alignment inside a larger blob."""
    forms = {token, quote(token, safe=""), base64.b64encode(token.encode()).decode()}
    forms.add(base64.b64encode(f"{user}:{token}".encode()).decode())
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + token.encode()).decode()
        forms.add(encoded[4 : 4 * ((offset + len(token)) // 3)] if offset else encoded.rstrip("="))
    return sorted(form for form in forms if len(form) >= 8)


def assert_no_secret(text: str, user: str = TEST_USER, token: str = TEST_TOKEN) -> None:
    for form in secret_forms(user, token):
        assert form not in text, f"a form of the token leaked: {form!r}"
    assert "Bearer " + token not in text


def assert_no_secret_in_tree(root: Path, user: str = TEST_USER, token: str = TEST_TOKEN) -> None:
    """No file under `root` (the clone directory) holds the token in any form."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes().decode("utf-8", errors="replace")
            for form in secret_forms(user, token):
                assert form not in content, f"{path} holds a form of the token"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty clone directory."""
    clone = tmp_path / "clone"
    clone.mkdir()
    return clone

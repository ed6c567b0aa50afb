"""The pipe's image itself: small, nothing left over from the build, metadata where pipes keep it."""

from __future__ import annotations

import os
import subprocess

from bench.image import BASE_IMAGE, SIZE_BUDGET_MB, inspect, own_layers
from tests.e2e.conftest import Registries


def in_image(image: str, registries: Registries, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", script],
        env={**os.environ, "DOCKER_HOST": registries.docker_host},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_own_layers_stay_within_the_size_budget(pipe_image: str, registries: Registries, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", registries.docker_host)
    assert own_layers(pipe_image, BASE_IMAGE), "the image adds no layer to its base"
    added_mb = (inspect(pipe_image)["Size"] - inspect(BASE_IMAGE)["Size"]) / 1e6
    assert 0 < added_mb <= SIZE_BUDGET_MB


def test_entrypoint_runs_the_pipe_module(pipe_image: str, registries: Registries, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", registries.docker_host)
    config = inspect(pipe_image)["Config"]
    assert config["Entrypoint"] == ["python3", "-m", "pipe"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]


def test_no_installer_cache_or_build_leftovers(pipe_image: str, registries: Registries) -> None:
    checks = " && ".join(
        [
            "! /opt/pipe-venv/bin/python -m pip --version >/dev/null 2>&1",  # pip left with the build
            "test ! -e /root/.cache",
            'test -z "$(ls -A /tmp)"',
            "! command -v gcc",
            "! command -v cc",
            "test -f /pipe.yml && test -f /README.md && test -f /LICENSE.txt",
            'test -z "$(find /pipe -name tests)"',
        ]
    )
    done = in_image(pipe_image, registries, checks)
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_the_pipe_package_is_copied_from_the_repository(pipe_image: str, registries: Registries) -> None:
    done = in_image(pipe_image, registries, "cd /pipe && find . -maxdepth 1 | sort")
    assert done.stdout.split() == [".", "./pipe", "./requirements.txt"]
    listing = in_image(pipe_image, registries, "cd /pipe/pipe && find . -name '*.py' | sort")
    modules = listing.stdout.split()
    assert "./cli.py" in modules and "./__main__.py" in modules
    assert not [path for path in modules if "test" in path]
    # The metadata Atlassian's pipe tooling reads from the image.
    pipe_yml = in_image(pipe_image, registries, "head -n 1 /pipe.yml")
    assert pipe_yml.stdout.startswith("name: ")

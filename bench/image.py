"""Benchmark of the pipe's image: what its own layers add to the base, and how fast it speaks.

    .venv/bin/python -m bench.image [--runs 10] [--no-build]

- size: the Dockerfile's own layers above BASE_IMAGE, uncompressed (what `docker images` counts)
  and gzip-compressed (roughly what a pull downloads);
- start-up: time from starting the process to the pipe's first output line, for a run that stops
  at a bad variable (so nothing but start-up is measured): `docker run` as Pipelines does it,
  and `python3 -m pipe` inside an already running container (the interpreter alone).

The image is (re)built first with scripts/build-image on the local stand-in base.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPE_IMAGE = os.environ.get("PIPE_IMAGE", "bitbucket-packages-publish:dev")
BASE_IMAGE = os.environ.get("BASE_IMAGE", "bbpp-base:bookworm")
SIZE_BUDGET_MB = 40.0
STARTUP_BUDGET_S = 0.5
# A run that fails at configuration time: the first line is the pipe's ✖, nothing is contacted.
BAD_VARIABLES = {"BITBUCKET_PACKAGES_USERNAME": "bench", "BITBUCKET_PACKAGES_TOKEN": "bench", "PACKAGE_TYPE": "bogus"}

# Runs inside the container: the same measurement without Docker's container start-up.
IN_CONTAINER_PROBE = """
import json, os, subprocess, sys, time
env = dict(os.environ, **json.loads(sys.argv[2]))
times = []
for _ in range(int(sys.argv[1])):
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipe"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdout.readline()
    times.append(time.perf_counter() - start)
    proc.communicate()
print(json.dumps(times))
"""


def docker(*args: str, capture: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=capture, text=True, check=True, timeout=600)
    return done.stdout if capture else ""


def inspect(image: str) -> dict:
    return json.loads(docker("image", "inspect", image))[0]


def own_layers(image: str, base: str) -> list[str]:
    """Diff IDs of the layers the Dockerfile added (the image's layers after the base's)."""
    layers, base_layers = inspect(image)["RootFS"]["Layers"], inspect(base)["RootFS"]["Layers"]
    if layers[: len(base_layers)] != base_layers:
        raise SystemExit(f"{image} is not built on {base}: build it with scripts/build-image first.")
    return layers[len(base_layers) :]


def compressed_sizes(image: str, diff_ids: list[str]) -> dict[str, int]:
    """gzip size of each given layer, from `docker save` (layers are stored there uncompressed)."""
    sizes = {}
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "image.tar"
        docker("save", "--output", str(archive), image)
        with tarfile.open(archive) as saved:
            manifest = json.load(saved.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            diff_by_path = dict(zip(manifest["Layers"], inspect(image)["RootFS"]["Layers"], strict=True))
            for path, diff_id in diff_by_path.items():
                if diff_id in diff_ids:
                    data = saved.extractfile(path).read()  # type: ignore[union-attr]
                    sizes[diff_id] = len(gzip.compress(data, compresslevel=6))
    return sizes


def size_rows(image: str, base: str) -> list[tuple[str, str, str]]:
    added = inspect(image)["Size"] - inspect(base)["Size"]
    compressed = sum(compressed_sizes(image, own_layers(image, base)).values())
    verdict = "ok" if added / 1e6 <= SIZE_BUDGET_MB else "OVER BUDGET"
    return [
        ("base image (stand-in for python:3.12-slim)", f"{inspect(base)['Size'] / 1e6:.1f} MB", ""),
        ("image's own layers, uncompressed", f"{added / 1e6:.1f} MB", f"budget {SIZE_BUDGET_MB:.0f} MB: {verdict}"),
        ("image's own layers, gzip (pull size)", f"{compressed / 1e6:.1f} MB", ""),
    ]


def first_line_time(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.communicate(timeout=60)
    return elapsed, line.strip()


def docker_run_times(image: str, runs: int) -> list[float]:
    command = ["docker", "run", "--rm", "--network", "none"]
    for name in BAD_VARIABLES:
        command += ["--env", name]
    env = {**os.environ, **BAD_VARIABLES}
    times = []
    for _ in range(runs):
        elapsed, line = first_line_time([*command, image], env)
        if not line.startswith("✖ PACKAGE_TYPE"):
            raise SystemExit(f"unexpected first line from the pipe: {line!r}")
        times.append(elapsed)
    return times


def in_container_times(image: str, runs: int) -> list[float]:
    output = docker(
        "run", "--rm", "--network", "none", "--workdir", "/tmp", "--entrypoint", "python3",
        image, "-c", IN_CONTAINER_PROBE, str(runs), json.dumps(BAD_VARIABLES),
    )  # fmt: skip
    return json.loads(output)


def startup_rows(image: str, runs: int) -> list[tuple[str, str, str]]:
    rows = []
    for label, times in (
        ("start-up to first line: `docker run` (median)", docker_run_times(image, runs)),
        ("start-up to first line: python in container (median)", in_container_times(image, runs)),
    ):
        median = statistics.median(times)
        verdict = "ok" if median <= STARTUP_BUDGET_S else "OVER BUDGET"
        spread = f"{runs} runs, {min(times):.2f}–{max(times):.2f} s; budget {STARTUP_BUDGET_S} s: {verdict}"
        rows.append((label, f"{median:.2f} s", spread))
    return rows


def print_table(rows: list[tuple[str, str, str]]) -> None:
    print("| measure | value | notes |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="start-up runs per measure (default 10)")
    parser.add_argument("--no-build", action="store_true", help="measure the existing image as it is")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run([str(REPO_ROOT / "scripts" / "build-image")], check=True, stdout=subprocess.DEVNULL)
    print(f"image {PIPE_IMAGE} on {BASE_IMAGE}\n")
    print_table(size_rows(PIPE_IMAGE, BASE_IMAGE) + startup_rows(PIPE_IMAGE, args.runs))


if __name__ == "__main__":
    main()

"""Benchmark: the build step of release 2 of an app image whose dependency step is expensive, on a
fresh Docker engine, as every Pipelines step gets one.

    .venv/bin/python -m bench.build_cache [--runs 3] [--work-mb 1500]

The Dockerfile installs its "dependencies" in a CPU-bound step that needs no network (hashing
`--work-mb` MB, then writing a 5 MB layer), then copies the app's source, which changes with every
release (a plain Dockerfile, so that the classic builder builds it too). For each way of building,
release 1.0.0 is pushed by the pipe to a repository of its own, then release 1.0.1 is built on an
engine that has neither the app's images nor any build cache (the bench removes them and prunes
the builder cache first):

- the pipe as it builds by default: BuildKit, its cache pulled from the registry (`latest`);
- the pipe with BuildKit and `CACHE_FROM: 'none'` (a cold BuildKit build);
- the pipe with `BUILDER: classic` and `CACHE_FROM: 'none'` (what the pipe did before BuildKit);
- `docker build` of the same Dockerfile (a step that builds by hand: cold too).

For the pipe, the build step is the time from its "Building …" line to its "Built image" line
(pulling the cache sources included); the whole run (build, then push) is shown beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.oci_push import DOCKER_HOST, REGISTRY, pipe_env

REPO_ROOT = Path(__file__).resolve().parent.parent
WAYS = ("pipe, BuildKit + registry cache", "pipe, BuildKit, CACHE_FROM none", "pipe, BUILDER classic", "docker build")
BASELINE = "pipe, BUILDER classic"
DOCKERFILE = """\
FROM {base}
RUN head -c {work_bytes} /dev/zero | sha256sum > /deps.lock \\
    && head -c 5000000 /dev/urandom > /deps.bin
COPY app.txt /app.txt
"""


@dataclass
class Timing:
    build: float
    whole: float


def base_image() -> str:
    done = subprocess.run([str(REPO_ROOT / "scripts" / "busybox-image")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def project(folder: Path, base: str, work_mb: int, release: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE.format(base=base, work_bytes=work_mb * 1_000_000))
    (folder / "app.txt").write_text(f"release {release} {uuid.uuid4().hex}\n")
    return folder


def timed_lines(command: list[str], env: dict[str, str], cwd: Path) -> tuple[list[tuple[float, str]], float]:
    """Each output line with the time it arrived, and the whole run's wall time."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.perf_counter() - start, line.rstrip("\n")) for line in process.stdout]
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n" + "\n".join(line for _, line in lines))
    return lines, time.perf_counter() - start


def pipe_release(folder: Path, repository: str, tag: str, **extra: str) -> Timing:
    env = pipe_env(repository, BITBUCKET_TAG=f"v{tag}", TAGS="", PYTHONUNBUFFERED="1", **extra)
    env.pop("BITBUCKET_BRANCH")
    lines, whole = timed_lines([sys.executable, "-m", "pipe"], env, folder)
    started = next(at for at, line in lines if line.startswith("Building "))
    built = next(at for at, line in lines if line.startswith("Built image "))
    return Timing(built - started, whole)


def fresh_engine(repository: str) -> None:
    """No image of this repository in the engine, and no build cache at all."""
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    mine = [reference for reference in listed if repository in reference]
    if mine:
        subprocess.run(["docker", "rmi", *mine], check=False, capture_output=True)
    subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)


def run_way(way: str, folder: Path, repository: str) -> Timing:
    fresh_engine(repository)
    if way == "docker build":
        tag = f"{REGISTRY}/bench/{repository}:cli"
        start = time.perf_counter()
        subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], check=True, capture_output=True)
        took = time.perf_counter() - start
        subprocess.run(["docker", "rmi", tag], check=False, capture_output=True)
        return Timing(took, took)
    extra = {
        "pipe, BuildKit, CACHE_FROM none": {"CACHE_FROM": "none"},
        "pipe, BUILDER classic": {"BUILDER": "classic", "CACHE_FROM": "none"},
    }
    return pipe_release(folder, repository, "1.0.1", **extra.get(way, {}))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work-mb", type=int, default=1500, help="MB the dependency step hashes (its CPU time)")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    base = base_image()
    results: dict[str, list[Timing]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        for run in range(args.runs):
            first = project(Path(scratch) / f"v1-{run}", base, args.work_mb, "1.0.0")
            second = project(Path(scratch) / f"v2-{run}", base, args.work_mb, "1.0.1")
            for way in WAYS:
                repository = f"build-cache-{uuid.uuid4().hex[:10]}"
                pipe_release(first, repository, "1.0.0")  # untimed: what the last release left
                results[way].append(run_way(way, second, repository))
                print(f"run {run + 1} {way}: build {results[way][-1].build:.2f} s", file=sys.stderr)
                fresh_engine(repository)
    print(f"Release 1.0.1 built on a fresh engine (no images, builder cache pruned), dependency step hashing "
          f"{args.work_mb} MB; engine {DOCKER_HOST}; {os.cpu_count()} CPUs; median of {args.runs}.\n")  # fmt: skip
    classic = statistics.median(timing.build for timing in results[BASELINE])
    by_hand = statistics.median(timing.build for timing in results["docker build"])
    print("| build of release 1.0.1 | build step | vs `docker build` | vs the classic builder | whole run |")
    print("|---|---:|---:|---:|---:|")
    for way, timings in results.items():
        build = statistics.median(timing.build for timing in timings)
        whole = statistics.median(timing.whole for timing in timings)
        print(f"| {way} | {build:.2f} s | {by_hand / build:.1f}x | {classic / build:.1f}x | {whole:.2f} s |")


if __name__ == "__main__":
    main()

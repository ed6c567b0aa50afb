"""Benchmark: the next release of an app image on an unchanged base, as a Pipelines step pushes it.

    .venv/bin/python -m bench.oci_release [--runs 3] [--text-mb 50] [--random-mb 75]

The common case in CI: release 2.0.0 of an app whose base image (here the 300 MB, 6-layer image of
`bench/oci_push.py`) is the same as release 1.0.0's, already in the repository as `latest`. Every
Pipelines step gets a fresh docker service, which does not remember what it pushed before; the
bench gives the engine the same start by clearing its distribution metadata (what it knows about
layers in registries) before each timed push. Then, for each method:

- `docker push` of `2.0.0` (the engine compresses the layers again and uploads them: it cannot
  tell that the registry has them),
- the pipe with LOCAL_IMAGE (native: exports the image, skips the layers `latest` already has),
- the pipe with IMAGE_ARCHIVE (a `docker save` of release 2.0.0 made beforehand),

each to its own repository where release 1.0.0 was pushed by the same method, alternating.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.oci_push import (
    REGISTRY,
    Sample,
    build_image,
    docker_env,
    image_arguments,
    logged_in_config,
    measure,
    pipe_env,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
METHODS = ("docker push", "pipe, native from engine", "pipe, IMAGE_ARCHIVE")


def engine_metadata_dir() -> Path:
    root = subprocess.run(
        ["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(root) / "image" / "overlay2" / "distribution"


def forget_pushes(metadata: Path) -> None:
    """What a fresh docker service knows about layers in registries: nothing."""
    for entry in metadata.iterdir():
        shutil.rmtree(entry)


def build_release(base: str, folder: Path, name: str) -> str:
    """The app on top of `base`: one small layer of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.txt").write_text(uuid.uuid4().hex * 100)
    (folder / "Dockerfile").write_text(f"FROM {base}\nCOPY app.txt /app.txt\n")
    subprocess.run(["docker", "build", "-q", "-t", name, str(folder)], check=True, capture_output=True)
    return name


def push(method: str, local: str, tag: str, repository: str, config: Path, archive: Path | None) -> Sample:
    if method == "docker push":
        reference = f"{REGISTRY}/bench/{repository}:{tag}"
        subprocess.run(["docker", "tag", local, reference], check=True, env=docker_env(config))
        return measure(["docker", "push", "-q", reference], docker_env(config))
    if archive is not None:  # no engine at all
        env = pipe_env(repository, IMAGE_ARCHIVE=str(archive), DOCKER_HOST="unix:///nonexistent", TAGS=tag)
    else:
        env = pipe_env(repository, LOCAL_IMAGE=local, PUSH_METHOD="native", TAGS=tag)
    return measure([sys.executable, "-m", "pipe"], env, REPO_ROOT)


def run_once(method: str, base: str, root: Path, config: Path, metadata: Path) -> Sample:
    repository = re.sub(r"[^a-z0-9]+", "-", method).strip("-") + f"-{uuid.uuid4().hex[:10]}"
    first = build_release(base, root / "v1", f"bench-release:{repository}-1")
    push(method, first, "latest", repository, config, None)  # release 1.0.0, untimed
    second = build_release(base, root / "v2", f"bench-release:{repository}-2")
    archive = None
    if method == "pipe, IMAGE_ARCHIVE":
        archive = root / "release.tar"
        subprocess.run(["docker", "save", "-o", str(archive), second], check=True)
    forget_pushes(metadata)
    sample = push(method, second, "2.0.0", repository, config, archive)
    subprocess.run(["docker", "rmi", "-f", first, second], check=False, capture_output=True)
    return sample


def main() -> None:
    args = image_arguments(__doc__.split("\n")[0])
    metadata = engine_metadata_dir()
    results: dict[str, list[Sample]] = {method: [] for method in METHODS}
    with tempfile.TemporaryDirectory(prefix="bench-release-") as scratch:
        root = Path(scratch)
        config = logged_in_config(root)
        for run in range(args.runs):
            base = build_image(root / f"base-{run}", args.text_mb, args.random_mb)
            for method in METHODS:
                results[method].append(run_once(method, base, root, config, metadata))
                print(f"run {run + 1} {method}: {results[method][-1].wall:.2f} s", file=sys.stderr)
            subprocess.run(["docker", "rmi", "-f", base], check=False, capture_output=True)
    print(f"Release 2.0.0 on an unchanged {3 * args.text_mb + 2 * args.random_mb} MB base (6 layers) whose ")
    print(f"release 1.0.0 is `latest`; engine without push metadata; {os.cpu_count()} CPUs; median of {args.runs}.\n")
    base_wall = statistics.median(sample.wall for sample in results["docker push"])
    base_cpu = statistics.median(sample.cpu for sample in results["docker push"])
    print("| method | push of the release | vs `docker push` | CPU | CPU vs `docker push` |")
    print("|---|---:|---:|---:|---:|")
    for method, samples in results.items():
        wall = statistics.median(sample.wall for sample in samples)
        cpu = statistics.median(sample.cpu for sample in samples)
        print(f"| {method} | {wall:.2f} s | {base_wall / wall:.1f}x | {cpu:.1f} s | {cpu / base_cpu:.0%} |")


if __name__ == "__main__":
    main()

"""Benchmark: the pipe's native push (OCI distribution API) against `docker push`, side by side.

    .venv/bin/python -m bench.oci_push [--runs 3] [--text-mb 50] [--random-mb 75]

One multi-layer image built FROM scratch (3 text layers, 2 random = incompressible, 1 tiny),
pushed to the sandbox registry (sandbox/up) by:

- `docker push` (the engine compresses and uploads),
- the pipe with LOCAL_IMAGE + PUSH_METHOD=native (exports the image from the engine, then pushes),
- the pipe with IMAGE_ARCHIVE (a `docker save` tarball made beforehand, no engine involved),

each to a fresh repository, then each re-pushed unchanged, always the one tag `main` (the pipe
with `TAGS: main`, so both do the same work). Runs alternate between the methods. Wall time, CPU
(the client process plus dockerd) and the client's peak memory are reported as medians, with
ratios against `docker push`. Also measured: how long the engine takes to export the image
(`docker save > /dev/null`), the floor for any client that pushes an engine's image itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox_env import load_sandbox_env  # noqa: E402

SANDBOX = load_sandbox_env()
REGISTRY = SANDBOX["SANDBOX_OCI_REGISTRY"]
USER, TOKEN = SANDBOX["SANDBOX_WRITER_USER"], SANDBOX["SANDBOX_WRITER_TOKEN"]
DOCKER_HOST = SANDBOX["DOCKER_HOST"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    wall: float
    cpu: float
    peak_mb: float


def dockerd_cpu() -> float:
    """CPU seconds dockerd has used so far (it does the compressing for `docker push`)."""
    pid = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=False).stdout.split()
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure(command: list[str], env: dict[str, str], cwd: Path | None = None) -> Sample:
    engine_before = dockerd_cpu()
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output.decode(errors='replace')}")
    cpu = usage.ru_utime + usage.ru_stime + dockerd_cpu() - engine_before
    return Sample(wall, cpu, usage.ru_maxrss / 1024)


def build_image(folder: Path, text_mb: int, random_mb: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    line = "benchmark text line with words that repeat, %d\n"
    for index in range(3):
        with open(folder / f"text{index}.txt", "w") as out:
            count = 0
            while count < text_mb * 1_000_000:
                chunk = "".join(line % (count + i) for i in range(10000)) + uuid.uuid4().hex
                out.write(chunk)
                count += len(chunk)
    for index in range(2):
        with open(folder / f"random{index}.bin", "wb") as out:
            for _ in range(random_mb):
                out.write(os.urandom(1_000_000))
    (folder / "small.txt").write_text("small\n")
    copies = "".join(f"COPY {name} /{name}\n" for name in ("text0.txt", "random0.bin", "text1.txt", "random1.bin",
                                                            "text2.txt", "small.txt"))  # fmt: skip
    (folder / "Dockerfile").write_text("FROM scratch\n" + copies)
    tag = f"bench-oci:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], check=True, capture_output=True)
    return tag


def docker_env(config: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "DOCKER_HOST": DOCKER_HOST, "DOCKER_CONFIG": str(config)}


def pipe_env(image: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(REPO_ROOT),
        "PACKAGE_TYPE": "docker",
        "REGISTRY_URL": REGISTRY,
        "BITBUCKET_PACKAGES_USERNAME": USER,
        "BITBUCKET_PACKAGES_TOKEN": TOKEN,
        "BITBUCKET_WORKSPACE": "bench",
        "BITBUCKET_REPO_SLUG": image,
        "BITBUCKET_BRANCH": "main",
        "BITBUCKET_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "DOCKER_HOST": DOCKER_HOST,
        "TAGS": "main",
        **extra,
    }


def run_once(method: str, local: str, archive: Path, config: Path) -> tuple[Sample, Sample]:
    """A fresh push to a new repository, then the same push again (nothing changed)."""
    image = re.sub(r"[^a-z0-9]+", "-", method).strip("-") + f"-{uuid.uuid4().hex[:10]}"
    if method == "docker push":
        reference = f"{REGISTRY}/bench/{image}:main"
        subprocess.run(["docker", "tag", local, reference], check=True, env=docker_env(config))
        command = ["docker", "push", "-q", reference]
        samples = measure(command, docker_env(config)), measure(command, docker_env(config))
        subprocess.run(["docker", "rmi", reference], check=True, capture_output=True, env=docker_env(config))
        return samples
    if method == "pipe, engine push":
        env = pipe_env(image, LOCAL_IMAGE=local, PUSH_METHOD="engine")
    elif method == "pipe, native from engine":
        env = pipe_env(image, LOCAL_IMAGE=local, PUSH_METHOD="native")
    else:
        env = pipe_env(image, IMAGE_ARCHIVE=str(archive), DOCKER_HOST="unix:///nonexistent")
    command = [sys.executable, "-m", "pipe"]
    return measure(command, env, REPO_ROOT), measure(command, env, REPO_ROOT)


def table(results: dict[str, list[tuple[Sample, Sample]]]) -> str:
    def median(method: str, which: int, field: str) -> float:
        return statistics.median(getattr(pair[which], field) for pair in results[method])

    rows = [
        "| method | fresh push | × vs docker | CPU | CPU vs docker | re-push | × vs docker | peak memory |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_fresh, base_again = median("docker push", 0, "wall"), median("docker push", 1, "wall")
    base_cpu = median("docker push", 0, "cpu")
    for method in results:
        fresh, again, cpu = median(method, 0, "wall"), median(method, 1, "wall"), median(method, 0, "cpu")
        rows.append(
            f"| {method} | {fresh:.2f} s | {base_fresh / fresh:.1f}x | {cpu:.1f} s | {cpu / base_cpu:.0%} | "
            f"{again:.2f} s | {base_again / again:.1f}x | {median(method, 0, 'peak_mb'):.0f} MB |"
        )
    return "\n".join(rows)


def small_image_memory(root: Path, config: Path, text_mb: int, random_mb: int) -> float:
    """The pipe's peak memory pushing an IMAGE_ARCHIVE a tenth of the size: memory is flat if
    this is about the same as for the full-size image."""
    local = build_image(root / "context-small", max(1, text_mb // 10), max(1, random_mb // 10))
    archive = root / "small.tar"
    subprocess.run(["docker", "save", "-o", str(archive), local], check=True)
    sample, _ = run_once("pipe, IMAGE_ARCHIVE", local, archive, config)
    subprocess.run(["docker", "rmi", "-f", local], check=False, capture_output=True)
    return sample.peak_mb


def image_arguments(description: str) -> argparse.Namespace:
    """Runs and the image's make-up, the same for every image benchmark."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--text-mb", type=int, default=50)
    parser.add_argument("--random-mb", type=int, default=75)
    return parser.parse_args()


def logged_in_config(root: Path) -> Path:
    """A docker client config of its own, logged in to the sandbox registry (never ~/.docker)."""
    config = root / "docker-config"
    config.mkdir()
    subprocess.run(
        ["docker", "login", REGISTRY, "-u", USER, "--password-stdin"],
        input=TOKEN.encode(), check=True, capture_output=True, env=docker_env(config),
    )  # fmt: skip
    return config


def main() -> None:
    args = image_arguments(__doc__.split("\n")[0])
    with tempfile.TemporaryDirectory(prefix="bench-oci-") as scratch:
        root = Path(scratch)
        config = logged_in_config(root)
        methods = ["docker push", "pipe, engine push", "pipe, native from engine", "pipe, IMAGE_ARCHIVE"]
        results: dict[str, list[tuple[Sample, Sample]]] = {method: [] for method in methods}
        exports: list[float] = []
        for run in range(args.runs):
            for method in methods:
                # A new image (new random and text bytes) for every push: the engine remembers
                # where it pushed a layer and would mount it instead of pushing it again.
                local = build_image(root / f"context-{run}-{len(results[method])}", args.text_mb, args.random_mb)
                archive = root / "image.tar"
                subprocess.run(["docker", "save", "-o", str(archive), local], check=True)
                size_mb = archive.stat().st_size / 1e6
                if method == "docker push":
                    save = f"docker save {local} > /dev/null"  # `-o /dev/null` is refused
                    exports.append(measure(["sh", "-c", save], docker_env(config)).wall)
                results[method].append(run_once(method, local, archive, config))
                print(f"run {run + 1} {method}: {results[method][-1][0].wall:.2f} s", file=sys.stderr)
                subprocess.run(["docker", "rmi", "-f", local], check=False, capture_output=True)
                shutil.rmtree(root / f"context-{run}-{len(results[method]) - 1}", ignore_errors=True)
        small_peak = small_image_memory(root, config, args.text_mb, args.random_mb)
    print(f"Image: 6 layers (3 text x {args.text_mb} MB, 2 random x {args.random_mb} MB, 1 tiny), {size_mb:.0f} MB; ")
    print(f"registry {REGISTRY} (local, plain http); {os.cpu_count()} CPUs; median of {args.runs} alternating runs.\n")
    print(table(results))
    print(f"\nThe engine's export of the image alone (`docker save > /dev/null`): {statistics.median(exports):.2f} s.")
    print(f"The pipe's peak memory for an IMAGE_ARCHIVE a tenth of the size: {small_peak:.0f} MB.")


if __name__ == "__main__":
    main()

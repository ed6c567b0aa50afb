"""Benchmark: publish the same packages with the pipe and with `npm publish` to the local Verdaccio.

    .venv/bin/python -m bench.npm_publish [--sizes 1,100]

For each size (MB) two packages are generated in a temporary directory (half random bytes, half
repetitive text, so gzip has work on both kinds of content) under fresh names, then published
once by each tool. Every run is measured in a fresh wrapper process: wall time, and peak RSS of
the largest process it started (`getrusage(RUSAGE_CHILDREN)`). npm gets its credentials from a
throw-away userconfig outside the package folders. Needs `sandbox/up` to have run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from tests.sandbox_env import load_sandbox_env

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024

# Runs one command in this (fresh) process's child and prints its wall time and peak RSS.
MEASURE = """
import json, resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.run(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
wall = time.monotonic() - started
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": code, "wall": wall, "peak_mb": peak_kb / 1024}))
"""


def make_package(folder: Path, name: str, size: int) -> Path:
    """A package of about `size` bytes: half incompressible, half compressible."""
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "main": "index.js"}))
    (folder / "index.js").write_text("module.exports = 1;\n")
    half = size // 2
    with (folder / "random.bin").open("wb") as out:
        for _ in range(half // MB):
            out.write(os.urandom(MB))
        out.write(os.urandom(half % MB))
    line = b"The quick brown fox jumps over the lazy dog; packages are immutable once published.\n"
    with (folder / "text.txt").open("wb") as out:
        out.write(line * ((size - half) // len(line)))
    return folder


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(cwd), *command], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    if result["code"] != 0:
        raise SystemExit(f"{command[0]} failed in {cwd}:\n{done.stderr[-2000:]}")
    return result


def pipe_run(folder: Path, values: dict[str, str]) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "PACKAGE_TYPE": "npm",
        "REGISTRY_URL": values["SANDBOX_NPM_REGISTRY"],
        "BITBUCKET_PACKAGES_USERNAME": values["SANDBOX_WRITER_USER"],
        "BITBUCKET_PACKAGES_TOKEN": values["SANDBOX_WRITER_TOKEN"],
        "BITBUCKET_WORKSPACE": "bench",
    }
    return measure([sys.executable, "-m", "pipe"], folder, env)


def npm_run(folder: Path, values: dict[str, str], scratch: Path) -> dict:
    import base64

    registry = values["SANDBOX_NPM_REGISTRY"]
    auth = base64.b64encode(f"{values['SANDBOX_WRITER_USER']}:{values['SANDBOX_WRITER_TOKEN']}".encode()).decode()
    userconfig = scratch / "npmrc"
    userconfig.write_text(
        f"registry={registry}\n{registry.removeprefix('http:')}:_auth={auth}\naudit=false\nfund=false\n"
        "update-notifier=false\n"
    )
    userconfig.chmod(0o600)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(scratch)}
    command = ["npm", "publish", "--userconfig", str(userconfig), "--cache", str(scratch / "cache"), "--tag", "latest"]
    return measure(command, folder, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100", help="package sizes in MB, comma-separated")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    values = load_sandbox_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bbpp-bench-npm-") as tmp:
        root = Path(tmp)
        for size in sizes:
            run_id = uuid.uuid4().hex[:8]
            pipe_pkg = make_package(root / f"pipe-{size}", f"bbpp-bench-pipe-{size}mb-{run_id}", size * MB)
            npm_pkg = make_package(root / f"npm-{size}", f"bbpp-bench-npm-{size}mb-{run_id}", size * MB)
            scratch = root / f"npm-home-{size}"
            scratch.mkdir()
            pipe = pipe_run(pipe_pkg, values)
            npm = npm_run(npm_pkg, values, scratch)
            rows.append((size, pipe, npm))

    headers = ("package", "pipe wall", "npm wall", "speed-up", "pipe peak", "npm peak", "memory")
    print(" | ".join(f"{h:>{w}}" for h, w in zip(headers, (8, 9, 9, 8, 10, 10, 7), strict=True)))
    print("-" * 82)
    for size, pipe, npm in rows:
        print(
            f"{size:>5} MB | {pipe['wall']:>7.2f} s | {npm['wall']:>7.2f} s | {npm['wall'] / pipe['wall']:>7.1f}x | "
            f"{pipe['peak_mb']:>7.0f} MB | {npm['peak_mb']:>7.0f} MB | {pipe['peak_mb'] / npm['peak_mb']:>6.0%}"
        )


if __name__ == "__main__":
    main()

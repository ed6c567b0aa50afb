"""Benchmark: a reactor of a parent and 20 jar modules, staged by Maven into a folder
(`mvn deploy -DaltDeploymentRepository=stage::file:…`, not timed) and deployed from there by the
pipe (MAVEN_STAGING_DIR), beside Maven's own deploy plugin deploying the same reactor to the
local nginx Maven repository.

    .venv/bin/python -m bench.maven_staging [--runs 3] [--modules 20] [--kb 64]

Each run uses fresh groupIds, so both tools upload every file. Both are measured as whole
processes, start-up included: `python -m pipe` and `mvn jar:jar deploy:deploy` (offline, Debian's
/usr/share/maven-repo as its central repository). The median wall time is printed side by side.
Needs `sandbox/up` to have run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.maven_deploy import maven_settings, pipe_command_env, reactor_deploy_command, timed, write_chain_reactor
from tests.sandbox_env import load_sandbox_env

STAGING = "target/staging-deploy"


def reactor(root: Path, name: str, modules: int, size_kb: int) -> Path:
    """A chain reactor (`write_chain_reactor`) in a fresh group."""
    project = root / name
    write_chain_reactor(project, f"org.bbpp.bench.{uuid.uuid4().hex[:12]}", modules, size_kb)
    return project


def staged(root: Path, index: int, settings: Path, modules: int, size_kb: int) -> Path:
    """A reactor staged by Maven into its target/staging-deploy (the build's step, not measured)."""
    project = reactor(root, f"staged-{index}", modules, size_kb)
    command = reactor_deploy_command(project, settings, root / "m2", f"file:{project / STAGING}")
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"staging with mvn failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return project


def run(runs: int, modules: int, size_kb: int) -> tuple[list[float], list[float]]:
    values = load_sandbox_env()
    url, user, token = values["SANDBOX_MAVEN_REGISTRY"], values["SANDBOX_WRITER_USER"], values["SANDBOX_WRITER_TOKEN"]
    pipe_times, mvn_times = [], []
    with tempfile.TemporaryDirectory(prefix="bench-maven-staging-") as temp:
        root = Path(temp)
        settings = maven_settings(root, user, token)
        for index in range(runs):
            project = staged(root, index, settings, modules, size_kb)
            env = {**pipe_command_env(project, url, user, token), "MAVEN_STAGING_DIR": STAGING}
            pipe_times.append(timed([sys.executable, "-m", "pipe"], project, env))
            direct = reactor(root, f"direct-{index}", modules, size_kb)
            mvn_times.append(timed(reactor_deploy_command(direct, settings, root / "m2", url), root, dict(os.environ)))
    return pipe_times, mvn_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modules", type=int, default=20, help="jar modules of the reactor (plus its parent)")
    parser.add_argument("--kb", type=int, default=64, help="random payload per jar, KiB")
    args = parser.parse_args()
    pipe, mvn = (statistics.median(t) for t in run(args.runs, args.modules, args.kb))
    print(f"Maven staged reactor: parent + {args.modules} jar modules ({args.kb} KiB each), {args.runs} runs, median")
    print(f"{'tool':<40}{'wall time':>12}")
    print(f"{'pipe (MAVEN_STAGING_DIR)':<40}{pipe:>11.2f}s")
    print(f"{'mvn jar:jar deploy:deploy (reactor)':<40}{mvn:>11.2f}s")
    print(f"pipe is {mvn / pipe:.1f}x faster ({2 * args.modules + 1} files, each with checksums, plus metadata)")


if __name__ == "__main__":
    main()

"""A pnpm workspace (pnpm-workspace.yaml; `app` depends on its sibling `lib` as `workspace:^`)
published through the fault proxy to the real Verdaccio, a new version of both per run: every run
either succeeds with both packages complete or fails with one clear ✖ line; no broken state (every
listed version's tarball matches its integrity, dist-tags name listed versions, and no `app` is
listed without the `lib` its dependency names: dependencies go first); a re-run without faults
publishes what is missing and skips what is already there. The real client installs the result."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.conftest import run_in_process
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import (
    RATES,
    assert_every_run_classified,
    npm_broken_state,
    npm_env,
    publish_through,
    tally,
)

PNPM_RUNS = 48


def workspace(folder: Path, lib: str, app: str, version: str) -> None:
    files = {
        "pnpm-workspace.yaml": "packages:\n  - packages/*\n",
        "package.json": json.dumps({"name": "monorepo", "private": True}),
        "packages/lib/package.json": json.dumps({"name": lib, "version": version, "main": "index.js"}),
        "packages/lib/index.js": f"module.exports = {json.dumps(version)};\n",
        "packages/app/package.json": json.dumps(
            {"name": app, "version": version, "main": "index.js", "dependencies": {lib: "workspace:^"}}
        ),
        "packages/app/index.js": f"module.exports = require({json.dumps(lib)});\n",
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def listed_versions(sandbox, name: str) -> dict[str, dict]:
    answer = requests.get(sandbox.npm_registry + name, auth=sandbox.reader, timeout=30)
    return {} if answer.status_code == 404 else answer.json().get("versions", {})


def dependency_problems(sandbox, lib: str, app: str) -> list[str]:
    """Every listed `app` names `lib` at `^<its own version>` (workspace:^ resolved), and that
    `lib` is listed."""
    libs = listed_versions(sandbox, lib)
    problems = []
    for version, manifest in listed_versions(sandbox, app).items():
        if manifest.get("dependencies") != {lib: f"^{version}"}:
            problems.append(f"{app}@{version} depends on {manifest.get('dependencies')}")
        if version not in libs:
            problems.append(f"{app}@{version} is listed, {lib}@{version} is not")
    return problems


def test_pnpm_workspace_publishes_through_faults(sandbox, unique, tmp_path: Path):
    lib, app = unique("pnpmws-lib"), unique("pnpmws-app")
    outcomes, broken, failed, verified = [], [], [], {lib: set(), app: set()}
    with FaultProxy(sandbox.npm_registry) as proxy:
        for run in range(PNPM_RUNS):
            folder = tmp_path / f"1.0.{run}"
            workspace(folder, lib, app, f"1.0.{run}")
            outcome = publish_through(proxy, RATES[run % len(RATES)], run, npm_env(sandbox, proxy.url), folder, sandbox)
            outcomes.append(outcome)
            broken += npm_broken_state(sandbox, lib, verified[lib]) + npm_broken_state(sandbox, app, verified[app])
            broken += dependency_problems(sandbox, lib, app)
            if not outcome.succeeded:
                failed.append(folder)
        assert_every_run_classified(outcomes)
        for folder in failed:
            rerun = run_in_process(npm_env(sandbox, proxy.url), folder)
            assert rerun.code == 0, rerun.output
    broken += npm_broken_state(sandbox, lib) + npm_broken_state(sandbox, app) + dependency_problems(sandbox, lib, app)
    tally("pnpm-ws", outcomes, broken, len(failed))
    assert broken == []

    every = {f"1.0.{run}" for run in range(PNPM_RUNS)}
    assert set(listed_versions(sandbox, lib)) == every and set(listed_versions(sandbox, app)) == every
    # The real client installs the newest app and a failed-then-re-run one, each with its lib.
    for version in {f"1.0.{PNPM_RUNS - 1}", *(folder.name for folder in failed[:1])}:
        consumer = tmp_path / f"consumer-{version}"
        installed = sandbox.run("npm-install", str(consumer), f"{app}@{version}")
        assert installed.returncode == 0, installed.stderr
        installed_lib = json.loads((consumer / "node_modules" / lib / "package.json").read_text())
        assert installed_lib["version"].startswith("1.0.")
        assert int(installed_lib["version"].rsplit(".", 1)[1]) >= int(version.rsplit(".", 1)[1])

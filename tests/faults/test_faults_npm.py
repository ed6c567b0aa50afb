"""npm publishes through the fault proxy to the real Verdaccio: every run either succeeds with the
package complete (checked at the registry itself and with the real client) or fails with one clear
✖ line, never leaves a half-published state, and a re-run without faults completes the release."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_in_process
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import (
    RATES,
    assert_every_run_classified,
    npm_broken_state,
    npm_env,
    npm_package,
    publish_through,
    tally,
)

NPM_RUNS = 140


def test_npm_publishes_through_faults(sandbox, unique, tmp_path: Path):
    name = unique("bbpp-faults")
    outcomes, broken, failed_versions, verified = [], [], [], set()
    with FaultProxy(sandbox.npm_registry) as proxy:
        for run in range(NPM_RUNS):
            version = f"1.0.{run}"
            folder = tmp_path / version
            npm_package(folder, name, version)
            env = npm_env(sandbox, proxy.url)
            outcome = publish_through(proxy, RATES[run % len(RATES)], run, env, folder, sandbox)
            outcomes.append(outcome)
            broken += npm_broken_state(sandbox, name, verified)
            if not outcome.succeeded:
                failed_versions.append(version)
        assert_every_run_classified(outcomes)

        # Faults stop: the re-run of every failed release completes it.
        for version in failed_versions:
            rerun = run_in_process(npm_env(sandbox, proxy.url), tmp_path / version)
            assert rerun.code == 0, rerun.output
    broken += npm_broken_state(sandbox, name)
    tally("npm", outcomes, broken, len(failed_versions))
    assert broken == []

    # The real client sees every version, and installs the newest and a failed-then-re-run one.
    view = sandbox.run("npm-view", name, "versions", "--json")
    assert view.returncode == 0, view.stderr
    assert set(json.loads(view.stdout)) == {f"1.0.{run}" for run in range(NPM_RUNS)}
    for version in {f"1.0.{NPM_RUNS - 1}", *(failed_versions[:1])}:
        consumer = tmp_path / f"consumer-{version}"
        installed = sandbox.run("npm-install", str(consumer), f"{name}@{version}")
        assert installed.returncode == 0, installed.stderr
        index = consumer / "node_modules" / name / "index.js"
        assert index.read_text() == f"module.exports = {json.dumps(version)};\n"

"""Maven deploys through the fault proxy to the real nginx WebDAV repository: every run either
succeeds with the version complete (POM, jars and checksum files, resolved by real Maven with the
checksum policy `fail`) or fails with one clear ✖ line, never leaves metadata naming a missing
file, and a re-run without faults completes the release."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_in_process
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import (
    MANY_REQUEST_RATES,
    MAVEN_GROUP,
    assert_every_run_classified,
    maven_broken_state,
    maven_env,
    maven_project,
    publish_through,
    tally,
)

MAVEN_RUNS = 100


def test_maven_deploys_through_faults(sandbox, unique, tmp_path: Path):
    artifact = unique("faults")
    outcomes, broken, failed_versions, verified = [], [], [], set()
    with FaultProxy(sandbox.maven_registry) as proxy:
        for run in range(MAVEN_RUNS):
            version = f"1.0.{run}"
            folder = tmp_path / version
            maven_project(folder, artifact, version)
            outcome = publish_through(
                proxy,
                MANY_REQUEST_RATES[run % len(MANY_REQUEST_RATES)],
                run,
                maven_env(sandbox, proxy.url, folder),
                folder,
                sandbox,
            )
            outcomes.append(outcome)
            broken += maven_broken_state(sandbox, artifact, verified)
            if not outcome.succeeded:
                failed_versions.append(version)
        assert_every_run_classified(outcomes)
        reruns = 0
        for version in failed_versions:
            rerun = run_in_process(maven_env(sandbox, proxy.url, tmp_path / version), tmp_path / version)
            assert rerun.code == 0, rerun.output
            reruns += 1
    broken += maven_broken_state(sandbox, artifact)
    tally("maven", outcomes, broken, reruns)
    assert broken == []

    # Real Maven (checksum policy fail) resolves the newest version and a failed-then-re-run one.
    for version in {f"1.0.{MAVEN_RUNS - 1}", *(failed_versions[:1])}:
        got = sandbox.run(
            "mvn-get", f"{MAVEN_GROUP}:{artifact}:{version}", str(tmp_path / "got"),
            extra_env={"MVN_GET_CHECKSUM_POLICY": "fail"},
        )  # fmt: skip
        assert got.returncode == 0, got.stdout + got.stderr

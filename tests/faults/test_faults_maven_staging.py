"""MAVEN_STAGING_DIR deploys (a folder staged by the build, deployed as staged) of two artifacts
through random faults of the fault proxy to the real nginx WebDAV repository: every run either
succeeds with each staged version complete (POM and jars with checksum files that match, resolved
by real Maven with the checksum policy `fail`) or fails with one clear ✖ line; metadata never
names a version whose files are missing; a re-run without faults finishes the release, uploading
only what is not there yet. (Cut at every request: test_faults_maven_staging_cuts.py.)

A run that breaks off between a metadata file and its checksum files leaves them disagreeing until
the next run rewrites them (Maven's own deploy has the same window, as the Maven cleanup faults
note): such runs are counted as `metadata_checksum_windows`, and the state after the re-runs must
have none."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_in_process
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import (
    MANY_REQUEST_RATES,
    MAVEN_GROUP,
    assert_every_run_classified,
    maven_broken_state,
    publish_through,
    stage_maven,
    staged_env,
    staged_problems,
    tally,
)
from tests.faults.tally import record

STAGED_RUNS = 20


def test_staged_deploys_of_two_artifacts_through_random_faults(sandbox, unique, tmp_path: Path):
    artifacts = [unique("stg-lib"), unique("stg-app")]
    outcomes, problems, failed, windows = [], [], [], []
    verified: dict[str, set[str]] = {artifact: set() for artifact in artifacts}
    with FaultProxy(sandbox.maven_registry) as proxy:
        for run in range(STAGED_RUNS):
            folder = tmp_path / f"1.0.{run}"
            stage_maven(folder, artifacts, f"1.0.{run}")
            rate = MANY_REQUEST_RATES[run % len(MANY_REQUEST_RATES)]
            outcome = publish_through(proxy, rate, run, staged_env(sandbox, proxy.url, folder), folder, sandbox)
            outcomes.append(outcome)
            problems += staged_problems(sandbox, artifacts, windows, verified)
            if not outcome.succeeded:
                failed.append(folder)
        assert_every_run_classified(outcomes)
        for folder in failed:
            rerun = run_in_process(staged_env(sandbox, proxy.url, folder), folder)
            assert rerun.code == 0, rerun.output
    problems += [problem for artifact in artifacts for problem in maven_broken_state(sandbox, artifact)]
    tally("mvn-staged", outcomes, problems, len(failed))
    record("mvn-staged", metadata_checksum_windows=len(windows))
    assert problems == []

    # Real Maven (checksum policy fail) resolves the newest version and a failed-then-re-run one.
    for version in {f"1.0.{STAGED_RUNS - 1}", *(folder.name for folder in failed[:1])}:
        for artifact in artifacts:
            got = sandbox.run(
                "mvn-get", f"{MAVEN_GROUP}:{artifact}:{version}", str(tmp_path / "got"),
                extra_env={"MVN_GET_CHECKSUM_POLICY": "fail"},
            )  # fmt: skip
            assert got.returncode == 0, got.stdout + got.stderr

"""A MAVEN_STAGING_DIR deploy cut at every single request (the repository never saw it / did it
but the answer was lost), then through random faults, a fresh artifact each time, with the driver
of the cleanup faults: each run ends ✔ or with one ✖, the repository is consistent whatever
happened (metadata never names a version whose files are missing; a metadata file whose checksum
files disagree with it is counted as a `metadata_checksum_windows`, as in the Maven cleanup
faults), and the re-run ends with the version listed and whole: a file the cut run uploaded is
found with the same checksum and skipped, never reported as a conflict."""

from __future__ import annotations

from pathlib import Path

from tests.faults.cleanup_driver import Case, drive
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import maven_broken_state, stage_maven, staged_env, staged_problems
from tests.faults.tally import record


def test_a_staged_deploy_cut_at_every_request(sandbox, unique, tmp_path: Path):
    """A fresh artifact per cut: the run ends ✔ or with one ✖, the repository is consistent
    whatever happened, and the re-run ends with the version listed and whole (and its metadata's
    checksum files matching it)."""
    windows: list[str] = []

    def new_case() -> Case:
        artifact = unique("stg-cut")
        folder = tmp_path / artifact
        stage_maven(folder, [artifact], "2.0.0")

        def unfinished() -> list[str]:
            verified: set[str] = set()
            problems = maven_broken_state(sandbox, artifact, verified)
            return problems + ([] if verified == {"2.0.0"} else [f"whole versions after the re-run: {verified}"])

        return Case(
            staged_env(sandbox, proxy.url, folder),
            folder,
            lambda: staged_problems(sandbox, [artifact], windows),
            unfinished,
        )

    with FaultProxy(sandbox.maven_registry) as proxy:
        assert drive(proxy, new_case, "mvn-staged") >= 20
    record("mvn-staged", metadata_checksum_windows=len(windows))

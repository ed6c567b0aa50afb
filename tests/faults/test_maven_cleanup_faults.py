"""Maven cleanups through the fault proxy against the real nginx WebDAV repository, cut at every
single request (the repository never saw it / did it but the answer was lost) and run through
random faults, with the driver of the image and npm cleanups.

Consistent means: every version the artifact-level metadata lists is whole (a release's POM and
jars, a SNAPSHOT's version-level metadata and every file it names, each with matching .md5/.sha1),
`<latest>`/`<release>` name listed versions, and every kept version and the newest SNAPSHOT build
are still there. The re-run must end where an uninterrupted cleanup ends: the old version's
folder and the old build's files gone, and the metadata's checksum files matching it.

A cut between a metadata file and its checksum files leaves them disagreeing until the next run
rewrites them (Maven's own deploy has the same window); those runs are counted separately as
`metadata_checksum_windows` (in faults-report.json), and the re-run must have repaired each."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import run_in_process
from tests.faults.cleanup_driver import RANDOM_RUNS, Case, drive
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import MAVEN_GROUP, checksum_problems, maven_env, maven_get, maven_project
from tests.faults.tally import record

DEPLOYS = ("1.0", "2.0", "3.0-SNAPSHOT", "3.0-SNAPSHOT")
KEPT = ["2.0", "3.0-SNAPSHOT"]
RULES = {"ACTION": "cleanup", "KEEP_RELEASES": "1"}


def populate(sandbox, artifact: str, folder: Path) -> None:
    for version in DEPLOYS:
        maven_project(folder, artifact, version)
        deployed = run_in_process(maven_env(sandbox, sandbox.maven_registry, folder), folder)
        assert deployed.code == 0, deployed.output


def parse(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 - the test registry's own file


def whole_file(sandbox, path: str) -> list[str]:
    file = maven_get(sandbox, path)
    if file.status_code != 200:
        return [f"{path} is missing"]
    return checksum_problems(sandbox, path, file.content)


def snapshot_problems(sandbox, base: str, artifact: str, version: str) -> list[str]:
    """A listed SNAPSHOT: its version-level metadata and every file that names, with checksums
    (this cleanup never rewrites the version-level metadata: no entry names an old build)."""
    path = f"{base}/{version}/maven-metadata.xml"
    metadata = maven_get(sandbox, path)
    if metadata.status_code != 200:
        return [f"listed {version} has no version-level metadata"]
    problems = checksum_problems(sandbox, path, metadata.content)
    for entry in parse(metadata.content).iter("snapshotVersion"):
        value, extension = entry.findtext("value"), entry.findtext("extension")
        classifier = f"-{entry.findtext('classifier')}" if entry.findtext("classifier") else ""
        problems += whole_file(sandbox, f"{base}/{version}/{artifact}-{value}{classifier}.{extension}")
    return problems


def inconsistencies(sandbox, artifact: str) -> tuple[list[str], list[str]]:
    """(broken states, metadata files whose checksum files disagree with them)."""
    base = f"{MAVEN_GROUP.replace('.', '/')}/{artifact}"
    metadata = maven_get(sandbox, f"{base}/maven-metadata.xml")
    if metadata.status_code != 200:
        return ["the artifact's metadata is gone"], []
    windows = checksum_problems(sandbox, f"{base}/maven-metadata.xml", metadata.content)
    root = parse(metadata.content)
    versions = [v.text for v in root.iter("version")]
    problems = [f"kept {v} is no longer listed" for v in KEPT if v not in versions]
    problems += [
        f"<{name}> names {root.findtext(f'versioning/{name}')}, which is not listed"
        for name in ("latest", "release")
        if root.findtext(f"versioning/{name}") not in versions
    ]
    for version in versions:
        if version.endswith("-SNAPSHOT"):
            problems += snapshot_problems(sandbox, base, artifact, version)
            continue
        for name in (f"{artifact}-{version}.pom", f"{artifact}-{version}.jar", f"{artifact}-{version}-sources.jar"):
            problems += whole_file(sandbox, f"{base}/{version}/{name}")
    return problems, windows


def builds_left(sandbox, base: str, artifact: str) -> list[str]:
    page = maven_get(sandbox, f"{base}/3.0-SNAPSHOT/").text
    stem = f'href="{artifact}-3.0-'
    return sorted({chunk.split(".pom")[0] for chunk in page.split(stem)[1:] if chunk.split('"')[0].endswith(".pom")})


def test_maven_cleanups_cut_at_every_request_and_through_random_faults(sandbox, unique, tmp_path: Path):
    windows = []

    def new_case() -> Case:
        artifact = unique("cut-mvn")
        folder = tmp_path / artifact
        populate(sandbox, artifact, folder)
        base = f"{MAVEN_GROUP.replace('.', '/')}/{artifact}"
        newest_build = builds_left(sandbox, base, artifact)[-1]
        env = maven_env(sandbox, proxy.url, folder) | RULES

        def broken() -> list[str]:
            problems, checksum_windows = inconsistencies(sandbox, artifact)
            windows.extend(checksum_windows[:1])  # one per run
            return [p for p in problems if p not in checksum_windows]

        def unfinished() -> list[str]:
            problems, checksum_windows = inconsistencies(sandbox, artifact)
            metadata = parse(maven_get(sandbox, f"{base}/maven-metadata.xml").content)
            state = (
                [v.text for v in metadata.iter("version")],
                maven_get(sandbox, f"{base}/1.0/").status_code,
                builds_left(sandbox, base, artifact),
            )
            ended = [] if state == (KEPT, 404, [newest_build]) else [f"ended at {state}"]
            return problems + checksum_windows + ended

        return Case(env, folder, broken, unfinished)

    with FaultProxy(sandbox.maven_registry) as proxy:
        runs = drive(proxy, new_case, "mvn-clean")
    record("mvn-clean", metadata_checksum_windows=len(windows))
    assert runs >= 30 + RANDOM_RUNS

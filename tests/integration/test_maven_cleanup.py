"""ACTION=cleanup for PACKAGE_TYPE=maven against the real nginx WebDAV repository of sandbox/:
versions are deployed with the pipe first, cleaned up, and real Maven (`sandbox/mvn-get`,
checksum policy `fail`) resolves every kept version and fails for every deleted one."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests

from pipe.maven.layout import checksums_of_bytes
from tests.integration.test_maven import GROUP_PREFIX, build, mvn_get, outputs, remote, run_pipe, write_pom

CHECKSUMS = ("md5", "sha1", "sha256", "sha512")


def deploy(sandbox, workdir: Path, group: str, artifact: str, *versions: str, classifiers=("sources",)) -> None:
    for version in versions:
        for old in (workdir / "target").glob("*") if (workdir / "target").is_dir() else ():
            old.unlink()
        write_pom(workdir, group, artifact, version)
        build(workdir, artifact, version, classifiers, text=version)
        run = run_pipe(sandbox, workdir)
        assert run.code == 0, run.output


def cleanup(sandbox, workdir: Path, group: str, artifact: str, **rules: str):
    """The cleanup run, with MAVEN_POM naming the coordinates (the POM's version does not matter)."""
    write_pom(workdir, group, artifact, "0.0.1")
    return run_pipe(sandbox, workdir, ACTION="cleanup", **rules)


def base(group: str, artifact: str) -> str:
    return f"{group.replace('.', '/')}/{artifact}"


def metadata(sandbox, group: str, artifact: str, version: str | None = None) -> ET.Element:
    path = f"{base(group, artifact)}/{version + '/' if version else ''}maven-metadata.xml"
    answer = remote(sandbox, path)
    assert answer.status_code == 200, path
    for algorithm in CHECKSUMS:
        published = remote(sandbox, f"{path}.{algorithm}")
        assert published.text.split()[:1] == [checksums_of_bytes(answer.content).get(algorithm)], algorithm
    return ET.fromstring(answer.content)  # noqa: S314 - the test registry's own file


def listed(root: ET.Element) -> list[str]:
    return [v.text for v in root.find("versioning/versions")]


def assert_only_whole_versions(sandbox, group: str, artifact: str) -> list[str]:
    """The metadata (checksums matching) lists only versions whose POM is there, and its
    <latest>/<release> name listed versions."""
    root = metadata(sandbox, group, artifact)
    versions = listed(root)
    for version in versions:
        if version.endswith("-SNAPSHOT"):
            metadata(sandbox, group, artifact, version)
        else:
            assert remote(sandbox, f"{base(group, artifact)}/{version}/{artifact}-{version}.pom").status_code == 200
    for element in ("latest", "release"):
        assert root.findtext(f"versioning/{element}") in versions, element
    return versions


def folder_gone(sandbox, group: str, artifact: str, version: str) -> bool:
    return remote(sandbox, f"{base(group, artifact)}/{version}/").status_code == 404


def resolves(sandbox, coordinates: str, tmp_path: Path) -> bool:
    got = mvn_get(sandbox, coordinates, tmp_path / coordinates.replace(":", "_"))
    assert got.returncode == 0 or "Could not" in got.stderr or "could not" in got.stderr, got.stderr[-2000:]
    return got.returncode == 0


def test_keep_releases_keeps_the_newest_in_maven_order_and_maven_resolves_exactly_those(
    sandbox, workdir, tmp_path, unique
):
    group, artifact = f"{GROUP_PREFIX}.{unique('keep')}", unique("lib")
    # Deployed out of order: 1.10 is newer than 1.9 in Maven's order (not in string order).
    deploy(sandbox, workdir, group, artifact, "1.9", "1.10", "1.2", "2.0-rc1", "1.10.1")

    run = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="2")

    assert run.code == 0, run.output
    assert "delete 1.9  " in run.output and "older than the 2 newest releases" in run.output
    assert "keep   2.0-rc1" in run.output  # a prerelease is no release: KEEP_RELEASES leaves it
    assert run.last_line.startswith(f"✔ Deleted 2 in Maven artifact {group}:{artifact}: 1.2 1.9;")
    assert outputs(workdir)["DELETED_COUNT"] == "2"
    assert outputs(workdir)["DELETED_VERSIONS"] == "1.2 1.9"
    assert sorted(assert_only_whole_versions(sandbox, group, artifact)) == ["1.10", "1.10.1", "2.0-rc1"]
    assert folder_gone(sandbox, group, artifact, "1.2") and folder_gone(sandbox, group, artifact, "1.9")
    assert resolves(sandbox, f"{group}:{artifact}:1.10", tmp_path)
    assert resolves(sandbox, f"{group}:{artifact}:1.10.1:jar:sources", tmp_path)
    assert not resolves(sandbox, f"{group}:{artifact}:1.9", tmp_path)

    again = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="2")
    assert again.code == 0, again.output
    assert again.last_line == f"✔ Nothing to delete in Maven artifact {group}:{artifact}; 3 kept."


def test_delete_matching_removes_whole_snapshot_versions_and_prereleases(sandbox, workdir, tmp_path, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('match')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0-SNAPSHOT", "1.0-SNAPSHOT", "1.0", "1.1-rc1", "1.1")

    run = cleanup(sandbox, workdir, group, artifact, DELETE_MATCHING="*-SNAPSHOT *-rc*")

    assert run.code == 0, run.output
    assert "delete 1.0-SNAPSHOT  matches *-SNAPSHOT" in run.output
    assert "keep   1.0           kept: matches no rule" in run.output
    assert outputs(workdir)["DELETED_VERSIONS"] == "1.0-SNAPSHOT 1.1-rc1"
    assert sorted(assert_only_whole_versions(sandbox, group, artifact)) == ["1.0", "1.1"]
    assert folder_gone(sandbox, group, artifact, "1.0-SNAPSHOT")
    assert not resolves(sandbox, f"{group}:{artifact}:1.0-SNAPSHOT", tmp_path)
    assert resolves(sandbox, f"{group}:{artifact}:1.0", tmp_path)


def test_newest_release_and_what_release_and_latest_name_are_never_deleted(sandbox, workdir, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('prot')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0", "1.5", "2.0", "2.1-SNAPSHOT")
    # As `mvn deploy` of a hotfix leaves it: <release> names the last release deployed (1.5).
    path = f"{base(group, artifact)}/maven-metadata.xml"
    text = remote(sandbox, path).text.replace("<release>2.0</release>", "<release>1.5</release>")
    write(sandbox, path, text.encode())

    run = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="1", DELETE_MATCHING="*-SNAPSHOT")

    assert run.code == 0, run.output
    assert "keep   2.0           protected: newest release" in run.output
    assert "keep   1.5           protected: <release> in maven-metadata.xml" in run.output
    assert "keep   2.1-SNAPSHOT  protected: <latest> in maven-metadata.xml" in run.output
    assert outputs(workdir)["DELETED_VERSIONS"] == "1.0"
    root = metadata(sandbox, group, artifact)
    assert listed(root) == ["1.5", "2.0", "2.1-SNAPSHOT"]
    assert (root.findtext("versioning/release"), root.findtext("versioning/latest")) == ("1.5", "2.1-SNAPSHOT")


def write(sandbox, path: str, content: bytes) -> None:
    """A file and its checksums, straight to the repository (as another tool would write them)."""
    url = sandbox.maven_registry + path
    assert requests.put(url, data=content, auth=sandbox.writer, timeout=30).status_code in (200, 201, 204)
    for algorithm in CHECKSUMS:
        digest = checksums_of_bytes(content).get(algorithm).encode()
        assert requests.put(f"{url}.{algorithm}", data=digest, auth=sandbox.writer, timeout=30).ok


def build_names(sandbox, group: str, artifact: str, version: str) -> list[str]:
    page = remote(sandbox, f"{base(group, artifact)}/{version}/").text
    stem = f'href="{artifact}-{version.removesuffix("-SNAPSHOT")}-'
    return sorted({chunk.split(".pom")[0] for chunk in page.split(stem)[1:] if ".pom" in chunk.split('"')[0]})


def test_snapshot_builds_are_pruned_to_the_newest_keep_releases(sandbox, workdir, tmp_path, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('snap')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0", *["3.0-SNAPSHOT"] * 4)
    builds = build_names(sandbox, group, artifact, "3.0-SNAPSHOT")
    assert [b.rsplit("-", 1)[1] for b in builds] == ["1", "2", "3", "4"]
    oldest = [f"3.0-{b}" for b in builds[:2]]

    run = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="2")

    assert run.code == 0, run.output
    assert "Cleanup plan for SNAPSHOT builds of 3.0-SNAPSHOT: 2 to delete, 2 to keep" in run.output
    assert f"delete {oldest[0]}  older than the 2 newest builds" in run.output
    assert outputs(workdir)["DELETED_VERSIONS"] == " ".join(oldest)
    assert build_names(sandbox, group, artifact, "3.0-SNAPSHOT") == builds[2:]
    page = remote(sandbox, f"{base(group, artifact)}/3.0-SNAPSHOT/").text
    assert all(old not in page for old in oldest)  # no file of theirs left, checksums included
    root = metadata(sandbox, group, artifact, "3.0-SNAPSHOT")
    assert root.findtext("versioning/snapshot/buildNumber") == "4"
    assert all(old not in ET.tostring(root, encoding="unicode") for old in oldest)
    assert listed(metadata(sandbox, group, artifact)) == ["1.0", "3.0-SNAPSHOT"]
    assert resolves(sandbox, f"{group}:{artifact}:3.0-SNAPSHOT:jar:sources", tmp_path)
    assert resolves(sandbox, f"{group}:{artifact}:3.0-{builds[2]}", tmp_path)
    assert not resolves(sandbox, f"{group}:{artifact}:{oldest[1]}", tmp_path)


def repository_state(sandbox, group: str, artifact: str) -> dict[str, bytes]:
    """Every file under the artifact, read through the folder listings."""
    files, folders = {}, [base(group, artifact)]
    while folders:
        folder = folders.pop()
        page = remote(sandbox, f"{folder}/").text
        for name in (chunk.split('"')[0] for chunk in page.split('href="')[1:]):
            if name == "../":
                continue
            if name.endswith("/"):
                folders.append(f"{folder}/{name[:-1]}")
            else:
                files[f"{folder}/{name}"] = remote(sandbox, f"{folder}/{name}").content
    return files


def test_dry_run_prints_the_plan_and_deletes_nothing(sandbox, workdir, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('dry')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0", "1.1", "2.0-SNAPSHOT", "2.0-SNAPSHOT")
    before = repository_state(sandbox, group, artifact)

    run = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="1", DRY_RUN="true")

    assert run.code == 0, run.output
    assert "(dry run: nothing is deleted): 1 to delete, 2 to keep" in run.output
    assert "delete 1.0" in run.output
    assert run.last_line.startswith(f"✔ Dry run: would delete 2 in Maven artifact {group}:{artifact} (1.0 2.0-")
    assert outputs(workdir)["DELETED_COUNT"] == "0"
    assert repository_state(sandbox, group, artifact) == before


def test_older_than_days_goes_by_the_poms_last_modified(sandbox, workdir, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('age')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0", "1.1", "1.2")
    # Back-date 1.0's POM on the server's disk: nginx then reports that Last-Modified.
    root = Path(sandbox.state) / "nginx" / "root" / "maven" / base(group, artifact)
    old = parsedate_to_datetime("Mon, 01 Jan 2024 00:00:00 GMT").timestamp()
    os.utime(root / "1.0" / f"{artifact}-1.0.pom", (old, old))

    run = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="1", OLDER_THAN_DAYS="30")

    assert run.code == 0, run.output
    assert "keep   1.1  kept: published 0 days ago, not more than 30" in run.output
    assert outputs(workdir)["DELETED_VERSIONS"] == "1.0"
    assert listed(metadata(sandbox, group, artifact)) == ["1.1", "1.2"]


def test_a_read_only_token_is_refused_before_anything_changes(sandbox, workdir, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('ro')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0", "1.1")
    before = repository_state(sandbox, group, artifact)

    write_pom(workdir, group, artifact, "0.0.1")
    run = run_pipe(
        sandbox,
        workdir,
        ACTION="cleanup",
        KEEP_RELEASES="1",
        BITBUCKET_PACKAGES_USERNAME=sandbox.reader_user,
        BITBUCKET_PACKAGES_TOKEN=sandbox.reader_token,
    )

    assert run.code == 1, run.output
    assert run.last_line.startswith("✖ checking that deletes are allowed in ")
    assert "answered 403" in run.last_line and "deleting needs Write permission" in run.last_line
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line]
    assert repository_state(sandbox, group, artifact) == before


def test_a_wrong_token_is_refused_as_when_publishing(sandbox, workdir, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('tok')}", unique("lib")
    deploy(sandbox, workdir, group, artifact, "1.0", "1.1")

    write_pom(workdir, group, artifact, "0.0.1")
    run = run_pipe(sandbox, workdir, ACTION="cleanup", KEEP_RELEASES="1", BITBUCKET_PACKAGES_TOKEN="not-the-token")

    assert run.code == 1, run.output
    assert "answered 401" in run.last_line and "did not accept the credentials" in run.last_line
    assert listed(metadata(sandbox, group, artifact)) == ["1.0", "1.1"]


def test_an_artifact_that_is_not_there_has_nothing_to_clean_up(sandbox, workdir, unique):
    group, artifact = f"{GROUP_PREFIX}.{unique('none')}", unique("lib")
    run = cleanup(sandbox, workdir, group, artifact, KEEP_RELEASES="1")
    assert run.code == 0, run.output
    assert "is not in this repository: nothing to clean up (check REGISTRY_URL and MAVEN_POM)" in run.output
    assert run.last_line == f"✔ Nothing to delete in Maven artifact {group}:{artifact}; 0 kept."
    assert outputs(workdir) == {"DELETED_COUNT": "0", "DELETED_VERSIONS": ""}


def test_a_revision_pom_is_published_with_version_and_cleaned_up_without_it(sandbox, workdir, tmp_path, unique):
    """The same `${revision}` POM (no default: each build sets -Drevision) publishes with VERSION and
    cleans up without it: cleanup reads the artifact as publishing does."""
    group, artifact = f"{GROUP_PREFIX}.{unique('rev')}", unique("lib")
    write_pom(workdir, group, artifact, "${revision}")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        build(workdir, artifact, version, text=version)
        run = run_pipe(sandbox, workdir, VERSION=f"v{version}")
        assert run.code == 0, run.output

    run = run_pipe(sandbox, workdir, ACTION="cleanup", KEEP_RELEASES="1")

    assert run.code == 0, run.output
    assert run.last_line.startswith(f"✔ Deleted 2 in Maven artifact {group}:{artifact}: 1.0.0 1.1.0;")
    assert assert_only_whole_versions(sandbox, group, artifact) == ["1.2.0"]
    assert resolves(sandbox, f"{group}:{artifact}:1.2.0", tmp_path)
    assert not resolves(sandbox, f"{group}:{artifact}:1.0.0", tmp_path)

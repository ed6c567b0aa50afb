"""PACKAGE_TYPE=maven without a network: POM parsing, file naming, metadata merge, bad input,
and registry answers the local nginx cannot give (faked at the HTTP-session seam)."""

from __future__ import annotations

import logging
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipe.errors import InputError, RegistryError
from pipe.http import new_session
from pipe.maven.layout import checksums_of_bytes, parse_artifact_name, snapshot_timestamp, snapshot_version
from pipe.maven.metadata import (
    ArtifactMetadata,
    SnapshotFile,
    SnapshotMetadata,
    merge_snapshot,
    merge_version,
    parse_artifact_metadata,
    parse_snapshot_metadata,
    render_artifact_metadata,
    render_snapshot_metadata,
)
from pipe.maven.model import BuildContext, read_single
from pipe.maven.pom import Pom
from pipe.maven.repository import MavenRepository, Upload
from tests.conftest import assert_no_secret, base_env, run_in_process
from tests.fakehttp import FakeTransport, Sent

NS = 'xmlns="http://maven.apache.org/POM/4.0.0"'


def parse_pom(path: Path) -> Pom:
    """The coordinates a POM deploys under, read as the pipe reads MAVEN_POM (no MAVEN_PROPERTIES, no VERSION)."""
    return read_single(path, BuildContext({}), str)[0].pom


def pom_file(tmp_path: Path, body: str, name: str = "pom.xml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


# --- POM -------------------------------------------------------------------------------------


def test_coordinates_with_namespace_and_packaging(tmp_path):
    path = pom_file(
        tmp_path,
        f"<project {NS}><groupId>com.acme</groupId><artifactId>app</artifactId>"
        "<version>2.1.0</version><packaging>war</packaging></project>",
    )
    pom = parse_pom(path)
    assert (pom.group_id, pom.artifact_id, pom.version, pom.packaging) == ("com.acme", "app", "2.1.0", "war")


def test_group_and_version_are_inherited_from_the_parent(tmp_path):
    path = pom_file(
        tmp_path,
        "<project><parent><groupId>com.acme</groupId><artifactId>parent</artifactId><version>3.0.0</version>"
        "</parent><artifactId>child</artifactId></project>",
    )
    assert parse_pom(path).gav == "com.acme:child:3.0.0"
    assert parse_pom(path).packaging == "jar"


def test_ci_friendly_version_is_resolved_from_properties(tmp_path):
    path = pom_file(
        tmp_path,
        f"<project {NS}><groupId>com.acme</groupId><artifactId>app</artifactId><version>${{revision}}${{changelist}}"
        "</version><properties><revision>1.4.0</revision><changelist>-SNAPSHOT</changelist></properties></project>",
    )
    pom = parse_pom(path)
    assert pom.version == "1.4.0-SNAPSHOT"
    assert pom.is_snapshot


def test_undefined_property_is_refused_with_the_fix(tmp_path):
    path = pom_file(
        tmp_path, "<project><groupId>g</groupId><artifactId>a</artifactId><version>${revision}</version></project>"
    )
    with pytest.raises(InputError) as error:
        parse_pom(path)
    assert str(error.value) == (
        "MAVEN_POM's version '${revision}' uses ${revision}, which nothing defines: set VERSION (it sets ${revision}, "
        "e.g. VERSION: $BITBUCKET_TAG), or define it in <properties>."
    )


@pytest.mark.parametrize(
    "declaration",
    ['<!DOCTYPE project [<!ENTITY x SYSTEM "file:///etc/passwd">]>', '<!doctype project SYSTEM "http://x/p.dtd">'],
)
def test_doctype_and_entities_are_refused_unparsed(tmp_path, declaration):
    path = pom_file(tmp_path, f"{declaration}<project><groupId>g</groupId><artifactId>&x;</artifactId></project>")
    with pytest.raises(InputError) as error:
        parse_pom(path)
    assert str(error.value) == (
        "MAVEN_POM pom.xml declares a DOCTYPE or ENTITY, which the pipe refuses to parse (it could read files or "
        "exhaust memory): remove the <!DOCTYPE …>/<!ENTITY …> declarations from the POM."
    )


def test_missing_coordinates_name_what_to_add(tmp_path):
    path = pom_file(tmp_path, "<project><artifactId>a</artifactId></project>")
    with pytest.raises(InputError) as error:
        parse_pom(path)
    assert str(error.value) == (
        "MAVEN_POM pom.xml has no <groupId>, <version>: add <groupId>, <version> to the POM "
        "(or a <parent> to inherit groupId/version from)."
    )


# --- layout ----------------------------------------------------------------------------------

POM = Pom(Path("pom.xml"), "com.acme", "app", "1.0.0", "jar")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app-1.0.0.jar", ("", "jar")),
        ("app-1.0.0-sources.jar", ("sources", "jar")),
        ("app-1.0.0-tests.jar", ("tests", "jar")),
        ("app-1.0.0.jar.asc", ("", "jar.asc")),
        ("app-1.0.0-cyclonedx.json", ("cyclonedx", "json")),
        ("app-1.0.0.jar.sha1", None),
        ("app-1.0.0.jar.original", None),
        ("app-1.0.01.jar", None),
        ("app-core-1.0.0.jar", None),
        ("app-1.0.0", None),
    ],
)
def test_artifact_names_give_classifier_and_extension(name, expected):
    assert parse_artifact_name(name, POM) == expected


def test_snapshot_file_version_uses_utc_timestamp_and_build_number():
    stamp = snapshot_timestamp(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert stamp == "20240102.030405"
    assert snapshot_version("1.0-SNAPSHOT", stamp, 7) == "1.0-20240102.030405-7"


# --- metadata --------------------------------------------------------------------------------


def test_merge_adds_the_version_and_keeps_the_highest_release():
    existing = ArtifactMetadata("g", "a", ["1.0.0", "2.0.0"], latest="2.0.0", release="2.0.0")
    merged = merge_version(existing, "1.9.1", "20240102030405")
    assert merged.versions == ["1.0.0", "2.0.0", "1.9.1"]
    assert (merged.release, merged.latest, merged.last_updated) == ("2.0.0", "2.0.0", "20240102030405")
    newer = merge_version(merged, "2.1.0", "20240102030406")
    assert (newer.release, newer.latest) == ("2.1.0", "2.1.0")


def test_a_snapshot_never_becomes_release():
    merged = merge_version(ArtifactMetadata("g", "a", ["1.0.0"], "1.0.0", "1.0.0"), "1.1.0-SNAPSHOT", "1")
    assert (merged.release, merged.latest) == ("1.0.0", "1.1.0-SNAPSHOT")
    assert merged.versions == ["1.0.0", "1.1.0-SNAPSHOT"]


def test_artifact_metadata_round_trips_through_xml():
    metadata = ArtifactMetadata("g", "a", ["1.0.0", "1.1.0"], "1.1.0", "1.1.0", "20240102030405")
    data = render_artifact_metadata(metadata)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<metadata>')
    assert parse_artifact_metadata(data, "url", "g", "a") == metadata


def test_snapshot_merge_replaces_deployed_files_and_keeps_others():
    old = SnapshotMetadata(
        "g",
        "a",
        "1.0-SNAPSHOT",
        "20240101.000000",
        4,
        "20240101000000",
        [SnapshotFile("", "jar", "1.0-20240101.000000-4", "1"), SnapshotFile("javadoc", "jar", "1.0-x-3", "1")],
    )
    new = [SnapshotFile("", "jar", "1.0-20240102.030405-5", "2"), SnapshotFile("", "pom", "1.0-20240102.030405-5", "2")]
    merged = merge_snapshot(old, "20240102.030405", 5, new, "20240102030405")
    assert [(f.classifier, f.extension, f.value) for f in merged.files] == [
        ("javadoc", "jar", "1.0-x-3"),
        ("", "jar", "1.0-20240102.030405-5"),
        ("", "pom", "1.0-20240102.030405-5"),
    ]
    data = render_snapshot_metadata(merged)
    assert b"<buildNumber>5</buildNumber>" in data and b"<timestamp>20240102.030405</timestamp>" in data
    assert parse_snapshot_metadata(data, "url", "g", "a", "1.0-SNAPSHOT") == merged


def test_repository_metadata_with_a_doctype_is_refused():
    with pytest.raises(RegistryError) as error:
        parse_artifact_metadata(b'<!DOCTYPE m [<!ENTITY a "b">]><metadata/>', "http://r/x.xml", "g", "a")
    assert str(error.value) == (
        "http://r/x.xml declares a DOCTYPE or ENTITY, which the pipe refuses to parse: repair that file."
    )


# --- registry answers faked on the one HTTP seam ------------------------------------------------


class AnswerBySuffix(FakeTransport):
    """Answers by status per (method, path suffix), 201 for anything else."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, str]]):
        super().__init__()
        self.answers = answers

    def handle(self, sent: Sent) -> tuple[int, str, dict[str, str]]:
        status, body = next(
            (answer for (m, suffix), answer in self.answers.items() if m == sent.method and sent.path.endswith(suffix)),
            (201, ""),
        )
        headers = {"Location": "https://other.example/maven/x"} if status in (301, 302, 307) else {}
        return status, body, headers


def repository(fake: FakeTransport) -> MavenRepository:
    return MavenRepository("https://repo.example/maven/", new_session(transport=fake), LOG)


def upload() -> Upload:
    return Upload(path="g/a/1.0/a-1.0.jar", label="main jar", checksums=checksums_of_bytes(b"x"), content=b"x")


@pytest.mark.parametrize(
    ("status", "body"),
    [(409, "Conflict"), (400, "Repository does not allow updating assets: maven-releases")],
)
def test_repository_manager_refusals_say_what_to_do(status, body):
    maven = repository(AnswerBySuffix({("PUT", ".jar"): (status, body)}))
    with pytest.raises(RegistryError) as error:
        maven.put(upload())
    assert str(error.value) == (
        f"uploading g/a/1.0/a-1.0.jar failed: https://repo.example/maven/g/a/1.0/a-1.0.jar answered {status} ({body}): "
        "the repository refused the file; a release repository refuses SNAPSHOT versions, a snapshot repository "
        "refuses releases, and a release cannot be replaced: point REGISTRY_URL at the matching repository, or "
        "bump the version."
    )


def test_refused_sha256_files_are_dropped_for_the_rest_of_the_deploy():
    fake = AnswerBySuffix({("PUT", ".sha256"): (400, "bad extension")})
    maven = repository(fake)
    maven.put(upload())
    maven.put(Upload(path="g/a/1.0/a-1.0.pom", label="POM", checksums=checksums_of_bytes(b"p"), content=b"p"))
    puts = [path.rsplit("/", 1)[-1] for method, path in fake.calls if method == "PUT"]
    # The first file settles it (one checksum at a time); later checksums may go up in any order.
    assert puts[:4] == ["a-1.0.jar", "a-1.0.jar.md5", "a-1.0.jar.sha1", "a-1.0.jar.sha256"]
    assert puts[4] == "a-1.0.pom"
    assert sorted(puts[5:]) == ["a-1.0.pom.md5", "a-1.0.pom.sha1"]


def test_a_redirected_upload_is_not_followed_with_credentials():
    maven = repository(AnswerBySuffix({("PUT", ".jar"): (307, "")}))
    with pytest.raises(RegistryError) as error:
        maven.put(upload())
    assert str(error.value) == (
        "uploading g/a/1.0/a-1.0.jar failed: https://repo.example/maven/g/a/1.0/a-1.0.jar redirected to "
        "https://other.example/maven/x: set REGISTRY_URL to the repository's final address (the pipe does not "
        "follow redirects with credentials)."
    )


LOG = logging.getLogger("test-maven")


# --- bad input through the whole pipe (fails before any request) ------------------------------


def maven_env(**overrides: str) -> dict[str, str]:
    return base_env(PACKAGE_TYPE="maven", REGISTRY_URL="http://127.0.0.1:9/maven/", **overrides)


def jar(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "a")


GOOD_POM = "<project><groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0.0</version></project>"


def test_broken_pom_xml(workdir):
    pom_file(workdir, "<project><groupId>com.acme</groupId>")
    run = run_in_process(maven_env(), workdir)
    assert run.code == 1
    assert run.last_line == (
        "✖ MAVEN_POM pom.xml is not well-formed XML (no element found: line 1, column 36): fix the POM and re-run."
    )
    assert_no_secret(run.output)


def test_missing_pom(workdir):
    run = run_in_process(maven_env(MAVEN_POM="sub/pom.xml"), workdir)
    assert run.last_line == (
        f"✖ MAVEN_POM pom.xml was not found in {workdir}/sub: set MAVEN_POM to the POM to publish "
        "(relative to the clone directory)."
    )


def test_no_artifacts_in_target_names_what_was_found(workdir):
    pom_file(workdir, GOOD_POM)
    jar(workdir / "target" / "app-0.9.0.jar")
    run = run_in_process(maven_env(), workdir)
    assert run.code == 1
    assert run.last_line == (
        "✖ no artifacts for com.acme:app:1.0.0 found in target/ (looked for app-1.0.0.jar; it has app-0.9.0.jar, "
        "which are not named after com.acme:app:1.0.0): build them before the pipe (e.g. mvn package in the same "
        "step), check that MAVEN_POM is the POM they were built from, or list the files in MAVEN_ARTIFACTS."
    )


def test_listed_artifact_not_named_after_the_pom(workdir):
    pom_file(workdir, GOOD_POM)
    jar(workdir / "build" / "app.jar")
    run = run_in_process(maven_env(MAVEN_ARTIFACTS="build/app.jar"), workdir)
    assert run.code == 1
    assert run.last_line == (
        "✖ MAVEN_ARTIFACTS file app.jar is not named after the POM's coordinates (com.acme:app:1.0.0): name it "
        "<artifactId>-<version>[-<classifier>].<ext>, e.g. app-1.0.0.jar, or check that MAVEN_POM is the POM it "
        "was built from."
    )


def test_only_attached_artifacts_means_the_main_one_is_missing(workdir):
    pom_file(workdir, GOOD_POM)
    jar(workdir / "target" / "app-1.0.0-sources.jar")
    run = run_in_process(maven_env(), workdir)
    assert run.last_line == (
        "✖ no main artifact app-1.0.0.jar for com.acme:app:1.0.0 (packaging jar) in target/: build it first "
        "(mvn package), or list it in MAVEN_ARTIFACTS."
    )


def test_maven_needs_registry_url(workdir):
    pom_file(workdir, GOOD_POM)
    run = run_in_process(base_env(PACKAGE_TYPE="maven"), workdir)
    assert run.last_line == (
        "✖ REGISTRY_URL is required for Maven: copy the repository URL from the package's page in Bitbucket "
        "Packages and set REGISTRY_URL to it."
    )

"""Nothing outside its folder: Maven coordinates, versions and file names that could leave the
artifact's folder or change a URL's meaning are refused before any request (publish), or reported
and skipped (cleanup, for what the registry's own metadata says), on an in-memory repository that
resolves paths as a real server does."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

import pipe.maven.cleanup as maven_cleanup
import pipe.maven.deploy as deploy
from pipe.config import load_config
from pipe.errors import InputError, RegistryError
from pipe.http import new_session
from pipe.masking import SecretMasker
from pipe.maven.metadata import (
    SnapshotFile,
    SnapshotMetadata,
    parse_artifact_metadata,
    parse_snapshot_metadata,
    render_snapshot_metadata,
)
from pipe.maven.model import BuildContext, read_single
from pipe.maven.paths import UnsafePath, id_problem, name_problem, repository_path, version_problem
from pipe.maven.pom import module_paths, read_root
from pipe.maven.publish import publish
from pipe.maven.repository import MavenRepository
from pipe.maven.versions import highest
from tests.conftest import assert_no_secret, base_env, run_in_process
from tests.unit.fake_maven import BASE, FakeMavenRepository, resolve
from tests.unit.test_maven import jar

LOG = logging.getLogger("test.maven.integrity")
GROUP, ARTIFACT, FOLDER = "org.acme", "lib", "org/acme/lib"


# --- the checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version",
    ["..", ".", "%2e%2e", "1.0.0#x", "1.0.0%2f..", "../victim/1.0.0", "1.0?x", "1.0;x", "1.0\\x", "1 0", "1.0\x00",
     "1.0\x1b[31m", "1.0\t", "", "${revision}", "1.0:x", "1.0*", "1" * 256],
)  # fmt: skip
def test_versions_that_could_leave_the_folder_or_change_the_url_are_refused(version: str) -> None:
    assert version_problem(version) is not None
    with pytest.raises(UnsafePath):
        repository_path(GROUP, ARTIFACT, version)


@pytest.mark.parametrize("version", ["1.0.0", "1.0-SNAPSHOT", "2.0.0-rc.1+build.5", "1.0_final", "1-2-3-a"])
def test_ordinary_versions_pass(version: str) -> None:
    assert version_problem(version) is None
    assert repository_path(GROUP, ARTIFACT, version, f"lib-{version}.pom") == f"{FOLDER}/{version}/lib-{version}.pom"


@pytest.mark.parametrize(
    ("value", "what"),
    [("..", "groupId"), (".com", "groupId"), ("com..acme", "groupId"), ("com.", "groupId"), ("..", "artifactId"),
     (".", "artifactId"), ("a/b", "artifactId"), ("a%2fb", "groupId"), ("", "artifactId")],
)  # fmt: skip
def test_ids_outside_mavens_pattern_or_naming_a_folder_of_the_path_are_refused(value: str, what: str) -> None:
    assert id_problem(value, what) is not None


def test_names_in_a_path_are_one_segment_each() -> None:
    assert name_problem("lib-1.0.jar") is None
    assert name_problem("lib-1.0.jar#x") == "it contains '#', which would change the URL"
    assert name_problem("..") == "'..' names a folder of the path itself"
    with pytest.raises(UnsafePath, match=r"the file name 'a\?b' cannot be part of a repository URL"):
        repository_path(GROUP, ARTIFACT, "1.0", "a?b")


def test_the_client_sends_no_request_for_an_unsafe_path() -> None:
    fake = FakeMavenRepository()
    repository = MavenRepository(BASE, new_session(transport=fake), LOG)
    for path in ("org/acme/../victim/1.0/x.pom", "org/acme/lib/%2e%2e/x", "org/acme/lib//x", "org/acme/lib/1.0#x"):
        with pytest.raises(UnsafePath, match="was refused before it was sent"):
            repository.read(path, f"reading {path}")
    assert fake.requests == []


def test_a_build_number_that_is_no_count_is_refused_with_the_file_named() -> None:
    data = (
        b"<metadata><versioning><snapshot><buildNumber>"
        + b"9" * 5000
        + b"</buildNumber></snapshot></versioning></metadata>"
    )
    with pytest.raises(RegistryError, match=r"^http://r/m.xml has <buildNumber>9{40}</buildNumber>, which is no build"):
        parse_snapshot_metadata(data, "http://r/m.xml", "g", "a", "1.0-SNAPSHOT")


# --- publish: refused before any request ----------------------------------------------------------


def project(workdir: Path, group: str, artifact: str, version: str) -> None:
    (workdir / "pom.xml").write_text(
        f"<project><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></project>",
        encoding="utf-8",
    )
    jar(workdir / "target" / f"{artifact}-{version}.jar")


def publish_on(fake: FakeMavenRepository, workdir: Path, monkeypatch, **env: str):
    monkeypatch.setattr(deploy, "settle_time", lambda started: 0)
    config = load_config(base_env(PACKAGE_TYPE="maven", REGISTRY_URL=BASE, **env), workdir)
    return publish(replace(config, transport=fake), LOG, SecretMasker())


def test_the_fake_repository_takes_an_ordinary_deploy_inside_the_artifacts_folder(workdir, monkeypatch) -> None:
    fake = FakeMavenRepository()
    project(workdir, GROUP, ARTIFACT, "1.0.0")
    publish_on(fake, workdir, monkeypatch)
    assert sorted(p for p in fake.files if p.endswith((".pom", ".jar", ".xml"))) == [
        f"{FOLDER}/1.0.0/lib-1.0.0.jar",
        f"{FOLDER}/1.0.0/lib-1.0.0.pom",
        f"{FOLDER}/maven-metadata.xml",
    ]


@pytest.mark.parametrize(
    ("group", "artifact", "version", "expected"),
    [
        (GROUP, ARTIFACT, "%2e%2e", "MAVEN_POM's version '%2e%2e' is not valid (it contains '%', which would change"),
        (GROUP, ARTIFACT, "1.0.0#x", "MAVEN_POM's version '1.0.0#x' is not valid (it contains '#', which would change"),
        (GROUP, ARTIFACT, "1.0.0%2f..", "MAVEN_POM's version '1.0.0%2f..' is not valid (it contains '%'"),
        ("..", ARTIFACT, "1.0.0", "MAVEN_POM's groupId '..' is not valid: its parts between dots must not be empty"),
        ("com", "..", "1.0.0", "MAVEN_POM's artifactId '..' is not valid: '..' names a folder of the path itself."),
    ],
)
def test_coordinates_that_would_write_outside_the_artifacts_folder_are_refused_before_any_request(
    workdir: Path, group: str, artifact: str, version: str, expected: str
) -> None:
    project(workdir, group, artifact, version)
    fake = FakeMavenRepository()

    run = run_in_process(base_env(PACKAGE_TYPE="maven", REGISTRY_URL=BASE), workdir, transport=fake)

    assert fake.requests == []
    assert run.code == 1
    assert run.last_line.startswith(f"✖ {expected}")
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line]
    assert "Traceback" not in run.output
    assert_no_secret(run.output)


def test_a_file_name_that_would_change_the_url_is_refused_before_any_request(workdir, monkeypatch) -> None:
    project(workdir, GROUP, ARTIFACT, "1.0.0")
    jar(workdir / "target" / "lib-1.0.0-x#y.jar")
    fake = FakeMavenRepository()
    with pytest.raises(UnsafePath, match=r"^the file name 'lib-1.0.0-x#y.jar' cannot be part of a repository URL"):
        publish_on(fake, workdir, monkeypatch)
    assert fake.requests == []


# --- cleanup: versions from the registry are checked too ----------------------------------------


def run_cleanup(fake: FakeMavenRepository, workdir: Path, monkeypatch, **rules: str):
    (workdir / "pom.xml").write_text(
        f"<project><groupId>{GROUP}</groupId><artifactId>{ARTIFACT}</artifactId><version>0</version></project>"
    )
    monkeypatch.setattr(maven_cleanup, "settle_time", lambda started: 0)
    env = base_env(PACKAGE_TYPE="maven", REGISTRY_URL=BASE, ACTION="cleanup", **rules)
    return maven_cleanup.cleanup(replace(load_config(env, workdir), transport=fake), LOG, SecretMasker())


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def deletes(fake: FakeMavenRepository) -> list[str]:
    return [path for method, path in fake.calls if method == "DELETE" and not path.endswith(".delete-check")]


@pytest.mark.parametrize("hostile", ["../victim/1.0.0", "..", "%2e%2e", "1.0.0/../..", "1.0.0#x", "."])
def test_a_version_in_the_metadata_that_would_leave_the_folder_is_reported_and_never_deleted(
    workdir: Path, monkeypatch, caplog, hostile: str
) -> None:
    fake = FakeMavenRepository()
    victim = fake.add_artifact(GROUP, "victim", ["1.0.0"])
    fake.add_artifact(GROUP, ARTIFACT, ["1.0.0", "2.0.0"], listed_only=(hostile,))
    outside = fake.outside(FOLDER)

    result = run_cleanup(fake, workdir, monkeypatch, DELETE_MATCHING="*")

    # The plan printed is what was deleted, and only inside the artifact's own folder.
    assert result.variables == {"DELETED_COUNT": "1", "DELETED_VERSIONS": "1.0.0"}
    assert [k["name"] for k in result.details["kept"]] == ["2.0.0"]
    assert deletes(fake) == [f"{FOLDER}/1.0.0/"]
    assert requested_outside(fake) == []
    assert fake.outside(FOLDER) == outside and f"{victim}/1.0.0/victim-1.0.0.pom" in fake.files
    assert f"{FOLDER}/2.0.0/lib-2.0.0.pom" in fake.files
    assert warnings(caplog) == [
        f"{FOLDER}/maven-metadata.xml lists the version '{hostile}', which is not a valid Maven version "
        f"({version_problem(hostile)}): skipped, nothing is read or deleted by that name; repair the repository by "
        "hand if it is a mistake."
    ]
    # The entry stays in the metadata (the pipe deletes only what it can name); 1.0.0 left it.
    assert fake.listed(FOLDER, GROUP, ARTIFACT) == ["2.0.0", hostile]


def test_hostile_latest_and_release_protect_nothing_and_are_reported(workdir: Path, monkeypatch, caplog) -> None:
    fake = FakeMavenRepository()
    fake.add_artifact(GROUP, ARTIFACT, ["1.0.0", "2.0.0"], latest="%2e%2e", release="..")
    result = run_cleanup(fake, workdir, monkeypatch, DELETE_MATCHING="*")
    assert result.variables["DELETED_VERSIONS"] == "1.0.0"
    assert deletes(fake) == [f"{FOLDER}/1.0.0/"]
    assert [w.split(",")[0] for w in warnings(caplog)] == [
        f"{FOLDER}/maven-metadata.xml names as <latest> '%2e%2e'",
        f"{FOLDER}/maven-metadata.xml names as <release> '..'",
    ]


def test_a_dry_run_plan_never_shows_a_hostile_version(workdir: Path, monkeypatch, caplog) -> None:
    fake = FakeMavenRepository()
    fake.add_artifact(GROUP, ARTIFACT, ["1.0.0", "2.0.0"], listed_only=("..",))
    result = run_cleanup(fake, workdir, monkeypatch, DELETE_MATCHING="*", DRY_RUN="true")
    assert result.details["would_delete"] == ["1.0.0"]
    assert [m for m, _ in fake.calls if m not in ("GET", "HEAD")] == []


class HostileListing(FakeMavenRepository):
    """A repository whose index pages also link to names that decode into path tricks."""

    def __init__(self, links: dict[str, list[str]]) -> None:
        super().__init__()
        self.links = links  # folder → extra hrefs on its index page

    def index(self, path: str) -> tuple[int, bytes | str, dict[str, str]]:
        status, body, headers = super().index(path)
        extra = "".join(f'<a href="{href}">x</a>' for href in self.links.get(path, []))
        return status, (body if isinstance(body, str) else body.decode()) + extra, headers


def test_a_folder_in_the_listing_that_decodes_to_dots_is_reported_and_never_listed_or_deleted(
    workdir: Path, monkeypatch, caplog
) -> None:
    fake = HostileListing({FOLDER: ["%2e%2e/", "%2E/", "1.0%23x/"]})
    fake.add_artifact(GROUP, ARTIFACT, ["1.0.0", "2.0.0"])
    fake.add_version(FOLDER, ARTIFACT, "0.9.0")  # a real leftover of an interrupted run: still found
    outside = fake.outside(FOLDER)

    result = run_cleanup(fake, workdir, monkeypatch, DELETE_MATCHING="*")

    assert result.variables["DELETED_VERSIONS"] == "0.9.0 1.0.0"
    assert sorted(deletes(fake)) == [f"{FOLDER}/0.9.0/", f"{FOLDER}/1.0.0/"]
    assert fake.outside(FOLDER) == outside
    assert [w.split(",")[0] for w in warnings(caplog)] == [
        f"{FOLDER}/ holds the folder '..'",
        f"{FOLDER}/ holds the folder '.'",
        f"{FOLDER}/ holds the folder '1.0#x'",
    ]
    listed = [path for method, path in fake.calls if method == "GET" and path.endswith("/")]
    assert listed == [f"{FOLDER}/", f"{FOLDER}/0.9.0/"]


def test_files_a_folder_lists_under_names_no_url_can_carry_are_skipped_when_deleting_one_by_one(
    workdir: Path, monkeypatch, caplog
) -> None:
    fake = HostileListing({f"{FOLDER}/1.0.0": ["lib-1.0.0.jar%23x", "%2e%2e"]})
    fake.folder_delete_status = 405  # files only: the folder's listing names what is deleted
    fake.add_artifact(GROUP, ARTIFACT, ["1.0.0", "2.0.0"])
    outside = fake.outside(FOLDER)

    run_cleanup(fake, workdir, monkeypatch, DELETE_MATCHING="*")

    assert all(path.startswith(f"{FOLDER}/1.0.0/lib-1.0.0.") for path in deletes(fake) if not path.endswith("/"))
    assert not [path for path in fake.files if path.startswith(f"{FOLDER}/1.0.0/")]
    assert fake.outside(FOLDER) == outside
    assert [w.split(",")[0] for w in warnings(caplog)] == [
        f"{FOLDER}/1.0.0/ lists the file '..'",
        f"{FOLDER}/1.0.0/ lists the file 'lib-1.0.0.jar#x'",
    ]


class NoVersionListing(FakeMavenRepository):
    """A repository that serves no index page for version folders (only the metadata names builds)."""

    def index(self, path: str) -> tuple[int, bytes | str, dict[str, str]]:
        return (404, b"", {}) if path.count("/") > FOLDER.count("/") else super().index(path)


def requested_outside(fake: FakeMavenRepository) -> list[str]:
    """Every request whose path, resolved as the server resolves it, is not inside the artifact's folder."""
    return [path for _, path in fake.calls if not resolve(path).startswith(FOLDER)]


def test_snapshot_values_from_the_registry_never_become_a_request_outside_the_folder(
    workdir, monkeypatch, caplog
) -> None:
    fake = NoVersionListing()
    fake.add_artifact("org.acme", "victim", ["1.0.0"])
    fake.add_artifact(GROUP, ARTIFACT, ["1.0-SNAPSHOT", "2.0.0"])
    hostile = "../../victim/1.0.0/victim-1.0.0"
    files = [
        SnapshotFile("", "pom", hostile, "20240101000000"),
        SnapshotFile("", "jar", "1.0-20240101.000000-1.x/../../..", "x"),
    ]
    metadata = SnapshotMetadata(GROUP, ARTIFACT, "1.0-SNAPSHOT", "20240101.000000", 3, None, files)
    fake.store(f"{FOLDER}/1.0-SNAPSHOT/maven-metadata.xml", render_snapshot_metadata(metadata))
    outside = fake.outside(FOLDER)

    run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="5", OLDER_THAN_DAYS="1")

    assert requested_outside(fake) == []
    assert fake.outside(FOLDER) == outside
    assert [method for method, _ in fake.calls if method not in ("GET", "HEAD")] == []
    assert [w.split(",")[0] for w in warnings(caplog)] == [
        f"{FOLDER}/1.0-SNAPSHOT/ holds 'lib-1.0-20240101.000000-1.x/../../...jar'"
    ]


# --- bounded inputs ------------------------------------------------------------------------------


def test_a_pom_nested_100000_levels_is_read_without_recursion(tmp_path: Path) -> None:
    deep = "<x>" * 100_000 + "</x>" * 100_000
    path = tmp_path / "pom.xml"
    path.write_text(
        f"<project><groupId>g.h</groupId><artifactId>a</artifactId><version>1.0</version><build>{deep}</build>"
        f"<modules><module>{deep}</module></modules></project>",
        encoding="utf-8",
    )
    root = read_root(path, "MAVEN_POM")
    assert module_paths(root) == []
    assert read_single(path, BuildContext({}), str)[0].pom.gav == "g.h:a:1.0"


def test_registry_metadata_nested_100000_levels_is_read_without_recursion() -> None:
    deep = b"<v>" * 100_000 + b"</v>" * 100_000
    data = b"<metadata><versioning><versions><version>1.0</version>" + deep + b"</versions></versioning></metadata>"
    assert parse_artifact_metadata(data, "http://r/m.xml", "g", "a").versions == ["1.0"]


def test_the_longest_version_a_path_takes_still_sorts_in_mavens_order() -> None:
    # 255 bytes is the bound: digits stay integers Python converts, '-' nests no deeper than 127.
    versions = ["9" * 255, "1-" * 127 + "1", "1.0"]
    assert all(version_problem(v) is None for v in versions)
    assert highest(versions) == "9" * 255


def test_a_reactor_module_with_a_hostile_version_stops_the_whole_run_before_any_request(workdir, monkeypatch) -> None:
    modules = "<modules><module>lib</module><module>app</module></modules>"
    (workdir / "pom.xml").write_text(
        f"<project><groupId>{GROUP}</groupId><artifactId>root</artifactId><version>1.0.0</version>"
        f"<packaging>pom</packaging>{modules}</project>",
        encoding="utf-8",
    )
    parent = f"<parent><groupId>{GROUP}</groupId><artifactId>root</artifactId><version>1.0.0</version></parent>"
    for name, version in (("lib", ""), ("app", "<version>%2e%2e</version>")):
        (workdir / name).mkdir()
        (workdir / name / "pom.xml").write_text(
            f"<project>{parent}<artifactId>{name}</artifactId>{version}</project>", encoding="utf-8"
        )
        jar(workdir / name / "target" / f"{name}-1.0.0.jar")
    fake = FakeMavenRepository()
    with pytest.raises(InputError, match=r"version '%2e%2e' is not valid \(it contains '%'"):
        publish_on(fake, workdir, monkeypatch)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [("BITBUCKET_PACKAGES_TOKEN", "t\u20acken-secret"), ("BITBUCKET_PACKAGES_TOKEN", "tok\nen-secret"),
     ("BITBUCKET_PACKAGES_USERNAME", "us\u0117r")],
)  # fmt: skip
def test_credentials_http_cannot_carry_are_one_line_not_a_traceback(workdir, variable: str, value: str) -> None:
    project(workdir, GROUP, ARTIFACT, "1.0.0")
    fake = FakeMavenRepository()
    run = run_in_process(base_env(PACKAGE_TYPE="maven", REGISTRY_URL=BASE, **{variable: value}), workdir, fake)
    assert run.code == 1
    assert run.lines == [
        f"✖ {variable} contains a character HTTP authentication cannot carry (a control character or one outside "
        "Latin-1): copy the value again from Bitbucket into the repository variable; a stray character may have "
        "been pasted with it."
    ]
    assert fake.requests == []
    assert "secret" not in run.output

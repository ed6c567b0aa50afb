"""Maven cleanup against an in-memory repository on the one fake HTTP seam: the order of its requests (metadata
before files), refusals, servers that delete files but not folders, leftovers of an interrupted
run, folder listings and the metadata rewrite."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

import pipe.maven.cleanup as maven
from pipe.config import load_config
from pipe.errors import InputError, RegistryError
from pipe.http import new_session
from pipe.masking import SecretMasker
from pipe.maven.folders import deletion_order, parse_listing
from pipe.maven.layout import checksums_of_bytes
from pipe.maven.metadata import ArtifactMetadata, without_versions
from tests.conftest import base_env
from tests.unit.fake_maven import BASE, FakeMavenRepository

LOG = logging.getLogger("test.maven.cleanup")
FOLDER = "org/acme/lib"


def fake_repository(versions: list[str], latest: str | None = None, release: str | None = None) -> FakeMavenRepository:
    fake = FakeMavenRepository()
    fake.add_artifact("org.acme", "lib", versions, latest, release)
    return fake


def listed(fake: FakeMavenRepository) -> list[str]:
    return fake.listed(FOLDER, "org.acme", "lib")


LIB_POM = "<project><groupId>org.acme</groupId><artifactId>lib</artifactId><version>0</version></project>"


def run_cleanup(fake: FakeMavenRepository, workdir: Path, monkeypatch, pom: str = LIB_POM, **rules: str):
    (workdir / "pom.xml").write_text(pom)
    env = base_env(PACKAGE_TYPE="maven", REGISTRY_URL=BASE, ACTION="cleanup", BITBUCKET_CLONE_DIR=str(workdir), **rules)
    monkeypatch.setattr(maven, "settle_time", lambda started: 0)
    config = replace(load_config(env, workdir), transport=fake)
    return maven.cleanup(config, LOG, SecretMasker())


def test_metadata_is_written_without_the_versions_before_any_folder_is_deleted(workdir: Path, monkeypatch) -> None:
    fake = fake_repository(["1.0", "1.1", "1.2"])
    result = run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")

    assert result.variables == {"DELETED_COUNT": "2", "DELETED_VERSIONS": "1.0 1.1"}
    writes = [(m, p) for m, p in fake.calls if m in ("PUT", "DELETE") and not p.endswith(".delete-check")]
    assert writes[0] == ("PUT", f"{FOLDER}/maven-metadata.xml")
    assert writes[-2:] == [("DELETE", f"{FOLDER}/1.0/"), ("DELETE", f"{FOLDER}/1.1/")]
    assert listed(fake) == ["1.2"]
    assert not [p for p in fake.files if "/1.0/" in p or "/1.1/" in p]


def test_a_repository_refusing_deletes_stops_before_anything_changes(workdir: Path, monkeypatch) -> None:
    fake = fake_repository(["1.0", "1.1"])
    fake.check_status = 405
    before = dict(fake.files)
    with pytest.raises(RegistryError, match="does not allow deletes through the API: delete the versions in the"):
        run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")
    assert fake.files == before


def test_a_server_that_deletes_files_but_not_folders_gets_them_one_by_one_pom_last(workdir: Path, monkeypatch):
    fake = fake_repository(["1.0", "2.0"])
    fake.folder_delete_status = 405
    run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")

    deleted = [p.rsplit("/", 1)[1] for m, p in fake.calls if m == "DELETE" and "/1.0/" in p and not p.endswith("/")]
    assert deleted == ["lib-1.0.jar", "lib-1.0.jar.md5", "lib-1.0.jar.sha1", "lib-1.0.pom", "lib-1.0.pom.md5",
                       "lib-1.0.pom.sha1"]  # fmt: skip
    assert not [p for p in fake.files if "/1.0/" in p]


def test_a_dry_run_sends_no_write(workdir: Path, monkeypatch) -> None:
    fake = fake_repository(["1.0", "1.1"])
    result = run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1", DRY_RUN="true")
    assert [m for m, _ in fake.calls if m not in ("GET", "HEAD")] == []
    assert result.details["would_delete"] == ["1.0"]


def test_a_folder_an_interrupted_run_left_is_found_and_finished(workdir: Path, monkeypatch) -> None:
    fake = fake_repository(["1.1", "2.0"])
    fake.add_version(FOLDER, "lib", "1.0")  # its files are there, the metadata no longer lists it
    fake.add_version(FOLDER, "lib", "3.0")  # a newer unlisted folder: maybe a deploy still under way
    result = run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")

    kept = {k["name"]: k["reason"] for k in result.details["kept"]}
    assert result.variables["DELETED_VERSIONS"] == "1.0 1.1"
    assert kept["2.0"] == "protected: newest release in maven-metadata.xml"
    assert kept["3.0"].startswith("protected: newest release (a folder an interrupted cleanup left behind")
    assert not [p for p in fake.files if "/1.0/" in p]


def test_metadata_with_stale_checksums_is_written_again() -> None:
    fake = fake_repository(["1.0", "1.1"])
    fake.files[f"{FOLDER}/maven-metadata.xml.sha1"] = b"0" * 40
    repository = maven.MavenRepository(BASE, new_session(transport=fake), LOG)
    maven.rewrite_metadata(repository, f"{FOLDER}/maven-metadata.xml", lambda data: True, lambda data: data, LOG)
    data = fake.files[f"{FOLDER}/maven-metadata.xml"]
    assert fake.files[f"{FOLDER}/maven-metadata.xml.sha1"] == checksums_of_bytes(data).sha1.encode()


def test_latest_and_release_are_kept_when_they_remain_and_recomputed_when_they_go() -> None:
    metadata = ArtifactMetadata("g", "a", ["1.0", "1.10", "1.9", "2.0-SNAPSHOT"], "2.0-SNAPSHOT", "1.9", "x")
    assert without_versions(metadata, {"1.0"}, "now") == ArtifactMetadata(
        "g", "a", ["1.10", "1.9", "2.0-SNAPSHOT"], "2.0-SNAPSHOT", "1.9", "now"
    )
    gone = without_versions(metadata, {"1.9", "2.0-SNAPSHOT"}, "now")
    assert (gone.versions, gone.latest, gone.release) == (["1.0", "1.10"], "1.10", "1.10")


def test_listings_give_direct_children_from_relative_and_absolute_links() -> None:
    page = (
        '<a href="../">up</a><a href="1.0/">1.0/</a><a href="/maven/org/acme/lib/2.0/">2.0</a>'
        '<a href="maven-metadata.xml">m</a><a href="1.0/lib-1.0.pom">deep</a><a href="a%2Bb.jar?x=1">q</a>'
        "<a href='http://elsewhere/x/'>x</a>"
    )
    listing = parse_listing(page, f"{BASE}{FOLDER}/")
    assert listing.folders == ("1.0", "2.0")
    assert listing.files == ("maven-metadata.xml", "a+b.jar")


def test_deletion_order_puts_checksums_after_their_file_and_the_pom_last() -> None:
    names = ["a.pom.sha1", "a.pom", "a.jar.md5", "a-sources.jar", "a.jar"]
    assert deletion_order(names) == ["a-sources.jar", "a.jar", "a.jar.md5", "a.pom", "a.pom.sha1"]


# The artifact is read as publishing reads it (issue 22): parents on disk, MAVEN_PROPERTIES, VERSION.


def test_a_revision_pom_without_a_default_is_cleaned_up_without_version(workdir: Path, monkeypatch) -> None:
    fake = fake_repository(["1.0", "1.1", "1.2"])
    pom = "<project><groupId>org.acme</groupId><artifactId>lib</artifactId><version>${revision}</version></project>"

    result = run_cleanup(fake, workdir, monkeypatch, pom, KEEP_RELEASES="1")

    assert result.variables == {"DELETED_COUNT": "2", "DELETED_VERSIONS": "1.0 1.1"}
    assert listed(fake) == ["1.2"]


def test_coordinates_come_from_the_parent_on_disk_and_maven_properties(workdir: Path, monkeypatch) -> None:
    fake = fake_repository(["1.0", "1.1"])
    (workdir / "parent").mkdir()
    (workdir / "parent" / "pom.xml").write_text(
        "<project><groupId>org.acme</groupId><artifactId>parent</artifactId><version>${revision}</version>"
        "<packaging>pom</packaging><properties><flavour>lib</flavour></properties></project>"
    )
    pom = (
        "<project><parent><groupId>org.acme</groupId><artifactId>parent</artifactId><version>${revision}</version>"
        "<relativePath>parent</relativePath></parent><artifactId>${flavour}${suffix}</artifactId></project>"
    )

    result = run_cleanup(fake, workdir, monkeypatch, pom, KEEP_RELEASES="1", MAVEN_PROPERTIES="suffix=")

    assert result.variables == {"DELETED_COUNT": "1", "DELETED_VERSIONS": "1.0"}


def test_a_property_nothing_defines_says_where_to_define_it(workdir: Path, monkeypatch) -> None:
    pom = "<project><groupId>${org}</groupId><artifactId>lib</artifactId><version>${revision}</version></project>"

    with pytest.raises(InputError) as error:
        run_cleanup(fake_repository(["1.0"]), workdir, monkeypatch, pom, KEEP_RELEASES="1")

    assert error.value.message == (
        "MAVEN_POM's groupId '${org}' uses the property ${org}, which the POM does not define: define it in "
        "<properties>, pass it in MAVEN_PROPERTIES (org=…, as mvn -Dorg=…), or write the groupId literally."
    )

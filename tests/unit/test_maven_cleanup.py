"""Maven cleanup with the HTTP session faked at its seam: the order of its requests (metadata
before files), refusals, servers that delete files but not folders, leftovers of an interrupted
run, folder listings and the metadata rewrite."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests

import pipe.maven.cleanup as maven
from pipe.config import load_config
from pipe.errors import RegistryError
from pipe.masking import SecretMasker
from pipe.maven.folders import deletion_order, parse_listing
from pipe.maven.layout import checksums_of_bytes
from pipe.maven.metadata import ArtifactMetadata, parse_artifact_metadata, render_artifact_metadata, without_versions
from tests.conftest import base_env

LOG = logging.getLogger("test.maven.cleanup")
BASE = "https://repo.test/maven/"
FOLDER = "org/acme/lib"


def answer(status: int, url: str, body: bytes = b"", headers: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    return response


class FakeRepository:
    """An in-memory WebDAV Maven repository with index pages, answering the cleanup's requests."""

    def __init__(self, versions: list[str], latest: str | None = None, release: str | None = None):
        self.files: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self.retry_methods = frozenset({"GET", "HEAD"})
        self.check_status: int | None = None  # the answer to the delete check
        self.folder_delete_status: int | None = None  # e.g. 405: files only
        metadata = ArtifactMetadata("org.acme", "lib", list(versions), latest, release, "20240101000000")
        self.store(f"{FOLDER}/maven-metadata.xml", render_artifact_metadata(metadata))
        for version in versions:
            self.add_version(version)

    def add_version(self, version: str) -> None:
        for name in (f"lib-{version}.pom", f"lib-{version}.jar"):
            self.store(f"{FOLDER}/{version}/{name}", f"{name} content".encode())

    def store(self, path: str, content: bytes) -> None:
        self.files[path] = content
        for algorithm in ("md5", "sha1"):
            self.files[f"{path}.{algorithm}"] = checksums_of_bytes(content).get(algorithm).encode()

    def listed(self) -> list[str]:
        data = self.files[f"{FOLDER}/maven-metadata.xml"]
        return parse_artifact_metadata(data, "x", "org.acme", "lib").versions

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        path = url.removeprefix(BASE)
        self.calls.append((method, path))
        if method == "PUT":
            body = kwargs["data"]
            self.files[path] = body if isinstance(body, bytes) else body.read()
            return answer(201, url)
        if method == "DELETE":
            return self.delete(path, url)
        if path.endswith("/"):
            return self.index(path, url)
        if path not in self.files:
            return answer(404, url)
        return answer(200, url, self.files[path], {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})

    def index(self, path: str, url: str) -> requests.Response:
        children = set()
        for name in (p[len(path) :] for p in self.files if p.startswith(path)):
            children.add(name.split("/", 1)[0] + ("/" if "/" in name else ""))
        if not children:
            return answer(404, url)
        links = "".join(f'<a href="{c}">{c}</a>' for c in sorted(children))
        return answer(200, url, f'<a href="../">../</a>{links}'.encode(), {"Content-Type": "text/html"})

    def delete(self, path: str, url: str) -> requests.Response:
        if path.endswith(".delete-check") and self.check_status:
            return answer(self.check_status, url)
        if path.endswith("/"):
            if self.folder_delete_status:
                return answer(self.folder_delete_status, url)
            doomed = [p for p in self.files if p.startswith(path)]
        else:
            doomed = [path] if path in self.files else []
        for name in doomed:
            del self.files[name]
        return answer(204 if doomed else 404, url)


def run_cleanup(fake: FakeRepository, workdir: Path, monkeypatch, **rules: str):
    (workdir / "pom.xml").write_text(
        "<project><groupId>org.acme</groupId><artifactId>lib</artifactId><version>0</version></project>"
    )
    env = base_env(PACKAGE_TYPE="maven", REGISTRY_URL=BASE, ACTION="cleanup", BITBUCKET_CLONE_DIR=str(workdir), **rules)
    monkeypatch.setattr(maven, "new_session", lambda **kwargs: fake)
    monkeypatch.setattr(maven, "settle_time", lambda started: 0)
    return maven.cleanup(load_config(env, workdir), LOG, SecretMasker())


def test_metadata_is_written_without_the_versions_before_any_folder_is_deleted(workdir: Path, monkeypatch) -> None:
    fake = FakeRepository(["1.0", "1.1", "1.2"])
    result = run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")

    assert result.variables == {"DELETED_COUNT": "2", "DELETED_VERSIONS": "1.0 1.1"}
    writes = [(m, p) for m, p in fake.calls if m in ("PUT", "DELETE") and not p.endswith(".delete-check")]
    assert writes[0] == ("PUT", f"{FOLDER}/maven-metadata.xml")
    assert writes[-2:] == [("DELETE", f"{FOLDER}/1.0/"), ("DELETE", f"{FOLDER}/1.1/")]
    assert fake.listed() == ["1.2"]
    assert not [p for p in fake.files if "/1.0/" in p or "/1.1/" in p]


def test_a_repository_refusing_deletes_stops_before_anything_changes(workdir: Path, monkeypatch) -> None:
    fake = FakeRepository(["1.0", "1.1"])
    fake.check_status = 405
    before = dict(fake.files)
    with pytest.raises(RegistryError, match="does not allow deletes through the API: delete the versions in the"):
        run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")
    assert fake.files == before


def test_a_server_that_deletes_files_but_not_folders_gets_them_one_by_one_pom_last(workdir: Path, monkeypatch):
    fake = FakeRepository(["1.0", "2.0"])
    fake.folder_delete_status = 405
    run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")

    deleted = [p.rsplit("/", 1)[1] for m, p in fake.calls if m == "DELETE" and "/1.0/" in p and not p.endswith("/")]
    assert deleted == ["lib-1.0.jar", "lib-1.0.jar.md5", "lib-1.0.jar.sha1", "lib-1.0.pom", "lib-1.0.pom.md5",
                       "lib-1.0.pom.sha1"]  # fmt: skip
    assert not [p for p in fake.files if "/1.0/" in p]


def test_a_dry_run_sends_no_write(workdir: Path, monkeypatch) -> None:
    fake = FakeRepository(["1.0", "1.1"])
    result = run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1", DRY_RUN="true")
    assert [m for m, _ in fake.calls if m not in ("GET", "HEAD")] == []
    assert result.details["would_delete"] == ["1.0"]


def test_a_folder_an_interrupted_run_left_is_found_and_finished(workdir: Path, monkeypatch) -> None:
    fake = FakeRepository(["1.1", "2.0"])
    fake.add_version("1.0")  # its files are there, the metadata no longer lists it
    fake.add_version("3.0")  # a newer unlisted folder: maybe a deploy still under way
    result = run_cleanup(fake, workdir, monkeypatch, KEEP_RELEASES="1")

    kept = {k["name"]: k["reason"] for k in result.details["kept"]}
    assert result.variables["DELETED_VERSIONS"] == "1.0 1.1"
    assert kept["2.0"] == "protected: newest release in maven-metadata.xml"
    assert kept["3.0"].startswith("protected: newest release (a folder an interrupted cleanup left behind")
    assert not [p for p in fake.files if "/1.0/" in p]


def test_metadata_with_stale_checksums_is_written_again() -> None:
    fake = FakeRepository(["1.0", "1.1"])
    fake.files[f"{FOLDER}/maven-metadata.xml.sha1"] = b"0" * 40
    repository = maven.MavenRepository(BASE, fake, LOG)
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

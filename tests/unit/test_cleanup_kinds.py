"""Image and npm cleanups with the HTTP session faked at its seam: which requests they make and
in which order (an index's images before the index, the packument before the tarball), how
answers lost or refused are handled, and the npm packument rewrite."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

import pipe.containers.cleanup as oci
import pipe.http
import pipe.npm.cleanup as npm
from pipe.config import load_config
from pipe.containers.registry import RegistryDeleter
from pipe.errors import RegistryError
from pipe.masking import SecretMasker
from tests.conftest import base_env
from tests.fakehttp import FakeTransport, Sent

LOG = logging.getLogger("test.cleanup.kinds")
INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE = "application/vnd.oci.image.manifest.v1+json"


class FakeDistribution(FakeTransport):
    """An in-memory distribution registry for one repository, answering the cleaner's requests."""

    def __init__(self):
        super().__init__()
        self.tags: dict[str, str] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.delete_status: int | None = None

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path below the repository) of every request, in order."""
        return [(sent.method, sent.path_and_query.split("/v2/acme/widget/", 1)[1]) for sent in self.requests]

    def add(self, body: dict, tag: str | None = None) -> str:
        data = json.dumps(body).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.manifests[digest] = (data, body["mediaType"])
        if tag:
            self.tags[tag] = digest
        return digest

    def image(self, tag: str | None, created: str) -> str:
        config = json.dumps({"created": created, "marker": f"{tag}{created}"}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blobs[config_digest] = config
        return self.add({"mediaType": IMAGE, "config": {"digest": config_digest}, "layers": []}, tag)

    def handle(self, sent: Sent):
        path = sent.path.split("/v2/acme/widget/", 1)[1]
        if path.startswith("tags/list"):
            return 200, {"tags": sorted(self.tags)}, {}
        kind, _, reference = path.partition("/")
        if kind == "blobs":
            return (200, self.blobs[reference], {}) if reference in self.blobs else (404, b"", {})
        digest = self.tags.get(reference, reference)
        if sent.method == "DELETE":
            return self.delete(digest)
        if digest not in self.manifests:
            return 404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, {}
        body, media_type = self.manifests[digest]
        return 200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest}

    def delete(self, digest: str):
        if self.delete_status:
            return self.delete_status, {"errors": [{"code": "UNSUPPORTED", "message": "no"}]}, {}
        if self.manifests.pop(digest, None) is None:
            return 404, b"", {}
        self.tags = {tag: d for tag, d in self.tags.items() if d != digest}
        return 202, b"", {}


def image_config(workdir: Path, transport: FakeTransport | None = None, **rules: str):
    env = base_env(PACKAGE_TYPE="docker", REGISTRY_URL="https://crg.example", ACTION="cleanup", **rules)
    return replace(load_config(env, workdir), transport=transport)


def run_image_cleanup(registry: FakeDistribution, workdir: Path, **rules: str):
    return oci.cleanup(image_config(workdir, registry, **rules), LOG, SecretMasker())


def test_protected_tags_are_the_floating_ones_and_their_digests() -> None:
    digests = {"latest": "d2", "1": "d2", "1.4": "d1", "v2": "d3", "1.4.2": "d1", "2.0.0": "d2", "sha-1": "d9"}
    assert oci.protected_tags(digests) == {
        "latest": "protected: floating tag",
        "1": "protected: floating tag",
        "1.4": "protected: floating tag",
        "v2": "protected: floating tag",
        "1.4.2": "protected: floating tag 1.4 points at it",
        "2.0.0": "protected: floating tag latest points at it",
    }


def test_an_index_goes_after_its_own_images_and_a_shared_image_stays(workdir: Path) -> None:
    registry = FakeDistribution()
    registry.image("1.0.0", "2024-01-01T00:00:00Z")
    only = registry.image(None, "2020-01-01T00:00:00Z")
    shared = registry.image(None, "2020-01-02T00:00:00Z")
    old_index = registry.add({"mediaType": INDEX, "manifests": [{"digest": only}, {"digest": shared}]}, "sha-old")
    registry.add({"mediaType": INDEX, "manifests": [{"digest": shared}]}, "main")
    publication = run_image_cleanup(registry, workdir, DELETE_MATCHING="sha-*")
    deletes = [path for method, path in registry.calls if method == "DELETE"]
    assert deletes == [f"manifests/{only}", f"manifests/{old_index}"]
    assert sorted(registry.tags) == ["1.0.0", "main"]
    assert shared in registry.manifests
    assert publication.variables == {"DELETED_COUNT": "1", "DELETED_VERSIONS": "sha-old"}


def test_an_index_takes_its_newest_image_time_without_an_annotation(workdir: Path) -> None:
    registry = FakeDistribution()
    registry.image("1.0.0", "2020-01-01T00:00:00Z")
    recent = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    children = [registry.image(None, "2020-01-01T00:00:00Z"), registry.image(None, recent)]
    registry.add({"mediaType": INDEX, "manifests": [{"digest": d} for d in children]}, "sha-multi")
    publication = run_image_cleanup(registry, workdir, DELETE_MATCHING="sha-*", OLDER_THAN_DAYS="7")
    assert publication.variables["DELETED_COUNT"] == "0"
    kept = {entry["name"]: entry["reason"] for entry in publication.details["kept"]}
    assert kept["sha-multi"] == "kept: published 2 days ago, not more than 7"


def test_two_doomed_tags_on_one_digest_are_one_delete(workdir: Path) -> None:
    registry = FakeDistribution()
    registry.image("2.0.0", "2024-01-01T00:00:00Z")
    digest = registry.image("sha-a", "2020-01-01T00:00:00Z")
    registry.tags["feature-a"] = digest
    publication = run_image_cleanup(registry, workdir, DELETE_MATCHING="sha-* feature-*")
    assert [c for c in registry.calls if c[0] == "DELETE"] == [("DELETE", f"manifests/{digest}")]
    assert publication.variables["DELETED_VERSIONS"] == "sha-a feature-a"


def test_a_dry_run_sends_no_delete(workdir: Path) -> None:
    registry = FakeDistribution()
    registry.image("2.0.0", "2024-01-01T00:00:00Z")
    registry.image("sha-a", "2020-01-01T00:00:00Z")
    publication = run_image_cleanup(registry, workdir, DELETE_MATCHING="sha-*", DRY_RUN="true")
    assert all(method != "DELETE" for method, _ in registry.calls)
    assert publication.details["would_delete"] == ["sha-a"]


def test_a_registry_refusing_deletes_says_to_use_the_ui(workdir: Path) -> None:
    registry = FakeDistribution()
    registry.image("2.0.0", "2024-01-01T00:00:00Z")
    registry.image("sha-a", "2020-01-01T00:00:00Z")
    registry.delete_status = 405
    with pytest.raises(RegistryError) as raised:
        run_image_cleanup(registry, workdir, DELETE_MATCHING="sha-*")
    assert raised.value.message.endswith(
        "answered 405 (UNSUPPORTED: no): the registry does not allow deletes through the API: delete the tags in "
        "the Bitbucket UI (the package's page in Bitbucket Packages)."
    )


def test_a_manifest_already_gone_counts_as_deleted(workdir: Path) -> None:
    registry = FakeDistribution()
    registry.image("2.0.0", "2024-01-01T00:00:00Z")
    digest = registry.image("sha-a", "2020-01-01T00:00:00Z")
    cleaner = RegistryDeleter.from_config(image_config(workdir, registry, KEEP_RELEASES="1"), LOG, SecretMasker())
    assert cleaner.delete_manifest(digest) is True
    assert cleaner.delete_manifest(digest) is False


# --- npm -------------------------------------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def packument(versions: dict[str, int], tags: dict[str, str]) -> dict:
    """versions: version → days since it was published."""
    return {
        "_id": "widget",
        "_rev": "3-abc",
        "name": "widget",
        "versions": {v: {"version": v, "dist": {"tarball": f"http://r/widget/-/widget-{v}.tgz"}} for v in versions},
        "dist-tags": tags,
        "time": {v: (NOW - timedelta(days=days)).isoformat() for v, days in versions.items()},
        "_attachments": {},
    }


def npm_config(workdir: Path, **rules: str):
    env = base_env(PACKAGE_TYPE="npm", REGISTRY_URL="https://npm.example/", ACTION="cleanup", **rules)
    return load_config(env, workdir)


def test_the_packument_is_written_without_the_version_and_latest_moves_down() -> None:
    document = packument(
        {"1.0.0": 9, "1.1.0": 5, "2.0.0-rc.1": 1}, {"latest": "1.1.0", "old": "1.1.0", "rc": "2.0.0-rc.1"}
    )
    written = npm.without_version(document, "1.1.0")
    assert sorted(written["versions"]) == ["1.0.0", "2.0.0-rc.1"]
    assert written["dist-tags"] == {"latest": "1.0.0", "rc": "2.0.0-rc.1"}
    assert written["time"] == document["time"]
    assert "_attachments" not in written
    assert written["_rev"] == "3-abc"
    assert document["dist-tags"]["latest"] == "1.1.0"  # the read copy is untouched


def test_latest_falls_back_to_the_highest_prerelease_when_no_release_is_left() -> None:
    document = packument({"1.0.0": 9, "2.0.0-rc.1": 1, "2.0.0-rc.2": 1}, {"latest": "1.0.0"})
    assert npm.without_version(document, "1.0.0")["dist-tags"] == {"latest": "2.0.0-rc.2"}


def test_age_is_read_from_the_time_map_against_an_injected_now(workdir: Path) -> None:
    document = packument({"1.0.0": 30, "1.1.0": 3, "2.0.0": 1}, {"latest": "2.0.0"})
    decisions = npm.plan(document, npm_config(workdir, OLDER_THAN_DAYS="7"), NOW)
    assert {d.name: d.delete for d in decisions} == {"2.0.0": False, "1.1.0": False, "1.0.0": True}


def test_the_last_version_is_never_planned_for_deletion(workdir: Path) -> None:
    document = packument({"0.1.0-rc.1": 30}, {})
    decisions = npm.plan(document, npm_config(workdir, DELETE_MATCHING="*"), NOW)
    assert [(d.name, d.delete, d.reason) for d in decisions] == [("0.1.0-rc.1", False, npm.LAST_VERSION)]


class FakeVerdaccio(FakeTransport):
    """Answers an unpublish's requests from a script, serving the packument as it changes."""

    def __init__(self, document: dict, put_answers: list):
        super().__init__()
        self.document = document
        self.put_answers = list(put_answers)

    def handle(self, sent: Sent) -> tuple[int, object, dict[str, str]]:
        if sent.method == "GET":
            return 200, self.document, {}
        if sent.method == "PUT":
            outcome = self.put_answers.pop(0)
            if outcome in ("done", "lost"):
                self.document = sent.json() | {"_rev": "4-def"}
            if outcome == "lost":
                raise requests.ConnectionError("connection reset by peer")
            return (201 if outcome == "done" else outcome), {"error": "refused"}, {}
        return 200, b"", {}


@pytest.fixture
def no_waiting(monkeypatch) -> None:
    monkeypatch.setattr(pipe.http, "DEFAULT_POLICY", pipe.http.RetryPolicy(backoff=0.0, jitter=0.0))


def unpublish(fake: FakeVerdaccio, version: str, workdir: Path) -> None:
    config = replace(npm_config(workdir, DELETE_MATCHING="*"), transport=fake)
    registry = npm.NpmRegistry.from_config(config, LOG, SecretMasker())
    npm.unpublish(registry, "widget", version, f"widget-{version}.tgz")


def test_unpublish_writes_the_packument_then_deletes_the_tarball_with_the_new_rev(workdir: Path) -> None:
    fake = FakeVerdaccio(packument({"1.0.0": 9, "2.0.0": 1}, {"latest": "2.0.0"}), ["done"])
    unpublish(fake, "1.0.0", workdir)
    assert fake.calls == [
        ("GET", "/widget?write=true"),
        ("PUT", "/widget/-rev/3-abc"),
        ("GET", "/widget?write=true"),
        ("DELETE", "/widget/-/widget-1.0.0.tgz/-rev/4-def"),
    ]
    assert "1.0.0" not in fake.document["versions"]


def test_a_write_whose_answer_was_lost_is_not_repeated_when_it_happened(workdir: Path, no_waiting) -> None:
    fake = FakeVerdaccio(packument({"1.0.0": 9, "2.0.0": 1}, {"latest": "2.0.0"}), ["lost"])
    unpublish(fake, "1.0.0", workdir)
    assert [method for method, _ in fake.calls] == ["GET", "PUT", "GET", "GET", "DELETE"]


def test_a_changed_rev_is_read_again_and_written_again(workdir: Path, no_waiting) -> None:
    fake = FakeVerdaccio(packument({"1.0.0": 9, "2.0.0": 1}, {"latest": "2.0.0"}), [409, "done"])
    unpublish(fake, "1.0.0", workdir)
    assert [method for method, _ in fake.calls] == ["GET", "PUT", "GET", "PUT", "GET", "DELETE"]
    assert "1.0.0" not in fake.document["versions"]


def test_a_refused_unpublish_says_what_deleting_needs(workdir: Path) -> None:
    fake = FakeVerdaccio(packument({"1.0.0": 9, "2.0.0": 1}, {"latest": "2.0.0"}), [403])
    with pytest.raises(RegistryError) as raised:
        unpublish(fake, "1.0.0", workdir)
    assert raised.value.message.startswith("unpublishing widget@1.0.0 failed: ")
    assert "deleting needs Write permission on the linked repository" in raised.value.message


# What the registry sends back goes into the unpublish's URLs only when it is a plain segment.


def test_versions_npm_does_not_accept_are_kept_and_named_in_the_plan(workdir: Path) -> None:
    document = packument({"1.0.0": 30, "2.0.0": 1, "../victim": 30, "%2e%2e": 30, "1.0.0/../..": 30}, {})
    decisions = {d.name: d for d in npm.plan(document, npm_config(workdir, DELETE_MATCHING="*"), NOW)}
    assert [name for name, d in decisions.items() if d.delete] == ["1.0.0"]
    for hostile in ("../victim", "%2e%2e", "1.0.0/../.."):
        assert decisions[hostile].reason == npm.NOT_AN_NPM_VERSION


@pytest.mark.parametrize("tarball", ["http://r/widget/-/%2e%2e", "http://r/widget/-/..", "http://r/widget/-/"])
def test_a_tarball_url_that_is_no_plain_file_name_is_deleted_by_npm_s_own_name(tarball: str) -> None:
    document = packument({"1.0.0": 9}, {})
    document["versions"]["1.0.0"]["dist"]["tarball"] = tarball
    assert npm.tarball_file(document, "widget", "1.0.0") == "widget-1.0.0.tgz"


@pytest.mark.parametrize("rev", ["3-abc/../../other", "3-abc?x=1", "..", "3-abc#x"])
def test_a_revision_that_would_change_the_url_stops_before_any_write(workdir: Path, rev: str) -> None:
    document = packument({"1.0.0": 9, "2.0.0": 1}, {"latest": "2.0.0"}) | {"_rev": rev}
    fake = FakeVerdaccio(document, ["done"])
    with pytest.raises(RegistryError) as raised:
        unpublish(fake, "1.0.0", workdir)
    assert raised.value.message.startswith("unpublishing widget@1.0.0 stopped: the registry gave the revision ")
    assert [method for method, _ in fake.calls] == ["GET"]

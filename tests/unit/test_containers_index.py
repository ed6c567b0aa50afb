"""Building an image index from tags (INDEX_FROM_TAGS): platforms from configs, index sources,
attestations, duplicates, sources that are missing or elsewhere, and the configuration. The
registry is a dict behind the reader's two reads (the seam); the real registries are in
tests/integration/test_oci_index.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipe.config import load_config
from pipe.containers import index
from pipe.context import PipelinesRun
from pipe.errors import ConfigError, InputError
from tests.conftest import base_env

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REPOSITORY = "acme/widget"
REFERENCE = "crg.example/acme/widget"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """Manifests by tag or digest, blobs by digest: what `RegistryReader` reads."""

    def __init__(self):
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.reads: list[str] = []

    def get_manifest(self, reference: str):
        self.reads.append(reference)
        return self.manifests.get(reference)

    def get_blob(self, digest: str):
        return self.blobs.get(digest)

    def image(self, tag: str | None, config: dict, media_type: str = OCI_MANIFEST) -> str:
        """A single-platform image with `config`; its manifest digest."""
        config_bytes = json.dumps(config | {"rootfs": {"type": "layers", "diff_ids": []}}).encode()
        self.blobs[sha(config_bytes)] = config_bytes
        config_descriptor = {"digest": sha(config_bytes), "size": len(config_bytes)}
        body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "config": config_descriptor,
                           "layers": []}).encode()  # fmt: skip
        self.manifests[sha(body)] = (body, media_type)
        if tag:
            self.manifests[tag] = (body, media_type)
        return sha(body)

    def index(self, tag: str, descriptors: list[dict]) -> str:
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode()
        self.manifests[tag] = (body, OCI_INDEX)
        return sha(body)

    def descriptor(self, digest: str, platform: dict | None = None, **extra) -> dict:
        body, media_type = self.manifests[digest]
        found = {"mediaType": media_type, "digest": digest, "size": len(body)}
        return found | ({"platform": platform} if platform else {}) | extra


def attestation_for(registry: Registry, subject: str) -> dict:
    # Each provenance names its subject, so no two attestations are the same manifest.
    digest = registry.image(None, {"architecture": "unknown", "os": "unknown", "subject": subject})
    annotations = {"vnd.docker.reference.digest": subject, "vnd.docker.reference.type": "attestation-manifest"}
    return registry.descriptor(digest, {"architecture": "unknown", "os": "unknown"}, annotations=annotations)


def build(registry: Registry, *sources: str) -> index.ImageIndex:
    return index.index_from_tags(registry, sources, REPOSITORY, REFERENCE)


# --- platforms -------------------------------------------------------------------------------


def test_platform_fields_come_from_each_config():
    registry = Registry()
    registry.image("1.0-amd64", {"architecture": "amd64", "os": "linux", "author": "x", "config": {"Env": []}})
    arm = registry.image("1.0-arm", {"architecture": "arm", "os": "linux", "variant": "v7"})
    registry.image("1.0-win", {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2113",
                               "os.features": ["win32k"]})  # fmt: skip
    built = build(registry, "1.0-amd64", "1.0-arm", "1.0-win")
    assert [entry["platform"] for entry in built.document["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
        {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2113", "os.features": ["win32k"]},
    ]
    assert built.platforms == ("linux/amd64", "linux/arm/v7", "windows/amd64")
    assert built.document["manifests"][1]["digest"] == arm


def test_each_entry_keeps_its_manifest_media_type_digest_and_size():
    registry = Registry()
    digest = registry.image("1.0-amd64", {"architecture": "amd64", "os": "linux"}, DOCKER_MANIFEST)
    body, _ = registry.manifests[digest]
    built = build(registry, "1.0-amd64")
    assert built.document == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(body),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }  # fmt: skip


def test_same_sources_give_the_same_bytes_in_the_order_listed():
    registry = Registry()
    registry.image("a", {"architecture": "amd64", "os": "linux"})
    registry.image("b", {"architecture": "arm64", "os": "linux"})
    assert build(registry, "a", "b").body == build(registry, "a", "b").body
    assert build(registry, "b", "a").platforms == ("linux/arm64", "linux/amd64")
    assert b" " not in build(registry, "a", "b").body  # compact, like every manifest the pipe writes


def test_an_image_without_os_or_architecture_is_refused():
    registry = Registry()
    registry.image("odd", {"os": "linux"})
    with pytest.raises(InputError) as caught:
        build(registry, "odd")
    assert caught.value.message == (
        "INDEX_FROM_TAGS entry 'odd' has no os/architecture in its image config: push an image built for one "
        "platform under that tag."
    )


# --- index sources and attestations ------------------------------------------------------------


def test_an_index_source_gives_its_entries_and_attestations_intact():
    registry = Registry()
    amd64 = registry.image("1.0-amd64", {"architecture": "amd64", "os": "linux"})
    arm64 = registry.image(None, {"architecture": "arm64", "os": "linux"})
    arm = registry.image(None, {"architecture": "arm", "os": "linux", "variant": "v7"})
    attested = attestation_for(registry, arm64)
    listed = [
        registry.descriptor(arm64, {"architecture": "arm64", "os": "linux"},
                            annotations={"org.opencontainers.image.revision": "abc"}),
        attested,
        registry.descriptor(arm, {"architecture": "arm", "os": "linux", "variant": "v7"}),
    ]  # fmt: skip
    registry.index("1.0-arm", listed)
    built = build(registry, "1.0-amd64", "1.0-arm")
    manifests = built.document["manifests"]
    assert [entry["digest"] for entry in manifests] == [amd64, arm64, attested["digest"], arm]
    assert manifests[1:] == listed  # descriptors as the source index had them, annotations included
    assert manifests[2]["annotations"]["vnd.docker.reference.digest"] == arm64
    assert built.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")


def test_an_index_entry_without_a_platform_gets_its_configs():
    registry = Registry()
    arm64 = registry.image(None, {"architecture": "arm64", "os": "linux"})
    registry.index("multi", [registry.descriptor(arm64)])
    assert build(registry, "multi").document["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux"}


def test_an_attestation_whose_image_is_not_in_the_index_is_left_out():
    registry = Registry()
    amd64 = registry.image("amd64", {"architecture": "amd64", "os": "linux"})
    registry.index("orphan", [attestation_for(registry, "sha256:" + "0" * 64), attestation_for(registry, amd64)])
    built = build(registry, "amd64", "orphan")
    assert len(built.entries) == 2 and built.entries[1].is_attestation
    assert built.platforms == ("linux/amd64",)


def test_only_attestations_is_not_an_index():
    registry = Registry()
    registry.index("att", [attestation_for(registry, "sha256:" + "1" * 64) | {"annotations": {
        "vnd.docker.reference.type": "attestation-manifest"}}])  # fmt: skip
    with pytest.raises(InputError, match="INDEX_FROM_TAGS names no image with a platform"):
        build(registry, "att")


# --- duplicates ------------------------------------------------------------------------------


def test_the_same_image_listed_twice_is_kept_once():
    registry = Registry()
    amd64 = registry.image("1.0-amd64", {"architecture": "amd64", "os": "linux"})
    registry.index("both", [registry.descriptor(amd64, {"architecture": "amd64", "os": "linux"})])
    built = build(registry, "1.0-amd64", "both")
    assert [entry.digest for entry in built.entries] == [amd64]


def test_two_images_for_one_platform_are_refused():
    registry = Registry()
    first = registry.image("a", {"architecture": "amd64", "os": "linux"})
    second = registry.image("b", {"architecture": "amd64", "os": "linux", "author": "someone else"})
    with pytest.raises(InputError) as caught:
        build(registry, "a", "b")
    assert caught.value.message == (
        f"INDEX_FROM_TAGS has two images for linux/amd64: a ({first[:19]}) and b ({second[:19]}): "
        "list one tag per platform."
    )


def test_arm64_and_arm64_v8_are_one_platform_but_windows_versions_are_not():
    registry = Registry()
    registry.image("arm64", {"architecture": "arm64", "os": "linux"})
    registry.image("arm64-v8", {"architecture": "arm64", "os": "linux", "variant": "v8"})
    with pytest.raises(InputError, match="two images for linux/arm64/v8: arm64"):
        build(registry, "arm64", "arm64-v8")
    registry.image("ltsc2019", {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5122"})
    registry.image("ltsc2022", {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2113"})
    assert build(registry, "ltsc2019", "ltsc2022").platforms == ("windows/amd64", "windows/amd64")


# --- sources that cannot be used -------------------------------------------------------------


def test_every_missing_source_is_named_in_one_error():
    registry = Registry()
    registry.image("1.0-amd64", {"architecture": "amd64", "os": "linux"})
    with pytest.raises(InputError) as caught:
        build(registry, "1.0-arm64", "1.0-amd64", "1.0-s390x")
    assert caught.value.message == (
        f"INDEX_FROM_TAGS names 1.0-arm64, 1.0-s390x, which are not in {REFERENCE}: push each platform's image "
        "under its tag first (e.g. TAGS: '{version}-arm64' in that step), and list tags exactly as pushed."
    )


@pytest.mark.parametrize(
    ("source", "tag"),
    [
        ("1.0-amd64", "1.0-amd64"),
        (f"{REPOSITORY}:1.0-amd64", "1.0-amd64"),
        (f"{REFERENCE}:1.0-amd64", "1.0-amd64"),
        (f"{REPOSITORY}@sha256:{'a' * 64}", f"sha256:{'a' * 64}"),
    ],
)
def test_a_source_in_this_repository_may_be_written_in_full(source, tag):
    assert index.source_tag(source, REPOSITORY, REFERENCE) == tag


@pytest.mark.parametrize(
    "source", ["acme/other:1.0", "other.example/acme/widget:1.0", "acme/widget2:1.0", f"{REPOSITORY}", "x@sha256:1"]
)
def test_a_source_elsewhere_is_refused_before_any_read(source):
    registry = Registry()
    with pytest.raises(ConfigError) as caught:
        build(registry, "1.0-amd64", source)
    assert caught.value.message == (
        f"INDEX_FROM_TAGS entry '{source}' names another repository: an index can only tie images of {REFERENCE}: "
        f"list their tags (e.g. 1.0.0-amd64), push each platform to {REFERENCE} first."
    )
    assert registry.reads == []


def test_placeholders_are_those_of_tags():
    context = PipelinesRun.from_env({"BITBUCKET_TAG": "v1.4.0", "BITBUCKET_COMMIT": "0123456789abcdef"})
    assert index.expand_sources(["{version}-amd64", "{major}-arm64"], context) == ("1.4.0-amd64", "1-arm64")
    with pytest.raises(ConfigError) as caught:
        index.expand_sources(["{branch}-amd64"], context)
    assert caught.value.message.startswith("INDEX_FROM_TAGS entry '{branch}-amd64' uses {branch}, but ")


def test_dry_run_text_is_the_index_one_entry_a_line():
    registry = Registry()
    registry.image("a", {"architecture": "amd64", "os": "linux"})
    registry.image("b", {"architecture": "arm64", "os": "linux"})
    built = build(registry, "a", "b")
    lines = index.readable(built)
    assert len(lines) == 4 and lines[1].startswith('  {"mediaType": ')
    assert json.loads("\n".join(lines)) == built.document


# --- configuration ---------------------------------------------------------------------------


def test_index_from_tags_is_a_list_that_implies_docker(workdir: Path):
    env = base_env(INDEX_FROM_TAGS_COUNT="2", INDEX_FROM_TAGS_0="{version}-amd64", INDEX_FROM_TAGS_1="{version}-arm64")
    (workdir / "package.json").write_text("{}")  # another kind's marker: the variable decides
    config = load_config(env, workdir)
    assert config.package_type == "docker"
    assert config.docker.index_from_tags == ("{version}-amd64", "{version}-arm64")
    assert load_config(base_env(INDEX_FROM_TAGS="a, b c"), workdir).docker.index_from_tags == ("a", "b", "c")


@pytest.mark.parametrize("variable", ["LOCAL_IMAGE", "IMAGE_ARCHIVE"])
def test_index_from_tags_with_a_local_image_is_refused(workdir: Path, variable: str):
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(INDEX_FROM_TAGS="1.0-amd64", **{variable: "x"}), workdir)
    assert caught.value.message == (
        f"INDEX_FROM_TAGS and {variable} are both set: INDEX_FROM_TAGS ties images already pushed to the registry "
        f"into one index; push each image in its own step, then run the index step without {variable}."
    )

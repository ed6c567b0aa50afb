"""Damaged and hostile image archives: every blob is checked while it streams (its digest, a
layer's diff id against the config), and a mismatch ends the push before any manifest or tag is
written; digests are checked for their form before they are used as paths or in URLs."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from pipe.auth import Credentials
from pipe.config import load_config
from pipe.containers.archive import open_archive
from pipe.errors import ConfigError, InputError, RegistryError
from pipe.http import new_session
from tests.conftest import base_env
from tests.fakehttp import ScriptedTransport
from tests.oci.images import layer_tar, write_tar
from tests.unit.test_cleanup_kinds import INDEX, FakeDistribution, run_image_cleanup
from tests.unit.test_oci_push import (
    BASE,
    RANDOM,
    TEXT,
    FakeRegistry,
    docker_save,
    publish_archive,
    push,
    sha,
    writer,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def lying_docker_save(path: Path, claimed: list[bytes], stored: list[bytes]) -> Path:
    """A `docker save` whose config lists the diff ids of `claimed` but stores `stored`."""
    docker_save(path, stored)
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in claimed]}}).encode()
    files = {f"{sha(config)[7:]}.json": config}
    files |= {f"layer{i}/layer.tar": data for i, data in enumerate(stored)}
    names = [f"layer{i}/layer.tar" for i in range(len(stored))]
    files["manifest.json"] = json.dumps([{"Config": f"{sha(config)[7:]}.json", "Layers": names}]).encode()
    return write_tar(path, files)


def oci_layout(
    folder: Path,
    layers: list[tuple[bytes, str]],
    diff_ids: list[str],
    ref_names: tuple[str, ...] = ("1.0.0",),
    index_digest: str | None = None,
) -> Path:
    """An OCI layout folder: `layers` as (stored bytes, media type), the config listing `diff_ids`."""
    config = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    config_bytes = config.encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": kind, "digest": sha(data), "size": len(data)} for data, kind in layers],
    }).encode()  # fmt: skip
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in [config_bytes, manifest, *(data for data, _ in layers)]:
        (blobs / sha(data)[7:]).write_bytes(data)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": index_digest or sha(manifest), "size": len(manifest)}
    index = {"schemaVersion": 2, "manifests": [
        descriptor | {"annotations": {"org.opencontainers.image.ref.name": name}} for name in ref_names
    ]}  # fmt: skip
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return folder


def push_fails(fake: FakeRegistry, archive: Path, tmp_path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        push(fake, archive, tmp_path)
    assert fake.manifests.get("acme/widget", {}) == {}, "a manifest was written"
    return caught.value


# --- layers that are not what the config says ---------------------------------------------------


@pytest.mark.parametrize(
    "stored", [TEXT + b"\0" * 512, RANDOM[:1000] + bytes(1000) + RANDOM[2000:]], ids=["compressed", "as-is"]
)
def test_a_docker_save_layer_that_does_not_match_its_diff_id_is_refused(tmp_path, stored):
    """The pipe gzips text layers (checked while compressing) and pushes random ones as they are
    (checked while uploading): either way, no manifest, no tag."""
    original = TEXT if stored.startswith(TEXT) else RANDOM
    assert stored != original
    archive = lying_docker_save(tmp_path / "image.tar", [original], [stored])
    error = push_fails(FakeRegistry(), archive, tmp_path)
    assert error.message.startswith(f"layer {sha(original)[:19]}… of IMAGE_ARCHIVE is damaged: its bytes hash to")
    assert "nothing was tagged" in error.message


def test_an_oci_layer_that_unpacks_to_another_diff_id_is_refused(tmp_path):
    """The compressed bytes match their digest (the registry would take them), but they unpack
    to another layer than the config lists: pulls of such an image fail."""
    compressed = gzip.compress(RANDOM, mtime=0)
    layout = oci_layout(tmp_path / "layout", [(compressed, GZIP_LAYER)], [sha(TEXT)])
    error = push_fails(FakeRegistry(), layout, tmp_path)
    assert error.message.startswith(f"layer {sha(compressed)[:19]}… of IMAGE_ARCHIVE is damaged: it unpacks to ")
    assert sha(RANDOM) in error.message and sha(TEXT) in error.message


def test_an_oci_layer_file_that_does_not_match_its_digest_is_refused(tmp_path):
    compressed = gzip.compress(RANDOM, mtime=0)
    layout = oci_layout(tmp_path / "layout", [(compressed, GZIP_LAYER)], [sha(RANDOM)])
    path = layout / "blobs" / "sha256" / sha(compressed)[7:]
    path.write_bytes(gzip.compress(RANDOM[::-1], mtime=0)[: len(compressed)].ljust(len(compressed), b"\0"))
    error = push_fails(FakeRegistry(), layout, tmp_path)
    assert "its bytes hash to" in error.message


def test_a_sound_oci_layout_still_pushes_with_its_layers_checked(tmp_path):
    compressed = gzip.compress(TEXT, mtime=0)
    layout = oci_layout(
        tmp_path / "layout", [(compressed, GZIP_LAYER), (RANDOM, GZIP_LAYER[:-5])], [sha(TEXT), sha(RANDOM)]
    )
    fake = FakeRegistry()
    result, _ = push(fake, layout, tmp_path)
    assert fake.blobs["acme/widget"][sha(compressed)] == compressed
    assert result.digest in {sha(body) for body, _ in fake.manifests["acme/widget"].values()}


# --- digests, JSON and shapes from outside ---------------------------------------------------------


def test_an_index_digest_that_climbs_out_of_the_layout_is_refused(tmp_path):
    secret = tmp_path / "outside"
    secret.write_text("not for the registry")
    layout = oci_layout(
        tmp_path / "layout", [(RANDOM, GZIP_LAYER[:-5])], [sha(RANDOM)], index_digest="sha256:../../../outside"
    )
    with pytest.raises(InputError) as caught, open_archive(layout):
        pass
    assert caught.value.message == (
        "IMAGE_ARCHIVE is damaged: index.json names the digest 'sha256:../../../outside', which is not "
        "sha256:<64 hex digits> or sha512:<128>: re-create the archive."
    )


def test_a_docker_save_config_that_is_not_json_is_refused(tmp_path):
    files = {"cfg.json": b"\xff not json", "manifest.json": json.dumps([{"Config": "cfg.json", "Layers": []}]).encode()}
    with pytest.raises(InputError) as caught, open_archive(write_tar(tmp_path / "image.tar", files)):
        pass
    assert caught.value.message.startswith("IMAGE_ARCHIVE is damaged: the image config cfg.json is not JSON (")


def test_a_docker_save_manifest_of_the_wrong_shape_is_refused(tmp_path):
    files = {"manifest.json": json.dumps([{"Config": 7, "Layers": "x"}]).encode()}
    with pytest.raises(InputError, match="manifest.json names no Config file and Layers list"):
        with open_archive(write_tar(tmp_path / "image.tar", files)):
            pass


def test_an_oci_layout_with_two_tags_on_one_image_is_pushed_once(tmp_path):
    """What `skopeo copy … oci:L:1.0.0` then `oci:L:latest` writes: one image, listed twice."""
    layout = oci_layout(tmp_path / "layout", [(RANDOM, GZIP_LAYER[:-5])], [sha(RANDOM)], ref_names=("1.0.0", "latest"))
    with open_archive(layout) as image:
        assert len(image.manifests) == 1 and not image.multi_platform
        assert image.ref_names == ("1.0.0", "latest")
    fake = FakeRegistry()
    push(fake, layout, tmp_path)
    blob_puts = [path for method, path in fake.calls if method == "PUT" and "/blobs/" in path]
    assert len(blob_puts) == 2  # the layer and the config, once


def test_an_image_archive_that_is_a_device_says_so(tmp_path):
    with pytest.raises(InputError) as caught, open_archive(Path("/dev/null")):
        pass
    assert "'/dev/null' is not a regular file or a folder" in caught.value.message


# --- variables -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["1.0.0-amd64", "1.0.0-amd64"], "INDEX_FROM_TAGS names 1.0.0-amd64 more than once"),
        (["1.0.0-amd64", " "], "INDEX_FROM_TAGS has an empty entry (entry 2 of 2)"),
    ],
)
def test_index_from_tags_with_a_duplicate_or_an_empty_entry_is_refused(tmp_path, items, expected):
    env = base_env(PACKAGE_TYPE="docker", INDEX_FROM_TAGS_COUNT=str(len(items)))
    env |= {f"INDEX_FROM_TAGS_{i}": item for i, item in enumerate(items)}
    with pytest.raises(ConfigError) as caught:
        load_config(env, tmp_path)
    assert caught.value.message.startswith(expected)


def test_index_from_tags_duplicates_in_one_string_are_refused_too(tmp_path):
    with pytest.raises(ConfigError, match="names a-amd64 more than once"):
        load_config(base_env(PACKAGE_TYPE="docker", INDEX_FROM_TAGS="a-amd64 a-arm64 a-amd64"), tmp_path)


@pytest.mark.parametrize("url", ["user:pw@crg.example", "https://user:pw@/x", "ftp://user:pw@x/"])
def test_a_registry_url_with_user_info_gets_one_consistent_message(tmp_path, url):
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(PACKAGE_TYPE="npm", REGISTRY_URL=url), tmp_path)
    assert caught.value.message.startswith("REGISTRY_URL must not contain credentials")
    assert "pw" not in caught.value.message


# --- tokens beyond ASCII ----------------------------------------------------------------------------


def test_a_token_beyond_ascii_is_sent_as_utf_8_basic(tmp_path):
    """Basic as RFC 7617 and docker send it (UTF-8), where requests' own pair sends latin-1."""
    credentials = Credentials("pipe-user", "tökén-ünïcode")
    transport = ScriptedTransport([401])
    session = new_session(auth=credentials.as_requests_auth(), transport=transport)
    assert session.get(BASE).status_code == 401
    assert transport.requests[0].headers["Authorization"] == credentials.basic_header
    assert credentials.basic_header == "Basic " + base64.b64encode("pipe-user:tökén-ünïcode".encode()).decode()


def test_a_token_the_registry_refuses_is_one_error_about_the_credentials(tmp_path):
    docker_save(tmp_path / "image.tar", [layer_tar("a.txt", b"a")])
    with pytest.raises(RegistryError) as caught:
        publish_archive(FakeRegistry(), tmp_path, token="tökén-ünïcode")
    assert caught.value.status == 401
    assert "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN" in caught.value.message


def test_a_config_that_does_not_match_its_digest_is_refused(tmp_path):
    layout = oci_layout(tmp_path / "layout", [(RANDOM, GZIP_LAYER[:-5])], [sha(RANDOM)])
    config = next(p for p in (layout / "blobs" / "sha256").iterdir() if b"rootfs" in p.read_bytes())
    config.write_bytes(config.read_bytes().replace(b"amd64", b"arm64"))
    with pytest.raises(InputError, match="hashes to"), open_archive(layout):
        pass


# --- references from the registry's own answers ------------------------------------------------------


def test_a_reference_that_would_change_the_url_is_never_sent(tmp_path):
    fake = FakeRegistry()
    client = writer(fake)
    for reference in ("../other/manifests/1.0.0", "1.0.0#x", "1.0.0?y", "sha256:../../x", "%2e%2e"):
        with pytest.raises(RegistryError, match="is not a valid tag or digest"):
            client.get_manifest(reference)
    with pytest.raises(RegistryError, match="is not a valid digest"):
        client.blob_exists("1.0.0")
    assert fake.requests == []


def test_cleanup_skips_a_listed_tag_and_an_index_child_that_are_not_references(tmp_path):
    """A hostile registry lists a tag `../x` and an index naming `sha256:../../victim`: neither is
    read nor deleted by URL; the rest of the cleanup goes on."""
    registry = FakeDistribution()
    registry.image("2.0.0", "2024-01-01T00:00:00Z")
    child = registry.image(None, "2020-01-01T00:00:00Z")
    index = registry.add(
        {"mediaType": INDEX, "manifests": [{"digest": child}, {"digest": "sha256:../../victim"}]}, "sha-old"
    )
    registry.tags["../x"] = index
    publication = run_image_cleanup(registry, tmp_path, DELETE_MATCHING="sha-*")
    deletes = [path for method, path in registry.calls if method == "DELETE"]
    assert deletes == [f"manifests/{child}", f"manifests/{index}"]
    assert publication.variables["DELETED_VERSIONS"] == "sha-old"
    assert not any("victim" in path or "../" in path for _, path in registry.calls)

"""The native push protocol and its auth, against an in-memory registry plugged in as the HTTP
session's transport adapter (the seam): HEAD/mount/POST/PUT/PATCH, manifests and tags, Bearer
and Basic challenges, token refresh, retries with Retry-After. The real registries are in
tests/integration/test_oci_push.py."""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import pipe.containers.publish as container_publisher
from pipe.auth import Credentials
from pipe.config import Config, load_config
from pipe.containers import oci_push
from pipe.containers.archive import Layer, open_archive, read_layout, read_tar_stream
from pipe.containers.compress import prepare_layer
from pipe.containers.mediatypes import OCI_LAYER
from pipe.containers.oci_push import ImagePusher, known_layers, point_tags, verify_tags
from pipe.containers.registry import RegistryWriter
from pipe.errors import RegistryError
from pipe.http import RetryPolicy
from pipe.masking import SecretMasker
from tests.conftest import base_env
from tests.fakehttp import FakeTransport, Sent
from tests.oci.images import layer_tar, write_tar

BASE = "https://crg.example"
REALM = "https://auth.example/token"
USER, TOKEN = "pipe-user", "ATBB-secret-token-123"
LOG = logging.getLogger("test.oci")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry(FakeTransport):
    """A distribution-API registry in memory, answering as the session's transport adapter."""

    def __init__(self, auth: str = "bearer", push_allowed: bool = True, monolithic_limit: int | None = None):
        super().__init__()
        self.auth = auth
        self.push_allowed = push_allowed
        self.monolithic_limit = monolithic_limit
        self.blobs: dict[str, dict[str, bytes]] = {}  # repository → digest → bytes
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.uploads: dict[str, bytearray] = {}
        # Upload ids never repeat: ids made from the count of open uploads were reused after a
        # PUT closed one, and clashed between uploads started in parallel.
        self.upload_ids = itertools.count()
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0
        self.challenges = 0  # 401s sent
        # One run's configuration per token, so that every client of a test shares one run.
        self.config: Config | None = None

    def handle(self, sent: Sent):
        if urlsplit(sent.url).netloc == "auth.example":
            return self.token(sent)
        denied = self.check_auth(sent)
        if denied is not None:
            return denied
        return self.route(sent)

    # --- auth -----------------------------------------------------------------------------

    def token(self, sent: Sent):
        if sent.headers.get("Authorization") != Credentials(USER, TOKEN).basic_header:
            return 401, {"details": "incorrect username or password"}, {}
        self.tokens_issued += 1
        token = f"issued-token-{self.tokens_issued}-for-{' '.join(sent.query.get('scope', []))}"
        self.valid_tokens.add(token)
        return 200, {"token": token}, {}

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def check_auth(self, sent: Sent):
        given = sent.headers.get("Authorization", "")
        writes = sent.method in ("POST", "PUT", "PATCH", "DELETE")
        if self.auth == "basic":
            if given == Credentials(USER, TOKEN).basic_header:
                return None
            return self.unauthorized('Basic realm="fake"')
        token = given.removeprefix("Bearer ")
        if token in self.valid_tokens and (not writes or (self.push_allowed and "push" in token)):
            return None
        return self.unauthorized(f'Bearer realm="{REALM}",service="crg.example"')

    def unauthorized(self, challenge: str):
        self.challenges += 1
        body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        return 401, body, {"WWW-Authenticate": challenge}

    # --- API ------------------------------------------------------------------------------

    def route(self, sent: Sent):
        listing = re.match(r"^/v2/(.+)/tags/list$", sent.path)
        if listing:
            tags = [ref for ref in self.manifests.get(listing.group(1), {}) if not ref.startswith("sha256:")]
            return 200, {"name": listing.group(1), "tags": sorted(tags)}, {}
        repository, kind, uploading, rest = re.match(
            r"^/v2/(.+)/(blobs|manifests)/(uploads/)?(.*)$", sent.path
        ).groups()
        if kind == "manifests":
            return self.manifest(sent, repository, rest)
        blobs = self.blobs.setdefault(repository, {})
        if not uploading:
            if rest in blobs:
                return 200, blobs[rest] if sent.method == "GET" else b"", {}
            return 404, b"", {}
        if sent.method == "POST":
            source = sent.query.get("from", [None])[0]
            if source and sent.query["mount"][0] in self.blobs.get(source, {}):
                blobs[sent.query["mount"][0]] = self.blobs[source][sent.query["mount"][0]]
                return 201, b"", {}
            upload = f"u{next(self.upload_ids)}"
            self.uploads[upload] = bytearray()
            return 202, b"", {"Location": f"/v2/{repository}/blobs/uploads/{upload}?_state=s"}
        if sent.method == "PATCH":
            self.uploads[rest].extend(sent.body)
            return 202, b"", {"Location": f"/v2/{repository}/blobs/uploads/{rest}?_state=s"}
        if self.monolithic_limit is not None and len(sent.body) > self.monolithic_limit:
            return 413, b"", {}
        content = bytes(self.uploads.pop(rest)) + sent.body
        digest = sent.query["digest"][0]
        if sha(content) != digest:
            return 400, {"errors": [{"code": "DIGEST_INVALID", "message": "bad"}]}, {}
        blobs[digest] = content
        return 201, b"", {}

    def manifest(self, sent: Sent, repository: str, reference: str):
        manifests = self.manifests.setdefault(repository, {})
        if sent.method == "PUT":
            manifests[reference] = manifests[sha(sent.body)] = (sent.body, sent.headers["Content-Type"])
            return 201, b"", {"Docker-Content-Digest": sha(sent.body)}
        if reference not in manifests:
            return 404, b"", {}
        body, media_type = manifests[reference]
        headers = {"Docker-Content-Digest": sha(body), "Content-Type": media_type}
        return 200, body if sent.method == "GET" else b"", headers


# --- fixtures ----------------------------------------------------------------------------------


def docker_save(path: Path, layers: list[bytes]) -> Path:
    """A legacy `docker save` tarball with these uncompressed layer tars."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
    }
    config_bytes = json.dumps(config).encode()
    files = {f"{sha(config_bytes)[7:]}.json": config_bytes}
    names = []
    for index, layer in enumerate(layers):
        names.append(f"layer{index}/layer.tar")
        files[names[-1]] = layer
    files["manifest.json"] = json.dumps([{"Config": f"{sha(config_bytes)[7:]}.json", "Layers": names}]).encode()
    return write_tar(path, files)


TEXT = layer_tar("text.txt", b"".join(b"line %d of some text\n" % i for i in range(20000)))
RANDOM = layer_tar("random.bin", hashlib.shake_256(b"seed").digest(300_000))


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


def run_config(fake: FakeRegistry, token: str = TOKEN) -> Config:
    """The configuration of one run against `fake`: every client made from it shares the run's
    session and authorization."""
    env = base_env(
        PACKAGE_TYPE="docker", REGISTRY_URL=BASE, BITBUCKET_PACKAGES_USERNAME=USER, BITBUCKET_PACKAGES_TOKEN=token
    )
    return replace(load_config(env, Path.cwd()), transport=fake)


def writer(
    fake: FakeRegistry, repository: str = "acme/widget", sleeps: list | None = None, config: Config | None = None
) -> RegistryWriter:
    if config is None:
        fake.config = fake.config or run_config(fake)
        config = fake.config
    client = RegistryWriter.from_config(config, LOG, SecretMasker(), repository)
    client.session.policy = RetryPolicy(attempts=4, total_seconds=60, backoff=0.1, jitter=0)
    client.session.sleep = (sleeps if sleeps is not None else []).append
    return client


def push(fake: FakeRegistry, archive: Path, tmp_path: Path, tags=("1.0.0", "latest"), **kwargs):
    client = kwargs.pop("client", None) or writer(fake)
    before = {tag: client.tag_digest(tag) for tag in tags}
    with open_archive(archive) as image:
        known = known_layers(client, [tag for tag in tags if before[tag]])
        with ImagePusher(client, LOG, tmp_path, known, **kwargs) as pusher:
            result = pusher.push(image)
    unchanged = point_tags(client, result, tags, before, LOG)
    verify_tags(client, tags, result.digest)
    return result, unchanged


def writes(fake: FakeRegistry) -> list[tuple[str, str]]:
    return [(method, path) for method, path in fake.calls if method in ("POST", "PUT", "PATCH")]


# --- the protocol --------------------------------------------------------------------------------


def test_fresh_push_uploads_each_blob_once_and_puts_the_manifest_per_tag(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    result, unchanged = push(registry, archive, tmp_path)

    stored = registry.blobs["acme/widget"]
    manifest = json.loads(registry.manifests["acme/widget"]["1.0.0"][0])
    assert registry.manifests["acme/widget"]["latest"][1] == "application/vnd.oci.image.manifest.v1+json"
    assert result.digest == sha(registry.manifests["acme/widget"]["1.0.0"][0])
    text, random = manifest["layers"]
    # Text is gzip'd (and gunzips to the layer), random bytes go as they are, under their diff id.
    assert text["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert gzip.decompress(stored[text["digest"]]) == TEXT
    assert random == {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(RANDOM), "size": len(RANDOM)}
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    blob_puts = [path for method, path in writes(registry) if method == "PUT" and "/blobs/" in path]
    assert len(blob_puts) == 3  # two layers and the config, whatever the number of tags
    manifest_puts = [path for method, path in writes(registry) if "/manifests/" in path]
    # One PUT per tag; the tags are written at once, so in no fixed order.
    assert sorted(manifest_puts) == ["/v2/acme/widget/manifests/1.0.0", "/v2/acme/widget/manifests/latest"]
    assert unchanged == []


def test_rerun_uploads_nothing_and_puts_no_manifest(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    first, _ = push(registry, archive, tmp_path)
    registry.requests.clear()
    again, unchanged = push(registry, archive, tmp_path)
    assert again.digest == first.digest
    assert unchanged == ["1.0.0", "latest"]
    assert writes(registry) == []
    assert again.stats.compressed == 0  # known from the tag's manifest: not compressed again


def test_same_layers_compress_to_the_same_digest_in_a_fresh_repository(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    first, _ = push(registry, archive, tmp_path)
    other = writer(registry, "acme/other")
    second, _ = push(registry, archive, tmp_path, client=other)
    assert second.digest == first.digest
    assert second.stats.compressed == 1


def push_on_base(fake: FakeRegistry, archive: Path, tmp_path: Path, base: str = "acme/widget"):
    """Push `archive` to acme/app, knowing the layers of `base`:1.0.0 (its Dockerfile's FROM)."""
    client = writer(fake, "acme/app")
    known = known_layers(writer(fake, base), ["1.0.0"], source=base)
    with open_archive(archive) as image, ImagePusher(client, LOG, tmp_path, known) as pusher:
        return pusher.push(image)


def test_base_image_layers_are_mounted_from_its_repository_not_uploaded(registry, tmp_path):
    push(registry, docker_save(tmp_path / "base.tar", [TEXT, RANDOM]), tmp_path)
    registry.requests.clear()
    child = docker_save(tmp_path / "child.tar", [TEXT, RANDOM, layer_tar("app.txt", b"the app")])
    result = push_on_base(registry, child, tmp_path)
    assert result.stats.mounted == 2 and result.stats.uploaded == 2  # the new layer and the config
    mounts = [path for method, path in writes(registry) if "mount=" in path]
    assert len(mounts) == 2 and all("from=acme%2Fwidget" in path for path in mounts)
    assert result.stats.compressed == 1  # only the new layer: the base's are taken as they are there
    base_layers = json.loads(registry.manifests["acme/widget"]["1.0.0"][0])["layers"]
    assert json.loads(result.manifest)["layers"][:2] == base_layers


def test_a_refused_mount_falls_back_to_an_upload(registry, tmp_path):
    push(registry, docker_save(tmp_path / "base.tar", [RANDOM]), tmp_path)
    registry.blobs["acme/widget"].pop(sha(RANDOM))  # the registry lost it: it opens an upload instead
    result = push_on_base(registry, docker_save(tmp_path / "child.tar", [RANDOM]), tmp_path)
    assert result.stats.mounted == 0 and result.stats.uploaded == 2
    assert registry.blobs["acme/app"][sha(RANDOM)] == RANDOM


def test_chunked_upload_when_the_registry_refuses_a_monolithic_body(tmp_path):
    fake = FakeRegistry(monolithic_limit=100_000)
    archive = docker_save(tmp_path / "image.tar", [RANDOM])
    result, _ = push(fake, archive, tmp_path)
    assert fake.blobs["acme/widget"][sha(RANDOM)] == RANDOM
    # Layer and config go up in parallel, so which one gets the first upload id is chance: the
    # layer's upload is the one that was patched, once, and then closed with a PUT.
    patched = [path.split("?")[0] for method, path in fake.calls if method == "PATCH"]
    assert len(patched) == 1
    assert [method for method, path in fake.calls if path.split("?")[0] == patched[0]] == ["PATCH", "PUT"]
    assert result.stats.uploaded == 2


def test_server_errors_are_retried_after_retry_after_starting_with_a_head(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [RANDOM])
    registry.fail_next("PUT", r"/blobs/uploads/", 503, headers={"Retry-After": "7"})
    sleeps: list[float] = []
    push(registry, archive, tmp_path, client=writer(registry, sleeps=sleeps))
    assert 7 in sleeps
    heads = [path for method, path in registry.calls if method == "HEAD" and "/blobs/" in path]
    assert len(heads) == 3  # layer, config, and the layer again before its retry


def test_rate_limit_that_does_not_end_is_reported(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [RANDOM])
    registry.fail_next("POST", r"/blobs/uploads/", 429, headers={"Retry-After": "1"}, times=10)
    with pytest.raises(RegistryError) as caught:
        push(registry, archive, tmp_path, workers=1)
    assert caught.value.message == (
        f"starting an upload to acme/widget failed: {BASE}/v2/acme/widget/blobs/uploads/ answered 429: "
        "the registry is rate-limiting: re-run the step later."
    )


def test_name_unknown_says_to_create_the_package(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [RANDOM])
    body = {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
    registry.fail_next("HEAD", r"/blobs/", 404, times=2)
    registry.fail_next("POST", r"/blobs/uploads/", 404, body=body, times=10)
    with pytest.raises(RegistryError) as caught:
        push(registry, archive, tmp_path, workers=1)
    assert caught.value.message.endswith(
        "answered 404 (NAME_UNKNOWN: repository name not known to registry): create the package 'widget' in "
        "Bitbucket Packages and link it to this repository, then re-run the step."
    )


# --- auth --------------------------------------------------------------------------------------


def publish_archive(fake: FakeRegistry, workdir: Path, token: str = TOKEN, **variables: str):
    """A whole run of the pipe's container publisher: IMAGE_ARCHIVE pushed as 1.0.0 and latest."""
    env = base_env(
        PACKAGE_TYPE="docker",
        REGISTRY_URL=BASE,
        BITBUCKET_PACKAGES_USERNAME=USER,
        BITBUCKET_PACKAGES_TOKEN=token,
        IMAGE_ARCHIVE="image.tar",
        **({"TAGS": "1.0.0 latest"} | variables),
    )
    config = replace(load_config(env, workdir), transport=fake)
    return container_publisher.publish(config, LOG, SecretMasker())


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_a_run_meets_the_challenge_once_and_every_client_shares_its_token(tmp_path, auth):
    """The tag list, the tags' digests, the layer HEADs and the uploads of one run (reader and
    writer) go out with one authorization: one 401, at most one token."""
    fake = FakeRegistry(auth=auth)
    docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    publish_archive(fake, tmp_path)
    # A Basic registry takes the credentials sent with the first request: not even one 401. A token
    # registry challenges only the run's first reads, sent together (the tag list and the manifests
    # of 1.0.0 and latest); one token answers them all.
    assert fake.challenges in ((1, 2, 3) if auth == "bearer" else (0,))
    assert fake.tokens_issued == (1 if auth == "bearer" else 0)
    # Unchanged, pushed again by a new run: again one token for the whole run.
    challenged = fake.challenges
    publish_archive(fake, tmp_path)
    assert fake.challenges - challenged in ((1, 2, 3) if auth == "bearer" else (0,))
    assert fake.tokens_issued == (2 if auth == "bearer" else 0)


def test_a_token_refused_to_the_run_s_first_reads_is_reported_as_the_token_endpoint_s_refusal(tmp_path):
    """The tag list and the manifests, sent together, all meet the challenge: whichever thread
    asks for the token, the run reports the token endpoint's answer, not a bare 401."""
    fake = FakeRegistry()
    docker_save(tmp_path / "image.tar", [TEXT])
    with pytest.raises(RegistryError) as caught:
        publish_archive(fake, tmp_path, token="wrong")
    assert caught.value.message.startswith("reading the tags of acme/widget (token request) failed: ")
    assert not any(method in ("POST", "PUT") for method, _ in fake.calls)


def authorized(fake: FakeRegistry) -> list[tuple[str, str]]:
    """The requests `fake` answered with more than a challenge: those that carried its token."""
    return [
        (sent.method, sent.path_and_query)
        for sent in fake.requests
        if sent.headers.get("Authorization", "").removeprefix("Bearer ") in fake.valid_tokens
    ]


def test_an_unchanged_re_push_reads_the_tags_once_and_writes_nothing(tmp_path):
    """The tag list, then each planned tag's manifest once (no HEAD before the GET, no blob, no
    config, no read-back of tags that did not move): the image is known by its config."""
    fake = FakeRegistry()
    docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    first = publish_archive(fake, tmp_path)
    fake.requests.clear()
    again = publish_archive(fake, tmp_path)
    assert again.variables["IMAGE_DIGEST"] == first.variables["IMAGE_DIGEST"]
    assert "nothing changed" in again.summary
    assert sorted(authorized(fake)) == [
        ("GET", "/v2/acme/widget/manifests/1.0.0"),
        ("GET", "/v2/acme/widget/manifests/latest"),
        ("GET", "/v2/acme/widget/tags/list?n=1000"),
    ]
    assert fake.tokens_issued == 2  # one per run


class SlowTagList(FakeRegistry):
    """A registry whose tag list answers only once a manifest read has arrived (or after 10 s)."""

    def __init__(self):
        super().__init__(auth="basic")
        self.manifest_read = threading.Event()
        self.waited_for_manifests: bool | None = None

    def route(self, sent: Sent):
        if "/manifests/" in sent.path and sent.method == "GET":
            self.manifest_read.set()
        if sent.path.endswith("/tags/list") and self.waited_for_manifests is None:
            self.waited_for_manifests = self.manifest_read.wait(timeout=10)
        return super().route(sent)


def test_the_planned_tags_manifests_are_read_while_the_tag_list_is(tmp_path):
    """An unchanged re-push needs one round trip of reads: the planned tags' manifests are not
    read after the tag list but with it (1.0.0 and latest are what TAGS names)."""
    docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    fake = FakeRegistry(auth="basic")
    publish_archive(fake, tmp_path)
    slow = SlowTagList()
    slow.blobs, slow.manifests = fake.blobs, fake.manifests
    again = publish_archive(slow, tmp_path)
    assert "nothing changed" in again.summary
    assert slow.waited_for_manifests is True
    assert sorted(slow.calls) == [
        ("GET", "/v2/acme/widget/manifests/1.0.0"),
        ("GET", "/v2/acme/widget/manifests/latest"),
        ("GET", "/v2/acme/widget/tags/list?n=1000"),
    ]


def publish_a_new_image_over(fake: FakeRegistry, tmp_path: Path, **variables: str) -> None:
    """1.0.0 and latest pushed with one layer; then a second image (one more layer) published,
    whose requests alone `fake` keeps."""
    docker_save(tmp_path / "image.tar", [TEXT])
    publish_archive(fake, tmp_path)
    docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    fake.requests.clear()
    publish_archive(fake, tmp_path, **variables)


def test_a_moved_tag_is_written_and_read_back_but_an_unchanged_one_is_not(tmp_path):
    fake = FakeRegistry()
    publish_a_new_image_over(fake, tmp_path, TAGS="1.0.1 latest")
    heads = [path for method, path in fake.calls if method == "HEAD" and "/manifests/" in path]
    puts = [path for method, path in fake.calls if method == "PUT" and "/manifests/" in path]
    assert sorted(puts) == ["/v2/acme/widget/manifests/1.0.1", "/v2/acme/widget/manifests/latest"]
    assert sorted(heads) == sorted(puts)


def test_a_new_image_reads_the_config_behind_two_tags_once(tmp_path):
    """1.0.0 and latest on one manifest: its config is read once to learn the known layers."""
    fake = FakeRegistry()
    publish_a_new_image_over(fake, tmp_path)
    config_reads = [path for method, path in authorized(fake) if method == "GET" and "/blobs/" in path]
    assert len(config_reads) == 1
    manifest_reads = [path for method, path in authorized(fake) if method == "GET" and "/manifests/" in path]
    assert sorted(set(manifest_reads)) == sorted(manifest_reads)  # each tag's manifest read once


def test_push_asks_for_a_pull_push_token_and_refreshes_it_once_when_it_expires(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    client = writer(registry)
    assert client.tag_digest("1.0.0") is None
    assert registry.tokens_issued == 1
    registry.expire_tokens()  # a long push outlives its token
    push(registry, archive, tmp_path, client=client)
    assert registry.tokens_issued == 2
    token_calls = [path for method, path in registry.calls if path.startswith("/token")]
    assert all("scope=repository%3Aacme%2Fwidget%3Apull%2Cpush" in path for path in token_calls)
    assert client.masker.mask("issued-token-2-for-repository:acme/widget:pull,push") == "[secure]"


def test_401_with_a_fresh_token_is_a_permission_problem_not_a_loop(tmp_path):
    fake = FakeRegistry(push_allowed=False)
    archive = docker_save(tmp_path / "image.tar", [RANDOM])
    with pytest.raises(RegistryError) as caught:
        push(fake, archive, tmp_path, workers=1)
    assert caught.value.message == (
        f"starting an upload to acme/widget failed: {BASE}/v2/acme/widget/blobs/uploads/ answered 401 "
        "(UNAUTHORIZED: authentication required): the credentials were accepted but their token does not allow "
        "pushing to acme/widget, even freshly issued: this is a permission problem: give the user write access to "
        "the package (and link the package to this repository)."
    )
    assert fake.tokens_issued <= 3


def test_parallel_uploads_refused_with_a_fresh_token_fetch_no_more_tokens(tmp_path):
    """Four uploads refused at once: one fresh token is fetched, and its refusal ends them all
    (before, each thread that used the newest token fetched yet another)."""
    fake = FakeRegistry(push_allowed=False)
    layers = [layer_tar(f"file{i}.bin", hashlib.shake_256(b"%d" % i).digest(200_000)) for i in range(6)]
    archive = docker_save(tmp_path / "image.tar", layers)
    with pytest.raises(RegistryError, match="permission problem"):
        push(fake, archive, tmp_path, workers=4)
    assert fake.tokens_issued == 2  # the first token, and one fresh one after the refusal


def test_basic_challenge_is_answered_with_the_credentials(tmp_path):
    fake = FakeRegistry(auth="basic")
    archive = docker_save(tmp_path / "image.tar", [RANDOM])
    push(fake, archive, tmp_path)
    assert fake.tokens_issued == 0
    assert sha(RANDOM) in fake.blobs["acme/widget"]


def test_refused_basic_credentials_are_not_retried(tmp_path):
    fake = FakeRegistry(auth="basic")
    client = writer(fake, config=run_config(fake, token="wrong"))
    with pytest.raises(RegistryError) as caught:
        client.blob_exists(sha(b"x"))
    assert caught.value.status == 401
    assert "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN" in caught.value.message
    assert len(fake.calls) == 1  # the credentials, sent with the first request, refused: no loop
    assert base64.b64encode(f"{USER}:{TOKEN}".encode()).decode() not in caught.value.message


# --- the CPU and the link, each a turn of its own ----------------------------------------------


class WatchedRegistry(FakeRegistry):
    """A fake registry that tells when a given blob has been stored."""

    def __init__(self, digest: str):
        super().__init__()
        self.digest = digest
        self.stored = threading.Event()

    def route(self, sent: Sent):
        answer = super().route(sent)
        if any(self.digest in blobs for blobs in self.blobs.values()):
            self.stored.set()
        return answer


def test_a_layer_that_goes_as_it_is_uploads_while_others_wait_to_compress(tmp_path):
    """Compressing takes the CPU, uploading the link: random bytes (pushed uncompressed) go up while
    every compression turn is taken, instead of queueing behind the text layers' compression."""
    fake = WatchedRegistry(sha(RANDOM))
    archive = docker_save(tmp_path / "image.tar", [TEXT, layer_tar("more.txt", TEXT), RANDOM])
    with open_archive(archive) as image, ImagePusher(writer(fake), LOG, tmp_path) as pusher:
        taken = 0
        while pusher.compressing.acquire(blocking=False):
            taken += 1
        pushing = ThreadPoolExecutor(1).submit(pusher.push, image)
        try:
            assert fake.stored.wait(timeout=30), "the random layer waited for the compressions"
            assert not any(method == "PUT" and "/manifests/" in path for method, path in fake.calls)
        finally:
            for _ in range(taken):
                pusher.compressing.release()
        result = pushing.result(timeout=30)
    assert taken >= 1
    assert result.stats.compressed == 2 and result.stats.uploaded == 4


# --- layers started while an engine export is still arriving -------------------------------------


def stream_push(fake: FakeRegistry, archive: Path, tmp_path: Path, client=None):
    """Push `archive` as an engine export is pushed: read as a stream, each layer started the
    moment it has passed, then the whole image."""
    client = client or writer(fake)
    # As a run does, the registry is read before the push: the same link, the same gzip level,
    # the same digests as the push from disk.
    client.tag_digest("1.0.0")
    diff_ids = {sha(TEXT), sha(RANDOM)}
    started = []
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    with ImagePusher(client, LOG, scratch, expected_layers=2) as pusher:

        def on_file(name, source, digest):
            pusher.raise_if_failed()
            if digest in diff_ids:
                started.append(name)
                pusher.start_layer(Layer(source, OCI_LAYER, digest, digest))

        with open(archive, "rb") as stream:
            files = read_tar_stream(stream, scratch, on_file)
        return started, pusher.push(read_layout(files, "the exported image"))


def test_layers_started_from_a_stream_are_pushed_once_with_the_same_digest(registry, tmp_path):
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    started, result = stream_push(registry, archive, tmp_path)
    assert started == ["layer0/layer.tar", "layer1/layer.tar"]
    blob_puts = [path for method, path in writes(registry) if method == "PUT" and "/blobs/" in path]
    assert len(blob_puts) == 3  # the two layers, started early, are not pushed again by push()
    # The same image as from the archive on disk: the same manifest, the same digest.
    (tmp_path / "disk").mkdir()
    from_disk, _ = push(FakeRegistry(), archive, tmp_path / "disk")
    assert result.digest == from_disk.digest


def test_a_layer_refused_while_the_stream_is_read_fails_the_push_with_its_reason(tmp_path):
    fake = FakeRegistry(push_allowed=False, auth="bearer")
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM, layer_tar("more.txt", b"more")])
    with pytest.raises(RegistryError, match="permission problem"):
        stream_push(fake, archive, tmp_path)
    assert not any(method == "PUT" for method, _ in fake.calls)


def docker25_save(path: Path, layers: list[bytes]) -> Path:
    """What `docker save` writes from Docker 25 on: an OCI layout (uncompressed layers under
    blobs/sha256/, index.json) with the legacy manifest.json beside it."""
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha(x), "size": len(x)} for x in layers],
    }).encode()  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest)}
    ]}  # fmt: skip
    blobs = {f"blobs/sha256/{sha(data)[7:]}": data for data in (*layers, config, manifest)}
    legacy = [{"Config": f"blobs/sha256/{sha(config)[7:]}", "Layers": [f"blobs/sha256/{sha(x)[7:]}" for x in layers]}]
    files = blobs | {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode(),
                     "manifest.json": json.dumps(legacy).encode()}  # fmt: skip
    return write_tar(path, files)


def test_a_docker_25_export_streams_like_a_legacy_one(registry, tmp_path):
    archive = docker25_save(tmp_path / "image.tar", [TEXT, RANDOM])
    started, result = stream_push(registry, archive, tmp_path)
    assert started == [f"blobs/sha256/{sha(TEXT)[7:]}", f"blobs/sha256/{sha(RANDOM)[7:]}"]
    blob_puts = [path for method, path in writes(registry) if method == "PUT" and "/blobs/" in path]
    assert len(blob_puts) == 3
    (tmp_path / "disk").mkdir()
    from_disk, _ = push(FakeRegistry(), archive, tmp_path / "disk")
    assert result.digest == from_disk.digest


def two_platform_layout(folder: Path, shared_layer: bytes) -> Path:
    """An OCI layout whose index holds an amd64 and an arm64 image sharing one uncompressed layer."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def store(data: bytes) -> str:
        (blobs / sha(data)[7:]).write_bytes(data)
        return sha(data)

    layer_digest = store(shared_layer)
    manifests = []
    for architecture in ("amd64", "arm64"):
        config = json.dumps(
            {"architecture": architecture, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": store(config),
                           "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(shared_layer)}],
            }
        ).encode()  # fmt: skip
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": store(manifest),
                "size": len(manifest),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def test_a_layer_two_platforms_share_is_compressed_once_and_pushed_whole(registry, tmp_path, monkeypatch):
    # Both platforms' jobs start at once; compressing the shared layer twice into one scratch file
    # used to truncate the file under the upload of the other (the registry then waited forever).
    prepared = []

    def counting_prepare(layer, *args):
        prepared.append(layer.diff_id)
        return prepare_layer(layer, *args)

    monkeypatch.setattr(oci_push, "prepare_layer", counting_prepare)
    layout = two_platform_layout(tmp_path / "layout", TEXT)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result, _ = push(registry, layout, scratch, tags=("1.0.0",))
    assert prepared == [sha(TEXT)]
    index = json.loads(result.manifest)
    layer_digests = set()
    for entry in index["manifests"]:
        manifest, _ = registry.manifests["acme/widget"][entry["digest"]]
        layer_digests.update(layer["digest"] for layer in json.loads(manifest)["layers"])
    assert len(layer_digests) == 1
    (digest,) = layer_digests
    assert sha(registry.blobs["acme/widget"][digest]) == digest
    assert gzip.decompress(registry.blobs["acme/widget"][digest]) == TEXT

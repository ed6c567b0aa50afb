"""INDEX_FROM_TAGS and multi-platform archives against the real registries (htpasswd and token
auth). The amd64 image is a real, runnable image built by the engine; the arm64 one is an OCI
layout with an arm64 config (as `docker buildx --output type=oci` writes it, with its provenance
attestation), so no emulation is needed. Results are checked by the registry's answers and by
`docker pull` + `docker run`, never by the pipe's word."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from tests.conftest import session_name
from tests.integration.test_oci_push import (  # noqa: F401 - token_registry is a fixture
    MANIFEST_ACCEPT,
    WRITER,
    build_and_save,
    docker_cli,
    pipe_env,
    pull_from_clean_state,
    run_pipe,
    token_registry,
    write_tar,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest"}
PROVENANCE = "https://slsa.dev/provenance/v0.2"
GREETING = "hello from the amd64 image"


# --- images ----------------------------------------------------------------------------------


def runnable_context(folder: Path) -> Path:
    """A FROM-scratch image that runs: this machine's dash and the two libraries it needs."""
    root = folder / "rootfs"
    for source, target in (
        ("/bin/dash", "bin/sh"),
        ("/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ):
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(source), root / target)
        (root / target).chmod(0o755)
    # Content of its own, so that no other run's image has the same id (and goes with it).
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "build-id").write_text(os.urandom(8).hex())
    (folder / "Dockerfile").write_text(f'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh", "-c", "echo {GREETING}"]\n')
    return folder


@pytest.fixture(scope="module")
def amd64_image(docker_engine, tmp_path_factory):
    """(image id, `docker save` tarball, engine tag) of a small runnable amd64 image."""
    root = tmp_path_factory.mktemp("index-image")
    tag = f"bbpp-index-src:{session_name('src')}"  # recorded: the session check sees a leftover
    image, archive = build_and_save(docker_engine, runnable_context(root / "context"), tag, root / "image.tar")
    yield image.id, archive, tag
    docker_engine.images.remove(image.id, force=True)


def buildx_layout(
    saved: Path, target: Path, platforms: list[str], attest: bool = True, compressed: bool = True
) -> dict[str, str]:
    """An OCI layout tar as `docker buildx build --output type=oci` writes it: index.json names one
    image index, which lists a manifest per platform (same layers, that platform's config) and,
    per platform, its provenance attestation (`unknown/unknown`). Returns the index digest and
    each platform's manifest digest. `compressed=False`: layers stored as plain tars
    (buildx's `compression=uncompressed`)."""
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    with tarfile.open(saved) as tar:
        entry = json.loads(tar.extractfile("manifest.json").read())[0]
        config = json.loads(tar.extractfile(entry["Config"]).read())
        layer_type = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compressed else "")
        pack = (lambda data: gzip.compress(data, mtime=0)) if compressed else (lambda data: data)
        layers = [{"mediaType": layer_type} | add(pack(tar.extractfile(name).read())) for name in entry["Layers"]]
    descriptors, digests = [], {}
    for platform in platforms:
        os_name, arch, *variant = platform.split("/")
        fields = {"architecture": arch, "os": os_name} | ({"variant": variant[0]} if variant else {})
        config_blob = {"mediaType": OCI_CONFIG} | add(json.dumps(config | fields).encode())
        image = add(json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_blob,
                                "layers": layers}).encode())  # fmt: skip
        digests[platform] = image["digest"]
        descriptors.append({"mediaType": OCI_MANIFEST} | image | {"platform": fields})
        if attest:
            descriptors.append(attestation(add, image["digest"]))
    index = add(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode())
    top = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_INDEX} | index]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(top).encode()}
    files |= {f"blobs/sha256/{digest.removeprefix('sha256:')}": data for digest, data in blobs.items()}
    write_tar(target, files)
    return {"index": index["digest"], **digests}


def attestation(add, subject: str) -> dict:
    """buildx's provenance manifest for the image `subject`, as its index lists it."""
    subjects = [{"name": "_", "digest": {"sha256": subject.removeprefix("sha256:")}}]
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": PROVENANCE,
                            "subject": subjects}).encode()  # fmt: skip
    layer = {"mediaType": "application/vnd.in-toto+json"} | add(statement)
    layer["annotations"] = {"in-toto.io/predicate-type": PROVENANCE}
    config = {"architecture": "unknown", "os": "unknown", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}  # fmt: skip
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG} | add(json.dumps(config).encode()), "layers": [layer]}  # fmt: skip
    return (
        {"mediaType": OCI_MANIFEST}
        | add(json.dumps(body).encode())
        | {
            "annotations": ATTESTATION | {"vnd.docker.reference.digest": subject},
            "platform": {"architecture": "unknown", "os": "unknown"},
        }
    )


# --- helpers ---------------------------------------------------------------------------------


class Repo:
    """One repository of a registry, and the pipe run against it."""

    def __init__(self, registry: str, user: str, token: str, image: str, workdir: Path, tmp_path: Path):
        self.registry, self.user, self.token, self.image = registry, user, token, image
        self.workdir, self.tmp_path = workdir, tmp_path
        self.reference = f"{registry}/acme/{image}"

    def run(self, **variables: str):
        outputs = self.tmp_path / "pipeline-variables"
        outputs.unlink(missing_ok=True)
        env = pipe_env(self.registry, self.user, self.token, self.image, self.tmp_path, **variables)
        return run_pipe(env, self.workdir, self.user, self.token)

    def push_source(self, git_tag: str, tag_template: str, archive: Path) -> None:
        result = self.run(BITBUCKET_TAG=git_tag, TAGS=tag_template, IMAGE_ARCHIVE=str(archive))
        assert result.code == 0, result.output

    def get(self, path: str, **headers: str) -> requests.Response:
        """GET from the registry as any client does: Basic auth, or a pull token when the
        registry answers with a Bearer challenge."""
        url = f"http://{self.registry}/v2/acme/{self.image}/{path}"
        response = requests.get(url, auth=(self.user, self.token), headers=headers, timeout=10)
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge.startswith("Bearer "):
            return response
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        scope = {"service": params["service"], "scope": f"repository:acme/{self.image}:pull"}
        token = requests.get(params["realm"], params=scope, auth=(self.user, self.token), timeout=10).json()["token"]
        return requests.get(url, headers=headers | {"Authorization": f"Bearer {token}"}, timeout=10)

    def manifest(self, reference: str) -> requests.Response:
        return self.get(f"manifests/{reference}", Accept=MANIFEST_ACCEPT)

    def digest(self, tag: str) -> str:
        response = self.manifest(tag)
        assert response.status_code == 200, f"{self.image}:{tag} is not in the registry"
        return response.headers["Docker-Content-Digest"]

    def tags(self) -> set[str]:
        response = self.get("tags/list")
        return set(response.json().get("tags") or []) if response.status_code == 200 else set()

    def outputs(self) -> list[str]:
        return (self.tmp_path / "pipeline-variables").read_text().splitlines()


def sources(*tags: str) -> dict[str, str]:
    """INDEX_FROM_TAGS as Pipelines passes a YAML list."""
    return {"INDEX_FROM_TAGS_COUNT": str(len(tags))} | {f"INDEX_FROM_TAGS_{n}": tag for n, tag in enumerate(tags)}


def platforms_of(index: dict) -> list[str]:
    return ["/".join((m["platform"]["os"], m["platform"]["architecture"])) for m in index["manifests"]]


def docker_run(docker_host: str, reference: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", reference],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": docker_host},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def manifest_inspect(docker_host: str, repo: Repo, reference: str, config_dir: Path) -> dict:
    """What `docker manifest inspect` (the real client, its own config dir) says of `reference`."""
    config_dir.mkdir()
    login = docker_cli(docker_host, config_dir, "login", repo.registry, "-u", repo.user, "--password-stdin",
                       stdin=repo.token)  # fmt: skip
    assert login.returncode == 0, login.stderr
    inspected = docker_cli(docker_host, config_dir, "manifest", "inspect", "--insecure", reference)
    assert inspected.returncode == 0, inspected.stderr
    return json.loads(inspected.stdout)


@pytest.fixture
def repo(sandbox, workdir, tmp_path, unique):
    return Repo(sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, unique("index"), workdir, tmp_path)


@pytest.fixture
def arm64_layout(amd64_image, tmp_path):
    layout = tmp_path / "arm64.tar"
    digests = buildx_layout(amd64_image[1], layout, ["linux/arm64"])
    return layout, digests


# --- INDEX_FROM_TAGS (htpasswd registry) -------------------------------------------------------


def test_index_from_two_platform_images_pulls_and_runs_the_amd64_one(
    repo, amd64_image, arm64_layout, sandbox, docker_engine, tmp_path
):
    image_id, saved, _ = amd64_image
    layout, arm64 = arm64_layout
    repo.push_source("v1.4.0", "{version}-amd64", saved)
    repo.push_source("v1.4.0", "{version}-arm64", layout)

    # The index step names the sources as the platform steps tagged them: with TAGS' placeholders.
    result = repo.run(BITBUCKET_TAG="v1.4.0", **sources("{version}-amd64", "{version}-arm64"))
    assert result.code == 0, result.output
    digest = repo.digest("1.4.0")
    assert result.last_line == (
        f"✔ pushed the index of linux/amd64 linux/arm64 as {repo.reference}:1.4.0 1.4 1 latest ({digest})"
    )
    assert f"Index of 1.4.0-amd64 1.4.0-arm64: linux/amd64 linux/arm64, 1 attestation(s) ({digest})." in result.lines
    assert "Connecting" not in result.output and "engine" not in result.output.lower()
    assert f"Pushed the index {digest} (3 entries)." in result.lines
    response = repo.manifest("1.4.0")
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json()
    assert index["mediaType"] == OCI_INDEX
    assert platforms_of(index) == ["linux/amd64", "linux/arm64", "unknown/unknown"]
    amd64, arm, attested = index["manifests"]
    assert amd64["digest"] == repo.digest("1.4.0-amd64") and arm["digest"] == arm64["linux/arm64"]
    # The provenance manifest stays tied to its image.
    assert attested["annotations"] == ATTESTATION | {"vnd.docker.reference.digest": arm64["linux/arm64"]}
    assert {repo.digest(tag) for tag in ("1.4", "1", "latest")} == {digest}
    inspected = manifest_inspect(sandbox.docker_host, repo, f"{repo.reference}:1", tmp_path / "inspect")
    assert inspected["mediaType"] == OCI_INDEX
    assert platforms_of(inspected) == ["linux/amd64", "linux/arm64", "unknown/unknown"]
    assert repo.outputs() == [
        f"IMAGE_DIGEST={digest}",
        f"IMAGE_REFERENCE={repo.reference}@{digest}",
        "IMAGE_TAGS=1.4.0 1.4 1 latest",
        "IMAGE_PLATFORMS=linux/amd64 linux/arm64",
    ]

    pulled_output, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, sandbox.oci_registry, repo.user, repo.token,
        f"{repo.reference}:1.4.0", tmp_path,
    )  # fmt: skip
    try:
        assert f"Digest: {digest}" in pulled_output
        assert pulled.id == image_id  # this machine is amd64: it gets that entry
        ran = docker_run(sandbox.docker_host, f"{repo.reference}:1.4.0")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == GREETING
    finally:
        docker_engine.images.remove(f"{repo.reference}:1.4.0", force=True)

    again = repo.run(BITBUCKET_TAG="v1.4.0", **sources("1.4.0-amd64", "1.4.0-arm64"))
    assert again.code == 0, again.output
    assert "The index is already at every tag with the same digest: nothing to push." in again.lines
    assert again.last_line == f"✔ {repo.reference}:1.4.0 1.4 1 latest already pointed at {digest}: nothing changed"
    assert "Tagged" not in again.output


def test_a_hotfix_index_moves_only_the_floating_tags_of_its_line(repo, amd64_image, arm64_layout):
    _, saved, _ = amd64_image
    layout, _ = arm64_layout
    for version in ("v1.4.0", "v1.3.1"):
        repo.push_source(version, "{version}-amd64", saved)
        repo.push_source(version, "{version}-arm64", layout)
    # TAGS in the Pipelines list form, as a space/comma string: both parse the same way.
    assert repo.run(BITBUCKET_TAG="v1.4.0", INDEX_FROM_TAGS="1.4.0-amd64, 1.4.0-arm64").code == 0
    newest = repo.digest("latest")

    hotfix = repo.run(BITBUCKET_TAG="v1.3.1", INDEX_FROM_TAGS="1.3.1-amd64 1.3.1-arm64")
    assert hotfix.code == 0, hotfix.output
    assert f"Tags to push to {repo.reference}: 1.3.1 1.3" in hotfix.lines
    assert "  1 stays on 1.4.0 (a higher release)" in hotfix.lines
    assert "  latest stays on 1.4.0 (a higher release)" in hotfix.lines
    assert repo.digest("1") == repo.digest("latest") == newest
    assert repo.digest("1.3") == repo.digest("1.3.1")
    assert repo.outputs()[2:] == ["IMAGE_TAGS=1.3.1 1.3", "IMAGE_PLATFORMS=linux/amd64 linux/arm64"]

    explicit = repo.run(BITBUCKET_TAG="v1.3.1", TAGS="edge", INDEX_FROM_TAGS="1.3.1-amd64 1.3.1-arm64")
    assert explicit.code == 0, explicit.output
    assert repo.digest("edge") == repo.digest("1.3.1")  # TAGS overrides the release rules


def test_every_refusal_is_one_line_before_anything_is_pushed(repo, amd64_image, tmp_path):
    _, saved, _ = amd64_image
    repo.push_source("v1.0.0", "{version}-amd64", saved)
    second_amd64 = tmp_path / "amd64-again.tar"
    # Another config, so another image; pushed as a one-platform index, whose entry is what clashes.
    amd64b = buildx_layout(saved, second_amd64, ["linux/amd64"], attest=False)["linux/amd64"]
    repo.push_source("v1.0.0", "{version}-amd64b", second_amd64)
    amd64 = repo.digest("1.0.0-amd64")
    before = repo.tags()
    release = {"BITBUCKET_TAG": "v1.0.0"}
    cases = {
        "missing": (
            sources("1.0.0-amd64", "1.0.0-arm64", "1.0.0-s390x"),
            f"✖ INDEX_FROM_TAGS names 1.0.0-arm64, 1.0.0-s390x, which are not in {repo.reference}: push each "
            "platform's image under its tag first (e.g. TAGS: '{version}-arm64' in that step), and list tags "
            "exactly as pushed.",
        ),
        "other repository": (
            sources("1.0.0-amd64", "acme/other:1.0.0-arm64"),
            f"✖ INDEX_FROM_TAGS entry 'acme/other:1.0.0-arm64' names another repository: an index can only tie "
            f"images of {repo.reference}: list their tags (e.g. 1.0.0-amd64), push each platform to "
            f"{repo.reference} first.",
        ),
        "duplicate platform": (
            sources("1.0.0-amd64", "1.0.0-amd64b"),
            f"✖ INDEX_FROM_TAGS has two images for linux/amd64: 1.0.0-amd64 ({amd64[:19]}) and 1.0.0-amd64b "
            f"({amd64b[:19]}): list one tag per platform.",
        ),
        "with IMAGE_ARCHIVE": (
            sources("1.0.0-amd64") | {"IMAGE_ARCHIVE": str(saved)},
            "✖ INDEX_FROM_TAGS and IMAGE_ARCHIVE are both set: INDEX_FROM_TAGS ties images already pushed to the "
            "registry into one index; push each image in its own step, then run the index step without IMAGE_ARCHIVE.",
        ),
        "a source's own tag": (
            sources("1.0.0-amd64") | {"TAGS": "{version}-amd64"},
            "✖ the index would be tagged 1.0.0-amd64, which INDEX_FROM_TAGS names as a source: give the platform "
            "images their own tags (e.g. TAGS: '{version}-amd64' in their steps) and the index the release's.",
        ),
    }
    for name, (variables, expected) in cases.items():
        result = repo.run(**release, **variables)
        assert result.code == 1, f"{name}: {result.output}"
        assert result.last_line == expected, name
        assert sum(line.startswith("✖") for line in result.lines) == 1, name
        assert repo.tags() == before, f"{name}: something was pushed"
    assert repo.digest("1.0.0-amd64") == amd64


def test_dry_run_prints_the_index_and_pushes_nothing(repo, amd64_image, arm64_layout):
    _, saved, _ = amd64_image
    layout, arm64 = arm64_layout
    repo.push_source("v2.0.0", "{version}-amd64", saved)
    repo.push_source("v2.0.0", "{version}-arm64", layout)
    before = repo.tags()
    result = repo.run(BITBUCKET_TAG="v2.0.0", DRY_RUN="true", **sources("2.0.0-amd64", "2.0.0-arm64"))
    assert result.code == 0, result.output
    assert (
        result.last_line
        == f"✔ dry run: would push the index of linux/amd64 linux/arm64 as {repo.reference}:2.0.0 2.0 2 latest"
    )
    start = result.lines.index("Dry run: the index that would be pushed:") + 1
    printed = json.loads("\n".join(result.lines[start : start + 5]))  # head, three entries, end
    assert printed["mediaType"] == OCI_INDEX
    assert [m["digest"] for m in printed["manifests"]][:2] == [repo.digest("2.0.0-amd64"), arm64["linux/arm64"]]
    assert repo.tags() == before


def test_a_multi_platform_source_gives_its_platform_entries(repo, amd64_image, tmp_path):
    """A source that is itself an index (a buildx push of two platforms) adds each of them."""
    _, saved, _ = amd64_image
    layout = tmp_path / "arm.tar"
    buildx_layout(saved, layout, ["linux/arm64", "linux/arm/v7"])
    repo.push_source("v3.1.0", "{version}-arm", layout)
    repo.push_source("v3.1.0", "{version}-amd64", saved)
    result = repo.run(BITBUCKET_TAG="v3.1.0", INDEX_FROM_TAGS="3.1.0-amd64 3.1.0-arm")
    assert result.code == 0, result.output
    assert repo.outputs()[-1] == "IMAGE_PLATFORMS=linux/amd64 linux/arm64 linux/arm/v7"
    index = repo.manifest("3.1.0").json()
    assert platforms_of(index) == ["linux/amd64", "linux/arm64", "unknown/unknown", "linux/arm", "unknown/unknown"]


# --- Runtime v3: a multi-platform buildx archive ------------------------------------------------


def test_buildx_multi_platform_archive_is_pushed_as_it_is(repo, amd64_image, sandbox, docker_engine, tmp_path):
    """`docker buildx build --platform linux/amd64,linux/arm64 --output type=oci,dest=image.tar`
    then IMAGE_ARCHIVE: the index goes up byte for byte, attestations and annotations included."""
    image_id, saved, _ = amd64_image
    layout = tmp_path / "image.tar"
    digests = buildx_layout(saved, layout, ["linux/amd64", "linux/arm64"])
    result = repo.run(BITBUCKET_TAG="v5.0.0", IMAGE_ARCHIVE=str(layout))
    assert result.code == 0, result.output
    assert "Pushing 4 layer(s), 2 platforms and 2 attestation(s) natively over the distribution API." in result.lines
    assert repo.digest("5.0.0") == digests["index"]
    index = repo.manifest("5.0.0").json()
    assert platforms_of(index) == ["linux/amd64", "unknown/unknown", "linux/arm64", "unknown/unknown"]
    assert index["manifests"][1]["annotations"]["vnd.docker.reference.digest"] == digests["linux/amd64"]
    _, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, sandbox.oci_registry, repo.user, repo.token,
        f"{repo.reference}:5.0.0", tmp_path,
    )  # fmt: skip
    try:
        assert pulled.attrs["Architecture"] == "amd64"
        ran = docker_run(sandbox.docker_host, f"{repo.reference}:5.0.0")
        assert ran.returncode == 0 and ran.stdout.strip() == GREETING, ran.stderr
    finally:
        docker_engine.images.remove(f"{repo.reference}:5.0.0", force=True)


# --- token auth --------------------------------------------------------------------------------


def test_index_on_a_token_registry(token_registry, amd64_image, arm64_layout, workdir, tmp_path, unique):  # noqa: F811
    _, saved, _ = amd64_image
    layout, arm64 = arm64_layout
    repo = Repo(token_registry.host, *WRITER, unique("index-token"), workdir, tmp_path)
    repo.push_source("v1.0.0", "{version}-amd64", saved)
    repo.push_source("v1.0.0", "{version}-arm64", layout)
    result = repo.run(BITBUCKET_TAG="v1.0.0", **sources("1.0.0-amd64", "1.0.0-arm64"))
    assert result.code == 0, result.output
    digest = repo.digest("1.0.0")
    assert result.last_line == (
        f"✔ pushed the index of linux/amd64 linux/arm64 as {repo.reference}:1.0.0 1.0 1 latest ({digest})"
    )
    index = repo.manifest("1.0.0").json()
    assert [m["digest"] for m in index["manifests"][:2]] == [repo.digest("1.0.0-amd64"), arm64["linux/arm64"]]
    pushes = [r for r in token_registry.issuer.requests if f"repository:acme/{repo.image}:pull,push" in r["scope"]]
    assert pushes  # the index went up with a push token

    again = repo.run(BITBUCKET_TAG="v1.0.0", **sources("1.0.0-amd64", "1.0.0-arm64"))
    assert again.code == 0, again.output
    assert again.last_line == f"✔ {repo.reference}:1.0.0 1.0 1 latest already pointed at {digest}: nothing changed"


def test_a_buildx_archive_whose_layers_the_pipe_compresses_keeps_its_attestations_linked(repo, amd64_image, tmp_path):
    """Uncompressed layers are gzip'd on the way, so each image gets a new digest: the index is
    rewritten, and every attestation still names (by the new digest) the image it describes."""
    _, saved, _ = amd64_image
    layout = tmp_path / "image.tar"
    digests = buildx_layout(saved, layout, ["linux/amd64", "linux/arm64"], compressed=False)
    result = repo.run(BITBUCKET_TAG="v6.0.0", IMAGE_ARCHIVE=str(layout))
    assert result.code == 0, result.output
    # The shared layer is gzip'd by the pipe (once per platform that reaches it before its upload).
    assert re.search(r"; [12] layer\(s\) compressed\.$", result.output, re.M), result.output
    index = repo.manifest("6.0.0").json()
    amd64, amd64_attestation, arm64, arm64_attestation = index["manifests"]
    assert amd64["digest"] != digests["linux/amd64"]
    assert amd64_attestation["annotations"] == ATTESTATION | {"vnd.docker.reference.digest": amd64["digest"]}
    assert arm64_attestation["annotations"] == ATTESTATION | {"vnd.docker.reference.digest": arm64["digest"]}
    assert repo.manifest(amd64["digest"]).json()["layers"][0]["mediaType"].endswith("+gzip")

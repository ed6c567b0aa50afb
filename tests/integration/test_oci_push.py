"""Native pushes over the OCI distribution API, against real registries: the sandbox's CNCF
registry (htpasswd, Basic) and a second real `docker-registry` in `auth: token` mode whose only
stand-in is the test bench's token issuer (tests/oci). Results are checked by the registry's own
answers and by `docker pull` from a clean state, never by the pipe's word."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import docker.errors
import pytest
import requests

from tests.conftest import assert_no_secret, base_env, run_subprocess, session_name
from tests.oci.registry import TokenRegistry
from tests.oci.token_issuer import TokenIssuer

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NO_ENGINE = "unix:///nonexistent/docker.sock"
READONLY_PREFIX = "acme/readonly-"


# --- images ----------------------------------------------------------------------------------


def write_context(folder: Path) -> Path:
    """A FROM-scratch image with four layers: text, random bytes, more text, a tiny file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "text.txt").write_text("".join(f"line {i}: some text that compresses\n" for i in range(60000)))
    (folder / "random.bin").write_bytes(os.urandom(3_000_000))
    (folder / "more.txt").write_text("".join(f"{i} more words for the third layer\n" for i in range(30000)))
    (folder / "small.txt").write_text("small\n")
    (folder / "Dockerfile").write_text(
        "FROM scratch\nCOPY text.txt /text/\nCOPY random.bin /random/\nCOPY more.txt /more/\nCOPY small.txt /\n"
    )
    return folder


@pytest.fixture(scope="module")
def saved_image(docker_engine, tmp_path_factory):
    """(image id, `docker save` tarball) of a fresh multi-layer image."""
    root = tmp_path_factory.mktemp("oci-image")
    tag = f"bbpp-oci-src:{session_name('src')}"  # recorded: the session check sees a leftover
    image, archive = build_and_save(docker_engine, write_context(root / "context"), tag, root / "image.tar")
    yield image.id, archive, tag
    docker_engine.images.remove(image.id, force=True)


def build_and_save(docker_engine, context: Path, tag: str, archive: Path):
    """(image, `docker save` tarball) of the image built from `context` under `tag`."""
    image, _ = docker_engine.images.build(path=str(context), tag=tag, rm=True)
    with open(archive, "wb") as out:
        for chunk in image.save(named=True):
            out.write(chunk)
    return image, archive


def oci_layout_from_save(saved: Path, target: Path, platforms: list[str]) -> dict[str, str]:
    """An OCI image layout tar (as kaniko or buildah write them: gzip'd layers) made from a
    `docker save`, with one manifest per platform; platform → config digest."""
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> tuple[str, int]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest, len(data)

    with tarfile.open(saved) as tar:
        entry = json.loads(tar.extractfile("manifest.json").read())[0]
        config = json.loads(tar.extractfile(entry["Config"]).read())
        layers = []
        for name in entry["Layers"]:
            packed = gzip.compress(tar.extractfile(name).read(), mtime=0)
            digest, size = add(packed)
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
    descriptors, configs = [], {}
    for platform in platforms:
        os_name, arch = platform.split("/")
        config_digest, config_size = add(json.dumps(config | {"architecture": arch, "os": os_name}).encode())
        configs[platform] = config_digest
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": config_size},
            "layers": layers,
        }  # fmt: skip
        digest, size = add(json.dumps(manifest).encode())
        descriptors.append(
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
             "platform": {"architecture": arch, "os": os_name}}
        )  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
    files |= {f"blobs/sha256/{digest.removeprefix('sha256:')}": data for digest, data in blobs.items()}
    write_tar(target, files)
    return configs


def write_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as out:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


# --- pipe and registry helpers -----------------------------------------------------------------


def pipe_env(registry: str, user: str, token: str, image: str, tmp_path: Path, **overrides) -> dict[str, str]:
    values = {
        "PACKAGE_TYPE": "docker",
        "REGISTRY_URL": registry,
        "BITBUCKET_PACKAGES_USERNAME": user,
        "BITBUCKET_PACKAGES_TOKEN": token,
        "BITBUCKET_REPO_SLUG": image,
        "BITBUCKET_COMMIT": COMMIT,
        "DOCKER_HOST": NO_ENGINE,
        "BITBUCKET_PIPELINES_VARIABLES_PATH": str(tmp_path / "pipeline-variables"),
        "BITBUCKET_PIPE_STORAGE_DIR": str(tmp_path / "pipe-storage"),
    }
    values.update(overrides)
    return base_env(**values)


def run_pipe(env: dict[str, str], cwd: Path, user: str, token: str):
    result = run_subprocess(env, cwd)
    assert_no_secret(result.output, user, token)
    assert "Traceback" not in result.output
    return result


def manifest(registry: str, auth, image: str, reference: str, workspace: str = "acme") -> requests.Response:
    return requests.get(
        f"http://{registry}/v2/{workspace}/{image}/manifests/{reference}",
        auth=auth,
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )


def tag_digest(sandbox, image: str, tag: str) -> str:
    response = manifest(sandbox.oci_registry, sandbox.writer, image, tag)
    assert response.status_code == 200, f"{image}:{tag} is not in the registry"
    return response.headers["Docker-Content-Digest"]


def docker_cli(docker_host: str, config_dir: Path, *args: str, stdin: str | None = None):
    """The real docker client, with a throw-away config dir (never ~/.docker)."""
    return subprocess.run(
        ["docker", "--config", str(config_dir), *args],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": docker_host},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pull_from_clean_state(docker_engine, docker_host, registry, user, token, reference, tmp_path):
    """`docker pull` with a fresh client config, the reference absent from the engine first."""
    with contextlib.suppress(docker.errors.ImageNotFound):  # not there: already clean
        docker_engine.images.remove(reference, force=True)
    config = tmp_path / f"docker-client-{os.urandom(4).hex()}"
    config.mkdir()
    login = docker_cli(docker_host, config, "login", registry, "-u", user, "--password-stdin", stdin=token)
    assert login.returncode == 0, login.stderr
    pull = docker_cli(docker_host, config, "pull", reference)
    assert pull.returncode == 0, pull.stderr
    return pull.stdout, docker_engine.images.get(reference)


# --- Basic auth (the sandbox registry) ---------------------------------------------------------


def test_docker_save_archive_pushes_with_no_engine_and_pulls_as_the_same_image(
    sandbox, saved_image, workdir, tmp_path, unique, docker_engine
):
    image_id, archive, _ = saved_image
    image = unique("oci")
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
        BITBUCKET_TAG="v2.3.4", IMAGE_ARCHIVE=str(archive),
    )  # fmt: skip
    reference = f"{sandbox.oci_registry}/acme/{image}"

    first = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert first.code == 0, first.output
    digest = tag_digest(sandbox, image, "2.3.4")
    assert first.last_line == f"✔ pushed {reference}:2.3.4 2.3 2 latest ({digest})"
    assert f"Pushing IMAGE_ARCHIVE {archive} (docker save) with no Docker engine." in first.lines
    assert "Pushing 4 layer(s) natively over the distribution API." in first.lines
    # Text layers are gzip'd, the random one goes as it is; one upload serves the four tags.
    assert "Blobs: 5 uploaded" in first.output and "2 layer(s) compressed" not in first.output
    assert "3 layer(s) compressed." in first.output
    # The tiny layer's tar is mostly padding, so it compresses too: only the random one does not.
    assert sum("pushed, uncompressed:" in line for line in first.lines) == 1
    assert {tag_digest(sandbox, image, tag) for tag in ("2.3", "2", "latest")} == {digest}
    body = manifest(sandbox.oci_registry, sandbox.writer, image, "2.3.4")
    assert body.headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    assert body.json()["config"]["digest"] == image_id
    assert (tmp_path / "pipeline-variables").read_text().splitlines() == [
        f"IMAGE_DIGEST={digest}",
        f"IMAGE_REFERENCE={reference}@{digest}",
        "IMAGE_TAGS=2.3.4 2.3 2 latest",
    ]

    # Unchanged re-run: the tags' manifests name the archive's config, so nothing is compressed,
    # checked or uploaded, and no tag is rewritten.
    again = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert again.code == 0, again.output
    assert f"The registry already holds this image ({digest}): only tags are updated." in again.lines
    assert not any(line.startswith("Blobs:") for line in again.lines)
    assert again.last_line == f"✔ {reference}:2.3.4 2.3 2 latest already pointed at {digest}: nothing changed"

    pulled_output, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token,
        f"{reference}:2", tmp_path,
    )  # fmt: skip
    assert f"Digest: {digest}" in pulled_output
    assert pulled.id == image_id  # the very image that was saved: same config, same layers
    assert f"{reference}@{digest}" in pulled.attrs["RepoDigests"]


def test_same_image_pushed_twice_gives_the_same_digest(sandbox, saved_image, workdir, tmp_path, unique):
    """Deterministic compression: a fresh repository gets byte-identical blobs and manifest."""
    _, archive, _ = saved_image
    digests = []
    for image in (unique("oci-a"), unique("oci-b")):
        env = pipe_env(
            sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
            BITBUCKET_BRANCH="main", IMAGE_ARCHIVE=str(archive),
        )  # fmt: skip
        result = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
        assert result.code == 0, result.output
        digests.append(tag_digest(sandbox, image, "main"))
    assert digests[0] == digests[1]


def test_multi_platform_oci_layout_pushes_an_index(sandbox, saved_image, workdir, tmp_path, unique, docker_engine):
    _, saved, _ = saved_image
    layout = tmp_path / "layout.tar"
    configs = oci_layout_from_save(saved, layout, ["linux/amd64", "linux/arm64"])
    image = unique("oci-multi")
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
        BITBUCKET_TAG="v1.0.0", IMAGE_ARCHIVE=str(layout),
    )  # fmt: skip
    result = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert result.code == 0, result.output
    assert "Pushing 8 layer(s), 2 platforms natively over the distribution API." in result.lines
    # Already gzip'd layers are never recompressed; shared layers go up once.
    assert "0 layer(s) compressed." in result.output
    assert "Blobs: 6 uploaded" in result.output  # 4 layers + 2 configs
    index = manifest(sandbox.oci_registry, sandbox.writer, image, "1.0.0")
    assert index.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index.json()["manifests"]}
    assert platforms == {"linux/amd64", "linux/arm64"}
    reference = f"{sandbox.oci_registry}/acme/{image}"
    _, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token,
        f"{reference}:1.0.0", tmp_path,
    )  # fmt: skip
    assert pulled.id == configs["linux/amd64"]


def test_engine_image_pushed_natively_then_rerun_only_checks_tags(
    sandbox, saved_image, workdir, tmp_path, unique, docker_engine
):
    image_id, _, local = saved_image
    image = unique("oci-engine")
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
        BITBUCKET_TAG="v0.1.0", LOCAL_IMAGE=local, PUSH_METHOD="native", DOCKER_HOST=sandbox.docker_host,
    )  # fmt: skip
    first = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert first.code == 0, first.output
    digest = tag_digest(sandbox, image, "0.1.0")
    assert any(line.startswith("Exported the image from the engine (") for line in first.lines)
    assert manifest(sandbox.oci_registry, sandbox.writer, image, "0.1.0").json()["config"]["digest"] == image_id

    again = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert again.code == 0, again.output
    assert f"The registry already holds this image ({digest}): only tags are updated." in again.lines
    assert "Exported" not in again.output


def test_engine_export_streamed_gives_the_archive_push_digest_and_pulls(
    sandbox, saved_image, workdir, tmp_path, unique, docker_engine
):
    """The export is read as a stream and layers go up as they pass: the result must be the
    very image an IMAGE_ARCHIVE push of `docker save` gives, byte for byte."""
    image_id, archive, local = saved_image
    from_engine, from_archive = unique("oci-stream"), unique("oci-file")
    outputs = {}
    for image, source in ((from_engine, {"LOCAL_IMAGE": local, "DOCKER_HOST": sandbox.docker_host}),
                          (from_archive, {"IMAGE_ARCHIVE": str(archive)})):  # fmt: skip
        env = pipe_env(
            sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
            BITBUCKET_BRANCH="main", PUSH_METHOD="native", **source,
        )  # fmt: skip
        result = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
        assert result.code == 0, result.output
        outputs[image] = result.lines
    assert "Exporting the image from the engine; its 4 layer(s) go up as they arrive." in outputs[from_engine]
    digest = tag_digest(sandbox, from_engine, "main")
    assert digest == tag_digest(sandbox, from_archive, "main")

    reference = f"{sandbox.oci_registry}/acme/{from_engine}"
    pulled_output, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token,
        f"{reference}:main", tmp_path,
    )  # fmt: skip
    assert f"Digest: {digest}" in pulled_output
    assert pulled.id == image_id


def test_engine_image_with_a_new_top_layer_uploads_only_that_layer(
    sandbox, saved_image, workdir, tmp_path, unique, docker_engine
):
    """A rebuild that changed only its last step: the layers below are found in the registry
    by the tag's manifest and skipped, though the export still carries them."""
    _, _, local = saved_image
    image = unique("oci-delta")
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
        BITBUCKET_BRANCH="main", LOCAL_IMAGE=local, PUSH_METHOD="native", DOCKER_HOST=sandbox.docker_host,
    )  # fmt: skip
    assert run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token).code == 0
    context = tmp_path / "on-top"
    context.mkdir()
    (context / "new.txt").write_text(os.urandom(8).hex())
    (context / "Dockerfile").write_text(f"FROM {local}\nCOPY new.txt /\n")
    child, _ = docker_engine.images.build(path=str(context), tag=f"{local}-child", rm=True)
    try:
        result = run_pipe(env | {"LOCAL_IMAGE": f"{local}-child"}, workdir, sandbox.writer_user, sandbox.writer_token)
    finally:
        docker_engine.images.remove(child.id, force=True)
    assert result.code == 0, result.output
    assert "Exporting the image from the engine; its 5 layer(s) go up as they arrive." in result.lines
    assert sum("already in the registry" in line and line.startswith("Layer ") for line in result.lines) == 4
    assert "Blobs: 2 uploaded" in result.output  # the new layer and the new config
    config = manifest(sandbox.oci_registry, sandbox.writer, image, "main").json()["config"]["digest"]
    assert config == child.id


def test_missing_archive_is_refused_before_the_registry(sandbox, workdir, tmp_path, unique):
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, unique("oci"), tmp_path,
        IMAGE_ARCHIVE="build/image.tar",
    )  # fmt: skip
    result = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert result.code == 1
    assert result.last_line == (
        f"✖ IMAGE_ARCHIVE '{workdir.resolve()}/build/image.tar' does not exist: set IMAGE_ARCHIVE to a `docker save` "
        "tarball or an OCI image layout (folder or tar), relative to the repository."
    )
    assert "has 0 tag(s)" not in result.output


# --- Bearer tokens (a real registry in `auth: token` mode) -------------------------------------

WRITER = ("token-writer", "token-writer-secret-7a6b5c4d")


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    issuer = TokenIssuer(
        users=dict([WRITER]),
        grants={WRITER[0]: {"acme/": "pull,push", READONLY_PREFIX: "pull"}},
    ).start()
    registry = TokenRegistry(issuer, tmp_path_factory.mktemp("token-registry")).start()
    yield registry
    registry.stop()
    issuer.stop()


def test_token_registry_push_and_pull(token_registry, saved_image, workdir, tmp_path, unique, docker_engine, sandbox):
    image_id, archive, _ = saved_image
    image = unique("oci-token")
    env = pipe_env(token_registry.host, *WRITER, image, tmp_path, BITBUCKET_TAG="v1.2.0", IMAGE_ARCHIVE=str(archive))
    result = run_pipe(env, workdir, *WRITER)
    assert result.code == 0, result.output
    reference = f"{token_registry.host}/acme/{image}"
    assert result.last_line.startswith(f"✔ pushed {reference}:1.2.0 1.2 1 latest (sha256:")
    pushes = [r for r in token_registry.issuer.requests if any(":pull,push" in s for s in r["scope"])]
    assert pushes and all(r["user"] == WRITER[0] for r in pushes)

    pulled_output, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, token_registry.host, *WRITER, f"{reference}:1.2.0", tmp_path
    )
    assert pulled.id == image_id
    assert "Digest: sha256:" in pulled_output


def test_token_without_push_permission_is_reported_not_looped(token_registry, saved_image, workdir, tmp_path, unique):
    _, archive, _ = saved_image
    image = unique("readonly")
    env = pipe_env(token_registry.host, *WRITER, image, tmp_path, BITBUCKET_TAG="v1.0.0", IMAGE_ARCHIVE=str(archive))
    before = len(token_registry.issuer.requests)
    result = run_pipe(env, workdir, *WRITER)
    assert result.code == 1
    assert result.last_line == (
        f"✖ starting an upload to acme/{image} failed: http://{token_registry.host}/v2/acme/{image}/blobs/uploads/ "
        "answered 401 (UNAUTHORIZED: authentication required): the credentials were accepted but their token does "
        f"not allow pushing to acme/{image}, even freshly issued: this is a permission problem: give the user write "
        "access to the package (and link the package to this repository)."
    )
    # One token for the run (tag list and push), one fresh one after the refusal: no loop.
    assert len(token_registry.issuer.requests) - before == 2
    tags = requests.get(f"http://{token_registry.host}/v2/acme/{image}/tags/list", timeout=10)
    assert tags.status_code == 401  # the registry is closed to anonymous reads: only tokens get in


def test_token_endpoint_refusing_the_password(token_registry, saved_image, workdir, tmp_path, unique):
    _, archive, _ = saved_image
    image = unique("oci-token")
    env = pipe_env(token_registry.host, WRITER[0], "wrong-password-1234", image, tmp_path, IMAGE_ARCHIVE=str(archive))
    result = run_pipe(env, workdir, WRITER[0], "wrong-password-1234")
    assert result.code == 1
    assert result.last_line == (
        f"✖ reading the tags of acme/{image} (token request) failed: {token_registry.issuer.realm}?"
        f"scope=repository%3Aacme%2F{image}%3Apull%2Cpush&service=bbpp-token-registry answered 401 "
        "(incorrect username or password): the registry did not accept the credentials: check "
        "BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the "
        "write:package:bitbucket scope)."
    )


def test_token_registry_mounts_base_layers_with_a_token_that_reads_the_base(
    token_registry, workdir, tmp_path, unique, sandbox, docker_engine
):
    """A mount needs pull on the base's repository too: the push token asks for both scopes."""
    base, app = unique("token-base"), unique("token-app")
    (workdir / "big.bin").write_bytes(os.urandom(1_000_000))
    (workdir / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\n")
    build = {"BITBUCKET_TAG": "v1.0.0", "DOCKER_HOST": sandbox.docker_host}
    assert run_pipe(pipe_env(token_registry.host, *WRITER, base, tmp_path, **build), workdir, *WRITER).code == 0

    (workdir / "Dockerfile").write_text(f"FROM {token_registry.host}/acme/{base}:1.0.0\nCOPY Dockerfile /\n")
    before = len(token_registry.issuer.requests)
    result = run_pipe(pipe_env(token_registry.host, *WRITER, app, tmp_path, **build), workdir, *WRITER)
    assert result.code == 0, result.output
    assert sum(f"mounted from acme/{base}" in line for line in result.lines) == 1
    assert "1 mounted" in result.output
    scopes = [set(r["scope"]) for r in token_registry.issuer.requests[before:]]
    assert {f"repository:acme/{app}:pull,push", f"repository:acme/{base}:pull"} in scopes
    docker_engine.images.remove(f"{token_registry.host}/acme/{base}:1.0.0", force=True)


def test_an_archive_annotated_with_its_base_mounts_the_base_layers(sandbox, saved_image, workdir, tmp_path, unique):
    """An OCI layout (kaniko, buildkit) that names its base in the manifest annotation: layers
    with the base's diff ids are mounted from the base's repository, none is uploaded."""
    _, archive, _ = saved_image
    base, app = unique("abase"), unique("aapp")
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, base, tmp_path,
        BITBUCKET_TAG="v1.0.0", IMAGE_ARCHIVE=str(archive),
    )  # fmt: skip
    assert run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token).code == 0
    layout = tmp_path / "layout.tar"
    oci_layout_from_save(archive, layout, ["linux/amd64"])
    annotate_manifests(layout, {"org.opencontainers.image.base.name": f"{sandbox.oci_registry}/acme/{base}:1.0.0"})
    result = run_pipe(env | {"BITBUCKET_REPO_SLUG": app, "IMAGE_ARCHIVE": str(layout)}, workdir,
                      sandbox.writer_user, sandbox.writer_token)  # fmt: skip
    assert result.code == 0, result.output
    assert f"Layers of the base image acme/{base}:1.0.0 are mounted from there rather than uploaded." in result.lines
    assert sum(f"mounted from acme/{base}" in line for line in result.lines) == 4
    assert "4 mounted" in result.output and "0 layer(s) compressed" in result.output
    pushed = manifest(sandbox.oci_registry, sandbox.writer, app, "1.0.0").json()["layers"]
    assert [layer["digest"] for layer in pushed] == [
        layer["digest"] for layer in manifest(sandbox.oci_registry, sandbox.writer, base, "1.0.0").json()["layers"]
    ]


def annotate_manifests(layout: Path, annotations: dict[str, str]) -> None:
    """Rewrite an OCI layout tar so that its (single-platform) manifest carries `annotations`."""
    with tarfile.open(layout) as tar:
        files = {member.name: tar.extractfile(member).read() for member in tar if member.isfile()}
    index = json.loads(files["index.json"])
    descriptor = index["manifests"][0]
    manifest_name = f"blobs/sha256/{descriptor['digest'].removeprefix('sha256:')}"
    document = json.loads(files.pop(manifest_name)) | {"annotations": annotations}
    body = json.dumps(document).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    files[f"blobs/sha256/{digest.removeprefix('sha256:')}"] = body
    index["manifests"] = [descriptor | {"digest": digest, "size": len(body)}]
    files["index.json"] = json.dumps(index).encode()
    write_tar(layout, files)


def test_an_engine_image_holding_the_same_layer_twice_pushes_and_pulls(
    sandbox, workdir, tmp_path, unique, docker_engine
):
    """Two identical steps give two identical layers: the export stores one, the push sends one,
    the manifest names it twice, and `docker pull` gives the very image back."""
    (workdir / "same.txt").write_text("the same\n")
    (workdir / "Dockerfile").write_text("FROM scratch\nCOPY same.txt /same.txt\nCOPY same.txt /same.txt\n")
    built, _ = docker_engine.images.build(path=str(workdir), tag=f"bbpp-twice:{unique('t')}", rm=True)
    image = unique("oci-twice")
    env = pipe_env(
        sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token, image, tmp_path,
        BITBUCKET_BRANCH="main", LOCAL_IMAGE=built.tags[0], DOCKER_HOST=sandbox.docker_host,
    )  # fmt: skip
    result = run_pipe(env, workdir, sandbox.writer_user, sandbox.writer_token)
    assert result.code == 0, result.output
    assert any(line.endswith("(1/1 layers done).") for line in result.lines)
    layers = manifest(sandbox.oci_registry, sandbox.writer, image, "main").json()["layers"]
    assert len(layers) == 2 and layers[0]["digest"] == layers[1]["digest"]
    _, pulled = pull_from_clean_state(
        docker_engine, sandbox.docker_host, sandbox.oci_registry, sandbox.writer_user, sandbox.writer_token,
        f"{sandbox.oci_registry}/acme/{image}:main", tmp_path,
    )  # fmt: skip
    assert pulled.id == built.id
    docker_engine.images.remove(built.id, force=True)

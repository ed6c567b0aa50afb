"""Which images a build starts from (CACHE_FROM, its default, base images on the pipe's
registry), which builder runs, and what the build step leaves in the engine: decided against a
fake Docker client, the seam where the pipe meets docker-py's APIClient."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker.errors import APIError, ImageNotFound

from pipe.auth import Credentials
from pipe.config import DockerSettings
from pipe.containers import build_cache
from pipe.containers.build import choose_builder
from pipe.containers.build_cache import CacheSource, PulledImages
from pipe.context import PipelinesRun
from pipe.errors import ConfigError, EngineError

TARGET = "registry.example:5000/acme/widget"
HOST = "registry.example:5000"
CREDENTIALS = Credentials("pipe-user", "s3cret-token-value")
LOG = logging.getLogger("test.cache")


@dataclass
class FakeEngine:
    """What the pipe asks docker-py's APIClient for during a build step."""

    images: dict[str, str] = field(default_factory=dict)  # reference → image id
    registry: dict[str, str] = field(default_factory=dict)  # reference → digest, what a pull finds
    api_version: str = "1.41"
    system: str = "linux"
    network_names: tuple[str, ...] = ("bridge", "host", "none")
    pulls: list[tuple[str, str | None, dict | None]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def version(self):
        return {"ApiVersion": self.api_version, "Os": self.system, "Version": "20.10.24"}

    def networks(self, names=None):
        return [{"Name": name} for name in self.network_names if not names or name in names]

    def inspect_image(self, reference):
        if reference not in self.images:
            raise ImageNotFound(f"No such image: {reference}")
        return {"Id": self.images[reference]}

    def pull(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        reference = f"{repository}:{tag}"
        self.pulls.append((repository, tag, auth_config))
        if reference not in self.registry:
            raise APIError("404", explanation=f"manifest for {reference} not found: manifest unknown")
        self.images[reference] = "sha256:" + self.registry[reference][7:]
        return iter([{"status": "Pulling from " + repository}, {"status": f"Digest: {self.registry[reference]}"}])

    def remove_image(self, reference):
        self.removed.append(reference)
        self.images.pop(reference, None)


def run(**values) -> PipelinesRun:
    return PipelinesRun.from_env({f"BITBUCKET_{key.upper()}": value for key, value in values.items()})


# --- which sources -------------------------------------------------------------------------


def test_default_sources_are_the_moving_tags_that_exist_once_per_image():
    sources = build_cache.cache_sources(
        None,
        plan_tags=("1.2.1", "1.2", "1", "latest"),
        existing={"1.2.0", "1.2", "1", "latest", "sha-abc"},
        digests={"1.2": "sha256:aa", "1": "sha256:aa", "latest": "sha256:bb"},
        target_reference=TARGET,
    )
    assert sources == [CacheSource(f"{TARGET}:1.2"), CacheSource(f"{TARGET}:latest")]


def test_default_for_a_first_release_is_no_source():
    assert build_cache.cache_sources(None, ("1.0.0", "1.0", "1", "latest"), set(), {}, TARGET) == []


def test_configured_sources_expand_placeholders_and_accept_full_references():
    configured = build_cache.configured_sources(
        ("{branch}", "main", "other.example/team/base-cache", f"{TARGET}:main", "x@sha256:" + "a" * 64),
        run(branch="feature/login", commit="0123456789abcdef0123456789abcdef01234567"),
        TARGET,
    )
    assert configured == (
        f"{TARGET}:feature-login",
        f"{TARGET}:main",
        "other.example/team/base-cache:latest",
        "x@sha256:" + "a" * 64,
    )


def test_configured_tags_of_this_image_that_do_not_exist_are_marked_missing():
    sources = build_cache.cache_sources(
        (f"{TARGET}:main", f"{TARGET}:gone", "other.example/team/app:1"), ("main",), {"main"}, {}, TARGET
    )
    assert [source.missing for source in sources] == [False, True, False]


@pytest.mark.parametrize("entry", ["Registry.Example/ACME/x:1", "a b", "host/image:", "img:tag:more", "-bad"])
def test_an_invalid_reference_is_one_config_error(entry):
    with pytest.raises(ConfigError) as caught:
        build_cache.configured_sources((entry,), run(branch="main"), TARGET)
    assert caught.value.message.startswith(f"CACHE_FROM entry '{entry}'")


def test_an_unknown_placeholder_is_refused():
    with pytest.raises(ConfigError, match=r"CACHE_FROM entry '\{nope\}' uses the unknown placeholder"):
        build_cache.configured_sources(("{nope}",), run(branch="main"), TARGET)


def test_only_base_images_on_the_pipes_registry_are_pulled_by_the_pipe():
    bases = [f"{HOST}/acme/base:1", "python:3.12-slim", "other.example/acme/base:1", f"{HOST}/acme/base:1"]
    assert build_cache.registry_bases(bases, HOST) == [f"{HOST}/acme/base:1"]


# --- into the engine and out ----------------------------------------------------------------


def test_sources_are_pulled_with_credentials_only_from_the_pipes_registry(caplog):
    engine = FakeEngine(registry={f"{TARGET}:latest": "sha256:" + "1" * 64, "other.example/x/cache:1": "sha256:22"})
    sources = [CacheSource(f"{TARGET}:latest"), CacheSource("other.example/x/cache:1")]
    images = build_cache.prepare(engine, sources, [], HOST, CREDENTIALS, LOG)
    assert images.cache_from == [f"{TARGET}:latest", "other.example/x/cache:1"]
    assert engine.pulls == [
        (TARGET, "latest", {"username": "pipe-user", "password": "s3cret-token-value"}),
        ("other.example/x/cache", "1", None),
    ]
    assert "s3cret" not in caplog.text


def test_a_missing_source_is_a_warning_naming_it_and_the_build_goes_on(caplog):
    caplog.set_level(logging.INFO, logger="test.cache")
    engine = FakeEngine()
    sources = [CacheSource(f"{TARGET}:gone", missing=True), CacheSource("other.example/x/cache:1")]
    images = build_cache.prepare(engine, sources, [], HOST, CREDENTIALS, LOG)
    assert images == PulledImages()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Cache source {TARGET}:gone does not exist in the registry: building without it.",
        "Cache source other.example/x/cache:1 could not be pulled (manifest for other.example/x/cache:1 not found: "
        "manifest unknown): building without it.",
    ]
    assert [pull[0] for pull in engine.pulls] == ["other.example/x/cache"]  # the known-missing one is not tried


def test_images_the_engine_had_are_used_as_they_are_and_left_there():
    engine = FakeEngine(images={f"{TARGET}:latest": "sha256:old", f"{HOST}/acme/base:1": "sha256:base"})
    images = build_cache.prepare(engine, [CacheSource(f"{TARGET}:latest")], [f"{HOST}/acme/base:1"], HOST,
                                 CREDENTIALS, LOG)  # fmt: skip
    assert engine.pulls == [] and images.cache_from == [f"{TARGET}:latest"] and images.pulled == []
    build_cache.remove_pulled(engine, images, "sha256:new", LOG)
    assert engine.removed == []


def test_pulled_images_are_removed_after_the_build_but_never_the_built_one():
    registry = {f"{TARGET}:latest": "sha256:" + "1" * 64, f"{HOST}/acme/base:1": "sha256:" + "2" * 64}
    engine = FakeEngine(registry=registry)
    images = build_cache.prepare(engine, [CacheSource(f"{TARGET}:latest")], [f"{HOST}/acme/base:1"], HOST,
                                 CREDENTIALS, LOG)  # fmt: skip
    assert images.pulled == [f"{HOST}/acme/base:1", f"{TARGET}:latest"]
    build_cache.remove_pulled(engine, images, engine.images[f"{TARGET}:latest"], LOG)
    assert engine.removed == [f"{HOST}/acme/base:1"]


def test_a_base_image_that_cannot_be_pulled_is_left_to_the_builder(caplog):
    caplog.set_level(logging.INFO, logger="test.cache")
    images = build_cache.prepare(FakeEngine(), [], [f"{HOST}/acme/gone:1"], HOST, CREDENTIALS, LOG)
    assert images == PulledImages()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- which builder ---------------------------------------------------------------------------


def settings(**values) -> DockerSettings:
    base = {"image_name": "widget", "local_image": None, "dockerfile": "Dockerfile", "build_context": ".",
            "build_args": (), "build_target": None, "labels": (), "tags": ()}  # fmt: skip
    return DockerSettings(**(base | values))


def test_auto_is_buildkit_on_an_engine_that_has_it():
    choice = choose_builder(FakeEngine(), settings())
    assert (choice.builder, choice.network) == ("buildkit", None)


def test_auto_without_a_bridge_network_gives_run_steps_what_the_classic_builder_gets():
    choice = choose_builder(FakeEngine(network_names=("host", "none")), settings())
    assert (choice.builder, choice.network) == ("buildkit", "none")
    assert "no bridge network" in choice.why
    explicit = choose_builder(FakeEngine(network_names=("host", "none")), settings(build_network="host"))
    assert (explicit.builder, explicit.network) == ("buildkit", "host")


def test_auto_on_an_engine_without_buildkit_is_classic_and_says_why():
    choice = choose_builder(FakeEngine(api_version="1.38"), settings())
    assert choice.builder == "classic"
    assert choice.why == "the Docker engine (Docker 20.10.24, API 1.38, linux) has no BuildKit"


def test_buildkit_asked_of_an_engine_without_it_is_one_error():
    with pytest.raises(EngineError) as caught:
        choose_builder(FakeEngine(system="windows"), settings(builder="buildkit"))
    assert caught.value.message.startswith(
        "BUILDER is buildkit, but the Docker engine (Docker 20.10.24, API 1.41, windows) has no BuildKit:"
    )


def test_a_named_network_needs_the_classic_builder():
    assert choose_builder(FakeEngine(), settings(build_network="ci-net")).builder == "classic"
    with pytest.raises(ConfigError, match="BUILD_NETWORK 'ci-net' names a network"):
        choose_builder(FakeEngine(), settings(build_network="ci-net", builder="buildkit"))


def test_classic_is_classic_without_asking_the_engine():
    class Silent(FakeEngine):
        def version(self):
            raise AssertionError("not asked")

    assert choose_builder(Silent(), settings(builder="classic")).builder == "classic"


def test_context_tar_starts_with_a_plain_header_and_keeps_dockerignore(tmp_path: Path):
    import tarfile

    from pipe.containers.buildkit import context_tar

    context = tmp_path / "context"
    deep = context / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "file.txt").write_text("x")
    (context / "secret.env").write_text("TOKEN=1")
    (context / ".dockerignore").write_text("# comment\nsecret.env\n")
    (tmp_path / "outside.Dockerfile").write_text("FROM scratch\n")
    body, name = context_tar(context, tmp_path / "outside.Dockerfile")
    with body:
        head = body.read(512)
        body.seek(0)
        with tarfile.open(fileobj=body) as tar:
            names = tar.getnames()
    assert head[257:262] == b"ustar" and head[156:157] in (b"0", b"\0")  # a regular file's own header
    assert name.startswith(".dockerfile.") and names[0] == name
    assert "secret.env" not in names and f"{'d' * 60}/{'e' * 60}/file.txt" in names


# --- the build step ----------------------------------------------------------------------------


class Refusal:
    """The engine's answer to a BuildKit build it will not run."""

    status_code = 500
    text = ""

    def json(self):
        return {"message": "BuildKit is not supported by this engine"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@dataclass
class BuildingEngine(FakeEngine):
    base_url: str = "http+docker://localhost"
    classic_stream: tuple = ({"stream": "Step 1/1 : FROM scratch\n"}, {"aux": {"ID": "sha256:" + "c" * 64}})
    builds: list[dict] = field(default_factory=list)

    def post(self, url, **kwargs):
        self.builds.append({"url": url, "params": kwargs["params"]})
        return Refusal()

    def build(self, **kwargs):
        self.builds.append({"classic": kwargs})
        return iter(self.classic_stream)


def build_config(tmp_path: Path, **docker_values):
    from pipe.config import load_config
    from tests.conftest import base_env

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    config = load_config(base_env(PACKAGE_TYPE="docker", REGISTRY_URL=HOST, **docker_values), tmp_path)
    return config


def build_request(tmp_path: Path):
    from pipe.containers.engine import BuildRequest

    return BuildRequest(tmp_path, tmp_path / "Dockerfile", {}, {}, None)


def test_auto_falls_back_to_the_classic_builder_when_the_engine_refuses_buildkit(tmp_path, caplog):
    from pipe.containers.build import build_image

    caplog.set_level(logging.INFO, logger="test.cache")
    engine = BuildingEngine()
    built = build_image(engine, build_config(tmp_path), build_request(tmp_path), [], [], CREDENTIALS, LOG)
    assert built == "sha256:" + "c" * 64
    assert engine.builds[0]["url"] == "http+docker://localhost/v1.41/build"
    assert engine.builds[0]["params"]["version"] == "2"
    assert "classic" in engine.builds[1]
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, "BuildKit could not build on this Docker engine (the Docker engine refused the "
            "BuildKit build: BuildKit is not supported by this engine)") in messages  # fmt: skip
    assert (logging.INFO, "Building Dockerfile (context .) with the classic builder (BuildKit could not build on "
            "this Docker engine).") in messages  # fmt: skip


def test_buildkit_asked_for_does_not_fall_back(tmp_path):
    from pipe.containers.build import build_image

    engine = BuildingEngine()
    with pytest.raises(EngineError, match="the Docker engine refused the BuildKit build"):
        build_image(
            engine, build_config(tmp_path, BUILDER="buildkit"), build_request(tmp_path), [], [], CREDENTIALS, LOG
        )
    assert len(engine.builds) == 1


def test_buildkit_syntax_on_an_engine_without_buildkit_is_one_error_saying_so(tmp_path):
    from pipe.containers.build import build_image

    refusal = {"errorDetail": {"message": "the --chmod option requires BuildKit. Refer to https://docs.docker.com"
                               "/go/buildkit/ to learn how to build images with BuildKit enabled"}}  # fmt: skip
    engine = BuildingEngine(api_version="1.38", classic_stream=({"stream": "Step 1/2 : FROM scratch\n"}, refusal))
    with pytest.raises(EngineError) as caught:
        build_image(engine, build_config(tmp_path), build_request(tmp_path), [], [], CREDENTIALS, LOG)
    assert caught.value.message == (
        "the Dockerfile needs BuildKit (the --chmod option requires BuildKit), and the Docker engine (Docker "
        "20.10.24, API 1.38, linux) has no BuildKit: run the step on a Docker engine with BuildKit (18.09 or later)."
    )

"""The configuration contract: each variable's parsing and defaults, detection, and every bad
input with its exact message (exit 1, one ✖ line, no traceback, no secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipe.config import load_config, parse_registry
from pipe.errors import ConfigError
from tests.conftest import TEST_TOKEN, TEST_USER, assert_no_secret, base_env, run_in_process, run_subprocess


def config_for(workdir: Path, **overrides: str | None):
    return load_config(base_env(**overrides), workdir)


# --- defaults and parsing -------------------------------------------------------------


def test_defaults_for_a_container_image(workdir: Path) -> None:
    (workdir / "Dockerfile").write_text("FROM scratch\n")
    config = config_for(workdir)
    assert config.package_type == "docker"
    assert config.workspace == "acme"
    assert config.docker.image_name == "widget"
    assert config.docker.dockerfile == "Dockerfile"
    assert config.docker.build_context == "."
    assert config.docker.tags == ()
    assert config.registry.url == "https://crg.apkg.io"
    assert config.registry.host == "crg.apkg.io"
    assert (config.dry_run, config.allow_insecure_http, config.debug) == (False, False, False)
    assert config.credentials.username == TEST_USER
    assert config.credentials.token == TEST_TOKEN


def test_npm_registry_defaults_to_the_workspace_scope(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="npm", WORKSPACE="team-x")
    assert config.registry.url == "https://npm.apkg.io/team-x/"
    assert config.npm.package == "."
    assert config.npm.dist_tag is None


def test_npm_workspaces_is_a_list_and_names_the_kind(workdir: Path) -> None:
    assert config_for(workdir, PACKAGE_TYPE="npm").npm.workspaces == ()
    config = config_for(workdir, NPM_WORKSPACES="@acme/lib, packages/cli")
    assert (config.package_type, config.npm.workspaces) == ("npm", ("@acme/lib", "packages/cli"))
    listed = config_for(workdir, PACKAGE_TYPE="npm", NPM_WORKSPACES_COUNT="1", NPM_WORKSPACES_0="packages/my lib")
    assert listed.npm.workspaces == ("packages/my lib",)


def test_workspace_falls_back_to_bitbucket_workspace(workdir: Path) -> None:
    assert config_for(workdir, PACKAGE_TYPE="npm").registry.url == "https://npm.apkg.io/acme/"


def test_maven_defaults(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="maven", REGISTRY_URL="https://maven.example.com/repo")
    assert config.registry.url == "https://maven.example.com/repo/"
    assert config.maven.pom == "pom.xml"
    assert config.maven.artifacts == ()


def test_string_variables_are_never_parsed_as_yaml(workdir: Path) -> None:
    # YAML would turn 1.10 into the float 1.1 and "yes" into True.
    config = config_for(workdir, PACKAGE_TYPE="npm", VERSION="1.10", NPM_DIST_TAG="yes")
    assert config.npm.version == "1.10"
    assert config.npm.dist_tag == "yes"


@pytest.mark.parametrize(
    "raw,expected", [("true", True), ("TRUE", True), ("false", False), ("False", False), ("", False)]
)
def test_booleans(workdir: Path, raw: str, expected: bool) -> None:
    assert config_for(workdir, PACKAGE_TYPE="npm", DRY_RUN=raw).dry_run is expected


def test_list_variables_from_a_yaml_list(workdir: Path) -> None:
    config = config_for(
        workdir,
        PACKAGE_TYPE="docker",
        BUILD_ARGS_COUNT="2",
        BUILD_ARGS_0="GREETING=hello world",
        BUILD_ARGS_1="CSV=a,b",
        TAGS_COUNT="1",
        TAGS_0="{version}",
    )
    assert config.docker.build_args == (("GREETING", "hello world"), ("CSV", "a,b"))
    assert config.docker.tags == ("{version}",)


def test_list_variables_from_a_plain_string(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="docker", TAGS="latest, {version}  edge", LABELS="team=core,tier=web")
    assert config.docker.tags == ("latest", "{version}", "edge")
    assert config.docker.labels == (("team", "core"), ("tier", "web"))


def test_maven_artifacts_list(workdir: Path) -> None:
    config = config_for(
        workdir,
        PACKAGE_TYPE="maven",
        REGISTRY_URL="https://m.example/",
        MAVEN_ARTIFACTS="target/a.jar target/a-sources.jar",
    )
    assert config.maven.artifacts == ("target/a.jar", "target/a-sources.jar")


def test_maven_properties_and_version_as_revision(workdir: Path) -> None:
    config = config_for(
        workdir,
        REGISTRY_URL="https://m.example/",
        MAVEN_PROPERTIES_COUNT="2",
        MAVEN_PROPERTIES_0="changelist=",
        MAVEN_PROPERTIES_1="with.extra=a b",
        VERSION="v1.3.0",
    )
    assert config.package_type == "maven"  # MAVEN_PROPERTIES names the kind
    assert config.maven.properties == (("changelist", ""), ("with.extra", "a b"))
    assert config.maven.version == "1.3.0"


def test_a_maven_properties_entry_without_a_value_says_how_to_write_it(workdir: Path) -> None:
    with pytest.raises(ConfigError) as error:
        config_for(workdir, PACKAGE_TYPE="maven", REGISTRY_URL="https://m.example/", MAVEN_PROPERTIES="revision")
    assert error.value.message == (
        "MAVEN_PROPERTIES entry 'revision' is not KEY=VALUE: write each entry as KEY=VALUE (use a YAML list when a "
        "value contains spaces or commas)."
    )


def test_build_context_comes_from_pipelines_variables(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="npm", BITBUCKET_TAG="v1.2.3-rc.1", BITBUCKET_BRANCH=None)
    assert config.context.tag == "v1.2.3-rc.1"
    assert str(config.context.tag_version) == "1.2.3-rc.1"
    assert config.context.short_commit == "0123456"
    assert config.context.build_number == "42"
    assert config.context.repo_slug == "widget"


def test_config_is_frozen(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="npm")
    with pytest.raises(AttributeError):
        config.dry_run = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.environment["X"] = "y"  # type: ignore[index]


def test_credentials_never_show_the_token(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="npm")
    assert TEST_TOKEN not in repr(config)
    assert TEST_TOKEN not in str(config.credentials)


# --- detection ----------------------------------------------------------------------


@pytest.mark.parametrize("marker,kind", [("Dockerfile", "docker"), ("package.json", "npm"), ("pom.xml", "maven")])
def test_detects_the_package_type(workdir: Path, marker: str, kind: str) -> None:
    (workdir / marker).write_text("x")
    overrides = {"REGISTRY_URL": "https://m.example/"} if kind == "maven" else {}
    assert config_for(workdir, **overrides).package_type == kind


def test_explicit_package_type_wins_over_detection(workdir: Path) -> None:
    (workdir / "Dockerfile").write_text("FROM scratch\n")
    (workdir / "package.json").write_text("{}")
    assert config_for(workdir, PACKAGE_TYPE="NPM").package_type == "npm"


# --- registries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,kind,url",
    [
        ("127.0.0.1:5000", "docker", "http://127.0.0.1:5000"),
        ("localhost:5000", "docker", "http://localhost:5000"),
        ("registry.example.com", "docker", "https://registry.example.com"),
        ("http://[::1]:4873", "npm", "http://[::1]:4873/"),
        ("http://127.0.0.2:8081/maven", "maven", "http://127.0.0.2:8081/maven/"),
        ("https://npm.example.com/ws/", "npm", "https://npm.example.com/ws/"),
    ],
)
def test_registry_urls_are_normalised(raw: str, kind: str, url: str) -> None:
    assert parse_registry(raw, kind, allow_insecure_http=False).url == url


def test_insecure_http_is_allowed_when_asked_for(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="npm", REGISTRY_URL="http://npm.example.com/", ALLOW_INSECURE_HTTP="true")
    assert config.registry.insecure is True


# --- every bad input: exit 1, one exact ✖ line, no traceback, no secret ----------------

MISSING_BOTH = (
    "✖ BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN are missing: pass them as pipe variables, e.g. "
    "BITBUCKET_PACKAGES_USERNAME: $BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN: "
    "$BITBUCKET_PACKAGES_TOKEN (or an Atlassian account email and an API token with write:package:bitbucket)."
)

BAD_INPUTS = {
    "missing both credentials": (
        {"BITBUCKET_PACKAGES_USERNAME": None, "BITBUCKET_PACKAGES_TOKEN": None, "PACKAGE_TYPE": "npm"},
        MISSING_BOTH,
    ),
    "missing token": (
        {"BITBUCKET_PACKAGES_TOKEN": "  ", "PACKAGE_TYPE": "npm"},
        "✖ BITBUCKET_PACKAGES_TOKEN is missing: pass them as pipe variables, e.g. BITBUCKET_PACKAGES_USERNAME: "
        "$BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN: $BITBUCKET_PACKAGES_TOKEN (or an Atlassian "
        "account email and an API token with write:package:bitbucket).",
    ),
    "missing username": (
        {"BITBUCKET_PACKAGES_USERNAME": None, "PACKAGE_TYPE": "npm"},
        "✖ BITBUCKET_PACKAGES_USERNAME is missing: pass them as pipe variables, e.g. BITBUCKET_PACKAGES_USERNAME: "
        "$BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN: $BITBUCKET_PACKAGES_TOKEN (or an Atlassian "
        "account email and an API token with write:package:bitbucket).",
    ),
    "unknown package type": (
        {"PACKAGE_TYPE": "pypi"},
        "✖ PACKAGE_TYPE 'pypi' is not supported: use docker, npm or maven.",
    ),
    "nothing to detect": (
        {},
        "✖ PACKAGE_TYPE is not set and no Dockerfile, package.json or pom.xml is in the working directory: "
        "set PACKAGE_TYPE to docker, npm or maven.",
    ),
    "bad DRY_RUN": (
        {"PACKAGE_TYPE": "npm", "DRY_RUN": "maybe"},
        "✖ DRY_RUN must be 'true' or 'false', got 'maybe': set DRY_RUN to 'true' or 'false' (or leave it out).",
    ),
    "bad DEBUG": (
        {"PACKAGE_TYPE": "npm", "DEBUG": "1"},
        "✖ DEBUG must be 'true' or 'false', got '1': set DEBUG to 'true' or 'false' (or leave it out).",
    ),
    "bad ALLOW_INSECURE_HTTP": (
        {"PACKAGE_TYPE": "npm", "ALLOW_INSECURE_HTTP": "yes"},
        "✖ ALLOW_INSECURE_HTTP must be 'true' or 'false', got 'yes': set ALLOW_INSECURE_HTTP to 'true' or 'false' "
        "(or leave it out).",
    ),
    "plain http to a remote host": (
        {"PACKAGE_TYPE": "npm", "REGISTRY_URL": "http://npm.example.com/acme/"},
        "✖ REGISTRY_URL http://npm.example.com/acme/ uses plain http:// on a host that is not loopback, which would "
        "send the token unencrypted: use https://, or set ALLOW_INSECURE_HTTP: 'true' if you accept that.",
    ),
    "plain http container registry": (
        {"PACKAGE_TYPE": "docker", "REGISTRY_URL": "http://10.1.2.3:5000"},
        "✖ REGISTRY_URL http://10.1.2.3:5000 uses plain http:// on a host that is not loopback, which would "
        "send the token unencrypted: use https://, or set ALLOW_INSECURE_HTTP: 'true' if you accept that.",
    ),
    "credentials in the registry url": (
        {"PACKAGE_TYPE": "npm", "REGISTRY_URL": f"https://{TEST_USER}:{TEST_TOKEN}@npm.example.com/"},
        "✖ REGISTRY_URL must not contain credentials: remove the user-info and pass BITBUCKET_PACKAGES_USERNAME / "
        "BITBUCKET_PACKAGES_TOKEN instead.",
    ),
    "not an http url": (
        {"PACKAGE_TYPE": "npm", "REGISTRY_URL": "ftp://npm.example.com/"},
        "✖ REGISTRY_URL 'ftp://npm.example.com/' is not an http(s) URL: write it as https://host/path/",
    ),
    "npm url without scheme": (
        {"PACKAGE_TYPE": "npm", "REGISTRY_URL": "npm.example.com/acme/"},
        "✖ REGISTRY_URL 'npm.example.com/acme/' has no scheme: write it as https://npm.example.com/acme/",
    ),
    "maven without registry": (
        {"PACKAGE_TYPE": "maven"},
        "✖ REGISTRY_URL is required for Maven: copy the repository URL from the package's page in Bitbucket "
        "Packages and set REGISTRY_URL to it.",
    ),
    "npm without workspace": (
        {"PACKAGE_TYPE": "npm", "BITBUCKET_WORKSPACE": None},
        "✖ WORKSPACE is not set and BITBUCKET_WORKSPACE is empty, so the npm registry URL is unknown: set "
        "WORKSPACE to your Bitbucket workspace slug.",
    ),
    "docker without workspace": (
        {"PACKAGE_TYPE": "docker", "BITBUCKET_WORKSPACE": None},
        "✖ WORKSPACE is not set and BITBUCKET_WORKSPACE is empty: set WORKSPACE to your Bitbucket workspace slug.",
    ),
    "docker without image name": (
        {"PACKAGE_TYPE": "docker", "BITBUCKET_REPO_SLUG": None},
        "✖ IMAGE_NAME is not set and BITBUCKET_REPO_SLUG is empty: set IMAGE_NAME to the image's name.",
    ),
    "invalid image name": (
        {"PACKAGE_TYPE": "docker", "IMAGE_NAME": "My_Image"},
        "✖ IMAGE_NAME 'My_Image' is not a valid image repository name: use lowercase letters, digits and single "
        "separators (. _ -), e.g. my-service.",
    ),
    "build arg without value": (
        {"PACKAGE_TYPE": "docker", "BUILD_ARGS": "VERSION"},
        "✖ BUILD_ARGS entry 'VERSION' is not KEY=VALUE: write each entry as KEY=VALUE (use a YAML list when a "
        "value contains spaces or commas).",
    ),
    "label with bad key": (
        {"PACKAGE_TYPE": "docker", "LABELS_COUNT": "1", "LABELS_0": "=orphan"},
        "✖ LABELS entry '=orphan' is not KEY=VALUE: write each entry as KEY=VALUE (use a YAML list when a value "
        "contains spaces or commas).",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_ends_in_one_actionable_line(workdir: Path, case: str) -> None:
    overrides, expected = BAD_INPUTS[case]
    run = run_in_process(base_env(**overrides), workdir)
    assert run.code == 1
    assert run.lines == [expected]
    assert "Traceback" not in run.output
    assert_no_secret(run.output)


@pytest.mark.parametrize("markers", [("Dockerfile", "package.json"), ("Dockerfile", "package.json", "pom.xml")])
def test_ambiguous_detection_asks_for_package_type(workdir: Path, markers: tuple[str, ...]) -> None:
    for marker in markers:
        (workdir / marker).write_text("x")
    run = run_in_process(base_env(), workdir)
    kinds = {"Dockerfile": "docker", "package.json": "npm", "pom.xml": "maven"}
    assert run.code == 1
    assert run.lines == [
        f"✖ PACKAGE_TYPE is not set and the working directory has {', '.join(markers)}: "
        f"set PACKAGE_TYPE to one of {', '.join(kinds[m] for m in markers)}."
    ]


def test_bad_input_as_a_real_process_from_another_directory(workdir: Path) -> None:
    """`python3 -m pipe` works from any working directory and exits 1 with one line."""
    run = run_subprocess(base_env(PACKAGE_TYPE="maven"), workdir)
    assert run.code == 1
    assert run.lines == [
        "✖ REGISTRY_URL is required for Maven: copy the repository URL from the package's page in Bitbucket "
        "Packages and set REGISTRY_URL to it."
    ]


def test_config_error_raised_directly_names_the_variable(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="^PACKAGE_TYPE 'x' is not supported"):
        config_for(workdir, PACKAGE_TYPE="x")


# --- IMAGE_ARCHIVE and PUSH_METHOD (native pushes) ------------------------------------


def test_image_archive_and_push_method(workdir: Path) -> None:
    config = config_for(workdir, PACKAGE_TYPE="docker", IMAGE_ARCHIVE="build/image.tar", PUSH_METHOD="Native")
    assert config.docker.image_archive == "build/image.tar"
    assert config.docker.push_method == "native"
    defaults = config_for(workdir, PACKAGE_TYPE="docker")
    assert (defaults.docker.image_archive, defaults.docker.push_method) == (None, "auto")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"PUSH_METHOD": "fast"},
            "PUSH_METHOD 'fast' is not supported: use auto, native or engine.",
        ),
        (
            {"IMAGE_ARCHIVE": "image.tar", "LOCAL_IMAGE": "app:1"},
            "IMAGE_ARCHIVE and LOCAL_IMAGE are both set: set only one of them (the archive is pushed as it is; "
            "LOCAL_IMAGE is an image in the Docker engine).",
        ),
        (
            {"IMAGE_ARCHIVE": "image.tar", "PUSH_METHOD": "engine"},
            "PUSH_METHOD 'engine' cannot push an IMAGE_ARCHIVE (archives are pushed without a Docker engine): "
            "leave PUSH_METHOD out or set it to native.",
        ),
    ],
)
def test_image_source_conflicts(workdir: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_for(workdir, PACKAGE_TYPE="docker", **overrides)
    assert caught.value.message == message


@pytest.mark.parametrize(
    "overrides,kind",
    [
        ({"LOCAL_IMAGE": "app:ci"}, "docker"),
        ({"IMAGE_ARCHIVE": "image.tar"}, "docker"),
        ({"NPM_PACKAGE": "dist/app.tgz"}, "npm"),
        ({"MAVEN_ARTIFACTS": "target/a-1.jar", "REGISTRY_URL": "https://m.example/"}, "maven"),
    ],
)
def test_a_kind_of_its_own_variables_needs_no_marker_file(workdir: Path, overrides: dict, kind: str) -> None:
    assert config_for(workdir, **overrides).package_type == kind


def test_variables_of_two_kinds_fall_back_to_the_files(workdir: Path) -> None:
    (workdir / "package.json").write_text("{}")
    assert config_for(workdir, LOCAL_IMAGE="app:ci", MAVEN_POM="pom.xml").package_type == "npm"


# --- BUILDER, CACHE_FROM, BUILD_NETWORK ---------------------------------------------------


def test_build_settings_and_their_defaults(workdir: Path) -> None:
    defaults = config_for(workdir, PACKAGE_TYPE="docker").docker
    assert (defaults.builder, defaults.cache_from, defaults.build_network) == ("auto", None, None)
    config = config_for(
        workdir, PACKAGE_TYPE="docker", BUILDER="BuildKit", CACHE_FROM="latest, {branch}", BUILD_NETWORK="Host"
    ).docker
    assert (config.builder, config.cache_from, config.build_network) == ("buildkit", ("latest", "{branch}"), "host")
    assert config_for(workdir, PACKAGE_TYPE="docker", CACHE_FROM="None").docker.cache_from == ()
    assert config_for(workdir, PACKAGE_TYPE="docker", BUILD_NETWORK="ci_net").docker.build_network == "ci_net"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BUILDER": "kaniko"}, "BUILDER 'kaniko' is not supported: use auto, buildkit or classic."),
        (
            {"CACHE_FROM": "none latest"},
            "CACHE_FROM names 'none' and other sources: set CACHE_FROM: 'none' alone to build without cache "
            "sources, or list only the sources.",
        ),
        (
            {"BUILD_NETWORK": "host;rm"},
            "BUILD_NETWORK 'host;rm' is not a network mode: use default, host, none or the name of a network of "
            "the Docker engine (as docker build --network).",
        ),
    ],
)
def test_bad_build_settings(workdir: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_for(workdir, PACKAGE_TYPE="docker", **overrides)
    assert caught.value.message == message

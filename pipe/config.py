"""The pipe's variables, read once through bitbucket-pipes-toolkit and validated into one
frozen `Config`. Nothing else in the pipe reads the environment for pipe variables."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bitbucket_pipes_toolkit import ArrayVariable, Pipe

from pipe.auth import Credentials
from pipe.context import PipelinesRun
from pipe.errors import ConfigError
from pipe.versioning import strip_v

if TYPE_CHECKING:
    from requests.adapters import BaseAdapter as HTTPTransport

PACKAGE_TYPES = ("docker", "npm", "maven")

# What detection looks for in the working directory, per package type.
MARKER_FILES = {"docker": "Dockerfile", "npm": "package.json", "maven": "pom.xml"}
# Variables that only make sense for one kind: set alone, they say which kind is meant (an image
# built earlier in the step needs no Dockerfile in the clone).
KIND_VARIABLES = {
    "docker": ("LOCAL_IMAGE", "IMAGE_ARCHIVE", "INDEX_FROM_TAGS"),
    "npm": ("NPM_PACKAGE", "NPM_WORKSPACES"),
    "maven": ("MAVEN_POM", "MAVEN_ARTIFACTS", "MAVEN_MODULES", "MAVEN_PROPERTIES", "MAVEN_STAGING_DIR"),
}

DEFAULT_CONTAINER_REGISTRY = "crg.apkg.io"
DEFAULT_NPM_REGISTRY = "https://npm.apkg.io/{workspace}/"
PUSH_METHODS = ("auto", "native", "engine")
BUILDERS = ("auto", "buildkit", "classic")
# `docker build --network`: the engine's modes, or the name of one of its networks.
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ACTIONS = ("publish", "cleanup")

STRING_VARIABLES = (
    "BITBUCKET_PACKAGES_USERNAME",
    "BITBUCKET_PACKAGES_TOKEN",
    "PACKAGE_TYPE",
    "WORKSPACE",
    "REGISTRY_URL",
    "DRY_RUN",
    "ALLOW_INSECURE_HTTP",
    "DEBUG",
    "IMAGE_NAME",
    "LOCAL_IMAGE",
    "IMAGE_ARCHIVE",
    "PUSH_METHOD",
    "BUILDER",
    "BUILD_NETWORK",
    "DOCKERFILE",
    "BUILD_CONTEXT",
    "BUILD_TARGET",
    "NPM_PACKAGE",
    "NPM_DIST_TAG",
    "VERSION",
    "MAVEN_POM",
    "MAVEN_STAGING_DIR",
    # ACTION=cleanup and its rules
    "ACTION",
    "KEEP_RELEASES",
    "OLDER_THAN_DAYS",
)
LIST_VARIABLES = (
    "BUILD_ARGS",
    "LABELS",
    "TAGS",
    "MAVEN_ARTIFACTS",
    "NPM_WORKSPACES",
    "MAVEN_MODULES",
    "MAVEN_PROPERTIES",
    "DELETE_MATCHING",
    "INDEX_FROM_TAGS",
    "CACHE_FROM",
)
BOOLEAN_VARIABLES = ("DRY_RUN", "ALLOW_INSECURE_HTTP", "DEBUG")
CREDENTIAL_VARIABLES = ("BITBUCKET_PACKAGES_USERNAME", "BITBUCKET_PACKAGES_TOKEN")

_LIST_SEPARATORS = re.compile(r"[\s,]+")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# One path component of an OCI repository name (distribution's reference grammar).
_IMAGE_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class Registry:
    """Where to publish: a base URL (scheme included, no credentials); its host and whether it is
    plain http follow from it."""

    url: str

    @property
    def host(self) -> str:
        """`host[:port]`, as registries name themselves in image references and token scopes."""
        return urlsplit(self.url).netloc

    @property
    def insecure(self) -> bool:
        return urlsplit(self.url).scheme == "http"

    @property
    def path(self) -> str:
        """The URL's path without slashes at either end ('' for a bare host)."""
        return urlsplit(self.url).path.strip("/")


@dataclass(frozen=True)
class DockerSettings:
    image_name: str | None
    local_image: str | None
    dockerfile: str
    build_context: str
    build_args: tuple[tuple[str, str], ...]
    build_target: str | None
    labels: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    # A `docker save` tarball or OCI image layout to push as it is, with no Docker engine.
    image_archive: str | None = None
    # How images are pushed: "auto" (the faster path, see README), "native" (OCI distribution
    # API from the pipe), "engine" (docker push through the engine).
    push_method: str = "auto"
    # Tags of single-platform images in the repository to tie into one image index (no engine).
    index_from_tags: tuple[str, ...] = ()
    # Which builder builds the Dockerfile: "auto" (BuildKit when the engine has it), "buildkit", "classic".
    builder: str = "auto"
    # CACHE_FROM as written (tags of IMAGE_NAME with TAGS placeholders, or full references).
    # None: the default (the tags this run moves that already exist); (): `none`, no cache sources.
    cache_from: tuple[str, ...] | None = None
    # The network of RUN steps (`docker build --network`); None: the engine's default.
    build_network: str | None = None


@dataclass(frozen=True)
class NpmSettings:
    package: str
    dist_tag: str | None
    version: str | None
    # Workspace packages to publish (names or folders); empty = every public one.
    workspaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class MavenSettings:
    pom: str
    artifacts: tuple[str, ...]
    # artifactIds of the reactor modules to deploy (empty: every module).
    modules: tuple[str, ...] = ()
    # MAVEN_PROPERTIES: the `-D` values the build ran with (profile activation, ${…} in the POMs).
    properties: tuple[tuple[str, str], ...] = ()
    # VERSION without a leading v: the value of ${revision}.
    version: str | None = None
    # A folder in Maven repository layout written by the build (mvn deploy to a file: repository,
    # Gradle's maven-publish, sbt, Bazel): deployed as staged instead of the POM and target/.
    staging_dir: str | None = None


@dataclass(frozen=True)
class CleanupRules:
    """The user's rules (KEEP_RELEASES, DELETE_MATCHING, OLDER_THAN_DAYS); unset is None/()."""

    keep_releases: int | None = None
    delete_matching: tuple[str, ...] = ()
    older_than_days: int | None = None

    @property
    def any(self) -> bool:
        return self.keep_releases is not None or bool(self.delete_matching) or self.older_than_days is not None


@dataclass(frozen=True)
class Config:
    credentials: Credentials
    package_type: str
    workspace: str | None
    registry: Registry
    dry_run: bool
    allow_insecure_http: bool
    debug: bool
    working_dir: Path
    context: PipelinesRun
    docker: DockerSettings
    npm: NpmSettings
    maven: MavenSettings
    # The whole environment, read-only, for the few things that are not pipe variables
    # (DOCKER_HOST, BITBUCKET_PIPELINES_VARIABLES_PATH, …). Kept out of repr: it holds the token.
    environment: Mapping[str, str] = field(repr=False)
    # "publish" (the default) or "cleanup", with the cleanup's rules.
    action: str = "publish"
    cleanup: CleanupRules = CleanupRules()
    # The HTTP transport every registry client mounts (`pipe.http.new_session(transport=…)`): None
    # is the real network. Never read from the environment; tests hand a fake one in here, the one
    # seam between the pipe and HTTP.
    transport: HTTPTransport | None = field(default=None, repr=False, compare=False)

    def resolve(self, path: str) -> Path:
        """A user-given path, relative to the working directory (the clone)."""
        return (self.working_dir / path).resolve()


def read_variables(env: Mapping[str, str]) -> dict[str, object]:
    """Pipe variables through the toolkit, every one typed as string (the toolkit would parse
    other types as YAML and turn the tag `1.10` into `1.1`). List variables arrive either as
    Pipelines' `NAME_COUNT`/`NAME_n` or as one space/comma-separated string."""
    schema = {name: {"type": "string", "nullable": True} for name in STRING_VARIABLES + LIST_VARIABLES}
    root = logging.getLogger()
    level = root.level
    # The toolkit turns its (root) logger to DEBUG for any non-empty DEBUG value, "false"
    # included; the pipe decides its own log level, so undo that.
    variables: dict[str, object] = dict(Pipe(schema=schema, env=dict(env)).variables)
    root.setLevel(level)
    for name in LIST_VARIABLES:
        if f"{name}_COUNT" in env:
            items = list(ArrayVariable(name, env))
            if name in EXACT_LISTS:
                check_exact_list(name, items)
        else:
            items = _LIST_SEPARATORS.split(str(variables.get(name) or ""))
        variables[name] = tuple(item.strip() for item in items if item and item.strip())
    if variables.get("INDEX_FROM_TAGS"):
        check_exact_list("INDEX_FROM_TAGS", list(variables["INDEX_FROM_TAGS"]))
    return variables


# Lists whose every entry is meant: an empty entry or one named twice is a mistake (a platform
# image left out of the index), not something to drop silently.
EXACT_LISTS = ("INDEX_FROM_TAGS",)


def check_exact_list(name: str, items: list[str]) -> None:
    blank = [position + 1 for position, item in enumerate(items) if not (item or "").strip()]
    if blank:
        raise ConfigError(
            f"{name} has an empty entry (entry {blank[0]} of {len(items)}): remove it or fill in the tag it was "
            "meant to name."
        )
    stripped = [item.strip() for item in items]
    twice = sorted({item for item in stripped if stripped.count(item) > 1})
    if twice:
        raise ConfigError(f"{name} names {', '.join(twice)} more than once: list each platform's tag once.")


def _text(variables: Mapping[str, object], name: str, default: str | None = None) -> str | None:
    value = variables.get(name)
    value = value.strip() if isinstance(value, str) else value
    return value or default


def parse_bool(name: str, raw: object, default: bool = False) -> bool:
    if raw is None or str(raw).strip() == "":
        return default
    lowered = str(raw).strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConfigError(
        f"{name} must be 'true' or 'false', got '{raw}': set {name} to 'true' or 'false' (or leave it out)."
    )


def parse_key_values(name: str, items: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise ConfigError(
                f"{name} entry '{item}' is not KEY=VALUE: write each entry as KEY=VALUE "
                f"(use a YAML list when a value contains spaces or commas)."
            )
        pairs.append((key, value))
    return tuple(pairs)


def read_credentials(variables: Mapping[str, object]) -> Credentials:
    missing = [name for name in CREDENTIAL_VARIABLES if not _text(variables, name)]
    if missing:
        names = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(
            f"{names} {verb} missing: pass them as pipe variables, e.g. "
            "BITBUCKET_PACKAGES_USERNAME: $BITBUCKET_PACKAGES_USERNAME and "
            "BITBUCKET_PACKAGES_TOKEN: $BITBUCKET_PACKAGES_TOKEN "
            "(or an Atlassian account email and an API token with write:package:bitbucket)."
        )
    username, token = (str(_text(variables, name)) for name in CREDENTIAL_VARIABLES)
    for name, value in zip(CREDENTIAL_VARIABLES, (username, token), strict=True):
        # HTTP sends credentials in Latin-1 headers: anything else cannot be sent (and a control
        # character would end the header). The value itself is never shown.
        if any(ord(char) > 0xFF or ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ConfigError(
                f"{name} contains a character HTTP authentication cannot carry (a control character or one "
                "outside Latin-1): copy the value again from Bitbucket into the repository variable; a stray "
                "character may have been pasted with it."
            )
    return Credentials(username, token)


def detect_package_type(working_dir: Path) -> str:
    found = [kind for kind, marker in MARKER_FILES.items() if (working_dir / marker).is_file()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(
            "PACKAGE_TYPE is not set and no Dockerfile, package.json or pom.xml is in the working "
            "directory: set PACKAGE_TYPE to docker, npm or maven."
        )
    markers = ", ".join(MARKER_FILES[kind] for kind in found)
    raise ConfigError(
        f"PACKAGE_TYPE is not set and the working directory has {markers}: "
        f"set PACKAGE_TYPE to one of {', '.join(found)}."
    )


def kind_named_by_variables(variables: Mapping[str, object]) -> str | None:
    """The one package type whose own variables are set, if exactly one is."""
    named = [kind for kind, names in KIND_VARIABLES.items() if any(variables.get(name) for name in names)]
    return named[0] if len(named) == 1 else None


def read_package_type(variables: Mapping[str, object], working_dir: Path) -> str:
    package_type = _text(variables, "PACKAGE_TYPE")
    if package_type is None:
        return kind_named_by_variables(variables) or detect_package_type(working_dir)
    if package_type.lower() not in PACKAGE_TYPES:
        raise ConfigError(f"PACKAGE_TYPE '{package_type}' is not supported: use docker, npm or maven.")
    return package_type.lower()


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_registry(raw: str, package_type: str, allow_insecure_http: bool) -> Registry:
    """Normalise a registry address. Container registries are often written as a bare host
    (`crg.apkg.io`, `127.0.0.1:5000`): like Docker, assume https, except on loopback."""
    text = raw.strip()
    # Credentials in the URL are refused before anything else is said about it, and the URL is not
    # repeated: every other message would quote (or drop) the user-info and contradict this one.
    if "@" in urlsplit(text if "://" in text else f"//{text}").netloc:
        raise ConfigError(
            "REGISTRY_URL must not contain credentials: remove the user-info and pass "
            "BITBUCKET_PACKAGES_USERNAME / BITBUCKET_PACKAGES_TOKEN instead."
        )
    if "://" not in text:
        if package_type != "docker":
            raise ConfigError(f"REGISTRY_URL '{text}' has no scheme: write it as https://{text}")
        host = urlsplit(f"//{text}").hostname or ""
        text = f"{'http' if is_loopback(host) else 'https'}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"REGISTRY_URL '{raw}' is not an http(s) URL: write it as https://host/path/")
    insecure = parts.scheme == "http"
    if insecure and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            f"REGISTRY_URL {text} uses plain http:// on a host that is not loopback, which would send "
            "the token unencrypted: use https://, or set ALLOW_INSECURE_HTTP: 'true' if you accept that."
        )
    # npm and Maven URLs are bases that paths are appended to: the trailing slash matters.
    url = text if text.endswith("/") or package_type == "docker" else text + "/"
    return Registry(url=url)


def read_registry(
    variables: Mapping[str, object], package_type: str, workspace: str | None, allow_insecure: bool
) -> Registry:
    explicit = _text(variables, "REGISTRY_URL")
    if explicit:
        return parse_registry(explicit, package_type, allow_insecure)
    if package_type == "docker":
        return parse_registry(DEFAULT_CONTAINER_REGISTRY, package_type, allow_insecure)
    if package_type == "npm":
        if not workspace:
            raise ConfigError(
                "WORKSPACE is not set and BITBUCKET_WORKSPACE is empty, so the npm registry URL is unknown: "
                "set WORKSPACE to your Bitbucket workspace slug."
            )
        return parse_registry(DEFAULT_NPM_REGISTRY.format(workspace=workspace), package_type, allow_insecure)
    raise ConfigError(
        "REGISTRY_URL is required for Maven: copy the repository URL from the package's page in "
        "Bitbucket Packages and set REGISTRY_URL to it."
    )


def check_image_name(image_name: str | None, workspace: str | None) -> None:
    """Containers are pushed to `<registry>/<workspace>/<image>`: both parts must be set and
    be valid repository-name components, checked before anything is built."""
    if not workspace:
        raise ConfigError(
            "WORKSPACE is not set and BITBUCKET_WORKSPACE is empty: set WORKSPACE to your Bitbucket workspace slug."
        )
    if not image_name:
        raise ConfigError("IMAGE_NAME is not set and BITBUCKET_REPO_SLUG is empty: set IMAGE_NAME to the image's name.")
    for name, value in (("WORKSPACE", workspace), ("IMAGE_NAME", image_name)):
        if not all(_IMAGE_COMPONENT.match(part) for part in value.split("/")):
            raise ConfigError(
                f"{name} '{value}' is not a valid image repository name: use lowercase letters, digits "
                "and single separators (. _ -), e.g. my-service."
            )


def read_image_source(variables: Mapping[str, object]) -> tuple[str | None, str]:
    """IMAGE_ARCHIVE and PUSH_METHOD, checked against each other and LOCAL_IMAGE."""
    archive = _text(variables, "IMAGE_ARCHIVE")
    method = str(_text(variables, "PUSH_METHOD", "auto")).lower()
    if method not in PUSH_METHODS:
        raise ConfigError(
            f"PUSH_METHOD '{_text(variables, 'PUSH_METHOD')}' is not supported: use auto, native or engine."
        )
    if archive and _text(variables, "LOCAL_IMAGE"):
        raise ConfigError(
            "IMAGE_ARCHIVE and LOCAL_IMAGE are both set: set only one of them (the archive is pushed as it is; "
            "LOCAL_IMAGE is an image in the Docker engine)."
        )
    if archive and method == "engine":
        raise ConfigError(
            "PUSH_METHOD 'engine' cannot push an IMAGE_ARCHIVE (archives are pushed without a Docker engine): "
            "leave PUSH_METHOD out or set it to native."
        )
    if variables.get("INDEX_FROM_TAGS"):
        check_index_sources(variables)
    return archive, method


# Counts are bounded so that date arithmetic and loops on them stay finite: a century of days, and
# more releases than any registry lists.
COUNT_LIMITS = {"OLDER_THAN_DAYS": 36_500, "KEEP_RELEASES": 1_000_000}


def read_count(variables: Mapping[str, object], name: str) -> int | None:
    raw = _text(variables, name)
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise ConfigError(f"{name} must be a whole number of 0 or more, got '{raw[:40]}': set it like {name}: '10'.")
    limit = COUNT_LIMITS.get(name)
    if limit is not None and int(raw) > limit:
        raise ConfigError(f"{name} is {raw}, more than the largest value it takes ({limit}): set a smaller number.")
    return int(raw)


def read_action(variables: Mapping[str, object]) -> tuple[str, CleanupRules]:
    """ACTION and the cleanup rules; ACTION=cleanup without any rule would have nothing to go by."""
    action = str(_text(variables, "ACTION", "publish")).lower()
    if action not in ACTIONS:
        raise ConfigError(f"ACTION '{_text(variables, 'ACTION')}' is not supported: use publish or cleanup.")
    rules = CleanupRules(
        keep_releases=read_count(variables, "KEEP_RELEASES"),
        delete_matching=tuple(variables["DELETE_MATCHING"]),
        older_than_days=read_count(variables, "OLDER_THAN_DAYS"),
    )
    if action == "cleanup" and not rules.any:
        raise ConfigError(
            "ACTION is cleanup but no rule says what to delete: set KEEP_RELEASES (e.g. '10'), "
            "DELETE_MATCHING (e.g. ['sha-*']) or OLDER_THAN_DAYS (e.g. '14')."
        )
    return action, rules


def check_index_sources(variables: Mapping[str, object]) -> None:
    """An index is made of images already in the registry: nothing local goes with it."""
    local = [name for name in ("LOCAL_IMAGE", "IMAGE_ARCHIVE") if _text(variables, name)]
    if local:
        raise ConfigError(
            f"INDEX_FROM_TAGS and {' and '.join(local)} are both set: INDEX_FROM_TAGS ties images already pushed "
            f"to the registry into one index; push each image in its own step, then run the index step without "
            f"{' or '.join(local)}."
        )


def read_staging_dir(variables: Mapping[str, object], action: str) -> str | None:
    """MAVEN_STAGING_DIR names every file to deploy: the variables that pick a POM and its files
    would be ignored next to it, so setting both is refused rather than half obeyed; so is a
    cleanup, which selects its artifact by MAVEN_POM."""
    staging_dir = _text(variables, "MAVEN_STAGING_DIR")
    if staging_dir is None:
        return None
    if action == "cleanup":
        raise ConfigError(
            "MAVEN_STAGING_DIR is set for ACTION cleanup, which selects the artifact to clean up by its POM "
            "(MAVEN_POM): remove MAVEN_STAGING_DIR from the cleanup step and set MAVEN_POM to the artifact's POM."
        )
    mixed = [
        name for name in ("MAVEN_POM", "MAVEN_ARTIFACTS", "MAVEN_MODULES", "MAVEN_PROPERTIES") if _text(variables, name)
    ]
    if mixed:
        raise ConfigError(
            f"MAVEN_STAGING_DIR and {' and '.join(mixed)} are both set: MAVEN_STAGING_DIR deploys every version "
            f"the build staged in that folder, as it is; remove {' and '.join(mixed)}, or remove MAVEN_STAGING_DIR "
            "to deploy a POM and its target/."
        )
    return staging_dir


def read_maven_settings(variables: Mapping[str, object], action: str) -> MavenSettings:
    """MAVEN_* and VERSION; VERSION sets ${revision}, so MAVEN_PROPERTIES may not say otherwise."""
    properties = parse_key_values("MAVEN_PROPERTIES", variables["MAVEN_PROPERTIES"])
    version = _text(variables, "VERSION")
    version = strip_v(version) if version else None
    given = dict(properties).get("revision")
    if version is not None and given is not None and given != version:
        raise ConfigError(
            f"VERSION ({version}) and MAVEN_PROPERTIES revision={given} disagree: VERSION sets ${{revision}}; "
            "set only one of them."
        )
    return MavenSettings(
        pom=str(_text(variables, "MAVEN_POM", "pom.xml")),
        artifacts=variables["MAVEN_ARTIFACTS"],
        modules=variables["MAVEN_MODULES"],
        properties=properties,
        version=version,
        staging_dir=read_staging_dir(variables, action),
    )


def read_build_settings(variables: Mapping[str, object]) -> tuple[str, tuple[str, ...] | None, str | None]:
    """BUILDER, CACHE_FROM ('none' alone turns the cache sources off) and BUILD_NETWORK."""
    builder = str(_text(variables, "BUILDER", "auto")).lower()
    if builder not in BUILDERS:
        raise ConfigError(f"BUILDER '{_text(variables, 'BUILDER')}' is not supported: use auto, buildkit or classic.")
    entries = tuple(variables["CACHE_FROM"])
    cache_from: tuple[str, ...] | None = entries or None
    if any(entry.lower() == "none" for entry in entries):
        if len(entries) > 1:
            raise ConfigError(
                "CACHE_FROM names 'none' and other sources: set CACHE_FROM: 'none' alone to build without "
                "cache sources, or list only the sources."
            )
        cache_from = ()
    network = _text(variables, "BUILD_NETWORK")
    if network is not None and not _NETWORK_NAME.match(network):
        raise ConfigError(
            f"BUILD_NETWORK '{network[:60]}' is not a network mode: use default, host, none or the name "
            "of a network of the Docker engine (as docker build --network)."
        )
    if network is not None and network.lower() in ("default", "host", "none"):
        network = network.lower()
    return builder, cache_from, network


def load_config(env: Mapping[str, str], working_dir: Path) -> Config:
    """Build the one validated configuration from an injected environment."""
    variables = read_variables(env)
    credentials = read_credentials(variables)
    flags = {name: parse_bool(name, variables.get(name)) for name in BOOLEAN_VARIABLES}
    context = PipelinesRun.from_env(env)
    package_type = read_package_type(variables, working_dir)
    workspace = _text(variables, "WORKSPACE", context.workspace)
    registry = read_registry(variables, package_type, workspace, flags["ALLOW_INSECURE_HTTP"])
    image_name = _text(variables, "IMAGE_NAME", context.repo_slug)
    if package_type == "docker":
        check_image_name(image_name, workspace)
    image_archive, push_method = read_image_source(variables)
    action, rules = read_action(variables)
    builder, cache_from, build_network = read_build_settings(variables)
    return Config(
        credentials=credentials,
        package_type=package_type,
        workspace=workspace,
        registry=registry,
        dry_run=flags["DRY_RUN"],
        allow_insecure_http=flags["ALLOW_INSECURE_HTTP"],
        debug=flags["DEBUG"],
        working_dir=working_dir,
        context=context,
        docker=DockerSettings(
            image_name=image_name,
            local_image=_text(variables, "LOCAL_IMAGE"),
            dockerfile=str(_text(variables, "DOCKERFILE", "Dockerfile")),
            build_context=str(_text(variables, "BUILD_CONTEXT", ".")),
            build_args=parse_key_values("BUILD_ARGS", variables["BUILD_ARGS"]),
            build_target=_text(variables, "BUILD_TARGET"),
            labels=parse_key_values("LABELS", variables["LABELS"]),
            tags=variables["TAGS"],
            image_archive=image_archive,
            push_method=push_method,
            index_from_tags=variables["INDEX_FROM_TAGS"],
            builder=builder,
            cache_from=cache_from,
            build_network=build_network,
        ),
        npm=NpmSettings(
            package=str(_text(variables, "NPM_PACKAGE", ".")),
            dist_tag=_text(variables, "NPM_DIST_TAG"),
            version=_text(variables, "VERSION"),
            workspaces=variables["NPM_WORKSPACES"],
        ),
        maven=read_maven_settings(variables, action),
        action=action,
        cleanup=rules,
        environment=MappingProxyType(dict(env)),
    )

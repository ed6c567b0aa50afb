"""Publisher for PACKAGE_TYPE=npm: pack a folder (or take a `.tgz` as it is), check what the
registry already has, and publish with one streamed PUT — no Node.js, no .npmrc.

Everything that can be refused before the upload is checked before it: the manifest, the
version against the tag pipeline, the registry's copy of the version, the dist-tag plan."""

from __future__ import annotations

import itertools
import logging
import tarfile
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from pipe.config import Config
from pipe.errors import ConfigError, ConflictError, InputError, RegistryError
from pipe.http import accepted, is_transient, new_session, retry, session_budget, unreachable_error
from pipe.masking import SecretMasker
from pipe.npm import enclosing_workspace, packlist, pnpm_pack, tarball
from pipe.npm.manifest import (
    Dist,
    PackageJson,
    Readme,
    check_not_private,
    check_tag_matches,
    choose_dist_tag,
    publish_document,
    read_folder_package_json,
    read_folder_readme,
    read_tarball_package,
    tarball_manifest_bytes,
    tarball_url,
    validate_name,
    version_manifest,
)
from pipe.npm.manifest import publish_version as choose_version
from pipe.npm.pnpm_workspace import workspace_at
from pipe.npm.registry import (
    CONFLICT_STATUSES,
    NpmRegistry,
    Packument,
    PublishBody,
)
from pipe.npm.tarball import compute_dist
from pipe.outputs import Publication
from pipe.progress import format_size
from pipe.versioning import SemVer

# A dry run lists the packed files; beyond this many, the rest is summarised in one line.
MAX_LISTED_FILES = 500


@dataclass(frozen=True)
class Source:
    """What NPM_PACKAGE points at: a package folder or a ready `.tgz`."""

    path: Path
    shown: str  # as the user wrote it, for messages
    is_tarball: bool
    package: PackageJson
    readme: Readme
    # Ignore files of the folders above a workspace package, which npm applies to it too.
    outer_rules: tuple[str, ...] = ()
    # The workspace root of a pnpm workspace's package, which is then packed as `pnpm pack` packs it.
    pnpm_root: Path | None = None


@dataclass(frozen=True)
class Plan:
    name: str
    version: str
    dist_tag: str
    # The dist-tags sent with the PUT; `latest` may be held at a higher version already there.
    dist_tags: dict[str, str]
    tag_applied: bool


def read_source(config: Config) -> Source:
    shown = config.npm.package
    path = config.resolve(shown)
    if not path.exists():
        raise InputError(
            f"NPM_PACKAGE '{shown}' does not exist in {config.working_dir}: point it at the package folder "
            "(the one with package.json) or at a .tgz made by `npm pack`."
        )
    if path.is_dir():
        return Source(path, shown, False, read_folder_package_json(path, shown), read_folder_readme(path))
    package, readme = read_tarball_package(path, shown)
    return Source(path, shown, True, package, readme)


def plan_dist_tags(packument: Packument | None, tag: str, version: SemVer, log: logging.Logger) -> tuple[dict, bool]:
    """The dist-tags for the PUT. `latest` never moves down: when a higher version holds it, the
    PUT names that version for `latest` (a no-op) and the new version gets no tag."""
    if tag == "latest" and packument is not None:
        current = packument.dist_tags.get("latest")
        current_version = SemVer.parse(current) if current else None
        if current_version is not None and current_version > version:
            log.warning(
                "latest stays on %s, which is higher than %s; set NPM_DIST_TAG to give this version a tag of its own.",
                current,
                version,
            )
            return {"latest": current}, False
    return {tag: str(version)}, True


# Where Pipelines keeps pipes' storage inside the clone (this pipe's JSON summary too).
PIPELINES_GENERATED = Path(".bitbucket") / "pipelines" / "generated"


def pipe_storage_dirs(config: Config) -> list[Path]:
    """Folders Pipelines fills during the step, which are no part of any package."""
    dirs = [Path(folder) for folder in config.context.storage_dirs]
    if config.context.clone_dir:
        dirs.append(Path(config.context.clone_dir) / PIPELINES_GENERATED)
    return [config.resolve(str(folder)) for folder in dirs]


def leave_out(files: list[packlist.PackFile], folder: Path, excluded: list[Path]) -> list[packlist.PackFile]:
    """`files` without those under an excluded folder. Pipes' storage lives inside the clone, so a
    package at the clone's root would otherwise pack an earlier pipe's summary, and a re-run in
    the same clone would look like different contents."""
    prefixes = []
    for candidate in excluded:
        try:
            prefixes.append(candidate.relative_to(folder.resolve()).as_posix() + "/")
        except ValueError:
            continue  # not inside the package
    return [f for f in files if not any(f.path.startswith(prefix) for prefix in prefixes)]


def pack_folder(
    source: Source, version: str, target: Path, log: logging.Logger, excluded: list[Path] | None = None
) -> list[packlist.PackFile]:
    manifest = dict(source.package.data, version=version)
    if source.pnpm_root is not None:
        listed = pnpm_pack.package_files(source.path, manifest, source.pnpm_root)
    else:
        listed = packlist.list_package_files(source.path, manifest, source.outer_rules)
    files = leave_out(listed, source.path, excluded or [])
    if len(files) < len(listed):
        log.info("Left out %d file(s) of Pipelines' pipe storage (not part of the package).", len(listed) - len(files))
    manifest_bytes = tarball_manifest_bytes(source.package, version)
    with target.open("wb") as out:
        tarball.write_tarball(source.path, files, manifest_bytes, out)
    return files


def tarball_files(path: Path) -> list[packlist.PackFile]:
    """The files of a ready `.tgz`, as the packer describes them (for the listing and the secret check)."""
    # Refuse unsafe members (`../`, absolute paths, links) before anything is published.
    with path.open("rb") as handle:
        tarball.tarball_digests(handle)
    with tarfile.open(path, mode="r:gz") as archive:
        return [
            packlist.PackFile(path=m.name.split("/", 1)[-1], mode=m.mode, size=m.size)
            for m in archive.getmembers()
            if m.isfile()
        ]


def warn_about_secrets(files: list[packlist.PackFile], log: logging.Logger) -> None:
    suspicious = packlist.likely_secrets(files)
    if suspicious:
        log.warning(
            "The package includes files that may hold secrets: %s. If they must not be published, list what "
            'to publish in package.json\'s "files" field or exclude them in .npmignore.',
            ", ".join(suspicious),
        )


def log_file_list(files: list[packlist.PackFile], log: logging.Logger) -> None:
    log.info("Files in the package (%d):", len(files))
    for item in files[:MAX_LISTED_FILES]:
        log.info("  %s (%s, mode %o)", item.path, format_size(item.size), item.mode)
    if len(files) > MAX_LISTED_FILES:
        log.info("  … and %d more", len(files) - MAX_LISTED_FILES)


def same_contents(registry: NpmRegistry, existing: dict, ours: Path, dist: Dist, plan: Plan, work: Path) -> bool:
    """Is the published version the same package? Identical bytes settle it at once; otherwise the
    file contents decide, because another packer's gzip differs for the same files."""
    published_dist = existing.get("dist") if isinstance(existing.get("dist"), dict) else {}
    if published_dist.get("integrity") == dist.integrity:
        return True
    url = published_dist.get("tarball") or tarball_url(registry.base_url, plan.name, plan.version)
    theirs = work / "published.tgz"
    registry.download(url, theirs)
    with ours.open("rb") as mine, theirs.open("rb") as published:
        return tarball.tarball_digests(mine) == tarball.tarball_digests(published)


def results(plan: Plan, dist: Dist) -> dict[str, str]:
    variables = {"PUBLISHED_NAME": plan.name, "PUBLISHED_VERSION": plan.version, "NPM_INTEGRITY": dist.integrity}
    if plan.tag_applied:
        variables["NPM_DIST_TAG"] = plan.dist_tag
    return variables


def details(plan: Plan, dist: Dist, config: Config, outcome: str, files: int) -> dict[str, object]:
    return {
        "name": plan.name,
        "version": plan.version,
        "dist_tag": plan.dist_tag if plan.tag_applied else None,
        "dist_tags_sent": plan.dist_tags,
        "integrity": dist.integrity,
        "shasum": dist.shasum,
        "size": dist.size,
        "files": files,
        "registry": config.registry.url,
        "outcome": outcome,
    }


def already_published(
    registry: NpmRegistry, packument: Packument, plan: Plan, dist: Dist, config: Config, log: logging.Logger
) -> Publication:
    """The version exists with identical contents: make sure the requested dist-tag points at it, and succeed."""
    where = f"{plan.name}@{plan.version} at {config.registry.url}"
    if plan.tag_applied and packument.dist_tags.get(plan.dist_tag) != plan.version:
        if config.dry_run:
            log.info("Would point the dist-tag %s at %s.", plan.dist_tag, plan.version)
        else:
            registry.set_dist_tag(plan.name, plan.dist_tag, plan.version)
            log.info("Pointed the dist-tag %s at %s.", plan.dist_tag, plan.version)
    summary = f"{where} is already published with identical contents: nothing to publish"
    if config.dry_run:
        return Publication(f"Dry run: {summary}.", {}, details(plan, dist, config, "already-published", 0))
    return Publication(summary + ".", results(plan, dist), details(plan, dist, config, "already-published", 0))


def conflict_error(plan: Plan, config: Config) -> ConflictError:
    return ConflictError(
        f"{plan.name}@{plan.version} is already published at {config.registry.url} with different contents: "
        "versions are immutable; bump the version (package.json's version, or VERSION) and re-run."
    )


def upload(
    registry: NpmRegistry, plan: Plan, dist: Dist, manifest: dict, tgz: Path, log: logging.Logger
) -> requests.Response | requests.RequestException:
    """The PUT, streamed. An exception returned means the connection broke: the outcome is unknown."""
    body = PublishBody(publish_document(manifest, plan.dist_tags), plan.name, plan.version, tgz, dist.size, log)
    started = time.monotonic()
    try:
        response = registry.put_package(plan.name, body)
    except requests.RequestException as error:
        log.warning("The upload broke off (%s); checking whether the registry got it.", type(error).__name__)
        return error
    elapsed = max(time.monotonic() - started, 1e-6)
    log.debug("PUT answered %s after %.1f s", response.status_code, elapsed)
    if accepted(response):
        log.info("Uploaded %s in %.1f s (%s/s).", format_size(len(body)), elapsed, format_size(len(body) / elapsed))
    return response


@dataclass(frozen=True)
class Packed:
    """A package ready to send: its tarball, the files in it, and its digests."""

    tgz: Path
    files: list[packlist.PackFile]
    dist: Dist


def pack_source(source: Source, name: str, version: str, work: Path, config: Config, log: logging.Logger) -> Packed:
    """The tarball to publish: a `.tgz` as it is, or the folder packed like `npm pack` packs it."""
    if source.is_tarball:
        tgz, files = source.path, tarball_files(source.path)
        log.info("Using %s as packed (%d files).", source.shown, len(files))
    else:
        tgz = work / "package.tgz"
        files = pack_folder(source, version, tgz, log, pipe_storage_dirs(config))
    dist = compute_dist(tgz)
    log.info("Packed %s@%s: %d files, %s, %s.", name, version, len(files), format_size(dist.size), dist.integrity)
    warn_about_secrets(files, log)
    if config.dry_run:
        log_file_list(files, log)
    return Packed(tgz, files, dist)


def registry_for(config: Config, log: logging.Logger) -> NpmRegistry:
    return NpmRegistry(new_session(auth=config.credentials.as_requests_auth()), config.registry.url, log)


def plan_package(
    registry: NpmRegistry, name: str, version: SemVer, dist_tag: str, log: logging.Logger
) -> tuple[Packument | None, Plan]:
    """Read what the registry has of `name` and decide the dist-tags of the PUT."""
    log.info("Checking %s at %s.", name, registry.base_url)
    packument = registry.read_packument(name)
    dist_tags, applied = plan_dist_tags(packument, dist_tag, version, log)
    return packument, Plan(name, str(version), dist_tag, dist_tags, applied)


def is_published(
    registry: NpmRegistry, packument: Packument | None, plan: Plan, packed: Packed, work: Path, config: Config
) -> bool:
    """True when the version is there with identical contents, False when absent; a ConflictError
    when it is there with other contents."""
    existing = packument.versions.get(plan.version) if packument else None
    if existing is None:
        return False
    if not same_contents(registry, dict(existing), packed.tgz, packed.dist, plan, work):
        raise conflict_error(plan, config)
    return True


def tag_text(plan: Plan) -> str:
    return f"dist-tag {plan.dist_tag}" if plan.tag_applied else "no dist-tag (latest stays)"


def publish(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    source = read_source(config)
    if not source.is_tarball:
        workspace = workspace_at(source.path, source.shown, source.package)
        if workspace is not None:
            # Imported here because it builds on this module.
            from pipe.npm import workspaces

            return workspaces.publish(config, log, source, workspace)
        source = placed_in_workspace(source, config, log)
    data = source.package.data
    check_no_workspace_selection(config, source)
    name = validate_name(data.get("name"), source.package.source)
    check_not_private(data, source.package.source)
    version = choose_version(data, config.npm.version, source.package.source)
    check_tag_matches(config.context, version, from_variable=bool(config.npm.version))
    if source.is_tarball and data.get("version") != str(version):
        raise InputError(
            f"{source.shown} holds version {data.get('version')} but {version} is to be published: a .tgz is "
            "published byte for byte, so remove VERSION, or pack again with that version, or point NPM_PACKAGE "
            "at the package folder."
        )
    dist_tag = choose_dist_tag(config.npm.dist_tag, data, version)

    with tempfile.TemporaryDirectory(prefix="bbpp-npm-") as work_dir:
        work = Path(work_dir)
        packed = pack_source(source, name, str(version), work, config, log)
        registry = registry_for(config, log)
        packument, plan = plan_package(registry, name, version, dist_tag, log)
        if is_published(registry, packument, plan, packed, work, config):
            return already_published(registry, packument, plan, packed.dist, config, log)

        if config.dry_run:
            target = f"{name}@{version} to {config.registry.url} with {tag_text(plan)}"
            summary = f"Dry run: would publish {target}; nothing was written."
            return Publication(summary, {}, details(plan, packed.dist, config, "dry-run", len(packed.files)))

        manifest = version_manifest(data, plan.version, source.readme, packed.dist, config.registry.url)
        log.info("Publishing %s@%s to %s with %s.", name, version, config.registry.url, tag_text(plan))
        settled = upload_until_settled(registry, plan, packed.dist, manifest, packed.tgz, config, work, log)
        if settled is not None:
            return settled
        return Publication(
            f"Published {name}@{version} to {config.registry.url} with {tag_text(plan)}.",
            results(plan, packed.dist),
            details(plan, packed.dist, config, "published", len(packed.files)),
        )


def placed_in_workspace(source: Source, config: Config, log: logging.Logger) -> Source:
    """A package folder inside a workspace, with its ranges resolved from the workspace (and packed
    as pnpm packs, in a pnpm workspace)."""
    placement = enclosing_workspace.place(source.path, source.shown, source.package, config.working_dir, log)
    if placement is None:
        return source
    readme = read_folder_readme(placement.folder)
    return replace(
        source, path=placement.folder, package=placement.package, readme=readme, pnpm_root=placement.pnpm_root
    )


def check_no_workspace_selection(config: Config, source: Source) -> None:
    if config.npm.workspaces:
        raise ConfigError(
            f'NPM_WORKSPACES is set but {source.package.source} has no "workspaces": point NPM_PACKAGE at the '
            "workspace root (the folder whose package.json lists the workspaces), or remove NPM_WORKSPACES."
        )


def upload_until_settled(
    registry: NpmRegistry,
    plan: Plan,
    dist: Dist,
    manifest: dict,
    tgz: Path,
    config: Config,
    work: Path,
    log: logging.Logger,
) -> Publication | None:
    """The PUT until it is accepted (None) or the registry's copy settles the run (a Publication).
    Only a re-read showing the version absent after a transient failure makes a second PUT safe."""
    uploads = itertools.count(1)

    def attempt() -> Publication | None:
        if next(uploads) > 1:
            log.warning("The registry does not have %s@%s; uploading again.", plan.name, plan.version)
        response = upload(registry, plan, dist, manifest, tgz, log)
        if isinstance(response, requests.Response) and accepted(response):
            return None
        return settle_after_refusal(registry, response, plan, dist, config, tgz, work, log)

    return retry(attempt, session_budget(registry.session), f"publishing {plan.name}@{plan.version}")


def _final_error(
    registry: NpmRegistry, response: requests.Response | requests.RequestException, plan: Plan, transient: bool = False
) -> RegistryError:
    if isinstance(response, requests.Response):
        return registry.refusal(response, plan.name, plan.version, transient)
    return unreachable_error(
        registry.package_url(plan.name), response, f"publishing {plan.name}@{plan.version}", transient
    )


def settle_after_refusal(
    registry: NpmRegistry,
    response: requests.Response | requests.RequestException,
    plan: Plan,
    dist: Dist,
    config: Config,
    tgz: Path,
    work: Path,
    log: logging.Logger,
) -> Publication | None:
    """A refused or broken PUT: re-read the packument. The version there with our contents means
    another run (or this one, before the connection broke) published it — a success; with other
    contents, a conflict; absent after a transient failure (broken connection, 429, 5xx), the
    failure raised as transient, so that `retry` sends the PUT again; absent otherwise, the refusal
    stands."""
    broken = not isinstance(response, requests.Response)
    if not broken and not is_transient(response) and response.status_code not in CONFLICT_STATUSES:
        raise registry.refusal(response, plan.name, plan.version)
    packument = registry.read_packument(plan.name)
    existing = packument.versions.get(plan.version) if packument else None
    if existing is None:
        raise _final_error(registry, response, plan, transient=is_transient(response))
    if not same_contents(registry, dict(existing), tgz, dist, plan, work):
        raise conflict_error(plan, config)
    if broken:
        log.info("The registry has %s@%s with identical contents.", plan.name, plan.version)
        return None
    return already_published(registry, packument, plan, dist, config, log)

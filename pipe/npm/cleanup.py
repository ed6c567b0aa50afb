"""ACTION=cleanup for PACKAGE_TYPE=npm: unpublish old versions of the package named in
package.json, one version at a time, the way the npm client does it:

1. read the packument for writing (`?write=true`, it carries `_rev`);
2. write it back without the version (dist-tags repaired) to `/<name>/-rev/<rev>`;
3. read the new `_rev` and delete the tarball at `/<name>/-/<file>/-rev/<rev>`.

The packument is written before the tarball goes, so a consumer never sees a version listed whose
tarball is missing, wherever a run stops; a re-run finds the remaining versions listed and goes on.
Versions a dist-tag points at and the newest release are never deleted, nor the last version.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pipe import cleanup as core
from pipe.config import Config
from pipe.errors import RegistryError
from pipe.http import retry
from pipe.masking import SecretMasker
from pipe.npm.manifest import read_npm_version, unscoped, validate_name
from pipe.npm.package import read_source
from pipe.npm.registry import NpmRegistry, is_safe_segment
from pipe.outputs import Publication
from pipe.versioning import SemVer

KIND_LABEL = "npm package"
LAST_VERSION = "kept: the package's last version (delete the package in the Bitbucket UI to remove it)"
# Packument fields the registry keeps for itself; npm leaves them out of the write too.
SERVER_FIELDS = ("_attachments", "_revisions")


def highest(versions: list[str]) -> str | None:
    """The highest release, else the highest version, by semantic-version order."""
    parsed = [(SemVer.parse(v), v) for v in versions]
    ranked = sorted((p, v) for p, v in parsed if p is not None)
    releases = [v for p, v in ranked if not p.is_prerelease]
    if releases:
        return releases[-1]
    return ranked[-1][1] if ranked else (sorted(versions)[-1] if versions else None)


def without_version(packument: dict, version: str) -> dict:
    """The packument to write back: the version gone, the dist-tags that named it removed, and
    `latest` moved to the highest remaining release (npm's rule: latest always names something)."""
    document = {key: value for key, value in packument.items() if key not in SERVER_FIELDS}
    versions = {v: data for v, data in (packument.get("versions") or {}).items() if v != version}
    tags = dict(packument.get("dist-tags") or {})
    document["dist-tags"] = {tag: v for tag, v in tags.items() if v != version}
    if tags.get("latest") == version and versions:
        document["dist-tags"]["latest"] = highest(list(versions))
    document["versions"] = versions
    # `time` stays as it is, as npm sends it: registries keep the times of unpublished versions.
    return document


def tarball_file(packument: dict, name: str, version: str) -> str:
    """The tarball's file name as the registry's `dist.tarball` gives it; npm's own name for it when
    that is missing or is no plain file name (it goes into the delete's URL)."""
    url = ((packument.get("versions") or {}).get(version) or {}).get("dist", {}).get("tarball")
    path = urlsplit(url).path if isinstance(url, str) else ""
    given = path.rsplit("/", 1)[-1]
    return given if is_safe_segment(given) else f"{unscoped(name)}-{version}.tgz"


# Why a version the registry lists is left alone: only versions npm accepts are ever deleted, so
# that nothing read back from the registry can turn a delete's URL elsewhere.
NOT_AN_NPM_VERSION = "kept: not a version npm accepts (left alone, never deleted by URL)"


def npm_versions(versions: list[str]) -> tuple[list[str], list[str]]:
    """(the versions npm accepts, the others)."""
    valid = [v for v in versions if isinstance(read_npm_version(v), SemVer) and is_safe_segment(v)]
    return valid, [v for v in versions if v not in valid]


def plan(packument: dict, config: Config, now: datetime) -> list[core.Decision]:
    """Decisions for every version, newest release first; the last version always stays."""
    times = packument.get("time") if isinstance(packument.get("time"), dict) else {}
    versions, refused = npm_versions(list(packument.get("versions") or {}))
    candidates = core.plan_order(
        core.Candidate(v, core.parse_time(times.get(v)), core.semver_release(v)) for v in versions
    )
    epoch = datetime.min.replace(tzinfo=UTC)
    protected: dict[str, str] = {}
    for tag, version in sorted((packument.get("dist-tags") or {}).items()):
        protected.setdefault(version, f"protected: dist-tag {tag}")
    decisions = core.decide(candidates, config.cleanup, protected, now)
    if decisions and all(d.delete for d in decisions):
        newest = max(candidates, key=lambda c: c.published or epoch).name
        decisions = [core.Decision(d.name, False, LAST_VERSION) if d.name == newest else d for d in decisions]
    return decisions + [core.Decision(version, False, NOT_AN_NPM_VERSION) for version in refused]


def unpublish(registry: NpmRegistry, name: str, version: str, file: str) -> None:
    """Removes `version` from the packument, then its tarball. Each attempt reads the packument
    first, so a write whose answer was lost, or one refused because the packument changed (409),
    is settled by what the registry now says, never sent blindly again."""

    def remove_from_packument() -> None:
        packument = registry.read_for_write(name) or {}
        versions = packument.get("versions") or {}
        if version not in versions:
            return  # gone already: only its tarball may be left
        if len(versions) == 1:
            raise RegistryError(
                f"unpublishing {name}@{version} stopped: it is the package's last version now, and the pipe "
                "never deletes a package's last version: delete the package in the Bitbucket UI instead."
            )
        registry.write_packument(name, without_version(packument, version), str(packument.get("_rev")), version)

    budget = registry.budget()
    retry(remove_from_packument, budget, f"unpublishing {name}@{version}")
    # The tarball delete names the packument's new revision, as npm does.
    rev = retry(lambda: (registry.read_for_write(name) or {}).get("_rev", "0"), budget, f"reading {name}")
    registry.delete_tarball(name, file, str(rev), version)


def package_name(config: Config) -> str:
    source = read_source(config)
    return validate_name(source.package.data.get("name"), source.package.source)


def cleanup(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    name = package_name(config)
    registry = NpmRegistry.from_config(config, log, masker)
    log.info("Reading %s from %s.", name, config.registry.url)
    packument = registry.read_for_write(name)
    if packument is None:
        log.info("%s is not in the registry: nothing to clean up.", name)
        packument = {}
    decisions = plan(packument, config, datetime.now(UTC))
    core.print_plan(log, KIND_LABEL, decisions, config.dry_run, package=name)
    deleted: list[str] = []
    if not config.dry_run:
        for decision in reversed([d for d in decisions if d.delete]):  # oldest first
            unpublish(registry, name, decision.name, tarball_file(packument, name, decision.name))
            log.info("Unpublished %s@%s.", name, decision.name)
            deleted.append(decision.name)
    return core.cleanup_publication(KIND_LABEL, name, deleted, decisions, config.dry_run)

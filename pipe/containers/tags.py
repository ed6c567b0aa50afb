"""Which tags an image gets: explicit `TAGS` templates, or the automatic release rules.

Automatic rules (README, "Container images"):
- a semver release `vX.Y.Z` gets `X.Y.Z` plus the floating tags `X.Y`, `X` and `latest`, each only
  when the new version is the highest release of that line in the registry, so that a hotfix for
  an old line never drags a floating tag backwards;
- a prerelease gets only its own tag; a non-semver git tag gets itself, sanitised;
- a branch build gets the sanitised branch name and `sha-<7 chars>`.

Everything here is pure: the registry's tag list is passed in, nothing is read or written.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipe.context import PipelinesRun
from pipe.errors import ConfigError
from pipe.versioning import SemVer

# The OCI distribution spec's tag grammar.
VALID_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
PLACEHOLDERS = ("version", "major", "minor", "patch", "tag", "branch", "commit", "short_commit", "build_number")


@dataclass(frozen=True)
class FloatingTag:
    """A floating tag of a release (`X.Y`, `X`, `latest`) and the highest release it covered
    in the registry before this one. It moves only when the new version is at least that high."""

    name: str
    previous: SemVer | None
    moves: bool

    def describe(self, version: SemVer) -> str:
        if not self.moves:
            return f"{self.name} stays on {self.previous} (a higher release)"
        if self.previous is None:
            return f"{self.name} is new"
        if self.previous == version:
            return f"{self.name} already on {version}"
        return f"{self.name} moves from {self.previous} to {version}"


@dataclass(frozen=True)
class TagPlan:
    """The tags to push, the version the image is labelled with, and what to tell the user."""

    tags: tuple[str, ...]
    version_label: str | None
    release: SemVer | None = None
    floating: tuple[FloatingTag, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def moving(self) -> tuple[FloatingTag, ...]:
        return tuple(tag for tag in self.floating if tag.moves)

    @property
    def held(self) -> tuple[FloatingTag, ...]:
        return tuple(tag for tag in self.floating if not tag.moves)


def sanitise_tag(text: str) -> str:
    """A valid tag from free text (a branch or a git tag): runs of other characters become `-`,
    a leading `.`/`-` is dropped (tags must start with a word character), and it is cut to 128."""
    cleaned = _INVALID_RUN.sub("-", text).lstrip(".-")
    return cleaned[:128].rstrip(".-") or ""


def check_tag(tag: str, origin: str) -> str:
    if not VALID_TAG.match(tag):
        raise ConfigError(
            f"{origin} gives the tag '{tag}', which is not a valid image tag: use letters, digits, '_', '.' "
            "and '-', up to 128 characters, not starting with '.' or '-'."
        )
    return tag


def releases_in(existing_tags: Iterable[str]) -> list[SemVer]:
    """The releases (not prereleases) among the registry's tags; other tags are ignored."""
    versions = (SemVer.parse(tag) for tag in existing_tags)
    return [version for version in versions if version is not None and not version.is_prerelease]


def version_tag(version: SemVer) -> str:
    # `+` is not allowed in tags; `_` keeps build metadata apart from a prerelease's `-`.
    return str(version).replace("+", "_")


def floating_tags(version: SemVer, existing_tags: Iterable[str]) -> tuple[FloatingTag, ...]:
    """`X.Y`, `X`, `latest` for a release, each with the highest release of its line so far."""
    releases = releases_in(existing_tags)
    lines = (
        (f"{version.major}.{version.minor}", lambda r: (r.major, r.minor) == (version.major, version.minor)),
        (f"{version.major}", lambda r: r.major == version.major),
        ("latest", lambda r: True),
    )
    result = []
    for name, in_line in lines:
        highest = max((r for r in releases if in_line(r)), default=None)
        result.append(FloatingTag(name, highest, moves=highest is None or version >= highest))
    return tuple(result)


def release_plan(git_tag: str, version: SemVer, existing_tags: Iterable[str]) -> TagPlan:
    own = version_tag(version)
    if version.is_prerelease:
        return TagPlan(
            (own,), str(version), version, notes=(f"Git tag {git_tag} is a prerelease: it gets only the tag {own}",)
        )
    floating = floating_tags(version, existing_tags)
    tags = (own, *(tag.name for tag in floating if tag.moves))
    return TagPlan(tags, str(version), version, floating)


def sanitised(value: str, what: str) -> tuple[str, tuple[str, ...]]:
    """The sanitised tag for a branch or git tag, and a note when sanitising changed it."""
    tag = sanitise_tag(value)
    if not tag:
        raise ConfigError(f"{what} '{value}' has no character usable in an image tag: set TAGS explicitly.")
    return tag, (
        (f"The {what} '{value}' is tagged as '{tag}' (image tags allow only letters, digits, '_', '.', '-')",)
        if tag != value
        else ()
    )


def automatic_plan(context: PipelinesRun, existing_tags: Iterable[str]) -> TagPlan:
    if context.tag:
        version = context.tag_version
        if version is not None:
            return release_plan(context.tag, version, existing_tags)
        tag, notes = sanitised(context.tag, "git tag")
        return TagPlan((tag,), context.tag, notes=notes)
    sha = (f"sha-{context.short_commit}",) if context.short_commit else ()
    if context.branch:
        tag, notes = sanitised(context.branch, "branch")
        return TagPlan((tag, *sha), context.branch, notes=notes)
    if sha:
        return TagPlan(sha, context.commit)
    raise ConfigError(
        "no BITBUCKET_TAG, BITBUCKET_BRANCH or BITBUCKET_COMMIT to derive image tags from: "
        "set TAGS, e.g. TAGS: 'latest'."
    )


def placeholder_values(context: PipelinesRun) -> dict[str, str | None]:
    version = context.tag_version
    values: dict[str, str | None] = {
        "tag": sanitise_tag(context.tag) if context.tag else None,
        "branch": sanitise_tag(context.branch) if context.branch else None,
        "commit": context.commit,
        "short_commit": context.short_commit,
        "build_number": context.build_number,
        "version": version_tag(version) if version else None,
        "major": str(version.major) if version else None,
        "minor": str(version.minor) if version else None,
        "patch": str(version.patch) if version else None,
    }
    return values


def missing_value_reason(name: str, context: PipelinesRun) -> str:
    if name in ("version", "major", "minor", "patch"):
        if context.tag:
            return f"BITBUCKET_TAG '{context.tag}' is not a semantic version (vX.Y.Z)"
        return "this is not a tag pipeline (BITBUCKET_TAG is empty)"
    variable = {"short_commit": "commit"}.get(name, name)
    return f"BITBUCKET_{variable.upper()} is empty"


def expand_template(
    template: str, values: Mapping[str, str | None], context: PipelinesRun, variable: str = "TAGS"
) -> str:
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError:
        raise ConfigError(
            f"{variable} entry '{template}' has an unmatched brace: write placeholders as {{version}}, {{branch}}, …"
        ) from None
    for name in fields:
        if name not in PLACEHOLDERS:
            raise ConfigError(
                f"{variable} entry '{template}' uses the unknown placeholder {{{name}}}: use one of "
                + " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                + "."
            )
        if not values[name]:
            raise ConfigError(
                f"{variable} entry '{template}' uses {{{name}}}, but {missing_value_reason(name, context)}: "
                "use a placeholder this pipeline has, or a fixed tag."
            )
    return template.format_map(values)


def explicit_plan(templates: Iterable[str], context: PipelinesRun) -> TagPlan:
    values = placeholder_values(context)
    tags: list[str] = []
    for template in templates:
        tag = check_tag(expand_template(template, values, context), f"TAGS entry '{template}'")
        if tag not in tags:
            tags.append(tag)
    version = context.tag_version
    label = str(version) if version else (context.tag or context.branch or context.commit)
    return TagPlan(tuple(tags), label, version)


def plan_tags(templates: Iterable[str], context: PipelinesRun, existing_tags: Iterable[str]) -> TagPlan:
    """The tags to push: `TAGS` when given (pushed as written, no release rules), else the
    automatic rules against the registry's current tags."""
    templates = tuple(templates)
    plan = explicit_plan(templates, context) if templates else automatic_plan(context, existing_tags)
    for tag in plan.tags:
        check_tag(tag, "the tag rules")
    return plan

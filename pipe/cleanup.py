"""ACTION=cleanup, the part every registry kind shares: the rules, the decision which tags or
versions go, the plan printed before anything is deleted, and the outputs. No HTTP here: each
kind lists its candidates, says what its registry protects, and deletes what `decide` chose."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from pipe.config import CleanupRules
from pipe.outputs import Publication
from pipe.versioning import SemVer


@dataclass(frozen=True)
class Candidate:
    """A tag, version or SNAPSHOT build as the user sees it."""

    name: str
    # UTC; None when unknown, and then OLDER_THAN_DAYS keeps it.
    published: datetime | None
    # A sortable key for releases (SemVer, Maven order); None for branch tags, prereleases, snapshots.
    release_key: object | None

    @property
    def is_release(self) -> bool:
        return self.release_key is not None


@dataclass(frozen=True)
class Decision:
    """Whether one candidate goes, and why (the plan prints the reason, the summary keeps it)."""

    name: str
    delete: bool
    reason: str

    @property
    def verb(self) -> str:
        return "delete" if self.delete else "keep"


def semver_release(name: str) -> SemVer | None:
    """The release key of a tag or version in semantic-version order; None for prereleases and
    anything that is not a version (branch tags, `latest`)."""
    version = SemVer.parse(name)
    return version if version is not None and not version.is_prerelease else None


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time from a registry (image config `created`, npm `time`, Last-Modified is
    parsed by its kind) as UTC; None when absent or unreadable, so that age rules keep it."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_old(candidate: Candidate, rules: CleanupRules, now: datetime) -> bool:
    if rules.older_than_days is None:
        return True
    if candidate.published is None:
        return False
    return candidate.published < now - timedelta(days=rules.older_than_days)


def _age_reason(candidate: Candidate, rules: CleanupRules, now: datetime) -> str:
    if candidate.published is None:
        return "kept: publish time unknown (OLDER_THAN_DAYS needs it)"
    days = max(0, (now - candidate.published).days)
    return f"kept: published {days} day{'s' if days != 1 else ''} ago, not more than {rules.older_than_days}"


def _rule_reason(candidate: Candidate, rules: CleanupRules, older_releases: set[str]) -> str | None:
    """Why a rule makes `candidate` a deletion candidate, before the age restriction; None if none does."""
    if candidate.name in older_releases:
        return f"older than the {rules.keep_releases} newest release{'s' if rules.keep_releases != 1 else ''}"
    for pattern in rules.delete_matching:
        if fnmatchcase(candidate.name, pattern):
            return f"matches {pattern}"
    if rules.older_than_days is not None and rules.keep_releases is None and not rules.delete_matching:
        return f"published more than {rules.older_than_days} day{'s' if rules.older_than_days != 1 else ''} ago"
    return None


def releases_newest_first(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted((c for c in candidates if c.is_release), key=lambda c: c.release_key, reverse=True)


def plan_order(candidates: Iterable[Candidate]) -> list[Candidate]:
    """The order the plan is printed in: releases newest first, then the rest newest first."""
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(
        candidates,
        key=lambda c: (c.is_release, c.release_key if c.is_release else 0, c.published or epoch, c.name),
        reverse=True,
    )


def decide(
    candidates: Iterable[Candidate], rules: CleanupRules, protected: Mapping[str, str], now: datetime
) -> list[Decision]:
    """One decision per candidate, in the candidates' order.

    A candidate is deleted when it is older than the KEEP_RELEASES newest releases or matches a
    DELETE_MATCHING glob and, with OLDER_THAN_DAYS set, was published more than that many days
    before `now` (OLDER_THAN_DAYS alone makes every version that old a candidate). The newest
    release and every protected name (with the kind's reason) are always kept."""
    candidates = list(candidates)
    releases = releases_newest_first(candidates)
    newest = releases[0].name if releases else None
    kept_count = max(rules.keep_releases or 0, 1)
    older = {c.name for c in releases[kept_count:]} if rules.keep_releases is not None else set()
    decisions = []
    for candidate in candidates:
        decisions.append(_decide_one(candidate, rules, protected, newest, older, now))
    return decisions


def _decide_one(
    candidate: Candidate,
    rules: CleanupRules,
    protected: Mapping[str, str],
    newest: str | None,
    older: set[str],
    now: datetime,
) -> Decision:
    name = candidate.name
    if name == newest:
        return Decision(name, False, "protected: newest release")
    if name in protected:
        return Decision(name, False, protected[name])
    reason = _rule_reason(candidate, rules, older)
    if reason is None:
        if candidate.is_release and rules.keep_releases is not None:
            return Decision(name, False, f"kept: one of the {rules.keep_releases} newest releases")
        return Decision(name, False, "kept: matches no rule")
    if not _is_old(candidate, rules, now):
        return Decision(name, False, _age_reason(candidate, rules, now))
    return Decision(name, True, reason)


def print_plan(
    log: logging.Logger, kind_label: str, decisions: list[Decision], dry_run: bool, package: str = ""
) -> None:
    """The plan, always printed before the first delete: every name with delete/keep and why."""
    doomed = sum(1 for d in decisions if d.delete)
    what = f"{kind_label} {package}".strip()
    mode = " (dry run: nothing is deleted)" if dry_run else ""
    log.info("Cleanup plan for %s%s: %d to delete, %d to keep", what, mode, doomed, len(decisions) - doomed)
    width = max((len(d.name) for d in decisions), default=0)
    for decision in decisions:
        log.info("  %-6s %s  %s", decision.verb, decision.name.ljust(width), decision.reason)


def cleanup_publication(
    kind_label: str, package: str, deleted: list[str], decisions: list[Decision], dry_run: bool
) -> Publication:
    """The ✔ sentence, DELETED_COUNT / DELETED_VERSIONS (in order of deletion), and the details
    for the JSON summary (deleted, would-delete in a dry run, kept with reasons)."""
    planned = [d.name for d in decisions if d.delete]
    kept = [{"name": d.name, "reason": d.reason} for d in decisions if not d.delete]
    details = {
        "action": "cleanup",
        "package": package,
        "dry_run": dry_run,
        "deleted": list(deleted),
        "would_delete": planned if dry_run else [],
        "kept": kept,
    }
    variables = {"DELETED_COUNT": str(len(deleted)), "DELETED_VERSIONS": " ".join(deleted)}
    return Publication(
        summary=_summary(kind_label, package, deleted, planned, len(kept), dry_run),
        variables=variables,
        details=details,
    )


def _summary(kind_label: str, package: str, deleted: list[str], planned: list[str], kept: int, dry_run: bool) -> str:
    what = f"{kind_label} {package}".strip()
    if dry_run:
        if not planned:
            return f"Dry run: nothing to delete in {what}; {kept} kept."
        return (
            f"Dry run: would delete {len(planned)} in {what} ({' '.join(planned)}); {kept} kept; nothing was deleted."
        )
    if not deleted:
        return f"Nothing to delete in {what}; {kept} kept."
    return f"Deleted {len(deleted)} in {what}: {' '.join(deleted)}; {kept} kept."

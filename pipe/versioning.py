"""Semantic versions: parsing (a leading `v` allowed, as in git tags), precedence, and the
release-line questions the publishers ask (is it a prerelease, which dist-tag by default)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

# semver.org 2.0.0, with an optional leading "v" because git tags are written "v1.2.3". ASCII
# digits only (`\d` alone would take "١٣" as 13), and `\Z`, since `$` also matches before a newline.
_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z",
    re.ASCII,
)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        """The version in `text`, or None when it is not a semantic version."""
        match = _SEMVER.match(text.strip()) if text else None
        if not match:
            return None
        pre, build = match.group("pre"), match.group("build")
        try:
            numbers = [int(match.group(part)) for part in ("major", "minor", "patch")]
        except ValueError:  # thousands of digits: past Python's int-from-text limit, and no real version
            return None
        return cls(*numbers, tuple(pre.split(".")) if pre else (), tuple(build.split(".")) if build else ())

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def core(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def prerelease_word(self) -> str | None:
        """`1.0.0-beta.2` → `beta`: the first alphabetic identifier, if any."""
        for identifier in self.prerelease:
            if not identifier.isdigit():
                return identifier
        return None

    def __str__(self) -> str:
        text = self.core
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def _precedence_key(self) -> tuple:
        # A release outranks its prereleases; numeric identifiers rank below alphanumeric
        # ones and compare as numbers; build metadata has no precedence (semver §10-11).
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._precedence_key() < other._precedence_key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._precedence_key() == other._precedence_key()

    def __hash__(self) -> int:
        return hash(self._precedence_key())


def strip_v(version: str) -> str:
    """`v1.2.3` → `1.2.3`, so `VERSION: $BITBUCKET_TAG` works."""
    return version[1:] if version[:1] in ("v", "V") and version[1:2].isdigit() else version


def default_dist_tag(version: SemVer) -> str:
    """npm's convention: releases go to `latest`, prereleases to their first word or `next`."""
    if not version.is_prerelease:
        return "latest"
    return version.prerelease_word or "next"

from __future__ import annotations

import pytest

from pipe.context import PipelinesRun
from pipe.versioning import SemVer, default_dist_tag, strip_v


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("1.0.0-rc.1+build.5", "1.0.0-rc.1+build.5"),
        ("v0.0.1-alpha", "0.0.1-alpha"),
    ],
)
def test_parses_semver(text: str, expected: str) -> None:
    assert str(SemVer.parse(text)) == expected


@pytest.mark.parametrize("text", ["1.2", "01.2.3", "1.2.3-", "release-1", "", "1.2.3.4", "v", "1.2.3-01"])
def test_rejects_non_semver(text: str) -> None:
    assert SemVer.parse(text) is None


def test_precedence_follows_semver() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]  # fmt: skip
    versions = [SemVer.parse(v) for v in ordered]
    assert sorted(reversed(versions)) == versions
    assert SemVer.parse("1.0.0+a") == SemVer.parse("1.0.0+b")


@pytest.mark.parametrize("text,tag", [("1.0.0", "latest"), ("1.0.0-beta.2", "beta"), ("2.0.0-1", "next")])
def test_default_dist_tag(text: str, tag: str) -> None:
    assert default_dist_tag(SemVer.parse(text)) == tag


def test_strip_v() -> None:
    assert strip_v("v1.2.3") == "1.2.3"
    assert strip_v("version") == "version"


def test_context_without_tag() -> None:
    context = PipelinesRun.from_env({"BITBUCKET_BRANCH": "main", "BITBUCKET_TAG": ""})
    assert context.tag is None and context.tag_version is None and context.branch == "main"

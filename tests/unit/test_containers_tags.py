"""The image tag rules (DESIGN.md §2.2): explicit TAGS templates and the automatic rules, as
tables of pipeline context + registry tags → expected tags."""

from __future__ import annotations

import pytest

from pipe.containers.tags import plan_tags, sanitise_tag
from pipe.context import PipelinesRun
from pipe.errors import ConfigError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def context(tag: str | None = None, branch: str | None = None, commit: str | None = COMMIT) -> PipelinesRun:
    return PipelinesRun(
        tag=tag,
        branch=branch,
        commit=commit,
        build_number="42",
        workspace="acme",
        repo_slug="widget",
        clone_dir=None,
        git_origin=None,
    )


RELEASE_CASES = [
    # git tag, tags already in the registry, expected tags
    ("v1.4.2", [], ["1.4.2", "1.4", "1", "latest"]),
    ("1.4.2", [], ["1.4.2", "1.4", "1", "latest"]),
    ("v2.0.1", ["1.4.2", "1.4", "1", "latest"], ["2.0.1", "2.0", "2", "latest"]),
    # hotfix after a newer major: 1.x lines move, latest stays on 2.0.1
    ("v1.9.1", ["1.4.2", "1.4", "1", "latest", "2.0.1", "2.0", "2"], ["1.9.1", "1.9", "1"]),
    # hotfix of an old minor: only its own minor line moves
    ("v1.4.3", ["1.4.2", "1.9.1", "2.0.1"], ["1.4.3", "1.4"]),
    # an older patch in a line that has a newer one: only its own tag
    ("v1.4.1", ["1.4.2", "2.0.1"], ["1.4.1"]),
    # re-running the newest release keeps every floating tag on it
    ("v2.0.1", ["1.4.2", "2.0.1", "2.0", "2", "latest"], ["2.0.1", "2.0", "2", "latest"]),
    # prereleases in the registry do not hold floating tags back
    ("v2.0.0", ["1.0.0", "2.1.0-rc.1", "3.0.0-beta"], ["2.0.0", "2.0", "2", "latest"]),
    # non-semver tags in the registry are ignored
    ("v0.1.0", ["main", "sha-abcdef0", "nightly"], ["0.1.0", "0.1", "0", "latest"]),
    # a release after its own prerelease
    ("v3.0.0", ["2.0.1", "3.0.0-rc.1"], ["3.0.0", "3.0", "3", "latest"]),
    # prereleases get only their own tag
    ("v3.0.0-rc.1", ["2.0.1", "latest"], ["3.0.0-rc.1"]),
    ("v1.0.0-beta.2", [], ["1.0.0-beta.2"]),
    # build metadata cannot be in a tag: `+` becomes `_`
    ("v1.2.3+build.7", [], ["1.2.3_build.7", "1.2", "1", "latest"]),
    # semver's precedence is numeric: 1.10 is above 1.9
    ("v1.10.0", ["1.9.0"], ["1.10.0", "1.10", "1", "latest"]),
    ("v1.9.5", ["1.10.0"], ["1.9.5", "1.9"]),
]


@pytest.mark.parametrize(("git_tag", "existing", "expected"), RELEASE_CASES)
def test_release_tags(git_tag, existing, expected):
    assert list(plan_tags((), context(tag=git_tag), existing).tags) == expected


def test_hotfix_plan_says_why_latest_stays():
    plan = plan_tags((), context(tag="v1.9.1"), ["1.4.2", "1.4", "1", "2.0.1", "2.0", "2", "latest"])
    assert [tag.describe(plan.release) for tag in plan.floating] == [
        "1.9 is new",
        "1 moves from 1.4.2 to 1.9.1",
        "latest stays on 2.0.1 (a higher release)",
    ]
    assert plan.version_label == "1.9.1"


def test_prerelease_plan_says_it_gets_only_its_own_tag():
    plan = plan_tags((), context(tag="v3.0.0-rc.1"), ["2.0.1"])
    assert plan.notes == ("Git tag v3.0.0-rc.1 is a prerelease: it gets only the tag 3.0.0-rc.1",)
    assert plan.floating == ()


BRANCH_CASES = [
    ("main", ["main", "sha-0123456"]),
    ("feature/ABC-12_login", ["feature-ABC-12_login", "sha-0123456"]),
    ("release/1.x", ["release-1.x", "sha-0123456"]),
    ("-weird--branch-", ["weird--branch", "sha-0123456"]),
    (".hidden", ["hidden", "sha-0123456"]),
    ("dependabot/npm_and_yarn/@types/node-20.1", ["dependabot-npm_and_yarn-types-node-20.1", "sha-0123456"]),
    ("ümlaut/ß", ["mlaut", "sha-0123456"]),
    ("x" * 200, ["x" * 128, "sha-0123456"]),
]


@pytest.mark.parametrize(("branch", "expected"), BRANCH_CASES)
def test_branch_tags(branch, expected):
    assert list(plan_tags((), context(branch=branch), ["1.0.0", "latest"]).tags) == expected


def test_sanitised_branch_is_reported():
    plan = plan_tags((), context(branch="feature/login"), [])
    assert plan.notes == (
        "The branch 'feature/login' is tagged as 'feature-login' "
        "(image tags allow only letters, digits, '_', '.', '-')",
    )
    assert plan.version_label == "feature/login"


def test_clean_branch_has_no_note():
    assert plan_tags((), context(branch="main"), []).notes == ()


@pytest.mark.parametrize(
    ("git_tag", "expected"),
    [("nightly", ["nightly"]), ("release/2024-05", ["release-2024-05"]), ("v1.2", ["v1.2"]), ("1.2.3.4", ["1.2.3.4"])],
)
def test_non_semver_tag_gets_itself(git_tag, expected):
    assert list(plan_tags((), context(tag=git_tag, branch=None), ["9.9.9"]).tags) == expected


def test_branch_name_without_usable_characters_is_an_error():
    with pytest.raises(ConfigError) as caught:
        plan_tags((), context(branch="///"), [])
    assert caught.value.message == "branch '///' has no character usable in an image tag: set TAGS explicitly."


def test_commit_alone_gives_sha_tag():
    assert plan_tags((), context(), []).tags == ("sha-0123456",)


def test_nothing_to_derive_tags_from_is_an_error():
    with pytest.raises(ConfigError) as caught:
        plan_tags((), context(commit=None), [])
    assert caught.value.message == (
        "no BITBUCKET_TAG, BITBUCKET_BRANCH or BITBUCKET_COMMIT to derive image tags from: "
        "set TAGS, e.g. TAGS: 'latest'."
    )


# --- explicit TAGS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("templates", "ctx", "expected"),
    [
        (("{version}", "{major}.{minor}", "stable"), context(tag="v1.4.2"), ["1.4.2", "1.4", "stable"]),
        (("{branch}-{short_commit}", "build-{build_number}"), context(branch="feat/x"), ["feat-x-0123456", "build-42"]),
        (("{tag}",), context(tag="release/7"), ["release-7"]),
        (("{commit}",), context(branch="main"), [COMMIT]),
        (("v{major}", "{major}", "v{major}"), context(tag="v2.0.1"), ["v2", "2"]),  # duplicates pushed once
        (("1.10",), context(branch="main"), ["1.10"]),
    ],
)
def test_explicit_tags(templates, ctx, expected):
    # Explicit tags are pushed as written: the release rules (and the registry) do not apply.
    assert list(plan_tags(templates, ctx, ["9.9.9"]).tags) == expected


@pytest.mark.parametrize(
    ("templates", "ctx", "message"),
    [
        (
            ("{version}",),
            context(branch="main"),
            "TAGS entry '{version}' uses {version}, but this is not a tag pipeline (BITBUCKET_TAG is empty): "
            "use a placeholder this pipeline has, or a fixed tag.",
        ),
        (
            ("{major}",),
            context(tag="nightly"),
            "TAGS entry '{major}' uses {major}, but BITBUCKET_TAG 'nightly' is not a semantic version (vX.Y.Z): "
            "use a placeholder this pipeline has, or a fixed tag.",
        ),
        (
            ("{branch}",),
            context(tag="v1.0.0"),
            "TAGS entry '{branch}' uses {branch}, but BITBUCKET_BRANCH is empty: "
            "use a placeholder this pipeline has, or a fixed tag.",
        ),
        (
            ("{short_commit}",),
            context(branch="main", commit=None),
            "TAGS entry '{short_commit}' uses {short_commit}, but BITBUCKET_COMMIT is empty: "
            "use a placeholder this pipeline has, or a fixed tag.",
        ),
        (
            ("{sha}",),
            context(branch="main"),
            "TAGS entry '{sha}' uses the unknown placeholder {sha}: use one of {version} {major} {minor} {patch} "
            "{tag} {branch} {commit} {short_commit} {build_number}.",
        ),
        (
            ("{version",),
            context(tag="v1.0.0"),
            "TAGS entry '{version' has an unmatched brace: write placeholders as {version}, {branch}, …",
        ),
        (
            ("bad/tag",),
            context(branch="main"),
            "TAGS entry 'bad/tag' gives the tag 'bad/tag', which is not a valid image tag: use letters, digits, "
            "'_', '.' and '-', up to 128 characters, not starting with '.' or '-'.",
        ),
        (
            (".hidden",),
            context(branch="main"),
            "TAGS entry '.hidden' gives the tag '.hidden', which is not a valid image tag: use letters, digits, "
            "'_', '.' and '-', up to 128 characters, not starting with '.' or '-'.",
        ),
    ],
)
def test_explicit_tag_errors(templates, ctx, message):
    with pytest.raises(ConfigError) as caught:
        plan_tags(templates, ctx, [])
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("main", "main"), ("a b", "a-b"), ("a//b", "a-b"), ("--x--", "x"), ("..", ""), ("A_b.C-1", "A_b.C-1")],
)
def test_sanitise_tag(text, expected):
    assert sanitise_tag(text) == expected

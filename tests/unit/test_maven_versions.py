"""Maven's version order (ComparableVersion's rules), against tables of known orderings; the
integration suite checks the same tables against Maven's own implementation."""

from __future__ import annotations

import itertools

import pytest

from pipe.maven.versions import MavenVersion, highest

# Each table is in ascending order: every version is older than the next.
QUALIFIER_ORDER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc", "1-cr2",
    "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1", "1-1-snapshot", "1-1",
    "1-2", "1-123",
]  # fmt: skip
NUMBER_ORDER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1", "2.2",
    "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
]  # fmt: skip
RELEASE_LINE = [
    "0.9", "0.9.9", "0.10", "1.0-alpha-1-SNAPSHOT", "1.0-alpha-1", "1.0-beta-2", "1.0-RC1", "1.0-SNAPSHOT", "1.0",
    "1.0-sp-1", "1.0-jre", "1.0-1", "1.0.1", "1.9", "1.10", "1.10.1", "12345678901234567890", "12345678901234567891",
]  # fmt: skip
EQUAL = [
    ("1", "1.0", "1.0.0", "1-ga", "1.final", "1.0.RELEASE", "1-0"),
    ("1-rc1", "1-cr1", "1.0-RC-1", "1.0RC1"),
    ("1-a1", "1-alpha-1", "1alpha1"),
    ("1-0.1", "1-0.1.0"),
    ("1.foo", "1-foo"),
    ("00.1", "0.1"),
]


@pytest.mark.parametrize("table", [QUALIFIER_ORDER, NUMBER_ORDER, RELEASE_LINE], ids=["qualifiers", "numbers", "line"])
def test_every_version_is_older_than_each_later_one(table: list[str]) -> None:
    for older, newer in itertools.combinations(table, 2):
        assert MavenVersion(older) < MavenVersion(newer), (older, newer)
        assert not MavenVersion(newer) < MavenVersion(older), (older, newer)
    assert sorted(reversed(table), key=MavenVersion) == table


@pytest.mark.parametrize("group", EQUAL, ids=[g[0] for g in EQUAL])
def test_spellings_maven_treats_as_one_version_are_equal(group: tuple[str, ...]) -> None:
    for left, right in itertools.combinations(group, 2):
        assert MavenVersion(left) == MavenVersion(right), (left, right)
        assert hash(MavenVersion(left)) == hash(MavenVersion(right))
        assert not MavenVersion(left) < MavenVersion(right)


@pytest.mark.parametrize(
    ("version", "canonical"),
    [("1.0.0", "1"), ("1.0-SNAPSHOT", "1-snapshot"), ("1a1", "1-alpha-1"), ("1.0.0.x1", "1-x-1"), ("1..2", "1.0.2")],
)
def test_canonical_form_is_mavens(version: str, canonical: str) -> None:
    assert MavenVersion(version).canonical == canonical


@pytest.mark.parametrize(
    ("version", "release"),
    [("1.0", True), ("1.0.Final", True), ("1.0-sp1", True), ("31.1-jre", True), ("2.0-rc1", False),
     ("2.0.M1", False), ("1.0-beta-2", False), ("1.0-SNAPSHOT", False), ("1-a1", False)],
)  # fmt: skip
def test_prereleases_are_the_versions_with_a_qualifier_before_release(version: str, release: bool) -> None:
    assert MavenVersion(version).is_release is release


def test_highest_is_maven_order_not_string_order() -> None:
    assert highest(["1.9", "1.10", "1.2"]) == "1.10"
    assert highest(["1.0", "1.0-SNAPSHOT"]) == "1.0"
    assert highest([]) is None

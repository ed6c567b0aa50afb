"""Maven's version order as implemented by the pipe, against Maven's own ComparableVersion (the
maven-artifact jar of the installed Maven): for the unit tables and a shuffled mix of them, every
neighbouring pair compares the same, and the canonical forms are the same."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest

from pipe.maven.versions import MavenVersion
from tests.unit.test_maven_versions import EQUAL, NUMBER_ORDER, QUALIFIER_ORDER, RELEASE_LINE

MAVEN_ARTIFACT_JAR = Path("/usr/share/maven/lib/maven-artifact-3.x.jar")
EXTRA = ["1.0.0.x1", "1.0.0-x2", "1..2", "1.2.", "-1", "1-ga-1", "1.a.2", "1.X1", "1--1", "1-.1", "1.-1", "2.0.M1"]
_SIGN = {"<": -1, "==": 0, ">": 1}


def maven_says(versions: list[str]) -> tuple[list[str], list[tuple[str, int, str]]]:
    """ComparableVersion's main prints each version's canonical form and how it compares with the next."""
    done = subprocess.run(
        ["java", "-cp", str(MAVEN_ARTIFACT_JAR), "org.apache.maven.artifact.versioning.ComparableVersion", *versions],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    canonical = re.findall(r"^\d+\. .* -> (.*); tokens", done.stdout, re.MULTILINE)
    pairs = [(a, _SIGN[op], b) for a, op, b in re.findall(r"^   (\S+) (<|>|==) (\S+)$", done.stdout, re.MULTILINE)]
    assert len(canonical) == len(versions) and len(pairs) == len(versions) - 1, done.stdout
    return canonical, pairs


def mixes() -> list[list[str]]:
    everything = QUALIFIER_ORDER + NUMBER_ORDER + RELEASE_LINE + [v for g in EQUAL for v in g] + EXTRA
    shuffled = []
    for seed in range(4):
        mix = list(everything)
        random.Random(seed).shuffle(mix)  # noqa: S311 - a repeatable mix, not a secret
        shuffled.append(mix)
    return [QUALIFIER_ORDER, NUMBER_ORDER, RELEASE_LINE, *shuffled]


@pytest.mark.parametrize("versions", mixes(), ids=["qualifiers", "numbers", "line", "mix0", "mix1", "mix2", "mix3"])
def test_the_pipe_orders_versions_exactly_as_maven_does(versions: list[str]) -> None:
    canonical, pairs = maven_says(versions)
    assert [MavenVersion(v).canonical for v in versions] == canonical
    for left, sign, right in pairs:
        mine = MavenVersion(left), MavenVersion(right)
        assert (mine[0] > mine[1]) - (mine[0] < mine[1]) == sign, (left, right)

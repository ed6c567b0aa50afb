"""Maven's version order (the rules of maven-artifact's ComparableVersion, Maven 3.8), so that
KEEP_RELEASES keeps what Maven itself calls the newest versions.

A version is split into items at `.`, at `-` and where digits meet letters. `.` separates items
of one list; `-` and a digit/letter transition open a nested list. Numbers compare as numbers,
qualifiers in the order alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release
< sp < anything else (alphabetically); `a1`, `b1`, `m1` mean alpha-1, beta-1, milestone-1.
Trailing zeros and release qualifiers are dropped (1.0.0 = 1 = 1-ga), and a missing item compares
as that "nothing": 1 < 1.1, 1-rc < 1, 1 < 1-sp. A number is newer than a qualifier (1-1 > 1-xyz)
and a list sits between the two (1.xyz < 1-1 < 1.1).
"""

from __future__ import annotations

from functools import total_ordering
from itertools import zip_longest

# Known qualifiers in order; the index as a string is what is compared, so an unknown
# qualifier ("7-<name>") sorts after all of them and alphabetically among themselves.
QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE = str(QUALIFIERS.index(""))
ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
SHORT_BEFORE_DIGIT = {"a": "alpha", "b": "beta", "m": "milestone"}

Item = int | str | list


def _qualifier(text: str, before_digit: bool) -> str:
    if before_digit and text in SHORT_BEFORE_DIGIT:
        text = SHORT_BEFORE_DIGIT[text]
    return ALIASES.get(text, text)


def _rank(qualifier: str) -> str:
    return str(QUALIFIERS.index(qualifier)) if qualifier in QUALIFIERS else f"{len(QUALIFIERS)}-{qualifier}"


def _is_null(item: Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, str):
        return _rank(item) == _RELEASE
    return not item


def _normalize(items: list) -> None:
    """Drop "nothing" items (0, release qualifiers, empty lists) from the end of a list, also
    where they stand just before a nested list (1.0-1 is 1-1)."""
    for index in range(len(items) - 1, -1, -1):
        if _is_null(items[index]):
            del items[index]
        elif not isinstance(items[index], list):
            break


def _item(text: str, digits: bool, before_digit: bool = False) -> Item:
    return int(text) if digits else _qualifier(text, before_digit)


class _Parser:
    """One pass over the lower-cased version, building the nested lists."""

    def __init__(self) -> None:
        self.root: list = []
        self.current = self.root
        self.lists = [self.root]

    def nest(self) -> None:
        inner: list = []
        self.current.append(inner)
        self.current = inner
        self.lists.append(inner)

    def parse(self, text: str) -> list:
        digits, start = False, 0
        for index, char in enumerate(text):
            if char in ".-":
                self.current.append(_item(text[start:index], digits) if index > start else 0)
                start = index + 1
                if char == "-":
                    self.nest()
            elif char.isdecimal():
                if not digits and index > start:
                    if self.current:  # 1.0.0.x1 reads as 1.0.0-x-1
                        self.nest()
                    self.current.append(_item(text[start:index], False, before_digit=True))
                    start = index
                    self.nest()
                digits = True
            else:
                if digits and index > start:
                    self.current.append(int(text[start:index]))
                    start = index
                    self.nest()
                digits = False
        if len(text) > start:
            if not digits and self.current:  # 1.foo reads as 1-foo
                self.nest()
            self.current.append(_item(text[start:], digits))
        for items in reversed(self.lists):
            _normalize(items)
        return self.root


def _compare(left: Item, right: Item | None) -> int:
    """-1, 0 or 1; `right` None is a missing item (the shorter side of two lists)."""
    if isinstance(left, int):
        if right is None:
            return 1 if left else 0
        if isinstance(right, int):
            return (left > right) - (left < right)
        return 1  # a number is newer than a qualifier or a list
    if isinstance(left, str):
        if right is None:
            mine = _rank(left)
            return (mine > _RELEASE) - (mine < _RELEASE)
        if isinstance(right, str):
            mine, theirs = _rank(left), _rank(right)
            return (mine > theirs) - (mine < theirs)
        return -1  # a qualifier is older than a number or a list
    if right is None:
        return next((result for item in left if (result := _compare(item, None))), 0)
    if isinstance(right, int):
        return -1
    if isinstance(right, str):
        return 1
    for mine, theirs in zip_longest(left, right):
        result = -_compare(theirs, None) if mine is None else _compare(mine, theirs)
        if result:
            return result
    return 0


def _has_prerelease_qualifier(items: list) -> bool:
    for item in items:
        if isinstance(item, list) and _has_prerelease_qualifier(item):
            return True
        if isinstance(item, str) and _rank(item) < _RELEASE:
            return True
    return False


def _canonical(items: list) -> str:
    parts = []
    for index, item in enumerate(items):
        if index:
            parts.append("-" if isinstance(item, list) else ".")
        parts.append(_canonical(item) if isinstance(item, list) else str(item))
    return "".join(parts)


@total_ordering
class MavenVersion:
    """A version in Maven's order; equal when Maven's canonical forms are (1.0 == 1 == 1-ga)."""

    __slots__ = ("items", "text", "canonical")

    def __init__(self, text: str):
        self.text = text
        self.items = _Parser().parse(text.lower())
        self.canonical = _canonical(self.items)

    @property
    def is_release(self) -> bool:
        """No qualifier Maven orders before a release (alpha, beta, milestone, rc, snapshot):
        1.0, 1.0.Final, 1.0-sp1 and 31.1-jre are releases, 2.0-rc1 and 1.0-SNAPSHOT are not."""
        return not _has_prerelease_qualifier(self.items)

    def __lt__(self, other: MavenVersion) -> bool:
        return _compare(self.items, other.items) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MavenVersion) and self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __repr__(self) -> str:
        return f"MavenVersion({self.text!r})"


def is_snapshot(version: str) -> bool:
    return version.endswith("-SNAPSHOT")


def highest(versions: list[str]) -> str | None:
    """The newest of `versions` in Maven's order (the first of equals), None for none."""
    return max(versions, key=MavenVersion, default=None)

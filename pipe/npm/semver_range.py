"""Does a version satisfy an npm range? node-semver's rules, as pnpm applies them when it links a
`workspace:<range>` dependency to the sibling of that name: `||` alternatives, hyphen ranges
(`1.2 - 2`), comparators (`>=1.2.3 <2`), x-ranges (`1.x`, `*`), tilde and caret ranges; a
prerelease version satisfies a range only through a comparator on the same major.minor.patch that
has a prerelease too (node-semver without `includePrerelease`).
"""

from __future__ import annotations

import re

from pipe.versioning import SemVer

_PART = r"(?:0|[1-9]\d*|[xX*])"
_PARTIAL = re.compile(
    rf"^v?(?P<major>{_PART})(?:\.(?P<minor>{_PART})(?:\.(?P<patch>{_PART})"
    r"(?:-?(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?)?)?$"
)
_COMPARATOR = re.compile(r"^(?P<op><=|>=|<|>|=|\^|~>|~)?\s*(?P<version>.*)$")
_HYPHEN = re.compile(r"^(?P<low>\S+)\s+-\s+(?P<high>\S+)$")
_WILD = ("x", "X", "*", None)

# A comparator: (operator, version); the empty operator means "=".
Comparator = tuple[str, SemVer]


class RangeError(ValueError):
    """The text is not an npm range."""


def satisfies(version: SemVer, range_text: str) -> bool:
    """node-semver's `satisfies(version, range)`; a RangeError when the range cannot be read."""
    return any(_set_allows(comparators, version) for comparators in parse_range(range_text))


def parse_range(range_text: str) -> list[list[Comparator]]:
    alternatives = [part.strip() for part in range_text.strip().split("||")]
    return [_comparator_set(part) for part in alternatives]


def _comparator_set(text: str) -> list[Comparator]:
    text = re.sub(r"(<=|>=|<|>|=|\^|~>|~)\s+", r"\1", text)
    hyphen = _HYPHEN.match(text)
    if hyphen:
        return _hyphen(hyphen.group("low"), hyphen.group("high"))
    comparators: list[Comparator] = []
    for token in text.split():
        comparators += _token(token)
    return comparators or [(">=", SemVer(0, 0, 0, ()))]


def _partial(text: str) -> tuple[int | None, int | None, int | None, tuple]:
    match = _PARTIAL.match(text)
    if match is None:
        raise RangeError(text)
    numbers = [None if match.group(k) in _WILD else int(match.group(k)) for k in ("major", "minor", "patch")]
    if any(numbers[index - 1] is None and numbers[index] is not None for index in (1, 2)):
        raise RangeError(text)  # `1.x.3`: node-semver matches nothing with it
    pre = tuple(match.group("pre").split(".")) if match.group("pre") else ()
    return numbers[0], numbers[1], numbers[2], pre


def _v(major: int, minor: int, patch: int, pre: tuple = ()) -> SemVer:
    return SemVer(major, minor, patch, pre)


def _token(token: str) -> list[Comparator]:
    if token in ("*", "x", "X", ""):
        return []
    match = _COMPARATOR.match(token)
    op, text = match.group("op") or "", match.group("version")
    major, minor, patch, pre = _partial(text)
    if op == "^":
        return _caret(major, minor, patch, pre)
    if op in ("~", "~>"):
        return _tilde(major, minor, patch, pre)
    return _x_range(op, major, minor, patch, pre)


def _caret(major, minor, patch, pre) -> list[Comparator]:
    if major is None:
        return []
    if minor is None:
        return [(">=", _v(major, 0, 0)), ("<", _v(major + 1, 0, 0, ("0",)))]
    if patch is None:
        upper = _v(major + 1, 0, 0, ("0",)) if major else _v(0, minor + 1, 0, ("0",))
        return [(">=", _v(major, minor, 0)), ("<", upper)]
    if major:
        upper = _v(major + 1, 0, 0, ("0",))
    elif minor:
        upper = _v(0, minor + 1, 0, ("0",))
    else:
        upper = _v(0, 0, patch + 1, ("0",))
    return [(">=", _v(major, minor, patch, pre)), ("<", upper)]


def _tilde(major, minor, patch, pre) -> list[Comparator]:
    if major is None:
        return []
    if minor is None:
        return [(">=", _v(major, 0, 0)), ("<", _v(major + 1, 0, 0, ("0",)))]
    low = _v(major, minor, patch if patch is not None else 0, pre if patch is not None else ())
    return [(">=", low), ("<", _v(major, minor + 1, 0, ("0",)))]


def _x_range(op: str, major, minor, patch, pre) -> list[Comparator]:
    if major is None:
        return [("<", _v(0, 0, 0, ("0",)))] if op in ("<", ">") else []
    if patch is not None:
        return [(op or "=", _v(major, minor, patch, pre))]
    if op == ">":  # >1 is >=2.0.0, >1.2 is >=1.3.0
        return [(">=", _v(major + 1, 0, 0) if minor is None else _v(major, minor + 1, 0))]
    if op == "<=":  # <=1 is <2.0.0-0, <=1.2 is <1.3.0-0
        return [("<", _v(major + 1, 0, 0, ("0",)) if minor is None else _v(major, minor + 1, 0, ("0",)))]
    low = _v(major, minor or 0, 0)
    if op == "<":
        return [("<", _v(major, minor or 0, 0, ("0",)))]
    if op == ">=":
        return [(">=", low)]
    upper = _v(major + 1, 0, 0, ("0",)) if minor is None else _v(major, minor + 1, 0, ("0",))
    return [(">=", low), ("<", upper)]


def _hyphen(low_text: str, high_text: str) -> list[Comparator]:
    major, minor, patch, pre = _partial(low_text)
    low = [] if major is None else [(">=", _v(major, minor or 0, patch or 0, pre if patch is not None else ()))]
    major, minor, patch, pre = _partial(high_text)
    if major is None:
        return low
    if minor is None:
        high = ("<", _v(major + 1, 0, 0, ("0",)))
    elif patch is None:
        high = ("<", _v(major, minor + 1, 0, ("0",)))
    else:
        high = ("<=", _v(major, minor, patch, pre))
    return [*low, high]


def _compare(version: SemVer, op: str, other: SemVer) -> bool:
    if op in ("=", ""):
        return version == other
    return {
        "<": version < other,
        "<=": version < other or version == other,
        ">": other < version,
        ">=": other < version or version == other,
    }[op]


def _set_allows(comparators: list[Comparator], version: SemVer) -> bool:
    if not all(_compare(version, op, other) for op, other in comparators):
        return False
    if not version.prerelease:
        return True
    # A prerelease only through a comparator on its own major.minor.patch that has a prerelease.
    return any(
        other.prerelease and (other.major, other.minor, other.patch) == (version.major, version.minor, version.patch)
        for _op, other in comparators
    )

"""Which `<profile>`s of a POM the build ran with, decided as Maven 3 decides them, where the pipe can.

Each condition of an `<activation>` is True, False or None (the pipe cannot know: the JDK of the
build, its CPU architecture, a system property of its JVM); Maven requires all of them. Property
conditions read the user properties (MAVEN_PROPERTIES, as `-D`); file conditions look in the clone,
relative to the POM's folder. The build that ran before the pipe ran on Linux: Bitbucket
Pipelines runs pipes only in Linux steps. `activeByDefault` profiles are active unless another
profile of the same POM is. A profile without `<activation>` (turned on by `-P`) counts as active
only when its modules were built.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipe.maven.interpolation import REFERENCE
from pipe.maven.versions import MavenVersion
from pipe.maven.xmltree import child, children, text

# System properties of the JVM that ran the build: unknown unless MAVEN_PROPERTIES gives them.
_SYSTEM_PREFIXES = ("java.", "os.", "user.", "file.", "line.", "path.", "sun.", "env.")
# Maven's OS families, and which of them Linux belongs to.
_LINUX_FAMILIES = {"unix"}
_RANGE = re.compile(r"^([\[(])\s*([^,]*?)\s*,\s*([^,]*?)\s*([\])])$")

State = bool | None


@dataclass(frozen=True)
class ProfileState:
    profile: ET.Element
    id: str
    active: State
    why: str  # for an undecided profile: what the pipe cannot tell


def _negated(value: str) -> tuple[bool, str]:
    return (True, value[1:].strip()) if value.startswith("!") else (False, value)


def _property(element: ET.Element, user: Mapping[str, str]) -> tuple[State, str]:
    reverse, name = _negated(text(element, "name") or "")
    if not name:
        return False, ""
    current = user.get(name)
    if current is None and name.startswith(_SYSTEM_PREFIXES):
        return None, f"the build's system property {name} (give it in MAVEN_PROPERTIES to decide)"
    wanted = text(element, "value")
    if wanted is None:
        return bool(current) != reverse, ""
    reverse_value, wanted = _negated(wanted)
    return (wanted == current) != reverse_value, ""


def _in_range(version: str, spec: str) -> bool:
    """A JDK range such as [11,17) or (,1.8]."""
    match = _RANGE.match(spec)
    if not match:
        return False
    low_bracket, low, high, high_bracket = match.groups()
    current = MavenVersion(version)
    if low and (current < MavenVersion(low) or (low_bracket == "(" and current == MavenVersion(low))):
        return False
    return not (high and (current > MavenVersion(high) or (high_bracket == ")" and current == MavenVersion(high))))


def _jdk(spec: str, user: Mapping[str, str]) -> tuple[State, str]:
    version = user.get("java.version")
    if version is None:
        return None, f"the JDK of the build (<jdk>{spec}</jdk>; give java.version in MAVEN_PROPERTIES to decide)"
    if spec.startswith(("[", "(")):
        return _in_range(version, spec), ""
    reverse, prefix = _negated(spec)
    return version.startswith(prefix) != reverse, ""


def _os(element: ET.Element) -> tuple[State, str]:
    checks: list[State] = []
    for name, matches in (("family", lambda v: v in _LINUX_FAMILIES), ("name", lambda v: v == "linux")):
        value = text(element, name)
        if value:
            reverse, value = _negated(value.lower())
            checks.append(matches(value) != reverse)
    unknown = [name for name in ("arch", "version") if text(element, name)]
    if False in checks:
        return False, ""
    if unknown:
        return None, f"the build machine's OS {' and '.join(unknown)}"
    return True, ""


def _file(element: ET.Element, basedir: Path, values: Callable[[str], str | None]) -> tuple[State, str]:
    exists, missing = text(element, "exists"), text(element, "missing")
    written = exists or missing
    if not written:
        return False, ""
    # ${basedir} is the POM's folder; other names come from the properties; unknown ones stay as written (Maven's way).
    path = REFERENCE.sub(
        lambda m: basedir.as_posix() if m.group(1) == "basedir" else values(m.group(1)) or m.group(0), written
    )
    found = (basedir / path).exists()
    return (found if exists else not found), ""


def activation_state(
    activation: ET.Element, basedir: Path, user: Mapping[str, str], values: Callable[[str], str | None]
) -> tuple[State, str]:
    """All conditions of one `<activation>` (Maven ANDs them); (False, '') when it has none."""
    checks: list[tuple[State, str]] = []
    jdk = text(activation, "jdk")
    if jdk:
        checks.append(_jdk(jdk, user))
    for name, check in (
        ("os", _os),
        ("property", lambda e: _property(e, user)),
        ("file", lambda e: _file(e, basedir, values)),
    ):
        element = child(activation, name)
        if element is not None:
            checks.append(check(element))
    if not checks or any(state is False for state, _ in checks):
        return False, ""
    unknown = [why for state, why in checks if state is None]
    return (None, "; ".join(unknown)) if unknown else (True, "")


def select_profiles(
    root: ET.Element,
    basedir: Path,
    user: Mapping[str, str],
    values: Callable[[str], str | None],
    evidence: Callable[[ET.Element], bool],
) -> list[ProfileState]:
    """Every profile of the POM with its state. An undecided profile counts as active when
    `evidence` (its modules' built artifacts) says the build ran with it."""
    states, by_default = [], []
    for profile in children(child(root, "profiles"), "profile"):
        activation = child(profile, "activation")
        if activation is None:
            # Only `-P id` on the build's command line turns it on, which the pipe cannot see: its
            # built modules are the one sign that the build used it.
            state, why = evidence(profile), ""
        else:
            state, why = activation_state(activation, basedir, user, values)
            state = True if state is None and evidence(profile) else state
        profile_id = text(profile, "id") or "default"
        if state is False and activation is not None and (text(activation, "activeByDefault") or "") == "true":
            by_default.append(ProfileState(profile, profile_id, False, ""))
            continue
        states.append(ProfileState(profile, profile_id, state, why))
    if any(s.active for s in states):
        return states + by_default
    undecided = [s for s in states if s.active is None]
    default_state: State = None if undecided else True
    why = f"it is active unless another profile is, and {undecided[0].id} is undecided" if undecided else ""
    decided = [ProfileState(s.profile, s.id, default_state, why) for s in by_default]
    return states + [s if s.active is not None or not evidence(s.profile) else _as_active(s) for s in decided]


def _as_active(state: ProfileState) -> ProfileState:
    return ProfileState(state.profile, state.id, True, "")

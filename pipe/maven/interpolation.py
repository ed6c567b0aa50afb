"""`${…}` in a POM, resolved as Maven's model interpolation does, and bounded.

Maven looks a name up in the project's own model first (`project.version`, `project.groupId`, …),
then in the user properties (`-D`, here MAVEN_PROPERTIES and VERSION as `revision`), then in the
`<properties>` of the POM and its parents. A value may itself hold references; they are resolved
once per name (memoised), loops are named, and no value may grow beyond `MAX_EXPANDED`
characters: `p2` as ten `${p1}`, `p3` as ten `${p2}`, … would otherwise take gigabytes.
A name nothing defines stays as it is written (Maven's behaviour); `expand` refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipe.errors import InputError

REFERENCE = re.compile(r"\$\{([^}]+)\}")
# Far above any real version, path or flag, far below what would strain memory.
MAX_EXPANDED = 65_536
# Properties a CI build sets on the command line (Maven's "CI friendly versions").
CI_FRIENDLY = ("revision", "sha1", "changelist")


class Values:
    """What `${name}` means inside one module. `layers` are searched in order: the project's model,
    the user properties, the model's properties, then deprecated unprefixed model names."""

    def __init__(self, layers: tuple[Mapping[str, str], ...], label: str, hint: str = ""):
        self.layers = layers
        self.label = label
        # Said after "define it in <properties>" when a name is missing (e.g. where a parent comes from).
        self.hint = hint
        self.done: dict[str, str | None] = {}
        self.active: list[str] = []

    def raw(self, name: str) -> str | None:
        for layer in self.layers:
            if name in layer:
                return layer[name]
        return None

    def value(self, name: str) -> str | None:
        """The fully expanded value of `name`, None when nothing defines it."""
        if name in self.done:
            return self.done[name]
        if name in self.active:
            loop = " -> ".join(f"${{{n}}}" for n in [*self.active[self.active.index(name) :], name])
            raise InputError(
                f"{self.label}'s properties refer to each other in a loop ({loop}): give one of them a literal value."
            )
        raw = self.raw(name)
        if raw is None:
            self.done[name] = None
            return None
        self.active.append(name)
        try:
            self.done[name] = self.substitute(raw)
        finally:
            self.active.pop()
        return self.done[name]

    def substitute(self, text: str) -> str:
        """`text` with every defined reference replaced; undefined ones kept as written."""
        if "${" not in text:
            return text
        parts: list[str] = []
        size = 0
        last = 0
        for match in REFERENCE.finditer(text):
            value = self.value(match.group(1))
            piece = text[last : match.start()] + (match.group(0) if value is None else value)
            size += len(piece)
            if size > MAX_EXPANDED:
                self.too_large()
            parts.append(piece)
            last = match.end()
        parts.append(text[last:])
        if size + len(text) - last > MAX_EXPANDED:
            self.too_large()
        return "".join(parts)

    def too_large(self) -> None:
        chain = " -> ".join(f"${{{name}}}" for name in self.active)
        where = f"the property ${{{self.active[-1]}}} (through {chain})" if self.active else "a value"
        raise InputError(
            f"{self.label}: {where} expands to more than {MAX_EXPANDED} characters, which no POM value needs: "
            "fix the <properties> that repeat each other."
        )

    def expand(self, text: str, what: str) -> str:
        """`text` fully resolved; a name nothing defines is an InputError saying how to define it."""
        result = self.substitute(text)
        missing = REFERENCE.search(result)
        if missing:
            raise InputError(self.missing_message(text, what, missing.group(1)))
        return result

    def missing_message(self, text: str, what: str, name: str) -> str:
        if name in CI_FRIENDLY:
            how = (
                "set VERSION (it sets ${revision}, e.g. VERSION: $BITBUCKET_TAG)"
                if name == "revision"
                else f"set MAVEN_PROPERTIES {name}=… as the build did with -D{name}=…"
            )
            return (
                f"{self.label}'s {what} '{text}' uses ${{{name}}}, which nothing defines: {how}, "
                "or define it in <properties>."
            )
        return (
            f"{self.label}'s {what} '{text}' uses the property ${{{name}}}, which the POM does not define: "
            f"define it in <properties>{self.hint}, pass it in MAVEN_PROPERTIES ({name}=…, as mvn -D{name}=…), "
            f"or write the {what} literally."
        )

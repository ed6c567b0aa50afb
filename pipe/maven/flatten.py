"""Consumer POMs for CI-friendly versions: `${revision}`, `${sha1}` and `${changelist}` replaced by
their values in the POM's `<version>`, its `<parent><version>` and every dependency `<version>`
(what flatten-maven-plugin's CI mode, and Maven 4's consumer POM, do). A consumer reads the
deployed POM without the build's `-D` values, so `${revision}` left in it makes it unresolvable.
They are replaced in `<properties>` values too (the project's and its profiles'): a version written
as `${lib.version}` with `<lib.version>${revision}</lib.version>` stays a reference the consumer
resolves from the deployed POM, which now says the value the build had.

Only the text of those elements changes; every other byte of the file is kept as written.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from pathlib import Path
from xml.sax.saxutils import escape

from pipe.maven.interpolation import CI_FRIENDLY, Values
from pipe.maven.layout import checksums_of, checksums_of_bytes
from pipe.maven.repository import Upload

_CI_REFERENCE = re.compile(r"\$\{(" + "|".join(CI_FRIENDLY) + r")\}")


def _is_flattened(stack: list[str]) -> bool:
    """project/version, project/parent/version, a dependency's version anywhere in the POM, and a
    property of the project or of one of its profiles."""
    return (
        stack in (["project", "version"], ["project", "parent", "version"])
        or stack[-2:] == ["dependency", "version"]
        or (len(stack) == 3 and stack[:2] == ["project", "properties"])
        or (len(stack) == 5 and stack[:2] == ["project", "profiles"] and stack[2:4] == ["profile", "properties"])
    )


def flattened_spans(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the text of the elements to flatten, in file order."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[str] = []
    starts: list[int] = []
    spans: list[tuple[int, int]] = []

    def start(name: str, _attributes: object) -> None:
        stack.append(name.rsplit(":", 1)[-1])
        starts.append(data.index(b">", parser.CurrentByteIndex) + 1)

    def end(_name: str) -> None:
        begin = starts.pop()
        if _is_flattened(stack) and parser.CurrentByteIndex >= begin:
            spans.append((begin, parser.CurrentByteIndex))
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(data, True)
    return spans


def flattened(path: Path, values: Values) -> bytes | None:
    """The POM's bytes to deploy when they name CI-friendly placeholders, None when the file goes as it is."""
    data = path.read_bytes()
    if b"${" not in data:
        return None
    pieces: list[bytes] = []
    last = 0
    for begin, end in flattened_spans(data):
        text = data[begin:end].decode("utf-8", errors="surrogateescape")
        replaced = _CI_REFERENCE.sub(lambda m: _value(m, values), text)
        pieces += [data[last:begin], replaced.encode("utf-8", errors="surrogateescape")]
        last = end
    pieces.append(data[last:])
    result = b"".join(pieces)
    return result if result != data else None


def _value(match: re.Match[str], values: Values) -> str:
    value = values.value(match.group(1))
    return match.group(0) if value is None else escape(value)


def pom_upload(path: str, source: Path, deployed: bytes | None) -> Upload:
    """The POM's upload: the flattened bytes when there are any, else the file itself."""
    if deployed is None:
        return Upload(path=path, label="POM", checksums=checksums_of(source), source=source)
    return Upload(
        path=path, label="POM, CI-friendly versions flattened", checksums=checksums_of_bytes(deployed), content=deployed
    )

"""Ignore-file patterns matched the way npm's packer matches them.

npm decides which files go into a package with gitignore-style rules evaluated by minimatch with
the options `matchBase`, `dot`, `flipNegate` and `nocase`. Parity with `npm pack` depends on the
small details (brace expansion, `**`, partial matching of directories, the "no `.`/`..`" guard of
wildcards, basename matching of slash-free patterns), so this module implements exactly that
subset of minimatch semantics and nothing more. Extended globs such as `+(a|b)` are not
interpreted: their characters match literally, except `*` and `?`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

GLOBSTAR = object()  # a "**" path segment

# A compiled path segment: a literal (exact, case-insensitive) or a predicate, or GLOBSTAR.
Segment = object


# ---------------------------------------------------------------------------------------------
# Brace expansion: a{b,c}d -> abd acd; a{1..3} -> a1 a2 a3; invalid sets stay as they are.
# ---------------------------------------------------------------------------------------------

_ESC_SLASH, _ESC_OPEN, _ESC_CLOSE, _ESC_COMMA, _ESC_PERIOD = (
    "\0SLASH\0",
    "\0OPEN\0",
    "\0CLOSE\0",
    "\0COMMA\0",
    "\0PERIOD\0",
)


def _escape_braces(text: str) -> str:
    return (
        text.replace("\\\\", _ESC_SLASH)
        .replace("\\{", _ESC_OPEN)
        .replace("\\}", _ESC_CLOSE)
        .replace("\\,", _ESC_COMMA)
        .replace("\\.", _ESC_PERIOD)
    )


def _unescape_braces(text: str) -> str:
    return (
        text.replace(_ESC_SLASH, "\\")
        .replace(_ESC_OPEN, "{")
        .replace(_ESC_CLOSE, "}")
        .replace(_ESC_COMMA, ",")
        .replace(_ESC_PERIOD, ".")
    )


def _balanced(text: str) -> tuple[str, str, str] | None:
    """(pre, body, post) of the first `{` that has a matching `}`, nesting respected."""
    for start, char in enumerate(text):
        if char != "{":
            continue
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    return text[:start], text[start + 1 : end], text[end + 1 :]
    return None


def _comma_parts(body: str) -> list[str]:
    if not body:
        return [""]
    found = _balanced(body)
    if not found:
        return body.split(",")
    pre, inner, post = found
    parts = pre.split(",")
    parts[-1] += "{" + inner + "}"
    post_parts = _comma_parts(post)
    if post:
        parts[-1] += post_parts.pop(0)
        parts.extend(post_parts)
    return parts


def _sequence(body: str) -> list[str]:
    pieces = body.split("..")
    step = abs(int(pieces[2])) if len(pieces) > 2 and int(pieces[2]) != 0 else 1
    if re.fullmatch(r"[a-zA-Z]", pieces[0]) and re.fullmatch(r"[a-zA-Z]", pieces[1]):
        first, last = ord(pieces[0]), ord(pieces[1])
        values = range(first, last + 1, step) if first <= last else range(first, last - 1, -step)
        return [chr(value) for value in values if chr(value) != "\\"]
    first, last = int(pieces[0]), int(pieces[1])
    width = max(len(pieces[0]), len(pieces[1])) if any(re.match(r"-?0\d", p) for p in pieces[:2]) else 0
    values = range(first, last + 1, step) if first <= last else range(first, last - 1, -step)
    out = []
    for value in values:
        digits = str(abs(value)).rjust(width - (1 if value < 0 else 0), "0") if width else str(abs(value))
        out.append(("-" if value < 0 else "") + digits)
    return out


def _expand(text: str, is_top: bool) -> list[str]:
    found = _balanced(text)
    if not found:
        return [text]
    pre, body, post_text = found
    post = _expand(post_text, False) if post_text else [""]
    if pre.endswith("$"):
        return [pre + "{" + body + "}" + p for p in post]
    is_sequence = bool(
        re.fullmatch(r"-?\d+\.\.-?\d+(?:\.\.-?\d+)?", body) or re.fullmatch(r"[a-zA-Z]\.\.[a-zA-Z](?:\.\.-?\d+)?", body)
    )
    if not is_sequence and "," not in body:
        if re.search(r",(?!,).*\}", post_text):
            return _expand(pre + "{" + body + _ESC_CLOSE + post_text, True)
        return [text]
    if is_sequence:
        choices = _sequence(body)
    else:
        parts = _comma_parts(body)
        if len(parts) == 1:
            inner = ["{" + item + "}" for item in _expand(parts[0], False)]
            if len(inner) == 1:
                return [pre + inner[0] + p for p in post]
            parts = inner
        choices = [expanded for part in parts for expanded in _expand(part, False)]
    return [pre + c + p for c in choices for p in post if not is_top or is_sequence or pre + c + p]


def brace_expand(pattern: str) -> list[str]:
    if not re.search(r"\{(?:(?!\{).)*\}", pattern):
        return [pattern]
    if pattern.startswith("{}"):
        pattern = "\\{\\}" + pattern[2:]
    return [_unescape_braces(item) for item in _expand(_escape_braces(pattern), True)]


# ---------------------------------------------------------------------------------------------
# One path segment -> a matcher
# ---------------------------------------------------------------------------------------------

_POSIX_CLASSES = {
    "[:alnum:]": "a-zA-Z0-9",
    "[:alpha:]": "a-zA-Z",
    "[:ascii:]": "\\x00-\\x7f",
    "[:blank:]": " \\t",
    "[:cntrl:]": "\\x00-\\x1f\\x7f",
    "[:digit:]": "0-9",
    "[:graph:]": "!-~",
    "[:lower:]": "a-z",
    "[:print:]": " -~",
    "[:punct:]": re.escape(string.punctuation),
    "[:space:]": " \\t\\r\\n\\v\\f",
    "[:upper:]": "A-Z",
    "[:word:]": "a-zA-Z0-9_",
    "[:xdigit:]": "A-Fa-f0-9",
}
_NEVER = "(?!)"


def _class_escape(char: str) -> str:
    return "\\" + char if char in "[]\\-^" else char


def _parse_class(glob: str, pos: int) -> tuple[str, int, bool]:
    """A `[...]` at `pos`: (regex source, characters consumed, magic). consumed 0 = not a class."""
    ranges: list[str] = []
    i, saw_start, escaping, negate, end_pos, range_start = pos + 1, False, False, False, pos, ""
    while i < len(glob):
        char = glob[i]
        if char in "!^" and i == pos + 1:
            negate, i = True, i + 1
            continue
        if char == "]" and saw_start and not escaping:
            end_pos = i + 1
            break
        saw_start = True
        if char == "\\" and not escaping:
            escaping, i = True, i + 1
            continue
        if char == "[" and not escaping:
            posix = next((name for name in _POSIX_CLASSES if glob.startswith(name, i)), None)
            if posix:
                if range_start:
                    return _NEVER, len(glob) - pos, True
                ranges.append(_POSIX_CLASSES[posix])
                i += len(posix)
                continue
        escaping = False
        if range_start:
            if char > range_start:
                ranges.append(_class_escape(range_start) + "-" + _class_escape(char))
            elif char == range_start:
                ranges.append(_class_escape(char))
            range_start, i = "", i + 1
            continue
        if glob.startswith("-]", i + 1):
            ranges.append(_class_escape(char) + "\\-")
            i += 2
            continue
        if glob.startswith("-", i + 1):
            range_start, i = char, i + 2
            continue
        ranges.append(_class_escape(char))
        i += 1
    if end_pos < i:
        return "", 0, False
    if not ranges:
        return _NEVER, len(glob) - pos, True
    return "[" + ("^" if negate else "") + "".join(ranges) + "]", end_pos - pos, True


_STAR = "[^/]*?"


def _glob_to_regex(glob: str) -> tuple[str, bool]:
    """Regex source for one segment, and whether it has any wildcard."""
    out, magic, escaping, in_star, i = [], False, False, False, 0
    while i < len(glob):
        char = glob[i]
        if escaping:
            escaping = False
            out.append(re.escape(char))
        elif char == "*":
            if not in_star:
                out.append("[^/]+?" if re.fullmatch(r"\*+", glob) else _STAR)
            in_star, magic = True, True
            i += 1
            continue
        elif char == "\\":
            if i == len(glob) - 1:
                out.append("\\\\")
            else:
                escaping = True
        elif char == "[" and (parsed := _parse_class(glob, i))[1]:
            source, consumed, class_magic = parsed
            out.append(source)
            magic = magic or class_magic
            i += consumed
            in_star = False
            continue
        elif char == "?":
            out.append("[^/]")
            magic = True
        else:
            out.append(re.escape(char))
        in_star = False
        i += 1
    return "".join(out), magic


def _fast_test(segment: str) -> Callable[[str], bool] | None:
    """minimatch replaces the regex of a few common shapes with a simpler test (dot + nocase
    variants); their edge cases differ slightly from the regex, so mirror them."""
    if re.fullmatch(r"\*+", segment):
        return lambda name: name not in ("", ".", "..")
    if m := re.fullmatch(r"\*+([^+@!?*\[(]*)", segment):
        ext = m.group(1).lower()
        return lambda name: name.lower().endswith(ext)
    if m := re.fullmatch(r"\?+([^+@!?*\[(]*)?", segment):
        length, ext = len(m.group(0)), (m.group(1) or "").lower()
        return lambda name: len(name) == length and name not in (".", "..") and name.lower().endswith(ext)
    if re.fullmatch(r"\*+\.\*+", segment):
        return lambda name: name not in (".", "..") and "." in name
    if re.fullmatch(r"\.\*+", segment):
        return lambda name: name not in (".", "..") and name.startswith(".")
    return None


_NO_TRAVERSAL = r"(?!(?:^|/)\.\.?(?:$|/))"


def compile_segment(segment: str):
    if segment == "**":
        return GLOBSTAR
    if segment == "":
        return ""
    source, magic = _glob_to_regex(segment)
    if not magic:
        literal = re.compile(source, re.IGNORECASE | re.DOTALL)
        return lambda name: literal.fullmatch(name) is not None
    fast = _fast_test(segment)
    if fast:
        return fast
    guard = ""
    if segment not in (".", "..") and (
        source[:1] in "[."
        or (source.startswith("\\.") and source[2:3] in "[.")
        or (source.startswith("\\.\\.") and source[4:5] in "[.")
    ):
        guard = _NO_TRAVERSAL
    compiled = re.compile(guard + source, re.IGNORECASE | re.DOTALL)
    return lambda name: compiled.fullmatch(name) is not None


# ---------------------------------------------------------------------------------------------
# A whole rule
# ---------------------------------------------------------------------------------------------


def _level_one_optimize(parts: list[str]) -> list[str]:
    """Collapse adjacent `**` and resolve `x/..`, as minimatch does before matching."""
    out: list[str] = []
    for part in parts:
        previous = out[-1] if out else None
        if part == "**" and previous == "**":
            continue
        if part == ".." and previous and previous not in ("..", ".", "**"):
            out.pop()
            continue
        out.append(part)
    return out or [""]


class Rule:
    """One line of an ignore file (or a synthetic rule)."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.negate = False
        self.comment = pattern.startswith("#")
        self.empty = not pattern
        self.glob_parts: list[list[str]] = []
        self.sets: list[list] = []
        if self.comment or self.empty:
            return
        body = pattern
        while body.startswith("!"):
            self.negate = not self.negate
            body = body[1:]
        expanded = list(dict.fromkeys(brace_expand(body)))
        self.glob_parts = [_level_one_optimize(re.split(r"/+", item)) for item in expanded]
        self.sets = [[compile_segment(segment) for segment in parts] for parts in self.glob_parts]

    def is_relative(self) -> bool:
        """ignore-walk's test for rules that also apply to a directory's basename: one segment,
        optionally followed by a trailing slash."""
        return any(len(parts) <= (2 if parts[-1] == "" else 1) for parts in self.glob_parts)

    def match(self, path: str, partial: bool = False) -> bool:
        """True when the pattern matches (flipNegate: negation does not invert the result)."""
        if self.comment:
            return False
        if self.empty:
            return path == ""
        if path == "/" and partial:
            return True
        segments = re.split(r"/+", path)
        filename = next((s for s in reversed(segments) if s), "")
        for pattern in self.sets:
            file_parts = [filename] if len(pattern) == 1 else segments
            if _match_parts(file_parts, pattern, partial):
                return True
        return False


def _segment_hit(name: str, matcher) -> bool:
    if isinstance(matcher, str):
        return name == matcher
    return matcher(name)


def _match_one(file: list[str], pattern: list, partial: bool, fi: int = 0, pi: int = 0):
    while fi < len(file) and pi < len(pattern):
        matcher = pattern[pi]
        if matcher is GLOBSTAR or not _segment_hit(file[fi], matcher):
            return False
        fi += 1
        pi += 1
    if fi == len(file) and pi == len(pattern):
        return True
    if fi == len(file):
        return partial
    return fi == len(file) - 1 and file[fi] == ""


def _dotty(name: str) -> bool:
    return name in (".", "..")


def _match_parts(file: list[str], pattern: list, partial: bool) -> bool:
    if GLOBSTAR not in pattern:
        return bool(_match_one(file, pattern, partial))
    first = pattern.index(GLOBSTAR)
    last = len(pattern) - 1 - pattern[::-1].index(GLOBSTAR)
    head = pattern[:first]
    body = pattern[first + 1 :] if partial else pattern[first + 1 : last]
    tail = [] if partial else pattern[last + 1 :]
    fi = 0
    if head:
        if not _match_one(file[: len(head)], head, partial):
            return False
        fi = len(head)
    tail_match = 0
    if tail:
        if len(tail) + fi > len(file):
            return False
        tail_start = len(file) - len(tail)
        if _match_one(file, tail, partial, tail_start):
            tail_match = len(tail)
        else:
            if file[-1] != "" or fi + len(tail) == len(file):
                return False
            if not _match_one(file, tail, partial, tail_start - 1):
                return False
            tail_match = len(tail) + 1
    if not body:
        saw_some = bool(tail_match)
        for i in range(fi, len(file) - tail_match):
            saw_some = True
            if _dotty(file[i]):
                return False
        return partial or saw_some
    sections: list[list] = [[[], 0]]
    non_globstar, sums = 0, [0]
    for item in body:
        if item is GLOBSTAR:
            sums.append(non_globstar)
            sections.append([[], 0])
        else:
            sections[-1][0].append(item)
            non_globstar += 1
    file_length = len(file) - tail_match
    for index, section in enumerate(sections):
        section[1] = file_length - (sums[len(sections) - 1 - index] + len(section[0]))
    return bool(_match_sections(file, sections, fi, 0, partial, 0, bool(tail_match)))


def _match_sections(file, sections, fi, index, partial, depth, saw_tail):
    if index >= len(sections):
        for i in range(fi, len(file)):
            saw_tail = True
            if _dotty(file[i]):
                return False
        return saw_tail
    body, after = sections[index]
    while fi <= after:
        if _match_one(file[: fi + len(body)], body, partial, fi) and depth < 200:
            sub = _match_sections(file, sections, fi + len(body), index + 1, partial, depth + 1, saw_tail)
            if sub is not False:
                return sub
        if fi < len(file) and _dotty(file[fi]):
            return False
        fi += 1
    return partial or None

"""Ignore-file patterns matched the way npm's packer matches them.

npm decides which files go into a package with gitignore-style rules evaluated by minimatch with
the options `matchBase`, `dot`, `flipNegate` and `nocase`. Parity with `npm pack` depends on the
small details (brace expansion, `**`, partial matching of directories, the "no `.`/`..`" guard of
wildcards, basename matching of slash-free patterns, extended globs `!(…)`, `?(…)`, `+(…)`,
`*(…)`, `@(…)`), so this module implements exactly that subset of minimatch semantics and nothing
more. A pattern whose meaning it cannot reproduce raises PatternError: packing on with a guess
would publish a package different from npm's.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable

from pipe.errors import InputError

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
    # "|", "&" and "~" too: doubled, Python reads them as future set operations.
    return "\\" + char if char in "[]\\-^|&~" else char


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
    if not negate and len(ranges) == 1 and re.fullmatch(r"\\?.", ranges[0]):
        # `[.]` is one literal character, not a wildcard: no "." guard, and compared as text.
        return re.escape(ranges[0][-1]), end_pos - pos, False
    return "[" + ("^" if negate else "") + "".join(ranges) + "]", end_pos - pos, True


_STAR = "[^/]*?"
_REGEX_SPECIALS = set("().*{}+?[]^$\\!")


def _segment_test(segment: str, source: str, magic: bool) -> Callable[[str], bool]:
    """minimatch compares a segment without wildcards as text, unless it has letters (nocase
    then needs a regular expression)."""
    if not magic and segment.upper() == segment.lower():
        text = _unescape(source)
        return lambda name: name == text
    return _anchored(source)


def _unescape(source: str) -> str:
    return re.sub(r"\\([^/])", r"\1", re.sub(r"((?!\\).|^)\[([^/\\])\]", r"\1\2", source))


def _anchored(source: str) -> Callable[[str], bool]:
    """A test like JavaScript's `/^source$/i.test(name)`: anchors bind the first and the last
    alternative only, as there."""
    compiled = re.compile("^" + source + r"\Z", re.IGNORECASE | re.DOTALL)
    return lambda name: compiled.search(name) is not None


def _glob_to_regex(glob: str, whole_segment: bool = True) -> tuple[str, bool]:
    """Regex source for one segment (or a piece of text inside an extended glob), and whether it
    has any wildcard. A segment of stars alone must match something."""
    out, magic, escaping, in_star, i = [], False, False, False, 0
    while i < len(glob):
        char = glob[i]
        if escaping:
            escaping = False
            # minimatch keeps the backslash only before these; an escaped "|" stays an alternation.
            out.append(re.escape(char) if char in _REGEX_SPECIALS else char)
        elif char == "*":
            if not in_star:
                out.append("[^/]+?" if whole_segment and re.fullmatch(r"\*+", glob) else _STAR)
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
    if _EXTGLOB_OPENER.search(segment):
        return extglob_segment(segment)
    source, magic = _glob_to_regex(segment)
    if not magic:
        return _segment_test(segment, source, magic)
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
    return _anchored(guard + source)


# ---------------------------------------------------------------------------------------------
# Extended globs inside one segment: !(…) ?(…) +(…) *(…) @(…), nested, alternatives split by |
# ---------------------------------------------------------------------------------------------
#
# minimatch reads such a segment as a tree: sequences (text and extended globs one after the
# other) and extended globs (one sequence per alternative). It then simplifies nested extended
# globs, and appends to every alternative of a `!(…)` whatever follows the `!(…)` in the segment,
# because its negative look-ahead is tested against the rest of the name: `!(a).js` refuses
# "a.js" but takes "ab.js". The tree below takes the same steps in the same order, including the
# ones whose outcome looks accidental (positions recorded once and never updated, alternatives
# shared after a simplification): they decide which files npm packs.

EXTGLOB_KINDS = "!?+*@"
_EXTGLOB_OPENER = re.compile(r"[!?+*@]\(")
# Extended globs nested deeper than this are read as text, unless the enclosing kind can take
# the nested one in (below), which costs no depth.
MAX_EXTGLOB_DEPTH = 2
# A kind takes in a nested extglob that is a whole alternative: its alternatives become the
# enclosing one's. `*(a|+(b|c))` is `*(a|b|c)`; `@(a|*(b))` would change meaning: it stays nested.
_TAKES_IN = {"!": "@", "?": "?@", "@": "@", "*": "*+?@", "+": "+@"}
# ... or takes it in with an extra empty alternative: `@(a|?(b))` is `@(a|b|)`.
_TAKES_IN_WITH_EMPTY = {"!": "?", "@": "?", "+": "?*"}
_TAKES_IN_ANY = {kind: _TAKES_IN[kind] + _TAKES_IN_WITH_EMPTY.get(kind, "") for kind in EXTGLOB_KINDS}
# An extglob with one alternative that is itself one extglob becomes a single extglob of this kind.
_BECOMES = {
    "!": {"!": "@"},
    "?": {"*": "*", "+": "*"},
    "@": {kind: kind for kind in EXTGLOB_KINDS},
    "+": {"?": "*", "*": "*"},
}
_END_OF_NAME = r"(?:\Z|/)"
_MAX_PATTERN_LENGTH = 64 * 1024  # minimatch refuses longer patterns (and npm pack stops)


class PatternError(InputError):
    """A pattern whose meaning under npm's matcher cannot be reproduced here."""

    def __init__(self, pattern: str, reason: str):
        super().__init__(f'cannot interpret the pattern "{pattern}": {reason}')
        self.pattern = pattern
        self.reason = reason


class _Node:
    """A sequence (kind None) or an extended glob (kind in EXTGLOB_KINDS) of a segment's tree."""

    def __init__(self, kind: str | None, parent: _Node | None):
        self.kind = kind
        self.parent = parent
        self.root: _Node = parent.root if parent else self
        self.parts: list = []  # text (str) and _Node, in order
        # Position in the parent when created. minimatch never updates it when the tree is
        # simplified, and its start/end tests read it, so neither does this.
        self.index = len(parent.parts) if parent else 0
        self.empty_last = False  # the last alternative was empty: `!(a|)` takes any name
        if parent is None:
            self.negations: list[_Node] = []
            self.negations_done = False
        if kind == "!" and not self.root.negations_done:
            self.root.negations.append(self)

    def push(self, *parts) -> None:
        self.parts.extend(part for part in parts if part != "")

    def copy_in(self, part) -> None:
        self.push(part if isinstance(part, str) else part.clone(self))

    def clone(self, parent: _Node) -> _Node:
        copy = _Node(self.kind, parent)
        for part in self.parts:
            copy.copy_in(part)
        return copy

    def text(self) -> str:
        inner = [part if isinstance(part, str) else part.text() for part in self.parts]
        return "".join(inner) if self.kind is None else f"{self.kind}({'|'.join(inner)})"

    def is_start(self) -> bool:
        """Nothing but `!(…)` comes before this node in its segment."""
        if self.parent is None:
            return True
        if not self.parent.is_start():
            return False
        before = self.parent.parts[: self.index]
        return len(before) == self.index and all(isinstance(p, _Node) and p.kind == "!" for p in before)

    def is_end(self) -> bool:
        """Nothing comes after this node in its segment (or it ends an alternative of `!(…)`)."""
        if self.parent is None or self.parent.kind == "!":
            return True
        if not self.parent.is_end():
            return False
        return self.kind is None or self.index == len(self.parent.parts) - 1


class _TextScan:
    """Escaped characters and `[…]` classes are text: nothing in them opens, splits or closes an
    extended glob."""

    def __init__(self) -> None:
        self.escaping = False
        self.in_class = False
        self.class_start = -1
        self.class_negated = False

    def is_text(self, char: str, after: int) -> bool:
        """`after`: the index just past `char`."""
        if self.escaping or char == "\\":
            self.escaping = not self.escaping
            return True
        if self.in_class:
            if after == self.class_start + 1:
                self.class_negated = char in "!^"
            elif char == "]" and not (after == self.class_start + 2 and self.class_negated):
                self.in_class = False
            return True
        if char == "[":
            self.in_class, self.class_start, self.class_negated = True, after, False
            return True
        return False


def _parse_segment(segment: str) -> _Node:
    root = _Node(None, None)
    scan, acc, i = _TextScan(), "", 0
    while i < len(segment):
        char = segment[i]
        i += 1
        if not scan.is_text(char, i) and char in EXTGLOB_KINDS and segment[i : i + 1] == "(":
            root.push(acc)
            acc = ""
            extglob = _Node(char, root)
            i = _parse_extglob(segment, extglob, i, 1)
            root.push(extglob)
            continue
        acc += char
    root.push(acc)
    return root


def _parse_extglob(segment: str, extglob: _Node, opening: int, depth: int) -> int:
    """Fill `extglob`, whose "(" is at `opening`; the index after its ")" (or the segment's end)."""
    scan, acc, i = _TextScan(), "", opening + 1
    alternative, alternatives = _Node(None, extglob), []
    while i < len(segment):
        char = segment[i]
        i += 1
        if scan.is_text(char, i):
            acc += char
        elif char in EXTGLOB_KINDS and segment[i : i + 1] == "(" and _may_nest(extglob, char, depth):
            alternative.push(acc)
            acc = ""
            inner = _Node(char, alternative)
            alternative.push(inner)
            taken_in = char in _TAKES_IN_ANY[extglob.kind]
            i = _parse_extglob(segment, inner, i, depth if taken_in else depth + 1)
        elif char == "|":
            alternative.push(acc)
            acc = ""
            alternatives.append(alternative)
            alternative = _Node(None, extglob)
        elif char == ")":
            extglob.empty_last = acc == ""  # minimatch looks at the last alternative only
            alternative.push(acc)
            extglob.push(*alternatives, alternative)
            return i
        else:
            acc += char
    # No closing ")": not an extended glob; from its kind character on, the segment is text.
    extglob.kind, extglob.parts = None, [segment[opening - 1 :]]
    return i


def _may_nest(extglob: _Node, kind: str, depth: int) -> bool:
    return depth <= MAX_EXTGLOB_DEPTH or kind in _TAKES_IN_ANY[extglob.kind]


def _sole_extglob(alternative) -> _Node | None:
    """The extglob that is the whole of `alternative`, if it is one."""
    if not isinstance(alternative, _Node) or alternative.kind is not None or len(alternative.parts) != 1:
        return None
    inner = alternative.parts[0]
    return inner if isinstance(inner, _Node) and inner.kind is not None else None


def _take_in(extglob: _Node, index: int, inner: _Node) -> None:
    extglob.parts[index : index + 1] = inner.parts
    for part in inner.parts:
        if isinstance(part, _Node):
            part.parent = extglob


def _simplify(node: _Node) -> None:
    """minimatch's flattening of nested extended globs (at most ten passes per extglob)."""
    if node.kind is None:
        for part in node.parts:
            if isinstance(part, _Node):
                _simplify(part)
        return
    for _ in range(10):
        changed, i = False, 0
        while i < len(node.parts):
            alternative = node.parts[i]
            _simplify(alternative)
            inner = _sole_extglob(alternative)
            if inner is not None and inner.kind in _TAKES_IN[node.kind]:
                _take_in(node, i, inner)
                changed = True
            elif inner is not None and inner.kind in _TAKES_IN_WITH_EMPTY.get(node.kind, ""):
                empty = _Node(None, inner)
                empty.parts.append("")
                inner.push(empty)
                _take_in(node, i, inner)
                changed = True
            elif inner is not None and len(node.parts) == 1 and inner.kind in _BECOMES.get(node.kind, {}):
                node.kind = _BECOMES[node.kind][inner.kind]
                node.parts = inner.parts  # shared with `inner`, as in minimatch
                for part in node.parts:
                    part.parent = node
                node.empty_last = False
                changed = True
            i += 1
        if not changed:
            return


def _append_rest_to_negations(root: _Node) -> None:
    """Give every alternative of each `!(…)` a copy of what follows it, up to the segment's end
    (extended globs on the way up are passed over), so the look-ahead sees the rest of the name."""
    root.negations_done = True
    while root.negations:
        negation = root.negations.pop()
        if negation.kind != "!":
            continue
        child, ancestor = negation, negation.parent
        while ancestor is not None:
            i = child.index + 1
            while ancestor.kind is None and i < len(ancestor.parts):
                for alternative in negation.parts:
                    alternative.copy_in(ancestor.parts[i])
                i += 1
            child, ancestor = ancestor, ancestor.parent


def _source(node: _Node) -> tuple[str, bool]:
    return _sequence_source(node) if node.kind is None else _extglob_source(node)


def _sequence_source(node: _Node) -> tuple[str, bool]:
    at_start = node.is_start()
    whole = at_start and node.is_end() and all(isinstance(part, str) for part in node.parts)
    pieces, magic = [], False
    for part in node.parts:
        piece, part_magic = _glob_to_regex(part, whole) if isinstance(part, str) else _source(part)
        pieces.append(piece)
        magic = magic or part_magic
    source = "".join(pieces)
    start = ""
    if at_start and node.parts and isinstance(node.parts[0], str) and not _just_dots(node.parts):
        start = _NO_TRAVERSAL if _may_match_dots(source) else ""
    end = _END_OF_NAME if node.parent is not None and node.parent.kind == "!" and node.is_end() else ""
    return start + source + end, magic


def _just_dots(parts: list) -> bool:
    return len(parts) == 1 and parts[0] in (".", "..")


def _may_match_dots(source: str) -> bool:
    """The "." and ".." guard minimatch adds when a segment begins with a class or with dots."""
    return (
        source[:1] in ("[", ".")
        or (source.startswith("\\.") and source[2:3] in ("[", "."))
        or (source.startswith("\\.\\.") and source[4:5] in ("[", "."))
    )


def _extglob_source(node: _Node) -> tuple[str, bool]:
    whole = node.is_start() and node.is_end()
    sources = [_source(alternative)[0] for alternative in node.parts]
    body = "|".join(source for source in sources if source or not whole)
    if whole and not body and node.kind != "!":
        # `@()` as a whole segment is no extended glob: its text goes into the expression as is.
        text = node.text()
        node.kind, node.parts = None, [text]
        return text, False
    if node.kind == "!" and node.empty_last:
        return "[^/]+?", True
    if node.kind == "!":
        return "(?:(?!(?:" + body + "))" + _STAR + ")", True
    return "(?:" + body + {"@": ")", "?": ")?"}.get(node.kind, ")" + node.kind), True


def extglob_segment(segment: str) -> Callable[[str], bool]:
    """A matcher for one segment holding (what may be) an extended glob."""
    try:
        root = _parse_segment(segment)
        _simplify(root)
        _append_rest_to_negations(root)
        source, magic = _sequence_source(root)
        return _segment_test(segment, source, magic)
    except re.error as exc:
        raise PatternError(segment, f"it makes no valid regular expression: {exc.msg}") from exc
    except RecursionError as exc:
        raise PatternError(segment, "its extended globs are nested too deeply") from exc


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


_SLASHES = re.compile(r"/+")
_PLAIN_ASCII = re.compile(r"[A-Za-z0-9._~-]+")  # a segment that can only match itself (any case)
_MEMO_LIMIT = 100_000  # remembered answers per rule


class Rule:
    """One line of an ignore file (or a synthetic rule). Immutable once made, so shared."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.negate = False
        self.comment = pattern.startswith("#")
        self.empty = not pattern
        self.glob_parts: list[list[str]] = []
        self.sets: list[list] = []
        self._needed: list[list[str]] = []
        self._memo: dict[tuple[str, bool], bool] = {}
        if self.comment or self.empty:
            return
        if len(pattern) > _MAX_PATTERN_LENGTH:
            raise PatternError(pattern[:80] + "…", f"it is longer than npm's limit of {_MAX_PATTERN_LENGTH} characters")
        body = pattern
        while body.startswith("!"):
            self.negate = not self.negate
            body = body[1:]
        expanded = list(dict.fromkeys(brace_expand(body)))
        self.glob_parts = [_level_one_optimize(_SLASHES.split(item)) for item in expanded]
        try:
            self.sets = [[compile_segment(segment) for segment in parts] for parts in self.glob_parts]
        except PatternError as exc:
            raise PatternError(pattern, exc.reason) from exc
        self._needed = [[part.lower() for part in parts if _PLAIN_ASCII.fullmatch(part)] for parts in self.glob_parts]

    def is_relative(self) -> bool:
        """ignore-walk's test for rules that also apply to a directory's basename: one segment,
        optionally followed by a trailing slash."""
        return any(len(parts) <= (2 if parts[-1] == "" else 1) for parts in self.glob_parts)

    def match(self, path: str, partial: bool = False) -> bool:
        """True when the pattern matches (flipNegate: negation does not invert the result).
        Remembered: the walk asks every rule about the same names in folder after folder."""
        key = (path, partial)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            hit = self._memo[key] = self._match(path, partial)
        return hit

    def _match(self, path: str, partial: bool) -> bool:
        if self.comment:
            return False
        if self.empty:
            return path == ""
        if path == "/" and partial:
            return True
        lowered = path.lower()
        # A whole match needs every plain segment of the pattern among the path's segments: a
        # cheap test that spares most rules the segment by segment match.
        candidates = [
            pattern
            for pattern, needed in zip(self.sets, self._needed, strict=True)
            if partial or all(text in lowered for text in needed)
        ]
        if not candidates:
            return False
        segments = _SLASHES.split(path)
        filename = next((s for s in reversed(segments) if s), "")
        for pattern in candidates:
            file_parts = [filename] if len(pattern) == 1 else segments
            if _match_parts(file_parts, pattern, partial):
                return True
        return False


@functools.lru_cache(maxsize=4096)
def compiled_rule(pattern: str) -> Rule:
    """The same rule object for the same line: every folder has npm's default rules, and most
    folders of a package share their ignore files' lines."""
    return Rule(pattern)


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

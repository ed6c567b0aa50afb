"""Git URLs of the hosts npm knows (GitHub, GitLab, Bitbucket, gists, sourcehut), read the way
npm's `hosted-git-info` reads them, so that the version document names a repository, its issues
page, its home page and git dependencies exactly as `npm publish` writes them.

npm parses these with the WHATWG URL parser; `parse_url` reproduces the part of it that matters
here (scheme, user-info, host, path, fragment). The JavaScript quirks are kept on purpose: a
missing user prints as "null", as npm's templates print it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

# Schemes whose URLs WHATWG parses as host + path even without "//" (and lowercases the host of).
_SPECIAL_SCHEMES = {"http", "https", "ws", "wss", "ftp", "file"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# WHATWG's forbidden host code points; a special scheme's domain may not hold "%" either.
_FORBIDDEN_HOST = re.compile(r"[\x00\t\n\r #/:<>?@\[\\\]^|]")
_PORT = re.compile(r":(\d*)$")


@dataclass(frozen=True)
class ParsedUrl:
    protocol: str  # "https:", lowercase, with the colon
    username: str
    password: str
    hostname: str
    pathname: str
    hash: str  # "#…", or "" when there is no fragment or it is empty


class _Malformed(Exception):
    """A %-escape that JavaScript's decodeURIComponent refuses (npm then ignores the URL)."""


def decode_uri_component(text: str) -> str:
    """JavaScript's decodeURIComponent: %XX sequences must form valid UTF-8."""
    if "%" not in text:
        return text
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise _Malformed(text)
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(text) from None


def encode_uri_component(text: str) -> str:
    return quote(text, safe="-_.!~*'()")


def _split_authority(authority: str, special: bool) -> tuple[str, str, str] | None:
    """(username, password, hostname) of `user:pass@host:port`, or None where WHATWG fails."""
    userinfo, _, hostport = authority.rpartition("@")
    username, _, password = userinfo.partition(":")
    port = _PORT.search(hostport)
    host = hostport[: port.start()] if port else hostport
    if _FORBIDDEN_HOST.search(host) or (special and (not host or "%" in host)):
        return None
    return username, password, host.lower() if special else host


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in ("..", "%2e%2e", ".%2e", "%2e."):
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment in (".", "%2e"):
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def parse_whatwg(text: str) -> ParsedUrl | None:
    """`new URL(text)`, for the fields hosted-git-info reads; None where it would throw."""
    text = re.sub(r"[\t\n\r]", "", re.sub(r"^[\x00-\x20]+|[\x00-\x20]+$", "", text))
    scheme = _SCHEME.match(text)
    if not scheme:
        return None
    name, rest = scheme.group(1).lower(), text[scheme.end() :]
    rest, _, fragment = rest.partition("#")
    rest = rest.split("?", 1)[0]
    special = name in _SPECIAL_SCHEMES
    if special:
        rest = "//" + rest.replace("\\", "/").lstrip("/")
    username = password = hostname = ""
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        parts = _split_authority(authority, special)
        if parts is None:
            return None
        username, password, hostname = parts
        rest = _remove_dot_segments("/" + path) if slash or special else ""
    elif rest.startswith("/"):
        rest = _remove_dot_segments(rest)
    return ParsedUrl(f"{name}:", username, password, hostname, rest, f"#{fragment}" if fragment else "")


def _correct_protocol(text: str, protocols: dict[str, dict]) -> str:
    """`git:github.com:u/r` and friends, given the `//` WHATWG needs (hosted-git-info's rules)."""
    colon = text.find(":")
    if text[: colon + 1] in protocols or text[colon : colon + 3] == "://":
        return text
    at = text.find("@")
    if at > -1:
        return f"git+ssh://{text}" if at > colon else text
    return f"{text[: colon + 1]}//{text[colon + 1 :]}"


def _last_index_before(text: str, char: str, before: str) -> int:
    stop = text.find(before)
    return text.rfind(char, 0, stop if stop > -1 else len(text))


def _correct_scp_url(text: str) -> str:
    """`git@host:user/repo` → `git+ssh://git@host/user/repo`, as hosted-git-info retries it."""
    at = _last_index_before(text, "@", "#")
    colon = _last_index_before(text, ":", "#")
    if colon > at:
        text = text[:colon] + "/" + text[colon + 1 :]
    if _last_index_before(text, ":", "#") == -1 and "//" not in text:
        text = f"git+ssh://{text}"
    return text


def parse_url(text: str, protocols: dict[str, dict]) -> ParsedUrl | None:
    corrected = _correct_protocol(text, protocols)
    return parse_whatwg(corrected) or parse_whatwg(_correct_scp_url(corrected))


def _maybe_join(*parts: str | None) -> str:
    return "".join(parts) if all(parts) else ""  # type: ignore[arg-type]


def _js(value: str | None) -> str:
    """A template value as JavaScript prints it: null as "null"."""
    return "null" if value is None else value


@dataclass(frozen=True)
class Host:
    name: str
    domain: str
    protocols: tuple[str, ...]
    extract: Callable[[ParsedUrl], tuple[str | None, str, str | None] | None]
    treepath: str | None = None
    # Templates that differ from the defaults below, by representation name.
    templates: dict[str, Callable[[HostedGit], str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class HostedGit:
    host: Host
    user: str | None
    auth: str | None
    project: str
    committish: str | None
    default: str  # the representation the URL was written in: shortcut, https, sshurl, git, …

    @property
    def domain(self) -> str:
        return self.host.domain

    def _render(self, kind: str) -> str | None:
        template = self.host.templates.get(kind) or DEFAULT_TEMPLATES.get(kind)
        return template(self) if template else None

    def https(self) -> str | None:
        return self._render("https")

    def sshurl(self) -> str | None:
        return self._render("sshurl")

    def docs(self) -> str | None:
        return self._render("docs")

    def bugs(self) -> str | None:
        return self._render("bugs")

    def to_string(self) -> str | None:
        """hosted-git-info's toString: the URL in its own representation, else the ssh URL."""
        if self.default in ("shortcut", "https", "sshurl", "git"):
            return self._render(self.default)
        return self.sshurl()


def _hash(git: HostedGit) -> str:
    return _maybe_join("#", git.committish)


DEFAULT_TEMPLATES: dict[str, Callable[[HostedGit], str | None]] = {
    "sshurl": lambda g: f"git+ssh://git@{g.domain}/{_js(g.user)}/{g.project}.git{_hash(g)}",
    "https": lambda g: f"git+https://{_maybe_join(g.auth, '@')}{g.domain}/{_js(g.user)}/{g.project}.git{_hash(g)}",
    "shortcut": lambda g: f"{g.host.name}:{_js(g.user)}/{g.project}{_hash(g)}",
    "docs": lambda g: (
        f"https://{g.domain}/{_js(g.user)}/{g.project}"
        f"{_maybe_join('/', g.host.treepath, '/', encode_uri_component(g.committish or '') or None)}#readme"
    ),
    "bugs": lambda g: f"https://{g.domain}/{_js(g.user)}/{g.project}/issues",
}


def _project_of(project: str | None) -> str | None:
    return project[:-4] if project and project.endswith(".git") else project


def _extract_github(url: ParsedUrl):
    # JavaScript's split("/", 5): the first five pieces, the rest dropped (not joined).
    user, project, kind, committish = (url.pathname.split("/")[1:5] + [None] * 4)[:4]
    if kind and kind != "tree":
        return None
    if not kind:
        committish = url.hash[1:]
    project = _project_of(project)
    return (user, project, committish) if user and project else None


def _extract_plain(aux_refused: str) -> Callable[[ParsedUrl], tuple | None]:
    """Bitbucket's and sourcehut's rule: /user/project, refusing one kind of archive path."""

    def extract(url: ParsedUrl):
        user, project, aux = (url.pathname.split("/")[1:4] + [None] * 3)[:3]
        if aux == aux_refused:
            return None
        project = _project_of(project)
        return (user, project, url.hash[1:]) if user and project else None

    return extract


def _extract_gitlab(url: ParsedUrl):
    path = url.pathname[1:]
    if "/-/" in path or "/archive.tar.gz" in path:
        return None
    *groups, project = path.split("/")
    project, user = _project_of(project), "/".join(groups)
    return (user, project, url.hash[1:]) if user and project else None


def _extract_gist(url: ParsedUrl):
    user, project, aux = (url.pathname.split("/")[1:4] + [None] * 3)[:3]
    if aux == "raw":
        return None
    if not project:
        if not user:
            return None
        user, project = None, user
    return user, _project_of(project), url.hash[1:]


_GIST_TEMPLATES: dict[str, Callable[[HostedGit], str | None]] = {
    "sshurl": lambda g: f"git+ssh://git@{g.domain}/{g.project}.git{_hash(g)}",
    "https": lambda g: f"git+https://{g.domain}/{g.project}.git{_hash(g)}",
    "shortcut": lambda g: f"{g.host.name}:{g.project}{_hash(g)}",
    "docs": lambda g: f"https://{g.domain}/{g.project}{_maybe_join('/', encode_uri_component(g.committish or ''))}",
    "bugs": lambda g: f"https://{g.domain}/{g.project}",
    "git": lambda g: f"git://{g.domain}/{g.project}.git{_hash(g)}",
}

HOSTS = {
    host.name: host
    for host in (
        Host(
            "github",
            "github.com",
            ("git:", "http:", "git+ssh:", "git+https:", "ssh:", "https:"),
            _extract_github,
            "tree",
            {"git": lambda g: f"git://{_maybe_join(g.auth, '@')}{g.domain}/{_js(g.user)}/{g.project}.git{_hash(g)}"},
        ),
        Host("bitbucket", "bitbucket.org", ("git+ssh:", "git+https:", "ssh:", "https:"), _extract_plain("get"), "src"),
        Host("gitlab", "gitlab.com", ("git+ssh:", "git+https:", "ssh:", "https:"), _extract_gitlab, "tree"),
        Host("gist", "gist.github.com", ("git:", "git+ssh:", "git+https:", "ssh:", "https:"), _extract_gist, None,
             _GIST_TEMPLATES),
        Host(
            "sourcehut",
            "git.sr.ht",
            ("git+ssh:", "https:"),
            _extract_plain("archive"),
            "tree",
            {"https": lambda g: f"https://{g.domain}/{_js(g.user)}/{g.project}{_hash(g)}", "bugs": lambda g: None},
        ),
    )
}  # fmt: skip
_BY_DOMAIN = {host.domain: host for host in HOSTS.values()}
# Protocols hosted-git-info knows, and the representation a URL in each is written in.
PROTOCOLS: dict[str, dict] = {
    "git+ssh:": {"name": "sshurl"},
    "ssh:": {"name": "sshurl"},
    "git+https:": {"name": "https", "auth": True},
    "git:": {"auth": True},
    "http:": {"auth": True},
    "https:": {"auth": True},
    "git+http:": {"auth": True},
    **{f"{name}:": {"name": name} for name in HOSTS},
}


def is_github_shorthand(text: str) -> bool:
    """`user/repo` (optionally `#committish`): hosted-git-info's test, rule for rule."""
    hash_at, slash = text.find("#"), text.find("/")
    second_slash = text.find("/", slash + 1)
    colon, at = text.find(":"), text.find("@")
    space = re.search(r"\s", text)

    def only_after_hash(position: int) -> bool:
        return position == -1 or (hash_at > -1 and position > hash_at)

    ends_with_slash = text[hash_at - 1] == "/" if hash_at > -1 else text.endswith("/")
    return (
        only_after_hash(space.start() if space else -1)
        and slash > 0
        and not ends_with_slash
        and not text.startswith(".")
        and only_after_hash(at)
        and only_after_hash(colon)
        and only_after_hash(second_slash)
    )


def from_url(text: object) -> HostedGit | None:
    """The hosted repository `text` names, or None (not a string, unknown host, malformed)."""
    if not isinstance(text, str) or not text:
        return None
    parsed = parse_url(f"github:{text}" if is_github_shorthand(text) else text, PROTOCOLS)
    if parsed is None:
        return None
    shortcut = HOSTS.get(parsed.protocol[:-1])
    domain = parsed.hostname[4:] if parsed.hostname.startswith("www.") else parsed.hostname
    host = shortcut or _BY_DOMAIN.get(domain)
    if host is None:
        return None
    auth = None
    if PROTOCOLS.get(parsed.protocol, {}).get("auth") and (parsed.username or parsed.password):
        auth = parsed.username + (f":{parsed.password}" if parsed.password else "")
    try:
        return _from_shortcut(host, parsed) if shortcut else _from_host_url(host, parsed, auth)
    except _Malformed:
        return None


def _from_shortcut(host: Host, parsed: ParsedUrl) -> HostedGit:
    path = parsed.pathname[1:] if parsed.pathname.startswith("/") else parsed.pathname
    path = path[path.find("@") + 1 :]  # auth in a shortcut is ignored
    user_part, slash, project = path.rpartition("/")
    user = (decode_uri_component(user_part) or None) if slash else None
    project = decode_uri_component(project)
    project = project[:-4] if project.endswith(".git") else project
    committish = decode_uri_component(parsed.hash[1:]) if parsed.hash else None
    return HostedGit(host, user, None, project, committish, "shortcut")


def _from_host_url(host: Host, parsed: ParsedUrl, auth: str | None) -> HostedGit | None:
    if parsed.protocol not in host.protocols:
        return None
    segments = host.extract(parsed)
    if segments is None:
        return None
    user, project, committish = segments
    representation = PROTOCOLS.get(parsed.protocol, {}).get("name") or parsed.protocol[:-1]
    return HostedGit(
        host,
        decode_uri_component(user) if user else user,
        auth,
        decode_uri_component(project),
        "undefined" if committish is None else decode_uri_component(committish),
        representation,
    )

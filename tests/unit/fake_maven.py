"""An in-memory WebDAV Maven repository (as nginx serves one: index pages, PUT, DELETE of files and
folders), answering on the one fake HTTP seam (`tests/fakehttp.py`). Hand it to the pipe as
`Config.transport`.

Paths are resolved as a real server resolves them (percent-decoded, dot segments removed), so a
URL that leaves its folder lands where it would land on a real repository, and a test can see it.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from pipe.maven.layout import checksums_of_bytes
from pipe.maven.metadata import ArtifactMetadata, parse_artifact_metadata, render_artifact_metadata
from tests.fakehttp import FakeTransport, Sent

BASE = "https://repo.test/maven/"
_PREFIX = "/maven/"
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


class FakeMavenRepository(FakeTransport):
    """Files by repository path (`org/acme/lib/1.0/lib-1.0.pom`)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.check_status: int | None = None  # the answer to the delete check
        self.folder_delete_status: int | None = None  # e.g. 405: files only

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path in the repository as sent, still encoded) of every request, in order."""
        return [(sent.method, sent.path.removeprefix(_PREFIX)) for sent in self.requests]

    # --- content ------------------------------------------------------------------------------

    def store(self, path: str, content: bytes) -> None:
        """A file and its .md5/.sha1, as a deploy leaves them."""
        self.files[path] = content
        for algorithm in ("md5", "sha1"):
            self.files[f"{path}.{algorithm}"] = checksums_of_bytes(content).get(algorithm).encode()

    def add_artifact(
        self,
        group: str,
        artifact: str,
        versions: list[str],
        latest: str | None = None,
        release: str | None = None,
        listed_only: tuple[str, ...] = (),
    ) -> str:
        """Metadata listing `versions` and then `listed_only` (as given: they may be hostile), and
        each of `versions`' POM and jar. Returns the artifact's folder."""
        folder = f"{group.replace('.', '/')}/{artifact}"
        listed = [*versions, *listed_only]
        metadata = ArtifactMetadata(group, artifact, listed, latest, release, "20240101000000")
        self.store(f"{folder}/maven-metadata.xml", render_artifact_metadata(metadata))
        for version in versions:
            self.add_version(folder, artifact, version)
        return folder

    def add_version(self, folder: str, artifact: str, version: str) -> None:
        for name in (f"{artifact}-{version}.pom", f"{artifact}-{version}.jar"):
            self.store(resolve(f"{folder}/{version}/{name}"), f"{name} content".encode())

    def listed(self, folder: str, group: str, artifact: str) -> list[str]:
        return parse_artifact_metadata(self.files[f"{folder}/maven-metadata.xml"], "x", group, artifact).versions

    def under(self, folder: str) -> dict[str, bytes]:
        return {path: data for path, data in self.files.items() if path.startswith(f"{folder}/")}

    def outside(self, folder: str) -> dict[str, bytes]:
        return {path: data for path, data in self.files.items() if not path.startswith(f"{folder}/")}

    # --- the transport ------------------------------------------------------------------------

    def handle(self, sent: Sent) -> tuple[int, bytes | str, dict[str, str]]:
        path = resolve(sent.path.removeprefix(_PREFIX))
        folder = sent.path.endswith("/")
        if sent.method == "PUT":
            self.files[path] = sent.body
            return 201, b"", {}
        if sent.method == "DELETE":
            return self.delete(path, folder)
        if folder:
            return self.index(path)
        if path not in self.files:
            return 404, b"", {}
        body = self.files[path] if sent.method == "GET" else b""
        return 200, body, {"Last-Modified": LAST_MODIFIED}

    def index(self, path: str) -> tuple[int, bytes | str, dict[str, str]]:
        prefix = f"{path}/" if path else ""
        children = set()
        for name in (p[len(prefix) :] for p in self.files if p.startswith(prefix)):
            children.add(name.split("/", 1)[0] + ("/" if "/" in name else ""))
        if not children:
            return 404, b"", {}
        links = "".join(f'<a href="{c}">{c}</a>' for c in sorted(children))
        return 200, f'<a href="../">../</a>{links}', {"Content-Type": "text/html"}

    def delete(self, path: str, folder: bool) -> tuple[int, bytes | str, dict[str, str]]:
        if path.endswith(".delete-check") and self.check_status:
            return self.check_status, b"", {}
        if folder:
            if self.folder_delete_status:
                return self.folder_delete_status, b"", {}
            prefix = f"{path}/" if path else ""
            doomed = [p for p in self.files if p.startswith(prefix)]
        else:
            doomed = [path] if path in self.files else []
        for name in doomed:
            del self.files[name]
        return (204 if doomed else 404), b"", {}


def resolve(path: str) -> str:
    """A request path as the server sees it: decoded, `.` and `..` resolved, never above the root."""
    normal = posixpath.normpath("/" + unquote(path)).lstrip("/")
    return "" if normal == "." else normal

"""The version document the pipe sends equals the one `npm publish` (npm 11, the oracle) sends for
the same folder. Both publish to a recording registry (a tiny HTTP server in this test that keeps
each PUT body); the two documents are compared whole, except for the fields listed in
`CLIENT_FIELDS`, which differ between any two publishing clients by design.

The crafted packages cover every field npm's publish normalizes: people, repository shorthands
and the `bugs`/`homepage` derived from them, `bin`/`man` and `directories`, `types` beside
`main`, the README npm picks, git shorthands in dependencies, scripts, `bundleDependencies`,
AUTHORS, `gitHead` and `_`-fields; then a `.tgz`, a workspace package, git URLs read against the
pinned hosted-git-info package, and a spread of real packages (npm's own dependencies)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipe.npm.hosted_git import from_url
from tests.conftest import REPO_ROOT, base_env, run_in_process
from tests.integration.conftest import unique_name

# Fields that differ between any two clients, by design, and are left out of the comparison:
CLIENT_FIELDS = {
    # the publishing client's own versions: the pipe is neither npm nor Node.js
    "_npmVersion",
    "_nodeVersion",
}
# dist.integrity / dist.shasum: digests of each client's gzip of the same files (gzip bytes differ
# between packers; the files are compared by test_npm_pack_parity). Their presence is checked.
DIST_DIGESTS = {"integrity", "shasum"}
# For a `.tgz`, npm also sends where its cache got the file from (local paths and the file's
# digest under npm's cache): nothing a registry or a consumer uses, and a local path besides.
TARBALL_CACHE_FIELDS = {"_resolved", "_from", "_integrity"}
HOSTED_GIT_INFO = REPO_ROOT / "sandbox" / ".oracles" / "node_modules" / "hosted-git-info"


class Recorder(BaseHTTPRequestHandler):
    """Every package is unknown (GET → 404); every publish PUT is kept and accepted."""

    bodies: list[dict]

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(404, {"error": "not found"})

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self._answer(201, {"ok": True})


@pytest.fixture(scope="module")
def recorder() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()


def registry_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def npm_publish(target: Path, server: ThreadingHTTPServer, home: Path, *, workspace: str | None = None) -> dict:
    """`npm publish` of a folder or `.tgz` (or of one workspace of the root `target`) with a
    clean environment (no CI variables, no user config but the registry's token), and the
    document it sent."""
    home.mkdir(exist_ok=True)
    url = registry_url(server)
    (home / ".npmrc").write_text(f"//127.0.0.1:{server.server_address[1]}/:_authToken=recorder\n")
    (home / "global-npmrc").write_text("")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "npm_config_globalconfig": str(home / "global-npmrc")}
    count = len(server.bodies)  # type: ignore[attr-defined]
    done = subprocess.run(
        [
            "npm",
            "publish",
            *([f"--workspace={workspace}"] if workspace else [str(target)]),
            *("--registry", url, "--cache", str(home / "cache"), "--ignore-scripts"),
        ],
        cwd=target if target.is_dir() else target.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return server.bodies[count]  # type: ignore[attr-defined]


def pipe_publish(target: Path, cwd: Path, server: ThreadingHTTPServer) -> dict:
    count = len(server.bodies)  # type: ignore[attr-defined]
    env = base_env(PACKAGE_TYPE="npm", REGISTRY_URL=registry_url(server), NPM_PACKAGE=os.path.relpath(target, cwd))
    result = run_in_process(env, cwd)
    assert result.code == 0, result.output
    return server.bodies[count]  # type: ignore[attr-defined]


def comparable(document: dict, from_tarball: bool = False) -> dict:
    """The document without `_attachments` and the fields listed above (whose presence the
    comparison checks separately)."""
    document = copy.deepcopy(document)
    document.pop("_attachments")
    for manifest in document["versions"].values():
        left_out = CLIENT_FIELDS | (TARBALL_CACHE_FIELDS if from_tarball else set())
        for key in left_out:
            manifest.pop(key, None)
        assert DIST_DIGESTS <= set(manifest["dist"])
        for key in DIST_DIGESTS:
            manifest["dist"].pop(key)
    return document


@dataclass
class Case:
    id: str
    manifest: dict
    files: dict[str, str] = field(default_factory=dict)
    git: bool = False  # make the folder a git checkout with one commit (npm records gitHead)


CASES = [
    Case(
        "people",
        {
            "author": "Ann Author <ann@example.com> (https://ann.example)",
            "contributors": ["Cid <cid@example.com>", {"name": "Dee", "web": "https://dee.example"}, "Eve (x)"],
            "maintainers": [{"name": "Max", "mail": "max@example.com"}],
        },
    ),
    Case("author-object", {"author": {"name": "Obi", "email": "o@example.com", "url": "https://o.example"}}),
    Case("repository-github-shorthand", {"repository": "octo/widget"}),
    Case("repository-github-prefix", {"repository": "github:octo/widget#v2"}),
    Case("repository-gitlab", {"repository": "gitlab:group/sub/widget"}),
    Case("repository-bitbucket", {"repository": "bitbucket:team/widget"}),
    Case("repository-gist", {"repository": "gist:11081aaa281"}),
    Case("repository-scp", {"repository": {"type": "git", "url": "git@github.com:octo/widget.git"}}),
    Case("repository-https", {"repository": {"type": "git", "url": "https://github.com/octo/widget"}}),
    Case("repository-directory", {"repository": {"type": "git", "url": "github:octo/mono", "directory": "pkgs/w"}}),
    Case("repository-unknown-host", {"repository": "https://git.example.com/octo/widget.git"}),
    Case("repositories-list", {"repositories": [{"type": "git", "url": "octo/first"}, "octo/second"]}),
    Case(
        "bugs-and-homepage-given",
        {"repository": "octo/widget", "bugs": "help@example.com", "homepage": "widget.example.com"},
    ),
    Case("bugs-url-string", {"bugs": "https://bugs.example.com/w"}),
    Case("bugs-object-web", {"bugs": {"web": "https://bugs.example.com", "email": "not-an-email"}}),
    Case("bin-string", {"bin": "./bin/cli.js"}, {"bin/cli.js": "#!/usr/bin/env node\n"}),
    Case("bin-string-scoped", {"name": "@acme/SCOPED", "bin": "cli.js"}, {"cli.js": "x"}),
    Case(
        "bin-object",
        {"bin": {"a": "./bin/a.js", "../b": "bin/b.js", "c": "../../outside.js", "d": 5, "./e": "bin\\e.js"}},
        {"bin/a.js": "x", "bin/b.js": "x", "bin/e.js": "x"},
    ),
    Case(
        "directories-bin",
        {"directories": {"bin": "./tools"}},
        {"tools/one": "x", "tools/two.js": "x", "tools/.hidden": "x", "tools/sub/three": "x"},
    ),
    Case("man-string", {"man": "./man/widget.1"}, {"man/widget.1": "x"}),
    Case("man-list", {"man": ["./man/a.1", "man/../man/b.5", 3]}, {"man/a.1": "x", "man/b.5": "x"}),
    Case(
        "directories-man",
        {"directories": {"man": "docs/man"}},
        {"docs/man/w.1": "x", "docs/man/w.txt": "x", "docs/man/sec/w-api.3": "x", "docs/man/.x.1": "x"},
    ),
    Case("types-beside-main", {"main": "lib/index.js"}, {"lib/index.js": "x", "lib/index.d.ts": "x"}),
    Case("types-main-without-extension", {"main": "./dist/main"}, {"dist/main.js": "x", "dist/main.d.ts": "x"}),
    Case("types-default-index", {}, {"index.js": "x", "index.d.ts": "x"}),
    Case("types-given", {"main": "lib/index.js", "typings": "t.d.ts"}, {"lib/index.d.ts": "x", "t.d.ts": "x"}),
    Case("readme-md-over-es", {}, {"README.md": "# W\n\nThe widget.\n", "README.es.md": "# W\n\nEl widget.\n"}),
    Case("readme-markdown-lowercase", {}, {"readme.markdown": "Plain first line\nsecond\n\nthird\n"}),
    Case("readme-plain-and-txt", {}, {"README": "plain readme\n", "README.txt": "text readme\n"}),
    Case("readme-lowercase-plain", {}, {"readme": "lowercase plain\n"}),
    Case("readme-none", {}, {"index.js": "x"}),
    Case("readme-in-package-json", {"readme": "given", "description": "own"}, {"README.md": "# other\n"}),
    Case(
        "dependencies-git-shorthands",
        {
            "dependencies": {
                "a": "octo/a",
                "b": "github:octo/b#v1.0.0",
                "c": "git+https://github.com/octo/c.git",
                "d": "^1.2.3",
                "e": "gitlab:g/e",
                "f": "git@bitbucket.org:t/f.git",
                "g": "https://github.com/octo/g/tarball/main",
                "h": "npm:other@^1",
                "i": "file:../local",
            },
            "devDependencies": {"x": "octo/x#semver:^2", "y": "bitbucket:t/y"},
            "optionalDependencies": {"o": "octo/o"},
            "peerDependencies": {"p": "octo/p"},
        },
    ),
    Case("dependencies-as-list", {"dependencies": ["left-pad@^1.0.0", "right-pad"], "devDependencies": "tap mocha"}),
    Case(
        "scripts-and-files",
        {
            "scripts": {"build": "node_modules/.bin/tsc -p .", "test": "./node_modules/.bin/tap", "bad": 3},
            "gypfile": None,
        },
        {"binding.gyp": "{}", "server.js": "x"},
    ),
    Case("gyp-disabled", {"gypfile": False}, {"binding.gyp": "{}"}),
    # (A non-empty bundle is refused by the pipe's packer, so only the empty forms can be compared.)
    Case("bundle-null", {"bundleDependencies": None}),
    Case("bundle-false", {"bundleDependencies": False}),
    Case("bundled-typo", {"bundledDependencies": []}),
    Case("bundle-object", {"bundleDependencies": {}}),
    Case("authors-file", {}, {"AUTHORS": "# the authors\nAnn <ann@example.com>\n\nBob (https://bob.example)\n"}),
    Case(
        "misc-fields",
        {
            "_private": "dropped",
            "keywords": "one, two,three",
            "files": ["index.js", ""],
            "funding": "https://fund.example",
            "modules": ["m"],
            "description": "  spaced  ",
            "license": "MIT",
        },
        {"index.js": "x"},
    ),
    Case("git-head", {"repository": "octo/widget"}, {"index.js": "x"}, git=True),
    # JavaScript truthiness: an empty object or array is present ("{}" keeps npm from deriving).
    Case(
        "empty-containers",
        {
            "repository": "octo/widget",
            "bugs": {},
            "homepage": [],
            "dependencies": {},
            "devDependencies": [],
            "optionalDependencies": [],
            "contributors": [],
            "keywords": {},
            "man": [],
            "directories": {"man": "man"},
        },
        {"AUTHORS": "Not used <a@example.com>\n", "man/x.1": "x"},
    ),
]


def build(folder: Path, case: Case, name: str) -> Path:
    folder.mkdir(parents=True)
    manifest = {"name": name, "version": "1.0.0", **case.manifest}
    if case.manifest.get("name"):
        manifest["name"] = case.manifest["name"].replace("SCOPED", name)
    (folder / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for path, text in case.files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    if case.git:
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
        for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
            subprocess.run([*git, *command], cwd=folder, check=True, capture_output=True)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_version_document_is_what_npm_publish_sends(case: Case, recorder, unique, tmp_path: Path):
    name = unique("bbpp-norm")
    folder = build(tmp_path / "clone" / "pkg", case, name)  # one folder for both: one git commit
    theirs = npm_publish(folder, recorder, tmp_path / "home")
    ours = pipe_publish(folder, tmp_path / "clone", recorder)
    assert_same(comparable(ours), comparable(theirs))


def assert_same(ours: dict, theirs: dict) -> None:
    """Equal documents; on a difference, the differing fields side by side (ours, npm's)."""
    if ours != theirs:
        mine, npm = ours["versions"]["1.0.0"], theirs["versions"]["1.0.0"]
        fields = {key: (mine.get(key), npm.get(key)) for key in {*mine, *npm} if mine.get(key) != npm.get(key)}
        roots = {key: (ours.get(key), theirs.get(key)) for key in {*ours, *theirs} - {"versions"}}
        assert (fields, roots) == ({}, {key: (a, b) for key, (a, b) in roots.items() if a == b})
    assert ours == theirs


def test_a_tgz_is_described_as_npm_describes_it(recorder, unique, tmp_path: Path):
    name = unique("bbpp-norm")
    case = Case(
        "tgz",
        {"author": "T <t@example.com>", "repository": "octo/t", "bin": "./cli.js", "bundleDependencies": False},
        {"cli.js": "x", "README.md": "# T\n\nFrom a tarball.\n", "index.d.ts": "x", "AUTHORS": "A\n"},
    )
    folder = build(tmp_path / "src", case, name)
    packed = subprocess.run(
        ["npm", "pack", "--pack-destination", str(tmp_path)], cwd=folder, capture_output=True, text=True, check=True
    )
    tgz = tmp_path / packed.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as archive:  # the tarball's own package.json stays as written
        assert json.loads(archive.extractfile("package/package.json").read())["bin"] == "./cli.js"
    theirs = npm_publish(tgz, recorder, tmp_path / "home")
    assert TARBALL_CACHE_FIELDS <= set(theirs["versions"]["1.0.0"])  # what the list above leaves out
    ours = pipe_publish(tgz, tmp_path, recorder)
    assert_same(comparable(ours, from_tarball=True), comparable(theirs, from_tarball=True))


def test_a_workspace_package_is_described_as_npm_describes_it(recorder, unique, tmp_path: Path):
    name = unique("bbpp-norm")
    root = tmp_path / "clone"
    member = Case(
        "member",
        {"repository": {"type": "git", "url": "octo/mono", "directory": "packages/a"}, "bin": "./cli.js"},
        {"cli.js": "x", "README.md": "# A\n\nA member.\n", "index.d.ts": "x"},
    )
    build(root / "packages" / "a", member, name)
    (root / "package.json").write_text(json.dumps({"name": "mono", "private": True, "workspaces": ["packages/*"]}))
    (root / "README.md").write_text("# the monorepo's README, not the member's\n")
    build(root / "unused", Case("git", {}, git=True), "unused")  # the checkout's commit, above the member
    (root / "unused" / ".git").rename(root / ".git")
    theirs = npm_publish(root, recorder, tmp_path / "home", workspace="packages/a")
    assert "gitHead" in theirs["versions"]["1.0.0"]
    ours = pipe_publish(root, tmp_path, recorder)
    assert_same(comparable(ours), comparable(theirs))


# --- single functions against npm's own packages ------------------------------------------------

GIT_URLS = [
    "octo/r", "octo/r#main", "github:octo/r", "gitlab:g/sub/r", "bitbucket:t/r", "gist:abc", "gist:u/abc",
    "sourcehut:~u/r", "https://github.com/u/r.git", "http://github.com/u/r", "git+https://user:pw@github.com/u/r.git",
    "git://github.com/u/r.git", "git+ssh://git@github.com/u/r.git", "ssh://git@github.com/u/r.git",
    "git@github.com:u/r.git#dev", "https://www.github.com/u/r", "https://GitHub.com/U/R", "https://github.com/u/r/tree",
    "https://github.com/u/r/tree/main/sub/dir", "https://github.com/u/r/blob/main/x", "https://gitlab.com/g/r/-/tree/x",
    "git@gitlab.com:g/r.git", "https://bitbucket.org/t/r/get/x.tar.gz", "https://gist.github.com/u/abc123",
    "git@gist.github.com:abc123.git", "https://git.sr.ht/~u/r", "https://example.com/x.git", "file:../x", "^1.2.3",
    "npm:other@1", "@scope/pkg", "./local", "u/r/extra", "github:r", "github:u/r%20x", "github:u/r%zz",
    "u/r#a b", "github:u@x/r", "git+https://github.com:8080/u/r.git", "https://github.com:abc/u/r",
    "git+ssh://github.com:u/r.git", "github.com/u/r", "https://github.com/u/../r/x", "https://github.com/u/r?x=1#y",
    "git+http://github.com/u/r", "", " u/r", "u/r ",
]  # fmt: skip

HOSTED_GIT_INFO_VIEW = """
const H = require(process.argv[1])
const urls = JSON.parse(require('fs').readFileSync(0, 'utf8'))
console.log(JSON.stringify(urls.map(u => {
  const h = H.fromUrl(u)
  return h ? [h.type, h.getDefaultRepresentation(), h.https(), h.toString(), h.docs(), h.bugs()] : null
})))
"""


def test_git_urls_are_read_as_hosted_git_info_reads_them():
    if not (HOSTED_GIT_INFO / "package.json").is_file():
        pytest.fail(f"{HOSTED_GIT_INFO} is missing: run sandbox/install (it installs the oracles).", pytrace=False)
    done = subprocess.run(
        ["node", "-e", HOSTED_GIT_INFO_VIEW, str(HOSTED_GIT_INFO)],
        input=json.dumps(GIT_URLS),
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(done.stdout)
    assert any(view is not None for view in theirs) and any(view is None for view in theirs)
    for url, expected in zip(GIT_URLS, theirs, strict=True):
        hosted = from_url(url)
        ours = None
        if hosted is not None:
            ours = [hosted.host.name, hosted.default, hosted.https(), hosted.to_string(), hosted.docs(), hosted.bugs()]
        assert ours == expected, url


# --- real packages: npm's own dependencies, as npm installed them -----------------------------


def npm_own_packages() -> list[Path]:
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(root) / "npm" / "node_modules"
    found = sorted(p for p in [*folder.iterdir(), *folder.glob("@*/*")] if (p / "package.json").is_file())
    return found[::8]  # a spread of about 20: authors, repositories, bins, man pages, types, READMEs


def test_real_packages_are_described_as_npm_describes_them(recorder, tmp_path: Path):
    packages = npm_own_packages()
    assert len(packages) >= 15
    differing = {}
    for index, source in enumerate(packages):
        folder = tmp_path / f"clone{index}" / "pkg"
        shutil.copytree(source, folder, symlinks=True)
        data = json.loads((folder / "package.json").read_text())
        # Published under a name and version of this run; what the pipe never packs (bundled
        # dependencies) and npm's provenance settings left out, the rest as the authors wrote it.
        data.update(name=f"{unique_name('bbpp-real')}-{index}", version="1.0.0")
        for key in ("bundleDependencies", "bundledDependencies", "publishConfig"):
            data.pop(key, None)
        (folder / "package.json").write_text(json.dumps(data, indent=2))
        theirs = comparable(npm_publish(folder, recorder, tmp_path / "home"))
        ours = comparable(pipe_publish(folder, folder.parent, recorder))
        if ours != theirs:
            mine, npm = ours["versions"]["1.0.0"], theirs["versions"]["1.0.0"]
            differing[source.name] = {key for key in {*mine, *npm} if mine.get(key) != npm.get(key)} | {
                key for key in {*ours, *theirs} - {"versions"} if ours.get(key) != theirs.get(key)
            }
    assert differing == {}

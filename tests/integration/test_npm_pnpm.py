"""pnpm workspaces against the real Verdaccio of sandbox/, with pnpm 10 (installed by
sandbox/install) as the oracle: every tarball the pipe publishes is downloaded with npm and
compared with `pnpm pack` of the same folder — the same files, modes and parsed package.json.
Consumers install the dependent packages with npm."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from pipe.npm.semver_range import satisfies
from pipe.versioning import SemVer
from tests.integration.test_npm_publish import publish

pytestmark = pytest.mark.integration

PNPM_VERSION = "10.34.9"


@pytest.fixture(scope="session")
def pnpm(sandbox) -> Path:
    """The pnpm that sandbox/install puts in the sandbox's state folder."""
    binary = sandbox.state / "tools" / "pnpm" / "node_modules" / ".bin" / "pnpm"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run sandbox/install (it installs pnpm {PNPM_VERSION}).", pytrace=False)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == PNPM_VERSION
    return binary


# pnpm's home (state, cache) and store: outside every workspace the tests build.
PNPM_HOME = Path(tempfile.gettempdir()) / "bbpp-pnpm-home"


def run_pnpm(pnpm: Path, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # No lifecycle script runs (the pipe never runs any).
    done = subprocess.run(
        [str(pnpm), "--config.ignore-scripts=true", f"--config.store-dir={PNPM_HOME / 'store'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(PNPM_HOME), "CI": "1"},
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def pnpm_install(pnpm: Path, root: Path) -> None:
    """Links the workspace as a developer's checkout has it (pnpm pack reads siblings' versions
    from node_modules); everything resolves inside the workspace, so it runs offline."""
    run_pnpm(pnpm, root, "install", "--offline")


def pnpm_pack(pnpm: Path, folder: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    before = set(into.iterdir())
    run_pnpm(pnpm, folder, "pack", "--pack-destination", str(into))
    (made,) = set(into.iterdir()) - before
    return made


def downloaded(sandbox, spec: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    before = set(into.iterdir())
    done = sandbox.run("npm-pack", str(into), spec)
    assert done.returncode == 0, done.stderr
    (made,) = set(into.iterdir()) - before
    return made


def contents(tgz: Path) -> tuple[dict[str, int], dict]:
    """A tarball's files with their modes, and its package.json parsed."""
    with tarfile.open(tgz, "r:gz") as archive:
        files = {m.name.split("/", 1)[1]: m.mode & 0o777 for m in archive.getmembers() if m.isfile()}
        manifest = json.load(io.TextIOWrapper(archive.extractfile("package/package.json"), encoding="utf-8"))
    return files, manifest


def assert_same_as_pnpm_pack(sandbox, pnpm: Path, folder: Path, spec: str, work: Path) -> dict:
    ours = contents(downloaded(sandbox, spec, work / "published"))
    theirs = contents(pnpm_pack(pnpm, folder, work / "pnpm"))
    assert ours[0] == theirs[0], spec
    assert ours[1] == theirs[1], spec
    return ours[1]


def write(root: Path, files: dict[str, object]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (dict, list)):
            path.write_text(json.dumps(content, indent=2) + "\n")
        else:
            path.write_text(str(content))


def every_form(scope: str) -> tuple[dict[str, object], dict[str, str]]:
    """A pnpm workspace using each form the pipe rewrites as pnpm does."""
    n = {kind: f"{scope}/{kind}" for kind in ("root", "lib", "util", "app", "dist", "tool", "ignored")}
    files: dict[str, object] = {
        "pnpm-workspace.yaml": (
            "packages:\n  - packages/*\n  - tools/**\n  - '!packages/ignored'\n"
            # Catalog ranges name workspace packages, so the oracle's install stays offline.
            "linkWorkspacePackages: true\n"
            f"catalog:\n  '{n['lib']}': ^1.0.0\n"
            f"catalogs:\n  legacy:\n    '{n['util']}': ~1.1.0\n"
        ),
        "package.json": {
            "name": n["root"],
            "version": "1.0.0",
            "packageManager": f"pnpm@{PNPM_VERSION}",
            "pnpm": {"onlyBuiltDependencies": []},
            "scripts": {"prepublishOnly": "exit 1", "test": "node -e 0"},
            "dependencies": {n["app"]: "workspace:^"},
        },
        "LICENSE": "MIT\n",
        "LICENSE.md": "The MIT licence.\n",
        "packages/lib/package.json": {
            "name": n["lib"],
            "version": "1.0.0",
            "main": "src/index.js",
            "type": "commonjs",
            "scripts": {"build": "tsc", "prepare": "exit 1", "prepack": "exit 1", "postpack": "x", "publish": "x"},
            "packageManager": "pnpm@10.0.0",
            "publishConfig": {
                "main": "dist/index.js",
                "module": "dist/index.mjs",
                "types": "dist/index.d.ts",
                "typings": "dist/index.d.ts",
                "exports": {".": {"import": "./dist/index.mjs", "require": "./dist/index.js"}},
                "imports": {"#internal": "./dist/internal.js"},
                "typesVersions": {"*": {"*": ["dist/*"]}},
                "type": "module",
                "browser": "dist/browser.js",
                "engines": {"node": ">=20"},
                "os": ["linux"],
                "cpu": ["x64", "arm64"],
                "libc": ["glibc"],
                "esnext": "dist/index.mjs",
                "es2015": "dist/index.mjs",
                "unpkg": "dist/browser.js",
                "umd:main": "dist/browser.js",
                "access": "public",
                "registry": "http://ignored.invalid/",
            },
        },
        "packages/lib/src/index.js": "module.exports = 'lib';\n",
        "packages/lib/dist/index.js": "module.exports = 'lib';\n",
        "packages/lib/dist/index.mjs": "export default 'lib';\n",
        "packages/lib/dist/index.d.ts": "export {};\n",
        "packages/lib/dist/browser.js": "\n",
        "packages/lib/dist/internal.js": "\n",
        "packages/lib/README.md": "# lib\n",
        "packages/util/package.json": {
            "name": n["util"],
            "version": "1.1.3",
            "bin": "cli.js",
            "dependencies": {n["lib"]: "workspace:"},
            "peerDependencies": {n["lib"]: "workspace:^"},
            "optionalDependencies": {n["lib"]: "workspace:*"},
        },
        "packages/util/cli.js": "#!/usr/bin/env node\n",
        "packages/util/run.sh": "#!/bin/sh\n",  # executable on disk, but no bin: pnpm packs it 0644
        "packages/util/LICENCE": "own licence\n",  # has its own: the root's is not added
        "packages/app/package.json": {
            "name": n["app"],
            "version": "2.0.0",
            "dependencies": {
                n["lib"]: "catalog:",
                n["util"]: "catalog:legacy",
                "lib-alias": f"workspace:{n['lib']}@^",
                "util-by-path": "workspace:../util",
                "util-star": f"workspace:{n['util']}@*",
                "util-range": f"workspace:{n['util']}@^1.1.0",
            },
            "devDependencies": {n["util"]: "workspace:~", n["tool"]: "workspace:*"},
            "optionalDependencies": {n["lib"]: "workspace:^1.0.0"},
            "peerDependencies": {n["util"]: "workspace:>=", n["lib"]: "workspace:^1.0.0", n["dist"]: "workspace:~"},
            "publishConfig": {"bin": {"app": "bin/app.js"}, "executableFiles": ["dist/run.sh"]},
            "files": ["bin", "dist"],
        },
        "packages/app/bin/app.js": "#!/usr/bin/env node\n",
        "packages/app/dist/run.sh": "#!/bin/sh\n",
        "packages/app/dist/index.js": "\n",
        "packages/dist/package.json": {
            "name": n["dist"],
            "version": "0.1.0",
            "publishConfig": {"directory": "out"},
            "dependencies": {n["lib"]: "workspace:~"},
        },
        "packages/dist/src.js": "not published\n",
        "packages/dist/out/package.json": {
            "name": n["dist"],
            "version": "0.1.0",
            "main": "index.js",
            "dependencies": {n["lib"]: "workspace:~"},
        },
        "packages/dist/out/index.js": "module.exports = 'dist';\n",
        "packages/ignored/package.json": {"name": n["ignored"], "version": "1.0.0"},
        "tools/dev/tool/package.json": {"name": n["tool"], "version": "0.0.1", "private": True},
    }
    return files, n


def test_every_published_tarball_is_what_pnpm_pack_makes(sandbox, pnpm, unique, workdir: Path, tmp_path: Path):
    files, n = every_form(f"@{unique('pnpm')}")
    write(workdir, files)
    (workdir / "packages/util/run.sh").chmod(0o755)
    (workdir / "packages/lib/src/index.js").chmod(0o755)
    pnpm_install(pnpm, workdir)

    result = publish(sandbox, workdir)
    assert result.code == 0, result.output
    published = [f"{n['lib']}@1.0.0", f"{n['util']}@1.1.3", f"{n['dist']}@0.1.0", f"{n['app']}@2.0.0"]
    plan = [
        line.split(". ", 1)[1].split(" (", 1)[0] for line in result.lines if line.startswith("  ") and ". @" in line
    ]
    # Dependencies first; the public root last, after the app it depends on.
    assert plan[-1] == f"{n['root']}@1.0.0"
    assert sorted(plan[:-1]) == sorted(published)
    assert plan.index(f"{n['lib']}@1.0.0") < plan.index(f"{n['util']}@1.1.3") < plan.index(f"{n['app']}@2.0.0")
    folders = ["packages/lib", "packages/util", "packages/dist", "packages/app", "."]
    for spec, folder in zip([*published, f"{n['root']}@1.0.0"], folders, strict=True):
        assert_same_as_pnpm_pack(sandbox, pnpm, workdir / folder, spec, tmp_path / spec.replace("/", "_"))
    assert sandbox.run("npm-view", n["ignored"]).returncode != 0
    assert sandbox.run("npm-view", n["tool"]).returncode != 0

    consumer = tmp_path / "consumer"
    installed = sandbox.run("npm-install", str(consumer), f"{n['root']}@1.0.0")
    assert installed.returncode == 0, installed.stderr
    app = json.loads((consumer / "node_modules" / n["app"] / "package.json").read_text())
    assert app["dependencies"][n["lib"]] == "^1.0.0"


def test_a_single_package_of_a_pnpm_workspace_is_published_as_pnpm_publishes_it(
    sandbox, pnpm, unique, workdir: Path, tmp_path: Path
):
    scope = f"@{unique('pnpm')}"
    lib, app = f"{scope}/lib", f"{scope}/app"
    write(
        workdir,
        {
            "pnpm-workspace.yaml": (
                f"packages: [packages/*]\nlinkWorkspacePackages: true\ncatalog:\n  '{lib}': ^1.2.0\n"
            ),
            "package.json": {"name": "monorepo", "private": True},
            "LICENSE": "MIT\n",
            "packages/lib/package.json": {"name": lib, "version": "1.2.0", "main": "index.js"},
            "packages/lib/index.js": "module.exports = 'lib';\n",
            "packages/app/package.json": {
                "name": app,
                "version": "3.0.0",
                "main": "index.js",
                "dependencies": {lib: "workspace:^"},
                "peerDependencies": {lib: "catalog:"},
            },
            "packages/app/index.js": f"module.exports = 'app+' + require('{lib}');\n",
        },
    )
    pnpm_install(pnpm, workdir)
    for folder in ("packages/lib", "packages/app"):
        result = publish(sandbox, workdir, NPM_PACKAGE=folder)
        assert result.code == 0, result.output
    shipped = assert_same_as_pnpm_pack(sandbox, pnpm, workdir / "packages/app", f"{app}@3.0.0", tmp_path / "app")
    assert shipped["dependencies"] == {lib: "^1.2.0"}

    value = sandbox.require_installed(tmp_path / "consumer", f"{app}@3.0.0", app)
    assert value.stdout.strip() == "app+lib", value.stderr


def test_a_range_the_sibling_does_not_satisfy_is_refused(sandbox, unique, workdir: Path):
    scope = f"@{unique('pnpm')}"
    lib, app = f"{scope}/lib", f"{scope}/app"
    write(
        workdir,
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "package.json": {"name": "monorepo", "private": True},
            "packages/lib/package.json": {"name": lib, "version": "1.0.0"},
            "packages/app/package.json": {"name": app, "version": "1.0.0", "dependencies": {lib: "workspace:^2.0.0"}},
        },
    )
    # pnpm 10.34 links the sibling anyway and `pnpm publish` would send "^2.0.0", a range the
    # version published beside it does not satisfy: the pipe refuses before anything is written.
    result = publish(sandbox, workdir)
    assert result.code == 1
    assert result.last_line == (
        f'✖ packages/app/package.json depends on "{lib}": "workspace:^2.0.0", but {lib} in packages/lib is at 1.0.0, '
        f"which does not satisfy ^2.0.0: change the range (e.g. workspace:^), or the version of {lib}."
    )
    assert sandbox.run("npm-view", lib).returncode != 0  # nothing published, not even the sibling


def file_selection(scope: str) -> dict[str, object]:
    """Packages whose file lists depend on pnpm's packlist: ignore files, `files` with negations
    and nested ignore files, lock files, bins from `directories.bin`, nested node_modules."""
    return {
        "pnpm-workspace.yaml": "packages: ['packages/*']\n",
        "package.json": {"name": "monorepo", "private": True},
        # pnpm, unlike npm, does not apply the root's ignore files to a package's files.
        ".gitignore": "node_modules\nroot-ignored.txt\n",
        "packages/ignores/root-ignored.txt": "",
        "packages/ignores/package.json": {
            "name": f"{scope}/ignores",
            "version": "1.0.0",
            "main": "lib/ignored.js",
            "browser": "b.js",
        },
        "packages/ignores/.npmignore": "lib/ignored.js\ndocs/\n*.map\n",
        **{
            f"packages/ignores/{path}": ""
            for path in (
                "lib/ignored.js",
                "lib/a.js",
                "lib/a.js.map",
                "b.js",
                "docs/README.md",
                "docs/x.md",
                "sub/README",
                "sub/LICENSE.txt",
                "bun.lockb",
                "package-lock.json",
                "yarn.lock",
                "pnpm-lock.yaml",
                ".npmrc",
                "src/node_modules/y.js",
                "CHANGELOG.md",
                ".DS_Store",
                "x.orig",
            )
        },
        "packages/files/package.json": {
            "name": f"{scope}/files",
            "version": "1.0.0",
            "files": ["dist/", "!dist/**/*.map", "types/*.d.ts", "README.md"],
            "bin": {"y": "bin/y"},
        },
        "packages/files/dist/.npmignore": "b.js\n",
        **{
            f"packages/files/{path}": ""
            for path in (
                "dist/a.js",
                "dist/a.js.map",
                "dist/sub/b.js",
                "dist/sub/b.js.map",
                "dist/README.md",
                "types/a.d.ts",
                "types/b.ts",
                "README.md",
                "bin/y",
                "other.js",
                "docs/LICENSE",
            )
        },
        "packages/gitignore/package.json": {
            "name": f"{scope}/gitignore",
            "version": "1.0.0",
            "directories": {"bin": "scripts"},
        },
        "packages/gitignore/.gitignore": "build/\n*.log\n!keep.log\n",
        **{
            f"packages/gitignore/{path}": ""
            for path in (
                "build/out.js",
                "a.log",
                "keep.log",
                "scripts/run",
                "scripts/.hidden",
                "index.js",
                ".hidden.js",
            )
        },
    }


def test_file_selection_is_pnpm_packs(sandbox, pnpm, unique, workdir: Path, tmp_path: Path):
    scope = f"@{unique('pnpm')}"
    write(workdir, file_selection(scope))
    pnpm_install(pnpm, workdir)
    result = publish(sandbox, workdir)
    assert result.code == 0, result.output
    for folder in ("ignores", "files", "gitignore"):
        spec = f"{scope}/{folder}@1.0.0"
        assert_same_as_pnpm_pack(sandbox, pnpm, workdir / "packages" / folder, spec, tmp_path / folder)


RANGES = [
    "^1.0.0", "^0.2.3", "^0.0.3", "^1.2", "^0.2", "^1", "~1.2.3", "~1.2", "~1", "1.x", "1.2.x", "*", "", "x",
    ">=1.2.3 <2", ">1", ">1.2", "<=1", "<=1.2", "<1.2", "<1", "1.2.3 - 2.3", "1.2 - 2.3.4", "1 - 2",
    ">=1.0.0-beta <2", "^1.0.0-beta.2", "1.0.0", "=1.0.0", "v1.0.0", "^2.0.0 || ^1.0.0", "~> 1.2", ">= 1.2.3",
    "1.2.3-rc.1", "<2.0.0", ">0.0.0", "~0.0.1", "^0.0", "^0.0.x", "0.x", ">=1 <=2.0",
]  # fmt: skip
VERSIONS = [
    "0.0.1", "0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.0.0-beta.1", "1.0.0-beta.3", "1.2.2", "1.2.3",
    "1.2.9", "1.3.0", "1.9.9", "2.0.0", "2.0.0-rc.1", "2.3.4", "2.3.5", "2.4.0", "3.0.0", "1.2.3-rc.1", "1.2.4-rc.1",
]  # fmt: skip


def test_range_satisfaction_is_node_semvers():
    """The check behind refusing `workspace:<range>`, against the semver package npm itself uses."""
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    script = (
        f"const semver = require({json.dumps(root + '/npm/node_modules/semver')});"
        "const [ranges, versions] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(ranges.map(r => versions.map(v => semver.satisfies(v, r)))));"
    )
    done = subprocess.run(
        ["node", "-e", script], input=json.dumps([RANGES, VERSIONS]), capture_output=True, text=True, check=True
    )
    expected = json.loads(done.stdout)
    ours = [[satisfies(SemVer.parse(v), r) for v in VERSIONS] for r in RANGES]
    assert ours == expected

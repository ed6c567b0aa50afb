"""Which packages of an npm workspace go out, in what order and how, against the real Verdaccio of
sandbox/: dependency cycles, a root that is a public package itself, a single package published
from inside the workspace. Consumers install with npm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_npm_pack_parity import npm
from tests.integration.test_npm_pnpm import contents, downloaded, write
from tests.integration.test_npm_publish import publish

pytestmark = pytest.mark.integration


def plan_of(lines: list[str]) -> list[str]:
    return [line.split(". ", 1)[1].split(" ", 1)[0] for line in lines if line[:4].strip().rstrip(".").isdigit()]


def test_a_cycle_keeps_everything_else_in_dependency_order(sandbox, unique, workdir: Path, tmp_path: Path):
    scope = f"@{unique('cycle')}"
    a, b, c = (f"{scope}/{x}" for x in "abc")
    write(
        workdir,
        {
            "package.json": {"name": "root", "private": True, "workspaces": ["packages/*"]},
            # a depends on b; b and c on each other, through devDependencies.
            "packages/a/package.json": {"name": a, "version": "1.0.0", "main": "i.js", "dependencies": {b: "^1.0.0"}},
            "packages/a/i.js": f"module.exports = 'a+' + require('{b}');\n",
            "packages/b/package.json": {"name": b, "version": "1.0.0", "main": "i.js", "devDependencies": {c: "*"}},
            "packages/b/i.js": "module.exports = 'b';\n",
            "packages/c/package.json": {"name": c, "version": "1.0.0", "devDependencies": {b: "*"}},
        },
    )
    result = publish(sandbox, workdir)
    assert result.code == 0, result.output
    assert plan_of(result.lines) == [f"{b}@1.0.0", f"{c}@1.0.0", f"{a}@1.0.0"]
    warnings = [line for line in result.lines if line.startswith("⚠")]
    assert warnings == [
        "⚠ These packages depend on each other in a cycle, so among themselves only their runtime dependencies "
        f"order them (else workspace order): {b}, {c}."
    ]
    value = sandbox.require_installed(tmp_path / "consumer", f"{a}@1.0.0", a)
    assert value.stdout.strip() == "a+b", value.stderr


def test_a_public_root_with_workspaces_is_published_after_its_workspace_packages(
    sandbox, unique, workdir: Path, tmp_path: Path
):
    root, lib = unique("root"), unique("lib")
    write(
        workdir,
        {
            "package.json": {
                "name": root,
                "version": "1.0.0",
                "main": "index.js",
                "workspaces": ["packages/*"],
                "dependencies": {lib: "^1.0.0"},
            },
            "index.js": f"module.exports = 'root+' + require('{lib}');\n",
            "packages/lib/package.json": {"name": lib, "version": "1.0.0", "main": "index.js"},
            "packages/lib/index.js": "module.exports = 'lib';\n",
        },
    )
    result = publish(sandbox, workdir)
    assert result.code == 0, result.output
    assert plan_of(result.lines) == [f"{lib}@1.0.0", f"{root}@1.0.0"]
    assert f"  2. {root}@1.0.0 (.) with dist-tag latest: publish" in result.lines
    # Packed as `npm publish` at the root packs it (npm-style workspaces stay npm's).
    expected = {entry["path"]: entry["mode"] for entry in json.loads(npm("pack", "--dry-run", cwd=workdir))[0]["files"]}
    files, _manifest = contents(downloaded(sandbox, f"{root}@1.0.0", tmp_path / "root"))
    assert files == expected

    value = sandbox.require_installed(tmp_path / "consumer", f"{root}@1.0.0", root)
    assert value.stdout.strip() == "root+lib", value.stderr


def test_a_single_package_of_an_npm_workspace_is_packed_as_npm_packs_it_there(
    sandbox, unique, workdir: Path, tmp_path: Path
):
    lib, app = unique("lib"), unique("app")
    write(
        workdir,
        {
            "package.json": {"name": "root", "private": True, "workspaces": ["packages/*"]},
            ".gitignore": "secret.txt\n",
            "packages/lib/package.json": {"name": lib, "version": "1.1.0", "main": "index.js"},
            "packages/lib/index.js": "module.exports = 'lib';\n",
            "packages/app/package.json": {
                "name": app,
                "version": "1.0.0",
                "main": "index.js",
                "dependencies": {lib: "workspace:^"},
            },
            "packages/app/index.js": f"module.exports = 'app+' + require('{lib}');\n",
            "packages/app/secret.txt": "left out by the root's .gitignore\n",
        },
    )
    for folder in ("packages/lib", "packages/app"):
        result = publish(sandbox, workdir, NPM_PACKAGE=folder)
        assert result.code == 0, result.output
    report = json.loads(npm("pack", "--dry-run", cwd=workdir / "packages/app"))
    files, manifest = contents(downloaded(sandbox, f"{app}@1.0.0", tmp_path / "app"))
    assert files == {entry["path"]: entry["mode"] for entry in report[0]["files"]}
    assert manifest["dependencies"] == {lib: "^1.1.0"}

    value = sandbox.require_installed(tmp_path / "consumer", f"{app}@1.0.0", app)
    assert value.stdout.strip() == "app+lib", value.stderr

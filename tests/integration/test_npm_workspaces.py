"""npm workspaces against the real Verdaccio of sandbox/, checked with the real npm client."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import assert_no_secret_in_tree
from tests.integration.test_npm_publish import npm_view, publish


def write_workspace(root: Path, scope: str, lib_range: str = "workspace:^", version: str = "1.0.0") -> dict[str, str]:
    """A root (private) with three packages: lib, app (depends on lib) and a private tool."""
    names = {kind: f"{scope}/{kind}" for kind in ("lib", "app", "tool")}
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(
        json.dumps({"name": "root", "private": True, "workspaces": ["packages/*"]}, indent=2) + "\n"
    )
    packages = {
        # app first in folder order (a-app < b-lib), so the dependency order is visible.
        "a-app": {"name": names["app"], "dependencies": {names["lib"]: lib_range}},
        "b-lib": {"name": names["lib"], "devDependencies": {names["tool"]: "workspace:*"}},
        "c-tool": {"name": names["tool"], "private": True},
    }
    for folder, manifest in packages.items():
        target = root / "packages" / folder
        target.mkdir(parents=True)
        body = {"version": version, "main": "index.js", **manifest}
        (target / "package.json").write_text(json.dumps(body, indent=2) + "\n")
        (target / "README.md").write_text(f"# {manifest['name']}\n")
    (root / "packages" / "b-lib" / "index.js").write_text("module.exports = 'lib';\n")
    (root / "packages" / "a-app" / "index.js").write_text(f"module.exports = 'app+' + require('{names['lib']}');\n")
    (root / "packages" / "c-tool" / "index.js").write_text("module.exports = 'tool';\n")
    return names


def test_workspace_publishes_public_packages_in_dependency_order(sandbox, unique, workdir: Path, tmp_path: Path):
    scope = f"@{unique('ws')}"
    names = write_workspace(workdir, scope)
    outputs = tmp_path / "outputs"
    result = publish(sandbox, workdir, BITBUCKET_PIPELINES_VARIABLES_PATH=str(outputs))
    assert result.code == 0, result.output
    lib, app = f"{names['lib']}@1.0.0", f"{names['app']}@1.0.0"
    assert result.last_line == (
        f"✔ Published 2 workspace packages to {sandbox.npm_registry}: {lib} (dist-tag latest), {app} (dist-tag latest)."
    )
    assert f"  1. {lib} (packages/b-lib) with dist-tag latest: publish" in result.lines
    assert f"  2. {app} (packages/a-app) with dist-tag latest: publish" in result.lines
    assert f"PUBLISHED_PACKAGES={lib} {app}\n" in outputs.read_text()
    assert sandbox.run("npm-view", names["tool"]).returncode != 0  # the private one stays home
    assert sandbox.run("npm-view", "root").returncode != 0

    consumer = tmp_path / "consumer"
    value = sandbox.require_installed(consumer, app, names["app"])
    assert value.stdout.strip() == "app+lib", value.stderr
    shipped = json.loads((consumer / "node_modules" / names["app"] / "package.json").read_text())
    assert shipped["dependencies"] == {names["lib"]: "^1.0.0"}
    assert npm_view(sandbox, app, "dependencies") == {names["lib"]: "^1.0.0"}
    # The lib's devDependency on the private tool is made publishable too.
    assert npm_view(sandbox, lib, "devDependencies") == {names["tool"]: "1.0.0"}
    assert not list(workdir.rglob(".npmrc"))
    assert_no_secret_in_tree(workdir, sandbox.writer_user, sandbox.writer_token)

    again = publish(sandbox, workdir)
    assert again.code == 0, again.output
    assert again.last_line == (
        f"✔ {lib}, {app} at {sandbox.npm_registry} are already published with identical contents: nothing to publish."
    )


def test_conflict_in_one_package_publishes_nothing(sandbox, unique, workdir: Path):
    scope = f"@{unique('ws')}"
    names = write_workspace(workdir, scope)
    only_lib = publish(sandbox, workdir, NPM_WORKSPACES="packages/b-lib")
    assert only_lib.code == 0, only_lib.output
    (workdir / "packages" / "b-lib" / "index.js").write_text("module.exports = 'changed';\n")

    result = publish(sandbox, workdir)
    assert result.code == 1
    assert result.last_line == (
        f"✖ {names['lib']}@1.0.0 is already published at {sandbox.npm_registry} with different contents: versions "
        "are immutable; bump the version (package.json's version, or VERSION) and re-run. Nothing was published."
    )
    missing = sandbox.run("npm-view", names["app"])
    assert missing.returncode != 0 and "E404" in missing.stderr


def test_tag_pipeline_publishes_lockstep_and_rewrites_workspace_ranges(sandbox, unique, workdir: Path, tmp_path: Path):
    scope = f"@{unique('ws')}"
    names = write_workspace(workdir, scope, lib_range="workspace:*", version="0.0.0-development")
    app_json = workdir / "packages" / "a-app" / "package.json"
    manifest = json.loads(app_json.read_text())
    manifest["peerDependencies"] = {names["lib"]: "workspace:~"}
    manifest["optionalDependencies"] = {names["lib"]: "workspace:^2.0.0"}
    manifest["devDependencies"] = {names["lib"]: ">=1"}  # a plain range stays as written
    app_json.write_text(json.dumps(manifest, indent=2) + "\n")

    result = publish(sandbox, workdir, VERSION="v2.1.0", BITBUCKET_TAG="v2.1.0")
    assert result.code == 0, result.output
    consumer = tmp_path / "consumer"
    installed = sandbox.run("npm-install", str(consumer), f"{names['app']}@2.1.0")
    assert installed.returncode == 0, installed.stderr
    shipped = json.loads((consumer / "node_modules" / names["app"] / "package.json").read_text())
    assert shipped["version"] == "2.1.0"
    assert shipped["dependencies"] == {names["lib"]: "2.1.0"}
    assert shipped["peerDependencies"] == {names["lib"]: "~2.1.0"}
    assert shipped["optionalDependencies"] == {names["lib"]: "^2.0.0"}
    assert shipped["devDependencies"] == {names["lib"]: ">=1"}
    lib = json.loads((consumer / "node_modules" / names["lib"] / "package.json").read_text())
    assert lib["version"] == "2.1.0"
    assert npm_view(sandbox, f"{names['app']}@2.1.0", "dependencies") == {names["lib"]: "2.1.0"}


def test_unknown_workspace_is_refused_with_the_known_ones(sandbox, unique, workdir: Path):
    scope = f"@{unique('ws')}"
    names = write_workspace(workdir, scope)
    result = publish(sandbox, workdir, NPM_WORKSPACES="packages/b-lib nope")
    assert result.code == 1
    assert result.last_line == (
        "✖ NPM_WORKSPACES names 'nope', which is not a package of the workspace: use one of "
        f"{names['app']} (packages/a-app), {names['lib']} (packages/b-lib), {names['tool']} (packages/c-tool, "
        "private) (a name or a folder)."
    )
    assert sandbox.run("npm-view", names["lib"]).returncode != 0


def test_dry_run_plans_every_package_and_writes_nothing(sandbox, unique, workdir: Path):
    scope = f"@{unique('ws')}"
    names = write_workspace(workdir, scope)
    result = publish(sandbox, workdir, DRY_RUN="true", NPM_DIST_TAG="next")
    assert result.code == 0, result.output
    lib, app = f"{names['lib']}@1.0.0", f"{names['app']}@1.0.0"
    assert f"  1. {lib} (packages/b-lib) with dist-tag next: publish" in result.lines
    assert result.last_line == f"✔ Dry run: would publish {lib}, {app} to {sandbox.npm_registry}; nothing was written."
    assert sandbox.run("npm-view", names["lib"]).returncode != 0

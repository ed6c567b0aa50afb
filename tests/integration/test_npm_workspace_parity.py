"""Workspace packages are packed as the real `npm pack --workspace <name>` (npm 11) packs them:
the same packages found by the `workspaces` globs, and for each the same files and modes, with
the ignore files of the root and of the folders in between applied as npm applies them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipe.npm.packlist import list_package_files
from pipe.npm.workspace_files import outer_ignore_texts
from pipe.npm.workspace_graph import discover, workspace_patterns
from tests.integration.test_npm_pack_parity import differences, npm, requires_npm

pytestmark = pytest.mark.integration

# folder -> {relative path: content}; "package.json" values are dicts.
CASES: dict[str, dict[str, object]] = {
    "root-gitignore": {
        "package.json": {"name": "root", "private": True, "workspaces": ["packages/*"]},
        ".gitignore": "*.log\nsecret.txt\n/dist\n",
        "packages/a/package.json": {"name": "a", "version": "1.0.0", "main": "lib/index.js"},
        "packages/a/lib/index.js": "",
        "packages/a/secret.txt": "",
        "packages/a/debug.log": "",
        "packages/a/dist/out.js": "",
        "packages/a/keep.txt": "",
        "packages/b/package.json": {"name": "b", "version": "1.0.0", "files": ["secret.txt", "*.log"]},
        "packages/b/secret.txt": "",
        "packages/b/x.log": "",
        "packages/b/deep/y.log": "",
    },
    "root-npmignore-beats-gitignore": {
        "package.json": {"name": "root", "private": True, "workspaces": {"packages": ["packages/*"]}},
        ".gitignore": "gitignored.txt\n",
        ".npmignore": "npmignored.txt\n*.bak\n",
        "packages/a/package.json": {"name": "@s/a", "version": "1.0.0"},
        "packages/a/gitignored.txt": "",
        "packages/a/npmignored.txt": "",
        "packages/a/.npmignore": "own.txt\n!npmignored.txt\n",
        "packages/a/own.txt": "",
        "packages/a/old.bak": "",
        "packages/a/index.js": "",
    },
    "folders-between-and-nested-globs": {
        "package.json": {"name": "root", "private": True, "workspaces": ["libs/**", "apps/{web,cli}", "!libs/skip"]},
        ".gitignore": "*.tmp\n",
        "libs/.gitignore": "generated/\n",
        "libs/core/package.json": {"name": "core", "version": "1.0.0"},
        "libs/core/generated/g.js": "",
        "libs/core/src/a.tmp": "",
        "libs/core/src/a.js": "",
        "libs/group/.npmignore": "fixtures\n",
        "libs/group/util/package.json": {"name": "util", "version": "1.0.0"},
        "libs/group/util/fixtures/f.json": "{}",
        "libs/group/util/index.js": "",
        "libs/skip/package.json": {"name": "skip", "version": "1.0.0"},
        "apps/web/package.json": {"name": "web", "version": "1.0.0", "bin": "cli.tmp"},
        "apps/web/cli.tmp": "#!/usr/bin/env node\n",
        "apps/web/generated/kept.js": "",
        "apps/cli/package.json": {"name": "cli", "version": "1.0.0", "private": True},
        "apps/cli/index.js": "",
        "apps/other/package.json": {"name": "other", "version": "1.0.0"},
        "libs/core/node_modules/dep/package.json": {"name": "dep", "version": "1.0.0"},
    },
}


def build(root: Path, files: dict[str, object]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if isinstance(content, dict) else str(content))
    return root


def npm_workspace_files(root: Path, name: str) -> dict[str, int]:
    report = json.loads(npm("pack", "--workspace", name, "--dry-run", cwd=root))
    assert [entry["name"] for entry in report] == [name]
    return {entry["path"]: entry["mode"] for entry in report[0]["files"]}


def npm_workspace_names(root: Path) -> list[str]:
    return [entry["name"] for entry in json.loads(npm("pack", "--workspaces", "--dry-run", cwd=root))]


@requires_npm
@pytest.mark.parametrize("case", sorted(CASES))
def test_workspace_packages_match_npm_pack_workspace(case: str, tmp_path: Path) -> None:
    root = build(tmp_path / case, CASES[case])
    data = json.loads((root / "package.json").read_text())
    members = discover(root, workspace_patterns(data, "package.json"), ".")
    assert sorted(m.name for m in members) == sorted(npm_workspace_names(root))
    for member in members:
        expected = npm_workspace_files(root, member.name)
        ours = list_package_files(member.folder, member.package.data, outer_ignore_texts(root, member.folder))
        assert differences(expected, {f.path: f.mode for f in ours}) == [], member.name

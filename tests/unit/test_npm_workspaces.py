"""The workspace model without a registry: globs, selection, `workspace:` ranges, order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipe.errors import ConfigError, InputError
from pipe.npm.workspace_graph import (
    dependency_order,
    discover,
    expand_braces,
    glob_matches,
    matched_folders,
    private_runtime_dependencies,
    select,
    workspace_patterns,
)
from pipe.npm.workspace_ranges import Resolution, rewrite_package
from tests.unit.npm_fake import ScriptedNpmRegistry
from tests.unit.test_npm_publish import REGISTRY, run


def package(root: Path, folder: str, **manifest) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "package.json").write_text(json.dumps({"version": "1.0.0", **manifest}))


@pytest.mark.parametrize(
    ("declared", "patterns"),
    [(["packages/*"], ["packages/*"]), ({"packages": ["a", " b "]}, ["a", "b"]), ([], []), ({"nohoist": []}, [])],
)
def test_workspaces_field_forms(declared, patterns):
    assert workspace_patterns({"workspaces": declared}, "package.json") == patterns


@pytest.mark.parametrize("declared", ["packages/*", {"packages": "x"}, [1]])
def test_malformed_workspaces_field_is_refused(declared):
    with pytest.raises(InputError, match=r'package.json "workspaces" must be a list of folder globs'):
        workspace_patterns({"workspaces": declared}, "package.json")


def test_globs():
    assert expand_braces("apps/{web,cli}/x") == ["apps/web/x", "apps/cli/x"]
    assert expand_braces("a/{b,{c,d}}") == ["a/b", "a/c", "a/d"]
    assert expand_braces("a/{b}") == ["a/{b}"]
    assert glob_matches("packages/*", "packages/a")
    assert not glob_matches("packages/*", "packages/a/b")
    assert not glob_matches("packages/*", "packages/.hidden")
    assert glob_matches("./packages/*/", "packages/a")
    assert glob_matches("libs/**", "libs/x/y")
    assert glob_matches("libs/**/core", "libs/core")
    assert glob_matches("p/[ab]?", "p/b1")
    assert not glob_matches("p/[!ab]?", "p/b1")


def test_matched_folders_order_negation_and_node_modules(tmp_path: Path):
    for folder in ("packages/b", "packages/a", "packages/skip", "tools/t", "packages/a/node_modules/x"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    found = matched_folders(tmp_path, ["tools/*", "packages/**", "!packages/skip"])
    assert found == ["tools/t", "packages", "packages/a", "packages/b"]


def test_discover_needs_package_json_and_unique_names(tmp_path: Path):
    package(tmp_path, "packages/a", name="a")
    (tmp_path / "packages" / "empty").mkdir()
    assert [m.relative for m in discover(tmp_path, ["packages/*"], ".")] == ["packages/a"]
    with pytest.raises(InputError, match=r'^\./package.json "workspaces" \(libs/\*\) names no folder with a package'):
        discover(tmp_path, ["libs/*"], './package.json "workspaces"')
    package(tmp_path, "packages/b", name="a")
    with pytest.raises(InputError, match=r"same name \(a in packages/a, packages/b\)"):
        discover(tmp_path, ["packages/*"], ".")


def test_select_by_name_or_folder_keeps_workspace_order(tmp_path: Path):
    package(tmp_path, "packages/a", name="@s/a")
    package(tmp_path, "packages/b", name="@s/b")
    package(tmp_path, "packages/p", name="@s/p", private=True)
    members = discover(tmp_path, ["packages/*"], ".")
    assert [m.name for m in select(members, (), tmp_path)] == ["@s/a", "@s/b"]
    assert [m.name for m in select(members, ("./packages/b/", "@s/a"), tmp_path)] == ["@s/a", "@s/b"]
    with pytest.raises(
        ConfigError, match=r"use one of @s/a \(packages/a\), @s/b \(packages/b\), @s/p \(packages/p, priv"
    ):
        select(members, ("@s/c",), tmp_path)
    with pytest.raises(ConfigError, match=r'NPM_WORKSPACES names @s/p, whose package.json has "private": true'):
        select(members, ("@s/p",), tmp_path)


def test_rewrite_covers_every_field_alias_and_path_and_leaves_plain_ranges(tmp_path: Path):
    package(tmp_path, "packages/lib", name="@s/lib")
    package(
        tmp_path,
        "packages/app",
        name="@s/app",
        dependencies={"@s/lib": "workspace:^", "left-pad": "^1.0.0"},
        devDependencies={"@s/lib": "^0.9.0"},
        peerDependencies={"@s/lib": "workspace:>="},
        optionalDependencies={"lib-alias": "workspace:@s/lib@~", "lib-path": "workspace:../lib"},
    )
    members = discover(tmp_path, ["packages/*"], ".")
    app = next(m for m in members if m.name == "@s/app")
    resolution = Resolution(tuple(members), {"@s/lib": "2.0.0", "@s/app": "2.0.0"})
    rewritten = rewrite_package(app.package, app.folder, resolution)
    assert rewritten.data["dependencies"] == {"@s/lib": "^2.0.0", "left-pad": "^1.0.0"}
    assert rewritten.data["devDependencies"] == {"@s/lib": "^0.9.0"}
    assert rewritten.data["peerDependencies"] == {"@s/lib": ">=2.0.0"}
    assert rewritten.data["optionalDependencies"] == {"lib-alias": "npm:@s/lib@~2.0.0", "lib-path": "npm:@s/lib@2.0.0"}
    assert json.loads(rewritten.raw) == rewritten.data
    assert app.package.data["dependencies"]["@s/lib"] == "workspace:^"  # the member itself is untouched
    lib = next(m for m in members if m.name == "@s/lib")
    assert rewrite_package(lib.package, lib.folder, resolution) is lib.package


def test_workspace_range_on_an_unknown_package_is_refused(tmp_path: Path):
    package(tmp_path, "packages/app", name="app", dependencies={"ghost": "workspace:*"})
    members = discover(tmp_path, ["packages/*"], ".")
    with pytest.raises(InputError, match=r'depends on "ghost": "workspace:\*", but the workspace has no package named'):
        rewrite_package(members[0].package, members[0].folder, Resolution(tuple(members)))


def test_dependency_order_siblings_first_and_cycles_in_workspace_order(tmp_path: Path):
    package(tmp_path, "p/a-app", name="app", dependencies={"lib": "workspace:*"}, peerDependencies={"ext": "1"})
    package(tmp_path, "p/b-lib", name="lib", optionalDependencies={"util": "^1.0.0"})
    package(tmp_path, "p/c-util", name="util")
    package(tmp_path, "p/d-x", name="x", devDependencies={"y": "*"})
    package(tmp_path, "p/e-y", name="y", dependencies={"x": "*"})
    members = discover(tmp_path, ["p/*"], ".")
    ordered, cycles = dependency_order(members[:3])
    assert [m.name for m in ordered] == ["util", "lib", "app"]
    assert cycles == []
    ordered, cycles = dependency_order(members)
    assert [m.name for m in ordered] == ["util", "lib", "app", "x", "y"]
    assert cycles == [["x", "y"]]


def test_every_packument_is_read_before_the_first_put_and_a_late_failure_names_what_was_published(workdir: Path):
    (workdir / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    package(workdir, "packages/a", name="app", dependencies={"lib": "workspace:^"})
    package(workdir, "packages/b", name="lib")
    registry = ScriptedNpmRegistry(
        {
            ("GET", REGISTRY + "lib"): [(404, {})],
            ("GET", REGISTRY + "app"): [(404, {})],
            ("PUT", REGISTRY + "lib"): [(201, {"ok": True})],
            ("PUT", REGISTRY + "app"): [(403, {"error": "not allowed"})],
        }
    )
    result = run(registry, workdir)
    assert result.code == 1
    assert registry.urls == [
        ("GET", REGISTRY + "lib"),
        ("GET", REGISTRY + "app"),
        ("PUT", REGISTRY + "lib"),
        ("PUT", REGISTRY + "app"),
        ("GET", REGISTRY + "app"),  # the refusal is settled by a re-read, as for a single package
    ]
    assert result.last_line.startswith(f"✖ publishing app@1.0.0 failed: {REGISTRY}app answered 403")
    assert result.last_line.endswith(
        "Published before this failure: lib@1.0.0; re-run the step to publish the rest (versions already "
        "published with identical contents are skipped)."
    )
    app_document = registry.put_json(1)
    assert app_document["versions"]["1.0.0"]["dependencies"] == {"lib": "^1.0.0"}


def test_runtime_dependencies_on_private_siblings_are_found(tmp_path: Path):
    package(tmp_path, "p/app", name="app", dependencies={"secret": "workspace:*"}, devDependencies={"tool": "*"})
    package(tmp_path, "p/secret", name="secret", private=True)
    package(tmp_path, "p/tool", name="tool", private=True)
    members = discover(tmp_path, ["p/*"], ".")
    assert private_runtime_dependencies(members[0], members) == ["secret"]


def test_npm_workspaces_without_a_workspace_is_refused_before_any_request(workdir: Path):
    package(workdir, ".", name="widget", workspaces=[])
    registry = ScriptedNpmRegistry({})
    result = run(registry, workdir, NPM_WORKSPACES="lib")
    assert result.code == 1
    assert result.last_line == (
        '✖ NPM_WORKSPACES is set but ./package.json has no "workspaces": point NPM_PACKAGE at the workspace root '
        "(the folder whose package.json lists the workspaces), or remove NPM_WORKSPACES."
    )
    assert registry.requests == []

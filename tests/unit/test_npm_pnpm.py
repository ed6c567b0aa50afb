"""pnpm workspaces without a registry: pnpm-workspace.yaml, catalogs, ranges, the exportable
manifest, pnpm's modes and the root's LICENSE, cycles, and the bad inputs refused with one ✖
before any request. What pnpm itself packs is compared in tests/integration/test_npm_pnpm.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipe.errors import InputError
from pipe.npm import pnpm_pack
from pipe.npm.manifest import PackageJson
from pipe.npm.pnpm_workspace import read_pnpm_workspace
from pipe.npm.semver_range import RangeError, satisfies
from pipe.npm.workspace_graph import Member, dependency_order, discover
from pipe.npm.workspace_ranges import Resolution, publishable_dependencies
from pipe.versioning import SemVer
from tests.unit.npm_fake import ScriptedNpmRegistry
from tests.unit.test_npm_publish import REGISTRY, run


def write(root: Path, files: dict[str, object]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if isinstance(content, dict) else str(content))
    return root


def pkg(name: str, version: str = "1.0.0", **fields) -> dict:
    return {"name": name, "version": version, **fields}


WORKSPACE = "packages:\n  - packages/*\ncatalog:\n  left-pad: ^1.3.0\ncatalogs:\n  react17:\n    react: ^17.0.2\n"


def test_pnpm_workspace_file_is_read_as_pnpm_reads_it(tmp_path: Path):
    write(tmp_path, {"pnpm-workspace.yaml": WORKSPACE + "  empty:\n"})
    workspace = read_pnpm_workspace(tmp_path, ".")
    assert workspace.patterns == ("packages/*",)
    assert workspace.catalogs == {"default": {"left-pad": "^1.3.0"}, "react17": {"react": "^17.0.2"}}
    write(tmp_path, {"pnpm-workspace.yaml": "catalogs:\n  default:\n    a: '1'\n"})
    workspace = read_pnpm_workspace(tmp_path, ".")
    assert workspace.patterns == ("**",) and not workspace.explicit  # pnpm's default: every package
    assert workspace.catalogs == {"default": {"a": "1"}}
    assert read_pnpm_workspace(tmp_path / "none", ".") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("packages: [a\n", r"^pnpm-workspace.yaml is not valid YAML \(.* at line 2, column 1\): fix the syntax"),
        ("- a\n", r"^pnpm-workspace.yaml must hold a mapping \(packages:, catalog:, …\), not a list"),
        ("packages: a/*\n", r'^pnpm-workspace.yaml: "packages" must be a list of folder globs'),
        ("catalog: {a: '1'}\ncatalogs: {default: {a: '2'}}\n", r"defines the default catalog twice"),
        ("catalogs: {x: [1]}\n", r'"catalogs.x" must map dependency names to version ranges'),
    ],
)
def test_malformed_pnpm_workspace_files_are_refused(tmp_path: Path, text: str, message: str):
    (tmp_path / "pnpm-workspace.yaml").write_text(text)
    with pytest.raises(InputError, match=message):
        read_pnpm_workspace(tmp_path, ".")


def resolution_for(root: Path, catalogs: dict | None = None) -> Resolution:
    members = discover(root, ["packages/*"], ".")
    return Resolution(tuple(members), {}, catalogs or {}, "pnpm-workspace.yaml")


@pytest.mark.parametrize(
    ("field", "spec", "published"),
    [
        ("dependencies", "workspace:*", "1.2.3"),
        ("dependencies", "workspace:", "1.2.3"),
        ("dependencies", "workspace:^", "^1.2.3"),
        ("dependencies", "workspace:~", "~1.2.3"),
        ("dependencies", "workspace:^1.0.0", "^1.0.0"),
        ("dependencies", "workspace:lib@^", "^1.2.3"),  # same name: no alias
        ("dependencies", "workspace:lib@^1.2.0", "npm:lib@^1.2.0"),
        ("dependencies", "workspace:../lib", "1.2.3"),
        ("dependencies", "catalog:", "^1.3.0"),
        ("dependencies", "catalog:react17", "^17.0.2"),
        ("dependencies", "jsr:@std/path@^1", "npm:@jsr/std__path@^1"),
        ("peerDependencies", "workspace:>=", ">=1.2.3"),
        ("peerDependencies", "workspace:*", "1.2.3"),
        ("peerDependencies", "workspace:^1.0.0 || ^2.0.0", "^1.0.0 || ^2.0.0"),
    ],
)
def test_ranges_are_published_as_pnpm_writes_them(tmp_path: Path, field: str, spec: str, published: str):
    write(tmp_path, {"packages/lib/package.json": pkg("lib", "1.2.3")})
    catalogs = {"default": {"lib": "^1.3.0"}, "react17": {"lib": "^17.0.2"}}
    data = publishable_dependencies(
        {field: {"lib": spec}}, tmp_path / "packages/app", "app/package.json", resolution_for(tmp_path, catalogs)
    )
    assert data[field] == {"lib": published}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "workspace:^2.0.0",
            r'"workspace:\^2.0.0", but lib in packages/lib is at 1.2.3, which does not satisfy \^2.0.0',
        ),
        ("workspace:ghost@*", r"no package named ghost"),
        ("catalog:nope", r"but pnpm-workspace.yaml has no catalog 'nope': define it"),
        ("catalog:", r"but pnpm-workspace.yaml has no default catalog: define it"),
        ("workspace:1.x.3", r'"1.x.3" is not a version range'),
    ],
)
def test_ranges_that_cannot_be_published_are_refused(tmp_path: Path, spec: str, message: str):
    write(tmp_path, {"packages/lib/package.json": pkg("lib", "1.2.3")})
    with pytest.raises(InputError, match=message):
        publishable_dependencies(
            {"dependencies": {"lib": spec}}, tmp_path, "app/package.json", resolution_for(tmp_path)
        )


def test_peer_ranges_pnpm_would_garble_are_refused(tmp_path: Path):
    write(tmp_path, {"packages/lib/package.json": pkg("lib", "1.2.3")})
    for spec, message in (
        ("workspace:../lib", "pnpm publishes a folder path in peerDependencies as an invalid range"),
        ("workspace:lib@^", 'pnpm would publish it as "1.2.3lib@\\^", which is not a version range'),
    ):
        with pytest.raises(InputError, match=message):
            publishable_dependencies({"peerDependencies": {"lib": spec}}, tmp_path, "a", resolution_for(tmp_path))


def test_catalog_without_the_entry_is_refused(tmp_path: Path):
    write(tmp_path, {"packages/lib/package.json": pkg("lib")})
    with pytest.raises(InputError, match=r"the default catalog in pnpm-workspace.yaml has no entry for react"):
        publishable_dependencies(
            {"dependencies": {"react": "catalog:"}}, tmp_path, "a", resolution_for(tmp_path, {"default": {}})
        )


def test_exportable_manifest_drops_and_overrides_as_pnpm(tmp_path: Path):
    original = {
        "name": "x",
        "version": "1.0.0",
        "main": "src/index.js",
        "pnpm": {"overrides": {}},
        "packageManager": "pnpm@10.0.0",
        "scripts": {"build": "tsc", "prepublishOnly": "a", "prepack": "b", "prepare": "c", "postpack": "d"},
        "publishConfig": {"main": "dist/index.js", "exports": "./dist/index.js", "access": "public"},
        "description": "d",
    }
    package = PackageJson(original, b"", "x/package.json")
    exported = pnpm_pack.exportable_package(package, tmp_path, Resolution())
    assert list(exported.data) == ["name", "version", "main", "publishConfig", "description", "scripts", "exports"]
    assert exported.data["main"] == "dist/index.js"
    assert exported.data["scripts"] == {"build": "tsc"}
    assert exported.data["publishConfig"] == {"access": "public"}
    assert exported.raw == json.dumps(exported.data, indent=2).encode()  # no final newline, as pnpm writes it
    only_overrides = PackageJson({"name": "x", "publishConfig": {"types": "a.d.ts"}}, b"", "x")
    assert "publishConfig" not in pnpm_pack.exportable_package(only_overrides, tmp_path, Resolution()).data


def test_pnpm_modes_and_the_roots_license(tmp_path: Path):
    write(
        tmp_path,
        {
            "LICENSE": "MIT",
            "LICENSE.txt": "MIT",
            "license-notes": "not a license file by pnpm's glob",
            "packages/a/package.json": pkg("a", bin={"a": "cli.js"}, publishConfig={"executableFiles": ["./run.sh"]}),
            "packages/a/cli.js": "",
            "packages/a/run.sh": "",
            "packages/a/tool.sh": "",
            "packages/b/package.json": pkg("b"),
            "packages/b/docs/LICENSE-THIRD-PARTY.md": "",
        },
    )
    (tmp_path / "packages/a/tool.sh").chmod(0o755)
    a = json.loads((tmp_path / "packages/a/package.json").read_text())
    files = {f.path: f.mode for f in pnpm_pack.package_files(tmp_path / "packages/a", a, tmp_path)}
    assert files == {
        "package.json": 0o644,
        "cli.js": 0o755,
        "run.sh": 0o755,
        "tool.sh": 0o644,
        "LICENSE": 0o644,
        "LICENSE.txt": 0o644,
    }
    b = json.loads((tmp_path / "packages/b/package.json").read_text())
    assert "LICENSE" not in {f.path for f in pnpm_pack.package_files(tmp_path / "packages/b", b, tmp_path)}
    # The root packs its own files only (its LICENSE is one of them).
    assert all(f.origin is None for f in pnpm_pack.package_files(tmp_path, pkg("root"), tmp_path))


def test_publish_config_directory(tmp_path: Path):
    write(
        tmp_path,
        {"package.json": pkg("a", "2.0.0", publishConfig={"directory": "out"}), "out/package.json": pkg("a", "2.0.0")},
    )
    package = PackageJson(json.loads((tmp_path / "package.json").read_text()), b"", "a/package.json")
    folder, inner = pnpm_pack.publish_folder(tmp_path, package, "a")
    assert folder == (tmp_path / "out").resolve() and inner.data["version"] == "2.0.0"
    write(tmp_path, {"other/package.json": pkg("b", "2.0.0")})
    renamed = PackageJson(pkg("a", "2.0.0", publishConfig={"directory": "other"}), b"", "a/package.json")
    with pytest.raises(InputError, match=r'^a/other/package.json has "name": "b" but a/package.json has "a"'):
        pnpm_pack.publish_folder(tmp_path, renamed, "a")
    for directory, message in (("../x", "must name a folder inside the package"), ("gone", "does not exist")):
        escaping = PackageJson({"publishConfig": {"directory": directory}}, b"", "a/package.json")
        with pytest.raises(InputError, match=message):
            pnpm_pack.publish_folder(tmp_path, escaping, "a")


def member(root: Path, name: str, **fields) -> Member:
    return Member(root / name, f"packages/{name}", PackageJson(pkg(name, **fields), b"", name))


def test_cycle_of_the_issue_orders_everything_else_by_dependencies(tmp_path: Path):
    members = [
        member(tmp_path, "a", dependencies={"b": "^1.0.0"}),
        member(tmp_path, "b", devDependencies={"c": "*"}),
        member(tmp_path, "c", devDependencies={"b": "*"}),
        member(tmp_path, "d", dependencies={"a": "*"}),
        member(tmp_path, "e", peerDependencies={"f": "*"}),
        member(tmp_path, "f", optionalDependencies={"e": "*", "g": "*"}),
        member(tmp_path, "g"),
    ]
    ordered, cycles = dependency_order(members)
    assert [m.name for m in ordered] == ["b", "c", "a", "d", "g", "e", "f"]
    assert cycles == [["b", "c"], ["e", "f"]]


def test_a_long_dependency_chain_does_not_recurse(tmp_path: Path):
    members = [member(tmp_path, f"p{i}", dependencies={f"p{i + 1}": "*"}) for i in range(3000)]
    ordered, cycles = dependency_order(members)
    assert ordered[0].name == "p2999" and ordered[-1].name == "p0" and cycles == []


@pytest.mark.parametrize(
    ("version", "range_text", "expected"),
    [
        ("1.2.3", "^1.0.0", True),
        ("2.0.0", "^1.0.0", False),
        ("0.2.5", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),
        ("1.2.9", "~1.2.3", True),
        ("1.3.0", "~1.2.3", False),
        ("1.5.0", "1.x", True),
        ("2.3.4", "1.2.3 - 2.3", True),
        ("2.4.0", "1.2.3 - 2.3", False),
        ("1.0.0-beta.3", ">=1.0.0-beta <2", True),
        ("1.1.0-beta.3", ">=1.0.0 <2", False),
        ("3.0.0", "^2.0.0 || >=3", True),
        ("1.0.0", "*", True),
    ],
)
def test_satisfies_like_node_semver(version: str, range_text: str, expected: bool):
    assert satisfies(SemVer.parse(version), range_text) is expected


def test_unreadable_ranges():
    for text in ("1.x.3", "latest", ">=a"):
        with pytest.raises(RangeError):
            satisfies(SemVer.parse("1.0.0"), text)


BAD_INPUTS = {
    "yaml that does not parse": (
        {"pnpm-workspace.yaml": "packages:\n  - packages/*\n catalog: [\n"},
        r"✖ pnpm-workspace.yaml is not valid YAML \(.*\): fix the syntax",
    ),
    "a catalog that does not exist": (
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "packages/b/package.json": pkg("b", dependencies={"x": "catalog:nope"}),
        },
        r"✖ packages/b/package.json depends on \"x\": \"catalog:nope\", but pnpm-workspace.yaml has no catalog 'nope'",
    ),
    "a glob that matches nothing": (
        {"pnpm-workspace.yaml": "packages: [packages/*, libs/*]\n"},
        r'✖ pnpm-workspace.yaml has the glob "libs/\*", which matches no folder with a package.json',
    ),
    "a range the sibling does not satisfy": (
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "packages/b/package.json": pkg("b", dependencies={"a": "workspace:^2.0.0"}),
        },
        r"✖ packages/b/package.json depends on \"a\": \"workspace:\^2.0.0\", but a in packages/a is at 1.0.0",
    ),
    "a public package needing a private sibling": (
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "packages/b/package.json": pkg("b", dependencies={"p": "workspace:*"}),
            "packages/p/package.json": pkg("p", private=True),
        },
        r'✖ workspace packages depend at run time on packages marked "private": true, which are never '
        r"published \(b needs p\)",
    ),
    "a glob leaving the workspace": (
        {"pnpm-workspace.yaml": "packages: [packages/*, ../*]\n"},
        r'✖ pnpm-workspace.yaml has the glob "\.\./\*", which matches no folder with a package.json',
    ),
    "a workspace: path leaving the workspace": (
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "packages/b/package.json": pkg("b", dependencies={"x": "workspace:../../../etc"}),
        },
        r"✖ packages/b/package.json depends on \"x\": \"workspace:../../../etc\", but pnpm-workspace.yaml has no "
        r"package in that folder",
    ),
    "a publishConfig.directory leaving the package": (
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "packages/b/package.json": pkg("b", publishConfig={"directory": "../../.."}),
        },
        r'✖ packages/b/package.json "publishConfig.directory" must name a folder inside the package',
    ),
    "a huge pnpm-workspace.yaml": (
        {"pnpm-workspace.yaml": "packages: [packages/*]\n#" + "x" * (2 << 20) + "\n"},
        r"✖ pnpm-workspace.yaml is larger than 1024 KB",
    ),
    "an alias bomb in pnpm-workspace.yaml": (
        {
            "pnpm-workspace.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
            + "packages: *i\n"
        },
        r'✖ pnpm-workspace.yaml: "packages" must be a list of folder globs',
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_nothing_is_sent(case: str, workdir: Path):
    files, message = BAD_INPUTS[case]
    write(workdir, {"package.json": {"name": "root", "private": True}, "packages/a/package.json": pkg("a"), **files})
    registry = ScriptedNpmRegistry({})
    result = run(registry, workdir)
    assert result.code == 1
    assert [line for line in result.lines if line.startswith("✖")] == [result.last_line]
    assert re.match(message, result.last_line), result.last_line
    assert registry.requests == []
    assert "Traceback" not in result.output


def test_a_single_package_with_workspace_ranges_and_no_workspace_is_refused(workdir: Path):
    write(workdir, {"package.json": pkg("app", dependencies={"lib": "workspace:^"})})
    registry = ScriptedNpmRegistry({})
    result = run(registry, workdir)
    assert result.code == 1
    assert result.last_line.startswith("✖ ./package.json has workspace: or catalog: ranges, but no workspace above .")
    assert registry.requests == []


def test_a_single_package_in_a_pnpm_workspace_is_published_resolved(workdir: Path):
    write(
        workdir,
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\ncatalog:\n  left-pad: ^1.3.0\n",
            "package.json": {"name": "root", "private": True},
            "packages/lib/package.json": pkg("lib", "1.4.0"),
            "packages/app/package.json": pkg(
                "app", dependencies={"lib": "workspace:^", "left-pad": "catalog:"}, packageManager="pnpm@10.0.0"
            ),
        },
    )
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "app"): [(404, {})], ("PUT", REGISTRY + "app"): [(201, {})]})
    result = run(registry, workdir, NPM_PACKAGE="packages/app")
    assert result.code == 0, result.output
    sent = registry.put_json()["versions"]["1.0.0"]
    assert sent["dependencies"] == {"lib": "^1.4.0", "left-pad": "^1.3.0"}
    assert "packageManager" not in sent


def test_root_of_a_pnpm_workspace_is_no_longer_refused_as_private(workdir: Path):
    write(
        workdir,
        {
            "pnpm-workspace.yaml": "packages: [packages/*]\n",
            "package.json": {"name": "root", "private": True},
            "packages/lib/package.json": pkg("lib"),
        },
    )
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "lib"): [(404, {})], ("PUT", REGISTRY + "lib"): [(201, {})]})
    result = run(registry, workdir)
    assert result.code == 0, result.output
    assert result.last_line == f"✔ Published 1 workspace package to {REGISTRY}: lib@1.0.0 (dist-tag latest)."


def test_a_pnpm_root_without_package_json_publishes_its_packages(workdir: Path):
    write(workdir, {"pnpm-workspace.yaml": "packages: [packages/*]\n", "packages/lib/package.json": pkg("lib")})
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "lib"): [(404, {})], ("PUT", REGISTRY + "lib"): [(201, {})]})
    result = run(registry, workdir)
    assert result.code == 0, result.output
    assert registry.urls == [("GET", REGISTRY + "lib"), ("PUT", REGISTRY + "lib")]


def test_only_ranges_the_sibling_satisfies_are_edges(tmp_path: Path):
    members = [
        member(tmp_path, "a", devDependencies={"b": "^0.9.0"}),  # an older published b: no edge, no cycle
        member(tmp_path, "b", dependencies={"a": "^1.0.0", "c": "github:x/c"}),
        member(tmp_path, "c", dependencies={"b": "workspace:^5"}),  # workspace: always links
    ]
    ordered, cycles = dependency_order(members)
    assert [m.name for m in ordered] == ["a", "b", "c"]
    assert cycles == []


def test_a_publish_directory_linking_outside_is_refused(tmp_path: Path):
    write(tmp_path, {"package.json": pkg("a", publishConfig={"directory": "out"})})
    (tmp_path / "out").symlink_to("/etc")
    package = PackageJson(json.loads((tmp_path / "package.json").read_text()), b"", "a/package.json")
    with pytest.raises(InputError, match="must name a folder inside the package"):
        pnpm_pack.publish_folder(tmp_path, package, "a")


def test_a_root_without_a_version_is_not_a_package_to_publish(workdir: Path):
    write(
        workdir,
        {
            "package.json": {"name": "monorepo", "workspaces": ["packages/*"]},
            "packages/lib/package.json": pkg("lib"),
        },
    )
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "lib"): [(404, {})], ("PUT", REGISTRY + "lib"): [(201, {})]})
    result = run(registry, workdir)
    assert result.code == 0, result.output
    assert registry.urls == [("GET", REGISTRY + "lib"), ("PUT", REGISTRY + "lib")]


def test_pnpm_packages_without_a_version_are_skipped_as_pnpm_skips_them(workdir: Path):
    write(
        workdir,
        {
            "pnpm-workspace.yaml": "packages: [packages/*, apps/*]\n",
            "packages/lib/package.json": pkg("lib"),
            "apps/web/package.json": {"name": "web", "dependencies": {"lib": "workspace:*"}},
        },
    )
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "lib"): [(404, {})], ("PUT", REGISTRY + "lib"): [(201, {})]})
    result = run(registry, workdir)
    assert result.code == 0, result.output
    assert "Not published (no name or version): apps/web." in result.lines
    assert registry.urls == [("GET", REGISTRY + "lib"), ("PUT", REGISTRY + "lib")]


def test_inside_a_cycle_runtime_dependencies_still_come_first(tmp_path: Path):
    members = [
        member(tmp_path, "b", dependencies={"c": "*"}),  # b needs c at run time
        member(tmp_path, "c", devDependencies={"b": "*"}),  # c only builds with b
        member(tmp_path, "x", dependencies={"y": "*"}),
        member(tmp_path, "y", dependencies={"x": "*"}),  # a runtime cycle: workspace order
    ]
    ordered, cycles = dependency_order(members)
    assert [m.name for m in ordered] == ["c", "b", "x", "y"]
    assert cycles == [["b", "c"], ["x", "y"]]


def test_globs_whose_packages_are_all_excluded_are_refused(workdir: Path):
    write(
        workdir, {"pnpm-workspace.yaml": "packages: [packages/*, '!packages/*']\n", "packages/a/package.json": pkg("a")}
    )
    result = run(ScriptedNpmRegistry({}), workdir)
    assert result.code == 1
    assert result.last_line == (
        "✖ pnpm-workspace.yaml (packages/*, !packages/*) names no folder with a package.json: fix the globs (they are "
        "relative to the workspace root)."
    )

"""package.json rules of the npm publisher: validation, versions, dist-tags, the PUT document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipe.context import PipelinesRun
from pipe.errors import ConfigError, InputError
from pipe.npm.manifest import (
    Dist,
    PackageJson,
    check_not_private,
    check_tag_matches,
    choose_dist_tag,
    name_problem,
    parse_package_json,
    publish_document,
    publish_version,
    read_folder_package_json,
    tarball_manifest_bytes,
    tarball_url,
    validate_name,
    version_manifest,
)
from pipe.npm.normalize import publish_manifest
from pipe.npm.package_tree import FolderTree
from pipe.versioning import SemVer


def context(tag: str | None) -> PipelinesRun:
    return PipelinesRun(tag, None, None, None, "acme", "widget", None, None)


def test_broken_json_names_the_place_and_the_fix():
    with pytest.raises(InputError) as caught:
        parse_package_json(b'{"name": "x",\n "version": }', "pkg/package.json")
    assert str(caught.value) == (
        "pkg/package.json is not valid JSON (Expecting value at line 2, column 13): "
        "fix the syntax (`npm pkg get name` shows whether npm can read it)."
    )


def test_json_that_is_not_an_object_is_refused():
    with pytest.raises(InputError, match=r"must hold a JSON object"):
        parse_package_json(b"[1, 2]", "package.json")


def test_folder_without_package_json(tmp_path: Path):
    with pytest.raises(InputError) as caught:
        read_folder_package_json(tmp_path, "lib")
    assert str(caught.value).startswith("lib has no package.json: point NPM_PACKAGE at the package folder")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Widget", "capital letters"),
        (".hidden", "starts with . or _"),
        ("_under", "starts with . or _"),
        ("node_modules", "a reserved name"),
        ("a b", "contains characters that are not URL-safe"),
        ("@scope", "a scoped name must look like @scope/name"),
        ("@scope/a/b", "a scoped name must look like @scope/name"),
        ("x" * 215, "longer than 214 characters"),
        ("wid(get)", "contains one of ~'!()*"),
    ],
)
def test_invalid_names(name: str, problem: str):
    assert name_problem(name) == problem


@pytest.mark.parametrize("name", ["widget", "@acme/widget", "a.b-c_d", "x" * 214])
def test_valid_names(name: str):
    assert name_problem(name) is None


def test_missing_name_and_version_messages():
    with pytest.raises(InputError) as caught:
        validate_name(None, "package.json")
    assert (
        str(caught.value) == 'package.json has no "name": add "name": "<package name>" (for example "@scope/my-lib").'
    )
    with pytest.raises(InputError) as caught:
        publish_version({}, None, "package.json")
    assert str(caught.value) == 'package.json has no "version": add "version": "1.0.0", or set VERSION.'


def test_invalid_semver_in_package_json():
    with pytest.raises(InputError) as caught:
        publish_version({"version": "1.2"}, None, "package.json")
    assert str(caught.value) == (
        'package.json "version" "1.2" is not a semantic version: use MAJOR.MINOR.PATCH '
        '(for example "1.4.0" or "2.0.0-beta.1"), or set VERSION.'
    )


def test_version_variable_wins_and_loses_its_v():
    assert str(publish_version({"version": "0.0.0"}, "v1.4.2", "package.json")) == "1.4.2"


def test_invalid_version_variable():
    with pytest.raises(ConfigError, match=r"^VERSION 'release-7' is not a semantic version"):
        publish_version({"version": "1.0.0"}, "release-7", "package.json")


def test_build_metadata_is_dropped_as_npm_does():
    assert str(publish_version({"version": "1.2.3+build.9"}, None, "package.json")) == "1.2.3"


def test_private_package_is_refused():
    with pytest.raises(InputError) as caught:
        check_not_private({"private": True}, "package.json")
    assert str(caught.value) == (
        'package.json has "private": true, which tells npm never to publish it: remove the "private" '
        "field to publish this package."
    )


def test_tag_pipeline_for_another_version_fails_with_the_fix():
    with pytest.raises(ConfigError) as caught:
        check_tag_matches(context("v1.3.0"), SemVer.parse("1.2.0"), from_variable=False)
    assert str(caught.value) == (
        "this tag pipeline is for v1.3.0 but the version to publish is 1.2.0 (from package.json): "
        "set VERSION: $BITBUCKET_TAG in the pipe's variables, or bump package.json's version to 1.3.0 "
        "and tag that commit."
    )


def test_tag_pipeline_checks_pass_for_same_version_or_non_semver_tag():
    check_tag_matches(context("v1.3.0"), SemVer.parse("1.3.0"), from_variable=True)
    check_tag_matches(context("nightly"), SemVer.parse("1.2.0"), from_variable=False)
    check_tag_matches(context(None), SemVer.parse("1.2.0"), from_variable=False)


@pytest.mark.parametrize(
    ("explicit", "manifest", "version", "expected"),
    [
        (None, {}, "1.0.0", "latest"),
        (None, {}, "2.0.0-beta.2", "beta"),
        (None, {}, "2.0.0-1", "next"),
        ("canary", {}, "1.0.0", "canary"),
        (None, {"publishConfig": {"tag": "legacy"}}, "1.0.0", "legacy"),
        ("next", {"publishConfig": {"tag": "legacy"}}, "1.0.0", "next"),
    ],
)
def test_dist_tag_choice(explicit, manifest, version, expected):
    assert choose_dist_tag(explicit, manifest, SemVer.parse(version)) == expected


@pytest.mark.parametrize("tag", ["1.2", "v2", "has space", "a/b"])
def test_dist_tags_that_look_like_versions_are_refused(tag: str):
    with pytest.raises(ConfigError, match=rf"^NPM_DIST_TAG '{tag}' is not a usable dist-tag"):
        choose_dist_tag(tag, {}, SemVer.parse("1.0.0"))


def test_unchanged_manifest_goes_into_the_tarball_byte_for_byte():
    raw = b'{"name":"w",   "version":"1.0.0"}'
    assert tarball_manifest_bytes(PackageJson({"name": "w", "version": "1.0.0"}, raw, "p"), "1.0.0") == raw


def test_version_override_rewrites_the_tarball_manifest():
    package = PackageJson({"name": "w", "version": "0.0.0", "main": "i.js"}, b"{}", "p")
    written = json.loads(tarball_manifest_bytes(package, "1.4.0"))
    assert written == {"name": "w", "version": "1.4.0", "main": "i.js"}


def test_readme_prefers_markdown(tmp_path: Path):
    (tmp_path / "README").write_text("plain")
    (tmp_path / "readme.md").write_text("# md")
    manifest = publish_manifest({"name": "w"}, "1.0.0", FolderTree(tmp_path), from_tarball=False)
    assert (manifest["readme"], manifest["readmeFilename"]) == ("# md", "readme.md")


def test_version_manifest_is_normalised_as_npm_sends_it(tmp_path: Path):
    # What npm 11 sends for this folder (tests/integration/test_npm_manifest_parity.py asks npm itself).
    (tmp_path / "README.md").write_text("# hi")
    dist = Dist("sha512-abc", "f00", 10)
    data = {"name": "@acme/w", "version": "0.0.0", "_private": "x", "_id": "old", "bin": "cli.js"}
    manifest = version_manifest(data, "1.0.0", FolderTree(tmp_path), dist, "https://npm.example/acme/")
    assert manifest == {
        "name": "@acme/w",
        "version": "1.0.0",
        "bin": {"w": "cli.js"},
        "readme": "# hi",
        "readmeFilename": "README.md",
        "_id": "@acme/w@1.0.0",
        "description": "",  # the README's first paragraph that is no heading: none
        "dist": {
            "integrity": "sha512-abc",
            "shasum": "f00",
            "tarball": "http://npm.example/acme/@acme/w/-/@acme/w-1.0.0.tgz",
        },
    }


def test_publish_document_carries_tags_and_access():
    manifest = {"name": "w", "version": "1.0.0", "description": "d", "publishConfig": {"access": "public"}}
    document = publish_document(manifest, {"beta": "1.0.0"})
    assert document == {
        "_id": "w",
        "name": "w",
        "description": "d",
        "dist-tags": {"beta": "1.0.0"},
        "versions": {"1.0.0": manifest},
        "access": "public",
    }


def test_tarball_url_uses_the_unscoped_file_name():
    assert tarball_url("http://r/", "@s/p", "1.0.0") == "http://r/@s/p/-/p-1.0.0.tgz"

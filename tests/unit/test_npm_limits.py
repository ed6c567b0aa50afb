"""npm inputs past what npm itself accepts: versions npm's semver refuses, and package.json
documents nested beyond any real manifest. Each ends in one ✖ before any request."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from pipe.errors import ConfigError, InputError
from pipe.npm.manifest import (
    MAX_JSON_NESTING,
    MAX_SAFE_INTEGER,
    NOT_SEMVER,
    parse_package_json,
    publish_version,
    read_npm_version,
)
from pipe.versioning import SemVer
from tests.unit.npm_fake import ScriptedNpmRegistry
from tests.unit.test_npm_publish import run


def nested(depth: int) -> str:
    """A package.json whose `config` holds `depth` levels of objects (the document itself is one more)."""
    return '{"name": "widget", "version": "1.0.0", "config": ' + '{"a": ' * depth + "1" + "}" * (depth + 1)


def test_parts_above_the_largest_safe_integer_are_refused():
    assert read_npm_version(f"{MAX_SAFE_INTEGER}.0.0") == SemVer(MAX_SAFE_INTEGER, 0, 0)
    for text, part in (
        ("99999999999999999999.0.0", "major"),
        (f"0.{MAX_SAFE_INTEGER + 1}.0", "minor"),
        (f"0.0.{MAX_SAFE_INTEGER + 2}-rc.1", "patch"),
    ):
        problem = read_npm_version(text)
        assert problem == f"its {part} number is above 9007199254740991, the largest npm's semver accepts", text


def test_versions_longer_than_npm_allows_are_refused_whatever_their_digits():
    assert read_npm_version("1.0.0-" + "a" * 250) != NOT_SEMVER  # 256 characters: still npm's
    assert read_npm_version("1.0.0-" + "a" * 251) == "longer than 256 characters, the most npm's semver accepts"
    # Thousands of digits are refused by length, never handed to int() (which refuses them itself).
    assert read_npm_version("9" * 5000 + ".0.0").startswith("longer than 256")


def test_package_json_and_version_variable_messages():
    with pytest.raises(InputError) as caught:
        publish_version({"version": "99999999999999999999.0.0"}, None, "./package.json")
    assert str(caught.value) == (
        './package.json "version" "99999999999999999999.0.0" cannot be published (its major number is above '
        "9007199254740991, the largest npm's semver accepts, so npm could not install it): use a smaller version, "
        "or set VERSION."
    )
    with pytest.raises(ConfigError) as caught:
        publish_version({"version": "1.0.0"}, "v1.99999999999999999999.0", "./package.json")
    assert str(caught.value).startswith("VERSION 'v1.99999999999999999999.0' cannot be published (its minor number")
    long = "1.0.0-" + "x" * 300
    with pytest.raises(InputError) as caught:
        publish_version({"version": long}, None, "./package.json")
    assert f'"{long[:80]}…" cannot be published (longer than 256 characters' in str(caught.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {},
            '✖ ./package.json "version" "99999999999999999999.0.0" cannot be published (its major number is above '
            "9007199254740991",
        ),
        ({"VERSION": "9007199254740992.0.0"}, "✖ VERSION '9007199254740992.0.0' cannot be published (its major"),
    ],
)
def test_a_version_npm_refuses_is_refused_before_any_request(workdir: Path, env, expected):
    (workdir / "package.json").write_text(json.dumps({"name": "widget", "version": "99999999999999999999.0.0"}))
    registry = ScriptedNpmRegistry({})
    result = run(registry, workdir, **env)
    assert result.code == 1
    assert result.last_line.startswith(expected), result.output
    assert [line for line in result.lines if line.startswith("✖")] == [result.last_line]
    assert registry.requests == []


def test_nesting_up_to_the_limit_is_read_and_beyond_it_refused():
    assert parse_package_json(nested(MAX_JSON_NESTING - 1).encode(), "p").data["name"] == "widget"
    with pytest.raises(InputError) as caught:
        parse_package_json(nested(MAX_JSON_NESTING).encode(), "pkg/package.json")
    assert str(caught.value) == (
        "pkg/package.json nests objects or arrays more than 100 levels deep: no package.json needs that; keep its "
        "fields to the package's metadata."
    )


def test_arrays_count_as_levels_too():
    text = '{"name": "w", "files": ' + "[" * MAX_JSON_NESTING + "]" * MAX_JSON_NESTING + "}"
    with pytest.raises(InputError, match="more than 100 levels deep"):
        parse_package_json(text.encode(), "p")


def test_a_package_json_nested_100000_levels_ends_in_one_line_quickly(workdir: Path):
    (workdir / "package.json").write_text(nested(100_000))
    registry = ScriptedNpmRegistry({})
    started = time.monotonic()
    result = run(registry, workdir)
    assert time.monotonic() - started < 5
    assert result.code == 1
    assert result.lines == [
        "✖ ./package.json nests objects or arrays more than 100 levels deep: no package.json needs that; keep its "
        "fields to the package's metadata."
    ]
    assert registry.requests == []


def test_the_same_inside_a_tgz_names_the_tarball(workdir: Path):
    data = nested(100_000).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("package/package.json")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    (workdir / "w.tgz").write_bytes(buffer.getvalue())
    result = run(ScriptedNpmRegistry({}), workdir, NPM_PACKAGE="w.tgz")
    assert result.code == 1
    assert result.last_line.startswith("✖ w.tgz:package.json nests objects or arrays more than 100 levels deep")


def test_a_workspace_member_nested_too_deep_names_its_file(workdir: Path):
    (workdir / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    (workdir / "packages" / "a").mkdir(parents=True)
    (workdir / "packages" / "a" / "package.json").write_text(nested(100_000))
    registry = ScriptedNpmRegistry({})
    result = run(registry, workdir)
    assert result.code == 1
    assert "packages/a/package.json nests objects or arrays more than 100 levels deep" in result.last_line
    assert registry.requests == []

"""The npm publish PUT under the shared retry policy: sent again only after a re-read of the
packument shows the version absent, and only after a transient failure; bounded like every retry."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

import pipe.http
from tests.unit.npm_fake import ScriptedNpmRegistry
from tests.unit.test_npm_publish import REGISTRY, pack_once, packument, run

PACKAGE = REGISTRY + "widget"


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(pipe.http, "DEFAULT_POLICY", pipe.http.RetryPolicy(attempts=3, backoff=0.0, jitter=0.0))


@pytest.fixture
def package(workdir: Path) -> Path:
    (workdir / "package.json").write_text('{"name": "widget", "version": "1.2.0", "main": "index.js"}')
    (workdir / "index.js").write_text("module.exports = 42;\n")
    return workdir


@pytest.mark.parametrize("failure", [(503, {"error": "unavailable"}), (429, {}), requests.ConnectionError("reset")])
def test_put_is_sent_again_only_after_the_re_read_shows_the_version_absent(package: Path, failure):
    registry = ScriptedNpmRegistry({("GET", PACKAGE): [(404, {}), (404, {})], ("PUT", PACKAGE): [failure, (201, {})]})
    result = run(registry, package)
    assert result.code == 0, result.output
    assert registry.methods == ["GET", "PUT", "GET", "PUT"]
    assert "⚠ The registry does not have widget@1.2.0; uploading again." in result.lines
    assert result.last_line == f"✔ Published widget@1.2.0 to {REGISTRY} with dist-tag latest."


def test_no_second_put_when_the_re_read_finds_the_version(package: Path):
    tgz = pack_once(package)
    registry = ScriptedNpmRegistry(
        {("GET", PACKAGE): [(404, {}), (200, packument("1.2.0", tgz))], ("PUT", PACKAGE): [(502, {}), (201, {})]}
    )
    result = run(registry, package)
    assert result.code == 0, result.output
    assert registry.methods == ["GET", "PUT", "GET"]


def test_retries_are_bounded_and_end_in_one_clear_line(package: Path):
    registry = ScriptedNpmRegistry({("GET", PACKAGE): [(404, {})], ("PUT", PACKAGE): [(503, {"error": "down"})]})
    result = run(registry, package)
    assert result.code == 1
    assert registry.methods.count("PUT") == 3  # the policy's attempts
    assert result.last_line.startswith(f"✖ publishing widget@1.2.0 failed: {PACKAGE} answered 503 (down)")
    assert "re-run the step" in result.last_line


def test_a_refusal_is_never_retried(package: Path):
    registry = ScriptedNpmRegistry({("GET", PACKAGE): [(404, {})], ("PUT", PACKAGE): [(401, {"error": "bad token"})]})
    result = run(registry, package)
    assert result.code == 1
    assert registry.methods == ["GET", "PUT"]

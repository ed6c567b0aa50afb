"""The npm publisher end to end through the CLI, with the registry faked at the HTTP seam (a transport)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import logging
from pathlib import Path

import pytest
import requests

from pipe.npm import registry as npm_registry
from pipe.npm.registry import PublishBody, escape_name
from pipe.npm.tarball import compute_dist
from pipe.progress import UploadProgress
from tests.conftest import assert_no_secret, base_env, run_in_process
from tests.unit.npm_fake import ScriptedNpmRegistry

REGISTRY = "https://npm.example/acme/"


@pytest.fixture
def package(workdir: Path) -> Path:
    (workdir / "package.json").write_text(json.dumps({"name": "widget", "version": "1.2.0", "main": "index.js"}))
    (workdir / "index.js").write_text("module.exports = 42;\n")
    (workdir / "README.md").write_text("# widget\n")
    return workdir


def run(registry: ScriptedNpmRegistry, cwd: Path, **env: str):
    result = run_in_process(base_env(PACKAGE_TYPE="npm", REGISTRY_URL=REGISTRY, **env), cwd, transport=registry)
    assert_no_secret(result.output)
    return result


def put_document(registry: ScriptedNpmRegistry) -> dict:
    sent, *_ = registry.puts()
    assert sent.url == REGISTRY + "widget"
    assert int(sent.headers["Content-Length"]) == len(sent.body)
    return json.loads(sent.body)


def published_tarball(document: dict) -> bytes:
    (attachment,) = document["_attachments"].values()
    data = base64.b64decode(attachment["data"])
    assert attachment["length"] == len(data)
    return data


def packument(version: str, tgz: bytes, tags: dict | None = None) -> dict:
    digest = base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    return {
        "name": "widget",
        "dist-tags": tags or {"latest": version},
        "versions": {
            version: {"dist": {"integrity": f"sha512-{digest}", "tarball": f"{REGISTRY}widget/-/widget-{version}.tgz"}}
        },
    }


def pack_once(package: Path) -> bytes:
    """The tarball the publisher makes for `package` (published to a fake empty registry)."""
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(404, {})], ("PUT", REGISTRY + "widget"): [(201, {})]}
    )
    assert run(registry, package).code == 0
    return published_tarball(put_document(registry))


def test_first_publish_sends_the_document_and_writes_results(package: Path, tmp_path: Path):
    outputs = tmp_path / "outputs"
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(404, {})], ("PUT", REGISTRY + "widget"): [(201, {})]}
    )
    result = run(registry, package, BITBUCKET_PIPELINES_VARIABLES_PATH=str(outputs))
    assert result.code == 0, result.output
    assert result.last_line == f"✔ Published widget@1.2.0 to {REGISTRY} with dist-tag latest."
    document = put_document(registry)
    tgz = published_tarball(document)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    manifest = document["versions"]["1.2.0"]
    assert document["dist-tags"] == {"latest": "1.2.0"}
    assert list(document["_attachments"]) == ["widget-1.2.0.tgz"]
    assert manifest["_id"] == "widget@1.2.0"
    assert manifest["readme"] == "# widget\n"
    assert manifest["dist"] == {
        "integrity": integrity,
        "shasum": hashlib.sha1(tgz).hexdigest(),  # noqa: S324 - npm's legacy shasum
        # npm publish's form: http:// whatever the registry's scheme (the parity test asks npm).
        "tarball": "http://npm.example/acme/widget/-/widget-1.2.0.tgz",
    }
    assert outputs.read_text() == (
        f"PUBLISHED_NAME=widget\nPUBLISHED_VERSION=1.2.0\nNPM_INTEGRITY={integrity}\nNPM_DIST_TAG=latest\n"
    )


def test_version_variable_goes_into_tarball_and_manifest(package: Path):
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(404, {})], ("PUT", REGISTRY + "widget"): [(201, {})]}
    )
    result = run(registry, package, VERSION="v2.0.0", BITBUCKET_TAG="v2.0.0")
    assert result.code == 0, result.output
    document = put_document(registry)
    assert list(document["versions"]) == ["2.0.0"]
    with gzip.open(io.BytesIO(published_tarball(document))) as raw:
        assert b'"version": "2.0.0"' in raw.read()


def test_tag_pipeline_for_another_version_stops_before_any_request(package: Path):
    registry = ScriptedNpmRegistry({})
    result = run(registry, package, BITBUCKET_TAG="v1.3.0")
    assert result.code == 1
    assert result.last_line.startswith("✖ this tag pipeline is for v1.3.0 but the version to publish is 1.2.0")
    assert registry.requests == []


def test_same_bytes_already_published_is_a_success_without_upload(package: Path):
    tgz = pack_once(package)
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "widget"): [(200, packument("1.2.0", tgz))]})
    result = run(registry, package)
    assert result.code == 0, result.output
    assert result.last_line == (
        f"✔ widget@1.2.0 at {REGISTRY} is already published with identical contents: nothing to publish."
    )
    assert registry.puts() == []


def test_same_files_in_another_gzip_count_as_identical(package: Path):
    tgz = pack_once(package)
    other_gzip = gzip.compress(gzip.decompress(tgz), compresslevel=1, mtime=12345)
    assert other_gzip != tgz
    tarball = f"{REGISTRY}widget/-/widget-1.2.0.tgz"
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(200, packument("1.2.0", other_gzip))], ("GET", tarball): [(200, other_gzip)]}
    )
    result = run(registry, package)
    assert result.code == 0, result.output
    assert "already published with identical contents" in result.last_line
    assert registry.puts() == []


def test_a_tarball_url_written_as_npm_writes_it_is_fetched_over_https(package: Path):
    tgz = pack_once(package)
    other_gzip = gzip.compress(gzip.decompress(tgz), compresslevel=1, mtime=12345)
    listed = packument("1.2.0", other_gzip)
    listed["versions"]["1.2.0"]["dist"]["tarball"] = "http://npm.example/acme/widget/-/widget-1.2.0.tgz"
    registry = ScriptedNpmRegistry(
        {
            ("GET", REGISTRY + "widget"): [(200, listed)],
            ("GET", f"{REGISTRY}widget/-/widget-1.2.0.tgz"): [(200, other_gzip)],
        }
    )
    result = run(registry, package)
    assert result.code == 0, result.output
    download = registry.requests[-1]
    assert download.url == f"{REGISTRY}widget/-/widget-1.2.0.tgz"  # https, as the registry: credentials stay safe
    assert download.headers["Authorization"].startswith("Basic ")


def test_different_contents_under_the_same_version_fail(package: Path):
    tgz = pack_once(package)
    (package / "index.js").write_text("module.exports = 43;\n")
    tarball = f"{REGISTRY}widget/-/widget-1.2.0.tgz"
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(200, packument("1.2.0", tgz))], ("GET", tarball): [(200, tgz)]}
    )
    result = run(registry, package)
    assert result.code == 1
    assert result.last_line == (
        f"✖ widget@1.2.0 is already published at {REGISTRY} with different contents: versions are immutable; "
        "bump the version (package.json's version, or VERSION) and re-run."
    )
    assert registry.puts() == []


def test_conflict_answer_is_settled_by_re_reading(package: Path):
    tgz = pack_once(package)
    registry = ScriptedNpmRegistry(
        {
            ("GET", REGISTRY + "widget"): [(404, {}), (200, packument("1.2.0", tgz))],
            ("PUT", REGISTRY + "widget"): [(409, {"error": "this package is already present"})],
        }
    )
    result = run(registry, package)
    assert result.code == 0, result.output
    assert "already published with identical contents" in result.last_line


def test_broken_connection_is_settled_by_re_reading(package: Path):
    tgz = pack_once(package)
    registry = ScriptedNpmRegistry(
        {
            ("GET", REGISTRY + "widget"): [(404, {}), (200, packument("1.2.0", tgz))],
            ("PUT", REGISTRY + "widget"): [requests.ConnectionError("reset")],
        }
    )
    result = run(registry, package)
    assert result.code == 0, result.output
    assert "⚠ The upload broke off (ConnectionError); checking whether the registry got it." in result.lines
    assert result.last_line == f"✔ Published widget@1.2.0 to {REGISTRY} with dist-tag latest."


@pytest.mark.parametrize(
    ("status", "said", "expected"),
    [
        (
            403,
            "user pipe-user is not allowed to publish package widget",
            f"✖ publishing widget@1.2.0 failed: {REGISTRY}widget answered 403 (user pipe-user is not allowed to "
            "publish package widget): no permission to publish widget: create the package widget in Bitbucket "
            "Packages and link it to this repository, and make sure the token may write packages "
            "(BITBUCKET_PACKAGES_TOKEN from Pipelines, or an API token with write:package:bitbucket).",
        ),
        (
            413,
            "request entity too large",
            f"✖ publishing widget@1.2.0 failed: {REGISTRY}widget answered 413 (request entity too large): the "
            "registry refused the package as too large: make it smaller (check the packed file list for build "
            "output or assets that do not belong in it, and use `files` or .npmignore).",
        ),
        (
            404,
            "not found",
            f"✖ publishing widget@1.2.0 failed: {REGISTRY}widget answered 404 (not found): the registry has no "
            f"place for widget at {REGISTRY}: check REGISTRY_URL / WORKSPACE, the package's scope, and create the "
            "package widget in Bitbucket Packages and link it to this repository, and make sure the token may "
            "write packages (BITBUCKET_PACKAGES_TOKEN from Pipelines, or an API token with write:package:bitbucket).",
        ),
    ],
)
def test_refusals_become_actions(package: Path, status: int, said: str, expected: str):
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(404, {})], ("PUT", REGISTRY + "widget"): [(status, {"error": said})]}
    )
    result = run(registry, package)
    assert result.code == 1
    assert result.last_line == expected


def test_rejected_credentials(package: Path):
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "widget"): [(401, {"error": "bad username/password"})]})
    result = run(registry, package)
    assert result.code == 1
    assert result.last_line == (
        f"✖ reading widget from the registry failed: {REGISTRY}widget answered 401 (bad username/password): the "
        "registry did not accept the credentials: check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN "
        "(an Atlassian API token needs the write:package:bitbucket scope)."
    )


def test_latest_never_moves_down(package: Path, tmp_path: Path):
    outputs = tmp_path / "outputs"
    higher = {"name": "widget", "dist-tags": {"latest": "3.0.0"}, "versions": {"3.0.0": {}}}
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(200, higher)], ("PUT", REGISTRY + "widget"): [(201, {})]}
    )
    result = run(registry, package, BITBUCKET_PIPELINES_VARIABLES_PATH=str(outputs))
    assert result.code == 0, result.output
    assert put_document(registry)["dist-tags"] == {"latest": "3.0.0"}
    assert (
        "⚠ latest stays on 3.0.0, which is higher than 1.2.0; set NPM_DIST_TAG to give this version a tag of its own."
    ) in result.lines
    assert result.last_line == f"✔ Published widget@1.2.0 to {REGISTRY} with no dist-tag (latest stays)."
    assert "NPM_DIST_TAG" not in outputs.read_text()


def test_prerelease_gets_its_own_tag(package: Path):
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(404, {})], ("PUT", REGISTRY + "widget"): [(201, {})]}
    )
    result = run(registry, package, VERSION="2.0.0-beta.1")
    assert result.code == 0, result.output
    assert put_document(registry)["dist-tags"] == {"beta": "2.0.0-beta.1"}


def test_dry_run_lists_files_and_writes_nothing(package: Path):
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "widget"): [(404, {})]})
    result = run(registry, package, DRY_RUN="true")
    assert result.code == 0, result.output
    assert "Files in the package (3):" in result.lines
    assert any(line.startswith("  index.js (") for line in result.lines)
    assert result.last_line == (
        f"✔ Dry run: would publish widget@1.2.0 to {REGISTRY} with dist-tag latest; nothing was written."
    )
    assert registry.puts() == []


def test_likely_secrets_are_warned_about(package: Path):
    (package / ".env").write_text("TOKEN=x\n")
    registry = ScriptedNpmRegistry({("GET", REGISTRY + "widget"): [(404, {})]})
    result = run(registry, package, DRY_RUN="true")
    assert result.code == 0
    assert (
        "⚠ The package includes files that may hold secrets: .env. If they must not be published, list what to "
        'publish in package.json\'s "files" field or exclude them in .npmignore.'
    ) in result.lines


def test_tgz_is_published_byte_for_byte(package: Path):
    tgz = pack_once(package)
    (package / "dist").mkdir()
    (package / "dist" / "widget-1.2.0.tgz").write_bytes(tgz)
    registry = ScriptedNpmRegistry(
        {("GET", REGISTRY + "widget"): [(404, {})], ("PUT", REGISTRY + "widget"): [(201, {})]}
    )
    result = run(registry, package, NPM_PACKAGE="dist/widget-1.2.0.tgz")
    assert result.code == 0, result.output
    assert published_tarball(put_document(registry)) == tgz


def test_tgz_with_another_version_than_version_variable(package: Path):
    tgz = pack_once(package)
    (package / "w.tgz").write_bytes(tgz)
    result = run(ScriptedNpmRegistry({}), package, NPM_PACKAGE="w.tgz", VERSION="9.9.9")
    assert result.code == 1
    assert result.last_line.startswith("✖ w.tgz holds version 1.2.0 but 9.9.9 is to be published")


@pytest.mark.parametrize(
    ("setup", "npm_package", "expected"),
    [
        (lambda d: None, "nowhere", "✖ NPM_PACKAGE 'nowhere' does not exist in "),
        (lambda d: (d / "x.tgz").write_bytes(b"not gzip"), "x.tgz", "✖ x.tgz is not a readable gzip tarball"),
        (lambda d: (d / "lib").mkdir(), "lib", "✖ lib has no package.json"),
        (
            lambda d: (d / "package.json").write_text('{"name": "w", "version": "1.0.0", "private": true}'),
            ".",
            '✖ ./package.json has "private": true',
        ),
        (lambda d: (d / "package.json").write_text('{"version": "1.0.0"}'), ".", '✖ ./package.json has no "name"'),
        (lambda d: (d / "package.json").write_text('{"name": "w"}'), ".", '✖ ./package.json has no "version"'),
        (lambda d: (d / "package.json").write_text('{"name": "w",'), ".", "✖ ./package.json is not valid JSON"),
    ],
)
def test_bad_input_is_refused_before_any_request(workdir: Path, setup, npm_package, expected):
    setup(workdir)
    registry = ScriptedNpmRegistry({})
    result = run(registry, workdir, NPM_PACKAGE=npm_package)
    assert result.code == 1
    assert result.last_line.startswith(expected), result.output
    assert registry.requests == []


def test_body_streams_valid_json_in_small_pieces(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(npm_registry, "ENCODE_CHUNK", 3 * 5)
    data = bytes(range(256)) * 41 + b"tail"
    tgz = tmp_path / "p.tgz"
    tgz.write_bytes(data)
    body = PublishBody({"name": "@s/p", "versions": {}}, "@s/p", "1.0.0", tgz, len(data), logging.getLogger("t"))
    pieces = []
    while piece := body.read(7):
        assert len(piece) <= 7
        pieces.append(piece)
    sent = b"".join(pieces)
    assert len(sent) == len(body)
    document = json.loads(sent)
    assert document["_attachments"]["@s/p-1.0.0.tgz"]["length"] == len(data)
    assert base64.b64decode(document["_attachments"]["@s/p-1.0.0.tgz"]["data"]) == data


def test_progress_reports_once_per_interval(caplog):
    now = [0.0]
    log = logging.getLogger("progress-test")
    progress = UploadProgress(100 * 1024 * 1024, log, interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for _ in range(100):
            now[0] += 1
            progress.advance(1024 * 1024)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 9
    assert lines[0] == "Uploading: 10.0 MB of 100.0 MB sent (10%), 1.0 MB/s"


def test_small_uploads_print_no_progress(caplog):
    now = [0.0]
    progress = UploadProgress(1000, logging.getLogger("progress-small"), interval=1, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="progress-small"):
        for _ in range(10):
            now[0] += 5
            progress.advance(100)
    assert caplog.records == []


def test_dist_in_one_pass(tmp_path: Path):
    path = tmp_path / "x"
    path.write_bytes(b"abc" * 1000)
    dist = compute_dist(path)
    assert dist.shasum == hashlib.sha1(b"abc" * 1000).hexdigest()  # noqa: S324
    assert dist.integrity == "sha512-" + base64.b64encode(hashlib.sha512(b"abc" * 1000).digest()).decode()
    assert dist.size == 3000


def test_scoped_names_are_escaped():
    assert escape_name("@acme/widget") == "@acme%2fwidget"

"""ACTION=cleanup for npm against the real Verdaccio of sandbox/ (unpublish allowed for the writer
only): what is left is checked with the registry's packument, its tarballs and the real npm
client (`npm install` of kept and deleted versions)."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.integration.test_npm_publish import npm_view, pipe_env, publish, write_package

# 0.9.0-sha.2 takes the dist-tag `sha` from 0.9.0-sha.1 (the prerelease word is its default tag).
VERSIONS = ("0.9.0-sha.1", "0.9.0-sha.2", "1.0.0", "1.1.0", "1.2.0", "2.0.0-beta.1", "2.0.0")


def publish_versions(sandbox, folder: Path, name: str, versions=VERSIONS) -> None:
    for version in versions:
        write_package(folder, name, version, body=f"module.exports = {json.dumps(version)};\n")
        result = publish(sandbox, folder)
        assert result.code == 0, result.output


def set_dist_tag(sandbox, name: str, tag: str, version: str) -> None:
    answer = requests.put(
        f"{sandbox.npm_registry}-/package/{name.replace('/', '%2f')}/dist-tags/{tag}",
        data=json.dumps(version),
        headers={"Content-Type": "application/json"},
        auth=sandbox.writer,
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text


def packument(sandbox, name: str) -> dict:
    answer = requests.get(
        f"{sandbox.npm_registry}{name.replace('/', '%2f')}?write=true", auth=sandbox.writer, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def tarball_status(sandbox, name: str, version: str) -> int:
    file = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
    answer = requests.get(f"{sandbox.npm_registry}{name}/-/{file}", auth=sandbox.writer, timeout=30)
    return answer.status_code


def cleanup(sandbox, folder: Path, tmp_path: Path, **rules: str):
    outputs = tmp_path / f"outputs-{len(list(tmp_path.glob('outputs-*')))}"
    result = publish(
        sandbox,
        folder,
        ACTION="cleanup",
        BITBUCKET_PIPELINES_VARIABLES_PATH=str(outputs),
        BITBUCKET_PIPE_STORAGE_DIR=str(tmp_path / "storage"),
        **rules,
    )
    return result, outputs.read_text() if outputs.exists() else ""


def test_cleanup_unpublishes_by_the_rules_and_keeps_dist_tags_and_the_newest(sandbox, unique, workdir, tmp_path):
    name = f"@acme/{unique('clean-npm')}"
    publish_versions(sandbox, workdir, name)
    set_dist_tag(sandbox, name, "canary", "1.0.0")
    result, outputs = cleanup(sandbox, workdir, tmp_path, KEEP_RELEASES="2", DELETE_MATCHING="*-sha.*")
    assert result.code == 0, result.output
    assert "  keep   1.0.0         protected: dist-tag canary" in result.lines
    assert "  keep   2.0.0-beta.1  protected: dist-tag beta" in result.lines
    assert "  keep   2.0.0         protected: newest release" in result.lines
    assert "  keep   0.9.0-sha.2   protected: dist-tag sha" in result.lines
    assert "  delete 1.1.0         older than the 2 newest releases" in result.lines
    assert result.output.index("Cleanup plan for npm package") < result.output.index("Unpublished")
    assert result.last_line == f"✔ Deleted 2 in npm package {name}: 0.9.0-sha.1 1.1.0; 5 kept."
    assert "DELETED_COUNT=2\nDELETED_VERSIONS=0.9.0-sha.1 1.1.0\n" in outputs
    summary = json.loads((tmp_path / "storage" / "bitbucket-packages-publish.json").read_text())
    assert summary["details"]["deleted"] == ["0.9.0-sha.1", "1.1.0"]

    # The packument lists exactly the kept versions, dist-tags untouched, deleted tarballs gone.
    document = packument(sandbox, name)
    assert sorted(document["versions"]) == ["0.9.0-sha.2", "1.0.0", "1.2.0", "2.0.0", "2.0.0-beta.1"]
    assert document["dist-tags"] == {"latest": "2.0.0", "beta": "2.0.0-beta.1", "canary": "1.0.0", "sha": "0.9.0-sha.2"}
    assert [tarball_status(sandbox, name, v) for v in ("0.9.0-sha.1", "1.1.0", "1.2.0")] == [404, 404, 200]
    assert npm_view(sandbox, name, "versions") == ["0.9.0-sha.2", "1.0.0", "1.2.0", "2.0.0-beta.1", "2.0.0"]

    # The real client: every kept version installs, a deleted one fails cleanly.
    for kept in ("1.0.0", "1.2.0", "2.0.0"):
        installed = sandbox.run("npm-install", str(tmp_path / f"consumer-{kept}"), f"{name}@{kept}")
        assert installed.returncode == 0, installed.stderr
    missing = sandbox.run("npm-install", str(tmp_path / "consumer-gone"), f"{name}@1.1.0")
    assert missing.returncode != 0
    assert "ETARGET" in missing.stderr or "No matching version" in missing.stderr, missing.stderr

    again, _ = cleanup(sandbox, workdir, tmp_path, KEEP_RELEASES="2", DELETE_MATCHING="*-sha.*")
    assert again.last_line == f"✔ Nothing to delete in npm package {name}; 5 kept."


def test_dry_run_lists_the_plan_and_writes_nothing(sandbox, unique, workdir, tmp_path):
    name = unique("clean-npm-dry")
    publish_versions(sandbox, workdir, name)
    before = packument(sandbox, name)
    result, outputs = cleanup(sandbox, workdir, tmp_path, KEEP_RELEASES="1", DRY_RUN="true")
    assert result.code == 0, result.output
    assert "(dry run: nothing is deleted): 3 to delete, 4 to keep" in result.output
    assert result.last_line == (
        f"✔ Dry run: would delete 3 in npm package {name} (1.2.0 1.1.0 1.0.0); 4 kept; nothing was deleted."
    )
    after = packument(sandbox, name)
    assert after["_rev"] == before["_rev"]
    assert after["versions"].keys() == before["versions"].keys()
    assert all(tarball_status(sandbox, name, v) == 200 for v in VERSIONS)
    assert "DELETED_COUNT=0\nDELETED_VERSIONS=\n" in outputs


def test_age_rule_true_or_false_for_now(sandbox, unique, workdir, tmp_path):
    """Versions were published seconds ago: older than 1 day is false, older than 0 days true."""
    name = unique("clean-npm-age")
    publish_versions(sandbox, workdir, name, ("1.0.0", "1.1.0", "2.0.0"))
    young, _ = cleanup(sandbox, workdir, tmp_path, DELETE_MATCHING="1.*", OLDER_THAN_DAYS="1")
    assert young.code == 0, young.output
    assert "  keep   1.0.0  kept: published 0 days ago, not more than 1" in young.lines
    assert sorted(packument(sandbox, name)["versions"]) == ["1.0.0", "1.1.0", "2.0.0"]

    old, outputs = cleanup(sandbox, workdir, tmp_path, DELETE_MATCHING="1.*", OLDER_THAN_DAYS="0")
    assert old.code == 0, old.output
    assert "DELETED_VERSIONS=1.0.0 1.1.0\n" in outputs
    assert sorted(packument(sandbox, name)["versions"]) == ["2.0.0"]


def test_the_only_version_is_never_deleted(sandbox, unique, workdir, tmp_path):
    name = unique("clean-npm-one")
    publish_versions(sandbox, workdir, name, ("0.1.0-rc.1",))
    result, _ = cleanup(sandbox, workdir, tmp_path, DELETE_MATCHING="*")
    assert result.code == 0, result.output
    assert result.last_line == f"✔ Nothing to delete in npm package {name}; 1 kept."
    assert list(packument(sandbox, name)["versions"]) == ["0.1.0-rc.1"]


def test_a_user_without_unpublish_permission_gets_one_line(sandbox, unique, workdir, tmp_path):
    name = unique("clean-npm-ro")
    publish_versions(sandbox, workdir, name, ("1.0.0", "2.0.0"))
    env = pipe_env(sandbox, sandbox.reader_user, sandbox.reader_token, ACTION="cleanup", KEEP_RELEASES="1")
    from tests.conftest import run_in_process

    result = run_in_process(env, workdir)
    assert result.code == 1
    assert result.last_line.startswith(f"✖ unpublishing {name}@1.0.0 failed: {sandbox.npm_registry}{name}/-rev/")
    assert result.last_line.endswith(
        "deleting needs Write permission on the linked repository: use a token of a user with Write permission "
        "(an Atlassian API token needs the write:package:bitbucket scope)."
    )
    assert sorted(packument(sandbox, name)["versions"]) == ["1.0.0", "2.0.0"]

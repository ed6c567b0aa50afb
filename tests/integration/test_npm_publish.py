"""The npm publisher against the real Verdaccio of sandbox/, checked with the real npm client."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import assert_no_secret, assert_no_secret_in_tree, base_env, run_in_process, run_subprocess


def write_package(folder: Path, name: str, version: str, body: str = "module.exports = 42;\n", **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "version": version, "main": "index.js", **extra}
    (folder / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / "index.js").write_text(body)
    (folder / "README.md").write_text(f"# {name}\n")
    return folder


def pipe_env(sandbox, user: str | None = None, token: str | None = None, **overrides: str) -> dict[str, str]:
    values = {
        "PACKAGE_TYPE": "npm",
        "REGISTRY_URL": sandbox.npm_registry,
        "BITBUCKET_PACKAGES_USERNAME": user or sandbox.writer_user,
        "BITBUCKET_PACKAGES_TOKEN": token or sandbox.writer_token,
    }
    return base_env(**{**values, **overrides})


def publish(sandbox, cwd: Path, user: str | None = None, token: str | None = None, **overrides: str):
    result = run_in_process(pipe_env(sandbox, user, token, **overrides), cwd)
    for who, secret in ((sandbox.writer_user, sandbox.writer_token), (sandbox.reader_user, sandbox.reader_token)):
        assert_no_secret(result.output, who, secret)
    return result


def npm_view(sandbox, spec: str, *fields: str):
    done = sandbox.run("npm-view", spec, *fields, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_publish_then_view_and_install_with_npm(sandbox, unique, workdir: Path, tmp_path: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    outputs = tmp_path / "outputs"
    result = publish(sandbox, workdir, BITBUCKET_PIPELINES_VARIABLES_PATH=str(outputs))
    assert result.code == 0, result.output
    assert result.last_line == f"✔ Published {name}@1.0.0 to {sandbox.npm_registry} with dist-tag latest."

    view = npm_view(sandbox, f"{name}@1.0.0")
    assert view["version"] == "1.0.0"
    assert view["dist-tags"] == {"latest": "1.0.0"}
    assert f"NPM_INTEGRITY={view['dist']['integrity']}\n" in outputs.read_text()

    value = sandbox.require_installed(tmp_path / "consumer", f"{name}@1.0.0", name)
    assert value.stdout.strip() == "42", value.stderr
    assert not (workdir / ".npmrc").exists()
    assert_no_secret_in_tree(workdir, sandbox.writer_user, sandbox.writer_token)


def test_rerun_is_a_success_and_changed_content_is_refused(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    assert publish(sandbox, workdir).code == 0

    again = publish(sandbox, workdir)
    assert again.code == 0, again.output
    assert again.last_line == (
        f"✔ {name}@1.0.0 at {sandbox.npm_registry} is already published with identical contents: nothing to publish."
    )

    (workdir / "index.js").write_text("module.exports = 43;\n")
    changed = publish(sandbox, workdir)
    assert changed.code == 1
    assert changed.last_line == (
        f"✖ {name}@1.0.0 is already published at {sandbox.npm_registry} with different contents: versions are "
        "immutable; bump the version (package.json's version, or VERSION) and re-run."
    )


def test_prerelease_gets_its_own_tag_and_latest_stays(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    assert publish(sandbox, workdir).code == 0
    beta = publish(sandbox, workdir, VERSION="1.1.0-beta.1")
    assert beta.code == 0, beta.output
    assert beta.last_line == f"✔ Published {name}@1.1.0-beta.1 to {sandbox.npm_registry} with dist-tag beta."
    assert npm_view(sandbox, name, "dist-tags") == {"latest": "1.0.0", "beta": "1.1.0-beta.1"}


def test_lower_version_does_not_take_latest(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "2.0.0")
    assert publish(sandbox, workdir).code == 0
    hotfix = publish(sandbox, workdir, VERSION="1.9.1")
    assert hotfix.code == 0, hotfix.output
    assert (
        "⚠ latest stays on 2.0.0, which is higher than 1.9.1; set NPM_DIST_TAG to give this version a tag of its own."
        in hotfix.lines
    )
    assert npm_view(sandbox, name, "dist-tags") == {"latest": "2.0.0"}
    assert "1.9.1" in npm_view(sandbox, name, "versions")


def test_scoped_package_with_version_from_tag(sandbox, unique, workdir: Path, tmp_path: Path):
    name = f"@acme/{unique('bbpp-npm')}"
    write_package(workdir, name, "0.0.0-development")
    result = publish(sandbox, workdir, VERSION="v3.1.0", BITBUCKET_TAG="v3.1.0", NPM_DIST_TAG="stable")
    assert result.code == 0, result.output
    assert npm_view(sandbox, f"{name}@3.1.0", "dist-tags")["stable"] == "3.1.0"
    installed = sandbox.run("npm-install", str(tmp_path / "consumer"), f"{name}@3.1.0")
    assert installed.returncode == 0, installed.stderr
    shipped = json.loads((tmp_path / "consumer" / "node_modules" / name / "package.json").read_text())
    assert shipped["version"] == "3.1.0"


def test_npm_pack_tarball_is_published_byte_for_byte_and_matches_the_folder(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    folder = write_package(workdir / "pkg", name, "1.0.0")
    packed = subprocess.run(
        ["npm", "pack", "--pack-destination", str(workdir)], cwd=folder, capture_output=True, text=True, check=True
    )
    tgz = workdir / packed.stdout.strip().splitlines()[-1]
    result = publish(sandbox, workdir, NPM_PACKAGE=tgz.name)
    assert result.code == 0, result.output
    expected = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    assert npm_view(sandbox, f"{name}@1.0.0", "dist.integrity") == expected

    # The pipe's own packing of the same folder is another gzip of the same files: identical contents.
    again = publish(sandbox, workdir, NPM_PACKAGE="pkg")
    assert again.code == 0, again.output
    assert "is already published with identical contents" in again.last_line


def test_dry_run_checks_but_writes_nothing(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    result = publish(sandbox, workdir, DRY_RUN="true")
    assert result.code == 0, result.output
    assert "Files in the package (3):" in result.lines
    assert result.last_line == (
        f"✔ Dry run: would publish {name}@1.0.0 to {sandbox.npm_registry} with dist-tag latest; nothing was written."
    )
    missing = sandbox.run("npm-view", name)
    assert missing.returncode != 0
    assert "E404" in missing.stderr


def test_wrong_token_is_refused_without_leaking_it(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    result = publish(sandbox, workdir, token="bbpp-wrong-token-0000")
    assert_no_secret(result.output, sandbox.writer_user, "bbpp-wrong-token-0000")
    assert result.code == 1
    assert result.last_line.startswith(
        f"✖ reading {name} from the registry failed: {sandbox.npm_registry}{name} answered 401"
    )
    assert result.last_line.endswith(
        "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN "
        "(an Atlassian API token needs the write:package:bitbucket scope)."
    )


def test_reader_may_not_publish(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    result = publish(sandbox, workdir, user=sandbox.reader_user, token=sandbox.reader_token)
    assert result.code == 1
    assert result.last_line == (
        f"✖ publishing {name}@1.0.0 failed: {sandbox.npm_registry}{name} answered 403 (user {sandbox.reader_user} is "
        f"not allowed to publish package {name}): no permission to publish {name}: create the package {name} in "
        "Bitbucket Packages and link it to this repository, and make sure the token may write packages "
        "(BITBUCKET_PACKAGES_TOKEN from Pipelines, or an API token with write:package:bitbucket)."
    )


def test_unknown_registry_path_is_a_404_with_the_fix(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    result = publish(sandbox, workdir, REGISTRY_URL=sandbox.npm_registry + "no-such-workspace/")
    assert result.code == 1
    assert "answered 404" in result.last_line
    assert result.last_line.endswith(
        "check REGISTRY_URL / WORKSPACE, the package's scope, and create the package "
        f"{name} in Bitbucket Packages and link it to this repository, and make sure the token may write packages "
        "(BITBUCKET_PACKAGES_TOKEN from Pipelines, or an API token with write:package:bitbucket)."
    )


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"name": "w", "version": "1.0.0", "private": True}, '✖ ./package.json has "private": true'),
        ({"name": "w", "version": "one"}, '✖ ./package.json "version" "one" is not a semantic version'),
        (
            {"name": "Bad Name", "version": "1.0.0"},
            '✖ ./package.json "name" "Bad Name" is not a valid npm package name',
        ),
    ],
)
def test_bad_manifests_as_a_subprocess(sandbox, workdir: Path, manifest: dict, expected: str):
    (workdir / "package.json").write_text(json.dumps(manifest))
    result = run_subprocess(pipe_env(sandbox), workdir)
    assert result.code == 1
    assert result.last_line.startswith(expected), result.output
    assert "Traceback" not in result.output
    assert_no_secret(result.output, sandbox.writer_user, sandbox.writer_token)


def test_pipe_storage_in_the_clone_is_not_packed(sandbox, unique, workdir: Path):
    """Pipelines keeps pipes' storage under <clone>/.bitbucket/pipelines/generated; a re-run in the
    same clone (with this pipe's own summary there now) must still be "identical contents"."""
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0")
    storage = workdir / ".bitbucket" / "pipelines" / "generated" / "pipeline" / "pipes" / "publish"
    env = {"BITBUCKET_CLONE_DIR": str(workdir), "BITBUCKET_PIPE_STORAGE_DIR": str(storage)}
    first = publish(sandbox, workdir, **env)
    assert first.code == 0, first.output
    assert (storage / "bitbucket-packages-publish.json").is_file()

    again = publish(sandbox, workdir, **env)
    assert again.code == 0, again.output
    assert "Left out 1 file(s) of Pipelines' pipe storage (not part of the package)." in again.lines
    assert again.last_line.endswith("is already published with identical contents: nothing to publish.")
    assert any(line.startswith(f"Packed {name}@1.0.0: 3 files, ") for line in again.lines), again.output


def npm_pack_listing(folder: Path) -> list[str]:
    done = subprocess.run(
        ["npm", "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(entry["path"] for entry in json.loads(done.stdout)[0]["files"])


def test_extended_globs_publish_what_npm_pack_packs(sandbox, unique, workdir: Path, tmp_path: Path):
    name = unique("bbpp-npm")
    files = ["lib/*.+(js|cjs)", "dist/cjs/**/!(*.tsbuildinfo)", "@(a|b).txt", "types/@(x|+(y|z)).d.ts", "dist/esm"]
    write_package(workdir, name, "1.0.0", files=files)
    for path in ["lib/a.js", "lib/b.cjs", "lib/c.ts", "dist/cjs/x.js", "dist/cjs/sub/y.js", "dist/cjs/t.tsbuildinfo"]:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text(f"// {path}\n")
    for path in ["a.txt", "c.txt", "types/zy.d.ts", "types/w.d.ts"]:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text("x\n")
    expected = npm_pack_listing(workdir)
    assert "dist/cjs/sub/y.js" in expected and "dist/cjs/t.tsbuildinfo" not in expected

    result = publish(sandbox, workdir)
    assert result.code == 0, result.output
    assert (
        '⚠ "files" entry "dist/esm" in package.json matches no file in the package folder, so the package holds '
        "nothing from it: check the entry, and that the build ran before this step."
    ) in result.lines
    assert any(line.startswith(f"Packed {name}@1.0.0: {len(expected)} files, ") for line in result.lines), result.output

    consumer = tmp_path / "consumer"
    installed = sandbox.run("npm-install", str(consumer), f"{name}@1.0.0")
    assert installed.returncode == 0, installed.stderr
    root = consumer / "node_modules" / name
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == expected


def test_uninterpretable_pattern_ends_the_run_with_one_line_and_publishes_nothing(sandbox, unique, workdir: Path):
    name = unique("bbpp-npm")
    write_package(workdir, name, "1.0.0", files=["index.js", "lib/!()*()"])
    result = run_subprocess(pipe_env(sandbox), workdir)
    assert result.code == 1
    expected = (
        '✖ cannot interpret the pattern "lib/!()*()" in package.json\'s "files" the way npm does (it makes no valid '
        "regular expression: multiple repeat): run `npm pack` in an earlier step and set NPM_PACKAGE to the .tgz it "
        "writes."
    )
    assert result.last_line == expected, result.output
    assert [line for line in result.lines if line.startswith("✖")] == [expected]
    assert "Traceback" not in result.output
    missing = sandbox.run("npm-view", name)
    assert missing.returncode != 0 and "E404" in missing.stderr

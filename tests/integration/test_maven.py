"""PACKAGE_TYPE=maven against the real nginx WebDAV Maven repository of sandbox/, with real Maven
(`sandbox/mvn-get`, checksum policy `fail`) as the consumer."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests

from tests.conftest import PipeRun, assert_no_secret, assert_no_secret_in_tree, base_env, run_in_process

GROUP_PREFIX = "org.bbpp.it"


def write_jar(path: Path, text: str) -> Path:
    """A real (zip) jar whose content differs with `text`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        jar.writestr("content.txt", text)
    return path


def write_pom(
    directory: Path,
    group: str | None,
    artifact: str,
    version: str | None,
    packaging: str = "jar",
    parent: tuple[str, str, str] | None = None,
) -> Path:
    parts = ['<project xmlns="http://maven.apache.org/POM/4.0.0">', "  <modelVersion>4.0.0</modelVersion>"]
    if parent:
        parts.append(
            f"  <parent><groupId>{parent[0]}</groupId><artifactId>{parent[1]}</artifactId>"
            f"<version>{parent[2]}</version></parent>"
        )
    if group:
        parts.append(f"  <groupId>{group}</groupId>")
    parts.append(f"  <artifactId>{artifact}</artifactId>")
    if version:
        parts.append(f"  <version>{version}</version>")
    parts.append(f"  <packaging>{packaging}</packaging>")
    parts.append("</project>")
    directory.mkdir(parents=True, exist_ok=True)
    pom = directory / "pom.xml"
    pom.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return pom


def build(directory: Path, artifact: str, version: str, classifiers: tuple[str, ...] = (), text: str = "v1") -> None:
    """What `mvn package` leaves in target/: the main jar and attached classifier jars."""
    write_jar(directory / "target" / f"{artifact}-{version}.jar", f"{artifact} {version} {text}")
    for classifier in classifiers:
        write_jar(directory / "target" / f"{artifact}-{version}-{classifier}.jar", f"{classifier} {text}")


def pipe_env(sandbox, workdir: Path, **overrides: str) -> dict[str, str]:
    env = {
        "BITBUCKET_PACKAGES_USERNAME": sandbox.writer_user,
        "BITBUCKET_PACKAGES_TOKEN": sandbox.writer_token,
        "PACKAGE_TYPE": "maven",
        "REGISTRY_URL": sandbox.maven_registry,
        "BITBUCKET_CLONE_DIR": str(workdir),
        "BITBUCKET_PIPELINES_VARIABLES_PATH": str(workdir.parent / "outputs.env"),
        "BITBUCKET_PIPE_STORAGE_DIR": str(workdir.parent / "storage"),
    }
    env.update(overrides)
    return base_env(**env)


def run_pipe(sandbox, workdir: Path, **overrides: str) -> PipeRun:
    run = run_in_process(pipe_env(sandbox, workdir, **overrides), workdir)
    assert_no_secret(run.output, sandbox.writer_user, sandbox.writer_token)
    assert_no_secret(run.output, sandbox.reader_user, sandbox.reader_token)
    return run


def outputs(workdir: Path) -> dict[str, str]:
    path = workdir.parent / "outputs.env"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def remote(sandbox, path: str) -> requests.Response:
    return requests.get(sandbox.maven_registry + path, auth=sandbox.reader, timeout=30)


def mvn_get(sandbox, coordinates: str, dest: Path) -> subprocess.CompletedProcess[str]:
    """Real Maven resolves `coordinates` with checksum policy `fail`."""
    return sandbox.run("mvn-get", coordinates, str(dest), extra_env={"MVN_GET_CHECKSUM_POLICY": "fail"})


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()  # noqa: S324 - comparing Maven checksums


@pytest.fixture
def coordinates(unique):
    return f"{GROUP_PREFIX}.{unique('g').replace('-', '')}", unique("lib")


def test_release_is_resolved_by_maven_with_strict_checksums(sandbox, workdir, tmp_path, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.2.0")
    build(workdir, artifact, "1.2.0", ("sources", "javadoc"))

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    assert run.last_line == f"✔ published {group}:{artifact}:1.2.0 (4 files) to {sandbox.maven_registry}"
    base = f"{group.replace('.', '/')}/{artifact}/1.2.0/{artifact}-1.2.0"
    assert f"  upload {base}-sources.jar (sources jar, " in run.output
    for classifier in ("", ":jar:sources", ":jar:javadoc"):
        dest = tmp_path / f"m2{classifier.replace(':', '-')}"
        got = mvn_get(sandbox, f"{group}:{artifact}:1.2.0{classifier}", dest)
        assert got.returncode == 0, got.stderr
        name = f"{artifact}-1.2.0{classifier.replace(':jar:', '-')}.jar"
        assert sha1(dest / name) == sha1(workdir / "target" / name)
    # .sha256/.sha512 go up too, since nginx takes them.
    jar = (workdir / "target" / f"{artifact}-1.2.0.jar").read_bytes()
    assert remote(sandbox, f"{base}.jar.sha256").text == hashlib.sha256(jar).hexdigest()
    assert remote(sandbox, f"{base}.jar.sha512").text == hashlib.sha512(jar).hexdigest()
    metadata = remote(sandbox, f"{group.replace('.', '/')}/{artifact}/maven-metadata.xml").text
    assert "<release>1.2.0</release>" in metadata and "<version>1.2.0</version>" in metadata
    assert outputs(workdir) == {
        "PUBLISHED_GROUP_ID": group,
        "PUBLISHED_ARTIFACT_ID": artifact,
        "PUBLISHED_VERSION": "1.2.0",
    }
    summary = json.loads((workdir.parent / "storage" / "bitbucket-packages-publish.json").read_text())
    assert summary["details"]["version"] == "1.2.0"
    assert_no_secret_in_tree(workdir, sandbox.writer_user, sandbox.writer_token)


def test_metadata_keeps_every_version_and_release_is_the_highest(sandbox, workdir, coordinates):
    group, artifact = coordinates
    for version in ("2.0.0", "1.9.1"):  # a hotfix of an older line after a newer release
        write_pom(workdir, group, artifact, version)
        build(workdir, artifact, version)
        assert run_pipe(sandbox, workdir).code == 0

    metadata = remote(sandbox, f"{group.replace('.', '/')}/{artifact}/maven-metadata.xml").text
    assert "<version>2.0.0</version>" in metadata and "<version>1.9.1</version>" in metadata
    assert "<release>2.0.0</release>" in metadata
    checksum = remote(sandbox, f"{group.replace('.', '/')}/{artifact}/maven-metadata.xml.sha1").text
    assert checksum == hashlib.sha1(metadata.encode()).hexdigest()  # noqa: S324


def test_redeploying_an_identical_release_succeeds_without_uploading(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.0.0")
    build(workdir, artifact, "1.0.0", ("sources",))
    assert run_pipe(sandbox, workdir).code == 0

    again = run_pipe(sandbox, workdir)

    assert again.code == 0, again.output
    assert again.last_line == (
        f"✔ {group}:{artifact}:1.0.0 is already published at {sandbox.maven_registry} with the same content"
    )
    assert "  upload " not in again.output
    assert f"  skip   {group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0.jar" in again.output


def test_a_changed_release_fails_and_leaves_the_published_files_untouched(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.0.0")
    build(workdir, artifact, "1.0.0", ("sources",))
    assert run_pipe(sandbox, workdir).code == 0
    base = f"{group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0"
    before = remote(sandbox, f"{base}.jar").content
    # Rebuilt with other content, plus a new attached artifact that must not go up either.
    build(workdir, artifact, "1.0.0", ("sources", "tests"), text="v2")

    changed = run_pipe(sandbox, workdir)

    assert changed.code == 1
    assert changed.last_line == (
        f"✖ {group}:{artifact}:1.0.0 is already published with different content ({artifact}-1.0.0.jar, "
        f"{artifact}-1.0.0-sources.jar): releases are immutable; bump the version in the POM and re-run. "
        "Nothing was uploaded."
    )
    assert remote(sandbox, f"{base}.jar").content == before
    assert remote(sandbox, f"{base}-tests.jar").status_code == 404


def test_newest_snapshot_is_resolved_by_maven(sandbox, workdir, tmp_path, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "0.3.0-SNAPSHOT")
    build(workdir, artifact, "0.3.0-SNAPSHOT", ("sources",), text="first")
    first = run_pipe(sandbox, workdir)
    assert first.code == 0, first.output
    first_version = outputs(workdir)["PUBLISHED_VERSION"]
    build(workdir, artifact, "0.3.0-SNAPSHOT", ("sources",), text="second")

    second = run_pipe(sandbox, workdir)

    assert second.code == 0, second.output
    newest = outputs(workdir)["PUBLISHED_VERSION"]  # appended: the last line wins
    assert first_version.startswith("0.3.0-") and first_version.endswith("-1")
    assert newest.startswith("0.3.0-") and newest.endswith("-2")
    assert second.last_line == f"✔ published {group}:{artifact}:{newest} (3 files) to {sandbox.maven_registry}"
    for classifier, name in (("", f"{artifact}-{newest}.jar"), (":jar:sources", f"{artifact}-{newest}-sources.jar")):
        dest = tmp_path / f"snap{classifier.replace(':', '-')}"
        got = mvn_get(sandbox, f"{group}:{artifact}:0.3.0-SNAPSHOT{classifier}", dest)
        assert got.returncode == 0, got.stderr
        assert f"  {name}\n" in got.stdout  # Maven picked build 2 through maven-metadata.xml
        local = f"{artifact}-0.3.0-SNAPSHOT{classifier.replace(':jar:', '-')}.jar"
        assert sha1(dest / name) == sha1(workdir / "target" / local)


def test_child_resolves_through_its_deployed_parent(sandbox, workdir, tmp_path, coordinates):
    group, artifact = coordinates
    parent_dir, child_dir = workdir / "parent", workdir / "child"
    write_pom(parent_dir, group, f"{artifact}-parent", "3.1.0", packaging="pom")
    write_pom(child_dir, None, artifact, None, parent=(group, f"{artifact}-parent", "3.1.0"))
    build(child_dir, artifact, "3.1.0")

    child = run_pipe(sandbox, workdir, MAVEN_POM="child/pom.xml")
    assert child.code == 0, child.output
    # Without its parent, Maven cannot read the child's POM: the check below can fail.
    assert mvn_get(sandbox, f"{group}:{artifact}:3.1.0", tmp_path / "a").returncode == 1

    parent = run_pipe(sandbox, workdir, MAVEN_POM="parent/pom.xml")

    assert parent.code == 0, parent.output
    assert parent.last_line == f"✔ published {group}:{artifact}-parent:3.1.0 (1 files) to {sandbox.maven_registry}"
    got = mvn_get(sandbox, f"{group}:{artifact}:3.1.0", tmp_path / "b")
    assert got.returncode == 0, got.stderr


def test_dry_run_reads_but_uploads_nothing(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.0.0")
    build(workdir, artifact, "1.0.0")

    run = run_pipe(sandbox, workdir, DRY_RUN="true")

    assert run.code == 0, run.output
    assert run.last_line == (
        f"✔ dry run: would publish {group}:{artifact}:1.0.0 (2 files with checksums, then metadata) to "
        f"{sandbox.maven_registry}; nothing was uploaded"
    )
    assert f"  upload {group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0.jar (main jar" in run.output
    assert remote(sandbox, f"{group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0.pom").status_code == 404


def test_wrong_token_is_refused_before_anything_is_uploaded(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.0.0")
    build(workdir, artifact, "1.0.0")

    run = run_pipe(sandbox, workdir, BITBUCKET_PACKAGES_TOKEN="not-the-token-1234")

    assert run.code == 1
    path = f"{group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0.pom"
    assert run.last_line == (
        f"✖ checking whether {path} is already published failed: {sandbox.maven_registry}{path} answered 401: "
        "the registry did not accept the credentials: check BITBUCKET_PACKAGES_USERNAME and "
        "BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the write:package:bitbucket scope)."
    )
    assert_no_secret(run.output, sandbox.writer_user, "not-the-token-1234")


def test_read_only_token_is_refused_on_the_first_upload(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.0.0")
    build(workdir, artifact, "1.0.0")

    run = run_pipe(
        sandbox, workdir, BITBUCKET_PACKAGES_USERNAME=sandbox.reader_user, BITBUCKET_PACKAGES_TOKEN=sandbox.reader_token
    )

    assert run.code == 1
    path = f"{group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0.pom"
    assert run.last_line.startswith(f"✖ uploading {path} failed: {sandbox.maven_registry}{path} answered 403")
    assert run.last_line.endswith(
        ": the credentials may not publish here: use a token that may write packages, and check that the package "
        "is linked to this repository and that REGISTRY_URL is its repository."
    )
    assert remote(sandbox, path).status_code == 404


def test_wrong_registry_url_says_to_copy_it_from_bitbucket(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.0.0")
    build(workdir, artifact, "1.0.0")
    wrong = sandbox.maven_registry.replace("/maven/", "/not-a-repository/")

    run = run_pipe(sandbox, workdir, REGISTRY_URL=wrong)

    assert run.code == 1
    path = f"{group.replace('.', '/')}/{artifact}/1.0.0/{artifact}-1.0.0.pom"
    assert run.last_line.startswith(f"✖ uploading {path} failed: {wrong}{path} answered 405")
    assert run.last_line.endswith(
        ": REGISTRY_URL does not point at a Maven repository that accepts uploads: copy the repository URL from "
        "the package's page in Bitbucket and set REGISTRY_URL to it."
    )


def test_tag_pipeline_with_another_version_fails_with_the_fix(sandbox, workdir, coordinates):
    group, artifact = coordinates
    write_pom(workdir, group, artifact, "1.4.0")
    build(workdir, artifact, "1.4.0")

    run = run_pipe(sandbox, workdir, BITBUCKET_TAG="v1.5.0")

    assert run.code == 1
    assert run.last_line == (
        "✖ this pipeline runs for tag v1.5.0 but the POM's version is 1.4.0: set <version>1.5.0</version> in the "
        "POM before this step (e.g. mvn versions:set -DnewVersion=1.5.0), or tag the commit v1.4.0."
    )
    matching = run_pipe(sandbox, workdir, BITBUCKET_TAG="v1.4.0")
    assert matching.code == 0, matching.output

"""A multi-module Maven project (parent aggregator, lib, app depending on lib) deployed in one run to
the real nginx WebDAV Maven repository of sandbox/, and consumed by real Maven: a consumer project
that depends on `app` resolves it, its parent and its transitive `lib` with checksum policy `fail`."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
import requests

from bench.maven_deploy import SERVER_ID, maven_settings, write_jar, write_reactor
from tests.integration.test_maven import outputs, remote, run_pipe, sha1

_SNAPSHOT_BUILD = re.compile(r"^(?P<base>.+)-(?P<timestamp>\d{8}\.\d{6})-(?P<build>\d+)$")


@pytest.fixture
def project(unique):
    """(groupId, parent, lib, app, it): fresh names, so parallel runs cannot collide."""
    base = unique("rx")
    group = f"org.bbpp.it.{unique('g').replace('-', '')}"
    return group, f"{base}-parent", f"{base}-lib", f"{base}-app", f"{base}-it"


def write_project(workdir: Path, project, version: str) -> None:
    """app is listed before lib, so only the dependency puts lib first; `it` opts out of deploys."""
    group, parent, lib, app, it = project
    write_reactor(workdir, group, parent, version, {app: [lib], lib: [], it: [app]}, 4, skipped=(it,))


def folder(group: str, artifact: str, version: str) -> str:
    return f"{group.replace('.', '/')}/{artifact}/{version}"


def consume(
    sandbox, tmp_path: Path, group: str, artifact: str, version: str
) -> tuple[subprocess.CompletedProcess, Path]:
    """A consumer project depending on `artifact`, resolved by real Maven from the sandbox repository
    (strict checksums, fresh local repository), its dependencies copied to the returned folder."""
    consumer = tmp_path / f"consumer-{artifact}-{version}"
    consumer.mkdir()
    (consumer / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>org.bbpp.consumer</groupId><artifactId>consumer</artifactId><version>1</version>"
        f"<repositories><repository><id>{SERVER_ID}</id><url>{sandbox.maven_registry}</url>"
        "<releases><checksumPolicy>fail</checksumPolicy></releases>"
        "<snapshots><checksumPolicy>fail</checksumPolicy><updatePolicy>always</updatePolicy></snapshots>"
        "</repository></repositories>"
        f"<dependencies><dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency></dependencies></project>\n",
        encoding="utf-8",
    )
    settings = maven_settings(consumer, sandbox.reader_user, sandbox.reader_token)
    command = [
        "mvn",
        "-B",
        "-ntp",
        "-s",
        str(settings),
        f"-Dmaven.repo.local={consumer / 'm2'}",
        "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:copy-dependencies",
        f"-DoutputDirectory={consumer / 'deps'}",
    ]
    done = subprocess.run(command, cwd=consumer, capture_output=True, text=True, timeout=300, check=False)
    return done, consumer / "deps"


def test_reactor_deploys_in_one_run_and_maven_resolves_app_with_lib_through_the_parent(
    sandbox, workdir, tmp_path, project
):
    group, parent, lib, app, it = project
    write_project(workdir, project, "1.0.0")

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    published = [f"{group}:{name}:1.0.0" for name in (parent, lib, app)]
    assert run.last_line == (
        f"✔ published 3 modules ({', '.join(published)}; 5 files) to {sandbox.maven_registry}; "
        f"skipped {group}:{it}:1.0.0 (deploy plugin skip)"
    )
    assert f"Project pom.xml: 4 modules, in reactor order: {parent} (pom), {lib} (jar), {app} (jar), {it} (jar)." in (
        run.output
    )
    assert f"Skipping {group}:{it}:1.0.0: maven.deploy.skip is true." in run.output
    assert f"Module {group}:{lib}:1.0.0 (jar, from {lib}/pom.xml):" in run.output
    # Uploaded in reactor order: the parent's POM, then lib, then app (listed before lib in <modules>).
    order = [
        run.output.index(f"  upload {folder(group, name, '1.0.0')}/{name}-1.0.0.pom") for name in (parent, lib, app)
    ]
    assert order == sorted(order)
    assert outputs(workdir)["PUBLISHED_MODULES"] == " ".join(published)
    assert outputs(workdir)["PUBLISHED_ARTIFACT_ID"] == parent
    assert remote(sandbox, f"{folder(group, it, '1.0.0')}/{it}-1.0.0.pom").status_code == 404

    resolved, deps = consume(sandbox, tmp_path, group, app, "1.0.0")

    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    for name in (app, lib):  # lib arrives only through app's POM, which needs the deployed parent
        assert sha1(deps / f"{name}-1.0.0.jar") == sha1(workdir / name / "target" / f"{name}-1.0.0.jar")

    again = run_pipe(sandbox, workdir)

    assert again.code == 0, again.output
    assert again.last_line == (
        f"✔ 3 modules ({', '.join(published)}) are already published at {sandbox.maven_registry} with the same "
        f"content; skipped {group}:{it}:1.0.0 (deploy plugin skip)"
    )
    assert "  upload " not in again.output


def test_dry_run_plans_every_module_and_uploads_nothing(sandbox, workdir, project):
    group, parent, lib, app, it = project
    write_project(workdir, project, "1.0.0")

    run = run_pipe(sandbox, workdir, DRY_RUN="true")

    assert run.code == 0, run.output
    published = ", ".join(f"{group}:{name}:1.0.0" for name in (parent, lib, app))
    assert run.last_line == (
        f"✔ dry run: would publish 3 modules ({published}; 5 files with checksums, then metadata) to "
        f"{sandbox.maven_registry}; skipped {group}:{it}:1.0.0 (deploy plugin skip); nothing was uploaded"
    )
    assert f"  upload {folder(group, app, '1.0.0')}/{app}-1.0.0.jar (main jar" in run.output
    assert remote(sandbox, f"{folder(group, parent, '1.0.0')}/{parent}-1.0.0.pom").status_code == 404
    assert not (workdir.parent / "outputs.env").exists()


def test_one_module_published_with_other_content_stops_the_reactor_before_any_upload(sandbox, workdir, project):
    group, parent, lib, app, _ = project
    write_project(workdir, project, "1.0.0")
    alone = run_pipe(sandbox, workdir, MAVEN_MODULES=lib)
    assert alone.code == 0, alone.output
    assert alone.last_line == f"✔ published 1 modules ({group}:{lib}:1.0.0; 2 files) to {sandbox.maven_registry}"
    write_jar(workdir / lib / "target" / f"{lib}-1.0.0.jar", b"rebuilt with other content")

    run = run_pipe(sandbox, workdir)

    assert run.code == 1
    assert run.last_line == (
        f"✖ {group}:{lib}:1.0.0 is already published with different content ({lib}-1.0.0.jar): releases are "
        "immutable; bump the version in the POM and re-run. Nothing was uploaded for any module."
    )
    for name in (parent, app):
        assert remote(sandbox, f"{folder(group, name, '1.0.0')}/{name}-1.0.0.pom").status_code == 404


def test_an_interrupted_reactor_deploy_resumes(sandbox, workdir, tmp_path, project):
    group, parent, lib, app, _ = project
    write_project(workdir, project, "1.0.0")
    # What a deploy broken off in lib's jar leaves: the parent complete, lib's jar without checksum files.
    parent_pom = f"{folder(group, parent, '1.0.0')}/{parent}-1.0.0.pom"
    lib_jar = f"{folder(group, lib, '1.0.0')}/{lib}-1.0.0.jar"
    pom = (workdir / "pom.xml").read_bytes()
    for path, body in (
        (parent_pom, pom),
        (f"{parent_pom}.md5", hashlib.md5(pom).hexdigest().encode()),  # noqa: S324 - Maven's checksum
        (f"{parent_pom}.sha1", sha1(workdir / "pom.xml").encode()),
        (lib_jar, (workdir / lib / "target" / f"{lib}-1.0.0.jar").read_bytes()),
    ):
        assert requests.put(sandbox.maven_registry + path, data=body, auth=sandbox.writer, timeout=30).ok

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    assert f"  skip   {parent_pom} (POM: already published" in run.output
    assert f"  upload {lib_jar} (main jar" in run.output  # again, so that its checksum files match
    skipped = f"skipped {group}:{project[4]}:1.0.0 (deploy plugin skip)"
    assert run.last_line.endswith(f"; 4 files, 1 already there) to {sandbox.maven_registry}; {skipped}")
    resolved, deps = consume(sandbox, tmp_path, group, app, "1.0.0")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert sha1(deps / f"{lib}-1.0.0.jar") == sha1(workdir / lib / "target" / f"{lib}-1.0.0.jar")


def test_snapshot_reactor_has_one_timestamp_and_each_module_its_own_build_number(sandbox, workdir, tmp_path, project):
    group, parent, lib, app, _ = project
    write_project(workdir, project, "2.0.0-SNAPSHOT")
    assert run_pipe(sandbox, workdir, MAVEN_MODULES=f"{parent} {lib}").code == 0

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    versions = {}
    for entry in outputs(workdir)["PUBLISHED_MODULES"].split():
        _, artifact, version = entry.split(":")
        versions[artifact] = _SNAPSHOT_BUILD.match(version)
    assert sorted(versions) == sorted((parent, lib, app))
    assert len({match["timestamp"] for match in versions.values()}) == 1
    assert {name: match["build"] for name, match in versions.items()} == {parent: "2", lib: "2", app: "1"}
    resolved, deps = consume(sandbox, tmp_path, group, app, "2.0.0-SNAPSHOT")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert sha1(deps / f"{lib}-2.0.0-SNAPSHOT.jar") == sha1(workdir / lib / "target" / f"{lib}-2.0.0-SNAPSHOT.jar")

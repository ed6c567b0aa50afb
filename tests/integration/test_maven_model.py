"""Each reproduction of the reactor-model issue through the pipe, against the real nginx WebDAV Maven
repository of sandbox/, with real Maven as the consumer: a project depending on the deployed module
resolves it, its parents and its dependencies with checksum policy `fail` (`consume`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.maven_deploy import write_jar
from tests.integration.test_maven import mvn_get, remote, run_pipe, sha1
from tests.integration.test_maven_reactor import consume

DEPLOY_PLUGIN = "<groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId>"


@pytest.fixture
def group(unique) -> str:
    return f"org.bbpp.model.{unique('g').replace('-', '')}"


def write(folder: Path, body: str, built: str | None = None) -> None:
    """A POM, and (`built` = artifactId-version) its jar in target/ as `mvn package` leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(
        f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>{body}</project>\n',
        encoding="utf-8",
    )
    if built:
        write_jar(folder / "target" / f"{built}.jar", built.encode())


def parent(group: str, version: str) -> str:
    return f"<parent><groupId>{group}</groupId><artifactId>parent</artifactId><version>{version}</version></parent>"


def dependency(group: str, artifact: str, version: str) -> str:
    return (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        "</dependency>"
    )


def aggregator(group: str, version: str, modules: str, extra: str = "") -> str:
    listed = "".join(f"<module>{m}</module>" for m in modules.split())
    return (
        f"<groupId>{group}</groupId><artifactId>parent</artifactId><version>{version}</version>"
        f"<packaging>pom</packaging>{extra}<modules>{listed}</modules>"
    )


def folder(group: str, artifact: str, version: str) -> str:
    return f"{group.replace('.', '/')}/{artifact}/{version}"


def assert_resolves(sandbox, tmp_path: Path, workdir: Path, group: str, artifact: str, version: str, *jars: str):
    """Maven resolves `artifact` and through its POM (and parents) the reactor `jars` it depends on."""
    resolved, deps = consume(sandbox, tmp_path, group, artifact, version)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    for jar in (artifact, *jars):
        local = next(workdir.rglob(f"target/{jar}-{version}.jar"))
        assert sha1(deps / f"{jar}-{version}.jar") == sha1(local)


def test_1_modules_the_deploy_plugin_skips_by_configuration_are_not_published(sandbox, workdir, tmp_path, group):
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{skip_deploy}}</skip></configuration></plugin>"
    extra = f"<properties><skip_deploy>false</skip_deploy></properties><build><plugins>{plugin}</plugins></build>"
    write(workdir, aggregator(group, "1.0.0", "lib it", extra))
    write(workdir / "lib", f"{parent(group, '1.0.0')}<artifactId>lib</artifactId>", "lib-1.0.0")
    it = "<properties><skip_deploy>true</skip_deploy></properties>"  # its jar was never built
    write(workdir / "it", f"{parent(group, '1.0.0')}<artifactId>it</artifactId>{it}")

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    assert f"Skipping {group}:it:1.0.0: the deploy plugin's <skip>${{skip_deploy}}</skip> is true." in run.output
    assert run.last_line.endswith(f"; skipped {group}:it:1.0.0 (deploy plugin skip)")
    assert remote(sandbox, f"{folder(group, 'it', '1.0.0')}/it-1.0.0.pom").status_code == 404
    assert_resolves(sandbox, tmp_path, workdir, group, "lib", "1.0.0")


def test_1_a_single_pom_the_deploy_plugin_skips_through_its_parent_on_disk_is_not_published(
    sandbox, workdir, tmp_path, group
):
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{skip_deploy}}</skip></configuration></plugin>"
    management = f"<build><pluginManagement><plugins>{plugin}</plugins></pluginManagement></build>"
    props = "<properties><skip_deploy>false</skip_deploy></properties>"
    write(workdir / "parent", aggregator(group, "1.0.0", "", props + management).replace("<modules></modules>", ""))
    child = parent(group, "1.0.0").replace("</parent>", "<relativePath>../parent</relativePath></parent>")
    skip = "<properties><skip_deploy>true</skip_deploy></properties>"
    write(workdir / "it", f"{child}<artifactId>it</artifactId>{skip}", "it-1.0.0")

    deployed = run_pipe(sandbox, workdir, MAVEN_POM="parent/pom.xml")
    skipped = run_pipe(sandbox, workdir, MAVEN_POM="it/pom.xml")

    assert deployed.code == 0, deployed.output
    assert skipped.code == 0, skipped.output
    assert skipped.last_line.startswith(f"✔ {group}:it:1.0.0 is not published: the deploy plugin skips it (")
    assert not [line for line in skipped.lines if line.strip().startswith("upload ")]
    assert remote(sandbox, f"{folder(group, 'it', '1.0.0')}/it-1.0.0.pom").status_code == 404
    assert mvn_get(sandbox, f"{group}:parent:1.0.0:pom", tmp_path / "parent").returncode == 0
    missing = mvn_get(sandbox, f"{group}:it:1.0.0", tmp_path / "it")
    assert missing.returncode != 0 and "Could not" in missing.stdout + missing.stderr


def test_2_revision_poms_are_flattened_so_consumers_resolve_them(sandbox, workdir, tmp_path, group):
    write(workdir, aggregator(group, "${revision}", "lib app", "<properties><revision>1.0.0</revision></properties>"))
    write(workdir / "lib", f"{parent(group, '${revision}')}<artifactId>lib</artifactId>", "lib-1.0.0")
    app = f"{parent(group, '${revision}')}<artifactId>app</artifactId><dependencies>"
    write(workdir / "app", f"{app}{dependency(group, 'lib', '${revision}')}</dependencies>", "app-1.0.0")

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    # The issue's command, strict checksums: on an unflattened POM Maven stops with "Could not find artifact
    # …:parent:pom:${revision}".
    fetched = mvn_get(sandbox, f"{group}:lib:1.0.0", tmp_path / "got")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    deployed = remote(sandbox, f"{folder(group, 'app', '1.0.0')}/app-1.0.0.pom").text
    assert deployed == (workdir / "app" / "pom.xml").read_text().replace("${revision}", "1.0.0")
    assert_resolves(sandbox, tmp_path, workdir, group, "app", "1.0.0", "lib")


def test_3_a_dependency_on_another_version_of_a_reactor_artifact_makes_no_cycle(sandbox, workdir, tmp_path, group):
    write(workdir, aggregator(group, "2.0.0", "core compat"))
    legacy = dependency(group, "legacy", "1.2.83").replace("</dependency>", "<scope>test</scope></dependency>")
    write(workdir / "core", f"{parent(group, '2.0.0')}<artifactId>core</artifactId><dependencies>{legacy}"
          "</dependencies>", "core-2.0.0")  # fmt: skip
    compat = f"{parent(group, '2.0.0')}<artifactId>legacy</artifactId><dependencies>"
    write(workdir / "compat", f"{compat}{dependency(group, 'core', '2.0.0')}</dependencies>", "legacy-2.0.0")

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    assert "Project pom.xml: 3 modules, in reactor order: parent (pom), core (jar), legacy (jar)." in run.output
    assert_resolves(sandbox, tmp_path, workdir, group, "legacy", "2.0.0", "core")


def test_4_modules_of_active_profiles_are_published_and_undecided_ones_named(sandbox, workdir, tmp_path, group):
    profiles = (
        "<profiles><profile><id>main</id><activation><activeByDefault>true</activeByDefault></activation>"
        "<modules><module>core</module></modules></profile>"
        "<profile><id>old-jdk</id><activation><jdk>1.8</jdk></activation><modules><module>legacy</module></modules>"
        "</profile></profiles>"
    )
    write(workdir, aggregator(group, "1.0.0", "app", profiles))
    app = f"{parent(group, '1.0.0')}<artifactId>app</artifactId>"
    write(workdir / "app", f"{app}<dependencies>{dependency(group, 'core', '1.0.0')}</dependencies>", "app-1.0.0")
    write(workdir / "core", f"{parent(group, '1.0.0')}<artifactId>core</artifactId>", "core-1.0.0")
    write(workdir / "legacy", f"{parent(group, '1.0.0')}<artifactId>legacy</artifactId>")  # not built

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    assert "Project pom.xml: 3 modules, in reactor order: parent (pom), core (jar), app (jar)." in run.output
    assert "⚠ module legacy of profile old-jdk of pom.xml is not deployed" in run.output
    assert_resolves(sandbox, tmp_path, workdir, group, "app", "1.0.0", "core")


def test_5_a_build_plugin_dependency_on_a_reactor_module_deploys_it_first(sandbox, workdir, tmp_path, group):
    write(workdir, aggregator(group, "1.0.0", "app rules"))
    plugin = (
        "<build><plugins><plugin><groupId>org.bbpp.other</groupId><artifactId>checker</artifactId>"
        f"<version>1</version><dependencies>{dependency(group, 'rules', '1.0.0')}</dependencies></plugin></plugins>"
        "</build>"
    )
    write(workdir / "app", f"{parent(group, '1.0.0')}<artifactId>app</artifactId>{plugin}", "app-1.0.0")
    write(workdir / "rules", f"{parent(group, '1.0.0')}<artifactId>rules</artifactId>", "rules-1.0.0")

    run = run_pipe(sandbox, workdir)

    assert run.code == 0, run.output
    uploads = [
        run.output.index(f"  upload {folder(group, name, '1.0.0')}/{name}-1.0.0.pom") for name in ("rules", "app")
    ]
    assert uploads == sorted(uploads)
    assert_resolves(sandbox, tmp_path, workdir, group, "rules", "1.0.0")


def test_6_version_from_the_tag_sets_revision(sandbox, workdir, tmp_path, group):
    props = "<properties><revision>0.0.0-SNAPSHOT</revision></properties>"
    write(workdir, aggregator(group, "${revision}", "lib", props))
    write(workdir / "lib", f"{parent(group, '${revision}')}<artifactId>lib</artifactId>", "lib-1.3.0")

    run = run_pipe(sandbox, workdir, VERSION="v1.3.0", BITBUCKET_TAG="v1.3.0")

    assert run.code == 0, run.output
    assert run.last_line.startswith(f"✔ published 2 modules ({group}:parent:1.3.0, {group}:lib:1.3.0;")
    assert_resolves(sandbox, tmp_path, workdir, group, "lib", "1.3.0")


@pytest.mark.parametrize(
    ("lib", "said"),
    [
        ("<artifactId>lib</artifactId><version>${nope}</version>", ("${nope}", "MAVEN_PROPERTIES")),
        ("<artifactId>lib</artifactId><version>${revision}</version>", ("${revision}", "set VERSION")),
        ("<artifactId>lib</artifactId></dependencies>", ("module lib pom.xml is not well-formed XML",)),
    ],
    ids=["unresolvable-property", "revision-without-value", "unreadable-module-pom"],
)
def test_bad_input_stops_before_any_upload(sandbox, workdir, group, lib, said):
    write(workdir, aggregator(group, "1.0.0", "core lib"))
    write(workdir / "core", f"{parent(group, '1.0.0')}<artifactId>core</artifactId>", "core-1.0.0")
    write(workdir / "lib", f"{parent(group, '1.0.0')}{lib}")

    run = run_pipe(sandbox, workdir)

    assert run.code == 1
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line]
    assert all(words in run.last_line for words in said), run.last_line
    for artifact in ("parent", "core"):
        assert remote(sandbox, f"{folder(group, artifact, '1.0.0')}/{artifact}-1.0.0.pom").status_code == 404

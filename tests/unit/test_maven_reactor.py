"""Multi-module Maven projects without a network: which modules a reactor has, their coordinates
(inherited groupId/version/properties), Maven's reactor order, and the mistakes a user can make."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipe.errors import ConfigError, InputError
from pipe.maven.modules import read_reactor, select_modules
from tests.conftest import assert_no_secret, run_in_process
from tests.unit.test_maven import jar, maven_env

PARENT = "<parent><groupId>com.acme</groupId><artifactId>root</artifactId><version>1.0.0</version></parent>"


def write(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pom.xml"
    path.write_text(f'<project xmlns="http://maven.apache.org/POM/4.0.0">{body}</project>', encoding="utf-8")
    return path


def root(folder: Path, modules: str, extra: str = "") -> Path:
    listed = "".join(f"<module>{name}</module>" for name in modules.split())
    return write(
        folder,
        "<groupId>com.acme</groupId><artifactId>root</artifactId><version>1.0.0</version><packaging>pom</packaging>"
        f"{extra}<modules>{listed}</modules>",
    )


def dependency(artifact: str, version: str = "${project.version}", group: str = "${project.groupId}") -> str:
    coordinates = f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
    return f"<dependency>{coordinates}</dependency>"


def one_module_project(folder: Path) -> None:
    root(folder, "lib")
    write(folder / "lib", f"{PARENT}<artifactId>lib</artifactId>")


def test_a_module_comes_after_the_reactor_modules_it_depends_on(tmp_path):
    path = root(tmp_path, "app lib")
    write(tmp_path / "app", f"{PARENT}<artifactId>app</artifactId><dependencies>{dependency('lib')}</dependencies>")
    write(tmp_path / "lib", f"{PARENT}<artifactId>lib</artifactId>")

    modules = read_reactor(path, str)[0]

    assert [m.pom.gav for m in modules] == ["com.acme:root:1.0.0", "com.acme:lib:1.0.0", "com.acme:app:1.0.0"]
    # Maven's edge order: dependencies, then the parent.
    assert modules[2].needs == ("com.acme:lib", "com.acme:root")


def test_nested_aggregators_and_properties_inherited_through_the_parents(tmp_path):
    path = root(tmp_path, "apps core", "<properties><core.version>${project.version}</core.version></properties>")
    write(tmp_path / "core", f"{PARENT}<artifactId>core</artifactId>")
    apps = "<modules><module>web/pom.xml</module></modules>"
    write(tmp_path / "apps", f"{PARENT}<artifactId>apps</artifactId><packaging>pom</packaging>{apps}")
    parent = "<parent><groupId>com.acme</groupId><artifactId>apps</artifactId><version>1.0.0</version></parent>"
    # A property of the root POM, inherited through apps, names core's version.
    web = f"{parent}<artifactId>web</artifactId><dependencies>{dependency('core', '${core.version}')}</dependencies>"
    write(tmp_path / "apps" / "web", web)

    modules = read_reactor(path, str)[0]

    # Maven collects web, apps, core, root (an aggregator after its modules); web needs core and apps,
    # each after root: the order the parity suite sees Maven take on the same shape.
    assert [m.pom.artifact_id for m in modules] == ["root", "core", "apps", "web"]
    assert modules[3].pom.gav == "com.acme:web:1.0.0"
    assert modules[3].needs == ("com.acme:core", "com.acme:apps")


def test_deploy_skip_is_inherited_and_a_module_can_turn_it_off(tmp_path):
    path = root(tmp_path, "a b", "<properties><maven.deploy.skip>true</maven.deploy.skip></properties>")
    write(tmp_path / "a", f"{PARENT}<artifactId>a</artifactId>")
    write(
        tmp_path / "b",
        f"{PARENT}<artifactId>b</artifactId><properties><maven.deploy.skip>false</maven.deploy.skip></properties>",
    )

    assert {m.pom.artifact_id: m.skipped for m in read_reactor(path, str)[0]} == {"root": True, "a": True, "b": False}


def test_a_dependency_cycle_is_refused_with_the_cycle(tmp_path):
    path = root(tmp_path, "a b")
    write(tmp_path / "a", f"{PARENT}<artifactId>a</artifactId><dependencies>{dependency('b')}</dependencies>")
    write(tmp_path / "b", f"{PARENT}<artifactId>b</artifactId><dependencies>{dependency('a')}</dependencies>")

    with pytest.raises(InputError) as error:
        read_reactor(path, str)[0]

    assert error.value.message == (
        "the project's modules depend on each other in a cycle (com.acme:b -> com.acme:a -> com.acme:b): Maven "
        "cannot build it either; remove one of these dependencies."
    )


def test_a_missing_module_folder_names_the_entry(tmp_path):
    path = root(tmp_path, "lib")

    with pytest.raises(InputError) as error:
        read_reactor(path, lambda p: str(p.relative_to(tmp_path)))

    assert error.value.message == (
        "module 'lib' listed in pom.xml's <modules> has no POM at lib: fix the <module> entry or check that the "
        "module's folder is in the clone."
    )


def test_two_modules_with_the_same_coordinates_are_refused(tmp_path):
    path = root(tmp_path, "a b")
    write(tmp_path / "a", f"{PARENT}<artifactId>same</artifactId>")
    write(tmp_path / "b", f"{PARENT}<artifactId>same</artifactId>")

    with pytest.raises(InputError, match=r"two modules of the project are com\.acme:same \(.*a/pom\.xml and .*b/pom"):
        read_reactor(path, str)[0]


def test_unknown_module_names_list_the_known_ones(tmp_path):
    path = root(tmp_path, "lib")
    write(tmp_path / "lib", f"{PARENT}<artifactId>lib</artifactId>")
    modules = read_reactor(path, str)[0]

    assert [m.pom.artifact_id for m in select_modules(modules, ("lib",))] == ["lib"]
    with pytest.raises(ConfigError) as error:
        select_modules(modules, ("lib", "app"))
    assert error.value.message == (
        "MAVEN_MODULES names app, which the project does not have: use the artifactIds of its modules: root, lib."
    )


def test_a_module_without_its_jar_stops_the_run_before_the_registry_is_asked(workdir):
    root(workdir, "lib app")
    write(workdir / "lib", f"{PARENT}<artifactId>lib</artifactId>")
    write(workdir / "app", f"{PARENT}<artifactId>app</artifactId>")
    jar(workdir / "lib" / "target" / "lib-1.0.0.jar")

    # The registry address is closed: reaching it would end in another error.
    run = run_in_process(maven_env(), workdir)

    assert run.code == 1
    assert "Project pom.xml: 3 modules, in reactor order: root (pom), lib (jar), app (jar)." in run.output
    assert run.last_line.startswith(
        "✖ no artifacts for com.acme:app:1.0.0 found in app/target/ (looked for app-1.0.0.jar"
    )
    assert_no_secret(run.output)


def test_maven_artifacts_with_modules_says_what_to_do(workdir):
    one_module_project(workdir)

    run = run_in_process(maven_env(MAVEN_ARTIFACTS="lib/target/lib-1.0.0.jar"), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ MAVEN_ARTIFACTS lists files for one POM, but pom.xml has <modules>: leave MAVEN_ARTIFACTS out (each "
        "module's files are taken from its own target/), or set MAVEN_POM to one module's POM to deploy that "
        "module alone."
    )


def test_maven_modules_alone_selects_maven_and_an_unknown_name_fails(workdir):
    one_module_project(workdir)

    env = maven_env(MAVEN_MODULES="app")
    del env["PACKAGE_TYPE"]
    run = run_in_process(env, workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ MAVEN_MODULES names app, which the project does not have: use the artifactIds of its modules: root, lib."
    )


def test_tag_pipeline_names_the_module_whose_version_differs(workdir):
    one_module_project(workdir)

    run = run_in_process(maven_env(BITBUCKET_TAG="v2.0.0"), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ this pipeline runs for tag v2.0.0 but module root's version is 1.0.0: set <version>2.0.0</version> in "
        "the POM before this step (e.g. mvn versions:set -DnewVersion=2.0.0), or tag the commit v1.0.0."
    )

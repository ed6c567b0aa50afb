"""The effective model of a reactor, as Maven reads it: deploy-plugin skip from configuration,
CI-friendly versions (and the flattened POMs deployed for them), reactor edges by
groupId:artifactId:version, profiles, build plugins and extensions in the order, bounded
property expansion, and the mistakes a user can make. One test per reproduction of the issue
(numbers in the names), plus the pieces around them."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from pipe.errors import InputError
from pipe.maven.flatten import flattened
from pipe.maven.interpolation import Values
from pipe.maven.model import BuildContext
from pipe.maven.modules import read_reactor
from tests.conftest import run_in_process
from tests.unit.test_maven import jar, maven_env
from tests.unit.test_maven_reactor import PARENT, dependency, root, write

DEPLOY_PLUGIN = "<groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId>"


def reactor(path: Path, **user: str):
    return read_reactor(path, str, BuildContext(user, user.get("revision")))


def names(path: Path, **user: str) -> list[str]:
    return [module.pom.artifact_id for module in reactor(path, **user)[0]]


# 1. Deploy-plugin <skip> from configuration


def skip_project(folder: Path, where: str = "plugins") -> Path:
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{skip_deploy}}</skip></configuration></plugin>"
    build = f"<build><plugins>{plugin}</plugins></build>"
    if where == "pluginManagement":
        build = f"<build><pluginManagement><plugins>{plugin}</plugins></pluginManagement></build>"
    path = root(folder, "lib it", f"<properties><skip_deploy>false</skip_deploy></properties>{build}")
    write(folder / "lib", f"{PARENT}<artifactId>lib</artifactId>")
    write(folder / "it", f"{PARENT}<artifactId>it</artifactId><properties><skip_deploy>true</skip_deploy></properties>")
    return path


@pytest.mark.parametrize("where", ["plugins", "pluginManagement"])
def test_1_deploy_plugin_skip_in_configuration_is_inherited_and_interpolated(tmp_path, where):
    modules, _ = reactor(skip_project(tmp_path, where))

    assert {m.pom.artifact_id: m.skip for m in modules} == {"root": False, "lib": False, "it": True}
    assert modules[-1].skip_why == "the deploy plugin's <skip>${skip_deploy}</skip> is true"


def test_1_configured_skip_wins_over_maven_deploy_skip_and_the_property_applies_otherwise(tmp_path):
    path = skip_project(tmp_path)

    # -Dmaven.deploy.skip=true does not override a configured <skip>; -Dskip_deploy=true does.
    assert [m.skip for m in reactor(path, **{"maven.deploy.skip": "true"})[0]] == [False, False, True]
    assert [m.skip for m in reactor(path, skip_deploy="true")[0]] == [True, True, True]


def test_1_skip_releases_skips_only_release_versions_and_inherited_false_stays_in_the_parent(tmp_path):
    plugin = (
        f"<plugin>{DEPLOY_PLUGIN}<inherited>false</inherited><configuration><skip>true</skip></configuration></plugin>"
    )
    props = "<properties><maven.deploy.skip>releases</maven.deploy.skip></properties>"
    path = root(tmp_path, "lib", f"<build><plugins>{plugin}</plugins></build>")
    write(tmp_path / "lib", f"{PARENT}<artifactId>lib</artifactId>{props}")

    assert [(m.pom.artifact_id, m.skip) for m in reactor(path)[0]] == [("root", True), ("lib", True)]
    write(tmp_path / "lib", f"{PARENT}<artifactId>lib</artifactId><version>1.1-SNAPSHOT</version>{props}")
    assert [(m.pom.artifact_id, m.skip) for m in reactor(path)[0]] == [("root", True), ("lib", False)]


def test_1_skip_from_an_unreadable_parent_is_undecided(tmp_path):
    external = "<parent><groupId>org.other</groupId><artifactId>corp</artifactId><version>3</version></parent>"
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{corp.skip}}</skip></configuration></plugin>"
    write(
        tmp_path,
        f"{external}<groupId>com.acme</groupId><artifactId>root</artifactId><version>1.0.0</version>"
        f"<packaging>pom</packaging><build><plugins>{plugin}</plugins></build>",
    )

    [module], _ = reactor(tmp_path / "pom.xml")

    assert module.skip is None
    assert module.skip_why == "the deploy plugin's <skip>${corp.skip}</skip> uses corp.skip, which the pipe cannot read"


def single_pom_with_parent(folder: Path, skip_in_child: str) -> None:
    """A parent on disk (no <modules>) configuring the deploy plugin's skip in pluginManagement from a
    property; MAVEN_POM is the child, deployed on its own."""
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{skip_deploy}}</skip></configuration></plugin>"
    write(
        folder / "parent",
        "<groupId>com.acme</groupId><artifactId>root</artifactId><version>1.0.0</version><packaging>pom</packaging>"
        f"<properties><skip_deploy>false</skip_deploy></properties>"
        f"<build><pluginManagement><plugins>{plugin}</plugins></pluginManagement></build>",
    )
    parent = PARENT.replace("</parent>", "<relativePath>../parent</relativePath></parent>")
    write(folder / "app", f"{parent}<artifactId>app</artifactId>{skip_in_child}")


def test_1_a_single_pom_the_deploy_plugin_skips_publishes_nothing_and_says_so(workdir):
    single_pom_with_parent(workdir, "<properties><skip_deploy>true</skip_deploy></properties>")  # nothing built

    run = run_in_process(maven_env(MAVEN_POM="app/pom.xml"), workdir)  # any request would fail: no registry there

    assert run.code == 0, run.output
    assert "Skipping com.acme:app:1.0.0: the deploy plugin's <skip>${skip_deploy}</skip> is true." in run.lines
    assert run.last_line == (
        "✔ com.acme:app:1.0.0 is not published: the deploy plugin skips it (the deploy plugin's "
        "<skip>${skip_deploy}</skip> is true); remove the <skip> or maven.deploy.skip to publish it"
    )

    run = run_in_process(maven_env(MAVEN_POM="app/pom.xml", MAVEN_PROPERTIES="skip_deploy=false"), workdir)

    assert run.code == 1  # -Dskip_deploy=false wins over the POM's property, as in Maven: it is deployed
    assert run.last_line.startswith("✖ no artifacts for com.acme:app:1.0.0 found in app/target/")


def test_1_a_single_pom_whose_skip_the_pipe_cannot_read_is_refused(workdir):
    external = "<parent><groupId>org.other</groupId><artifactId>corp</artifactId><version>3</version></parent>"
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{corp.skip}}</skip></configuration></plugin>"
    write(workdir, f"{external}<groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0.0</version>"
          f"<build><plugins>{plugin}</plugins></build>")  # fmt: skip
    jar(workdir / "target" / "app-1.0.0.jar")

    run = run_in_process(maven_env(), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ com.acme:app:1.0.0 (pom.xml) is not deployed: the deploy plugin's <skip>${corp.skip}</skip> uses "
        "corp.skip, which the pipe cannot read; set the value in MAVEN_PROPERTIES or in the POM so that it is decided."
    )


# 2. CI-friendly versions, flattened


def revision_project(folder: Path) -> Path:
    path = write(
        folder,
        "<groupId>g</groupId><artifactId>parent</artifactId><version>${revision}</version><packaging>pom</packaging>"
        "<properties><revision>1.0.0</revision></properties><modules><module>lib</module></modules>",
    )
    write(
        folder / "lib",
        "<parent><groupId>g</groupId><artifactId>parent</artifactId><version>${revision}</version></parent>\n"
        "  <artifactId>lib</artifactId>\n  <!-- kept: ${revision} in a comment -->\n"
        f"  <dependencies>{dependency('other', '${revision}', 'g')}{dependency('x', '${project.version}', 'g')}"
        "</dependencies>",
    )
    return path


def test_2_revision_resolves_and_the_deployed_poms_are_flattened_byte_for_byte_elsewhere(tmp_path):
    modules, _ = reactor(revision_project(tmp_path))

    assert [m.pom.gav for m in modules] == ["g:parent:1.0.0", "g:lib:1.0.0"]
    source = (tmp_path / "lib" / "pom.xml").read_text()
    expected = source.replace("<version>${revision}</version></parent>", "<version>1.0.0</version></parent>").replace(
        "<artifactId>other</artifactId><version>${revision}", "<artifactId>other</artifactId><version>1.0.0"
    )
    assert modules[1].pom.deployed.decode() == expected
    assert "<!-- kept: ${revision} in a comment -->" in expected and "${project.version}" in expected
    assert modules[0].pom.deployed.decode() == (tmp_path / "pom.xml").read_text().replace(
        "<version>${revision}</version>", "<version>1.0.0</version>"
    )


def test_2_version_sets_revision_over_the_pom_default_and_artifacts_follow(tmp_path):
    modules, _ = reactor(revision_project(tmp_path), revision="1.3.0")

    assert [m.pom.gav for m in modules] == ["g:parent:1.3.0", "g:lib:1.3.0"]
    assert b"<version>1.3.0</version></parent>" in modules[1].pom.deployed


def test_2_a_version_through_a_property_holding_revision_is_flattened_in_the_property(tmp_path):
    """`<version>${lib.version}</version>` with `<lib.version>${revision}</lib.version>`: the reference
    stays (a consumer resolves it from the deployed POM), the property gets the build's value."""
    write(
        tmp_path,
        "<groupId>g</groupId><artifactId>a</artifactId><version>${lib.version}</version>"
        "<properties><lib.version>${revision}${changelist}</lib.version><other>${sha1}-x</other>"
        "<plain>${project.version}</plain></properties>"
        "<profiles><profile><id>p</id><properties><p.version>${revision}</p.version></properties></profile></profiles>"
        "<build><plugins><plugin><artifactId>x</artifactId><configuration><v>${revision}</v></configuration>"
        "</plugin></plugins></build>",
    )

    modules, _ = reactor(tmp_path / "pom.xml", revision="1.3.0", changelist="", sha1="abc")

    assert modules[0].pom.gav == "g:a:1.3.0"
    assert modules[0].pom.deployed.decode() == (tmp_path / "pom.xml").read_text().replace(
        "<lib.version>${revision}${changelist}</lib.version><other>${sha1}-x</other>",
        "<lib.version>1.3.0</lib.version><other>abc-x</other>",
    ).replace("<p.version>${revision}</p.version>", "<p.version>1.3.0</p.version>")


def test_2_a_pom_without_placeholders_is_deployed_as_it_is(tmp_path):
    write(tmp_path, "<groupId>g</groupId><artifactId>a</artifactId><version>1.0</version>")

    assert flattened(tmp_path / "pom.xml", Values(({},), "MAVEN_POM")) is None


# 3. Reactor edges by groupId:artifactId:version


def test_3_a_dependency_on_another_version_of_a_reactor_artifact_is_no_edge(tmp_path):
    parent = "<parent><groupId>com.example</groupId><artifactId>parent</artifactId><version>2.0.0</version></parent>"
    write(
        tmp_path,
        "<groupId>com.example</groupId><artifactId>parent</artifactId><version>2.0.0</version>"
        "<packaging>pom</packaging><modules><module>core</module><module>compat</module></modules>",
    )
    legacy = "<dependency><groupId>com.example</groupId><artifactId>legacy</artifactId><version>1.2.83</version>"
    write(
        tmp_path / "core",
        f"{parent}<artifactId>core</artifactId><dependencies>{legacy}<scope>test</scope></dependency></dependencies>",
    )
    core = dependency("core", "2.0.0", "com.example")
    write(tmp_path / "compat", f"{parent}<artifactId>legacy</artifactId><dependencies>{core}</dependencies>")

    modules, _ = reactor(tmp_path / "pom.xml")

    assert [m.pom.gav for m in modules] == [
        "com.example:parent:2.0.0",
        "com.example:core:2.0.0",
        "com.example:legacy:2.0.0",
    ]
    assert modules[1].needs == ("com.example:parent",)


def test_3_a_managed_or_ranged_version_still_orders_the_reactor(tmp_path):
    managed = f"<dependencyManagement><dependencies>{dependency('lib')}</dependencies></dependencyManagement>"
    path = root(tmp_path, "app lib tool", managed)
    no_version = "<dependency><groupId>com.acme</groupId><artifactId>lib</artifactId></dependency>"
    write(tmp_path / "app", f"{PARENT}<artifactId>app</artifactId><dependencies>{no_version}</dependencies>")
    write(
        tmp_path / "lib",
        f"{PARENT}<artifactId>lib</artifactId><dependencies>{dependency('tool', '[1,2)')}</dependencies>",
    )
    write(tmp_path / "tool", f"{PARENT}<artifactId>tool</artifactId>")

    assert names(path) == ["root", "tool", "lib", "app"]


# 4. Modules of active profiles


def profile(profile_id: str, activation: str, modules: str) -> str:
    listed = "".join(f"<module>{name}</module>" for name in modules.split())
    return f"<profile><id>{profile_id}</id><activation>{activation}</activation><modules>{listed}</modules></profile>"


def profiles_project(folder: Path, *profiles: str, modules: str = "core") -> Path:
    path = root(folder, modules, f"<profiles>{''.join(profiles)}</profiles>")
    for name in ("core", "bom", "extra", "jdk"):
        write(folder / name, f"{PARENT}<artifactId>{name}</artifactId>")
    return path


def test_4_active_by_default_profiles_add_their_modules(tmp_path):
    path = profiles_project(tmp_path, profile("main", "<activeByDefault>true</activeByDefault>", "bom"))

    assert names(path) == ["root", "core", "bom"]


def test_4_a_property_profile_follows_maven_properties_and_turns_default_profiles_off(tmp_path):
    path = profiles_project(
        tmp_path,
        profile("default", "<activeByDefault>true</activeByDefault>", "bom"),
        profile("extra", "<property><name>with.extra</name></property>", "extra"),
    )

    assert names(path) == ["root", "core", "bom"]
    # Maven: an activeByDefault profile is off as soon as another profile of the same POM is on.
    assert names(path, **{"with.extra": "1"}) == ["root", "core", "extra"]


def test_4_negated_property_value_os_and_file_activation(tmp_path):
    path = profiles_project(
        tmp_path,
        profile("a", "<property><name>!skip.bom</name></property>", "bom"),
        profile(
            "b", "<property><name>mode</name><value>!lite</value></property><os><family>unix</family></os>", "extra"
        ),
        profile("c", "<file><exists>${basedir}/core/pom.xml</exists></file>", "jdk"),
    )

    assert names(path) == ["root", "core", "bom", "extra", "jdk"]
    assert names(path, **{"skip.bom": "x", "mode": "lite"}) == ["root", "core", "jdk"]


def test_4_a_jdk_profile_is_undecided_named_in_a_warning_unless_its_module_was_built(tmp_path):
    path = profiles_project(tmp_path, profile("jdk17", "<jdk>[17,)</jdk>", "jdk"))

    modules, warnings = reactor(path)

    assert [m.pom.artifact_id for m in modules] == ["root", "core"]
    assert warnings == [
        f"module jdk of profile jdk17 of {path} is not deployed: whether the build ran with the profile depends on "
        "the JDK of the build (<jdk>[17,)</jdk>; give java.version in MAVEN_PROPERTIES to decide), and its "
        "target/ holds no built artifacts; build it before the pipe, or set MAVEN_PROPERTIES so that the "
        "profile's activation is decided."
    ]
    assert names(path, **{"java.version": "17.0.2"}) == ["root", "core", "jdk"]
    assert names(path, **{"java.version": "11.0.2"}) == ["root", "core"]
    jar(tmp_path / "jdk" / "target" / "jdk-1.0.0.jar")  # evidence: the build ran with the profile
    assert reactor(path) == (reactor(path, **{"java.version": "17"})[0], [])


def test_4_a_profile_turned_on_by_p_only_counts_when_its_module_was_built(tmp_path):
    release = "<profile><id>release</id><modules><module>extra</module></modules></profile>"
    default = profile("main", "<activeByDefault>true</activeByDefault>", "bom")
    path = profiles_project(tmp_path, default, release)

    assert reactor(path) == (reactor(path)[0], [])
    assert names(path) == ["root", "core", "bom"]
    jar(tmp_path / "extra" / "target" / "extra-1.0.0.jar")  # the build ran with -P release
    # Maven: with -P release, the activeByDefault profile is off.
    assert names(path) == ["root", "core", "extra"]


def test_4_a_built_module_of_an_inactive_profile_is_named_in_a_warning(tmp_path):
    path = profiles_project(tmp_path, profile("extra", "<property><name>with.extra</name></property>", "extra"))
    jar(tmp_path / "extra" / "target" / "extra-1.0.0.jar")

    modules, warnings = reactor(path)

    assert [m.pom.artifact_id for m in modules] == ["root", "core"]
    assert warnings == [
        f"module extra of profile extra of {path} has built files in target/ but is not deployed: the profile is "
        "not active with the values the pipe has; if the build activated it (-D…), give the same values in "
        "MAVEN_PROPERTIES."
    ]


# 5. Build plugins' dependencies and extensions order the reactor


def test_5_plugin_dependencies_and_extensions_on_reactor_modules_go_first(tmp_path):
    path = root(tmp_path, "app ext rules")
    plugin = (
        "<build><plugins><plugin><groupId>org.other</groupId><artifactId>checker</artifactId><version>1</version>"
        f"<dependencies>{dependency('rules')}</dependencies></plugin></plugins>"
        "<extensions><extension><groupId>com.acme</groupId><artifactId>ext</artifactId><version>1.0.0</version>"
        "</extension></extensions></build>"
    )
    write(tmp_path / "app", f"{PARENT}<artifactId>app</artifactId>{plugin}")
    write(tmp_path / "ext", f"{PARENT}<artifactId>ext</artifactId>")
    write(tmp_path / "rules", f"{PARENT}<artifactId>rules</artifactId>")

    modules, _ = reactor(path)

    assert [m.pom.artifact_id for m in modules] == ["root", "rules", "ext", "app"]


def test_5_a_plugin_edge_that_would_close_a_cycle_is_dropped_as_maven_drops_it(tmp_path):
    # b's dependency on a is added first (b is read first); a's plugin b would then close a cycle.
    path = root(tmp_path, "b a")
    plugin = "<build><plugins><plugin><groupId>com.acme</groupId><artifactId>b</artifactId></plugin></plugins></build>"
    write(tmp_path / "a", f"{PARENT}<artifactId>a</artifactId>{plugin}")
    write(tmp_path / "b", f"{PARENT}<artifactId>b</artifactId><dependencies>{dependency('a')}</dependencies>")

    assert names(path) == ["root", "a", "b"]


# 6. VERSION and ${revision}


def test_6_version_on_a_tag_sets_revision_and_artifacts_are_looked_up_under_it(workdir):
    revision_project(workdir)
    jar(workdir / "lib" / "target" / "lib-1.0.0.jar")  # built with the POM's default: not what VERSION says

    run = run_in_process(maven_env(VERSION="v1.3.0", BITBUCKET_TAG="v1.3.0"), workdir)

    # Every version check passed; the run stops at the files, before the registry is asked.
    assert run.code == 1
    assert "Project pom.xml: 2 modules, in reactor order: parent (pom), lib (jar)." in run.output
    assert run.last_line.startswith(
        "✖ no artifacts for g:lib:1.3.0 found in lib/target/ (looked for lib-1.3.0.jar; it has lib-1.0.0.jar"
    )


def test_6_version_with_a_literal_pom_version_says_how(workdir):
    write(workdir, "<groupId>g</groupId><artifactId>a</artifactId><version>1.2.0</version>")
    jar(workdir / "target" / "a-1.2.0.jar")

    run = run_in_process(maven_env(VERSION="1.3.0"), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ VERSION is 1.3.0 but g:a's version is 1.2.0, written in pom.xml: set it before the pipe "
        "(mvn versions:set -DnewVersion=1.3.0), or write <version>${revision}</version> with a <revision> default "
        "in <properties> so that VERSION sets it."
    )


def test_6_a_revision_project_on_a_tag_without_version_is_told_to_set_it(workdir):
    revision_project(workdir)

    run = run_in_process(maven_env(BITBUCKET_TAG="v1.3.0"), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ this pipeline runs for tag v1.3.0 but g:parent's version is 1.0.0 (from ${revision}): set VERSION: "
        "$BITBUCKET_TAG so that ${revision} is the tag's version, as mvn -Drevision=… did for the build."
    )


def test_version_and_maven_properties_revision_must_agree(workdir):
    revision_project(workdir)

    run = run_in_process(maven_env(VERSION="1.3.0", MAVEN_PROPERTIES="revision=1.4.0"), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ VERSION (1.3.0) and MAVEN_PROPERTIES revision=1.4.0 disagree: VERSION sets ${revision}; "
        "set only one of them."
    )


# Bounded expansion and bad input (issue 21 item 4)


def test_a_property_expansion_bomb_is_one_error_naming_the_property_in_bounded_memory(tmp_path):
    chain = "".join(f"<p{n}>{('${p' + str(n - 1) + '}') * 10}</p{n}>" for n in range(2, 10))
    write(
        tmp_path,
        f"<groupId>g</groupId><artifactId>a</artifactId><version>${{p9}}</version>"
        f"<properties><p1>xxxxxxxxxx</p1>{chain}</properties>",
    )
    tracemalloc.start()
    started = time.monotonic()

    with pytest.raises(InputError) as error:
        reactor(tmp_path / "pom.xml")

    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - started < 2 and peak < 20_000_000
    assert error.value.message == (
        "MAVEN_POM: the property ${p5} (through ${p9} -> ${p8} -> ${p7} -> ${p6} -> ${p5}) "
        "expands to more than 65536 characters, which no POM value needs: fix the <properties> that repeat each other."
    )


def test_properties_in_a_loop_are_named(tmp_path):
    write(
        tmp_path,
        "<groupId>g</groupId><artifactId>a</artifactId><version>${a}</version>"
        "<properties><a>${b}</a><b>1.${a}</b></properties>",
    )

    with pytest.raises(InputError) as error:
        reactor(tmp_path / "pom.xml")

    assert error.value.message == (
        "MAVEN_POM's properties refer to each other in a loop (${a} -> ${b} -> ${a}): give one of them a literal value."
    )


def test_an_unresolvable_property_and_an_unreadable_module_pom_are_one_error_each(workdir):
    root(workdir, "lib")
    write(workdir / "lib", f"{PARENT}<artifactId>lib</artifactId><version>${{lib.version}}</version>")

    run = run_in_process(maven_env(), workdir)

    assert run.code == 1
    assert run.last_line == (
        "✖ module lib's version '${lib.version}' uses the property ${lib.version}, which the POM does not define: "
        "define it in <properties>, pass it in MAVEN_PROPERTIES (lib.version=…, as mvn -Dlib.version=…), or "
        "write the version literally."
    )
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line]

    (workdir / "lib" / "pom.xml").write_text("<project><artifactId>lib")
    run = run_in_process(maven_env(), workdir)

    assert run.code == 1
    assert run.last_line.startswith("✖ module lib pom.xml is not well-formed XML")


def test_a_reactor_whose_every_module_is_skipped_or_undecided_says_so_before_the_registry(workdir):
    external = "<parent><groupId>org.other</groupId><artifactId>corp</artifactId><version>3</version></parent>"
    plugin = f"<plugin>{DEPLOY_PLUGIN}<configuration><skip>${{corp.skip}}</skip></configuration></plugin>"
    write(
        workdir,
        f"{external}<groupId>com.acme</groupId><artifactId>root</artifactId><version>1.0.0</version>"
        f"<packaging>pom</packaging><build><plugins>{plugin}</plugins></build><modules><module>lib</module></modules>",
    )
    write(
        workdir / "lib",
        f"{PARENT}<artifactId>lib</artifactId><properties><maven.deploy.skip>true</maven.deploy.skip></properties>"
        f"<build><plugins><plugin>{DEPLOY_PLUGIN}<configuration><skip>true</skip></configuration></plugin></plugins>"
        "</build>",
    )

    run = run_in_process(maven_env(), workdir)

    assert run.code == 1
    assert (
        "⚠ com.acme:root:1.0.0 is not deployed: the deploy plugin's <skip>${corp.skip}</skip> uses corp.skip, which "
        "the pipe cannot read; set the value in MAVEN_PROPERTIES or in the POM so that it is decided."
    ) in run.lines
    assert "Skipping com.acme:lib:1.0.0: the deploy plugin's <skip>true</skip> is true." in run.lines
    assert run.last_line == (
        "✖ no module is left to deploy (root undecided, lib skipped): the deploy plugin skips them or the pipe "
        "cannot tell; remove <skip> / maven.deploy.skip from the modules to publish, give MAVEN_PROPERTIES, or "
        "check MAVEN_MODULES."
    )


def test_flattening_keeps_every_other_byte_in_any_encoding(tmp_path):
    data = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\r\n<project xmlns="http://maven.apache.org/POM/4.0.0">'
        b"<description>caf\xe9 ${revision}</description>\r\n  <groupId>g</groupId><artifactId>a</artifactId>"
        b"<version>\n  ${revision}${changelist}\n</version><parent/><properties><version/></properties>"
        b"<profiles><profile><dependencies><dependency><version>[${revision},)</version></dependency>"
        b"</dependencies></profile></profiles></project>"
    )
    (tmp_path / "pom.xml").write_bytes(data)
    values = Values(({"revision": "2.0.0", "changelist": "-SNAPSHOT"},), "MAVEN_POM")

    assert flattened(tmp_path / "pom.xml", values) == data.replace(
        b"\n  ${revision}${changelist}\n", b"\n  2.0.0-SNAPSHOT\n"
    ).replace(b"[${revision},)", b"[2.0.0,)")

"""Parity with real Maven on what a reactor deploys: for reactors this file writes (deploy-plugin
skip configuration, profiles active by default / by property / by file, CI-friendly versions,
BOM imports, nested aggregators, version-matched edges, plugin dependencies), Debian's Maven 3
runs its deploy plugin over the reactor into a staging folder (no network: Debian's
/usr/share/maven-repo stands in for Maven Central), and the pipe plans a dry run of the same POMs.
The modules deployed, their coordinates and their order must be the same. Maven is the oracle:
nothing here says what the answer is, only what the project is.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.maven_deploy import DEPLOY_PLUGIN, JAR_PLUGIN, maven_settings, write_jar
from tests.integration.test_maven import run_pipe

_DEPLOY_BLOCK = re.compile(r"--- maven-deploy-plugin:[^ ]+:deploy \([^)]*\) @ (\S+) ---\n(?:\[INFO\] \n)*\[INFO\] (.*)")
SKIP_PLUGIN = (
    "<build><plugins><plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId>"
    "<version>3.0.0</version><configuration><skip>${skip_deploy}</skip></configuration></plugin></plugins></build>"
)


@dataclass
class Case:
    """A reactor: POM bodies by folder ('' is the root), the -D values of the build, the pipe's variables."""

    modules: dict[str, str]
    properties: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    profiles: str = ""  # -P of the build: the pipe sees only that those profiles' modules were built
    pom: str = "pom.xml"  # MAVEN_POM, and what `mvn -f` builds

    @property
    def built_version(self) -> str | None:
        """The version `mvn -D…` builds a CI-friendly project at (None: the POM's literal version)."""
        if "revision" not in self.properties:
            return None
        return "".join(self.properties.get(name, "") for name in ("revision", "sha1", "changelist"))


def parent(group: str, version: str = "1.0.0", artifact: str = "parent", relative: str = "") -> str:
    path = f"<relativePath>{relative}</relativePath>" if relative else ""
    coordinates = f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
    return f"<parent>{coordinates}{path}</parent>"


def dep(group: str, artifact: str, version: str = "${project.version}", extra: str = "") -> str:
    coordinates = f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
    return f"<dependency>{coordinates}{extra}</dependency>"


def aggregator(group: str, version: str, modules: str, extra: str = "", artifact: str = "parent") -> str:
    listed = "".join(f"<module>{m}</module>" for m in modules.split())
    return (
        f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        f"<packaging>pom</packaging>{extra}<modules>{listed}</modules>"
    )


def profile(profile_id: str, activation: str, modules: str) -> str:
    listed = "".join(f"<module>{m}</module>" for m in modules.split())
    return f"<profile><id>{profile_id}</id><activation>{activation}</activation><modules>{listed}</modules></profile>"


def skip_configuration(g: str) -> Case:
    """Reproduction 1: the deploy plugin's <skip> from a property a module sets; maven.deploy.skip; releases."""
    props = "<properties><skip_deploy>false</skip_deploy></properties>"
    return Case(
        {
            "": aggregator(g, "1.0.0", "lib it tools docs", props + SKIP_PLUGIN),
            "lib": f"{parent(g)}<artifactId>lib</artifactId>",
            "it": f"{parent(g)}<artifactId>it</artifactId><properties><skip_deploy>true</skip_deploy></properties>",
            "tools": f"{parent(g)}<artifactId>tools</artifactId><properties><skip_deploy>releases</skip_deploy>"
            "</properties>",
            "docs": f"{parent(g)}<artifactId>docs</artifactId><properties><maven.deploy.skip>true</maven.deploy.skip>"
            "</properties>",
        }
    )


def skip_in_plugin_management(g: str) -> Case:
    management = SKIP_PLUGIN.replace("<build><plugins>", "<build><pluginManagement><plugins>").replace(
        "</plugins></build>", "</plugins></pluginManagement></build>"
    )
    return Case(
        {
            "": aggregator(
                g, "1.0.0", "lib it", "<properties><skip_deploy>false</skip_deploy></properties>" + management
            ),
            "lib": f"{parent(g)}<artifactId>lib</artifactId><properties><maven.deploy.skip>true</maven.deploy.skip>"
            "</properties>",
            "it": f"{parent(g)}<artifactId>it</artifactId><properties><skip_deploy>true</skip_deploy></properties>",
        },
        properties={"skip_deploy": "false"},
        variables={"MAVEN_PROPERTIES": "skip_deploy=false"},
    )


def profiles_by_default_and_property(g: str, with_extra: bool) -> Case:
    """Reproduction 4: modules of a default profile; a property profile that turns the default one off."""
    profiles = profile("main", "<activeByDefault>true</activeByDefault>", "bom") + profile(
        "extra", "<property><name>with.extra</name></property>", "extra"
    )
    case = Case(
        {
            "": aggregator(g, "1.0.0", "core", f"<profiles>{profiles}</profiles>"),
            "core": f"{parent(g)}<artifactId>core</artifactId>",
            "bom": f"{parent(g)}<artifactId>bom</artifactId><packaging>pom</packaging>",
            "extra": f"{parent(g)}<artifactId>extra</artifactId>",
        }
    )
    if with_extra:
        case.properties = {"with.extra": "true"}
        case.variables = {"MAVEN_PROPERTIES": "with.extra=true"}
    return case


def profiles_by_file_and_negation(g: str) -> Case:
    profiles = (
        profile("has-core", "<file><exists>${basedir}/core/pom.xml</exists></file>", "extra")
        + profile("no-marker", "<file><missing>marker.txt</missing></file>", "bom")
        + profile("not-lite", "<property><name>!lite</name></property>", "app")
    )
    return Case(
        {
            "": aggregator(g, "1.0.0", "core", f"<profiles>{profiles}</profiles>"),
            "core": f"{parent(g)}<artifactId>core</artifactId>",
            "bom": f"{parent(g)}<artifactId>bom</artifactId><packaging>pom</packaging>",
            "extra": f"{parent(g)}<artifactId>extra</artifactId>",
            "app": f"{parent(g)}<artifactId>app</artifactId>",
        }
    )


def profiles_by_jdk_and_os(g: str) -> Case:
    """The JDK of the build is unknown to the pipe: the built module in target/ is its evidence. The
    build ran on Linux, as Pipelines steps with pipes do (and as this machine does)."""
    profiles = (
        profile("modern", "<jdk>[11,)</jdk>", "modern")
        + profile("unix", "<os><family>unix</family></os>", "unixonly")
        + profile("windows", "<os><family>windows</family></os>", "winonly")
    )
    modules = {
        name: f"{parent(g)}<artifactId>{name}</artifactId>" for name in ("core", "modern", "unixonly", "winonly")
    }
    return Case({"": aggregator(g, "1.0.0", "core", f"<profiles>{profiles}</profiles>"), **modules})


def profile_by_command_line(g: str) -> Case:
    """`mvn -Prelease`: the release profile's module is built, which the pipe takes as the sign; Maven
    turns the activeByDefault profile off."""
    profiles = profile("main", "<activeByDefault>true</activeByDefault>", "bom")
    profiles += "<profile><id>release</id><modules><module>dist</module></modules></profile>"
    return Case(
        {
            "": aggregator(g, "1.0.0", "core", f"<profiles>{profiles}</profiles>"),
            "core": f"{parent(g)}<artifactId>core</artifactId>",
            "bom": f"{parent(g)}<artifactId>bom</artifactId><packaging>pom</packaging>",
            "dist": f"{parent(g)}<artifactId>dist</artifactId><dependencies>{dep(g, 'core')}</dependencies>",
        },
        profiles="release",
    )


def ci_friendly(g: str, snapshot: bool) -> Case:
    """Reproductions 2 and 6: ${revision}${changelist}, set by -D (VERSION and MAVEN_PROPERTIES for the pipe)."""
    props = "<properties><revision>0.0.0</revision><changelist>-SNAPSHOT</changelist></properties>"
    version = "${revision}${changelist}"
    case = Case(
        {
            "": aggregator(g, version, "lib app", props),
            "lib": f"{parent(g, version)}<artifactId>lib</artifactId>",
            "app": f"{parent(g, version)}<artifactId>app</artifactId><dependencies>{dep(g, 'lib')}</dependencies>",
        },
        properties={"revision": "1.3.0", "changelist": "-SNAPSHOT" if snapshot else ""},
        variables={"VERSION": "v1.3.0", "MAVEN_PROPERTIES": "changelist=-SNAPSHOT" if snapshot else "changelist="},
    )
    return case


def ci_friendly_sha1_and_property_profile(g: str, snapshot: bool) -> Case:
    """`${revision}${sha1}${changelist}` (Maven's CI-friendly guide), -Dsha1 and -Dchangelist from
    MAVEN_PROPERTIES, and a profile activated by a -D property whose module depends on its siblings at
    ${project.version}."""
    props = "<properties><revision>0.0.0</revision><sha1/><changelist>-SNAPSHOT</changelist></properties>"
    version = "${revision}${sha1}${changelist}"
    profiles = f"<profiles>{profile('dist', '<property><name>dist</name></property>', 'dist')}</profiles>"
    changelist = "-SNAPSHOT" if snapshot else ""
    return Case(
        {
            "": aggregator(g, version, "lib app", props + profiles),
            "lib": f"{parent(g, version)}<artifactId>lib</artifactId>",
            "app": f"{parent(g, version)}<artifactId>app</artifactId><dependencies>{dep(g, 'lib')}</dependencies>",
            "dist": f"{parent(g, version)}<artifactId>dist</artifactId><dependencies>{dep(g, 'app')}"
            f"{dep(g, 'lib')}</dependencies>",
        },
        properties={"revision": "2.1.0", "sha1": "-abc1234", "changelist": changelist, "dist": "true"},
        variables={"VERSION": "2.1.0", "MAVEN_PROPERTIES": f"sha1=-abc1234 changelist={changelist} dist=true"},
    )


def bom_import_and_nested_aggregators(g: str) -> Case:
    """A BOM module imported by modules listed before it; nested aggregators with their own parents."""
    imported = f"<dependencyManagement><dependencies>{dep(g, 'bom', extra='<type>pom</type><scope>import</scope>')}"
    imported += "</dependencies></dependencyManagement>"
    managed = "<dependency><groupId>" + g + "</groupId><artifactId>core</artifactId></dependency>"
    return Case(
        {
            "": aggregator(g, "2.1.0", "apps core bom", "", "root"),
            "apps": f"{parent(g, '2.1.0', 'root')}<artifactId>apps</artifactId><packaging>pom</packaging>"
            "<modules><module>web</module><module>cli</module></modules>",
            "apps/web": f"{parent(g, '2.1.0', 'apps')}<artifactId>web</artifactId>{imported}"
            f"<dependencies>{managed}</dependencies>",
            "apps/cli": f"{parent(g, '2.1.0', 'apps')}<artifactId>cli</artifactId><dependencies>{dep(g, 'web')}"
            "</dependencies>",
            "core": f"{parent(g, '2.1.0', 'root')}<artifactId>core</artifactId>{imported}",
            "bom": f"{parent(g, '2.1.0', 'root')}<artifactId>bom</artifactId><packaging>pom</packaging>"
            f"<dependencyManagement><dependencies>{dep(g, 'core')}</dependencies></dependencyManagement>",
        }
    )


def nested_profiles_and_snapshot_skip(g: str) -> Case:
    """A sub-aggregator whose property profile adds a module that the first modules depend on; a
    SNAPSHOT reactor where one module skips snapshots, one releases, and the others leave the
    property undefined (Maven reads the unresolved text, which is not "true")."""
    version = "3.0.0-SNAPSHOT"
    sub_profile = profile("tools", "<property><name>env</name><value>ci</value></property>", "gen")
    return Case(
        {
            "": aggregator(g, version, "api services", SKIP_PLUGIN.replace("${skip_deploy}", "${skip.mode}")),
            "api": f"{parent(g, version)}<artifactId>api</artifactId><dependencies>{dep(g, 'gen')}</dependencies>"
            "<properties><skip.mode>releases</skip.mode></properties>",
            "services": f"{parent(g, version)}<artifactId>services</artifactId><packaging>pom</packaging>"
            f"<modules><module>impl</module></modules><profiles>{sub_profile}</profiles>",
            "services/impl": f"{parent(g, version, 'services')}<artifactId>impl</artifactId>"
            f"<dependencies>{dep(g, 'api')}</dependencies><properties><skip.mode>snapshots</skip.mode></properties>",
            "services/gen": f"{parent(g, version, 'services')}<artifactId>gen</artifactId>",
        },
        properties={"env": "ci"},
        variables={"MAVEN_PROPERTIES": "env=ci"},
    )


def version_matched_edges_and_plugin_dependencies(g: str) -> Case:
    """Reproductions 3 and 5: a test dependency on another version of a reactor artifact is no edge;
    a build plugin's dependency on a reactor module orders the reactor."""
    checker = (
        "<build><plugins><plugin><groupId>org.bbpp.other</groupId><artifactId>checker</artifactId>"
        f"<version>1</version><dependencies>{dep(g, 'rules')}</dependencies></plugin></plugins></build>"
    )
    return Case(
        {
            "": aggregator(g, "2.0.0", "core compat app rules"),
            "core": f"{parent(g, '2.0.0')}<artifactId>core</artifactId><dependencies>"
            f"{dep(g, 'legacy', '1.2.83', '<scope>test</scope>')}</dependencies>",
            "compat": f"{parent(g, '2.0.0')}<artifactId>legacy</artifactId>"
            f"<dependencies>{dep(g, 'core')}</dependencies>",
            "app": f"{parent(g, '2.0.0')}<artifactId>app</artifactId>{checker}",
            "rules": f"{parent(g, '2.0.0')}<artifactId>rules</artifactId>",
        }
    )


CASES = {
    "skip-configuration": skip_configuration,
    "skip-in-plugin-management": skip_in_plugin_management,
    "profile-by-default": lambda g: profiles_by_default_and_property(g, with_extra=False),
    "profile-by-property": lambda g: profiles_by_default_and_property(g, with_extra=True),
    "profile-by-file-and-negation": profiles_by_file_and_negation,
    "profile-by-jdk-and-os": profiles_by_jdk_and_os,
    "profile-by-command-line": profile_by_command_line,
    "ci-friendly-release": lambda g: ci_friendly(g, snapshot=False),
    "ci-friendly-snapshot": lambda g: ci_friendly(g, snapshot=True),
    "ci-friendly-sha1-profile-release": lambda g: ci_friendly_sha1_and_property_profile(g, snapshot=False),
    "ci-friendly-sha1-profile-snapshot": lambda g: ci_friendly_sha1_and_property_profile(g, snapshot=True),
    "bom-import-nested-aggregators": bom_import_and_nested_aggregators,
    "nested-profiles-and-snapshot-skip": nested_profiles_and_snapshot_skip,
    "version-matched-edges-plugin-dependencies": version_matched_edges_and_plugin_dependencies,
}


def write_case(folder: Path, case: Case, built_version: str) -> None:
    """The POMs, and what `mvn package` leaves: a jar per jar module in target/ (for the pipe) and the
    same content in target/classes (for Maven's jar:jar)."""
    for relative, body in case.modules.items():
        directory = folder / relative
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pom.xml").write_text(
            f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>{body}</project>\n',
            encoding="utf-8",
        )
        if "<packaging>pom</packaging>" in body:
            continue
        artifact = re.search(r"</parent><artifactId>([^<]+)</artifactId>", body).group(1)
        write_jar(directory / "target" / f"{artifact}-{built_version}.jar", artifact.encode())
        (directory / "target" / "classes").mkdir(parents=True, exist_ok=True)
        (directory / "target" / "classes" / "content.txt").write_text(artifact, encoding="utf-8")


def maven_deploys(project: Path, case: Case, tmp_path: Path) -> tuple[list[str], list[str]]:
    """groupId:artifactId:version of what Maven's deploy plugin deployed, in the order it deployed them,
    and the artifactIds its deploy goal ran for (deployed or skipped)."""
    staging = tmp_path / "staging"
    settings = maven_settings(tmp_path, "unused", "unused")
    command = [
        "mvn", "-B", "-ntp", "-s", str(settings), f"-Dmaven.repo.local={tmp_path / 'm2'}",
        "-f", str(project / case.pom), f"{JAR_PLUGIN}:jar",
        f"{DEPLOY_PLUGIN}:deploy", f"-DaltDeploymentRepository=staging::file://{staging}",
        *(f"-D{name}={value}" for name, value in case.properties.items()),
        *([f"-P{case.profiles}"] if case.profiles else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    blocks = _DEPLOY_BLOCK.findall(done.stdout)
    deployed = [artifact for artifact, said in blocks if not said.startswith("Skipping")]
    poms = {path.parent.parent.name: path for path in staging.rglob("*.pom")}
    assert sorted(poms) == sorted(deployed), done.stdout  # what the log says is what the folder holds
    coordinates = []
    for artifact in deployed:
        folder = poms[artifact].parent
        group = folder.parent.parent.relative_to(staging).as_posix().replace("/", ".")
        coordinates.append(f"{group}:{artifact}:{folder.name}")
    return coordinates, [artifact for artifact, _ in blocks]


def pipe_plans(sandbox, project: Path, case: Case) -> list[str]:
    run = run_pipe(sandbox, project, DRY_RUN="true", MAVEN_POM=case.pom, **case.variables)
    assert run.code == 0, run.output
    summary = json.loads((project.parent / "storage" / "bitbucket-packages-publish.json").read_text())
    details = summary.get("details", summary)
    # A reactor lists its modules; a single POM is one plan, or none when the deploy plugin skips it.
    modules = details["modules"] if "modules" in details else [details] if "group_id" in details else []
    return [f"{m['group_id']}:{m['artifact_id']}:{m['base_version']}" for m in modules]


@pytest.mark.parametrize("name", list(CASES))
def test_the_pipe_deploys_the_modules_maven_deploys_in_maven_order(sandbox, tmp_path, unique, name):
    group = f"org.bbpp.rparity.{unique('g').replace('-', '')}"
    case = CASES[name](group)
    built = case.built_version
    pipe_project = tmp_path / "pipe" / "clone"
    write_case(pipe_project, case, built or _literal_version(case))
    maven_project = tmp_path / "mvn"
    shutil.copytree(pipe_project, maven_project)

    by_maven, _ = maven_deploys(maven_project, case, tmp_path)
    by_pipe = pipe_plans(sandbox, pipe_project, case)

    assert by_maven, "Maven deployed nothing: the case tests nothing"
    assert by_pipe == by_maven, f"Maven: {by_maven}\npipe:  {by_pipe}"


def _literal_version(case: Case) -> str:
    return re.search(r"<version>([^<$]+)</version>", case.modules[""]).group(1)


def single_pom(g: str, child_properties: str, version: str = "1.0.0", **run: str) -> Case:
    """MAVEN_POM (`mvn -f`) is `it/pom.xml`, no <modules>, its parent on disk at ../pom.xml configuring
    the deploy plugin's skip in pluginManagement from a property (reproduction 1 without a reactor)."""
    management = SKIP_PLUGIN.replace("<build><plugins>", "<build><pluginManagement><plugins>").replace(
        "</plugins></build>", "</plugins></pluginManagement></build>"
    )
    root = (
        f"<groupId>{g}</groupId><artifactId>parent</artifactId><version>1.0.0</version><packaging>pom</packaging>"
        f"<properties><skip_deploy>false</skip_deploy></properties>{management}"
    )
    it = (
        f"{parent(g)}<artifactId>it</artifactId><version>{version}</version><properties>{child_properties}</properties>"
    )
    case = Case({"": root, "it": it}, pom="it/pom.xml")
    if run:
        case.properties = dict(run)
        case.variables = {"MAVEN_PROPERTIES": " ".join(f"{name}={value}" for name, value in run.items())}
    return case


SINGLE_CASES = {
    "skipped-through-the-parent": lambda g: single_pom(g, "<skip_deploy>true</skip_deploy>"),
    "skip-overridden-by-a-d-value": lambda g: single_pom(g, "<skip_deploy>true</skip_deploy>", skip_deploy="false"),
    "skip-releases-on-a-release": lambda g: single_pom(g, "<skip_deploy>releases</skip_deploy>"),
    "skip-releases-on-a-snapshot": lambda g: single_pom(g, "<skip_deploy>releases</skip_deploy>", "1.1.0-SNAPSHOT"),
    "skip-from-a-d-value": lambda g: single_pom(g, "", skip_deploy="true"),
}


@pytest.mark.parametrize("name", list(SINGLE_CASES))
def test_a_single_pom_is_deployed_or_skipped_as_maven_decides(sandbox, tmp_path, unique, name):
    group = f"org.bbpp.sparity.{unique('g').replace('-', '')}"
    case = SINGLE_CASES[name](group)
    pipe_project = tmp_path / "pipe" / "clone"
    version = re.search(r"<artifactId>it</artifactId><version>([^<]+)</version>", case.modules["it"]).group(1)
    write_case(pipe_project, case, version)
    maven_project = tmp_path / "mvn"
    shutil.copytree(pipe_project, maven_project)

    by_maven, ran = maven_deploys(maven_project, case, tmp_path)
    by_pipe = pipe_plans(sandbox, pipe_project, case)

    assert ran == ["it"], "Maven's deploy goal did not run for the POM: the case tests nothing"
    assert by_pipe == by_maven, f"Maven: {by_maven}\npipe:  {by_pipe}"

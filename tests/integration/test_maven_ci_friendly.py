"""CI-friendly versions end to end: the project is built by real Maven with the build's `-D` values
(`mvn -Drevision=… jar:jar`, offline: Debian's /usr/share/maven-repo stands in for Maven Central,
which holds the jar plugin but not the compiler or resources plugins `package` also runs), the
pipe publishes what Maven built with VERSION / MAVEN_PROPERTIES saying the same, and a consumer
built with real Maven resolves every module through the deployed, flattened POMs with checksum
policy `fail`. The jars Maven resolves must be the very files Maven built.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.maven_deploy import JAR_PLUGIN, maven_settings
from tests.integration.test_maven import mvn_get, remote, run_pipe, sha1
from tests.integration.test_maven_reactor import consume

PLACEHOLDERS = ("${revision}", "${sha1}", "${changelist}")


@pytest.fixture
def group(unique) -> str:
    return f"org.bbpp.cif.{unique('g').replace('-', '')}"


def write(folder: Path, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(
        f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>{body}</project>\n',
        encoding="utf-8",
    )
    classes = folder / "target" / "classes"
    classes.mkdir(parents=True, exist_ok=True)
    (classes / "content.txt").write_text(f"built from {folder.name}", encoding="utf-8")


def reactor(folder: Path, group: str, version: str, defaults: str, lib_version: str = "${project.version}") -> None:
    """parent (at `version`, with the `<properties>` defaults) aggregating lib and app; app depends on
    lib at `lib_version` (${project.version}, as reactor siblings usually do)."""
    parent = f"<parent><groupId>{group}</groupId><artifactId>parent</artifactId><version>{version}</version></parent>"
    write(
        folder,
        f"<groupId>{group}</groupId><artifactId>parent</artifactId><version>{version}</version><packaging>pom</packaging>"
        f"<properties>{defaults}</properties><modules><module>lib</module><module>app</module></modules>",
    )
    write(folder / "lib", f"{parent}<artifactId>lib</artifactId>")
    write(
        folder / "app",
        f"{parent}<artifactId>app</artifactId><dependencies><dependency><groupId>{group}</groupId>"
        f"<artifactId>lib</artifactId><version>{lib_version}</version></dependency></dependencies>",
    )


def maven_builds(project: Path, tmp_path: Path, **defines: str) -> None:
    """`mvn -D… jar:jar` over the project: Maven names the jars by the version the -D values make."""
    settings = maven_settings(tmp_path, "unused", "unused")
    command = [
        "mvn", "-B", "-ntp", "-s", str(settings), f"-Dmaven.repo.local={tmp_path / 'm2-build'}",
        "-f", str(project / "pom.xml"), f"{JAR_PLUGIN}:jar", *(f"-D{name}={value}" for name, value in defines.items()),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def deployed_pom(sandbox, group: str, artifact: str, version: str) -> str:
    answer = remote(sandbox, f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.pom")
    assert answer.status_code == 200, answer.status_code
    return answer.text


def assert_consumer_gets_what_maven_built(sandbox, tmp_path, project: Path, group: str, version: str) -> None:
    resolved, deps = consume(sandbox, tmp_path, group, "app", version)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    for module in ("app", "lib"):
        built = project / module / "target" / f"{module}-{version}.jar"
        assert built.is_file(), f"Maven did not build {built.name}"
        resolved_jar = next(deps.glob(f"{module}-{version.removesuffix('-SNAPSHOT')}*.jar"))
        assert sha1(resolved_jar) == sha1(built)


@pytest.mark.parametrize(("given", "tag"), [("1.3.0", None), ("v1.3.0", "v1.3.0")], ids=["version", "version-from-tag"])
def test_6_a_revision_reactor_built_with_drevision_is_published_under_version(
    sandbox, workdir, tmp_path, group, given, tag
):
    """Reproduction 6: `mvn -Drevision=1.3.0 package`, then the pipe with VERSION: 1.3.0 (or, on a tag
    pipeline, VERSION: $BITBUCKET_TAG = v1.3.0). The POM's own default is a SNAPSHOT nobody releases."""
    reactor(workdir, group, "${revision}", "<revision>0.0.0-SNAPSHOT</revision>")
    maven_builds(workdir, tmp_path, revision="1.3.0")

    run = run_pipe(sandbox, workdir, VERSION=given, **({"BITBUCKET_TAG": tag} if tag else {}))

    assert run.code == 0, run.output
    assert run.last_line.startswith(
        f"✔ published 3 modules ({group}:parent:1.3.0, {group}:lib:1.3.0, {group}:app:1.3.0;"
    )
    fetched = mvn_get(sandbox, f"{group}:lib:1.3.0", tmp_path / "got")  # the issue's own check
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    for artifact in ("parent", "lib", "app"):
        pom = deployed_pom(sandbox, group, artifact, "1.3.0")
        assert "${revision}" not in pom and "<version>1.3.0</version>" in pom
    assert_consumer_gets_what_maven_built(sandbox, tmp_path, workdir, group, "1.3.0")


def test_6_a_single_revision_pom_without_default_is_published_under_version(sandbox, workdir, tmp_path, group):
    write(workdir, f"<groupId>{group}</groupId><artifactId>app</artifactId><version>${{revision}}</version>")
    maven_builds(workdir, tmp_path, revision="1.3.0")

    run = run_pipe(sandbox, workdir, VERSION="v1.3.0", BITBUCKET_TAG="v1.3.0")

    assert run.code == 0, run.output
    assert run.last_line.startswith(f"✔ published {group}:app:1.3.0 (")
    assert "<version>1.3.0</version>" in deployed_pom(sandbox, group, "app", "1.3.0")
    fetched = mvn_get(sandbox, f"{group}:app:1.3.0", tmp_path / "got")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert sha1(next((tmp_path / "got").rglob("app-1.3.0.jar"))) == sha1(workdir / "target" / "app-1.3.0.jar")


@pytest.mark.parametrize("changelist", ["-SNAPSHOT", ""], ids=["snapshot", "release"])
def test_revision_sha1_changelist_from_version_and_maven_properties(sandbox, workdir, tmp_path, group, changelist):
    """`${revision}${sha1}${changelist}` as Maven's CI-friendly guide writes it, built with
    -Drevision -Dsha1 -Dchangelist; the pipe is told the same with VERSION and MAVEN_PROPERTIES."""
    defaults = "<revision>0.0.0</revision><sha1/><changelist>-SNAPSHOT</changelist>"
    reactor(workdir, group, "${revision}${sha1}${changelist}", defaults)
    maven_builds(workdir, tmp_path, revision="2.1.0", sha1="-abc1234", changelist=changelist)
    version = f"2.1.0-abc1234{changelist}"

    run = run_pipe(sandbox, workdir, VERSION="2.1.0", MAVEN_PROPERTIES=f"sha1=-abc1234 changelist={changelist}")

    assert run.code == 0, run.output
    assert f"{group}:app:{version.removesuffix('-SNAPSHOT')}" in run.last_line  # a SNAPSHOT says its timestamp
    app = deployed_pom(sandbox, group, "app", version) if not changelist else None
    if app is not None:
        assert not any(placeholder in app for placeholder in PLACEHOLDERS)
        assert app == (workdir / "app" / "pom.xml").read_text().replace("${revision}${sha1}${changelist}", version)
    assert_consumer_gets_what_maven_built(sandbox, tmp_path, workdir, group, version)


def test_a_dependency_version_through_a_property_holding_revision_resolves_to_the_built_one(
    sandbox, workdir, tmp_path, group
):
    """`<lib.version>${revision}</lib.version>` in the parent: consumers read it from the deployed
    parent, where an unflattened `${revision}` would be the POM's default (0.0.0-SNAPSHOT), not 1.3.0."""
    defaults = "<revision>0.0.0-SNAPSHOT</revision><lib.version>${revision}</lib.version>"
    reactor(workdir, group, "${revision}", defaults, lib_version="${lib.version}")
    maven_builds(workdir, tmp_path, revision="1.3.0")

    run = run_pipe(sandbox, workdir, VERSION="1.3.0")

    assert run.code == 0, run.output
    assert "<lib.version>1.3.0</lib.version>" in deployed_pom(sandbox, group, "parent", "1.3.0")
    assert_consumer_gets_what_maven_built(sandbox, tmp_path, workdir, group, "1.3.0")

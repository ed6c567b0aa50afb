"""MAVEN_STAGING_DIR against the real nginx Maven repository: a staging folder written by real
Maven (`mvn deploy -DaltDeploymentRepository=stage::file:…` over a multi-module reactor, offline
on Debian's repository) must end up in the repository exactly as Maven's own deploy of the same
project puts it there (metadata aside); a Gradle-shaped folder goes up as staged; real Maven
resolves both with strict checksums; bad folders stop with one ✖ and nothing uploaded."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from bench.maven_deploy import maven_settings, reactor_deploy_command, write_reactor
from tests.integration.test_concurrency import run_together, writer_env
from tests.integration.test_maven import mvn_get, run_pipe

_LINK = re.compile(r'<a href="([^"?]+)">')
_TIMESTAMPED = re.compile(r"-\d{8}\.\d{6}-\d+")
# Reproducible jars: Maven's jar plugin stamps entries with this time, so that two packagings of the
# same classes (one deployed by Maven, one staged) have the same bytes.
OUTPUT_TIMESTAMP = "-Dproject.build.outputTimestamp=2024-01-02T03:04:05Z"
# The jar plugin's test-jar goal attaches a `tests` classifier jar to every module (the parent too).
TEST_JAR = "org.apache.maven.plugins:maven-jar-plugin:3.3.0:test-jar"
ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


def remote_tree(sandbox, base: str, folder: str) -> dict[str, bytes]:
    """Every file under `folder` of the repository at `base` (nginx's directory listings), by
    path, with SNAPSHOT timestamps made comparable and maven-metadata.xml files left out."""
    files: dict[str, bytes] = {}
    response = requests.get(f"{base}{folder}/", auth=sandbox.reader, timeout=30)
    assert response.status_code == 200, f"{base}{folder}/"
    for name in _LINK.findall(response.text):
        if name == "../":
            continue
        if name.endswith("/"):
            files.update(remote_tree(sandbox, base, f"{folder}/{name.rstrip('/')}"))
        elif not name.startswith("maven-metadata.xml"):
            data = requests.get(f"{base}{folder}/{name}", auth=sandbox.reader, timeout=30).content
            files[_TIMESTAMPED.sub("-TIMESTAMP-N", f"{folder}/{name}")] = data
    return files


def run_maven(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0-SNAPSHOT"])
def test_a_folder_staged_by_maven_goes_up_as_maven_deploys_it(sandbox, tmp_path, unique, version):
    """Parent, lib and app (depending on lib) deployed by Maven to a repository of its own on the
    nginx server, and staged by Maven into the clone; the pipe deploys the staging folder."""
    group = f"org.bbpp.staging.{unique('g').replace('-', '')}"
    names = {"parent": unique("stg-parent"), "lib": unique("stg-lib"), "app": unique("stg-app")}
    project = tmp_path / "clone"
    write_reactor(project, group, names["parent"], version, {names["app"]: [names["lib"]], names["lib"]: []}, 4)
    settings = maven_settings(tmp_path, sandbox.writer_user, sandbox.writer_token)
    maven_side = f"{sandbox.maven_registry}{unique('mvn-side')}/"
    staging = project / "target" / "staging-deploy"
    for url in (maven_side, f"file:{staging}"):
        command = reactor_deploy_command(project, settings, tmp_path / "m2", url)
        deploy_goal = next(index for index, word in enumerate(command) if word.endswith(":deploy"))
        command[deploy_goal:deploy_goal] = [TEST_JAR]  # packaged before the deploy, as the lifecycle does
        run_maven([*command, OUTPUT_TIMESTAMP], tmp_path)
    assert (staging / group.replace(".", "/") / names["lib"] / version / "maven-metadata.xml").exists() == (
        version.endswith("-SNAPSHOT")
    )

    pipe = run_pipe(sandbox, project, MAVEN_STAGING_DIR="target/staging-deploy")
    assert pipe.code == 0, pipe.output

    folder = group.replace(".", "/")
    by_maven = remote_tree(sandbox, maven_side, folder)
    by_pipe = remote_tree(sandbox, sandbox.maven_registry, folder)
    # Three POMs, two jars and three `tests` jars, each with .md5 and .sha1.
    assert len(by_maven) == (3 + 2 + 3) * 3
    # The same files with the same bytes; the pipe adds .sha256/.sha512 next to each, as it always does.
    assert {path: data for path, data in by_pipe.items() if path.rsplit(".", 1)[-1] in ALGORITHMS[2:]} != {}
    assert {path: data for path, data in by_pipe.items() if path.rsplit(".", 1)[-1] not in ALGORITHMS[2:]} == by_maven
    assert {path.rsplit(".", 1)[-1] for path in set(by_pipe) - set(by_maven)} == {"sha256", "sha512"}
    for artifact, packaging in ((names["app"], "jar"), (names["lib"], "jar:tests"), (names["parent"], "pom")):
        consumer = mvn_get(sandbox, f"{group}:{artifact}:{version}:{packaging}", tmp_path / "got")
        assert consumer.returncode == 0, consumer.stdout + consumer.stderr

    again = run_pipe(sandbox, project, MAVEN_STAGING_DIR="target/staging-deploy")
    assert again.code == 0 and "already published" in again.last_line, again.output
    assert remote_tree(sandbox, sandbox.maven_registry, folder) == by_pipe


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def gradle_module(group: str, artifact: str, version: str, jar: bytes) -> bytes:
    """A Gradle module metadata file naming the jar, as `maven-publish` writes it."""
    variant = {"name": "apiElements", "files": [{"name": f"{artifact}-{version}.jar", "size": len(jar)}]}
    variant["files"][0]["sha1"] = digest(jar, "sha1")
    component = {"group": group, "module": artifact, "version": version}
    return json.dumps({"formatVersion": "1.1", "component": component, "variants": [variant]}, indent=2).encode()


def stage_gradle(staging: Path, group: str, artifact: str, version: str) -> dict[str, bytes]:
    """What Gradle's maven-publish writes to a local folder repository: POM with the Gradle-metadata
    marker, .module, main, sources and javadoc jars, each with all four checksum files. Returns the
    staged files by name."""
    folder = staging / group.replace(".", "/") / artifact / version
    folder.mkdir(parents=True)
    jar = f"{artifact} {version} classes".encode()
    files = {
        f"{artifact}-{version}.pom": (
            '<?xml version="1.0" encoding="UTF-8"?>\n<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
            "  <!-- do_not_remove: published-with-gradle-metadata -->\n  <modelVersion>4.0.0</modelVersion>\n"
            f"  <groupId>{group}</groupId>\n  <artifactId>{artifact}</artifactId>\n  <version>{version}</version>\n"
            "</project>\n"
        ).encode(),
        f"{artifact}-{version}.module": gradle_module(group, artifact, version, jar),
        f"{artifact}-{version}.jar": jar,
        f"{artifact}-{version}-sources.jar": b"sources",
        f"{artifact}-{version}-javadoc.jar": b"javadoc",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
        for algorithm in ALGORITHMS:
            (folder / f"{name}.{algorithm}").write_text(digest(data, algorithm))
    metadata = staging / group.replace(".", "/") / artifact / "maven-metadata.xml"
    metadata.write_text(f"<metadata><groupId>{group}</groupId><artifactId>{artifact}</artifactId></metadata>")
    return files


def test_a_gradle_shaped_folder_goes_up_as_staged_and_maven_resolves_it(sandbox, workdir, tmp_path, unique):
    group, artifact, version = f"org.bbpp.gradle.{unique('g').replace('-', '')}", unique("core"), "2.3.0"
    staged = stage_gradle(workdir / "build" / "staging-deploy", group, artifact, version)

    run = run_pipe(sandbox, workdir, MAVEN_STAGING_DIR="build/staging-deploy")
    assert run.code == 0, run.output

    folder = f"{group.replace('.', '/')}/{artifact}/{version}"
    on_server = remote_tree(sandbox, sandbox.maven_registry, folder)
    expected = {f"{folder}/{name}": data for name, data in staged.items()}
    expected |= {
        f"{folder}/{name}.{algorithm}": digest(data, algorithm).encode()
        for name, data in staged.items()
        for algorithm in ALGORITHMS
    }
    assert on_server == expected
    for classifier in ("", "sources", "javadoc"):
        coordinates = f"{group}:{artifact}:{version}:jar" + (f":{classifier}" if classifier else "")
        consumer = mvn_get(sandbox, coordinates, tmp_path / "got")
        assert consumer.returncode == 0, consumer.stdout + consumer.stderr
    assert (tmp_path / "got" / f"{artifact}-{version}.jar").read_bytes() == staged[f"{artifact}-{version}.jar"]


def test_a_gradle_shaped_snapshot_keeps_its_timestamped_names(sandbox, workdir, tmp_path, unique):
    """Gradle stages SNAPSHOTs as timestamped build 1 of every run; Maven resolves the staged build."""
    group, artifact = f"org.bbpp.gradle.{unique('g').replace('-', '')}", unique("core")
    staging = workdir / "build" / "staging-deploy"
    folder = staging / group.replace(".", "/") / artifact / "4.0-SNAPSHOT"
    for timestamp in ("20240102.030405", "20240103.101010"):
        built = stage_gradle(tmp_path / f"gradle-{timestamp}", group, artifact, f"4.0-{timestamp}-1")
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()  # each CI run starts from a clean build folder
        for source in (tmp_path / f"gradle-{timestamp}").rglob(f"{artifact}-4.0-*"):
            (folder / source.name).write_bytes(source.read_bytes())
        run = run_pipe(sandbox, workdir, MAVEN_STAGING_DIR="build/staging-deploy")
        assert run.code == 0, run.output

    consumer = mvn_get(sandbox, f"{group}:{artifact}:4.0-SNAPSHOT:jar", tmp_path / "got")
    assert consumer.returncode == 0, consumer.stdout + consumer.stderr
    assert f"{artifact}-4.0-20240103.101010-1.jar" in consumer.stdout
    got = next((tmp_path / "got").glob(f"{artifact}-4.0-*.jar"))
    assert got.read_bytes() == built[f"{artifact}-4.0-20240103.101010-1.jar"]


def break_checksum(staging: Path) -> None:
    next(staging.rglob("*.jar.sha1")).write_text("0" * 40)


def add_stray_file(staging: Path) -> None:
    (staging / "NOTES.txt").write_text("not an artifact")


def empty_folder(staging: Path) -> None:
    for path in sorted(staging.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()


@pytest.mark.parametrize(
    ("spoil", "extra", "message"),
    [
        (break_checksum, {}, "has checksum files that do not match their files"),
        (add_stray_file, {}, "has files outside a <group>/<artifactId>/<version>/ folder (NOTES.txt)"),
        (empty_folder, {}, "holds no <group path>/<artifactId>/<version>/ folder to deploy"),
        (lambda staging: None, {"MAVEN_POM": "pom.xml"}, "MAVEN_STAGING_DIR and MAVEN_POM are both set"),
    ],
    ids=["checksum mismatch", "stray file", "no versions", "mixed variables"],
)
def test_bad_staging_folders_stop_with_one_line_and_nothing_uploaded(sandbox, workdir, unique, spoil, extra, message):
    group = f"org.bbpp.gradle.{unique('g').replace('-', '')}"
    staging = workdir / "build" / "staging-deploy"
    stage_gradle(staging, group, "core", "1.0.0")
    spoil(staging)

    run = run_pipe(sandbox, workdir, MAVEN_STAGING_DIR="build/staging-deploy", **extra)

    assert run.code == 1
    assert run.last_line.startswith("✖ ") and message in run.last_line, run.output
    assert sum(line.startswith("✖") for line in run.lines) == 1
    listing = requests.get(f"{sandbox.maven_registry}{group.replace('.', '/')}/", auth=sandbox.reader, timeout=30)
    assert listing.status_code == 404


def test_parallel_staged_deploys_keep_every_version(sandbox, tmp_path, unique):
    """Four pipes deploying staging folders with different versions of one artifact at the same
    moment: the merged metadata lists every version, and its checksum files match it."""
    group, artifact = f"org.bbpp.gradle.{unique('g').replace('-', '')}", "core"
    versions = [f"1.0.{n}" for n in range(4)]
    jobs = []
    for version in versions:
        clone = tmp_path / version
        stage_gradle(clone / "build" / "staging-deploy", group, artifact, version)
        env = writer_env(
            sandbox, REGISTRY_URL=sandbox.maven_registry, MAVEN_STAGING_DIR="build/staging-deploy", PACKAGE_TYPE="maven"
        )
        jobs.append((env, clone))

    for run in run_together(jobs):
        assert run.code == 0, run.output

    url = f"{sandbox.maven_registry}{group.replace('.', '/')}/{artifact}/maven-metadata.xml"
    metadata = requests.get(url, auth=sandbox.reader, timeout=30).content
    assert sorted(re.findall(r"<version>([^<]+)</version>", metadata.decode())) == versions
    for algorithm in ("md5", "sha1"):
        published = requests.get(f"{url}.{algorithm}", auth=sandbox.reader, timeout=30).text.split()[0]
        assert published == digest(metadata, algorithm)

"""MAVEN_STAGING_DIR: a staging folder in Maven repository layout deployed as staged, against an
in-memory Maven repository mounted at the HTTP seam (tests/fakehttp.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path

import pytest

from pipe.config import load_config
from pipe.errors import PipeError
from pipe.masking import SecretMasker
from pipe.maven import deploy as maven_deploy
from pipe.maven import publish as maven_publisher
from pipe.maven.metadata import parse_artifact_metadata, parse_snapshot_metadata
from pipe.outputs import Publication
from tests.conftest import assert_no_secret, base_env, run_in_process
from tests.unit.fake_maven import BASE, FakeMavenRepository

URL = BASE
LOG = logging.getLogger("test-maven-staging")
ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


def repository_with(files: dict[str, bytes] | None = None) -> FakeMavenRepository:
    repository = FakeMavenRepository()
    repository.files.update(files or {})
    return repository


def puts(repository: FakeMavenRepository) -> list[str]:
    """Repository paths of every PUT, in order."""
    return [path for method, path in repository.calls if method == "PUT"]


def text(repository: FakeMavenRepository, path: str) -> str:
    return repository.files[path].decode()


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def stage(root: Path, relative: str, data: bytes, checksums: tuple[str, ...] = ("md5", "sha1")) -> None:
    """A file as a build stages it, with the checksum files it writes next to it."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    for algorithm in checksums:
        path.with_name(f"{path.name}.{algorithm}").write_text(digest(data, algorithm))


def pom(group: str, artifact: str, version: str, marker: bool = False) -> bytes:
    gradle = "<!-- do_not_remove: published-with-gradle-metadata -->" if marker else ""
    return (
        f"<project>{gradle}<modelVersion>4.0.0</modelVersion><groupId>{group}</groupId>"
        f"<artifactId>{artifact}</artifactId><version>{version}</version></project>"
    ).encode()


def stage_maven_release(root: Path, version: str = "1.0.0") -> None:
    """What `mvn deploy -DaltDeploymentRepository=stage::file:…` writes for a release of lib."""
    folder = f"com/acme/lib/{version}"
    stage(root, f"{folder}/lib-{version}.pom", pom("com.acme", "lib", version))
    stage(root, f"{folder}/lib-{version}.jar", b"jar bytes " + version.encode())
    stage(root, f"{folder}/lib-{version}-sources.jar", b"sources " + version.encode())
    stage(root, "com/acme/lib/maven-metadata.xml", b"<metadata><versioning><versions/></versioning></metadata>")


def workdir_with_staging(tmp_path: Path) -> tuple[Path, Path]:
    clone = tmp_path / "clone"
    staging = clone / "build" / "staging-deploy"
    staging.mkdir(parents=True)
    return clone, staging


def deploy(clone: Path, repository: FakeMavenRepository, **env: str) -> Publication:
    variables = {"PACKAGE_TYPE": "maven", "REGISTRY_URL": URL, "MAVEN_STAGING_DIR": "build/staging-deploy", **env}
    config = dataclasses.replace(load_config(base_env(**variables), clone), transport=repository)
    return maven_publisher.publish(config, LOG, SecretMasker())


def refused(clone: Path, repository: FakeMavenRepository, **env: str) -> str:
    """The message of a whole run that must end with one ✖ line before any request."""
    variables = {"PACKAGE_TYPE": "maven", "REGISTRY_URL": URL, "MAVEN_STAGING_DIR": "build/staging-deploy", **env}
    run = run_in_process(base_env(**variables), clone, transport=repository)
    assert run.code == 1
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line]
    assert repository.requests == []
    assert_no_secret(run.output)
    return run.last_line.removeprefix("✖ ")


# --- deploying -------------------------------------------------------------------------------------


def test_release_goes_up_as_staged_with_every_checksum_and_merged_metadata(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    earlier = (
        b"<metadata><versioning><release>0.9.0</release><versions><version>0.9.0</version></versions>"
        b"</versioning></metadata>"
    )
    repository = repository_with({"com/acme/lib/maven-metadata.xml": earlier})

    result = deploy(clone, repository)

    for name in ("lib-1.0.0.pom", "lib-1.0.0.jar", "lib-1.0.0-sources.jar"):
        data = (staging / "com/acme/lib/1.0.0" / name).read_bytes()
        assert repository.files[f"com/acme/lib/1.0.0/{name}"] == data
        for algorithm in ALGORITHMS:  # md5/sha1 as staged, sha256/sha512 added
            assert text(repository, f"com/acme/lib/1.0.0/{name}.{algorithm}") == digest(data, algorithm)
    merged = parse_artifact_metadata(repository.files["com/acme/lib/maven-metadata.xml"], "", "com.acme", "lib")
    assert (merged.versions, merged.release, merged.latest) == (["0.9.0", "1.0.0"], "1.0.0", "1.0.0")
    assert result.summary == f"published 1 version (com.acme:lib:1.0.0; 3 files) to {URL}"
    assert result.variables["PUBLISHED_MODULES"] == "com.acme:lib:1.0.0"


def test_poms_and_artifacts_go_up_before_any_metadata(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    stage(staging, "com/acme/app/1.0.0/app-1.0.0.pom", pom("com.acme", "app", "1.0.0"))
    stage(staging, "com/acme/app/1.0.0/app-1.0.0.war", b"war")
    repository = FakeMavenRepository()

    deploy(clone, repository)

    files = [path for path in puts(repository) if path.rsplit(".", 1)[-1] not in ALGORITHMS]
    first_metadata = min(index for index, path in enumerate(files) if path.endswith("maven-metadata.xml"))
    assert len(files[:first_metadata]) == 5 and not any("maven-metadata" in path for path in files[:first_metadata])
    assert all(path.endswith(".pom") for path in files[:2]), files


def test_a_rerun_uploads_nothing_and_leaves_the_metadata(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    repository = FakeMavenRepository()
    deploy(clone, repository)
    uploaded = len(puts(repository))

    result = deploy(clone, repository)

    assert len(puts(repository)) == uploaded
    assert result.summary == f"1 version (com.acme:lib:1.0.0) is already published at {URL} with the same content"


class MetadataOverwritten(FakeMavenRepository):
    """Another deploy's metadata wins every race: each write of the artifact's list is replaced by one
    that names only 0.9.0."""

    def handle(self, sent):
        answer = super().handle(sent)
        if sent.method == "PUT" and sent.path.endswith("/com/acme/lib/maven-metadata.xml"):
            self.files["com/acme/lib/maven-metadata.xml"] = (
                b"<metadata><groupId>com.acme</groupId><artifactId>lib</artifactId><versioning>"
                b"<versions><version>0.9.0</version></versions></versioning></metadata>"
            )
        return answer


def test_metadata_that_keeps_changing_under_other_deploys_ends_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(maven_deploy, "settle_time", lambda started: 0)
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    repository = MetadataOverwritten()
    variables = {"PACKAGE_TYPE": "maven", "REGISTRY_URL": URL, "MAVEN_STAGING_DIR": "build/staging-deploy"}

    run = run_in_process(base_env(**variables), clone, transport=repository)

    assert run.code == 1
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line]
    assert run.last_line == (
        f"✖ {URL}com/acme/lib/maven-metadata.xml kept changing under other deploys and does not list 1.0.0: the "
        "files are uploaded; re-run the step to add the version to the metadata."
    )
    assert puts(repository).count("com/acme/lib/maven-metadata.xml") == 5
    assert_no_secret(run.output)


def test_a_release_published_with_other_content_stops_before_any_upload(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    other = b"other jar"
    repository = repository_with(
        {
            "com/acme/lib/1.0.0/lib-1.0.0.jar": other,
            "com/acme/lib/1.0.0/lib-1.0.0.jar.sha1": digest(other, "sha1").encode(),
        }
    )

    with pytest.raises(PipeError) as error:
        deploy(clone, repository)

    assert puts(repository) == []
    assert error.value.message == (
        "com.acme:lib:1.0.0 is already published with different content (lib-1.0.0.jar): releases are immutable; "
        "bump the version in the POM and re-run. Nothing was uploaded."
    )


def test_snapshot_builds_keep_their_staged_names_and_become_the_newest(tmp_path):
    """Each CI run stages build 1 again with its own timestamp; the repository keeps every build and
    its metadata names the newest staged one, whatever buildNumber it had before."""
    clone, staging = workdir_with_staging(tmp_path)
    repository = FakeMavenRepository()
    for timestamp in ("20240102.030405", "20240103.101010"):
        folder = "com/acme/lib/2.0-SNAPSHOT"
        stage(staging, f"{folder}/lib-2.0-{timestamp}-1.pom", pom("com.acme", "lib", "2.0-SNAPSHOT"))
        stage(staging, f"{folder}/lib-2.0-{timestamp}-1.jar", timestamp.encode())
        stage(staging, f"{folder}/maven-metadata.xml", b"<metadata/>")
        result = deploy(clone, repository)
        for staged in (staging / folder).glob(f"lib-2.0-{timestamp}-1.*"):
            staged.unlink()  # the next CI run starts from a clean build folder

    metadata = parse_snapshot_metadata(
        repository.files["com/acme/lib/2.0-SNAPSHOT/maven-metadata.xml"], "", "com.acme", "lib", "2.0-SNAPSHOT"
    )
    assert (metadata.timestamp, metadata.build_number) == ("20240103.101010", 1)
    assert {(f.extension, f.value) for f in metadata.files} == {
        ("pom", "2.0-20240103.101010-1"),
        ("jar", "2.0-20240103.101010-1"),
    }
    assert repository.files["com/acme/lib/2.0-SNAPSHOT/lib-2.0-20240102.030405-1.jar"] == b"20240102.030405"
    assert result.variables["PUBLISHED_VERSION"] == "2.0-20240103.101010-1"


def test_snapshot_files_staged_without_timestamp_become_the_next_build(tmp_path):
    """sbt and others stage `lib-2.0-SNAPSHOT.jar`: it goes up as the repository's next build."""
    clone, staging = workdir_with_staging(tmp_path)
    stage(staging, "com/acme/lib/2.0-SNAPSHOT/lib-2.0-SNAPSHOT.pom", pom("com.acme", "lib", "2.0-SNAPSHOT"))
    stage(staging, "com/acme/lib/2.0-SNAPSHOT/lib-2.0-SNAPSHOT-sources.jar", b"src")
    earlier = (
        b"<metadata><versioning><snapshot><timestamp>20200101.000000</timestamp><buildNumber>6</buildNumber>"
        b"</snapshot></versioning></metadata>"
    )
    repository = repository_with({"com/acme/lib/2.0-SNAPSHOT/maven-metadata.xml": earlier})

    result = deploy(clone, repository)

    version = result.variables["PUBLISHED_VERSION"]
    assert re.fullmatch(r"2\.0-\d{8}\.\d{6}-7", version)
    assert repository.files[f"com/acme/lib/2.0-SNAPSHOT/lib-{version}-sources.jar"] == b"src"
    metadata = parse_snapshot_metadata(
        repository.files["com/acme/lib/2.0-SNAPSHOT/maven-metadata.xml"], "", "com.acme", "lib", "2.0-SNAPSHOT"
    )
    assert metadata.build_number == 7
    assert {(f.classifier, f.extension, f.value) for f in metadata.files} == {
        ("", "pom", version),
        ("sources", "jar", version),
    }


def test_gradle_folder_with_module_files_and_signatures(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    folder = "io/acme/core/3.1.0"
    files = {
        "core-3.1.0.pom": pom("io.acme", "core", "3.1.0", marker=True),
        "core-3.1.0.module": b'{"formatVersion": "1.1"}',
        "core-3.1.0.jar": b"jar",
        "core-3.1.0-javadoc.jar": b"doc",
        "core-3.1.0.jar.asc": b"-----BEGIN PGP SIGNATURE-----",
    }
    for name, data in files.items():
        stage(staging, f"{folder}/{name}", data, ALGORITHMS)
    repository = FakeMavenRepository()

    deploy(clone, repository)

    for name, data in files.items():
        assert repository.files[f"{folder}/{name}"] == data
        assert text(repository, f"{folder}/{name}.sha512") == digest(data, "sha512")
    assert not any(path.endswith(".asc.asc") or path.endswith(".sha1.md5") for path in puts(repository))


def test_dry_run_lists_what_would_go_up_and_writes_nothing(tmp_path, caplog):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    repository = FakeMavenRepository()

    with caplog.at_level(logging.INFO):
        result = deploy(clone, repository, DRY_RUN="true")

    assert puts(repository) == []
    assert "  upload com/acme/lib/1.0.0/lib-1.0.0-sources.jar (sources jar, 13 bytes" in caplog.text
    assert result.summary == (
        f"dry run: would publish 1 version (com.acme:lib:1.0.0; 3 files with checksums, then metadata) to {URL}; "
        "nothing was uploaded"
    )


# --- bad input: one ✖, no request ----------------------------------------------------------------


def test_a_checksum_that_does_not_match_stops_before_any_request(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    (staging / "com/acme/lib/1.0.0/lib-1.0.0.jar.sha1").write_text("0" * 40)

    assert refused(clone, FakeMavenRepository()) == (
        "MAVEN_STAGING_DIR build/staging-deploy has checksum files that do not match their files "
        "(com/acme/lib/1.0.0/lib-1.0.0.jar.sha1): the folder changed after the build wrote it (or a copy broke it); "
        "rebuild the staging folder in the same step and re-run. Nothing was uploaded."
    )


def test_an_empty_staging_folder(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage(staging, "com/acme/lib/maven-metadata.xml", b"<metadata/>")

    assert refused(clone, FakeMavenRepository()) == (
        "MAVEN_STAGING_DIR build/staging-deploy holds no <group path>/<artifactId>/<version>/ folder to deploy: "
        "run the build's publishing into it first in the same step (e.g. ./gradlew publish, or mvn deploy "
        "-DaltDeploymentRepository=stage::file:target/staging-deploy), and check the path."
    )


def test_a_missing_staging_folder(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()

    assert refused(clone, FakeMavenRepository()).startswith(
        "MAVEN_STAGING_DIR build/staging-deploy does not exist: let the build write its staging repository there"
    )


LAYOUT_FIX = (
    ": it must hold only what the build wrote in Maven repository layout (<group path>/<artifactId>/<version>/"
    "<artifactId>-<version>…); remove those files or point MAVEN_STAGING_DIR at the staging folder itself. "
    "Nothing was uploaded."
)


def test_files_outside_the_layout_are_named(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    stage(staging, "README.txt", b"notes", ())
    stage(staging, "com/acme/lib/1.0.0/other-1.0.0.jar", b"x", ())
    stage(staging, "com/acme/lib/1.0.0/lib-1.0.1.jar", b"x", ())

    assert refused(clone, FakeMavenRepository()) == (
        "MAVEN_STAGING_DIR build/staging-deploy has files outside a <group>/<artifactId>/<version>/ folder "
        "(README.txt); files not named <artifactId>-<version>[-<classifier>].<ext> after their folder "
        "(com/acme/lib/1.0.0/lib-1.0.1.jar, com/acme/lib/1.0.0/other-1.0.0.jar)" + LAYOUT_FIX
    )


def test_symlinks_escaping_the_folder_are_named(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "id_rsa").write_text("key")
    os.symlink(secret / "id_rsa", staging / "com/acme/lib/1.0.0/lib-1.0.0-key.jar")
    os.symlink(secret, staging / "com/acme/other")

    assert refused(clone, FakeMavenRepository()) == (
        "MAVEN_STAGING_DIR build/staging-deploy has symbolic links that point outside the folder "
        "(com/acme/lib/1.0.0/lib-1.0.0-key.jar, com/acme/other)" + LAYOUT_FIX
    )


def test_a_version_without_its_pom_and_orphan_checksums(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage(staging, "com/acme/lib/1.0.0/lib-1.0.0.jar", b"jar")
    stage(staging, "com/acme/lib/1.0.0/lib-1.0.0-sources.jar.sha1", b"0" * 40, ())

    assert refused(clone, FakeMavenRepository()) == (
        "MAVEN_STAGING_DIR build/staging-deploy has version folders without their POM "
        "(com/acme/lib/1.0.0/ (no lib-1.0.0.pom)); checksum files without the file they are for "
        "(com/acme/lib/1.0.0/lib-1.0.0-sources.jar.sha1)" + LAYOUT_FIX
    )


@pytest.mark.parametrize("variable", ["MAVEN_POM", "MAVEN_ARTIFACTS", "MAVEN_MODULES", "MAVEN_PROPERTIES"])
def test_mixed_variables_are_refused(workdir, variable):
    env = base_env(PACKAGE_TYPE="maven", REGISTRY_URL=URL, MAVEN_STAGING_DIR="staging", **{variable: "a=b"})
    run = run_in_process(env, workdir)
    assert run.code == 1
    assert run.last_line == (
        f"✖ MAVEN_STAGING_DIR and {variable} are both set: MAVEN_STAGING_DIR deploys every version the build "
        f"staged in that folder, as it is; remove {variable}, or remove MAVEN_STAGING_DIR to deploy a POM and its "
        "target/."
    )
    assert_no_secret(run.output)


def test_staging_dir_alone_selects_maven(workdir):
    config = load_config(base_env(REGISTRY_URL=URL, MAVEN_STAGING_DIR="build/staging-deploy"), workdir)
    assert (config.package_type, config.maven.staging_dir) == ("maven", "build/staging-deploy")


def test_tag_pipeline_for_another_version(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)

    assert refused(clone, FakeMavenRepository(), BITBUCKET_TAG="v1.1.0").startswith(
        "this pipeline runs for tag v1.1.0 but the staging folder holds com.acme:lib:1.0.0: set the build's version"
    )


def test_version_variable_must_be_the_staged_version(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)

    assert refused(clone, repository_with(), VERSION="v1.3.0") == (
        "VERSION is 1.3.0 but the staging folder holds com.acme:lib:1.0.0: set the build's version to 1.3.0 before "
        "it stages (e.g. version = '1.3.0' in Gradle, mvn versions:set -DnewVersion=1.3.0 or -Drevision=1.3.0), or "
        "set VERSION to it. Nothing was uploaded."
    )
    assert deploy(clone, repository_with(), VERSION="v1.0.0").summary.startswith("published 1 version")


def test_a_local_repository_is_not_a_staging_folder(tmp_path):
    """~/.m2/repository has the same layout, plus files only a local repository has: pointing
    MAVEN_STAGING_DIR at it would deploy everything ever downloaded, so those files stop the run."""
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    stage(staging, "com/acme/lib/1.0.0/_remote.repositories", b"lib-1.0.0.jar>central=", ())
    stage(staging, "com/acme/lib/maven-metadata-local.xml", b"<metadata/>", ())

    message = refused(clone, FakeMavenRepository())

    assert "(com/acme/lib/1.0.0/_remote.repositories, com/acme/lib/maven-metadata-local.xml)" in message


def test_symlinks_inside_the_folder_are_followed(tmp_path):
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    os.symlink("lib-1.0.0-sources.jar", staging / "com/acme/lib/1.0.0/lib-1.0.0-javadoc.jar")
    repository = FakeMavenRepository()

    deploy(clone, repository)

    assert repository.files["com/acme/lib/1.0.0/lib-1.0.0-javadoc.jar"] == b"sources 1.0.0"


def test_a_run_broken_off_mid_upload_is_completed_by_the_next(tmp_path):
    """The jar is refused: the POM is up, no metadata names the version; the re-run skips the POM,
    uploads the rest and writes the metadata."""
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    repository = FakeMavenRepository()
    repository.fail_next("PUT", r"lib-1\.0\.0\.jar$", 403)

    with pytest.raises(PipeError):
        deploy(clone, repository)
    assert "com/acme/lib/1.0.0/lib-1.0.0.pom" in repository.files
    assert not any(path.endswith("maven-metadata.xml") for path in repository.files)

    puts_before = len(puts(repository))
    result = deploy(clone, repository)

    # (the sources jar may or may not have gone up beside the refused jar)
    assert re.fullmatch(
        r"published 1 version \(com\.acme:lib:1\.0\.0; [12] files?, [12] already there\) to .*", result.summary
    )
    assert "com/acme/lib/1.0.0/lib-1.0.0.pom" not in puts(repository)[puts_before:]
    assert {"com/acme/lib/1.0.0/lib-1.0.0.jar", "com/acme/lib/1.0.0/lib-1.0.0-sources.jar"} <= set(repository.files)
    merged = parse_artifact_metadata(repository.files["com/acme/lib/maven-metadata.xml"], "", "com.acme", "lib")
    assert merged.versions == ["1.0.0"]


def test_names_that_would_change_the_url_or_the_group_are_refused(tmp_path):
    """A group folder with a dot would be another group in the repository than on disk; '#', '%',
    spaces and the like would change the URL a file is uploaded to."""
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    stage(staging, "com.acme/tool/1.0/tool-1.0.pom", b"<project/>")
    stage(staging, "com/acme/lib/1.0.0/lib-1.0.0-a#b.jar", b"x", ())
    stage(staging, "com/acme/lib/2.0 beta/lib-2.0 beta.pom", b"<project/>", ())

    assert refused(clone, FakeMavenRepository()) == (
        "MAVEN_STAGING_DIR build/staging-deploy has names no Maven coordinates or file in a repository can have "
        "(com.acme/tool/1.0/, com/acme/lib/1.0.0/lib-1.0.0-a#b.jar, com/acme/lib/2.0 beta/)" + LAYOUT_FIX
    )


def test_special_files_are_named(tmp_path):
    """A FIFO named like a jar would hang the run when read; a broken link has nothing to deploy."""
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    os.mkfifo(staging / "com/acme/lib/1.0.0/lib-1.0.0-pipe.jar")
    os.symlink("nowhere.jar", staging / "com/acme/lib/1.0.0/lib-1.0.0-broken.jar")

    assert refused(clone, repository_with()) == (
        "MAVEN_STAGING_DIR build/staging-deploy has entries that are not regular files (broken links, pipes, "
        "sockets, devices) (com/acme/lib/1.0.0/lib-1.0.0-broken.jar, com/acme/lib/1.0.0/lib-1.0.0-pipe.jar)"
        + LAYOUT_FIX
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_files_and_folders_are_named(tmp_path):
    """A folder the walk cannot list would otherwise be left out of the deploy without a word."""
    clone, staging = workdir_with_staging(tmp_path)
    stage_maven_release(staging)
    secret = staging / "com/acme/lib/1.0.0/lib-1.0.0-secret.jar"
    secret.write_bytes(b"x")
    secret.chmod(0)
    locked = staging / "com/acme/locked/1.0.0"
    locked.mkdir(parents=True)
    locked.parent.chmod(0)
    try:
        message = refused(clone, repository_with())
    finally:
        locked.parent.chmod(0o755)

    assert message == (
        "MAVEN_STAGING_DIR build/staging-deploy has files or folders the pipe may not read "
        "(com/acme/lib/1.0.0/lib-1.0.0-secret.jar, com/acme/locked/)" + LAYOUT_FIX
    )


def test_cleanup_with_a_staging_folder_is_refused(workdir):
    """Cleanup picks its artifact by MAVEN_POM: MAVEN_STAGING_DIR would be silently ignored."""
    env = base_env(REGISTRY_URL=URL, MAVEN_STAGING_DIR="staging", ACTION="cleanup", KEEP_RELEASES="3")
    run = run_in_process(env, workdir)
    assert run.code == 1
    assert run.last_line == (
        "✖ MAVEN_STAGING_DIR is set for ACTION cleanup, which selects the artifact to clean up by its POM "
        "(MAVEN_POM): remove MAVEN_STAGING_DIR from the cleanup step and set MAVEN_POM to the artifact's POM."
    )

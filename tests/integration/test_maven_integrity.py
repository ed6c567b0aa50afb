"""Nothing outside its folder, against the real nginx WebDAV Maven repository of sandbox/: hostile
versions in a registry's `maven-metadata.xml` are reported and never deleted by URL (cleanup), and
coordinates that would write outside the artifact's folder are refused before any write (publish).
What the repository holds is compared on its own disk, before and after, and real Maven resolves
what must have stayed."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from pipe.maven.layout import checksums_of_bytes
from tests.integration.test_maven import GROUP_PREFIX, build, mvn_get, remote, run_pipe, write_pom


def disk(sandbox) -> Path:
    """The folder nginx serves the Maven repository from."""
    return sandbox.state / "nginx/root" / urlparse(sandbox.maven_registry).path.strip("/")


def tree(root: Path) -> dict[str, str]:
    """Every file under `root`: relative path → SHA-256 of its content."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def mentioning(root: Path, name: str, inside: str) -> list[str]:
    """Paths in the whole repository that carry `name` and are not under the folder `inside`."""
    found = []
    for folder, subfolders, files in os.walk(root):
        for entry in subfolders + files:
            relative = (Path(folder) / entry).relative_to(root).as_posix()
            if name in entry and not relative.startswith(f"{inside}/") and relative != inside:
                found.append(relative)
    return found


def deploy(sandbox, workdir: Path, group: str, artifact: str, version: str) -> None:
    for old in (workdir / "target").glob("*") if (workdir / "target").is_dir() else ():
        old.unlink()
    write_pom(workdir, group, artifact, version)
    build(workdir, artifact, version, text=version)
    run = run_pipe(sandbox, workdir)
    assert run.code == 0, run.output


def poison_metadata(sandbox, folder: str, **elements: str) -> None:
    """Add `<version>`s (and set `<latest>`/`<release>`) in the artifact's metadata as another tool
    could have written it, checksum files matching."""
    path = f"{folder}/maven-metadata.xml"
    root = ET.fromstring(remote(sandbox, path).content)  # noqa: S314 - the test registry's own file
    versioning = root.find("versioning")
    for name, value in elements.items():
        if name == "version":
            ET.SubElement(versioning.find("versions"), "version").text = value
        else:
            versioning.find(name).text = value
    data = ET.tostring(root, encoding="utf-8")
    checksums = checksums_of_bytes(data)
    for suffix, body in (("", data), (".md5", checksums.md5.encode()), (".sha1", checksums.sha1.encode())):
        put = requests.put(sandbox.maven_registry + path + suffix, data=body, auth=sandbox.writer, timeout=30)
        assert put.status_code in (200, 201, 204), put.status_code


@pytest.fixture
def group(unique) -> str:
    return f"{GROUP_PREFIX}.{unique('integrity').replace('-', '')}"


@pytest.mark.parametrize("hostile", ["../{victim}/1.0.0", "..", "%2e%2e"])
def test_cleanup_never_deletes_by_a_hostile_version_from_the_metadata(
    sandbox, workdir, tmp_path, unique, group, hostile
):
    artifact, victim = unique("lib"), unique("victim")
    deploy(sandbox, workdir, group, victim, "1.0.0")
    deploy(sandbox, workdir, group, artifact, "1.0.0")
    deploy(sandbox, workdir, group, artifact, "2.0.0")
    folder = f"{group.replace('.', '/')}/{artifact}"
    version = hostile.format(victim=victim)
    poison_metadata(sandbox, folder, version=version)
    group_disk = disk(sandbox) / group.replace(".", "/")
    before = tree(group_disk)

    write_pom(workdir, group, artifact, "0.0.1")
    run = run_pipe(sandbox, workdir, ACTION="cleanup", DELETE_MATCHING="*")

    assert run.code == 0, run.output
    assert f"⚠ {folder}/maven-metadata.xml lists the version '{version}', which is not a valid Maven version" in (
        run.output
    )
    assert run.last_line.startswith(f"✔ Deleted 1 in Maven artifact {group}:{artifact}: 1.0.0;"), run.output
    after = tree(group_disk)
    gone = {path for path in before if path.startswith(f"{artifact}/1.0.0/")}
    rewritten = {path for path in before if path.startswith(f"{artifact}/maven-metadata.xml")}
    assert gone and set(before) - set(after) == gone
    assert {p: h for p, h in after.items() if p not in rewritten} == {
        p: h for p, h in before.items() if p not in gone | rewritten
    }
    if hostile.startswith("../"):
        assert mvn_get(sandbox, f"{group}:{victim}:1.0.0", tmp_path / "victim").returncode == 0
    if hostile == "%2e%2e":
        assert mvn_get(sandbox, f"{group}:{artifact}:2.0.0", tmp_path / "kept").returncode == 0


@pytest.mark.parametrize(
    ("coordinates", "expected"),
    [
        (("{group}", "{artifact}", "%2e%2e"), "MAVEN_POM's version '%2e%2e' is not valid (it contains '%'"),
        (("{group}", "{artifact}", "1.0.0#x"), "MAVEN_POM's version '1.0.0#x' is not valid (it contains '#'"),
        (("{group}", "{artifact}", "1.0.0%2f.."), "MAVEN_POM's version '1.0.0%2f..' is not valid (it contains '%'"),
        (("..", "{artifact}", "1.0.0"), "MAVEN_POM's groupId '..' is not valid: its parts between dots must not be"),
        (("{group}", "..", "1.0.0"), "MAVEN_POM's artifactId '..' is not valid: '..' names a folder of the path"),
    ],
)
def test_publish_refuses_coordinates_that_would_write_outside_the_artifacts_folder(
    sandbox, workdir, unique, group, coordinates, expected
):
    artifact = unique("lib")
    deploy(sandbox, workdir, group, unique("sentinel"), "1.0.0")
    root = disk(sandbox)
    before = tree(root / group.replace(".", "/"))
    g, a, v = (part.format(group=group, artifact=artifact) for part in coordinates)
    write_pom(workdir, g, a, v)
    for old in (workdir / "target").glob("*"):
        old.unlink()
    build(workdir, a, v)

    run = run_pipe(sandbox, workdir)

    assert run.code == 1, run.output
    assert run.last_line.startswith(f"✖ {expected}"), run.output
    assert [line for line in run.lines if line.startswith(("✖", "✔"))] == [run.last_line]
    assert "Traceback" not in run.output
    assert tree(root / group.replace(".", "/")) == before
    assert mentioning(root, artifact, group.replace(".", "/")) == []
    if v == "1.0.0#x":  # the real 1.0.0 is not blocked by anything the refused run left
        deploy(sandbox, workdir, g, a, "1.0.0")
        assert remote(sandbox, f"{group.replace('.', '/')}/{a}/1.0.0/{a}-1.0.0.pom").status_code == 200

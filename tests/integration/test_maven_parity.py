"""Parity with real Maven: the same inputs deployed with `mvn deploy:deploy-file` (one POM) or the deploy
plugin over a reactor (a multi-module project) and with the pipe;
the pipe must upload at least every file Maven uploads (read back from nginx's directory listing)."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests

from bench.maven_deploy import (
    deploy_file_command,
    maven_settings,
    reactor_deploy_command,
    write_project,
    write_reactor,
)
from tests.integration.test_maven import run_pipe

_LISTED = re.compile(r'<a href="([^"/?]+)">')
_TIMESTAMPED = re.compile(r"-\d{8}\.\d{6}-\d+")


def listing(sandbox, path: str) -> set[str]:
    """File names nginx lists in a repository folder (autoindex)."""
    response = requests.get(sandbox.maven_registry + path + "/", auth=sandbox.reader, timeout=30)
    assert response.status_code == 200, path
    return set(_LISTED.findall(response.text))


def deployed_files(sandbox, group: str, artifact: str, version: str) -> set[str]:
    """Files in the artifact and version folders, with SNAPSHOT timestamps made comparable."""
    folder = f"{group.replace('.', '/')}/{artifact}"
    names = {f"../{name}" for name in listing(sandbox, folder) if not name.endswith("/")}
    names |= listing(sandbox, f"{folder}/{version}")
    return {_TIMESTAMPED.sub("-TIMESTAMP-N", name) for name in names}


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0-SNAPSHOT"])
def test_pipe_uploads_every_file_mvn_deploy_file_uploads(sandbox, tmp_path, unique, version):
    artifact = unique("parity")
    groups = {tool: f"org.bbpp.parity.{tool}{unique('g').replace('-', '')}" for tool in ("mvn", "pipe")}
    settings = maven_settings(tmp_path, sandbox.writer_user, sandbox.writer_token)
    projects = {tool: tmp_path / tool for tool in groups}
    classifiers = write_project(projects["mvn"], groups["mvn"], artifact, version, attached=3, size_kb=4)
    write_project(projects["pipe"], groups["pipe"], artifact, version, attached=3, size_kb=4)
    command = deploy_file_command(
        projects["mvn"], artifact, version, classifiers, settings, tmp_path / "m2", sandbox.maven_registry
    )
    maven = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert maven.returncode == 0, maven.stdout + maven.stderr

    pipe = run_pipe(sandbox, projects["pipe"])
    assert pipe.code == 0, pipe.output

    by_maven = deployed_files(sandbox, groups["mvn"], artifact, version)
    by_pipe = deployed_files(sandbox, groups["pipe"], artifact, version)
    assert len(by_maven) >= 4 * 3  # the listing really shows Maven's files (jar + .md5 + .sha1, …)
    assert by_maven - by_pipe == set()
    # What the pipe adds on top: .sha256/.sha512 next to files (nginx takes them), nothing else.
    assert {name.rsplit(".", 1)[-1] for name in by_pipe - by_maven} <= {"sha256", "sha512"}


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0-SNAPSHOT"])
def test_pipe_uploads_every_file_mvn_deploy_uploads_for_a_reactor(sandbox, tmp_path, unique, version):
    """The same three-module project (parent aggregator, lib, app depending on lib), deployed by
    Maven's deploy plugin over the reactor and by the pipe."""
    names = {"parent": unique("rparity-parent"), "lib": unique("rparity-lib"), "app": unique("rparity-app")}
    groups = {tool: f"org.bbpp.parity.{tool}{unique('g').replace('-', '')}" for tool in ("mvn", "pipe")}
    modules = {names["app"]: [names["lib"]], names["lib"]: []}
    for tool, group in groups.items():
        write_reactor(tmp_path / tool, group, names["parent"], version, modules, size_kb=4)
    settings = maven_settings(tmp_path, sandbox.writer_user, sandbox.writer_token)
    command = reactor_deploy_command(tmp_path / "mvn", settings, tmp_path / "m2", sandbox.maven_registry)
    maven = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert maven.returncode == 0, maven.stdout + maven.stderr

    pipe = run_pipe(sandbox, tmp_path / "pipe")
    assert pipe.code == 0, pipe.output

    for artifact in names.values():
        by_maven = deployed_files(sandbox, groups["mvn"], artifact, version)
        by_pipe = deployed_files(sandbox, groups["pipe"], artifact, version)
        # The listing really shows Maven's files: POM and metadata (and the jar), each with .md5 and .sha1.
        assert len(by_maven) >= (2 if artifact == names["parent"] else 3) * 3, artifact
        assert by_maven - by_pipe == set(), artifact
        assert {name.rsplit(".", 1)[-1] for name in by_pipe - by_maven} <= {"sha256", "sha512"}, artifact

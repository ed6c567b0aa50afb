"""Pipes publishing different versions of the same Maven artifact and npm package at the same
moment: every version ends up listed (and the Maven metadata's checksums match it), checked at
the registry and with the real clients."""

from __future__ import annotations

import hashlib
import json
import threading
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import requests

from tests.conftest import PipeRun, assert_no_secret, base_env, run_subprocess

PARALLEL = 4  # pipes started together in each round
ROUNDS = 3


def run_together(jobs: list[tuple[dict[str, str], Path]]) -> list[PipeRun]:
    """Start every pipe at the same moment (a barrier releases them together)."""
    barrier = threading.Barrier(len(jobs))
    results: list[PipeRun | None] = [None] * len(jobs)

    def run(index: int, env: dict[str, str], cwd: Path) -> None:
        barrier.wait()
        results[index] = run_subprocess(env, cwd)

    threads = [threading.Thread(target=run, args=(i, env, cwd)) for i, (env, cwd) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]


def writer_env(sandbox, **values: str) -> dict[str, str]:
    return base_env(
        BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user, BITBUCKET_PACKAGES_TOKEN=sandbox.writer_token, **values
    )


def maven_project(folder: Path, artifact: str, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "pom.xml").write_text(
        f"<project><modelVersion>4.0.0</modelVersion><groupId>org.bbpp.concurrency</groupId>"
        f"<artifactId>{artifact}</artifactId><version>{version}</version></project>"
    )
    (folder / "target").mkdir()
    with zipfile.ZipFile(folder / "target" / f"{artifact}-{version}.jar", "w") as jar:
        jar.writestr("version.txt", version)
    return folder


def test_parallel_maven_deploys_keep_every_version(sandbox, unique, tmp_path: Path):
    artifact = unique("concurrent")
    base = f"{sandbox.maven_registry}org/bbpp/concurrency/{artifact}/maven-metadata.xml"
    expected: set[str] = set()
    for round_number in range(ROUNDS):
        versions = [f"1.{round_number}.{n}" for n in range(PARALLEL)]
        jobs = [
            (
                writer_env(sandbox, PACKAGE_TYPE="maven", REGISTRY_URL=sandbox.maven_registry),
                maven_project(tmp_path / version, artifact, version),
            )
            for version in versions
        ]
        for run in run_together(jobs):
            assert run.code == 0, run.output
            assert_no_secret(run.output, sandbox.writer_user, sandbox.writer_token)
        expected |= set(versions)

        metadata = requests.get(base, auth=sandbox.reader, timeout=30)
        listed = {v.text for v in ET.fromstring(metadata.content).iter() if v.tag == "version"}  # noqa: S314
        assert listed == expected
        for algorithm in ("md5", "sha1"):
            published = requests.get(f"{base}.{algorithm}", auth=sandbox.reader, timeout=30).text.split()[0]
            assert published == hashlib.new(algorithm, metadata.content).hexdigest()

    # Real Maven resolves the newest version through that metadata, checksums enforced.
    newest = f"1.{ROUNDS - 1}.{PARALLEL - 1}"
    got = sandbox.run(
        "mvn-get", f"org.bbpp.concurrency:{artifact}:{newest}", str(tmp_path / "got"),
        extra_env={"MVN_GET_CHECKSUM_POLICY": "fail"},
    )  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr


def test_parallel_npm_publishes_keep_every_version(sandbox, unique, tmp_path: Path):
    name = unique("bbpp-concurrent")
    expected: set[str] = set()
    for round_number in range(ROUNDS):
        jobs = []
        for n in range(PARALLEL):
            version = f"1.{round_number}.{n}"
            folder = tmp_path / version
            folder.mkdir()
            (folder / "package.json").write_text(json.dumps({"name": name, "version": version}))
            (folder / "index.js").write_text(f"module.exports = {json.dumps(version)};\n")
            jobs.append((writer_env(sandbox, PACKAGE_TYPE="npm", REGISTRY_URL=sandbox.npm_registry), folder))
            expected.add(version)
        for run in run_together(jobs):
            assert run.code == 0, run.output
            assert_no_secret(run.output, sandbox.writer_user, sandbox.writer_token)

    view = sandbox.run("npm-view", name, "versions", "--json")
    assert view.returncode == 0, view.stderr
    assert set(json.loads(view.stdout)) == expected
    latest = sandbox.run("npm-view", name, "dist-tags.latest")
    assert latest.stdout.strip() == f"1.{ROUNDS - 1}.{PARALLEL - 1}" or latest.stdout.strip() in expected

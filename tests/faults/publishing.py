"""What the fault suite's tests share: running the pipe through the fault proxy, classifying each
run (✔, or one clean ✖), recording the counts, and reading a registry straight to find broken
states (something half-published that a client would trip over). Each kind's tests live in a file
of their own (test_faults_<kind>.py, test_cleanup_faults_<kind>.py), so that parallel workers
(xdist, loadfile) run the kinds at the same time; the run's totals are checked at its end
(tests/faults/tally.py, called by tests/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import PipeRun, assert_no_secret, base_env, run_in_process
from tests.faults.proxy import FaultProxy, FaultSchedule
from tests.faults.tally import record

# Fault rates per request, cycled over the runs: low rates end mostly in success after retries,
# high ones exhaust the retry budget and must end in a clean failure.
RATES = (0.35, 0.5, 0.65, 0.85)
# Maven and container pushes make many more requests per run (checksums, blobs), and their PUTs
# are retried: lower rates, with one high one that must exhaust the retry budget now and then.
MANY_REQUEST_RATES = (0.06, 0.1, 0.2, 0.5)


@dataclass
class Outcome:
    run: PipeRun
    faults: int

    @property
    def succeeded(self) -> bool:
        return self.run.code == 0

    @property
    def clean_failure(self) -> bool:
        """Exit 1 with exactly one ✖ line, as the last line, and no traceback."""
        marks = [line for line in self.run.lines if line.startswith("✖")]
        return (
            self.run.code == 1
            and len(marks) == 1
            and self.run.last_line == marks[0]
            and "Traceback" not in self.run.output
        )


def publish_through(proxy: FaultProxy, rate: float, seed: int, env: dict[str, str], cwd: Path, sandbox) -> Outcome:
    before = proxy.faults
    proxy.schedule = FaultSchedule(seed=seed, rate=rate)
    run = run_in_process(env, cwd)
    proxy.schedule = FaultSchedule(seed=seed, rate=0.0)
    assert_no_secret(run.output, sandbox.writer_user, sandbox.writer_token)
    return Outcome(run, proxy.faults - before)


def tally(kind: str, outcomes: list[Outcome], broken: list[str], reruns: int) -> None:
    faulted = [o for o in outcomes if o.faults]
    record(
        kind,
        runs=len(outcomes),
        faulted_runs=len(faulted),
        faults=sum(o.faults for o in outcomes),
        successes=sum(o.succeeded for o in outcomes),
        clean_failures=sum(o.clean_failure for o in outcomes),
        broken_states=len(broken),
        reruns_completed=reruns,
    )


def assert_every_run_classified(outcomes: list[Outcome]) -> None:
    unclear = [o.run.output for o in outcomes if not o.succeeded and not o.clean_failure]
    assert not unclear, "runs that neither succeeded nor failed cleanly:\n" + "\n----\n".join(unclear[:3])


# --- npm ---------------------------------------------------------------------------------------


def npm_package(folder: Path, name: str, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version, "main": "index.js"}))
    (folder / "index.js").write_text(f"module.exports = {json.dumps(version)};\n")


def npm_env(sandbox, url: str) -> dict[str, str]:
    return base_env(
        PACKAGE_TYPE="npm",
        REGISTRY_URL=url,
        BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user,
        BITBUCKET_PACKAGES_TOKEN=sandbox.writer_token,
    )


def npm_broken_state(sandbox, name: str, verified: set[str] | None = None) -> list[str]:
    """Read straight from Verdaccio: every listed version has a tarball matching its integrity,
    and every dist-tag names a listed version. Versions in `verified` were found whole before
    (a later publish never touches them) and their tarballs are not downloaded again."""
    verified = set() if verified is None else verified
    response = requests.get(sandbox.npm_registry + name, auth=sandbox.reader, timeout=30)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    packument = response.json()
    problems = []
    versions = packument.get("versions", {})
    for tag, version in packument.get("dist-tags", {}).items():
        if version not in versions:
            problems.append(f"dist-tag {tag} names missing version {version}")
    for version, manifest in versions.items():
        if version in verified:
            continue
        url = f"{sandbox.npm_registry}{name}/-/{name}-{version}.tgz"
        tarball = requests.get(url, auth=sandbox.reader, timeout=30)
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.content).digest()).decode()
        if tarball.status_code != 200 or integrity != manifest["dist"]["integrity"]:
            problems.append(f"{name}@{version}: tarball missing or not matching its integrity")
            continue
        with tarfile.open(fileobj=io.BytesIO(tarball.content), mode="r:gz") as archive:
            if "package/package.json" not in archive.getnames():
                problems.append(f"{name}@{version}: tarball without package/package.json")
                continue
        verified.add(version)
    return problems


# --- Maven -------------------------------------------------------------------------------------

MAVEN_GROUP = "org.bbpp.faults"


def maven_project(folder: Path, artifact: str, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>{MAVEN_GROUP}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        "<packaging>jar</packaging></project>\n",
        encoding="utf-8",
    )
    for suffix in ("", "-sources"):
        target = folder / "target" / f"{artifact}-{version}{suffix}.jar"
        target.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(target, "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            jar.writestr("version.txt", f"{version}{suffix}")


def maven_get(sandbox, path: str) -> requests.Response:
    return requests.get(sandbox.maven_registry + path, auth=sandbox.reader, timeout=30)


def checksum_problems(sandbox, path: str, content: bytes) -> list[str]:
    """The .md5 and .sha1 next to a file must exist and match it (Maven's checksum policy `fail`)."""
    problems = []
    for algorithm in ("md5", "sha1"):
        published = maven_get(sandbox, f"{path}.{algorithm}")
        expected = hashlib.new(algorithm, content).hexdigest()
        if published.status_code != 200 or published.text.split()[:1] != [expected]:
            problems.append(f"{path}.{algorithm} missing or wrong")
    return problems


def maven_broken_state(sandbox, artifact: str, verified: set[str] | None = None) -> list[str]:
    """Straight from nginx: the metadata and its checksums agree, and every version it names has
    its POM and jars with matching checksum files. Versions in `verified` were found complete
    before (a later deploy never touches them) and are not read again."""
    verified = set() if verified is None else verified
    base = f"{MAVEN_GROUP.replace('.', '/')}/{artifact}"
    metadata = maven_get(sandbox, f"{base}/maven-metadata.xml")
    if metadata.status_code == 404:
        return []
    problems = checksum_problems(sandbox, f"{base}/maven-metadata.xml", metadata.content)
    root = ET.fromstring(metadata.content)  # noqa: S314 - our own test registry's file
    versions = [v.text for v in root.iter() if v.tag.rsplit("}", 1)[-1] == "version" and v.text]
    for version in set(versions) - verified:
        before = len(problems)
        for name in (f"{artifact}-{version}.pom", f"{artifact}-{version}.jar", f"{artifact}-{version}-sources.jar"):
            file = maven_get(sandbox, f"{base}/{version}/{name}")
            if file.status_code != 200:
                problems.append(f"metadata names {version} but {name} is missing")
            else:
                problems += checksum_problems(sandbox, f"{base}/{version}/{name}", file.content)
        if len(problems) == before:
            verified.add(version)
    return problems


def maven_env(sandbox, url: str, folder: Path) -> dict[str, str]:
    return base_env(
        PACKAGE_TYPE="maven",
        REGISTRY_URL=url,
        BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user,
        BITBUCKET_PACKAGES_TOKEN=sandbox.writer_token,
        BITBUCKET_CLONE_DIR=str(folder),
    )


# --- Maven staging folders (MAVEN_STAGING_DIR) -----------------------------------------------

STAGING_DIR = "target/staging-deploy"


def stage_maven(folder: Path, artifacts: list[str], version: str) -> None:
    """What `mvn deploy -DaltDeploymentRepository=stage::file:…` writes for each artifact: the POM,
    the jar and the sources jar, each with .md5 and .sha1, and the folder's own metadata (which the
    pipe never copies: it merges the repository's)."""
    for artifact in artifacts:
        maven_project(folder / artifact, artifact, version)
        staged = folder / STAGING_DIR / MAVEN_GROUP.replace(".", "/") / artifact
        (staged / version).mkdir(parents=True, exist_ok=True)
        built = [folder / artifact / "pom.xml", *sorted((folder / artifact / "target").glob("*.jar"))]
        for source in built:
            name = f"{artifact}-{version}.pom" if source.name == "pom.xml" else source.name
            data = source.read_bytes()
            (staged / version / name).write_bytes(data)
            for algorithm in ("md5", "sha1"):
                (staged / version / f"{name}.{algorithm}").write_text(hashlib.new(algorithm, data).hexdigest())
        (staged / "maven-metadata.xml").write_text(
            f"<metadata><groupId>{MAVEN_GROUP}</groupId><artifactId>{artifact}</artifactId>"
            f"<versioning><versions><version>{version}</version></versions></versioning></metadata>\n"
        )


def staged_env(sandbox, url: str, folder: Path) -> dict[str, str]:
    return maven_env(sandbox, url, folder) | {"MAVEN_STAGING_DIR": STAGING_DIR}


def checksum_window(problem: str) -> bool:
    return "/maven-metadata.xml." in problem and problem.endswith(" missing or wrong")


def staged_problems(
    sandbox, artifacts: list[str], windows: list[str], verified: dict[str, set[str]] | None = None
) -> list[str]:
    """Broken states of the artifacts; a metadata file whose checksum files disagree with it goes
    to `windows` instead (one per check), as long as `windows` is given a list to fill."""
    verified = {artifact: set() for artifact in artifacts} if verified is None else verified
    found = [problem for artifact in artifacts for problem in maven_broken_state(sandbox, artifact, verified[artifact])]
    windows.extend([problem for problem in found if checksum_window(problem)][:1])
    return [problem for problem in found if not checksum_window(problem)]


# --- containers --------------------------------------------------------------------------------

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def oci_broken_state(sandbox, name: str) -> list[str]:
    """Straight from the registry: every tag resolves to a manifest whose config and layers exist."""
    base = f"{sandbox.oci_url}/v2/{name}"
    listed = requests.get(f"{base}/tags/list", auth=sandbox.writer, timeout=30)
    if listed.status_code == 404:
        return []
    listed.raise_for_status()
    problems = []
    for tag in listed.json().get("tags") or []:
        headers = {"Accept": MANIFEST_ACCEPT}
        manifest = requests.get(f"{base}/manifests/{tag}", auth=sandbox.writer, headers=headers, timeout=30)
        if manifest.status_code != 200:
            problems.append(f"tag {tag} has no manifest ({manifest.status_code})")
            continue
        body = manifest.json()
        for blob in [body.get("config") or {}, *(body.get("layers") or [])]:
            digest = blob.get("digest")
            head = requests.head(f"{base}/blobs/{digest}", auth=sandbox.writer, timeout=30)
            if head.status_code != 200:
                problems.append(f"tag {tag} names blob {digest}, which is missing")
    return problems


def build_local_image(docker_engine, folder: Path, reference: str, content: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text("FROM scratch\nCOPY data.txt /data.txt\n", encoding="utf-8")
    (folder / "data.txt").write_text(content, encoding="utf-8")
    docker_engine.images.build(path=str(folder), tag=reference, rm=True)


def docker_env(sandbox, registry: str, image: str, tag: str, local: str) -> dict[str, str]:
    return base_env(
        PACKAGE_TYPE="docker",
        REGISTRY_URL=registry,
        BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user,
        BITBUCKET_PACKAGES_TOKEN=sandbox.writer_token,
        BITBUCKET_REPO_SLUG=image,
        BITBUCKET_TAG=tag,
        LOCAL_IMAGE=local,
        DOCKER_HOST=sandbox.docker_host,
    )

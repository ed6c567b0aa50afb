"""Helpers shared by every test layer: running the pipe and hunting for leaked secrets."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import requests

from tests.sandbox_env import load_sandbox_env

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_USER = "pipe-user"
TEST_TOKEN = "ATBB-uNiQuE-t0ken-9d8c7b6a5f4e"


@dataclass
class PipeRun:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    @property
    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""


# Each test folder's tests carry its marker, so that e.g. `-m "not integration"` selects the fast ones.
FOLDER_MARKERS = ("integration", "e2e", "faults")
# The order in which xdist hands out files (the Makefile keeps it: --no-loadscope-reorder): the few
# long files first (the fault suite's, a minute or two each; the pipe image's), the many short ones
# after, so that no worker starts a two-minute file while the others run out of work.
FOLDER_ORDER = ("faults", "e2e", "integration", "unit")
# Within the first folder, the longest files go first, each to a worker of its own: xdist queues
# the next file on a worker as soon as it has two tests or fewer pending, so two of these queued
# one after the other on one worker would make the run's tail (about two minutes each).
LONGEST_FILES = (
    "faults/test_maven_cleanup_faults.py",
    "faults/test_faults_maven.py",
    "faults/test_faults_npm.py",
    "faults/test_faults_maven_staging_cuts.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent

    def path(item: pytest.Item) -> str:
        return Path(str(item.fspath)).resolve().relative_to(tests_dir).as_posix()

    def order(item: pytest.Item) -> tuple[int, int]:
        folder = path(item).split("/")[0]
        longest = LONGEST_FILES.index(path(item)) if path(item) in LONGEST_FILES else len(LONGEST_FILES)
        return FOLDER_ORDER.index(folder) if folder in FOLDER_ORDER else len(FOLDER_ORDER), longest

    for item in items:
        if (folder := path(item).split("/")[0]) in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
    items.sort(key=order)  # stable: a file's own tests keep their order


def apply_overrides(env: dict[str, str], overrides: dict[str, str | None]) -> dict[str, str]:
    """`env` with `overrides` applied: a value replaces, None removes."""
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def base_env(**overrides: str) -> dict[str, str]:
    """A Pipelines-like environment with the test credentials; overrides win, None removes."""
    env = {
        "BITBUCKET_PACKAGES_USERNAME": TEST_USER,
        "BITBUCKET_PACKAGES_TOKEN": TEST_TOKEN,
        "BITBUCKET_WORKSPACE": "acme",
        "BITBUCKET_REPO_SLUG": "widget",
        "BITBUCKET_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "BITBUCKET_BUILD_NUMBER": "42",
    }
    return apply_overrides(env, overrides)


def run_in_process(env: dict[str, str], cwd: Path, transport=None) -> PipeRun:
    """The pipe's `main` with an injected environment and a captured stream; `transport` (a
    `tests.fakehttp.FakeTransport`) stands in for the network of every registry client."""
    from pipe.cli import main

    stream = io.StringIO()
    code = main(environ=env, cwd=cwd, stream=stream, transport=transport)
    return PipeRun(code, stream.getvalue())


def run_subprocess(env: dict[str, str], cwd: Path, timeout: float = 600) -> PipeRun:
    """`python3 -m pipe` as a separate process, stdout and stderr together."""
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "HOME": os.environ.get("HOME", "/root"),
    }
    full_env.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "pipe"],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PipeRun(done.returncode, done.stdout)


def secret_forms(user: str, token: str) -> list[str]:
    """Every form in which a token could leak: raw, base64 of it, base64 of user:token,
    URL-encoded, and the token in each base64 alignment inside a larger blob."""
    forms = {token, quote(token, safe=""), base64.b64encode(token.encode()).decode()}
    forms.add(base64.b64encode(f"{user}:{token}".encode()).decode())
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + token.encode()).decode()
        forms.add(encoded[4 : 4 * ((offset + len(token)) // 3)] if offset else encoded.rstrip("="))
    return sorted(form for form in forms if len(form) >= 8)


def assert_no_secret(text: str, user: str = TEST_USER, token: str = TEST_TOKEN) -> None:
    for form in secret_forms(user, token):
        assert form not in text, f"a form of the token leaked: {form!r}"
    assert "Bearer " + token not in text


def assert_no_secret_in_tree(root: Path, user: str = TEST_USER, token: str = TEST_TOKEN) -> None:
    """No file under `root` (the clone directory) holds the token in any form."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes().decode("utf-8", errors="replace")
            for form in secret_forms(user, token):
                assert form not in content, f"{path} holds a form of the token"


def once_per_run(tmp_path_factory: pytest.TempPathFactory, key: str, make: Callable[[], str]) -> str:
    """`make()`'s result, made by one process of the run and shared with the others: with xdist every
    worker is a session of its own, and a slow session fixture (the pipe's image) would otherwise
    be made once per worker, at the same time. A failed `make()` leaves nothing shared: the next
    worker tries again and fails the same way."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    result = root / f"{key}.json"
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.is_file():
            return json.loads(result.read_text())
        value = make()
        result.write_text(json.dumps(value))
        return value


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty clone directory."""
    clone = tmp_path / "clone"
    clone.mkdir()
    return clone


# --- what a session leaves in the Docker engine --------------------------------------------------
# The engine is shared (by the developer's own images, by other test sessions running at the same
# time), so "what this session made" is told by name: every name a test makes comes from
# `session_name` and is recorded here; an image, tag or container that carries one (in a
# reference, a container name or a label value, as the pipe's own labels do) is this session's.

SESSION_NAMES: list[str] = []


def session_name(prefix: str, length: int = 12) -> str:
    """A name no earlier run has used, recorded as this session's (see above)."""
    name = f"{prefix}-{uuid.uuid4().hex[:length]}"
    SESSION_NAMES.append(name)
    return name


def engine_client():
    """A docker-py client for the sandbox's engine, or None when no engine answers."""
    import docker

    try:
        return docker.DockerClient(base_url=load_sandbox_env()["DOCKER_HOST"], timeout=60)
    except docker.errors.DockerException:
        return None


def _mentions(texts: list[str], names: list[str]) -> bool:
    return any(name in text for text in texts for name in names)


def image_references(image: dict) -> list[str]:
    """Tags and digest references of an image as the engine lists it (none for a dangling one)."""
    return [ref for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []) if "<none>" not in ref]


def engine_objects_named(client, names: list[str]) -> tuple[list[dict], list[dict]]:
    """(images, containers) carrying one of `names`. An image counts by its references, or by its
    labels when it has no reference left; only the matching references of an image are its."""
    images = []
    for image in client.api.images():
        references = image_references(image)
        mine = [ref for ref in references if _mentions([ref], names)]
        if mine or (not references and _mentions(list((image.get("Labels") or {}).values()), names)):
            images.append({"Id": image["Id"], "references": mine})
    containers = [
        container
        for container in client.api.containers(all=True)
        if _mentions([*container.get("Names", []), container.get("Image", "")], names)
        or _mentions(list((container.get("Labels") or {}).values()), names)
    ]
    return images, containers


def remove_engine_objects(client, images: list[dict], containers: list[dict]) -> None:
    """Remove those containers, then those references (by reference, never by id with force: the
    same image may carry somebody else's tag too); an image with none left goes with its last."""
    import docker

    for container in containers:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(container["Id"], force=True, v=True)
    for image in images:
        for reference in image["references"] or [image["Id"]]:
            # NotFound: it went with an earlier reference; APIError: in use, reported by the check.
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_image(reference)


def describe_engine_objects(images: list[dict], containers: list[dict]) -> list[str]:
    lines = [f"image {image['Id'][7:19]} {' '.join(image['references']) or '(untagged)'}" for image in images]
    return lines + [f"container {c['Id'][:12]} {' '.join(c.get('Names', []))} ({c.get('Image')})" for c in containers]


@pytest.fixture(autouse=True)
def _engine_cleanup() -> Iterator[None]:
    """After each test: remove what it left in the engine under the names it made (the images the
    pipe built and tagged, pulled copies, containers)."""
    first = len(SESSION_NAMES)
    yield
    names = SESSION_NAMES[first:]
    if names and (client := engine_client()) is not None:
        with contextlib.closing(client):
            remove_engine_objects(client, *engine_objects_named(client, names))


# Images and containers a session made are told from the engine's events, by name: the engine is
# shared, so counting everything in it would count other sessions' work too. The events are read
# as they happen: the engine keeps only its last 256, too few to ask for at the end of a long
# session on a busy engine.
MADE_ACTIONS = {"image": ("tag", "pull", "import", "load"), "container": ("create",)}


class EngineWatch:
    """The engine's image and container events from now on, read by a thread of their own."""

    def __init__(self, client) -> None:
        self.seen: list[tuple[str, str, list[str]]] = []  # (kind, id, attribute values)
        self.client = client
        self.stream = client.events(decode=True, filters={"type": list(MADE_ACTIONS)})
        self.reader = threading.Thread(target=self._read, daemon=True, name="engine-events")
        self.reader.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends by being closed, however it says so
            for event in self.stream:
                kind, actor = event.get("Type", ""), event.get("Actor") or {}
                if event.get("Action") in MADE_ACTIONS.get(kind, ()):
                    self.seen.append((kind, actor.get("ID", ""), list((actor.get("Attributes") or {}).values())))

    def made(self, names: list[str]) -> tuple[int, int]:
        """(images, containers) made under one of `names` (images by id: tagged, pulled, imported,
        loaded; containers created). Stops the watch."""
        time.sleep(0.2)  # the last removals' and tags' events are on their way
        self.stream.close()
        self.reader.join(5)
        self.client.close()
        made: dict[str, set[str]] = {"image": set(), "container": set()}
        for kind, identity, values in list(self.seen):
            if _mentions(values, names):
                made[kind].add(identity)
        return len(made["image"]), len(made["container"])


def engine_watch():
    """An EngineWatch, or None when no engine answers."""
    import docker

    client = engine_client()
    try:
        return EngineWatch(client) if client is not None else None
    except (docker.errors.DockerException, requests.RequestException):
        return None


@pytest.fixture(scope="session", autouse=True)
def _engine_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """The session's last check: nothing it made is left in the engine. Anything found is named
    in the failure (and removed, so that the next run starts clean). Images that were there
    before (the stand-in base image, the pipe's image) are no concern of this check."""
    watch = engine_watch()
    yield
    client = engine_client()
    if client is None or watch is None:
        return
    with contextlib.closing(client):
        leftovers = engine_objects_named(client, SESSION_NAMES)
        remove_engine_objects(client, *leftovers)
    counts = [*watch.made(SESSION_NAMES), len(leftovers[0]) + len(leftovers[1])]
    request.config.stash[ENGINE_MADE] = counts
    if hasattr(request.config, "workeroutput"):  # an xdist worker: the controller adds them up
        request.config.workeroutput["engine_made"] = counts
    if any(leftovers):
        listed = "\n  ".join(describe_engine_objects(*leftovers))
        pytest.fail(f"the tests left these in the Docker engine (removed now):\n  {listed}", pytrace=False)


ENGINE_MADE = pytest.StashKey[list]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist's controller: add each worker's counts (engine, fault suite) to the run's."""
    from tests.faults.tally import record

    output = getattr(node, "workeroutput", {})
    if counts := output.get("engine_made"):
        total = node.config.stash.get(ENGINE_MADE, [0, 0, 0])
        node.config.stash[ENGINE_MADE] = [a + b for a, b in zip(total, counts, strict=True)]
    for kind, counts in output.get("fault_tally", {}).items():
        record(kind, **counts)


FAULT_VERDICT = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or a run without workers), once every worker's fault counts are added up:
    the whole fault suite's totals must clear its bar (tests/faults/tally.py), or the run fails."""
    from tests.faults.tally import TALLY, suite_verdict

    if hasattr(session.config, "workeroutput"):
        return
    if verdict := suite_verdict(TALLY):
        session.config.stash[FAULT_VERDICT] = verdict
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The fault suite's report and verdict; what the run itself made in the engine (every
    worker's, by the names it made), and how much of it was left behind (the session fails naming any)."""
    from tests.faults.tally import write_report

    if hasattr(config, "workeroutput"):
        return
    write_report(terminalreporter)
    if verdict := config.stash.get(FAULT_VERDICT, None):
        terminalreporter.write_line(verdict, red=True, bold=True)
    counts = config.stash.get(ENGINE_MADE, None)
    if counts:
        images, containers, left = counts
        terminalreporter.write_line(
            f"Docker engine: this run made {images} image(s) and {containers} container(s) under its own names; "
            f"{left} left behind (removed)."
        )


# --- what a session leaves in the local registries ---------------------------------------------
# Found by name in the servers' storage under $SANDBOX_STATE (read only), removed through each
# server's own API as the writer. The OCI registry keeps the blobs of a deleted manifest until a
# garbage collection, which needs the (shared) registry stopped: only its tags and manifests go.

OCI_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
REGISTRY_TIMEOUT_S = 30


def oci_repositories_named(state: Path, names: list[str]) -> list[str]:
    base = state / "registry/data/docker/registry/v2/repositories"
    repositories = (folder.parent.relative_to(base).as_posix() for folder in base.glob("**/_manifests"))
    return sorted(repository for repository in repositories if _mentions([repository], names))


def npm_packages_named(state: Path, names: list[str]) -> list[str]:
    storage = state / "verdaccio/storage"
    folders = [p for top in storage.glob("*") for p in (top.glob("*") if top.name.startswith("@") else [top])]
    packages = (p.relative_to(storage).as_posix() for p in folders if (p / "package.json").is_file())
    return sorted(package for package in packages if _mentions([package], names))


def maven_folders_named(state: Path, maven_url: str, names: list[str]) -> list[str]:
    """Folders (relative to the repository) named for this session: an artifact's, or a group's."""
    base = state / "nginx/root" / urlparse(maven_url).path.strip("/")
    found = []
    for folder, subfolders, _ in os.walk(base):
        for name in [sub for sub in subfolders if _mentions([sub], names)]:
            found.append((Path(folder) / name).relative_to(base).as_posix())
            subfolders.remove(name)
    return sorted(found)


def delete_oci_repository(registry: str, repository: str, auth: tuple[str, str]) -> list[str]:
    """Delete every tagged manifest (an index's children after it); returns what failed."""
    base = f"http://{registry}/v2/{repository}"
    listed = requests.get(f"{base}/tags/list", auth=auth, timeout=REGISTRY_TIMEOUT_S)
    digests: list[str] = []
    for tag in (listed.json().get("tags") or []) if listed.ok else []:
        got = requests.get(
            f"{base}/manifests/{tag}", headers={"Accept": OCI_MANIFESTS}, auth=auth, timeout=REGISTRY_TIMEOUT_S
        )
        if got.ok:
            children = [child["digest"] for child in got.json().get("manifests") or []]
            digests += [got.headers["Docker-Content-Digest"], *children]
    failed = []
    for digest in dict.fromkeys(digests):
        deleted = requests.delete(f"{base}/manifests/{digest}", auth=auth, timeout=REGISTRY_TIMEOUT_S)
        if deleted.status_code not in (202, 404):
            failed.append(f"OCI {repository}@{digest}: DELETE answered {deleted.status_code}")
    return failed


def unpublish_npm_package(registry: str, package: str, auth: tuple[str, str]) -> list[str]:
    url = registry.rstrip("/") + "/" + quote(package, safe="@")
    document = requests.get(url, params={"write": "true"}, auth=auth, timeout=REGISTRY_TIMEOUT_S)
    if document.status_code == 404:
        return []
    deleted = requests.delete(f"{url}/-rev/{document.json().get('_rev', '0')}", auth=auth, timeout=REGISTRY_TIMEOUT_S)
    return [] if deleted.ok else [f"npm {package}: unpublish answered {deleted.status_code}"]


def delete_maven_folder(repository: str, folder: str, auth: tuple[str, str]) -> list[str]:
    deleted = requests.delete(f"{repository.rstrip('/')}/{folder}/", auth=auth, timeout=REGISTRY_TIMEOUT_S)
    return [] if deleted.status_code in (200, 204, 404) else [f"Maven {folder}/: DELETE answered {deleted.status_code}"]


def remove_registry_data(values: dict[str, str], names: list[str]) -> list[str]:
    """Remove what the local registries hold under `names`, also written without their hyphen
    (a Maven groupId part: `org.bbpp.it.g3f0cf11ce447`); returns what could not be removed."""
    names = names + [name.replace("-", "") for name in names]
    state, writer = Path(values["SANDBOX_STATE"]), (values["SANDBOX_WRITER_USER"], values["SANDBOX_WRITER_TOKEN"])
    failed = []
    for repository in oci_repositories_named(state, names):
        failed += delete_oci_repository(values["SANDBOX_OCI_REGISTRY"], repository, writer)
    for package in npm_packages_named(state, names):
        failed += unpublish_npm_package(values["SANDBOX_NPM_REGISTRY"], package, writer)
    for folder in maven_folders_named(state, values["SANDBOX_MAVEN_REGISTRY"], names):
        failed += delete_maven_folder(values["SANDBOX_MAVEN_REGISTRY"], folder, writer)
    return failed


@pytest.fixture(scope="session", autouse=True)
def _registries_cleaned() -> Iterator[None]:
    """At the end of the session: the packages, artifacts and image tags it published go."""
    yield
    values = load_sandbox_env()
    if not SESSION_NAMES or not Path(values["SANDBOX_STATE"]).is_dir():
        return
    try:
        failed = remove_registry_data(values, SESSION_NAMES)
    except requests.RequestException as error:
        failed = [f"a registry did not answer: {error}"]
    if failed:
        pytest.fail("could not remove this session's registry data:\n  " + "\n  ".join(failed), pytrace=False)

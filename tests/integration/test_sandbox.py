"""The local registries are up, enforce their credentials, and serve the
real consumer clients (docker, npm, Maven) that the pipe's results must
satisfy."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import docker
import pytest
import requests

TIMEOUT = 10  # seconds, for each HTTP request


def _zip_bytes(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def _pom(group: str, artifact: str, version: str) -> bytes:
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        "<modelVersion>4.0.0</modelVersion>"
        f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version><packaging>jar</packaging></project>"
    ).encode()


# --- OCI registry ---------------------------------------------------------


def test_registry_requires_basic_auth(sandbox):
    url = f"{sandbox.oci_url}/v2/"
    anon = requests.get(url, timeout=TIMEOUT)
    assert anon.status_code == 401
    assert anon.headers["WWW-Authenticate"].lower().startswith("basic ")
    assert requests.get(url, auth=sandbox.writer, timeout=TIMEOUT).status_code == 200
    assert requests.get(url, auth=sandbox.reader, timeout=TIMEOUT).status_code == 200
    bad = (sandbox.writer_user, "not-the-token")
    assert requests.get(url, auth=bad, timeout=TIMEOUT).status_code == 401


# --- Verdaccio (npm) --------------------------------------------------------


def test_verdaccio_ping_and_whoami(sandbox):
    base = sandbox.npm_registry.rstrip("/")
    assert requests.get(f"{base}/-/ping", timeout=TIMEOUT).status_code == 200
    for user, password in (sandbox.writer, sandbox.reader):
        r = requests.get(f"{base}/-/whoami", auth=(user, password), timeout=TIMEOUT)
        assert r.status_code == 200
        assert r.json()["username"] == user


def test_verdaccio_anonymous_package_read_is_refused(sandbox, unique):
    base = sandbox.npm_registry.rstrip("/")
    name = unique("bbpp-anon")
    assert requests.get(f"{base}/{name}", timeout=TIMEOUT).status_code in (401, 403)
    # With credentials the same request gets through to "no such package".
    r = requests.get(f"{base}/{name}", auth=sandbox.reader, timeout=TIMEOUT)
    assert r.status_code == 404


def test_npm_publish_by_writer_only_and_install_by_reader(sandbox, unique, tmp_path):
    """Real npm: the writer publishes, the reader is refused, and the
    sandbox helpers (temporary userconfig, no .npmrc) view and install it."""
    name = unique("bbpp-sbx")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "main": "index.js"}))
    (pkg / "index.js").write_text("module.exports = 'sandbox-ok';\n")

    def publish(user: str, password: str) -> subprocess.CompletedProcess[str]:
        rc = tmp_path / f"npmrc-{user}"
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        nerf = sandbox.npm_registry.removeprefix("http:")
        rc.write_text(f"registry={sandbox.npm_registry}\n{nerf}:_auth={token}\n")
        return subprocess.run(
            ["npm", "publish", "--userconfig", str(rc), "--cache", str(tmp_path / "cache")],
            cwd=pkg,
            capture_output=True,
            text=True,
            timeout=120,
        )

    denied = publish(*sandbox.reader)
    assert denied.returncode != 0
    assert "403" in denied.stderr

    ok = publish(*sandbox.writer)
    assert ok.returncode == 0, ok.stderr

    view = sandbox.run("npm-view", f"{name}@1.0.0", "version")
    assert view.returncode == 0, view.stderr
    assert view.stdout.strip() == "1.0.0"

    consumer = tmp_path / "consumer"
    inst = sandbox.run("npm-install", str(consumer), f"{name}@1.0.0")
    assert inst.returncode == 0, inst.stderr
    assert not (consumer / ".npmrc").exists()
    out = subprocess.run(
        ["node", "-p", f"require({json.dumps(str(consumer / 'node_modules' / name))})"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "sandbox-ok"


# --- nginx WebDAV (Maven) ---------------------------------------------------


def test_maven_repo_auth_and_write_permissions(sandbox, unique):
    base = sandbox.maven_registry
    path = f"org/example/sbx/{unique('perm')}/1.0/file.txt"
    url = base + path

    assert requests.get(base, timeout=TIMEOUT).status_code == 401
    assert requests.put(url, data=b"x", timeout=TIMEOUT).status_code == 401
    assert requests.put(url, data=b"x", auth=sandbox.reader, timeout=TIMEOUT).status_code == 403

    created = requests.put(url, data=b"first", auth=sandbox.writer, timeout=TIMEOUT)
    assert created.status_code == 201
    replaced = requests.put(url, data=b"second", auth=sandbox.writer, timeout=TIMEOUT)
    assert replaced.status_code == 204

    assert requests.get(url, timeout=TIMEOUT).status_code == 401
    got = requests.get(url, auth=sandbox.reader, timeout=TIMEOUT)
    assert got.status_code == 200 and got.content == b"second"
    assert requests.head(url, auth=sandbox.reader, timeout=TIMEOUT).status_code == 200

    assert requests.delete(url, auth=sandbox.reader, timeout=TIMEOUT).status_code == 403
    assert requests.delete(url, auth=sandbox.writer, timeout=TIMEOUT).status_code == 204
    assert requests.get(url, auth=sandbox.reader, timeout=TIMEOUT).status_code == 404


def _put(sandbox, path: str, body: bytes) -> None:
    r = requests.put(sandbox.maven_registry + path, data=body, auth=sandbox.writer, timeout=TIMEOUT)
    assert r.status_code in (201, 204), (path, r.status_code)


def test_mvn_get_resolves_release(sandbox, unique, tmp_path):
    group, artifact, version = "org.example.sbx", unique("rel"), "1.2.3"
    base = f"org/example/sbx/{artifact}"
    jar = _zip_bytes("hello.txt", "release")
    _put(sandbox, f"{base}/{version}/{artifact}-{version}.jar", jar)
    _put(sandbox, f"{base}/{version}/{artifact}-{version}.pom", _pom(group, artifact, version))
    _put(
        sandbox,
        f"{base}/maven-metadata.xml",
        (
            f"<metadata><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<versioning><latest>{version}</latest><release>{version}</release>"
            f"<versions><version>{version}</version></versions>"
            "<lastUpdated>20260101000000</lastUpdated></versioning></metadata>"
        ).encode(),
    )

    dest = tmp_path / "out"
    res = sandbox.run("mvn-get", f"{group}:{artifact}:{version}", str(dest))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (dest / f"{artifact}-{version}.jar").read_bytes() == jar

    missing = sandbox.run("mvn-get", f"{group}:{artifact}:9.9.9")
    assert missing.returncode != 0

    # With checksumPolicy "fail", Maven insists on correct .sha1 files.
    strict = {"MVN_GET_CHECKSUM_POLICY": "fail"}
    coords = f"{group}:{artifact}:{version}"
    assert sandbox.run("mvn-get", coords, extra_env=strict).returncode != 0
    for name, body in (
        (f"{artifact}-{version}.jar", jar),
        (f"{artifact}-{version}.pom", _pom(group, artifact, version)),
    ):
        _put(sandbox, f"{base}/{version}/{name}.sha1", hashlib.sha1(body, usedforsecurity=False).hexdigest().encode())
    res = sandbox.run("mvn-get", coords, extra_env=strict)
    assert res.returncode == 0, res.stderr[-3000:]


def test_mvn_get_resolves_newest_snapshot(sandbox, unique, tmp_path):
    group, artifact, version = "org.example.sbx", unique("snap"), "2.0-SNAPSHOT"
    base = f"org/example/sbx/{artifact}/{version}"
    jars = {}
    for build in (1, 2):
        ts = f"20260101.00000{build}"
        value = f"2.0-{ts}-{build}"
        jars[build] = _zip_bytes("hello.txt", f"build {build}")
        _put(sandbox, f"{base}/{artifact}-{value}.jar", jars[build])
        _put(sandbox, f"{base}/{artifact}-{value}.pom", _pom(group, artifact, version))
        _put(
            sandbox,
            f"{base}/maven-metadata.xml",
            (
                f'<metadata modelVersion="1.1.0"><groupId>{group}</groupId>'
                f"<artifactId>{artifact}</artifactId><version>{version}</version><versioning>"
                f"<snapshot><timestamp>{ts}</timestamp><buildNumber>{build}</buildNumber></snapshot>"
                f"<lastUpdated>2026010100000{build}</lastUpdated><snapshotVersions>"
                f"<snapshotVersion><extension>jar</extension><value>{value}</value>"
                f"<updated>2026010100000{build}</updated></snapshotVersion>"
                f"<snapshotVersion><extension>pom</extension><value>{value}</value>"
                f"<updated>2026010100000{build}</updated></snapshotVersion>"
                "</snapshotVersions></versioning></metadata>"
            ).encode(),
        )

    dest = tmp_path / "out"
    res = sandbox.run("mvn-get", f"{group}:{artifact}:{version}", str(dest))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (dest / f"{artifact}-2.0-20260101.000002-2.jar").read_bytes() == jars[2]


def test_maven_deploy_plugin_deploys_as_writer_only(sandbox, unique, tmp_path):
    """Debian's maven-deploy-plugin (a reference uploader) works against the
    sandbox with the writer's credentials and is refused for the reader."""
    group, artifact = "org.example.sbx", unique("dep")
    jar = tmp_path / "a.jar"
    jar.write_bytes(_zip_bytes("hello.txt", "deployed"))

    def deploy(user: str, password: str, version: str) -> subprocess.CompletedProcess[str]:
        settings = tmp_path / f"settings-{user}.xml"
        settings.write_text(f"""<settings>
  <servers><server><id>sandbox</id><username>{user}</username>
    <password>{password}</password></server></servers>
  <profiles><profile><id>debian</id>
    <pluginRepositories><pluginRepository><id>central</id>
      <url>file:///usr/share/maven-repo</url>
      <releases><checksumPolicy>ignore</checksumPolicy></releases>
    </pluginRepository></pluginRepositories>
    <repositories><repository><id>central</id>
      <url>file:///usr/share/maven-repo</url>
      <releases><checksumPolicy>ignore</checksumPolicy></releases>
    </repository></repositories>
  </profile></profiles>
  <activeProfiles><activeProfile>debian</activeProfile></activeProfiles>
</settings>""")
        return subprocess.run(
            [
                "mvn",
                "-B",
                "-ntp",
                "-s",
                str(settings),
                f"-Dmaven.repo.local={tmp_path / 'repo'}",
                "org.apache.maven.plugins:maven-deploy-plugin:3.0.0:deploy-file",
                f"-Dfile={jar}",
                f"-DgroupId={group}",
                f"-DartifactId={artifact}",
                f"-Dversion={version}",
                "-Dpackaging=jar",
                "-DrepositoryId=sandbox",
                f"-Durl={sandbox.maven_registry}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    denied = deploy(*sandbox.reader, "1.0.0")
    assert denied.returncode != 0
    assert "403" in denied.stdout

    for version in ("1.0.0", "1.1.0-SNAPSHOT"):
        res = deploy(*sandbox.writer, version)
        assert res.returncode == 0, res.stdout[-3000:]
        got = sandbox.run("mvn-get", f"{group}:{artifact}:{version}", extra_env={"MVN_GET_CHECKSUM_POLICY": "fail"})
        assert got.returncode == 0, got.stderr[-3000:]


def test_mvn_get_with_bad_credentials_fails(sandbox):
    res = sandbox.run(
        "mvn-get", "org.example.sbx:whatever:1.0", extra_env={"MVN_USER": sandbox.writer_user, "MVN_PASSWORD": "wrong"}
    )
    assert res.returncode != 0
    assert "401" in res.stderr


# --- Docker engine + registry -----------------------------------------------


def test_docker_engine_answers(docker_engine):
    version = docker_engine.version()
    assert version["ApiVersion"]
    assert docker_engine.ping()


@pytest.fixture
def tiny_image(docker_engine, sandbox, unique):
    """A one-file image made with `docker import` (no base image needed)."""
    repo = f"{sandbox.oci_registry}/sbx/{unique('img')}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"{repo}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    docker_engine.api.import_image_from_data(buf.getvalue(), repository=repo, tag="1")
    yield repo, "1"
    try:
        docker_engine.images.remove(f"{repo}:1", force=True)
    except docker.errors.ImageNotFound:
        pass


def _push(docker_engine, repo, tag, auth_config=None):
    events = list(docker_engine.images.push(repo, tag=tag, auth_config=auth_config, stream=True, decode=True))
    errors = [e for e in events if "error" in e or "errorDetail" in e]
    return events, errors


def test_docker_push_and_pull_with_auth(docker_engine, sandbox, tiny_image):
    repo, tag = tiny_image
    auth = {"username": sandbox.writer_user, "password": sandbox.writer_token}

    _, errors = _push(docker_engine, repo, tag)
    assert errors, "anonymous push must be refused"

    events, errors = _push(docker_engine, repo, tag, auth_config=auth)
    assert not errors, errors
    digest = next(e["aux"]["Digest"] for e in events if "aux" in e)
    assert digest.startswith("sha256:")

    # The registry lists the tag for an authenticated client only.
    name = repo.split("/", 1)[1]
    tags_url = f"{sandbox.oci_url}/v2/{name}/tags/list"
    assert requests.get(tags_url, timeout=TIMEOUT).status_code == 401
    tags = requests.get(tags_url, auth=sandbox.reader, timeout=TIMEOUT)
    assert tags.json()["tags"] == [tag]

    docker_engine.images.remove(f"{repo}:{tag}", force=True)
    reader_auth = {"username": sandbox.reader_user, "password": sandbox.reader_token}
    pulled = docker_engine.images.pull(repo, tag=tag, auth_config=reader_auth)
    assert digest in "".join(pulled.attrs["RepoDigests"])


# --- the scripts themselves -------------------------------------------------


def test_up_again_is_a_quick_no_op(sandbox):
    run_dir = sandbox.state / "run"
    before = {p.name: p.read_text() for p in run_dir.glob("*.pid")}
    res = sandbox.run("up", timeout=120)
    assert res.returncode == 0, res.stderr
    assert_up_started_nothing(res.stdout)
    assert {p.name: p.read_text() for p in run_dir.glob("*.pid")} == before


def assert_up_started_nothing(stdout: str) -> None:
    """A second sandbox/up: one line per server (relay included), each saying it is already there,
    then the two summary lines."""
    *servers, up, summary = [line for line in stdout.splitlines() if ":" in line]
    assert servers and all("already" in line for line in servers), stdout
    assert up.startswith("sandbox: up"), stdout
    assert "; started nothing;" in summary, stdout


# --- an engine that was running before sandbox/up, on its unix socket only ---------------------

ENGINE_START_S = 60


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _docker_info(host: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "--host", host, "info", "--format", "{{.DockerRootDir}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def socket_only_engine():
    """A second dockerd of this test's own, started the way a system's engine is: on a unix socket
    only (as a developer machine's or a CI host's). Yields (DOCKER_HOST, data root)."""
    with _engine_of_our_own() as engine:
        yield engine


@pytest.fixture
def socket_and_tcp_engine():
    """The same, serving a loopback TCP port too (an engine set up for remote clients). Yields
    (DOCKER_HOST, data root, tcp://127.0.0.1:PORT)."""
    tcp = f"tcp://127.0.0.1:{_free_loopback_port()}"
    with _engine_of_our_own("--host", tcp) as (host, data_root):
        yield host, data_root, tcp


@contextlib.contextmanager
def _engine_of_our_own(*extra_args: str):
    run = Path(tempfile.mkdtemp(prefix="bbpp-engine-", dir="/run"))  # a unix socket path: 107 bytes at most
    root = Path(tempfile.mkdtemp(prefix="bbpp-engine-", dir="/var/tmp"))
    host = f"unix://{run}/docker.sock"
    command = ["dockerd", "--host", host, *extra_args]
    command += ["--data-root", str(root / "data"), "--exec-root", str(run / "exec")]
    command += ["--pidfile", str(run / "dockerd.pid"), "--bridge=none", "--iptables=false", "--ip-masq=false"]
    with open(root / "dockerd.log", "wb") as log:
        engine = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ENGINE_START_S
        while _docker_info(host).returncode != 0:
            assert engine.poll() is None, (root / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"dockerd not ready after {ENGINE_START_S}s"
            time.sleep(0.2)
        yield host, root / "data"
    finally:
        engine.terminate()
        try:
            engine.wait(60)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait(10)
        _unmount_below(run)  # dockerd leaves its netns/default mount behind
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def _unmount_below(folder: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{folder}/")), reverse=True):
        subprocess.run(["umount", mount], capture_output=True, check=False)


def _stop_relay(state: Path) -> None:
    """Teardown without sandbox/down: stop the relay of this state dir, and nothing else."""
    pidfile = state / "run" / "docker-relay.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        if "docker-relay" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGTERM)


def test_a_running_socket_only_engine_is_reused_and_given_a_loopback_tcp_relay(sandbox, socket_only_engine, tmp_path):
    """sandbox/up leaves a running engine alone and adds a relay from tcp://127.0.0.1:PORT to its
    socket; the shared servers it finds answering are reused, not adopted; down stops the relay
    only."""
    host, data_root = socket_only_engine
    state, port = tmp_path / "state", _free_loopback_port()
    env = {**os.environ, **sandbox.env, "SANDBOX_STATE": str(state), "DOCKER_HOST": host}
    env["SANDBOX_DOCKER_TCP"] = f"127.0.0.1:{port}"
    tcp = f"tcp://127.0.0.1:{port}"
    assert _docker_info(tcp).returncode != 0, "something answers on the free port already"
    try:
        up = subprocess.run([str(sandbox.script("up"))], env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "dockerd: already answering (not started by sandbox/up)" in up.stdout.splitlines(), up.stdout
        assert f"docker-relay: {tcp} -> {host} (the reused engine serves no TCP)" in up.stdout, up.stdout
        summary = up.stdout.splitlines()[-1]
        assert summary.startswith("sandbox: reused dockerd registry verdaccio nginx; started docker-relay;"), summary
        # The very engine, over TCP, through the relay; and only on loopback.
        assert _docker_info(tcp).stdout.strip() == str(data_root)
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True)
        assert [line.split()[3] for line in listening.stdout.splitlines()] == [f"127.0.0.1:{port}"]
        # Only the relay is this state's: sandbox/down may stop nothing else.
        assert sorted(p.name for p in (state / "run").iterdir()) == ["docker-relay.pid"]

        again = subprocess.run([str(sandbox.script("up"))], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert_up_started_nothing(again.stdout)
        assert "; started nothing; already running from an earlier sandbox/up: docker-relay " in again.stdout

        down = subprocess.run([str(sandbox.script("down"))], env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
        assert down.stdout.splitlines() == ["docker-relay: stopped"]
    finally:
        _stop_relay(state)
    assert _docker_info(tcp).returncode != 0, "the relay still answers after sandbox/down"
    assert _docker_info(host).stdout.strip() == str(data_root), "the reused engine must keep running"
    assert requests.get(f"{sandbox.oci_url}/v2/", timeout=TIMEOUT).status_code == 401  # shared registry: still up


def test_a_running_engine_that_serves_tcp_is_reused_without_a_relay(sandbox, socket_and_tcp_engine, tmp_path):
    """An engine that already answers on the sandbox's TCP address needs no relay: up says so, a
    second up says "already" on every line, and down has nothing of this state to stop."""
    host, data_root, tcp = socket_and_tcp_engine
    state = tmp_path / "state"
    env = {**os.environ, **sandbox.env, "SANDBOX_STATE": str(state), "DOCKER_HOST": host}
    env["SANDBOX_DOCKER_TCP"] = tcp.removeprefix("tcp://")
    up = subprocess.run([str(sandbox.script("up"))], env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    relay_line = f"docker-relay: not needed, the reused engine already answers on {tcp} itself"
    assert relay_line in up.stdout.splitlines(), up.stdout
    assert up.stdout.splitlines()[-1].startswith("sandbox: reused dockerd registry verdaccio nginx; started nothing;")
    again = subprocess.run([str(sandbox.script("up"))], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert_up_started_nothing(again.stdout)
    assert not list((state / "run").iterdir()), "nothing of this state may be left for sandbox/down to stop"
    down = subprocess.run([str(sandbox.script("down"))], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert _docker_info(tcp).stdout.strip() == str(data_root), "the reused engine must keep running"

"""Credentials and the transport: a redirect to another host never carries them, TLS is verified
by default, and plain http:// is refused off loopback unless explicitly allowed.

The "other host" is 127.0.0.2, another loopback address: a different host to HTTP clients, and
still this machine."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipe.http import new_session
from tests.conftest import TEST_TOKEN, TEST_USER, assert_no_secret, base_env, run_in_process


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []


@contextmanager
def serve(host: str, answer, context: ssl.SSLContext | None = None) -> Iterator[tuple[int, Recorder]]:
    """A loopback HTTP(S) server: `answer(handler)` writes the response; every request is recorded."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.requests.append((self.command, self.path, dict(self.headers.items()), body))
            answer(self)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _any

    server = ThreadingHTTPServer((host, 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], recorder
    finally:
        server.shutdown()
        server.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def not_found(handler):
    reply(handler, 404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}],"error":"not found"}')


def project(kind: str, clone: Path) -> None:
    if kind == "npm":
        (clone / "package.json").write_text(json.dumps({"name": "redirected", "version": "1.0.0"}))
    elif kind == "maven":
        (clone / "pom.xml").write_text(
            "<project><groupId>org.bbpp</groupId><artifactId>redirected</artifactId><version>1.0.0</version></project>"
        )
        (clone / "target").mkdir()
        with zipfile.ZipFile(clone / "target" / "redirected-1.0.0.jar", "w") as jar:
            jar.writestr("a.txt", "a")
    else:
        (clone / "Dockerfile").write_text("FROM scratch\n")


def registry_url(kind: str, host: str, port: int, scheme: str = "http") -> str:
    if kind == "docker":
        return f"{host}:{port}"
    return f"{scheme}://{host}:{port}/" + ("maven/" if kind == "maven" else "")


def leaked_credentials(recorder: Recorder) -> list[str]:
    basic = base64.b64encode(f"{TEST_USER}:{TEST_TOKEN}".encode()).decode()
    found = []
    for method, path, headers, body in recorder.requests:
        text = json.dumps(headers) + path + body.decode("utf-8", "replace")
        if "Authorization" in headers or TEST_TOKEN in text or basic in text:
            found.append(f"{method} {path}")
    return found


@pytest.mark.parametrize("kind", ["npm", "maven", "docker"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_another_host_never_carries_credentials(workdir: Path, kind: str, status: int):
    with serve("127.0.0.2", not_found) as (other_port, other):

        def redirect(handler):
            reply(handler, status, headers={"Location": f"http://127.0.0.2:{other_port}{handler.path}"})

        with serve("127.0.0.1", redirect) as (port, first):
            project(kind, workdir)
            env = base_env(PACKAGE_TYPE=kind, REGISTRY_URL=registry_url(kind, "127.0.0.1", port), LOCAL_IMAGE="x")
            run = run_in_process(env, workdir)
    assert first.requests, "the pipe never asked the registry"
    assert leaked_credentials(other) == []
    assert run.code == 1, run.output
    assert run.last_line.startswith("✖ ") and "Traceback" not in run.output
    if kind != "docker":
        assert "redirect" in run.last_line
    else:
        # Reads of the tag list may follow a redirect (registries serve from CDNs), but bare.
        assert other.requests and run.last_line.startswith("✖ LOCAL_IMAGE 'x' is not in the Docker engine")
    assert_no_secret(run.output)


def test_session_sends_credentials_to_the_same_host_only(workdir: Path):
    """The session itself, for every method: credentials go to the registry, never past a redirect."""
    with serve("127.0.0.2", not_found) as (other_port, other):

        def redirect(handler):
            reply(handler, 307, headers={"Location": f"http://127.0.0.2:{other_port}/elsewhere"})

        with serve("127.0.0.1", redirect) as (port, first):
            session = new_session(auth=(TEST_USER, TEST_TOKEN))
            for method in ("GET", "HEAD", "PUT", "POST"):
                session.request(
                    method, f"http://127.0.0.1:{port}/x", data=b"body" if method in ("PUT", "POST") else None
                )
    assert all("Authorization" in headers for _, _, headers, _ in first.requests)
    assert leaked_credentials(other) == []


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = str(folder / "key.pem"), str(folder / "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.mark.parametrize("kind", ["npm", "maven", "docker"])
def test_tls_is_verified_by_default(workdir: Path, self_signed: ssl.SSLContext, kind: str):
    """A registry with a certificate nobody vouches for: refused before any HTTP request is sent."""
    with serve("127.0.0.1", not_found, self_signed) as (port, recorder):
        project(kind, workdir)
        url = registry_url(kind, "127.0.0.1", port, "https")
        env = base_env(PACKAGE_TYPE=kind, REGISTRY_URL=f"https://{url}" if kind == "docker" else url, LOCAL_IMAGE="x")
        run = run_in_process(env, workdir)
    assert recorder.requests == []
    assert run.code == 1, run.output
    assert run.last_line.startswith("✖ ") and "Traceback" not in run.output
    assert "could not be verified" in run.last_line
    assert_no_secret(run.output)


@pytest.mark.parametrize("kind", ["npm", "maven", "docker"])
def test_plain_http_off_loopback_needs_explicit_opt_in(workdir: Path, kind: str):
    project(kind, workdir)
    url = "http://registry.example.com/" + ("maven/" if kind == "maven" else "")
    run = run_in_process(base_env(PACKAGE_TYPE=kind, REGISTRY_URL=url), workdir)
    assert run.code == 1
    assert "ALLOW_INSECURE_HTTP" in run.last_line and run.last_line.startswith("✖ ")

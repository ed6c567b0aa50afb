"""A second real CNCF registry (`docker-registry`), in `auth: token` mode, for the tests: it
trusts the test bench's `TokenIssuer` and nothing else."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.oci.token_issuer import ISSUER, SERVICE, TokenIssuer

REGISTRY_BINARY = "/usr/bin/docker-registry"
READY_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TokenRegistry:
    def __init__(self, issuer: TokenIssuer, root: Path, delete: bool = True):
        """`delete=False` runs it as a registry that refuses deletes (405 UNSUPPORTED)."""
        self.issuer = issuer
        self.delete = delete
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def config(self) -> str:
        certificate = self.issuer.write_certificate(self.root / "issuer.pem")
        return f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {self.root / "data"}
  delete:
    enabled: {str(self.delete).lower()}
http:
  addr: {self.host}
  secret: bbpp-token-registry-secret
auth:
  token:
    realm: {self.issuer.realm}
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {certificate}
"""

    def start(self) -> TokenRegistry:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(self.config(), encoding="utf-8")
        log = open(self.root / "registry.log", "wb")  # the process writes it until stop()
        self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Until /v2/ answers with the token challenge (or the process dies, or time is up)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()}")
            try:
                answer = requests.get(f"http://{self.host}/v2/", timeout=2)
                if answer.status_code == 401 and self.issuer.realm in answer.headers.get("WWW-Authenticate", ""):
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)  # polling for readiness, bounded by the deadline
        raise RuntimeError(f"docker-registry on {self.host} did not become ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

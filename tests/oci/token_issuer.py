"""A small token issuer for a real CNCF registry in `auth: token` mode (the test bench's only
stand-in: the registry is real). It answers `GET /token?service=…&scope=…` with Basic auth like
Docker Hub or Bitbucket do: an RS256 JWT whose `x5c` header carries the issuer's self-signed
certificate, which the registry trusts as its `rootcertbundle`.

Grants are per user and repository prefix, so a test can hold pull-only access somewhere
("no permission to push") while pushing elsewhere.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER = "bbpp-test-issuer"
SERVICE = "bbpp-token-registry"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenIssuer:
    def __init__(
        self,
        users: Mapping[str, str],
        grants: Mapping[str, Mapping[str, str]],
        ttl_seconds: int = 300,
    ):
        """`grants[user][repository prefix]` = "pull", "pull,push", "pull,push,delete" or "*"; the
        longest prefix wins."""
        self.users = dict(users)
        self.grants = {user: dict(prefixes) for user, prefixes in grants.items()}
        self.ttl = ttl_seconds
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = self._self_signed()
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> TokenIssuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def realm(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/token"

    def write_certificate(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    # --- tokens ---------------------------------------------------------------------------

    def _self_signed(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def allowed(self, user: str, repository: str, wanted: list[str]) -> list[str]:
        prefixes = self.grants.get(user, {})
        matching = [prefix for prefix in prefixes if repository.startswith(prefix)]
        if not matching:
            return []
        granted = prefixes[max(matching, key=len)].split(",")
        # "*" grants every action, as distribution reads it (a DELETE needs "delete" or "*").
        return [action for action in wanted if action in granted or "*" in granted]

    def token(self, user: str, service: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            if kind == "repository" and repository:
                granted = self.allowed(user, repository, actions.split(","))
                access.append({"type": "repository", "name": repository, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": service,
            "exp": now + self.ttl,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode("ascii")]}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    # --- HTTP -----------------------------------------------------------------------------

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # http.server's naming
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                user = self.basic_user()
                issuer.requests.append({"user": user, "scope": query.get("scope", [])})
                if parts.path != "/token":
                    return self.answer(404, {"details": "not found"})
                if user is None:
                    return self.answer(401, {"details": "incorrect username or password"})
                token = issuer.token(user, query.get("service", [SERVICE])[0], query.get("scope", []))
                self.answer(200, {"token": token, "access_token": token, "expires_in": issuer.ttl})

            def basic_user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user if issuer.users.get(user) == password else None

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

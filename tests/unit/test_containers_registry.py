"""The registry reader's auth and paging, with the HTTP session faked at its seam. The Basic flow
runs against the real registry in tests/integration; the hosted registries' Bearer flow is here."""

from __future__ import annotations

import json

import pytest
import requests

from pipe.auth import Credentials
from pipe.config import Registry
from pipe.containers.registry import RegistryReader
from pipe.errors import RegistryError
from pipe.masking import SecretMasker

BASE = "https://crg.example"
CHALLENGE = 'Bearer realm="https://auth.example/token",service="crg.example",scope="repository:acme/widget:pull"'
ISSUED = "issued-registry-token-0f9e8d7c"


def response(status: int, body: object = None, headers: dict | None = None, url: str = BASE) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if body is not None else b""
    answer.headers.update(headers or {})
    answer.url = url
    answer.request = requests.Request("GET", url).prepare()
    return answer


class FakeSession:
    """Answers requests from a script of (method, url prefix) → response, and records them."""

    def __init__(self, script: list[tuple[str, str, requests.Response]]):
        self.script = list(script)
        self.calls: list[dict] = []

    def request(self, method, url, headers=None, **kwargs):
        self.calls.append({"method": method, "url": url, "headers": dict(headers or {}), **kwargs})
        expected_method, prefix, answer = self.script.pop(0)
        assert (method, url.startswith(prefix)) == (expected_method, True), (method, url)
        return answer

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)


def reader(session: FakeSession, masker: SecretMasker | None = None) -> RegistryReader:
    registry = Registry(url=BASE)
    credentials = Credentials("pipe-user", "ATBB-secret-token-123")
    return RegistryReader(registry, "acme/widget", credentials, masker or SecretMasker(), session)


def test_bearer_challenge_fetches_a_pull_token_and_masks_it():
    masker = SecretMasker()
    session = FakeSession(
        [
            ("GET", f"{BASE}/v2/acme/widget/tags/list", response(401, headers={"WWW-Authenticate": CHALLENGE})),
            ("GET", "https://auth.example/token", response(200, {"token": ISSUED})),
            ("GET", f"{BASE}/v2/acme/widget/tags/list", response(200, {"name": "acme/widget", "tags": ["1.0.0"]})),
        ]
    )
    assert reader(session, masker).list_tags() == ["1.0.0"]
    token_call = session.calls[1]
    assert token_call["params"] == {"scope": "repository:acme/widget:pull", "service": "crg.example"}
    assert token_call["auth"] == ("pipe-user", "ATBB-secret-token-123")
    assert session.calls[2]["headers"]["Authorization"] == f"Bearer {ISSUED}"
    assert masker.mask(f"token {ISSUED}") == "token [secure]"


def test_basic_challenge_answers_with_the_credentials():
    session = FakeSession(
        [
            ("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})),
            ("GET", f"{BASE}/v2/", response(200, {"tags": ["a"]})),
        ]
    )
    assert reader(session).list_tags() == ["a"]
    assert (
        session.calls[1]["headers"]["Authorization"] == Credentials("pipe-user", "ATBB-secret-token-123").basic_header
    )


def test_401_after_a_fresh_token_is_reported_not_retried():
    session = FakeSession(
        [
            ("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": CHALLENGE})),
            ("GET", "https://auth.example/token", response(200, {"token": ISSUED})),
            (
                "GET",
                f"{BASE}/v2/",
                response(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                    url=f"{BASE}/v2/acme/widget/tags/list?n=1000",
                ),
            ),
        ]
    )
    with pytest.raises(RegistryError) as caught:
        reader(session).list_tags()
    assert caught.value.status == 401
    assert caught.value.message.startswith(
        f"reading the tags of acme/widget failed: {BASE}/v2/acme/widget/tags/list?n=1000 answered 401 "
        "(UNAUTHORIZED: authentication required): the registry did not accept the credentials"
    )
    assert session.script == []


def test_token_endpoint_refusing_the_credentials():
    session = FakeSession(
        [
            ("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": CHALLENGE})),
            ("GET", "https://auth.example/token", response(401, {"details": "incorrect username or password"})),
        ]
    )
    with pytest.raises(RegistryError) as caught:
        reader(session).list_tags()
    assert caught.value.message.startswith("reading the tags of acme/widget (token request) failed:")
    assert "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN" in caught.value.message


def test_denied_read_says_to_link_the_package():
    denied = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
    session = FakeSession(
        [
            ("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})),
            ("GET", f"{BASE}/v2/", response(403, denied)),
        ]
    )
    with pytest.raises(RegistryError) as caught:
        reader(session).list_tags()
    assert caught.value.code == "DENIED"
    assert caught.value.message.endswith(
        "(DENIED: requested access to the resource is denied): the credentials may not read this image: "
        "check that the package is linked to this repository."
    )


def test_unknown_repository_has_no_tags_yet():
    unknown = {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
    session = FakeSession([("GET", f"{BASE}/v2/", response(404, unknown))])
    assert reader(session).list_tags() == []


def test_tag_list_follows_link_pages():
    link = '</v2/acme/widget/tags/list?n=1000&last=b>; rel="next"'
    session = FakeSession(
        [
            ("GET", f"{BASE}/v2/", response(200, {"tags": ["a", "b"]}, headers={"Link": link})),
            ("GET", f"{BASE}/v2/acme/widget/tags/list?n=1000&last=b", response(200, {"tags": ["c"]})),
        ]
    )
    assert reader(session).list_tags() == ["a", "b", "c"]


def test_tag_digest_asks_for_manifest_media_types():
    session = FakeSession(
        [
            (
                "HEAD",
                f"{BASE}/v2/acme/widget/manifests/1.0.0",
                response(200, headers={"Docker-Content-Digest": "sha256:ab"}),
            )
        ]
    )
    assert reader(session).tag_digest("1.0.0") == "sha256:ab"
    assert "application/vnd.oci.image.manifest.v1+json" in session.calls[0]["headers"]["Accept"]

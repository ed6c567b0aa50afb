"""The registry reader's auth and paging, with HTTP faked at its one seam (a transport adapter). The Basic flow
runs against the real registry in tests/integration; the hosted registries' Bearer flow is here."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from pipe.auth import Credentials
from pipe.config import load_config
from pipe.containers.registry import RegistryReader
from pipe.errors import RegistryError
from pipe.masking import SecretMasker
from tests.conftest import TEST_USER, base_env
from tests.fakehttp import ScriptedTransport, Sent

BASE = "https://crg.example"
CHALLENGE = 'Bearer realm="https://auth.example/token",service="crg.example",scope="repository:acme/widget:pull"'
ISSUED = "issued-registry-token-0f9e8d7c"
TOKEN = "ATBB-secret-token-123"
CREDENTIALS = Credentials(TEST_USER, TOKEN)
LOG = logging.getLogger("test.containers.registry")


class ScriptedRegistry(ScriptedTransport):
    """Answers each request with the next (method, url prefix, response) of a script,
    checking that the request is the one expected."""

    def __init__(self, script: list[tuple]):
        super().__init__([])
        self.expected = list(script)

    def handle_request(self, request, sent: Sent):
        method, prefix, (status, body, headers) = self.expected.pop(0)
        assert (sent.method, sent.url.startswith(prefix)) == (method, True), (sent.method, sent.url)
        return self.answer(request, status, b"" if body is None else body, headers)


def response(status: int, body: object = None, headers: dict | None = None) -> tuple:
    return status, body, headers or {}


def reader(transport: ScriptedRegistry, masker: SecretMasker | None = None, **variables: str) -> RegistryReader:
    env = base_env(**{"PACKAGE_TYPE": "docker", "REGISTRY_URL": BASE, "BITBUCKET_PACKAGES_TOKEN": TOKEN} | variables)
    config = replace(load_config(env, Path.cwd()), transport=transport)
    return RegistryReader.from_config(config, LOG, masker or SecretMasker())


def challenged_tag_list() -> ScriptedRegistry:
    return ScriptedRegistry(
        [
            ("GET", f"{BASE}/v2/acme/widget/tags/list", response(401, headers={"WWW-Authenticate": CHALLENGE})),
            ("GET", "https://auth.example/token", response(200, {"token": ISSUED})),
            ("GET", f"{BASE}/v2/acme/widget/tags/list", response(200, {"name": "acme/widget", "tags": ["1.0.0"]})),
        ]
    )


@pytest.mark.parametrize(
    ("variables", "scope"),
    [
        # The run's first token covers what it will do: a publish pushes, a cleanup deletes.
        ({}, "repository:acme/widget:pull,push"),
        ({"ACTION": "cleanup", "KEEP_RELEASES": "3"}, "repository:acme/widget:pull,delete"),
        ({"DRY_RUN": "true"}, "repository:acme/widget:pull"),
        ({"ACTION": "cleanup", "KEEP_RELEASES": "3", "DRY_RUN": "true"}, "repository:acme/widget:pull"),
    ],
)
def test_bearer_challenge_fetches_a_token_for_the_run_and_masks_it(variables, scope):
    masker = SecretMasker()
    transport = challenged_tag_list()
    assert reader(transport, masker, **variables).list_tags() == ["1.0.0"]
    token_call = transport.requests[1]
    assert token_call.query == {"scope": [scope], "service": ["crg.example"]}
    assert token_call.headers["Authorization"] == CREDENTIALS.basic_header
    assert transport.requests[2].headers["Authorization"] == f"Bearer {ISSUED}"
    assert masker.mask(f"token {ISSUED}") == "token [secure]"


def test_a_basic_registry_gets_the_credentials_with_the_first_request():
    """No 401 round trip first: over https the first request carries the credentials."""
    transport = ScriptedRegistry([("GET", f"{BASE}/v2/", response(200, {"tags": ["a"]}))])
    assert reader(transport).list_tags() == ["a"]
    assert len(transport.requests) == 1
    assert transport.requests[0].headers["Authorization"] == CREDENTIALS.basic_header


def test_credentials_sent_first_and_refused_are_reported_not_sent_again():
    transport = ScriptedRegistry(
        [("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))]
    )
    with pytest.raises(RegistryError) as caught:
        reader(transport).list_tags()
    assert caught.value.status == 401
    assert "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN" in caught.value.message
    assert len(transport.requests) == 1


def test_plain_http_to_another_host_gets_the_credentials_only_when_it_asks_for_basic():
    insecure = "http://registry.internal"
    transport = ScriptedRegistry(
        [
            ("GET", f"{insecure}/v2/", response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})),
            ("GET", f"{insecure}/v2/", response(200, {"tags": ["a"]})),
        ]
    )
    client = reader(transport, REGISTRY_URL=insecure, ALLOW_INSECURE_HTTP="true")
    assert client.list_tags() == ["a"]
    assert "Authorization" not in transport.requests[0].headers
    assert transport.requests[1].headers["Authorization"] == CREDENTIALS.basic_header


def test_401_after_a_fresh_token_is_reported_not_retried():
    transport = ScriptedRegistry(
        [
            ("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": CHALLENGE})),
            ("GET", "https://auth.example/token", response(200, {"token": ISSUED})),
            (
                "GET",
                f"{BASE}/v2/",
                response(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
            ),
        ]
    )
    with pytest.raises(RegistryError) as caught:
        reader(transport).list_tags()
    assert caught.value.status == 401
    assert caught.value.message.startswith(
        f"reading the tags of acme/widget failed: {BASE}/v2/acme/widget/tags/list?n=1000 answered 401 "
        "(UNAUTHORIZED: authentication required): the registry did not accept the credentials"
    )
    assert transport.expected == []


def test_token_endpoint_refusing_the_credentials():
    transport = ScriptedRegistry(
        [
            ("GET", f"{BASE}/v2/", response(401, headers={"WWW-Authenticate": CHALLENGE})),
            ("GET", "https://auth.example/token", response(401, {"details": "incorrect username or password"})),
        ]
    )
    with pytest.raises(RegistryError) as caught:
        reader(transport).list_tags()
    assert caught.value.message.startswith("reading the tags of acme/widget (token request) failed:")
    assert "check BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN" in caught.value.message


def test_denied_read_says_to_link_the_package():
    denied = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
    transport = ScriptedRegistry(
        [
            ("GET", f"{BASE}/v2/", response(403, denied)),
        ]
    )
    with pytest.raises(RegistryError) as caught:
        reader(transport).list_tags()
    assert caught.value.code == "DENIED"
    assert caught.value.message.endswith(
        "(DENIED: requested access to the resource is denied): the credentials may not read this image: "
        "check that the package is linked to this repository."
    )


def test_unknown_repository_has_no_tags_yet():
    unknown = {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
    transport = ScriptedRegistry([("GET", f"{BASE}/v2/", response(404, unknown))])
    assert reader(transport).list_tags() == []


def test_tag_list_follows_link_pages():
    link = '</v2/acme/widget/tags/list?n=1000&last=b>; rel="next"'
    transport = ScriptedRegistry(
        [
            ("GET", f"{BASE}/v2/", response(200, {"tags": ["a", "b"]}, headers={"Link": link})),
            ("GET", f"{BASE}/v2/acme/widget/tags/list?n=1000&last=b", response(200, {"tags": ["c"]})),
        ]
    )
    assert reader(transport).list_tags() == ["a", "b", "c"]


def test_tag_digest_asks_for_manifest_media_types():
    transport = ScriptedRegistry(
        [
            (
                "HEAD",
                f"{BASE}/v2/acme/widget/manifests/1.0.0",
                response(200, headers={"Docker-Content-Digest": "sha256:ab"}),
            )
        ]
    )
    assert reader(transport).tag_digest("1.0.0") == "sha256:ab"
    assert "application/vnd.oci.image.manifest.v1+json" in transport.requests[0].headers["Accept"]


def test_a_next_page_on_another_host_is_not_followed_with_the_credentials():
    link = '<https://elsewhere.example/v2/acme/widget/tags/list?last=b>; rel="next"'
    transport = ScriptedRegistry([("GET", f"{BASE}/v2/", response(200, {"tags": ["a", "b"]}, headers={"Link": link}))])
    with pytest.raises(RegistryError) as raised:
        reader(transport).list_tags()
    assert raised.value.message == (
        "reading the tags of acme/widget stopped: the registry's next page of tags is on another host "
        "(https://elsewhere.example/v2/acme/widget/tags/list?last=b), where the pipe does not send its "
        "credentials: check REGISTRY_URL."
    )
    assert [sent.url.split("?")[0] for sent in transport.requests] == [f"{BASE}/v2/acme/widget/tags/list"]


@pytest.mark.parametrize("body", [b"<html>sign in</html>", b'{"tags": "1.0.0"}', b'{"tags": [1, 2]}', b"[]"])
def test_an_answer_that_is_no_tag_list_is_one_line(body: bytes):
    transport = ScriptedRegistry([("GET", f"{BASE}/v2/", response(200, body))])
    with pytest.raises(RegistryError) as raised:
        reader(transport).list_tags()
    assert raised.value.message == (
        f"reading the tags of acme/widget failed: {BASE}/v2/acme/widget/tags/list?n=1000 answered 200 with no "
        'tag list ({"tags": [...]}): check REGISTRY_URL.'
    )

"""No form of the token reaches the output, whatever a publisher (or a library) prints."""

from __future__ import annotations

import base64
import json
import logging
import sys
import types
from pathlib import Path
from urllib.parse import quote

import pytest

from pipe import cli
from pipe.masking import HIDDEN, SecretMasker, base64_fragments, strip_userinfo
from pipe.outputs import Publication
from tests.conftest import TEST_TOKEN, TEST_USER, assert_no_secret, base_env, run_in_process


def leaky_lines() -> list[str]:
    """Every shape in which a careless line could carry the credentials."""
    docker_auth = base64.b64encode(json.dumps({"username": TEST_USER, "password": TEST_TOKEN}).encode()).decode()
    return [
        f"raw {TEST_TOKEN}",
        f"base64 {base64.b64encode(TEST_TOKEN.encode()).decode()}",
        f"basic {base64.b64encode(f'{TEST_USER}:{TEST_TOKEN}'.encode()).decode()}",
        f"Authorization: Bearer {TEST_TOKEN}",
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.fresh-registry-token",
        f"X-Registry-Auth: {docker_auth}",
        f"url https://{TEST_USER}:{quote(TEST_TOKEN)}@registry.example.com/v2/",
        f"url-encoded {quote(TEST_TOKEN, safe='')}",
    ]


@pytest.fixture
def leaky_publisher(monkeypatch: pytest.MonkeyPatch):
    """A publisher that logs every leaky shape at every level, then fails as told."""

    def install(failure: BaseException | None):
        def publish(config, log, masker):
            for line in leaky_lines():
                log.info(line)
                log.warning(line)
                log.debug(line)
                logging.getLogger("urllib3.connectionpool").debug(line)
            if failure is not None:
                raise failure
            return Publication(summary=f"published with {TEST_TOKEN}", variables={"PUBLISHED_VERSION": "1.0.0"})

        module = types.ModuleType("fake_publisher")
        module.publish = publish
        monkeypatch.setitem(sys.modules, "fake_publisher", module)
        monkeypatch.setitem(cli.PUBLISHERS, "npm", "fake_publisher")

    return install


@pytest.mark.parametrize("debug", ["true", "false"])
@pytest.mark.parametrize(
    "failure",
    [None, RuntimeError(f"crash holding {TEST_TOKEN}"), ValueError(f"Bearer {TEST_TOKEN}")],
    ids=["success", "crash", "bearer-crash"],
)
def test_no_secret_form_reaches_the_output(workdir: Path, leaky_publisher, debug: str, failure) -> None:
    leaky_publisher(failure)
    run = run_in_process(base_env(PACKAGE_TYPE="npm", DEBUG=debug), workdir)
    assert_no_secret(run.output)
    assert "eyJhbGciOiJSUzI1NiJ9" not in run.output
    assert HIDDEN in run.output
    assert "registry.example.com/v2/" in run.output  # the URL stays, its user-info goes
    if failure is None:
        assert run.code == 0
        assert run.last_line == f"✔ published with {HIDDEN}"
    else:
        assert run.code == 1
        assert run.last_line.startswith("✖ unexpected error (")
        assert ("Traceback" in run.output) is (debug == "true")


def test_debug_lines_only_with_debug(workdir: Path, leaky_publisher) -> None:
    leaky_publisher(None)
    quiet = run_in_process(base_env(PACKAGE_TYPE="npm"), workdir)
    loud = run_in_process(base_env(PACKAGE_TYPE="npm", DEBUG="true"), workdir)
    assert not any(line.startswith("DEBUG: ") for line in quiet.lines)
    assert any(line.startswith("DEBUG: ") for line in loud.lines)


def test_a_malformed_variable_is_masked_too(workdir: Path) -> None:
    # Even a config error that quotes a value cannot show the token.
    run = run_in_process(base_env(PACKAGE_TYPE=TEST_TOKEN), workdir)
    assert run.code == 1
    assert run.lines == [f"✖ PACKAGE_TYPE '{HIDDEN}' is not supported: use docker, npm or maven."]


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_token_inside_a_larger_base64_blob_is_masked(offset: int) -> None:
    masker = SecretMasker()
    masker.add(TEST_TOKEN)
    blob = base64.b64encode(b"x" * offset + TEST_TOKEN.encode() + b"tail").decode()
    masked = masker.mask(blob)
    assert HIDDEN in masked
    assert not any(fragment in masked for fragment in base64_fragments(TEST_TOKEN.encode()))


def test_short_values_are_not_masked() -> None:
    masker = SecretMasker()
    masker.add("ab")
    assert masker.mask("tab cab") == "tab cab"


def test_strip_userinfo() -> None:
    assert strip_userinfo("https://u:p@host:8443/x?y=1") == "https://host:8443/x?y=1"
    assert strip_userinfo("https://host/x") == "https://host/x"

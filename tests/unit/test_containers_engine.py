"""Reading docker-py's build and push streams: errors arrive as stream lines, not exceptions,
and must end the run with one actionable message. The streams are the engine's real shapes."""

from __future__ import annotations

import logging

import pytest

from pipe.containers.engine import follow_build, follow_push, push_error
from pipe.errors import EngineError, RegistryError

LOG = logging.getLogger("test")

BUILD_OK = [
    {"stream": "Step 1/2 : FROM scratch"},
    {"stream": "\n"},
    {"stream": " ---> \n"},
    {"stream": "Step 2/2 : COPY hello.txt /"},
    {"stream": "\n"},
    {"stream": " ---> 3675a01e1f88\n"},
    {"aux": {"ID": "sha256:781667f80ba2876a6be814974d1fdd42f368d083028bad066984b29cf3ced06b"}},
    {"stream": "Successfully built 781667f80ba2\n"},
]


def test_build_stream_gives_the_image_id_and_logs_the_steps(caplog):
    caplog.set_level(logging.DEBUG, logger="test")
    image_id = follow_build(BUILD_OK, LOG)
    assert image_id == "sha256:781667f80ba2876a6be814974d1fdd42f368d083028bad066984b29cf3ced06b"
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert info == ["  Step 1/2 : FROM scratch", "  Step 2/2 : COPY hello.txt /", "  Successfully built 781667f80ba2"]


def test_build_error_in_the_stream_names_the_failing_instruction():
    stream = [
        {"stream": "Step 1/2 : FROM scratch"},
        {"stream": "\n"},
        {"stream": "Step 2/2 : COPY missing.txt /"},
        {"stream": "\n"},
        {
            "errorDetail": {"message": "COPY failed: file not found in build context: stat missing.txt"},
            "error": "COPY failed: file not found in build context: stat missing.txt",
        },
    ]
    with pytest.raises(EngineError) as caught:
        follow_build(stream, LOG)
    assert caught.value.message == (
        "the image build failed at Step 2/2 : COPY missing.txt /: COPY failed: file not found in build context: "
        "stat missing.txt: fix the Dockerfile and re-run."
    )


def test_build_without_image_id_is_an_error():
    with pytest.raises(EngineError):
        follow_build([{"stream": "Step 1/1 : FROM scratch\n"}], LOG)


PUSH_OK = [
    {"status": "The push refers to repository [127.0.0.1:5000/acme/widget]"},
    {"status": "Preparing", "progressDetail": {}, "id": "0360c9b5eaba"},
    {"status": "Pushed", "progressDetail": {}, "id": "0360c9b5eaba"},
    {"status": "1.0.0: digest: sha256:b69c size: 524"},
    {"progressDetail": {}, "aux": {"Tag": "1.0.0", "Digest": "sha256:b69c", "Size": 524}},
]


def test_push_stream_gives_the_digest():
    assert follow_push(PUSH_OK, "r/acme/widget:1.0.0", "widget", LOG) == "sha256:b69c"


def test_push_without_digest_is_an_error():
    with pytest.raises(EngineError):
        follow_push(PUSH_OK[:3], "r/acme/widget:1.0.0", "widget", LOG)


@pytest.mark.parametrize(
    ("engine_message", "expected_hint"),
    [
        (
            "unauthorized: authentication required",
            "the registry did not accept the credentials: check BITBUCKET_PACKAGES_USERNAME and "
            "BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the write:package:bitbucket scope).",
        ),
        (
            "name unknown: repository name not known to registry",
            "create the package 'widget' in Bitbucket Packages and link it to this repository, then re-run the step.",
        ),
        (
            "denied: requested access to the resource is denied",
            "the credentials may not push this image: link the package to this repository in Bitbucket and make "
            "sure the token may write packages.",
        ),
        (
            'Get "https://reg.example:5000/v2/": http: server gave HTTP response to HTTPS client',
            "the Docker engine talks HTTPS to this registry: use an https:// REGISTRY_URL, or add the registry to "
            "the engine's insecure-registries.",
        ),
        (
            'Get "https://crg.example/v2/": dial tcp: lookup crg.example: no such host',
            "the Docker engine could not reach the registry: check REGISTRY_URL and that the registry is reachable.",
        ),
        ("something odd", "re-run the step; if it persists, run with DEBUG: 'true'."),
    ],
)
def test_push_refusals_become_actions(engine_message, expected_hint):
    stream = [PUSH_OK[0], {"errorDetail": {"message": engine_message}, "error": engine_message}]
    with pytest.raises(RegistryError) as caught:
        follow_push(stream, "r/acme/widget:1.0.0", "widget", LOG)
    assert caught.value.message == f"pushing r/acme/widget:1.0.0 failed ({engine_message}): {expected_hint}"


def test_push_error_is_one_line():
    error = push_error("r/x:1", "unauthorized:\n  authentication required", "x")
    assert "\n" not in error.message

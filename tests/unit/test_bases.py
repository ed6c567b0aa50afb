"""Base images read from a Dockerfile or from the OCI base-name label (for cross-repository mounts)."""

from __future__ import annotations

import json

import pytest

from pipe.containers.archive import ImageManifest
from pipe.containers.bases import BASE_NAME, base_images, declared_bases, mount_sources, repository_of
from pipe.containers.mediatypes import OCI_CONFIG

REGISTRY = "crg.example"


def test_from_lines_with_platform_stages_args_and_continuations():
    text = """\
# syntax=docker/dockerfile:1
ARG BASE=crg.example/acme/python-base
ARG VERSION=3.12
FROM --platform=linux/amd64 ${BASE}:$VERSION AS build
RUN make
FROM build AS test
FROM \\
    crg.example/acme/runtime@sha256:0123 AS final
# FROM crg.example/acme/commented-out:1
COPY --from=build /out /
FROM scratch
ARG LATE=crg.example/acme/late
FROM $LATE
"""
    assert base_images(text, {}) == [
        "crg.example/acme/python-base:3.12",
        "crg.example/acme/runtime@sha256:0123",
    ]
    # BUILD_ARGS win over the ARG defaults, as with `docker build --build-arg`.
    assert base_images(text, {"VERSION": "3.13"})[0] == "crg.example/acme/python-base:3.13"


def test_unknown_variables_leave_the_base_out():
    assert base_images("ARG TAG\nFROM crg.example/acme/base:${TAG}\n", {}) == []
    assert base_images("ARG TAG\nFROM crg.example/acme/base:${TAG}\n", {"TAG": "1"}) == ["crg.example/acme/base:1"]


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("crg.example/acme/base", ("acme/base", "latest")),
        ("crg.example/acme/base:1.2", ("acme/base", "1.2")),
        ("crg.example/acme/base@sha256:abcd", ("acme/base", "sha256:abcd")),
        ("crg.example/acme/base:1@sha256:abcd", ("acme/base", "sha256:abcd")),
        ("crg.example/path/acme/base:1", ("path/acme/base", "1")),
        ("crg.example:443/acme/base:1", None),  # another host as far as names go
        ("python:3.12-slim", None),
        ("docker.io/library/python:3.12", None),
    ],
)
def test_repository_of_a_reference_on_the_registry(reference, repository):
    assert repository_of(reference, REGISTRY) == repository


def test_mount_sources_are_other_repositories_of_the_same_workspace():
    text = (
        "FROM crg.example/acme/base:1 AS one\n"
        "FROM crg.example/acme/widget:0.9 AS previous\n"  # the target itself: nothing to mount
        "FROM crg.example/other-team/base:1 AS two\n"  # another workspace: not asked for
        "FROM python:3.12-slim AS three\n"
        "FROM crg.example/acme/base:2\n"
        "FROM crg.example/acme/base:1\n"  # named twice: asked once
    )
    assert mount_sources(base_images(text, {}), REGISTRY, "acme/widget") == [("acme/base", "1"), ("acme/base", "2")]


def test_base_name_from_labels_or_annotations():
    label = {BASE_NAME: "crg.example/acme/base:1", "other": "x"}
    annotation = {BASE_NAME: "crg.example/acme/base:1"}
    assert declared_bases(label, None, annotation) == ["crg.example/acme/base:1"]
    assert declared_bases({}, None) == []


def test_an_archived_image_names_its_base_in_its_config_labels_or_manifest_annotations():
    config = json.dumps({"config": {"Labels": {BASE_NAME: "crg.example/acme/from-label:1"}}}).encode()
    raw = json.dumps({"annotations": {BASE_NAME: "crg.example/acme/from-annotation:2"}}).encode()
    manifest = ImageManifest(config, OCI_CONFIG, [], raw=raw)
    assert declared_bases(*manifest.base_hints) == [
        "crg.example/acme/from-label:1",
        "crg.example/acme/from-annotation:2",
    ]
    legacy = ImageManifest(json.dumps({"config": {}}).encode(), OCI_CONFIG, [])  # a docker save: no manifest of its own
    assert declared_bases(*legacy.base_hints) == []

"""Which image an image was built on: the Dockerfile's `FROM` lines (read without an engine),
or, for an image the pipe did not build, the OCI base-name label or annotation its builder left.

A team's images usually share base layers: `FROM <registry>/<workspace>/base:1` in several
repositories. Those layers are already in the registry, under the base image's repository, and
the registry can link them into the new repository (a cross-repository mount) instead of taking
them again over the network. This module finds those base images; `oci_push` mounts from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Set by builders (buildkit, buildpacks, metadata actions) as a config label or a manifest annotation.
BASE_NAME = "org.opencontainers.image.base.name"
# `$NAME` or `${NAME}` (the `${NAME:-default}` forms are left unexpanded: such a base is skipped).
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def logical_lines(text: str) -> Iterable[str]:
    """Instructions with their `\\` continuations joined and comment lines dropped."""
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def base_images(text: str, build_args: Mapping[str, str]) -> list[str]:
    """Every image a `FROM` names, its global `ARG`s expanded (BUILD_ARGS over the defaults);
    earlier stages, `scratch` and references left with an unknown variable are not images."""
    arguments: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for line in logical_lines(text):
        instruction, _, rest = line.strip().partition(" ")
        keyword = instruction.upper()
        if keyword == "ARG" and not seen_from:  # only ARGs before the first FROM reach FROM lines
            name, has_default, default = (part.strip() for part in rest.partition("="))
            value = build_args.get(name, default.strip("\"'") if has_default else None)
            if value is not None:
                arguments[name] = value
        elif keyword == "FROM":
            seen_from = True
            words = [word for word in rest.split() if not word.startswith("--")]
            if not words:
                continue
            image = VARIABLE.sub(lambda match: arguments.get(match[1] or match[2], "$?"), words[0])
            if "$" not in image and image.lower() != "scratch" and image.lower() not in stages:
                images.append(image)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
    return images


def repository_of(reference: str, registry_host: str) -> tuple[str, str] | None:
    """(repository name `[path/]workspace/image`, tag or digest) of a reference on
    `registry_host`, or None for an image elsewhere."""
    host, _, name = reference.partition("/")
    if host != registry_host or not name:
        return None
    name, _, digest = name.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    repository = name[: len(name) - len(last)] + last.partition(":")[0]
    return (repository, digest or tag or "latest") if repository else None


def declared_bases(*labels_or_annotations: Mapping[str, str] | None) -> list[str]:
    """The base image named by `org.opencontainers.image.base.name`, wherever it is set."""
    found = [str(mapping[BASE_NAME]) for mapping in labels_or_annotations if mapping and mapping.get(BASE_NAME)]
    return list(dict.fromkeys(found))


def mount_sources(images: Iterable[str], registry_host: str, target: str) -> list[tuple[str, str]]:
    """(repository, tag or digest) of each of `images` that lives in another repository of the
    same workspace as `target`."""
    workspace = target.rsplit("/", 1)[0] + "/"
    sources: list[tuple[str, str]] = []
    for image in images:
        found = repository_of(image, registry_host)
        if found and found[0] != target and found[0].startswith(workspace) and found not in sources:
            sources.append(found)
    return sources

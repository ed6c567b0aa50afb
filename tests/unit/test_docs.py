"""README's variables table, pipe.yml and the code name the same variables."""

from __future__ import annotations

import re

import yaml

from pipe.config import LIST_VARIABLES, STRING_VARIABLES
from tests.conftest import REPO_ROOT

CODE_VARIABLES = set(STRING_VARIABLES) | set(LIST_VARIABLES)


def readme_table_variables() -> set[str]:
    text = (REPO_ROOT / "README.md").read_text()
    table = text.split("## Variables", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)`", table, flags=re.MULTILINE))


def test_readme_variables_table_matches_the_code() -> None:
    assert readme_table_variables() == CODE_VARIABLES


def test_pipe_yml_variables_match_the_code() -> None:
    metadata = yaml.safe_load((REPO_ROOT / "pipe.yml").read_text())
    assert {entry["name"] for entry in metadata["variables"]} == CODE_VARIABLES
    for key in ("name", "image", "description", "category", "repository", "vendor", "maintainer", "tags"):
        assert metadata.get(key), f"pipe.yml lacks {key}"


def test_readme_snippet_uses_the_released_image() -> None:
    metadata = yaml.safe_load((REPO_ROOT / "pipe.yml").read_text())
    assert f"pipe: docker://{metadata['image']}" in (REPO_ROOT / "README.md").read_text()


def test_every_snippet_names_the_image_the_release_pipeline_publishes() -> None:
    """The tag pipeline pushes IMAGE_NAME to the default registry under the pipe repository's
    workspace; pipe.yml and every README snippet must name that reference at this version."""
    from pipe import __version__
    from pipe.config import DEFAULT_CONTAINER_REGISTRY

    metadata = yaml.safe_load((REPO_ROOT / "pipe.yml").read_text())
    workspace = metadata["repository"].rstrip("/").split("/")[-2]
    pipeline = (REPO_ROOT / "bitbucket-pipelines.yml").read_text()
    image_name = re.search(r"IMAGE_NAME=(\S+)", pipeline).group(1)
    published = f"{DEFAULT_CONTAINER_REGISTRY}/{workspace}/{image_name}:{__version__}"
    assert metadata["image"] == published
    snippets = re.findall(r"^\s*- pipe: docker://(\S+)$", (REPO_ROOT / "README.md").read_text(), re.M)
    assert snippets and set(snippets) == {published}

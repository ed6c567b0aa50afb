"""README (its YAML Definition and its variables table) and pipe.yml name the same variables, and
every variable the code reads is documented there. The documentation may run ahead of the code
(a variable of the contract not read yet), never behind it."""

from __future__ import annotations

import re

import yaml

from pipe.config import LIST_VARIABLES, STRING_VARIABLES
from tests.conftest import REPO_ROOT

CODE_VARIABLES = set(STRING_VARIABLES) | set(LIST_VARIABLES)


README_MAX_LINES = 400


def readme_section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_table_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z_]+)`", readme_section("Variables"), flags=re.MULTILINE))


def readme_definition_variables() -> set[str]:
    """The variables of the YAML Definition's snippet, set or commented out."""
    snippet = readme_section("YAML Definition").split("```yaml", 1)[1].split("```", 1)[0]
    return set(re.findall(r"^\s+#?\s*([A-Z][A-Z0-9_]+):", snippet, flags=re.MULTILINE))


def pipe_yml_variables() -> set[str]:
    metadata = yaml.safe_load((REPO_ROOT / "pipe.yml").read_text())
    names = [entry["name"] for entry in metadata["variables"]]
    assert len(names) == len(set(names)), f"pipe.yml lists a variable twice: {sorted(names)}"
    return set(names)


def test_readme_table_lists_each_variable_once() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)`", readme_section("Variables"), flags=re.MULTILINE)
    assert len(rows) == len(set(rows)), sorted(rows)


def test_yaml_definition_table_and_pipe_yml_list_the_same_variables() -> None:
    assert readme_definition_variables() == readme_table_variables()
    assert readme_table_variables() == pipe_yml_variables()


def test_every_variable_the_code_reads_is_documented() -> None:
    assert CODE_VARIABLES <= readme_table_variables(), "read by pipe/config.py, missing from README"
    assert CODE_VARIABLES <= pipe_yml_variables(), "read by pipe/config.py, missing from pipe.yml"


def test_readme_has_atlassians_pipe_layout_and_stays_short() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    layout = ["YAML Definition", "Variables", "Details", "Prerequisites", "Examples", "Support"]
    assert [h for h in headings if h in layout] == layout
    assert len(text.splitlines()) <= README_MAX_LINES


def test_every_variable_an_example_uses_is_introduced() -> None:
    """A `$NAME` in a README snippet is a variable Pipelines provides or one the prose introduces."""
    text = (REPO_ROOT / "README.md").read_text()
    snippets = "\n".join(re.findall(r"```(?:yaml|sh|xml|ini)\n(.*?)```", text, flags=re.S))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    used = set(re.findall(r"\$\{?(?:env\.)?([A-Z][A-Z0-9_]+)", snippets))
    provided = {name for name in used if name.startswith("BITBUCKET_")}
    assert {name for name in used - provided if f"`{name}`" not in prose} == set()


def test_pipe_yml_has_the_metadata_pipes_need() -> None:
    metadata = yaml.safe_load((REPO_ROOT / "pipe.yml").read_text())
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

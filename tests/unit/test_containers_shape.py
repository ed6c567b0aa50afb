"""The container publisher's shape, read from its source: imports go one way (none inside a
function makes a cycle), `requests` stays in the client modules, and the actions get their
clients in one way (`from_config`), never by making sessions or reading credentials themselves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PIPE = Path(__file__).resolve().parents[2] / "pipe"
CONTAINERS = PIPE / "containers"
# The client modules, which alone may speak HTTP through requests: the registry's (`auth`,
# `registry`) and the Docker engine's (`engine`, `buildkit`: BuildKit over the Engine API).
REQUESTS_ALLOWED = {"auth.py", "registry.py", "engine.py", "buildkit.py"}
ACTIONS = ("publish.py", "cleanup.py", "index.py", "native.py", "oci_push.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PIPE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, known: set[str]) -> set[str]:
    """Every pipe module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PIPE.rglob("*.py")}
    return {name: imported(path, set(files)) - {name} for name, path in files.items()}


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, queue = set(), list(graph[start])
    while queue:
        name = queue.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            queue.extend(graph.get(name, ()))
    return False


def test_no_container_module_is_part_of_an_import_cycle():
    graph = import_graph()
    in_cycles = [name for name in graph if name.startswith("pipe.containers") and reaches(graph, name, name)]
    assert in_cycles == []


def test_requests_is_imported_by_the_client_modules_alone():
    importers = sorted(
        path.name
        for path in CONTAINERS.glob("*.py")
        if {"requests"} & {name.split(".")[0] for name in imported_names(path)}
    )
    assert set(importers) <= REQUESTS_ALLOWED, importers


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_actions_make_no_sessions_and_read_no_credentials():
    for name in ACTIONS:
        source = (CONTAINERS / name).read_text(encoding="utf-8")
        assert "new_session" not in source, name
        assert "config.credentials" not in source, name


def test_the_registry_client_sits_below_the_archive_and_the_compressor():
    graph = import_graph()
    assert not reaches(graph, "pipe.containers.registry", "pipe.containers.archive")
    assert not reaches(graph, "pipe.containers.registry", "pipe.containers.compress")


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after `statement` (the imports of a run's entry)."""
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PIPE.parent)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


@pytest.mark.parametrize(
    "entries",
    [
        ("pipe.npm.publish", "pipe.npm.cleanup", "pipe.maven.publish", "pipe.maven.cleanup"),
        ("pipe.containers.publish", "pipe.containers.cleanup"),
    ],
    ids=["npm and maven", "containers"],
)
def test_a_run_loads_no_docker_client_until_it_talks_to_an_engine(entries):
    """docker-py costs ~15 ms of start-up: npm and Maven runs never load it, nor any container
    module; an image run loads it only when it connects to the engine (an IMAGE_ARCHIVE push,
    an index or a cleanup never do)."""
    loaded = loaded_after(f"import pipe.cli, {', '.join(entries)}")
    assert not {name for name in loaded if name == "docker" or name.startswith("docker.")}
    assert set(entries) <= loaded
    if not entries[0].startswith("pipe.containers"):
        assert not {name for name in loaded if name.startswith("pipe.containers")}


def test_an_image_run_loads_the_build_modules_only_for_a_build():
    """A push of an image the run was given (IMAGE_ARCHIVE, LOCAL_IMAGE) starts without BuildKit's
    and the build cache's modules: they load when a Dockerfile is built."""
    loaded = loaded_after("import pipe.cli, pipe.containers.publish")
    build_modules = {"pipe.containers.build", "pipe.containers.buildkit", "pipe.containers.build_cache"}
    assert not build_modules & loaded

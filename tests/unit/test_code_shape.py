"""The shape of pipe/ as ARCHITECTURE.md draws it: no import cycle (imports inside functions
counted), `requests` only where HTTP is spoken, no client built outside its factory, no function
too long to read at once."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PIPE = Path(__file__).resolve().parents[2] / "pipe"
# Where `requests` may be imported: the HTTP layer, the auth modules and the registry clients.
SPEAKS_HTTP = {
    "pipe.http",
    "pipe.auth",
    "pipe.containers.auth",
    "pipe.containers.registry",
    "pipe.containers.engine",
    "pipe.containers.buildkit",
    "pipe.npm.registry",
    "pipe.maven.repository",
}
# Where a session may be made: the HTTP layer and the clients' own factories.
MAKES_SESSIONS = SPEAKS_HTTP
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PIPE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parsed_modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PIPE.rglob("*.py"))}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of a module but those under `if TYPE_CHECKING:` (imports for annotations only,
    never executed)."""
    nodes: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def imported_names(tree: ast.Module) -> set[str]:
    """Every module (and module.attribute) a module imports at run time, at any depth of its code."""
    names: set[str] = set()
    for node in runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = parsed_modules()
    return {
        name: {target for target in imported_names(tree) if target in modules and target != name}
        for name, tree in modules.items()
    }


def a_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module → modules it imports), or [] when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return list(error.args[1])
    return []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert sorted(set(a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}))) == ["a", "b", "c"]


def test_no_import_cycle_in_pipe() -> None:
    assert a_cycle(import_graph()) == []


def test_requests_is_imported_only_where_http_is_spoken() -> None:
    importers = {
        name
        for name, tree in parsed_modules().items()
        if any(n == "requests" or n.startswith("requests.") for n in imported_names(tree))
    }
    assert importers <= SPEAKS_HTTP, sorted(importers - SPEAKS_HTTP)


def calls_to(tree: ast.Module, function: str) -> int:
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) == function or getattr(node.func, "attr", None) == function)
    )


def test_sessions_are_made_only_by_the_clients() -> None:
    makers = {name for name, tree in parsed_modules().items() if calls_to(tree, "new_session")}
    assert makers <= MAKES_SESSIONS, sorted(makers - MAKES_SESSIONS)


def test_credentials_are_read_only_by_the_clients_and_the_entry() -> None:
    readers = {
        name
        for name, tree in parsed_modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "credentials"
        and isinstance(node.value, ast.Name)
        and node.value.id == "config"
    }
    assert readers <= MAKES_SESSIONS | {"pipe.cli"}, sorted(readers - MAKES_SESSIONS - {"pipe.cli"})


@pytest.mark.parametrize("name", sorted(parsed_modules()))
def test_no_function_is_too_long_to_read_at_once(name: str) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(parsed_modules()[name])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []

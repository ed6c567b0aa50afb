"""Fixtures and the counts report of the fault-injection suite.

The suite publishes through `FaultProxy` to the real registries of sandbox/ (the `sandbox`
fixture of tests/integration), classifies every run, and reports the totals at the end of the
pytest run (and in `<sandbox state>/faults-report.json`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import pipe.http
from tests.integration.conftest import docker_engine, load_sandbox_env, sandbox, unique  # noqa: F401 - fixtures

# The pipe's real retry policy, with its backoff shortened so that hundreds of faulted publishes
# fit in a few minutes. Retry-After from the proxy (1 s) is still honoured as it is.
BENCH_POLICY = pipe.http.RetryPolicy(attempts=5, total_seconds=30.0, backoff=0.02, backoff_max=0.2)

TALLY: dict[str, Counter] = {}


def record(kind: str, **counts: int) -> None:
    TALLY.setdefault(kind, Counter()).update(counts)


@pytest.fixture(autouse=True)
def bench_policy(monkeypatch):
    monkeypatch.setattr(pipe.http, "DEFAULT_POLICY", BENCH_POLICY)


COLUMNS = ("runs", "faulted_runs", "faults", "successes", "clean_failures", "broken_states", "reruns_completed")


def report_lines() -> list[str]:
    total = Counter()
    lines = ["kind     " + " ".join(f"{name:>16}" for name in COLUMNS)]
    for kind, counts in sorted(TALLY.items()):
        total.update(counts)
        lines.append(f"{kind:<8} " + " ".join(f"{counts.get(name, 0):>16}" for name in COLUMNS))
    lines.append(f"{'total':<8} " + " ".join(f"{total.get(name, 0):>16}" for name in COLUMNS))
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TALLY:
        return
    terminalreporter.section("fault injection report")
    for line in report_lines():
        terminalreporter.write_line(line)
    state = Path(load_sandbox_env()["SANDBOX_STATE"])
    if state.is_dir():
        (state / "faults-report.json").write_text(
            json.dumps({kind: dict(counts) for kind, counts in TALLY.items()}, indent=2) + "\n", encoding="utf-8"
        )

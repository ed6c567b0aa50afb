"""Fixtures and the counts report of the fault-injection suite.

The suite publishes through `FaultProxy` to the real registries of sandbox/ (the `sandbox`
fixture of tests/integration), classifies every run, and reports the totals at the end of the
pytest run (tests/faults/tally.py, printed by tests/conftest.py, also with xdist workers).
"""

from __future__ import annotations

import pytest

# The shared helpers assert too: their failures should show the values, as a test's do.
pytest.register_assert_rewrite("tests.faults.cleanup_driver", "tests.faults.publishing")

import pipe.http  # noqa: E402 - after the rewrite is registered
from tests.faults.tally import TALLY  # noqa: E402
from tests.integration.conftest import docker_engine, sandbox, unique  # noqa: E402, F401 - fixtures

# The pipe's real retry policy, with its backoff shortened so that hundreds of faulted publishes
# fit in a few minutes. Retry-After from the proxy (1 s) is still honoured as it is.
BENCH_POLICY = pipe.http.RetryPolicy(attempts=5, total_seconds=30.0, backoff=0.02, backoff_max=0.2)


@pytest.fixture(autouse=True)
def bench_policy(monkeypatch):
    monkeypatch.setattr(pipe.http, "DEFAULT_POLICY", BENCH_POLICY)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its counts to the controller, which prints the report of the run."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fault_tally"] = {kind: dict(counts) for kind, counts in TALLY.items()}

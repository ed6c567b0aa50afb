"""The driver of the cleanup fault tests (images, npm, Maven): a clean run counts the requests a
cleanup makes; then a fresh repository per schedule (cut at every single request, twice: the
registry never saw it / did it but the answer was lost; then random faults), each run classified
and judged, and a re-run without faults must end where an uninterrupted cleanup ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import run_in_process
from tests.faults.proxy import CutOff, FaultProxy, FaultSchedule
from tests.faults.publishing import RATES, Outcome, tally
from tests.faults.tally import record

CUT_KINDS = ("503", "reset-response")
# Cleanups through random faults too (as publishes are): retries absorb most, some fail cleanly.
RANDOM_RUNS = 12


@dataclass
class Case:
    """One fresh repository to clean up, and how to judge it."""

    env: dict[str, str]
    cwd: Path
    inconsistencies: Callable[[], list[str]]
    # What differs from the end of an uninterrupted cleanup (nothing, once a re-run finished).
    unfinished: Callable[[], list[str]]
    # Unlisted leftovers that no client can reach (see the npm case).
    leftovers: Callable[[], int] = lambda: 0


def run_with(proxy: FaultProxy, schedule: FaultSchedule | CutOff | None, case: Case) -> Outcome:
    before = proxy.faults
    proxy.schedule = schedule or FaultSchedule(seed=0)
    run = run_in_process(case.env, case.cwd)
    proxy.schedule = FaultSchedule(seed=0)
    return Outcome(run, proxy.faults - before)


def schedules(total_requests: int) -> list[FaultSchedule | CutOff]:
    cuts = [CutOff(at, kind) for at in range(1, total_requests + 1) for kind in CUT_KINDS]
    return cuts + [FaultSchedule(seed=run, rate=RATES[run % len(RATES)]) for run in range(RANDOM_RUNS)]


def drive(proxy: FaultProxy, new_case: Callable[[], Case], kind: str) -> int:
    """A clean run counts the requests; then a fresh case per schedule: the faulted run is
    classified and judged, and a re-run without faults must finish it. Returns the runs made."""
    first = new_case()
    start = proxy.requests
    clean = run_with(proxy, None, first)
    assert clean.succeeded, clean.run.output
    assert first.unfinished() == []
    outcomes, broken, leftovers = [], [], 0
    for schedule in schedules(proxy.requests - start):
        case = new_case()
        outcome = run_with(proxy, schedule, case)
        outcomes.append(outcome)
        assert outcome.succeeded or outcome.clean_failure, outcome.run.output
        broken += [f"{schedule}: {problem}" for problem in case.inconsistencies()]
        rerun = run_with(proxy, None, case)
        assert rerun.succeeded, rerun.run.output
        assert case.unfinished() == [], schedule
        left = case.leftovers()
        assert left <= 1, (schedule, left)
        leftovers += left
    tally(kind, outcomes, broken, len(outcomes))
    record(kind, unreachable_leftovers=leftovers)
    assert broken == []
    return len(outcomes)

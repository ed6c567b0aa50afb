"""The fault suite's counts: recorded by the tests, added up over xdist workers, reported at the end
of the run (on the terminal and in `<sandbox state>/faults-report.json`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.sandbox_env import load_sandbox_env

TALLY: dict[str, Counter] = {}
COLUMNS = ("runs", "faulted_runs", "faults", "successes", "clean_failures", "broken_states", "reruns_completed")


def record(kind: str, **counts: int) -> None:
    TALLY.setdefault(kind, Counter()).update(counts)


def report_lines() -> list[str]:
    total = Counter()
    lines = ["kind     " + " ".join(f"{name:>16}" for name in COLUMNS)]
    for kind, counts in sorted(TALLY.items()):
        total.update(counts)
        lines.append(f"{kind:<8} " + " ".join(f"{counts.get(name, 0):>16}" for name in COLUMNS))
    lines.append(f"{'total':<8} " + " ".join(f"{total.get(name, 0):>16}" for name in COLUMNS))
    return lines


def write_report(terminalreporter) -> None:
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

"""The fault suite's counts: recorded by the tests, added up over xdist workers, reported at the end
of the run (on the terminal and in `<sandbox state>/faults-report.json`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.sandbox_env import load_sandbox_env

TALLY: dict[str, Counter] = {}
COLUMNS = ("runs", "faulted_runs", "faults", "successes", "clean_failures", "broken_states", "reruns_completed")
# Every kind the suite records, each in a test file of its own (so xdist workers run them at the
# same time). When all are in a run's counts, the whole suite ran and its totals must clear the bar.
PUBLISH_KINDS = ("npm", "maven", "docker", "mvn-staged", "pnpm-ws")
CLEANUP_KINDS = ("oci-clean", "npm-clean", "mvn-clean")
MIN_FAULTED_PUBLISHES = 200


def record(kind: str, **counts: int) -> None:
    TALLY.setdefault(kind, Counter()).update(counts)


def suite_verdict(tally: dict[str, Counter]) -> str | None:
    """The run's fault counts judged as a whole: a ✖ line saying why the run must fail, or None.
    A broken state fails any run; the count of faulted publishes is only meaningful when every
    kind ran (a run of one file of the suite has fewer by design)."""
    broken = {kind: counts.get("broken_states", 0) for kind, counts in tally.items() if counts.get("broken_states")}
    if broken:
        listed = ", ".join(f"{kind} {count}" for kind, count in sorted(broken.items()))
        return f"✖ fault suite: {sum(broken.values())} broken state(s) left in the registries ({listed})."
    if not set(PUBLISH_KINDS + CLEANUP_KINDS) <= set(tally):
        return None
    faulted = sum(tally[kind].get("faulted_runs", 0) for kind in PUBLISH_KINDS)
    if faulted < MIN_FAULTED_PUBLISHES:
        return (
            f"✖ fault suite: only {faulted} publishes met a fault, fewer than the {MIN_FAULTED_PUBLISHES} "
            "the suite must cover: its runs or rates shrank."
        )
    return None


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

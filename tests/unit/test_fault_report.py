"""The fault suite's end-of-run verdict (tests/faults/tally.py), judged on made-up counts: the run
fails on any broken state, and on too few faulted publishes once every kind ran."""

from __future__ import annotations

from collections import Counter

from tests.faults.tally import CLEANUP_KINDS, MIN_FAULTED_PUBLISHES, PUBLISH_KINDS, suite_verdict


def whole_suite(faulted_per_publish_kind: int, broken: int = 0) -> dict[str, Counter]:
    tally = {kind: Counter(runs=200, faulted_runs=faulted_per_publish_kind) for kind in PUBLISH_KINDS}
    tally |= {kind: Counter(runs=50, faulted_runs=50) for kind in CLEANUP_KINDS}
    tally["maven"]["broken_states"] = broken
    return tally


def test_a_whole_suite_with_enough_faulted_publishes_and_nothing_broken_passes():
    per_kind = -(-MIN_FAULTED_PUBLISHES // len(PUBLISH_KINDS))  # rounded up: the bar exactly met or passed
    assert suite_verdict(whole_suite(per_kind)) is None


def test_a_whole_suite_with_too_few_faulted_publishes_fails_saying_how_many():
    per_kind = (MIN_FAULTED_PUBLISHES - 1) // len(PUBLISH_KINDS)
    verdict = suite_verdict(whole_suite(per_kind))
    assert verdict is not None and verdict.startswith("✖ ")
    assert f"only {per_kind * len(PUBLISH_KINDS)} publishes met a fault" in verdict


def test_faulted_cleanups_do_not_count_as_faulted_publishes():
    tally = whole_suite(0)
    for kind in CLEANUP_KINDS:
        tally[kind]["faulted_runs"] = MIN_FAULTED_PUBLISHES
    assert suite_verdict(tally) is not None


def test_any_broken_state_fails_the_run_naming_its_kind():
    verdict = suite_verdict(whole_suite(100, broken=1))
    assert verdict == "✖ fault suite: 1 broken state(s) left in the registries (maven 1)."


def test_a_partial_run_is_not_held_to_the_whole_suites_count_but_to_its_states():
    partial = {"npm": Counter(runs=140, faulted_runs=3)}
    assert suite_verdict(partial) is None
    partial["npm"]["broken_states"] = 2
    assert suite_verdict(partial) == "✖ fault suite: 2 broken state(s) left in the registries (npm 2)."
    assert suite_verdict({}) is None

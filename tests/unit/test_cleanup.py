"""ACTION=cleanup, the kind-neutral part: the rules as variables, which names a rule deletes and
which are kept (and why), the plan lines and the outputs."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipe.cleanup import Candidate, Decision, cleanup_publication, decide, print_plan
from pipe.config import CleanupRules, load_config
from pipe.errors import ConfigError
from pipe.versioning import SemVer
from tests.conftest import base_env, run_in_process

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def release(name: str, days_old: float | None = 30) -> Candidate:
    published = None if days_old is None else NOW - timedelta(days=days_old)
    return Candidate(name, published, SemVer.parse(name))


def other(name: str, days_old: float | None = 30) -> Candidate:
    published = None if days_old is None else NOW - timedelta(days=days_old)
    return Candidate(name, published, None)


def plan(candidates, protected=None, **rules) -> dict[str, Decision]:
    return {d.name: d for d in decide(candidates, CleanupRules(**rules), protected or {}, NOW)}


def deleted(decisions: dict[str, Decision]) -> list[str]:
    return [name for name, d in decisions.items() if d.delete]


# --- the variables ----------------------------------------------------------------------


def config_for(workdir: Path, **overrides: str | None):
    return load_config(base_env(PACKAGE_TYPE="npm", **overrides), workdir)


def test_publish_is_the_default_action_and_rules_are_unset(workdir: Path) -> None:
    config = config_for(workdir)
    assert config.action == "publish"
    assert config.cleanup == CleanupRules()
    assert not config.cleanup.any


def test_cleanup_rules_are_read(workdir: Path) -> None:
    config = config_for(
        workdir, ACTION="Cleanup", KEEP_RELEASES="10", OLDER_THAN_DAYS="14", DELETE_MATCHING="sha-*, feature-*"
    )
    assert config.action == "cleanup"
    assert config.cleanup == CleanupRules(keep_releases=10, delete_matching=("sha-*", "feature-*"), older_than_days=14)


def test_delete_matching_as_a_pipelines_list(workdir: Path) -> None:
    env = {
        "ACTION": "cleanup",
        "DELETE_MATCHING_COUNT": "2",
        "DELETE_MATCHING_0": "sha-*",
        "DELETE_MATCHING_1": "*-rc.*",
    }
    assert config_for(workdir, **env).cleanup.delete_matching == ("sha-*", "*-rc.*")


def test_cleanup_without_a_rule_names_the_variables(workdir: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        config_for(workdir, ACTION="cleanup")
    assert raised.value.message == (
        "ACTION is cleanup but no rule says what to delete: set KEEP_RELEASES (e.g. '10'), "
        "DELETE_MATCHING (e.g. ['sha-*']) or OLDER_THAN_DAYS (e.g. '14')."
    )


@pytest.mark.parametrize("name, value", [("KEEP_RELEASES", "ten"), ("OLDER_THAN_DAYS", "-1"), ("KEEP_RELEASES", "1.5")])
def test_bad_numbers_are_config_errors(workdir: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_for(workdir, ACTION="cleanup", **{name: value})
    assert (
        raised.value.message == f"{name} must be a whole number of 0 or more, got '{value}': set it like {name}: '10'."
    )


@pytest.mark.parametrize("value", ["740000", "99999999999999999999"])
def test_huge_day_counts_end_in_one_line_in_every_mode(workdir: Path, value: str) -> None:
    for dry_run in ("false", "true"):
        run = run_in_process(
            base_env(PACKAGE_TYPE="npm", ACTION="cleanup", OLDER_THAN_DAYS=value, DRY_RUN=dry_run), workdir
        )
        assert run.code == 1
        assert len(run.lines) == 1 and run.last_line.startswith("✖ OLDER_THAN_DAYS ")
        assert "Traceback" not in run.output


def test_unknown_action_is_refused_with_one_line(workdir: Path) -> None:
    run = run_in_process(base_env(PACKAGE_TYPE="npm", ACTION="prune"), workdir)
    assert run.code == 1
    assert run.lines == ["✖ ACTION 'prune' is not supported: use publish or cleanup."]


# --- decide -----------------------------------------------------------------------------


def test_keep_releases_deletes_older_releases_only() -> None:
    names = ["1.0.0", "1.1.0", "1.10.0", "1.2.0", "2.0.0"]
    decisions = plan([release(n) for n in names] + [other("sha-abc")], keep_releases=3)
    assert deleted(decisions) == ["1.0.0", "1.1.0"]
    assert decisions["1.0.0"].reason == "older than the 3 newest releases"
    assert decisions["1.2.0"].reason == "kept: one of the 3 newest releases"
    assert decisions["2.0.0"].reason == "protected: newest release"
    assert decisions["sha-abc"].reason == "kept: matches no rule"


def test_keep_zero_still_keeps_the_newest_release() -> None:
    decisions = plan([release("1.0.0"), release("2.0.0")], keep_releases=0)
    assert deleted(decisions) == ["1.0.0"]
    assert decisions["2.0.0"].reason == "protected: newest release"


def test_patterns_match_whole_names_case_sensitively() -> None:
    names = ["sha-1", "feature-x", "my-sha-1", "SHA-2", "1.0.0-rc.1"]
    decisions = plan([other(n) for n in names], delete_matching=("sha-*", "feature-*", "*-rc.*"))
    assert deleted(decisions) == ["sha-1", "feature-x", "1.0.0-rc.1"]
    assert decisions["feature-x"].reason == "matches feature-*"


def test_patterns_never_delete_the_newest_release() -> None:
    decisions = plan([release("1.0.0"), release("2.0.0")], delete_matching=("*",))
    assert deleted(decisions) == ["1.0.0"]


def test_protected_names_are_kept_with_their_reason() -> None:
    decisions = plan(
        [other("sha-1"), other("sha-2")], {"sha-2": "protected: dist-tag beta"}, delete_matching=("sha-*",)
    )
    assert deleted(decisions) == ["sha-1"]
    assert decisions["sha-2"] == Decision("sha-2", False, "protected: dist-tag beta")


def test_older_than_days_restricts_the_other_rules() -> None:
    candidates = [other("sha-old", 20), other("sha-new", 3), other("sha-unknown", None), release("9.0.0", 1)]
    decisions = plan(candidates, delete_matching=("sha-*",), older_than_days=14)
    assert deleted(decisions) == ["sha-old"]
    assert decisions["sha-new"].reason == "kept: published 3 days ago, not more than 14"
    assert decisions["sha-unknown"].reason == "kept: publish time unknown (OLDER_THAN_DAYS needs it)"


def test_older_than_days_alone_makes_every_old_version_a_candidate() -> None:
    candidates = [release("1.0.0", 40), release("1.1.0", 2), other("main", 40), release("2.0.0", 40)]
    decisions = plan(candidates, older_than_days=30)
    assert deleted(decisions) == ["1.0.0", "main"]
    assert decisions["main"].reason == "published more than 30 days ago"
    assert decisions["1.1.0"].reason == "kept: published 2 days ago, not more than 30"


def test_older_than_zero_days_is_anything_published_before_now() -> None:
    decisions = plan([other("a", 0.001), other("b", -1)], older_than_days=0)
    assert deleted(decisions) == ["a"]


def test_prereleases_are_not_releases_for_keep_n() -> None:
    candidates = [release("1.0.0"), release("2.0.0-rc.1"), release("0.9.0")]
    candidates[1] = Candidate("2.0.0-rc.1", candidates[1].published, None)
    decisions = plan(candidates, keep_releases=1)
    assert deleted(decisions) == ["0.9.0"]
    assert decisions["1.0.0"].reason == "protected: newest release"


# --- plan and outputs ---------------------------------------------------------------------


def captured_plan(decisions: list[Decision], dry_run: bool) -> list[str]:
    stream = io.StringIO()
    log = logging.getLogger("test.cleanup.plan")
    log.handlers[:] = [logging.StreamHandler(stream)]
    log.setLevel(logging.INFO)
    log.propagate = False
    print_plan(log, "image", decisions, dry_run, package="acme/widget")
    return stream.getvalue().splitlines()


def test_the_plan_lists_every_name_with_its_reason() -> None:
    decisions = [Decision("sha-1", True, "matches sha-*"), Decision("1.0.0", False, "protected: newest release")]
    assert captured_plan(decisions, dry_run=True) == [
        "Cleanup plan for image acme/widget (dry run: nothing is deleted): 1 to delete, 1 to keep",
        "  delete sha-1  matches sha-*",
        "  keep   1.0.0  protected: newest release",
    ]


def test_outputs_name_the_deleted_versions_in_order() -> None:
    decisions = [Decision("a", True, "matches *"), Decision("b", True, "matches *"), Decision("c", False, "kept")]
    publication = cleanup_publication("npm package", "@acme/x", ["b", "a"], decisions, dry_run=False)
    assert publication.variables == {"DELETED_COUNT": "2", "DELETED_VERSIONS": "b a"}
    assert publication.summary == "Deleted 2 in npm package @acme/x: b a; 1 kept."
    assert publication.details["deleted"] == ["b", "a"]
    assert publication.details["kept"] == [{"name": "c", "reason": "kept"}]
    assert publication.details["dry_run"] is False


def test_a_dry_run_outputs_nothing_deleted_and_what_would_be() -> None:
    decisions = [Decision("a", True, "matches *"), Decision("c", False, "kept")]
    publication = cleanup_publication("image", "acme/w", [], decisions, dry_run=True)
    assert publication.variables == {"DELETED_COUNT": "0", "DELETED_VERSIONS": ""}
    assert publication.details["would_delete"] == ["a"]
    assert publication.summary == "Dry run: would delete 1 in image acme/w (a); 1 kept; nothing was deleted."


def test_nothing_to_delete_says_so() -> None:
    publication = cleanup_publication("image", "acme/w", [], [Decision("c", False, "kept")], dry_run=False)
    assert publication.summary == "Nothing to delete in image acme/w; 1 kept."


def test_cleanup_dispatches_to_the_kind_and_records_the_action(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys
    import types

    import pipe.cli

    calls = []

    def cleanup(config, log, masker):
        calls.append(config.cleanup)
        return cleanup_publication("npm package", "x", ["1.0.0"], [Decision("1.0.0", True, "matches 1.*")], False)

    monkeypatch.setitem(sys.modules, "kind_cleanup_for_test", types.SimpleNamespace(cleanup=cleanup))
    monkeypatch.setitem(pipe.cli.CLEANERS, "npm", "kind_cleanup_for_test")
    outputs, storage = tmp_path / "outputs", tmp_path / "storage"
    env = base_env(
        PACKAGE_TYPE="npm",
        ACTION="cleanup",
        DELETE_MATCHING="1.*",
        BITBUCKET_PIPELINES_VARIABLES_PATH=str(outputs),
        BITBUCKET_PIPE_STORAGE_DIR=str(storage),
    )
    run = run_in_process(env, workdir)
    assert run.code == 0, run.output
    assert calls == [CleanupRules(delete_matching=("1.*",))]
    assert run.last_line == "✔ Deleted 1 in npm package x: 1.0.0; 0 kept."
    assert outputs.read_text() == "DELETED_COUNT=1\nDELETED_VERSIONS=1.0.0\n"
    summary = json.loads((storage / "bitbucket-packages-publish.json").read_text())
    assert summary["action"] == "cleanup"
    assert summary["details"]["deleted"] == ["1.0.0"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123Z", datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        ("", None),
    ],
)
def test_registry_times_are_read_as_utc(text, expected) -> None:
    from pipe.cleanup import parse_time

    assert parse_time(text) == expected


def test_an_interrupted_cleanup_says_a_re_run_finishes_it(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    import pipe.cli

    def cleanup(config, log, masker):
        raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "interrupted_cleanup_for_test", types.SimpleNamespace(cleanup=cleanup))
    monkeypatch.setitem(pipe.cli.CLEANERS, "npm", "interrupted_cleanup_for_test")
    run = run_in_process(base_env(PACKAGE_TYPE="npm", ACTION="cleanup", KEEP_RELEASES="3"), workdir)
    assert run.code == 1
    assert run.lines == ["✖ interrupted before the cleanup finished: re-run the step; it deletes what is left."]

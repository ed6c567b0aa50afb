"""npm cleanups through the fault proxy against the real registries, interrupted at every single
request and run through random faults: each run either finishes or fails with one ✖ line, the
registry is consistent whatever happened, and a re-run without faults ends where an uninterrupted
cleanup ends.

Consistent means: every listed version's tarball is there and matches its integrity, every
dist-tag names a listed version, and every kept version is still listed. Each cut is tried twice:
the registry never saw the request (503 from there on), and the registry did it but the answer
was lost (reset)."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import run_in_process
from tests.faults.cleanup_driver import RANDOM_RUNS, Case, drive
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import npm_broken_state, npm_env, npm_package

NPM_VERSIONS = ("1.0.0", "1.1.0", "2.0.0", "2.1.0-beta.1")
NPM_KEPT = {"2.0.0", "2.1.0-beta.1"}


def npm_populate(sandbox, name: str, folder: Path) -> dict[str, str]:
    env = npm_env(sandbox, sandbox.npm_registry)
    for version in NPM_VERSIONS:
        npm_package(folder, name, version)
        published = run_in_process(env, folder)
        assert published.code == 0, published.output
    return env


def npm_versions(sandbox, name: str) -> set[str]:
    answer = requests.get(sandbox.npm_registry + name, auth=sandbox.reader, timeout=30)
    assert answer.status_code == 200, answer.text
    return set(answer.json()["versions"])


def tarball_left(sandbox, name: str, version: str) -> bool:
    return requests.get(f"{sandbox.npm_registry}{name}/-/{name}-{version}.tgz", auth=sandbox.reader, timeout=30).ok


def test_npm_cleanups_cut_at_every_request_and_through_random_faults(sandbox, unique, tmp_path: Path):
    def new_case() -> Case:
        name = unique("cut-npm")
        folder = tmp_path / name
        env = npm_populate(sandbox, name, folder) | {
            "REGISTRY_URL": proxy.url,
            "ACTION": "cleanup",
            "KEEP_RELEASES": "1",
        }

        def inconsistencies() -> list[str]:
            return npm_broken_state(sandbox, name) + [
                f"kept {v} is gone" for v in NPM_KEPT - npm_versions(sandbox, name)
            ]

        def unfinished() -> list[str]:
            versions = npm_versions(sandbox, name)
            return [] if versions == NPM_KEPT else [f"ended with {sorted(versions)}"]

        def leftovers() -> int:
            # Only the version whose unpublish was cut between its packument write and its tarball
            # delete can leave its tarball behind: unlisted, so no client resolves it, and the
            # registry offers no way to find it again (the same window as `npm unpublish`).
            return sum(tarball_left(sandbox, name, v) for v in set(NPM_VERSIONS) - NPM_KEPT)

        return Case(env, folder, inconsistencies, unfinished, leftovers)

    with FaultProxy(sandbox.npm_registry) as proxy:
        assert drive(proxy, new_case, "npm-clean") >= 18 + RANDOM_RUNS

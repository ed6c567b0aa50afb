"""Cleanups through the fault proxy against the real registries, interrupted at every single
request and run through random faults: each run either finishes or fails with one ✖ line, the
registry is consistent whatever happened, and a re-run without faults ends where an uninterrupted
cleanup ends.

Consistent means, for images: every listed tag resolves to a manifest, and every kept tag is
whole (its manifest, an index's images, their config and layer blobs); for npm: every listed
version's tarball is there and matches its integrity, every dist-tag names a listed version,
and every kept version is still listed. Each cut is tried twice: the registry never saw the
request (503 from there on), and the registry did it but the answer was lost (reset)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import base_env, run_in_process
from tests.faults.conftest import record
from tests.faults.proxy import CutOff, FaultProxy, FaultSchedule
from tests.faults.test_faults import MANIFEST_ACCEPT, RATES, Outcome, npm_broken_state, npm_package, tally
from tests.oci.images import ApiPusher

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


# --- images ------------------------------------------------------------------------------------

OCI_RULES = {"ACTION": "cleanup", "KEEP_RELEASES": "1", "DELETE_MATCHING": "sha-*"}
OCI_KEPT = ["2.0.0", "latest", "nightly"]


def oci_populate(pusher: ApiPusher) -> dict[str, str]:
    pusher.image("1.0.0", "2020-01-01T00:00:00Z", marker="1.0.0")
    newest = pusher.image("2.0.0", "2022-01-01T00:00:00Z", marker="2.0.0")
    pusher.tag("latest", newest["digest"])
    pusher.image("sha-a", "2020-01-01T00:00:00Z", marker="sha-a")
    pusher.image("sha-b", "2020-01-02T00:00:00Z", marker="sha-b")
    only_old = pusher.image(None, "2019-01-01T00:00:00Z", marker="only-old", arch="arm64")
    shared = pusher.image(None, "2019-01-01T00:00:00Z", marker="shared")
    pusher.index("sha-idx", [shared, only_old], {"org.opencontainers.image.created": "2019-05-01T00:00:00Z"})
    pusher.index("nightly", [shared])
    return {"only_old": only_old["digest"], "shared": shared["digest"]}


def oci_whole(pusher: ApiPusher, reference: str) -> list[str]:
    """The manifest at `reference`, an index's images, and their blobs all exist."""
    answer = pusher.session.get(pusher.url(f"manifests/{reference}"), headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
    if answer.status_code != 200:
        return [f"{reference} does not resolve ({answer.status_code})"]
    document = answer.json()
    problems = []
    for child in document.get("manifests") or []:
        problems += oci_whole(pusher, child["digest"])
    for blob in [document["config"], *document["layers"]] if "config" in document else []:
        head = pusher.session.head(pusher.url(f"blobs/{blob['digest']}"), timeout=30)
        if head.status_code != 200:
            problems.append(f"{reference} names blob {blob['digest']}, which is missing")
    return problems


def oci_inconsistencies(pusher: ApiPusher) -> list[str]:
    tags = pusher.tags()
    problems = [f"listed tag {tag} does not resolve" for tag in tags if pusher.status(tag) != 200]
    problems += [f"kept tag {tag} is gone" for tag in OCI_KEPT if tag not in tags]
    for tag in OCI_KEPT:
        problems += oci_whole(pusher, tag)
    return problems


def test_image_cleanups_cut_at_every_request_and_through_random_faults(sandbox, unique, tmp_path: Path):
    session = requests.Session()
    session.auth = sandbox.writer

    def new_case() -> Case:
        image = unique("cut-img")
        pusher = ApiPusher(sandbox.oci_url, f"acme/{image}", session)
        children = oci_populate(pusher)
        env = base_env(
            PACKAGE_TYPE="docker",
            REGISTRY_URL=proxy.netloc,
            BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user,
            BITBUCKET_PACKAGES_TOKEN=sandbox.writer_token,
            BITBUCKET_REPO_SLUG=image,
            **OCI_RULES,
        )

        def unfinished() -> list[str]:
            # Where an uninterrupted cleanup ends, with nothing untagged left behind.
            state = (pusher.tags(), pusher.status(children["only_old"]), pusher.status(children["shared"]))
            return [] if state == (sorted(OCI_KEPT), 404, 200) else [f"ended at {state}"]

        return Case(env, tmp_path, lambda: oci_inconsistencies(pusher), unfinished)

    with FaultProxy(sandbox.oci_registry) as proxy:
        assert drive(proxy, new_case, "oci-clean") >= 40 + RANDOM_RUNS


# --- npm ---------------------------------------------------------------------------------------

NPM_VERSIONS = ("1.0.0", "1.1.0", "2.0.0", "2.1.0-beta.1")
NPM_KEPT = {"2.0.0", "2.1.0-beta.1"}


def npm_populate(sandbox, name: str, folder: Path) -> dict[str, str]:
    env = base_env(
        PACKAGE_TYPE="npm",
        REGISTRY_URL=sandbox.npm_registry,
        BITBUCKET_PACKAGES_USERNAME=sandbox.writer_user,
        BITBUCKET_PACKAGES_TOKEN=sandbox.writer_token,
    )
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

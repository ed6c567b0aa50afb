"""Image cleanups through the fault proxy against the real registries, interrupted at every single
request and run through random faults: each run either finishes or fails with one ✖ line, the
registry is consistent whatever happened, and a re-run without faults ends where an uninterrupted
cleanup ends.

Consistent means: every listed tag resolves to a manifest, and every kept tag is whole (its
manifest, an index's images, their config and layer blobs). Each cut is tried twice: the registry
never saw the request (503 from there on), and the registry did it but the answer was lost
(reset)."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import base_env
from tests.faults.cleanup_driver import RANDOM_RUNS, Case, drive
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import MANIFEST_ACCEPT
from tests.oci.images import ApiPusher

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
        # A clean cleanup of this image makes 38 to 40 requests (the first reads go out together,
        # without a 401 first, and one of them may be dropped), each a place to cut it.
        assert drive(proxy, new_case, "oci-clean") >= 36 + RANDOM_RUNS

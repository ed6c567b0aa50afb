"""ACTION=cleanup for images against real registries: the sandbox's CNCF registry (delete enabled,
htpasswd) and real `docker-registry`s in token mode (one with deletes disabled). Images are pushed
over the distribution API with chosen config `created` times; what is left is checked with the
registry's own answers and with `docker pull`, never with the pipe's word."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import requests

from tests.integration.test_oci_push import docker_cli, pipe_env, run_pipe
from tests.oci.images import ApiPusher
from tests.oci.registry import TokenRegistry
from tests.oci.token_issuer import SERVICE, TokenIssuer

RULES = {"KEEP_RELEASES": "3", "DELETE_MATCHING": "sha-* feature-*", "OLDER_THAN_DAYS": "14"}
EXPECTED_DELETED = ["1.0.0", "sha-old", "sha-idx"]


def plan_lines(output: str) -> dict[str, tuple[str, str]]:
    """name → (delete|keep, reason) from the printed plan."""
    found = re.findall(r"^  (delete|keep) +(\S+) +(.+)$", output, flags=re.MULTILINE)
    return {name: (verb, reason) for verb, name, reason in found}


def populate(pusher: ApiPusher) -> dict[str, str]:
    """Releases, floating tags, branch tags old and new, a shared digest and two indexes; the
    digests of the indexes' images by name."""
    digests = {}
    for tag, created in (
        ("1.0.0", "2020-01-01"),
        ("1.1.0", "2021-01-01"),
        ("1.2.0", "2021-06-01"),
        ("2.0.0", "2022-01-01"),
    ):
        digests[tag] = pusher.image(tag, f"{created}T00:00:00Z", marker=tag)["digest"]
    pusher.tag("latest", digests["2.0.0"])
    pusher.tag("1.1", digests["1.1.0"])
    pusher.tag("feature-x", digests["1.2.0"])  # an old branch tag on a kept release's digest
    pusher.image("sha-old", "2020-02-01T00:00:00Z", marker="sha-old")
    pusher.image("sha-recent", datetime.now(UTC).isoformat(), marker="sha-recent")
    only_old = pusher.image(None, "2019-01-01T00:00:00Z", marker="only-in-old-index", arch="arm64")
    shared = pusher.image(None, "2019-01-01T00:00:00Z", marker="in-both-indexes")
    pusher.index("sha-idx", [shared, only_old], {"org.opencontainers.image.created": "2019-05-01T00:00:00Z"})
    pusher.index("nightly", [shared])  # not matched by any rule: kept, and with it the shared image
    return {"only_old": only_old["digest"], "shared": shared["digest"]}


def resolved(pusher: ApiPusher) -> dict[str, int]:
    return {tag: pusher.status(tag) for tag in pusher.tags()}


@pytest.fixture
def image_repo(sandbox, unique):
    image = unique("clean-img")
    session = requests.Session()
    session.auth = sandbox.writer
    return image, ApiPusher(sandbox.oci_url, f"acme/{image}", session)


def test_cleanup_deletes_by_the_rules_and_keeps_what_is_protected(sandbox, image_repo, workdir, tmp_path):
    image, pusher = image_repo
    children = populate(pusher)
    env = pipe_env(sandbox.oci_registry, *sandbox.writer, image, tmp_path, ACTION="cleanup", **RULES)
    result = run_pipe(env, workdir, *sandbox.writer)
    assert result.code == 0, result.output

    plan = plan_lines(result.output)
    assert [name for name, (verb, _) in plan.items() if verb == "delete"] == EXPECTED_DELETED
    assert plan["2.0.0"] == ("keep", "protected: newest release")
    assert plan["1.1.0"] == ("keep", "protected: floating tag 1.1 points at it")
    assert plan["1.2.0"] == ("keep", "kept: one of the 3 newest releases")
    assert plan["latest"] == ("keep", "protected: floating tag")
    assert plan["feature-x"] == ("keep", "kept: digest also tagged 1.2.0 (the registry deletes digests, not tags)")
    assert plan["sha-recent"] == ("keep", "kept: published 0 days ago, not more than 14")
    assert plan["nightly"] == ("keep", "kept: matches no rule")
    # The plan is printed before the first delete.
    assert result.output.index("Cleanup plan for image") < result.output.index("Deleted 1.0.0")
    reference = f"{sandbox.oci_registry}/acme/{image}"
    assert result.last_line == f"✔ Deleted 3 in image {reference}: 1.0.0 sha-old sha-idx; 8 kept."

    # The registry: kept tags all resolve, deleted ones are gone; the index's own image went
    # with it, the image the kept index shares stayed.
    assert resolved(pusher) == dict.fromkeys(
        ["1.1", "1.1.0", "1.2.0", "2.0.0", "feature-x", "latest", "nightly", "sha-recent"], 200
    )
    assert pusher.status(children["only_old"]) == 404
    assert pusher.status(children["shared"]) == 200

    outputs = (tmp_path / "pipeline-variables").read_text()
    assert "DELETED_COUNT=3\n" in outputs
    assert "DELETED_VERSIONS=1.0.0 sha-old sha-idx\n" in outputs
    summary = json.loads((tmp_path / "pipe-storage" / "bitbucket-packages-publish.json").read_text())
    assert summary["action"] == "cleanup"
    assert summary["details"]["deleted"] == EXPECTED_DELETED
    assert {"name": "feature-x", "reason": plan["feature-x"][1]} in summary["details"]["kept"]

    # A re-run finds nothing more to delete.
    again = run_pipe(env, workdir, *sandbox.writer)
    assert again.code == 0, again.output
    assert again.last_line == f"✔ Nothing to delete in image {reference}; 8 kept."


def test_docker_pull_gets_kept_tags_and_fails_cleanly_for_deleted_ones(
    sandbox, image_repo, workdir, tmp_path, docker_engine
):
    image, pusher = image_repo
    populate(pusher)
    env = pipe_env(sandbox.oci_registry, *sandbox.writer, image, tmp_path, ACTION="cleanup", **RULES)
    assert run_pipe(env, workdir, *sandbox.writer).code == 0
    config = tmp_path / "docker-client"
    config.mkdir()
    login = docker_cli(
        sandbox.docker_host, config, "login", sandbox.oci_registry, "-u", sandbox.writer_user, "--password-stdin",
        stdin=sandbox.writer_token,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    reference = f"{sandbox.oci_registry}/acme/{image}"
    try:
        for kept in ("1.1", "1.2.0", "feature-x", "latest", "nightly"):
            pulled = docker_cli(sandbox.docker_host, config, "pull", f"{reference}:{kept}")
            assert pulled.returncode == 0, (kept, pulled.stderr)
        for gone in ("1.0.0", "sha-old", "sha-idx"):
            pulled = docker_cli(sandbox.docker_host, config, "pull", f"{reference}:{gone}")
            assert pulled.returncode != 0
            assert "not found" in pulled.stderr or "manifest unknown" in pulled.stderr, pulled.stderr
    finally:
        for image_ref in docker_engine.images.list(name=reference):
            docker_engine.images.remove(image_ref.id, force=True)


def test_dry_run_lists_the_plan_and_deletes_nothing(sandbox, image_repo, workdir, tmp_path):
    image, pusher = image_repo
    children = populate(pusher)
    before = {tag: pusher.status(tag) for tag in pusher.tags()} | {d: pusher.status(d) for d in children.values()}
    env = pipe_env(sandbox.oci_registry, *sandbox.writer, image, tmp_path, ACTION="cleanup", DRY_RUN="true", **RULES)
    result = run_pipe(env, workdir, *sandbox.writer)
    assert result.code == 0, result.output
    assert "(dry run: nothing is deleted): 3 to delete, 8 to keep" in result.output
    assert [name for name, (verb, _) in plan_lines(result.output).items() if verb == "delete"] == EXPECTED_DELETED
    assert "Deleted " not in result.output
    after = {tag: pusher.status(tag) for tag in pusher.tags()} | {d: pusher.status(d) for d in children.values()}
    assert after == before
    assert len(before) == 13
    assert "DELETED_COUNT=0\n" in (tmp_path / "pipeline-variables").read_text()
    summary = json.loads((tmp_path / "pipe-storage" / "bitbucket-packages-publish.json").read_text())
    assert summary["details"]["would_delete"] == EXPECTED_DELETED
    assert summary["details"]["deleted"] == []


def test_age_alone_deletes_everything_old_but_the_protected(sandbox, image_repo, workdir, tmp_path):
    image, pusher = image_repo
    populate(pusher)
    env = pipe_env(sandbox.oci_registry, *sandbox.writer, image, tmp_path, ACTION="cleanup", OLDER_THAN_DAYS="400")
    result = run_pipe(env, workdir, *sandbox.writer)
    assert result.code == 0, result.output
    # 1.2.0 and feature-x share a digest, both old: one delete takes both. nightly's age is its
    # newest image's. 1.1.0 stays under the floating tag 1.1, 2.0.0 as the newest release.
    outputs = (tmp_path / "pipeline-variables").read_text()
    assert "DELETED_VERSIONS=1.2.0 feature-x 1.0.0 sha-old sha-idx nightly\n" in outputs
    assert pusher.tags() == ["1.1", "1.1.0", "2.0.0", "latest", "sha-recent"]
    assert plan_lines(result.output)["sha-recent"] == ("keep", "kept: published 0 days ago, not more than 400")


def test_a_pattern_alone_deletes_every_match_whatever_its_age(sandbox, image_repo, workdir, tmp_path):
    image, pusher = image_repo
    populate(pusher)
    env = pipe_env(sandbox.oci_registry, *sandbox.writer, image, tmp_path, ACTION="cleanup", DELETE_MATCHING="sha-*")
    result = run_pipe(env, workdir, *sandbox.writer)
    assert result.code == 0, result.output
    assert pusher.tags() == ["1.0.0", "1.1", "1.1.0", "1.2.0", "2.0.0", "feature-x", "latest", "nightly"]


# --- token registries ------------------------------------------------------------------------------

WRITER = ("cleaner", "cleaner-secret-2b3c4d5e6f")
NO_DELETE_PREFIX = "acme/nodelete-"


def bearer_session(issuer: TokenIssuer, repository: str) -> requests.Session:
    session = requests.Session()
    token = issuer.token(WRITER[0], SERVICE, [f"repository:{repository}:pull,push,delete"])
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture(scope="module")
def token_registries(tmp_path_factory):
    """(deletes allowed, deletes disabled): two real registries trusting one issuer."""
    issuer = TokenIssuer(
        users=dict([WRITER]), grants={WRITER[0]: {"acme/": "pull,push,delete", NO_DELETE_PREFIX: "pull,push"}}
    )
    issuer.start()
    allowing = TokenRegistry(issuer, tmp_path_factory.mktemp("token-delete")).start()
    refusing = TokenRegistry(issuer, tmp_path_factory.mktemp("token-nodelete"), delete=False).start()
    yield allowing, refusing
    refusing.stop()
    allowing.stop()
    issuer.stop()


def token_repo(registry: TokenRegistry, image: str) -> ApiPusher:
    pusher = ApiPusher(f"http://{registry.host}", f"acme/{image}", bearer_session(registry.issuer, f"acme/{image}"))
    pusher.image("1.0.0", "2020-01-01T00:00:00Z", marker="one")
    pusher.image("2.0.0", "2021-01-01T00:00:00Z", marker="two")
    pusher.image("sha-abc", "2020-01-01T00:00:00Z", marker="sha")
    return pusher


def test_token_registry_cleanup_asks_for_delete_scope(token_registries, workdir, tmp_path, unique):
    registry, _ = token_registries
    image = unique("clean-tok")
    pusher = token_repo(registry, image)
    env = pipe_env(
        registry.host, *WRITER, image, tmp_path, ACTION="cleanup", KEEP_RELEASES="1", DELETE_MATCHING="sha-*"
    )
    result = run_pipe(env, workdir, *WRITER)
    assert result.code == 0, result.output
    assert pusher.tags() == ["2.0.0"]
    scopes = [scope for request in registry.issuer.requests for scope in request["scope"]]
    assert f"repository:acme/{image}:pull,delete" in scopes


def refused_cleanup(registry: TokenRegistry, image: str, workdir, tmp_path) -> str:
    """A cleanup of sha-* that the registry refuses, nothing deleted: its ✖ line."""
    pusher = token_repo(registry, image)
    env = pipe_env(registry.host, *WRITER, image, tmp_path, ACTION="cleanup", DELETE_MATCHING="sha-*")
    result = run_pipe(env, workdir, *WRITER)
    assert result.code == 1
    assert pusher.tags() == ["1.0.0", "2.0.0", "sha-abc"]
    return result.last_line


def test_token_without_delete_permission_says_what_deleting_needs(token_registries, workdir, tmp_path, unique):
    registry, _ = token_registries
    image = unique("nodelete")
    last_line = refused_cleanup(registry, image, workdir, tmp_path)
    digest = re.search(r"acme/nodelete-\w+@(sha256:\w+)", last_line)
    assert digest, last_line
    assert last_line == (
        f"✖ deleting acme/{image}@{digest.group(1)} failed: http://{registry.host}/v2/acme/{image}/manifests/"
        f"{digest.group(1)} answered 401 (UNAUTHORIZED: authentication required): the credentials were accepted "
        f"but may not delete in acme/{image}: deleting needs Write permission on the linked repository: use a token "
        "of a user with Write permission (an Atlassian API token needs the write:package:bitbucket scope)."
    )


def test_registry_without_api_deletes_is_one_clear_line(token_registries, workdir, tmp_path, unique):
    _, registry = token_registries
    image = unique("clean-405")
    last_line = refused_cleanup(registry, image, workdir, tmp_path)
    assert last_line.startswith(f"✖ deleting acme/{image}@sha256:")
    assert last_line.endswith(
        "answered 405 (UNSUPPORTED: The operation is unsupported.): the registry does not allow deletes through the "
        "API: delete the tags in the Bitbucket UI (the package's page in Bitbucket Packages)."
    )


def test_cleanup_of_an_image_not_in_the_registry_has_nothing_to_do(sandbox, workdir, tmp_path, unique):
    image = unique("clean-none")
    env = pipe_env(sandbox.oci_registry, *sandbox.writer, image, tmp_path, ACTION="cleanup", KEEP_RELEASES="5")
    result = run_pipe(env, workdir, *sandbox.writer)
    assert result.code == 0, result.output
    assert result.last_line == f"✔ Nothing to delete in image {sandbox.oci_registry}/acme/{image}; 0 kept."

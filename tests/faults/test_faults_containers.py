"""Image pushes through the fault proxy to the real registry: every run either succeeds with every
tag resolving to a whole image (pulled by the engine) or fails with one clear ✖ line, never leaves
a tag naming a missing blob, and a re-run without faults completes the release."""

from __future__ import annotations

from pathlib import Path

import docker.errors

from tests.conftest import run_in_process
from tests.faults.proxy import FaultProxy
from tests.faults.publishing import (
    MANY_REQUEST_RATES,
    assert_every_run_classified,
    build_local_image,
    docker_env,
    oci_broken_state,
    publish_through,
    tally,
)

DOCKER_RUNS = 12


def test_container_pushes_through_faults(sandbox, unique, tmp_path: Path, docker_engine):
    image = unique("faults")
    name = f"acme/{image}"
    outcomes, broken, failed = [], [], []
    with FaultProxy(sandbox.oci_registry) as proxy:
        for run in range(DOCKER_RUNS):
            local = f"bbpp-faults-local/{image}:{run}"
            build_local_image(docker_engine, tmp_path / f"ctx-{run}", local, f"{image} build {run}\n")
            env = docker_env(sandbox, proxy.netloc, image, f"v1.0.{run}", local)
            outcome = publish_through(
                proxy, MANY_REQUEST_RATES[run % len(MANY_REQUEST_RATES)], run, env, tmp_path, sandbox
            )
            outcomes.append(outcome)
            broken += oci_broken_state(sandbox, name)
            if not outcome.succeeded:
                failed.append(run)
        assert_every_run_classified(outcomes)
        reruns = 0
        for run in failed:
            local = f"bbpp-faults-local/{image}:{run}"
            rerun = run_in_process(docker_env(sandbox, proxy.netloc, image, f"v1.0.{run}", local), tmp_path)
            assert rerun.code == 0, rerun.output
            reruns += 1
    broken += oci_broken_state(sandbox, name)
    tally("docker", outcomes, broken, reruns)
    assert broken == []

    # The real consumer: the engine pulls every release tag straight from the registry.
    auth = {"username": sandbox.writer_user, "password": sandbox.writer_token}
    for run in range(DOCKER_RUNS):
        pulled = docker_engine.images.pull(f"{sandbox.oci_registry}/{name}", tag=f"1.0.{run}", auth_config=auth)
        assert pulled.id
    listed = docker_engine.images.list(name=f"bbpp-faults-local/{image}")
    listed += docker_engine.images.list(name=f"{sandbox.oci_registry}/{name}")
    for image_id in {item.id for item in listed}:
        try:
            docker_engine.images.remove(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass  # removed with another of its tags

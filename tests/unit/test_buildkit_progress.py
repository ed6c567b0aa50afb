"""Reading BuildKit's build stream: the progress arrives as base64 protobuf StatusResponse
messages inside the engine's JSON lines. The fixtures are streams the Docker engine (20.10)
sent for real builds (tests/fixtures/buildkit/*.jsonl), not hand-written messages."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from pipe.containers.buildkit import BuildKitUnusable, build_failure, follow
from pipe.containers.buildkit_progress import (
    TRACE_ID,
    BuildProgress,
    ProtobufError,
    decode_status,
    decode_trace,
    fields,
)
from pipe.errors import EngineError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "buildkit"
LOG = logging.getLogger("test.buildkit")
FAILING_STEP = "[stage-1 4/4] RUN echo about to fail && exit 7"


def stream(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]


def info_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]


def test_a_successful_build_gives_the_image_id_and_logs_steps_and_their_output(caplog):
    caplog.set_level(logging.DEBUG, logger="test.buildkit")
    image_id = follow(stream("success"), LOG)
    assert image_id == "sha256:0bb939e02812cde9c95bbe2eff38c4cf656a728dad00fa28fecd2da8f043e3be"
    assert info_lines(caplog) == [
        "  [1/2] FROM docker.io/library/bbpp-busybox:1",
        "  [2/2] RUN echo built > /built.txt && echo line one && echo line two",
        "    line one",
        "    line two",
    ]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(line.startswith("  [internal] load metadata for") for line in debug)
    assert any(line.startswith("  exporting to image") for line in debug)


def test_a_failing_build_names_the_failing_step_after_its_output(caplog):
    caplog.set_level(logging.INFO, logger="test.buildkit")
    with pytest.raises(EngineError) as caught:
        follow(stream("failing-build"), LOG)
    assert caught.value.message == (
        f"the image build failed at {FAILING_STEP}: executor failed running [/bin/sh -c echo about to fail && "
        "exit 7]: exit code: 7: fix the Dockerfile and re-run."
    )
    lines = info_lines(caplog)
    assert lines[-2:] == [f"  {FAILING_STEP}", "    about to fail"]
    # The unused stage (`RUN exit 3`) is never built, so never shown.
    assert not any("exit 3" in line for line in lines)
    # A line rewritten with `\r` shows its last state; stderr is output too.
    assert "    progress 100%" in lines and "    to stderr" in lines
    assert not any("progress 10%" in line and "100" not in line for line in lines)


def test_steps_from_the_cache_are_marked_cached(caplog):
    caplog.set_level(logging.INFO, logger="test.buildkit")
    with pytest.raises(EngineError):
        follow(stream("failing-build-again"), LOG)
    lines = info_lines(caplog)
    cached = [line for line in lines if line.endswith(" CACHED")]
    assert [line.split("]")[0] for line in cached] == ["  [stage-1 2/4", "  [stage-1 3/4"]
    assert f"  {FAILING_STEP}" in lines and f"  {FAILING_STEP} CACHED" not in lines


def test_each_step_is_announced_once_though_reported_several_times(caplog):
    caplog.set_level(logging.INFO, logger="test.buildkit")
    follow(stream("success"), LOG)
    traces = [decode_trace(c["aux"]) for c in stream("success") if c.get("id") == TRACE_ID]
    reports = sum(1 for status in traces for vertex in status.vertexes if vertex.name.startswith("[2/2]"))
    assert reports >= 2
    assert sum(1 for line in info_lines(caplog) if line.startswith("  [2/2]")) == 1


def test_every_trace_of_the_fixtures_decodes():
    for name in ("success", "failing-build", "failing-build-again"):
        chunks = [chunk for chunk in stream(name) if chunk.get("id") == TRACE_ID]
        assert chunks and all(decode_trace(chunk["aux"]) is not None for chunk in chunks)


def test_unknown_fields_of_every_wire_type_are_skipped():
    vertex = b"\x0a\x03abc" + b"\x1a\x04name" + b"\x20\x01" + b"\x49" + b"\x00" * 8 + b"\x55" + b"\x00" * 4
    status = decode_status(b"\x0a" + bytes([len(vertex)]) + vertex + b"\x22\x00")
    assert [(v.digest, v.name, v.cached) for v in status.vertexes] == [("abc", "name", True)]


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x08\xff", b"\x0b"])
def test_malformed_messages_are_refused_not_misread(data):
    with pytest.raises(ProtobufError):
        list(fields(data))


def test_a_trace_that_does_not_decode_is_skipped_not_fatal(caplog):
    bad = base64.b64encode(b"\x0a\x05ab").decode()
    chunks = [{"id": TRACE_ID, "aux": bad}, {"id": TRACE_ID, "aux": "not base64!"}, *stream("success")]
    assert follow(chunks, LOG).startswith("sha256:0bb939e0")


def test_output_split_across_messages_is_joined_into_lines(caplog):
    caplog.set_level(logging.INFO, logger="test.buildkit")
    progress = BuildProgress(LOG)
    chunks = [chunk for chunk in stream("success") if chunk.get("id") == TRACE_ID]
    statuses = [decode_trace(chunk["aux"]) for chunk in chunks]
    for status in statuses:
        for vertex in status.vertexes:
            progress.vertex(vertex)
    logs = [entry for status in statuses for entry in status.logs]
    whole = b"".join(entry.data for entry in logs)
    for index in range(len(whole)):  # one byte at a time
        progress.output(type(logs[0])(logs[0].vertex, whole[index : index + 1]))
    progress.finish()
    assert info_lines(caplog)[-2:] == ["    line one", "    line two"]


def test_no_bridge_network_is_a_builder_problem_with_a_remedy():
    failure = build_failure("executor failed running [/bin/sh -c true]: network bridge not found", "[2/2] RUN true")
    assert isinstance(failure, BuildKitUnusable)
    assert failure.message.endswith("set BUILD_NETWORK to host or none.")


def test_a_stream_without_image_id_is_an_error():
    with pytest.raises(EngineError):
        follow([chunk for chunk in stream("success") if chunk.get("id") != "moby.image.id"], LOG)

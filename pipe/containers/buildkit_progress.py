"""BuildKit's progress as the Docker engine streams it, turned into readable log lines.

With BuildKit the engine's build stream carries `{"id": "moby.buildkit.trace", "aux": "<base64>"}`
lines, each one a protobuf `moby.buildkit.v1.StatusResponse` (BuildKit's
api/services/control/control.proto). Only the few fields the log needs are read, with a decoder
of the protobuf wire format small enough to keep here: the steps (vertexes: name, cached, started,
completed, error) and what the steps print (logs). Other fields, and fields a newer engine may
add, are skipped by their wire type.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

TRACE_ID = "moby.buildkit.trace"

# Field numbers of control.proto.
STATUS_VERTEXES, STATUS_LOGS = 1, 3
VERTEX_DIGEST, VERTEX_NAME, VERTEX_CACHED, VERTEX_STARTED, VERTEX_COMPLETED, VERTEX_ERROR = 1, 3, 4, 5, 6, 7
LOG_VERTEX, LOG_MESSAGE = 1, 4
TIMESTAMP_SECONDS, TIMESTAMP_NANOS = 1, 2

# Protobuf wire types.
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


@dataclass(frozen=True)
class Vertex:
    """One step of the build graph as a status message reports it (a step is reported several
    times: when it is known, started, completed)."""

    digest: str
    name: str
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""


@dataclass(frozen=True)
class VertexLog:
    vertex: str
    data: bytes


@dataclass(frozen=True)
class Status:
    vertexes: tuple[Vertex, ...] = ()
    logs: tuple[VertexLog, ...] = ()


# --- the wire format -------------------------------------------------------------------------


def read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, offset


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of a message: an int for varints, bytes otherwise."""
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, offset = read_varint(data, offset)
            yield number, value
            continue
        if wire_type == LENGTH_DELIMITED:
            size, offset = read_varint(data, offset)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
        if offset + size > len(data):
            raise ProtobufError("truncated field")
        yield number, data[offset : offset + size]
        offset += size


def text(value: int | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else ""


def decode_timestamp(data: int | bytes) -> float | None:
    """A google.protobuf.Timestamp as seconds; an empty one (all defaults) is still a time."""
    if not isinstance(data, bytes):
        return None
    parts = {number: value for number, value in fields(data) if isinstance(value, int)}
    return parts.get(TIMESTAMP_SECONDS, 0) + parts.get(TIMESTAMP_NANOS, 0) / 1e9


def decode_vertex(data: bytes) -> Vertex:
    # Each field number the pipe reads: the Vertex attribute it fills and how its bytes are read.
    readers = {
        VERTEX_DIGEST: ("digest", text),
        VERTEX_NAME: ("name", text),
        VERTEX_CACHED: ("cached", bool),
        VERTEX_STARTED: ("started", decode_timestamp),
        VERTEX_COMPLETED: ("completed", decode_timestamp),
        VERTEX_ERROR: ("error", text),
    }
    values: dict[str, object] = {"digest": "", "name": ""}
    for number, value in fields(data):
        if number in readers:
            attribute, read = readers[number]
            values[attribute] = read(value)
    return Vertex(**values)  # type: ignore[arg-type]


def decode_log(data: bytes) -> VertexLog:
    vertex, message = "", b""
    for number, value in fields(data):
        if number == LOG_VERTEX:
            vertex = text(value)
        elif number == LOG_MESSAGE and isinstance(value, bytes):
            message = value
    return VertexLog(vertex, message)


def decode_status(data: bytes) -> Status:
    vertexes, logs = [], []
    for number, value in fields(data):
        if number == STATUS_VERTEXES and isinstance(value, bytes):
            vertexes.append(decode_vertex(value))
        elif number == STATUS_LOGS and isinstance(value, bytes):
            logs.append(decode_log(value))
    return Status(tuple(vertexes), tuple(logs))


def decode_trace(aux: object) -> Status | None:
    """The status in a trace line's `aux`, or None when it is not one (it only feeds the log:
    a message this decoder cannot read must not end a build that is going well)."""
    if not isinstance(aux, str):
        return None
    try:
        return decode_status(base64.b64decode(aux, validate=True))
    except (binascii.Error, ProtobufError, TypeError):
        return None


# --- the log ---------------------------------------------------------------------------------


def is_step(name: str) -> bool:
    """A Dockerfile instruction (`[stage 2/3] RUN …`); BuildKit's own bookkeeping (`[internal]
    load …`, `exporting to image`, cache imports) only shows with DEBUG."""
    return name.startswith("[") and not name.startswith("[internal]")


@dataclass
class BuildProgress:
    """The log of a BuildKit build: each step's name when it starts (`CACHED` when its result came
    from the cache), what it prints, indented, under its name (named again when parallel stages
    interleave), and the step that failed."""

    log: logging.Logger
    announced: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    speaking: str | None = None  # the step whose output was printed last
    failed: Vertex | None = None
    cached_steps: list[str] = field(default_factory=list)

    def update(self, status: Status) -> None:
        for vertex in status.vertexes:
            self.vertex(vertex)
        for entry in status.logs:
            self.output(entry)

    def level(self, digest: str) -> int:
        return logging.INFO if is_step(self.names.get(digest, "")) else logging.DEBUG

    def vertex(self, vertex: Vertex) -> None:
        if vertex.name:
            self.names[vertex.digest] = vertex.name
        first = vertex.digest not in self.announced
        if first and (vertex.cached or vertex.started is not None):
            self.announced.add(vertex.digest)
            if vertex.cached:
                self.cached_steps.append(vertex.name)
            self.log.log(self.level(vertex.digest), "  %s%s", vertex.name, " CACHED" if vertex.cached else "")
            self.speaking = vertex.digest
        if vertex.completed is not None or vertex.error:
            self.flush(vertex.digest)
        if vertex.error and self.failed is None:
            self.failed = vertex
        elif vertex.completed is not None and vertex.started is not None and not vertex.cached:
            took = max(vertex.completed - vertex.started, 0.0)
            self.log.debug("  %s: done in %.1f s", vertex.name, took)

    def output(self, entry: VertexLog) -> None:
        pending = self.partial.pop(entry.vertex, "") + entry.data.decode("utf-8", errors="replace")
        *lines, rest = pending.split("\n")
        if rest:
            self.partial[entry.vertex] = rest
        for line in lines:
            self.print_output(entry.vertex, line)

    def print_output(self, digest: str, line: str) -> None:
        # A progress bar rewrites its line with `\r`: only its last state is worth a log line.
        shown = line.rstrip("\r").rsplit("\r", 1)[-1].rstrip()
        if not shown:
            return
        level = self.level(digest)
        if self.speaking != digest:
            self.log.log(level, "  %s", self.names.get(digest, digest[:19]))
            self.speaking = digest
        self.log.log(level, "    %s", shown)

    def flush(self, digest: str) -> None:
        rest = self.partial.pop(digest, "")
        if rest:
            self.print_output(digest, rest)

    def finish(self) -> None:
        for digest in list(self.partial):
            self.flush(digest)

    @property
    def failed_step(self) -> str | None:
        return self.failed.name if self.failed is not None else None

"""The gzip level chosen for the link: level 1 where the CPU is the bottleneck (a near or fast
registry), docker's default 6 where the bytes are (a far or slow one, and whenever nothing is
known yet); the same layer at the same level always gives the same digest."""

from __future__ import annotations

import gzip
import json

import pytest

from pipe.containers.archive import Layer, open_archive
from pipe.containers.blobs import BlobSource
from pipe.containers.compress import gzip_layer, prepare_layer
from pipe.containers.link import DEFAULT_LEVEL, FAST_LEVEL, LinkMeter
from pipe.containers.oci_push import ImagePusher
from tests.unit.test_oci_push import LOG, RANDOM, TEXT, FakeRegistry, docker_save, sha, writer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def uploaded(link: LinkMeter, clock: Clock, size: int, seconds: float) -> None:
    link.started()
    link.count(size)
    clock.now += seconds
    link.finished()


@pytest.mark.parametrize(
    ("fastest_answer", "level"),
    [(None, DEFAULT_LEVEL), (0.0008, FAST_LEVEL), (0.030, DEFAULT_LEVEL)],
    ids=["nothing known", "near", "far"],
)
def test_before_any_upload_the_level_follows_the_registrys_distance(fastest_answer, level):
    assert LinkMeter(fastest_answer).level() == level


@pytest.mark.parametrize(
    ("fastest_answer", "megabytes_per_second", "level"),
    [(0.030, 200, FAST_LEVEL), (0.030, 12, DEFAULT_LEVEL), (0.030, 2.5, DEFAULT_LEVEL), (None, 100, FAST_LEVEL)],
)
def test_for_a_far_registry_the_measured_upload_rate_decides(fastest_answer, megabytes_per_second, level):
    clock = Clock()
    link = LinkMeter(fastest_answer, clock)
    uploaded(link, clock, 8 << 20, 8 / megabytes_per_second)
    assert link.rate() == pytest.approx(megabytes_per_second * (1 << 20))
    assert link.level() == level


def test_parallel_uploads_share_the_link_clock():
    """Two 4 MB uploads over the same 2 s: the link carried 4 MB/s, not 2 MB/s each."""
    clock = Clock()
    link = LinkMeter(None, clock)
    link.started()
    link.started()
    link.count(4 << 20)
    link.count(4 << 20)
    clock.now += 2
    link.finished()
    link.finished()
    assert link.rate() == pytest.approx(4 << 20)


@pytest.mark.parametrize("megabytes_per_second", [2.5, 12])
def test_a_near_registry_gets_level_1_whatever_an_upload_measured(megabytes_per_second):
    """A rate read on a loaded machine swings: two pushes of one image to a near registry (one
    whose first layers went up early, one whose did not) must get the same level, the same digests."""
    clock = Clock()
    link = LinkMeter(0.0008, clock)
    uploaded(link, clock, 8 << 20, 8 / megabytes_per_second)
    assert link.level() == FAST_LEVEL


def test_the_level_is_chosen_once_per_push():
    """A level that changed halfway would give the same image other digests from run to run."""
    clock = Clock()
    link = LinkMeter(0.0008, clock)
    assert link.level() == FAST_LEVEL
    uploaded(link, clock, 8 << 20, 4.0)  # slow, measured after the choice
    assert link.level() == FAST_LEVEL


def test_too_little_sent_is_not_a_measurement():
    clock = Clock()
    link = LinkMeter(0.030, clock)
    uploaded(link, clock, 100_000, 0.0001)
    assert link.rate() is None and link.level() == DEFAULT_LEVEL


def test_each_level_is_deterministic_and_level_6_sends_fewer_bytes(tmp_path):
    (tmp_path / "layer.tar").write_bytes(TEXT)
    source = BlobSource(tmp_path / "layer.tar", 0, len(TEXT))
    results = {
        (level, attempt): gzip_layer(source, tmp_path / f"{level}-{attempt}.gz", level=level)
        for level in (FAST_LEVEL, DEFAULT_LEVEL)
        for attempt in (1, 2)
    }
    assert results[FAST_LEVEL, 1] == results[FAST_LEVEL, 2]
    assert results[DEFAULT_LEVEL, 1] == results[DEFAULT_LEVEL, 2]
    assert results[DEFAULT_LEVEL, 1][0] != results[FAST_LEVEL, 1][0]
    assert results[DEFAULT_LEVEL, 1][1] < results[FAST_LEVEL, 1][1]
    # No more than the gzip module's own level 6, docker's default level, would send.
    assert results[DEFAULT_LEVEL, 1][1] <= len(gzip.compress(TEXT, compresslevel=6)) + 32
    for level in (FAST_LEVEL, DEFAULT_LEVEL):
        assert gzip.decompress((tmp_path / f"{level}-1.gz").read_bytes()) == TEXT


def test_a_layer_prepared_at_a_level_is_checked_and_unpacks_to_itself(tmp_path):
    (tmp_path / "layer.tar").write_bytes(TEXT)
    layer = Layer(
        BlobSource(tmp_path / "layer.tar", 0, len(TEXT)), "application/vnd.oci.image.layer.v1.tar", sha(TEXT), sha(TEXT)
    )
    blob = prepare_layer(layer, tmp_path, level=DEFAULT_LEVEL)
    assert gzip.decompress(blob.source.read_all()) == TEXT


@pytest.mark.parametrize(("fastest_answer", "level"), [(0.040, DEFAULT_LEVEL), (0.0005, FAST_LEVEL)])
def test_a_push_compresses_at_the_level_of_its_link(tmp_path, fastest_answer, level):
    fake = FakeRegistry()
    archive = docker_save(tmp_path / "image.tar", [TEXT, RANDOM])
    with open_archive(archive) as image, ImagePusher(writer(fake), LOG, tmp_path) as pusher:
        pusher.link = LinkMeter(fastest_answer)
        result = pusher.push(image)
    text_layer = json.loads(result.manifest)["layers"][0]
    (tmp_path / "text.tar").write_bytes(TEXT)
    expected, size, _ = gzip_layer(BlobSource(tmp_path / "text.tar", 0, len(TEXT)), tmp_path / "x.gz", level=level)
    assert (text_layer["digest"], text_layer["size"]) == (expected, size)

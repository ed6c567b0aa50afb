"""Archive readers (legacy `docker save`, OCI layout folder/tar) and layer compression."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import tarfile
from pathlib import Path

import pytest

from pipe.containers.archive import Layer, open_archive, read_tar_stream
from pipe.containers.blobs import BlobSource
from pipe.containers.compress import compression_pays, prepare_layer
from pipe.errors import InputError


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


TEXT = b"".join(b"text line %d\n" % i for i in range(50000))
RANDOM = os.urandom(200_000)


def layer(tmp_path: Path, data: bytes, media_type: str = "application/vnd.oci.image.layer.v1.tar") -> Layer:
    path = tmp_path / f"layer-{sha(data)[7:19]}"
    path.write_bytes(data)
    return Layer(BlobSource(path, 0, len(data)), media_type, sha(data), sha(data))


# --- compression ---------------------------------------------------------------------------------


def test_compression_is_deterministic_and_gunzips_to_the_layer(tmp_path):
    text = layer(tmp_path, TEXT)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = prepare_layer(text, tmp_path / "a")
    second = prepare_layer(text, tmp_path / "b")
    assert first.digest == second.digest
    packed = first.source.read_all()
    assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # mtime 0, no name, OS unknown
    assert gzip.decompress(packed) == TEXT
    assert first.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert first.size < len(TEXT) / 4


def test_incompressible_layers_are_pushed_as_they_are(tmp_path):
    random = layer(tmp_path, RANDOM)
    assert not compression_pays(random)
    blob = prepare_layer(random, tmp_path)
    assert (blob.digest, blob.media_type, blob.source) == (sha(RANDOM), random.media_type, random.source)


def test_compressed_layers_are_never_recompressed(tmp_path):
    packed = gzip.compress(TEXT, mtime=0)
    stored = layer(tmp_path, packed, "application/vnd.oci.image.layer.v1.tar+gzip")
    assert prepare_layer(stored, tmp_path).digest == sha(packed)
    # Even when mislabelled as uncompressed, gzip bytes are recognised and left alone.
    mislabelled = layer(tmp_path, packed)
    assert not compression_pays(mislabelled)


# --- archives ----------------------------------------------------------------------------------


def legacy_save(path: Path, symlinked: bool = False) -> tuple[Path, bytes]:
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(TEXT), sha(TEXT)]}}).encode()
    files = {"cfg.json": config, "one/layer.tar": TEXT}
    links = {"two/layer.tar": "../one/layer.tar"} if symlinked else {}
    if not symlinked:
        files["two/layer.tar"] = TEXT
    files["manifest.json"] = json.dumps([{"Config": "cfg.json", "Layers": ["one/layer.tar", "two/layer.tar"]}]).encode()
    return write_tar(path, files, links), config


@pytest.mark.parametrize("symlinked", [False, True])
def test_legacy_docker_save(tmp_path, symlinked):
    archive, config = legacy_save(tmp_path / "image.tar", symlinked)
    with open_archive(archive) as image:
        assert image.kind == "docker save" and not image.multi_platform
        (manifest,) = image.manifests
        assert manifest.config == config and manifest.config_digest == sha(config)
        assert [layer.source.read_all() for layer in manifest.layers] == [TEXT, TEXT]
        assert [layer.diff_id for layer in manifest.layers] == [sha(TEXT)] * 2


def test_gzipped_docker_save(tmp_path):
    archive, _ = legacy_save(tmp_path / "image.tar")
    packed = tmp_path / "image.tar.gz"
    packed.write_bytes(gzip.compress(archive.read_bytes()))
    with open_archive(packed) as image:
        assert image.manifests[0].layers[1].source.read_all() == TEXT


def oci_layout_files() -> tuple[dict[str, bytes], bytes]:
    compressed = gzip.compress(TEXT, mtime=0)
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(TEXT)]}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(compressed),
                    "size": len(compressed),
                }
            ],
        }  # fmt: skip
    ).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest)}
    ]}  # fmt: skip
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
    for blob in (compressed, config, manifest):
        files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
    return files, manifest


def test_oci_layout_folder_keeps_its_manifest_bytes(tmp_path):
    files, manifest = oci_layout_files()
    for name, data in files.items():
        (tmp_path / "layout" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "layout" / name).write_bytes(data)
    with open_archive(tmp_path / "layout") as image:
        (read,) = image.manifests
        assert read.raw == manifest
        assert read.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
        assert read.layers[0].diff_id == sha(TEXT)


def test_oci_layout_tar(tmp_path):
    files, manifest = oci_layout_files()
    with open_archive(write_tar(tmp_path / "layout.tar", files)) as image:
        assert image.kind == "OCI layout"
        assert image.manifests[0].raw == manifest


def test_several_images_in_one_save_are_refused(tmp_path):
    entries = [{"Config": "a.json", "RepoTags": ["a:1"], "Layers": []}, {"Config": "b.json", "RepoTags": ["b:2"]}]
    archive = write_tar(tmp_path / "two.tar", {"manifest.json": json.dumps(entries).encode()})
    with pytest.raises(InputError) as caught, open_archive(archive):
        pass
    assert caught.value.message == (
        "IMAGE_ARCHIVE holds 2 images (a:1, b:2): save exactly one image, e.g. docker save my-image:tag -o image.tar."
    )


def test_not_an_image_archive(tmp_path):
    archive = write_tar(tmp_path / "other.tar", {"README": b"hi"})
    with pytest.raises(InputError) as caught, open_archive(archive):
        pass
    assert caught.value.message == (
        "IMAGE_ARCHIVE holds neither an OCI layout (index.json) nor a `docker save` manifest (manifest.json): "
        "point IMAGE_ARCHIVE at the output of `docker save` or an OCI image layout."
    )


# --- reading a tar as a stream (engine exports) -----------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as a socket may."""

    def __init__(self, data: bytes, step: int):
        super().__init__()
        self.data, self.step, self.position = data, step, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data[self.position : self.position + min(self.step, len(buffer))]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def tar_bytes(tar_format: int) -> bytes:
    """A tar with what exports hold (folders, files, a symlink, a hard link); beyond ustar,
    names long enough to need the format's extension headers."""
    long_names = tar_format != tarfile.USTAR_FORMAT
    deep = "d" * 60 + "/" + "e" * 60 + "/" + "layer-with-a-long-name-" + "f" * 40 + ".tar" if long_names else "x/y.tar"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        for name, data in (("abc/layer.tar", TEXT), (deep, RANDOM), ("empty.json", b""), ("manifest.json", b"[]")):
            folder = tarfile.TarInfo(name.rsplit("/", 1)[0] if "/" in name else ".")
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("def/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../abc/layer.tar"
        tar.addfile(link)
        hard = tarfile.TarInfo("again/" + ("g" * 120 if long_names else "g") + ".tar")
        hard.type, hard.linkname = tarfile.LNKTYPE, deep
        tar.addfile(hard)
    return out.getvalue()


@pytest.mark.parametrize("tar_format", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_stream_reader_sees_what_tarfile_sees(tmp_path, tar_format):
    data = tar_bytes(tar_format)
    heard = []
    files = read_tar_stream(Trickle(data, 7000), tmp_path, lambda name, source, digest: heard.append((name, digest)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}
        links = {m.name: m for m in tar if m.issym() or m.islnk()}
    assert sorted(name for name, _ in heard) == sorted(expected)
    for name, content in expected.items():
        assert files.source(name).read_all() == content
        assert (name, sha(content)) in heard
    for name, link in links.items():  # links resolve to the bytes they point at
        target = link.linkname if link.islnk() else str(Path(name).parent / link.linkname)
        assert files.source(name).read_all() == expected[os.path.normpath(target)]


@pytest.mark.parametrize("cut", ["mid-file", "at a header", "before the end marker"])
def test_stream_reader_refuses_a_cut_stream(tmp_path, cut):
    data = tar_bytes(tarfile.PAX_FORMAT)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    second = members[2].offset  # a header after the first file
    end = members[-1].offset_data + -(-members[-1].size // 512) * 512  # the last member's end
    length = {"mid-file": len(data) // 2, "at a header": second, "before the end marker": end}[cut]
    with pytest.raises(tarfile.TarError):
        read_tar_stream(io.BytesIO(data[:length]), tmp_path, lambda *_: None)


def test_stream_reader_refuses_a_damaged_header(tmp_path):
    data = bytearray(tar_bytes(tarfile.GNU_FORMAT))
    data[148:156] = b"0000000\0"  # the first header's checksum
    with pytest.raises(tarfile.TarError):
        read_tar_stream(io.BytesIO(bytes(data)), tmp_path, lambda *_: None)


def test_engine_export_reports_progress_every_interval_while_it_streams(tmp_path, caplog):
    """A large export says how far it is every few seconds, however its chunks arrive."""
    from pipe.containers.native import ChunkStream
    from pipe.progress import LAYER_INTERVAL_S, ExportProgress

    data = tar_bytes(tarfile.PAX_FORMAT)
    now = [0.0]
    log = logging.getLogger("export-progress")
    meter = ExportProgress(log, len(data), clock=lambda: now[0])

    def chunks():
        for start in range(0, len(data), 4096):
            now[0] += LAYER_INTERVAL_S / 4
            yield data[start : start + 4096]

    with caplog.at_level(logging.INFO, logger="export-progress"):
        files = read_tar_stream(ChunkStream(chunks(), meter), tmp_path, lambda *_: None)
    lines = [record.getMessage() for record in caplog.records]
    assert files.source("abc/layer.tar").read_all() == TEXT
    assert meter.moved >= len(data) - tarfile.RECORDSIZE  # reading stops at the end marker, before the padding
    # Four chunks make an interval: a line after every fourth, none once everything has come.
    chunk_count = -(-len(data) // 4096)
    assert len(lines) == len([k for k in range(4, chunk_count + 1, 4) if k * 4096 < len(data)]) > 10
    assert lines[0].startswith("Exporting the image: 16.0 KB of about ")


@pytest.mark.parametrize("failure", ["connection lost", "stream cut short"])
def test_an_export_that_breaks_off_is_an_engine_error_with_what_to_do(tmp_path, failure):
    import requests

    from pipe.containers.native import export
    from pipe.errors import EngineError

    data = tar_bytes(tarfile.PAX_FORMAT)

    class BreakingEngine:
        def get_image(self, image_id, chunk_size):
            yield data[: len(data) // 2]
            if failure == "connection lost":
                raise requests.ConnectionError("Connection broken: IncompleteRead")

    with pytest.raises(EngineError) as caught:
        export(BreakingEngine(), "sha256:" + "ab" * 32, tmp_path, lambda *_: None)
    assert caught.value.message.startswith("the Docker engine could not export image sha256:abababababab (")
    assert caught.value.message.endswith("re-run the step, or set PUSH_METHOD: engine to push through the engine.")

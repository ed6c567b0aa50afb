"""Tiny real images pushed straight over the distribution API, for tests that need many tags with
chosen ages (the config's `created`) without building anything: one layer with one file each, so
that `docker pull` gets a complete image."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name: str, content: bytes) -> bytes:
    """An uncompressed layer holding one file, the same bytes every time."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def layer_with(name: str, content: bytes) -> bytes:
    return gzip.compress(layer_tar(name, content), mtime=0)


def write_tar(path, files: dict[str, bytes]):
    """A tar at `path` holding `files` (name → bytes); the path."""
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class ApiPusher:
    """Pushes blobs, images and indexes to one repository (`acme/<image>`) of a registry."""

    def __init__(self, base: str, repository: str, session: requests.Session):
        self.base, self.repository, self.session = base.rstrip("/"), repository, session

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.repository}/{path}"

    def blob(self, data: bytes) -> dict:
        digest = digest_of(data)
        start = self.session.post(self.url("blobs/uploads/"), timeout=30)
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        location = location if location.startswith("http") else self.base + location
        separator = "&" if "?" in location else "?"
        done = self.session.put(
            f"{location}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        assert done.status_code == 201, done.text
        return {"digest": digest, "size": len(data)}

    def manifest(self, reference: str, document: dict) -> str:
        body = json.dumps(document).encode()
        answer = self.session.put(
            self.url(f"manifests/{reference}"), data=body, headers={"Content-Type": document["mediaType"]}, timeout=30
        )
        assert answer.status_code == 201, answer.text
        return digest_of(body)

    def image(self, tag: str | None, created: str, marker: str, arch: str = "amd64") -> dict:
        """An image whose file and config differ by `marker`, created at `created`; its descriptor."""
        layer = layer_with("marker.txt", marker.encode())
        diff_id = digest_of(gzip.decompress(layer))
        config = {
            "architecture": arch,
            "os": "linux",
            "created": created,
            "config": {"Labels": {"marker": marker}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        config_blob = self.blob(json.dumps(config).encode())
        layer_blob = self.blob(layer)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_blob},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_blob}],
        }
        digest = self.manifest(tag or digest_of(json.dumps(document).encode()), document)
        size = len(json.dumps(document).encode())
        return {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        }

    def index(self, tag: str, children: list[dict], annotations: dict | None = None) -> str:
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        if annotations:
            document["annotations"] = annotations
        return self.manifest(tag, document)

    def tag(self, tag: str, digest: str) -> None:
        """Points `tag` at an existing manifest (the bytes are read and put back under the tag)."""
        found = self.session.get(self.url(f"manifests/{digest}"), headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
        assert found.status_code == 200, found.text
        answer = self.session.put(
            self.url(f"manifests/{tag}"),
            data=found.content,
            headers={"Content-Type": found.headers["Content-Type"]},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text

    def tags(self) -> list[str]:
        answer = self.session.get(self.url("tags/list"), timeout=30)
        if answer.status_code == 404:
            return []
        assert answer.status_code == 200, answer.text
        return sorted(answer.json().get("tags") or [])

    def status(self, reference: str) -> int:
        answer = self.session.get(self.url(f"manifests/{reference}"), headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
        return answer.status_code

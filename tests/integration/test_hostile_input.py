"""Hostile input, table-driven, across the three kinds: every case ends with exit 1, one ✖ line that
names the problem, no traceback, and nothing written to the real registry.

Each run goes through a recording proxy (the fault proxy with no faults) in front of the real
registry, so "nothing published" is checked exactly: no PUT/POST/PATCH/DELETE reached it. Names
that would be valid are also looked up at the registry itself afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.conftest import assert_no_secret, base_env, run_in_process
from tests.faults.proxy import FaultProxy
from tests.oci.images import layer_tar, write_tar

TOKEN = uuid.uuid4().hex[:8]  # in every would-be-valid name, so a leftover is easy to find


@dataclass(frozen=True)
class Case:
    kind: str
    setup: Callable[[Path], None]
    expected: str  # a piece of the ✖ line that names the problem
    env: dict[str, str] = field(default_factory=dict)
    probe: str | None = None  # a registry path that must not exist afterwards


# --- npm inputs -------------------------------------------------------------------------------


def ok_name(case: str) -> str:
    return f"bbpp-hostile-{case}-{TOKEN}"


def package_json(data: object | None = None, raw: bytes | None = None, extra: dict[str, Callable] | None = None):
    def setup(folder: Path) -> None:
        if raw is not None:
            (folder / "package.json").write_bytes(raw)
        elif data is not None:
            (folder / "package.json").write_text(json.dumps(data), encoding="utf-8")
        (folder / "index.js").write_text("module.exports = 1;\n", encoding="utf-8")
        for name, make in (extra or {}).items():
            make(folder / name)

    return setup


def tgz_bytes(members: list[tuple]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content, *link in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.linkname = tarfile.SYMTYPE, link[0]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def tarball(content: bytes) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        (folder / "p.tgz").write_bytes(content)

    return setup


def valid_manifest(case: str) -> bytes:
    return json.dumps({"name": ok_name(case), "version": "1.0.0"}).encode()


def npm_cases() -> dict[str, Case]:
    ok = {"name": ok_name("ok"), "version": "1.0.0"}
    tgz = {"NPM_PACKAGE": "p.tgz"}
    invalid_name = "is not a valid npm package name"
    not_tgz = "is not a readable gzip tarball"
    unsafe = "the tarball holds an entry with an unsafe path"
    cases = {
        "npm-name-traversal": Case("npm", package_json({"name": "../evil", "version": "1.0.0"}), invalid_name),
        "npm-scoped-traversal": Case("npm", package_json({"name": "@acme/../evil", "version": "1.0.0"}), invalid_name),
        "npm-name-absolute": Case("npm", package_json({"name": "/etc/passwd", "version": "1.0.0"}), invalid_name),
        "npm-name-capitals": Case(
            "npm", package_json({"name": f"Evil-{TOKEN}", "version": "1.0.0"}), "capital letters"
        ),
        "npm-name-lookalike": Case(
            "npm", package_json({"name": f"\u0435xpress-{TOKEN}", "version": "1.0.0"}), "not URL-safe"
        ),
        "npm-name-too-long": Case(
            "npm", package_json({"name": "a" * 215, "version": "1.0.0"}), "longer than 214 characters"
        ),
        "npm-package-json-empty": Case("npm", package_json(raw=b""), "package.json is not valid JSON"),
        "npm-package-json-binary": Case("npm", package_json(raw=bytes(range(256)) * 8), "is not UTF-8 text"),
        "npm-package-json-huge": Case(
            "npm",
            package_json(raw=json.dumps({**ok, "name": ok_name("huge"), "description": "x" * (3 << 20)}).encode()),
            "more than the 1024 KB a package.json may hold",
            probe=ok_name("huge"),
        ),
        "npm-package-json-array": Case("npm", package_json(raw=b"[1, 2]"), "must hold a JSON object"),
        "npm-no-version": Case(
            "npm", package_json({"name": ok_name("nover")}), 'has no "version"', probe=ok_name("nover")
        ),
        "npm-bad-version": Case(
            "npm", package_json({"name": ok_name("badver"), "version": "1.0"}), "is not a semantic version"
        ),
        "npm-version-variable-traversal": Case(
            "npm", package_json(ok), "VERSION '../1.0.0' is not a semantic version", {"VERSION": "../1.0.0"}
        ),
        "npm-version-above-safe-integer": Case(
            "npm",
            package_json({"name": ok_name("bigver"), "version": "99999999999999999999.0.0"}),
            "cannot be published (its major number is above 9007199254740991",
            probe=ok_name("bigver"),
        ),
        "npm-version-variable-above-safe-integer": Case(
            "npm", package_json(ok), "cannot be published (its minor number", {"VERSION": "1.9007199254740992.0"}
        ),
        "npm-version-longer-than-npm-allows": Case(
            "npm",
            package_json({"name": ok_name("longver"), "version": "1.0.0-" + "a" * 300}),
            "cannot be published (longer than 256 characters",
            probe=ok_name("longver"),
        ),
        "npm-version-non-ascii-digits": Case(
            "npm",
            package_json({"name": ok_name("digits"), "version": "1\u0663.0.0"}),
            "is not a semantic version",
            probe=ok_name("digits"),
        ),
        "npm-package-json-nested-100000": Case(
            "npm",
            package_json(raw=b'{"name": "x", "version": "1.0.0", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
            "./package.json nests objects or arrays more than 100 levels deep",
        ),
        "npm-tgz-package-json-nested-100000": Case(
            "npm",
            tarball(tgz_bytes([("package/package.json", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")])),
            "p.tgz:package.json nests objects or arrays more than 100 levels deep",
            tgz,
        ),
        "npm-dist-tag-traversal": Case(
            "npm", package_json(ok), "NPM_DIST_TAG '../latest' is not a usable dist-tag", {"NPM_DIST_TAG": "../latest"}
        ),
        "npm-dist-tag-is-a-version": Case(
            "npm", package_json(ok), "NPM_DIST_TAG '1.0.0' is not a usable dist-tag", {"NPM_DIST_TAG": "1.0.0"}
        ),
        "npm-package-json-is-a-folder": Case(
            "npm", package_json(extra={"package.json": lambda path: path.mkdir()}), "has no package.json"
        ),
        "npm-package-json-dangling-link": Case(
            "npm",
            package_json(extra={"package.json": lambda path: path.symlink_to("/nonexistent/package.json")}),
            "has no package.json",
        ),
        "npm-package-folder-outside": Case(
            "npm", package_json(ok), "../.. has no package.json", {"NPM_PACKAGE": "../.."}
        ),
        "npm-private-package": Case(
            "npm", package_json({**ok, "private": True}), '"private": true, which tells npm never to publish it'
        ),
        "npm-tgz-not-gzip": Case("npm", tarball(b"this is not gzip"), f"p.tgz {not_tgz} (not a gzip file)", tgz),
        "npm-tgz-empty-file": Case("npm", tarball(b""), f"p.tgz {not_tgz} (empty file)", tgz),
        "npm-tgz-gzip-but-not-tar": Case("npm", tarball(gzip.compress(b"plain text")), f"p.tgz {not_tgz}", tgz),
        "npm-tgz-without-package-json": Case(
            "npm", tarball(tgz_bytes([("package/index.js", b"1")])), "p.tgz has no package/package.json", tgz
        ),
        "npm-tgz-member-traversal": Case(
            "npm",
            tarball(tgz_bytes([("package/package.json", valid_manifest("tt")), ("package/../../evil", b"x")])),
            f"{unsafe} ('package/../../evil')",
            tgz,
            probe=ok_name("tt"),
        ),
        "npm-tgz-member-absolute": Case(
            "npm",
            tarball(tgz_bytes([("package/package.json", valid_manifest("ta")), ("/etc/evil", b"x")])),
            f"{unsafe} ('/etc/evil')",
            tgz,
            probe=ok_name("ta"),
        ),
        "npm-tgz-member-symlink-escaping": Case(
            "npm",
            tarball(tgz_bytes([("package/package.json", valid_manifest("ts")), ("package/link", None, "/etc/passwd")])),
            "the tarball holds 'package/link', which is not a regular file",
            tgz,
            probe=ok_name("ts"),
        ),
    }
    return cases


# --- Maven inputs -----------------------------------------------------------------------------


def pom(body: str | bytes, jar_for: str | None = None, extra: dict[str, Callable] | None = None):
    def setup(folder: Path) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        (folder / "pom.xml").write_bytes(data)
        if jar_for:
            (folder / "target").mkdir()
            (folder / "target" / f"{jar_for}-1.0.0.jar").write_bytes(b"PK\x05\x06" + b"\0" * 18)
        for name, make in (extra or {}).items():
            make(folder / name)

    return setup


def coordinates(group: str, artifact: str, version: str = "1.0.0") -> str:
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></project>"
    )


def maven_cases() -> dict[str, Case]:
    art = f"hostile-{TOKEN}"
    good = coordinates("org.bbpp.hostile", art)
    probe = f"org/bbpp/hostile/{art}/maven-metadata.xml"
    invalid_group = "groupId '{}' is not valid"
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f"<project><groupId>org.bbpp.hostile</groupId><artifactId>{art}</artifactId><version>1.0.0</version>"
        "<description>&x;</description></project>"
    )
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        f"<project><groupId>org.bbpp.hostile</groupId><artifactId>{art}</artifactId><version>1.0.0</version>"
        "<name>&d;</name></project>"
    )
    refused_dtd = "declares a DOCTYPE or ENTITY, which the pipe refuses to parse"
    chain = "".join(f"<p{n}>{('${p' + str(n - 1) + '}') * 10}</p{n}>" for n in range(2, 10))
    bomb = (
        f"<project><groupId>org.bbpp.hostile</groupId><artifactId>{art}</artifactId><version>${{p9}}</version>"
        f"<properties><p1>xxxxxxxxxx</p1>{chain}</properties></project>"
    )
    loop = (
        f"<project><groupId>org.bbpp.hostile</groupId><artifactId>{art}</artifactId><version>${{a}}</version>"
        "<properties><a>${b}</a><b>${a}</b></properties></project>"
    )
    return {
        "maven-property-expansion-bomb": Case("maven", pom(bomb, art), "expands to more than 65536 characters"),
        "maven-property-loop": Case("maven", pom(loop, art), "properties refer to each other in a loop"),
        "maven-group-traversal": Case(
            "maven", pom(coordinates("../../evil", art), art), invalid_group.format("../../evil")
        ),
        "maven-group-slash": Case("maven", pom(coordinates("org/evil", art), art), invalid_group.format("org/evil")),
        "maven-group-absolute": Case("maven", pom(coordinates("/etc", art), art), invalid_group.format("/etc")),
        "maven-group-lookalike": Case(
            "maven", pom(coordinates("org.\u043ek", art), art), invalid_group.format("org.\u043ek")
        ),
        "maven-artifact-traversal": Case(
            "maven", pom(coordinates("org.bbpp.hostile", f"../{art}"), art), f"artifactId '../{art}' is not valid"
        ),
        "maven-version-traversal": Case(
            "maven", pom(coordinates("org.bbpp.hostile", art, "../1.0.0"), art), "version '../1.0.0' is not valid"
        ),
        # Versions and ids that would leave the artifact's folder or change the URL (issue: a
        # fragment made every file one URL; '%2e%2e' and '..' landed in the group's folder).
        "maven-version-encoded-dots": Case(
            "maven", pom(coordinates("org.bbpp.hostile", art, "%2e%2e"), art), "version '%2e%2e' is not valid"
        ),
        "maven-version-fragment": Case(
            "maven", pom(coordinates("org.bbpp.hostile", art, "1.0.0#x"), art), "version '1.0.0#x' is not valid"
        ),
        "maven-version-encoded-slash": Case(
            "maven",
            pom(coordinates("org.bbpp.hostile", art, "1.0.0%2f.."), art),
            "version '1.0.0%2f..' is not valid",
        ),
        "maven-version-query": Case(
            "maven", pom(coordinates("org.bbpp.hostile", art, "1.0.0?x=1"), art), "version '1.0.0?x=1' is not valid"
        ),
        "maven-version-dots": Case("maven", pom(coordinates("org.bbpp.hostile", art, ".."), art), "version '..' is"),
        "maven-group-dots": Case("maven", pom(coordinates("..", art), art), invalid_group.format("..")),
        "maven-group-empty-part": Case(
            "maven", pom(coordinates("org..bbpp", art), art), invalid_group.format("org..bbpp")
        ),
        "maven-artifact-dots": Case("maven", pom(coordinates("com", ".."), art), "artifactId '..' is not valid"),
        "maven-file-name-fragment": Case(
            "maven",
            pom(good, art, {"target/x": lambda path: (path.parent / f"{art}-1.0.0-a#b.jar").write_bytes(b"PK")}),
            f"the file name '{art}-1.0.0-a#b.jar' cannot be part of a repository URL",
            probe=probe,
        ),
        "maven-pom-external-entity": Case("maven", pom(xxe, art), refused_dtd, probe=probe),
        "maven-pom-billion-laughs": Case("maven", pom(laughs, art), refused_dtd, probe=probe),
        "maven-pom-empty": Case("maven", pom(b"", art), "pom.xml is not well-formed XML"),
        "maven-pom-binary": Case("maven", pom(bytes(range(256)) * 4, art), "pom.xml is not well-formed XML"),
        "maven-pom-truncated": Case(
            "maven", pom("<project><groupId>org.bbpp.hostile</groupId>", art), "pom.xml is not well-formed XML"
        ),
        "maven-pom-without-group": Case(
            "maven",
            pom(f"<project><artifactId>{art}</artifactId><version>1.0.0</version></project>", art),
            "pom.xml has no <groupId>",
        ),
        "maven-pom-outside": Case(
            "maven", pom(good, art), "MAVEN_POM passwd was not found", {"MAVEN_POM": "../../../etc/passwd"}, probe
        ),
        "maven-artifact-outside": Case(
            "maven", pom(good, art), "does not exist", {"MAVEN_ARTIFACTS": "../../../etc/passwd"}, probe
        ),
        "maven-artifact-absolute": Case(
            "maven",
            pom(good, art),
            "MAVEN_ARTIFACTS file passwd is not named after",
            {"MAVEN_ARTIFACTS": "/etc/passwd"},
        ),
        "maven-artifact-misnamed": Case(
            "maven",
            pom(good, extra={"target": lambda path: (path.mkdir(), (path / "x-1.0.0.jar").write_bytes(b""))}),
            f"no artifacts for org.bbpp.hostile:{art}:1.0.0 found in target/",
            probe=probe,
        ),
        "maven-pom-is-a-folder": Case(
            "maven",
            pom(good, art, {"sub": lambda path: path.mkdir()}),
            "sub cannot be read (Is a directory)",
            {"MAVEN_POM": "sub"},
            probe,
        ),
    }


# --- container inputs ---------------------------------------------------------------------------


def dockerfile(text: str = "FROM scratch\nCOPY a.txt /\n") -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        (folder / "Dockerfile").write_text(text, encoding="utf-8")
        (folder / "a.txt").write_text("a", encoding="utf-8")

    return setup


def docker_cases() -> dict[str, Case]:
    bad_tag = "which is not a valid image tag"
    bad_name = "is not a valid image repository name"
    return {
        "docker-tag-traversal": Case("docker", dockerfile(), f"'../evil', {bad_tag}", {"TAGS": "../evil"}),
        "docker-tag-absolute": Case("docker", dockerfile(), f"'/evil', {bad_tag}", {"TAGS": "/evil"}),
        "docker-tag-slash": Case("docker", dockerfile(), f"'a/b', {bad_tag}", {"TAGS": "a/b"}),
        "docker-tag-129-characters": Case("docker", dockerfile(), bad_tag, {"TAGS": "a" * 129}),
        "docker-git-tag-too-long": Case("docker", dockerfile(), bad_tag, {"BITBUCKET_TAG": "v1.0.0-" + "a" * 130}),
        "docker-tag-lookalike": Case("docker", dockerfile(), f"'v1.0.0-\u0441', {bad_tag}", {"TAGS": "v1.0.0-\u0441"}),
        "docker-image-traversal": Case(
            "docker", dockerfile(), f"IMAGE_NAME '../evil' {bad_name}", {"IMAGE_NAME": "../evil"}
        ),
        "docker-image-absolute": Case(
            "docker", dockerfile(), f"IMAGE_NAME '/evil' {bad_name}", {"IMAGE_NAME": "/evil"}
        ),
        "docker-image-capitals": Case("docker", dockerfile(), f"IMAGE_NAME 'Evil' {bad_name}", {"IMAGE_NAME": "Evil"}),
        "docker-image-lookalike": Case(
            "docker", dockerfile(), f"IMAGE_NAME '\u0435vil' {bad_name}", {"IMAGE_NAME": "\u0435vil"}
        ),
        "docker-workspace-traversal": Case(
            "docker", dockerfile(), f"WORKSPACE '../evil' {bad_name}", {"WORKSPACE": "../evil"}
        ),
        "docker-dockerfile-outside": Case(
            "docker",
            dockerfile(),
            "DOCKERFILE '../../../etc/passwd' does not exist",
            {"DOCKERFILE": "../../../etc/passwd"},
        ),
        "docker-dockerfile-empty": Case("docker", dockerfile(""), "the Dockerfile cannot be empty"),
        "docker-build-args-malformed": Case(
            "docker", dockerfile(), "BUILD_ARGS entry 'NOEQUALS' is not KEY=VALUE", {"BUILD_ARGS": "NOEQUALS"}
        ),
        "docker-labels-malformed": Case("docker", dockerfile(), "LABELS entry '=x' is not KEY=VALUE", {"LABELS": "=x"}),
    }


# --- image archives and layouts ------------------------------------------------------------------


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_save(path: Path, stored: list[bytes], claimed: list[bytes] | None = None, config: bytes | None = None):
    """A legacy `docker save` tarball storing `stored` layers; its config lists the diff ids of
    `claimed` (a damaged archive when they differ), or is `config` as it is."""
    diff_ids = [sha(layer) for layer in (claimed or stored)]
    config = (
        config
        or json.dumps(
            {"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()
    )
    files = {"config.json": config} | {f"l{i}/layer.tar": data for i, data in enumerate(stored)}
    files["manifest.json"] = json.dumps(
        [{"Config": "config.json", "Layers": [f"l{i}/layer.tar" for i in range(len(stored))]}]
    ).encode()
    return write_tar(path, files)


def archive(stored: list[bytes] | None = None, **options) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        docker_save(folder / "image.tar", stored or [layer_tar("a.txt", b"a")], **options)

    return setup


def staged(files: dict[str, bytes | str], links: dict[str, str] | None = None):
    """A staging folder (build/staging-deploy) holding `files` (and symbolic links `links`: name →
    target) beside a good version (its POM) of the hostile artifact."""

    def setup(folder: Path) -> None:
        root = folder / "build" / "staging-deploy"
        good = f"org/bbpp/hostile/hostile-{TOKEN}/1.0.0/hostile-{TOKEN}-1.0.0"
        for name, data in {f"{good}.pom": coordinates("org.bbpp.hostile", f"hostile-{TOKEN}"), **files}.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
        for name, target in (links or {}).items():
            os.symlink(target, root / name)

    return setup


def climbing_layout(folder: Path) -> None:
    """An OCI layout whose index.json names a digest that climbs out of the layout to a file
    that looks like a manifest."""
    (folder / "layout").mkdir()
    (folder / "layout" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:../../../outside.json"}
    (folder / "layout" / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    (folder / "outside.json").write_text(json.dumps({"schemaVersion": 2, "config": {}, "layers": []}))


def image_archive_cases() -> dict[str, Case]:
    damaged = "is damaged"
    return {
        "docker-layout-digest-climbs-out": Case(
            "docker", climbing_layout, "names the digest 'sha256:../../../outside.json'", {"IMAGE_ARCHIVE": "layout"}
        ),
        "docker-save-config-not-json": Case(
            "docker", archive(config=b"{not json"), f"{damaged}: the image config config.json is not JSON",
            {"IMAGE_ARCHIVE": "image.tar"},
        ),
        "docker-save-config-nested-deeply": Case(
            "docker", archive(config=b"[" * 100_000 + b"]" * 100_000), "is not JSON (nested too deeply)",
            {"IMAGE_ARCHIVE": "image.tar"},
        ),
        "docker-archive-is-a-device": Case(
            "docker", dockerfile(), "'/dev/null' is not a regular file or a folder", {"IMAGE_ARCHIVE": "/dev/null"}
        ),
        "docker-index-duplicate-entry": Case(
            "docker", dockerfile(), "INDEX_FROM_TAGS names x-amd64 more than once",
            {"INDEX_FROM_TAGS_COUNT": "2", "INDEX_FROM_TAGS_0": "x-amd64", "INDEX_FROM_TAGS_1": "x-amd64"},
        ),
        "docker-index-empty-entry": Case(
            "docker", dockerfile(), "INDEX_FROM_TAGS has an empty entry (entry 2 of 2)",
            {"INDEX_FROM_TAGS_COUNT": "2", "INDEX_FROM_TAGS_0": "x-amd64", "INDEX_FROM_TAGS_1": ""},
        ),
        "docker-token-outside-latin-1": Case(
            "docker", dockerfile(), "BITBUCKET_PACKAGES_TOKEN contains a character HTTP authentication cannot carry",
            {"BITBUCKET_PACKAGES_TOKEN": "t\u00f6k\u20acn-\u00fcnicode-9f8e"},
        ),
        "docker-registry-url-user-info": Case(
            "docker", dockerfile(), "REGISTRY_URL must not contain credentials: remove the user-info",
            {"REGISTRY_URL": "someone:hunter2@127.0.0.1:5000"},
        ),
    }  # fmt: skip


def staging_cases() -> dict[str, Case]:
    """MAVEN_STAGING_DIR: the folder is read and checked whole before the first request."""
    art = f"hostile-{TOKEN}"
    version = f"org/bbpp/hostile/{art}/1.0.0"
    env = {"MAVEN_STAGING_DIR": "build/staging-deploy"}
    probe = f"{version}/{art}-1.0.0.pom"
    return {
        "maven-staging-link-outside": Case(
            "maven",
            staged({}, {f"{version}/{art}-1.0.0.jar": "/etc/passwd"}),
            "symbolic links that point outside the folder",
            env,
            probe,
        ),
        "maven-staging-fragment-name": Case(
            "maven", staged({f"{version}/{art}-1.0.0-a#b.jar": b"PK"}), "names no Maven coordinates", env, probe
        ),
        "maven-staging-dotted-group-folder": Case(
            "maven", staged({f"org.bbpp/{art}/1.0/{art}-1.0.pom": b"<project/>"}), "names no Maven", env, probe
        ),
        "maven-staging-checksum-mismatch": Case(
            "maven", staged({f"{version}/{art}-1.0.0.pom.sha1": "0" * 40}), "checksum files that do not", env, probe
        ),
        "maven-staging-local-repository": Case(
            "maven", staged({f"{version}/_remote.repositories": "x"}), "files not named <artifactId>", env, probe
        ),
        "maven-staging-with-pom": Case(
            "maven", staged({}), "MAVEN_STAGING_DIR and MAVEN_POM are both set", {**env, "MAVEN_POM": "pom.xml"}, probe
        ),
    }


CASES = {**npm_cases(), **maven_cases(), **staging_cases(), **docker_cases(), **image_archive_cases()}


def upstream(sandbox, kind: str) -> str:
    return {"npm": sandbox.npm_registry, "maven": sandbox.maven_registry, "docker": sandbox.oci_registry}[kind]


def pipe_env(sandbox, case: Case, registry: str, case_id: str) -> dict[str, str]:
    values = {
        "PACKAGE_TYPE": case.kind,
        "REGISTRY_URL": registry,
        "BITBUCKET_PACKAGES_USERNAME": sandbox.writer_user,
        "BITBUCKET_PACKAGES_TOKEN": sandbox.writer_token,
        "BITBUCKET_REPO_SLUG": f"hostile-{TOKEN}-{case_id.split('-')[-1].lower()}",
        "DOCKER_HOST": sandbox.docker_host,
    }
    return base_env(**{**values, **case.env})


def test_the_table_has_at_least_40_cases_across_the_three_kinds():
    kinds = [case.kind for case in CASES.values()]
    assert len(CASES) >= 40
    assert {kind: kinds.count(kind) >= 10 for kind in ("npm", "maven", "docker")} == {
        "npm": True,
        "maven": True,
        "docker": True,
    }


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_hostile_input_is_refused_and_nothing_is_published(sandbox, case_id: str, workdir: Path):
    case = CASES[case_id]
    case.setup(workdir)
    with FaultProxy(upstream(sandbox, case.kind)) as proxy:
        registry = proxy.url if case.kind != "docker" else proxy.netloc
        run = run_in_process(pipe_env(sandbox, case, registry, case_id), workdir)
    assert_no_secret(run.output, sandbox.writer_user, sandbox.writer_token)
    assert run.code == 1, run.output
    marks = [line for line in run.lines if line.startswith("✖")]
    assert marks == [run.last_line], run.output
    assert case.expected in run.last_line
    assert "Traceback" not in run.output
    assert proxy.writes == 0, f"the registry received writes: {dict(proxy.methods)}"
    if case.probe:
        base = sandbox.npm_registry if case.kind == "npm" else sandbox.maven_registry
        found = requests.get(base + quote(case.probe, safe="/@"), auth=sandbox.reader, timeout=30)
        assert found.status_code == 404, f"{case.probe} exists at the registry"


def test_links_and_special_files_in_a_package_folder_are_never_packed(sandbox, workdir: Path):
    """Like `npm pack`: a symlink escaping the folder and a FIFO are skipped, so nothing outside the
    package folder can be published through them."""
    name = ok_name("links")
    package_json(
        {"name": name, "version": "1.0.0", "files": ["index.js", "secret.txt", "fifo"]},
        extra={"secret.txt": lambda path: path.symlink_to("/etc/hostname"), "fifo": lambda path: os.mkfifo(path)},
    )(workdir)
    run = run_in_process(pipe_env(sandbox, Case("npm", lambda _: None, ""), sandbox.npm_registry, "links"), workdir)
    assert run.code == 0, run.output
    published = requests.get(f"{sandbox.npm_registry}{name}/-/{name}-1.0.0.tgz", auth=sandbox.reader, timeout=30)
    with tarfile.open(fileobj=io.BytesIO(published.content), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["package/index.js", "package/package.json"]


# --- damaged layers against the real registry: the push fails and no tag appears -------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TEXT_LAYER = layer_tar("text.txt", b"".join(b"line %d of some text\n" % i for i in range(20000)))
RANDOM_LAYER = layer_tar("random.bin", hashlib.shake_256(TOKEN.encode()).digest(300_000))


def corrupt_oci_layout(folder: Path) -> None:
    """An OCI layout (as `skopeo copy … oci:` writes them) whose gzip'd layer matches its digest
    but unpacks to another diff id than the config lists."""
    compressed = gzip.compress(RANDOM_LAYER, mtime=0)
    config = json.dumps(
        {"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [sha(TEXT_LAYER)]}}
    ).encode()
    config_descriptor = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config)}
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(compressed)}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_descriptor | {"size": len(config)},
            "layers": [layer | {"size": len(compressed)}],
        }
    ).encode()
    blobs = folder / "layout" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in (compressed, config, manifest):
        (blobs / sha(data)[7:]).write_bytes(data)
    descriptor = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(manifest),
        "size": len(manifest),
    }
    (folder / "layout" / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    (folder / "layout" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


DAMAGED = {
    # gzip'd by the pipe: the layer is checked while it is compressed, before it is sent
    "docker-save-text-layer": (archive([TEXT_LAYER + bytes(512)], claimed=[TEXT_LAYER]), "image.tar"),
    # pushed as it is: checked while it streams to the registry
    "docker-save-random-layer": (
        archive([RANDOM_LAYER[:4096] + bytes(4096) + RANDOM_LAYER[8192:]], claimed=[RANDOM_LAYER]),
        "image.tar",
    ),
    "oci-layout-wrong-diff-id": (corrupt_oci_layout, "layout"),
}


@pytest.mark.parametrize("case_id", sorted(DAMAGED))
def test_a_damaged_layer_fails_the_push_and_no_tag_appears(sandbox, case_id: str, workdir: Path):
    setup, path = DAMAGED[case_id]
    setup(workdir)
    case = Case("docker", setup, "", {"IMAGE_ARCHIVE": path, "TAGS": "1.0.0 latest"})
    env = pipe_env(sandbox, case, sandbox.oci_registry, case_id)
    run = run_in_process(env, workdir)
    assert run.code == 1, run.output
    assert [line for line in run.lines if line.startswith("✖")] == [run.last_line], run.output
    assert "is damaged" in run.last_line and "nothing was tagged" in run.last_line
    assert "Traceback" not in run.output
    repository = f"acme/{env['BITBUCKET_REPO_SLUG']}"
    for tag in ("1.0.0", "latest"):
        found = requests.head(
            f"{sandbox.oci_url}/v2/{repository}/manifests/{tag}",
            auth=sandbox.reader,
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        assert found.status_code == 404, f"{repository}:{tag} exists"


# --- several tags on one image in a layout, as skopeo writes them -----------------------------------


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=True)


def test_an_oci_layout_with_two_tags_on_one_image_is_pushed_once(sandbox, workdir: Path, unique):
    """`skopeo copy … oci:L:1.0.0`, then `oci:L:latest`: one image listed twice in index.json.
    The pipe pushes it once, says which tags the layout names, and skopeo reads it back."""
    docker_save(workdir / "image.tar", [TEXT_LAYER, RANDOM_LAYER])
    for tag in ("1.0.0", "latest"):
        skopeo("copy", f"docker-archive:{workdir / 'image.tar'}", f"oci:{workdir / 'layout'}:{tag}")
    index = json.loads((workdir / "layout" / "index.json").read_text())
    assert len(index["manifests"]) == 2 and len({d["digest"] for d in index["manifests"]}) == 1
    name = unique("bbpp-multitag")
    case = Case("docker", lambda _: None, "", {"IMAGE_ARCHIVE": "layout", "TAGS": "2.0.0", "IMAGE_NAME": name})
    run = run_in_process(pipe_env(sandbox, case, sandbox.oci_registry, "multitag"), workdir)
    assert run.code == 0, run.output
    assert "The image layout names this image 1.0.0, latest; it is pushed once." in run.output
    user, token = sandbox.reader
    seen = skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        f"{user}:{token}",
        f"docker://{sandbox.oci_registry}/acme/{name}:2.0.0",
    )
    assert json.loads(seen.stdout)["Digest"] == index["manifests"][0]["digest"]

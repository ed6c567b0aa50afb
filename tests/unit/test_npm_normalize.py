"""The pieces of npm's manifest normalization that guard the pipe rather than mirror npm (what
npm itself sends is compared in tests/integration/test_npm_manifest_parity.py): nothing outside
the package is looked at, a hostile `.git/HEAD` yields no `gitHead`, a `.tgz` is read in place."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

from pipe.npm.normalize import publish_manifest
from pipe.npm.package_tree import FolderTree, TarballTree, git_head_above

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_the_commit_is_read_from_the_nearest_checkout_above(tmp_path: Path):
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    package = tmp_path / "packages" / "a"
    package.mkdir(parents=True)
    assert git_head_above(package) == SHA
    (tmp_path / ".git" / "refs" / "heads" / "main").unlink()
    (tmp_path / ".git" / "packed-refs").write_text(f"# pack-refs\n{SHA} refs/heads/main\n")
    assert git_head_above(package) == SHA
    (tmp_path / ".git" / "HEAD").write_text(SHA.upper() + "\n")  # detached, but not a commit id as git writes it
    assert git_head_above(package) is None


def test_a_head_naming_a_file_outside_the_checkout_is_no_commit(tmp_path: Path):
    secret = tmp_path / "secret"
    secret.write_text(SHA)
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    for head in ("ref: ../../secret", "ref: refs/../../../secret", f"ref: {secret}"):
        (tmp_path / "repo" / ".git" / "HEAD").write_text(head + "\n")
        assert git_head_above(tmp_path / "repo") is None, head


def test_a_worktree_checkout_gives_no_commit_as_with_npm(tmp_path: Path):
    (tmp_path / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")  # a file, not a folder
    assert git_head_above(tmp_path) is None


def test_nothing_outside_the_package_is_looked_at(tmp_path: Path):
    (tmp_path / "outside.d.ts").write_text("x")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "README.md").symlink_to(tmp_path / "outside.d.ts")
    tree = FolderTree(tmp_path / "pkg")
    assert not tree.exists("../outside.d.ts")
    assert tree.read_text("README.md") is None  # a link leading out of the package
    manifest = publish_manifest({"name": "w", "main": "../outside.js"}, "1.0.0", tree, from_tarball=False)
    assert "types" not in manifest
    assert manifest["readme"] == "ERROR: No README data found!"


def tgz(files: dict[str, str], root: str = "package") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            member = tarfile.TarInfo(f"{root}/{name}")
            member.size = len(text.encode())
            archive.addfile(member, io.BytesIO(text.encode()))
    return buffer.getvalue()


def test_a_tgz_is_read_in_place_under_any_root_folder(tmp_path: Path):
    path = tmp_path / "w.tgz"
    path.write_bytes(tgz({"package.json": "{}", "README.es.md": "es", "README.md": "md", "lib/index.d.ts": "x"}, "pkg"))
    with tarfile.open(path) as archive:
        tree = TarballTree(path, archive.getmembers())
    assert tree.entries("") == [("package.json", False), ("lib", True), ("README.md", False), ("README.es.md", False)]
    manifest = publish_manifest({"name": "w", "main": "lib/index.js"}, "1.0.0", tree, from_tarball=True)
    picked = (manifest["readme"], manifest["readmeFilename"], manifest["types"])
    assert picked == ("md", "README.md", "./lib/index.d.ts")


def test_the_document_is_a_new_object(tmp_path: Path):
    data = {"name": "w", "author": "A <a@b.c>", "bin": {"x": "./x.js"}}
    publish_manifest(data, "1.0.0", FolderTree(tmp_path), from_tarball=False)
    assert data == {"name": "w", "author": "A <a@b.c>", "bin": {"x": "./x.js"}}


FIELDS = (
    "author", "contributors", "maintainers", "repository", "repositories", "bugs", "homepage", "bin", "man",
    "directories", "main", "types", "scripts", "dependencies", "devDependencies", "optionalDependencies",
    "bundleDependencies", "bundledDependencies", "keywords", "files", "description", "readme", "gitHead",
    "gypfile", "modules", "dist",
)  # fmt: skip


def any_json(rng: random.Random, depth: int = 0) -> object:
    kinds = ["str", "int", "bool", "null", "float"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "list":
        return [any_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == "dict":
        keys = ["name", "url", "email", "web", "mail", "bin", "man", "x", "_y", "type", "install", "start"]
        return {rng.choice(keys): any_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return {
        "str": lambda: rng.choice(["", "u/r", "./a", "../b", "x <y@z.w> (http://v)", "github:u/r#v", "a, b", "#"]),
        "int": lambda: rng.randrange(-3, 3),
        "bool": lambda: rng.random() < 0.5,
        "null": lambda: None,
        "float": lambda: rng.random(),
    }[kind]()


def test_any_shape_of_the_fields_is_normalized_without_failing(tmp_path: Path):
    """package.json is user input: whatever JSON its fields hold, normalizing ends in a document."""
    rng = random.Random(20)  # noqa: S311 - a fixed sequence of shapes, not a secret
    (tmp_path / "README.md").write_text("# t\n\nText.\n")
    for _ in range(600):
        data = {"name": "w", **{field: any_json(rng) for field in rng.sample(FIELDS, 5)}}
        manifest = publish_manifest(data, "1.0.0", FolderTree(tmp_path), from_tarball=rng.random() < 0.3)
        json.dumps(manifest, allow_nan=False)

"""The native packer against the real `npm pack` (npm 11): same files, same modes, same order.

Folder fixtures come from tests/fixtures/npm/packlist_cases.py; real packages are fetched from the
npm registry with `npm pack <name>@<version>` into a cache outside the repository and unpacked.
npm is used here only as the reference; the pipe itself never runs it.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from pipe.npm.globmatch import PatternError, Rule
from pipe.npm.packlist import list_package_files
from pipe.npm.tarball import NPM_MTIME, tarball_digests, write_tarball
from tests.fixtures.npm.packlist_cases import CASES, build

pytestmark = pytest.mark.integration

CACHE = Path(os.environ.get("NPM_PARITY_CACHE", Path(tempfile.gettempdir()) / "bbpp-npm-parity-cache"))

# Popular packages with different layouts: `files` lists, .npmignore, no ignore file at all,
# scoped names, bin scripts, dist folders, TypeScript declarations, many small files.
REAL_PACKAGES = [
    "lodash@4.17.21",
    "express@4.19.2",
    "chalk@5.3.0",
    "@babel/core@7.24.0",
    "commander@12.0.0",
    "semver@7.6.0",
    "uuid@9.0.1",
    "rimraf@5.0.5",
    "debug@4.3.4",
    "@types/node@20.11.30",
    "rxjs@7.8.1",  # extended globs in `files`: dist/cjs/**/!(*.tsbuildinfo)
]

ORDER_CASES = ["defaults-junk", "sort-order", "odd-names-and-links", "files-globs-negations-dirs", "modes"]


def npm_available() -> bool:
    return shutil.which("npm") is not None


requires_npm = pytest.mark.skipif(not npm_available(), reason="the parity test needs the real npm client")


def npm(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["npm", *args, "--ignore-scripts", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"},
    )
    assert done.returncode == 0, f"npm {' '.join(args)} failed in {cwd}:\n{done.stderr[-2000:]}"
    return done.stdout


def npm_dry_run(folder: Path) -> dict[str, int]:
    """path -> mode from `npm pack --dry-run --json`."""
    report = json.loads(npm("pack", "--dry-run", cwd=folder))
    return {entry["path"]: entry["mode"] for entry in report[0]["files"]}


def native(folder: Path) -> dict[str, int]:
    manifest = json.loads((folder / "package.json").read_text())
    return {packed.path: packed.mode for packed in list_package_files(folder, manifest)}


def differences(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    lines = []
    for path in sorted(set(expected) | set(actual)):
        want, got = expected.get(path), actual.get(path)
        if want != got:
            lines.append(
                f"{path}: npm {oct(want) if want is not None else 'absent'}, native {oct(got) if got else 'absent'}"
            )
    return lines


@requires_npm
@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_folder_matches_npm_pack(name: str, tmp_path: Path) -> None:
    folder = build(tmp_path / name, CASES[name])
    expected = npm_dry_run(folder)
    assert expected, "npm packed nothing: the fixture is broken"
    assert differences(expected, native(folder)) == []


def unpacked_real_package(spec: str, into: Path) -> Path:
    """`npm pack <spec>` once into the cache, then a fresh unpacked copy of its folder in `into`
    (not in the shared cache: parallel runs would remove each other's copy)."""
    safe = spec.replace("/", "+")
    download = CACHE / "tarballs" / safe
    if not any(download.glob("*.tgz")):
        download.mkdir(parents=True, exist_ok=True)
        npm("pack", spec, "--pack-destination", str(download), cwd=download)
    tgz = next(download.glob("*.tgz"))
    folder = into / safe
    folder.mkdir(parents=True)
    with tarfile.open(tgz) as archive:
        archive.extractall(folder, filter="data")
    (inner,) = [child for child in folder.iterdir() if child.is_dir()]
    return inner


@requires_npm
@pytest.mark.parametrize("spec", REAL_PACKAGES)
def test_real_package_folder_matches_npm_pack(spec: str, tmp_path: Path) -> None:
    folder = unpacked_real_package(spec, tmp_path)
    expected = npm_dry_run(folder)
    assert len(expected) > 1
    assert differences(expected, native(folder)) == []


@requires_npm
@pytest.mark.parametrize("name", ORDER_CASES)
def test_tarball_order_matches_npm_tarball(name: str, tmp_path: Path) -> None:
    folder = build(tmp_path / name, CASES[name])
    destination = tmp_path / "out"
    destination.mkdir()
    npm("pack", "--pack-destination", str(destination), cwd=folder)
    (npm_tgz,) = destination.glob("*.tgz")
    with tarfile.open(npm_tgz) as archive:
        npm_order = [member.name for member in archive]

    manifest_bytes = (folder / "package.json").read_bytes()
    files = list_package_files(folder, json.loads(manifest_bytes))
    ours = io.BytesIO()
    write_tarball(folder, files, manifest_bytes, ours)
    ours.seek(0)
    with tarfile.open(fileobj=ours) as archive:
        members = archive.getmembers()
    assert [member.name for member in members] == npm_order

    # Same contents as npm's tarball, compared by content (not gzip bytes).
    ours.seek(0)
    with npm_tgz.open("rb") as theirs:
        assert tarball_digests(ours) == tarball_digests(theirs)


@requires_npm
@pytest.mark.parametrize("spec", ["semver@7.6.0", "@babel/core@7.24.0"])
def test_real_package_tarball_order_and_headers(spec: str, tmp_path: Path) -> None:
    folder = unpacked_real_package(spec, tmp_path)
    destination = tmp_path / "out"
    destination.mkdir()
    npm("pack", "--pack-destination", str(destination), cwd=folder)
    (npm_tgz,) = destination.glob("*.tgz")
    with tarfile.open(npm_tgz) as archive:
        npm_members = {member.name: member for member in archive}

    manifest_bytes = (folder / "package.json").read_bytes()
    ours = io.BytesIO()
    write_tarball(folder, list_package_files(folder, json.loads(manifest_bytes)), manifest_bytes, ours)
    ours.seek(0)
    with tarfile.open(fileobj=ours) as archive:
        members = archive.getmembers()
    assert [member.name for member in members] == list(npm_members)
    for member in members:
        theirs = npm_members[member.name]
        assert (member.mode, member.mtime, member.uname, member.gname, member.uid, member.gid) == (
            theirs.mode,
            theirs.mtime,
            theirs.uname,
            theirs.gname,
            theirs.uid,
            theirs.gid,
        )
        assert member.mtime == NPM_MTIME and member.isreg()


# npm's own matcher, with the options ignore-walk gives it, asked about many (pattern, path) pairs.
MINIMATCH_SCRIPT = """
const path = require('path');
const { Minimatch } = require(path.join(process.argv[1], 'npm', 'node_modules', 'minimatch'));
const options = { matchBase: true, dot: true, flipNegate: true, nocase: true };
const { patterns, paths } = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const answers = patterns.map(pattern => {
  try {
    const rule = new Minimatch(pattern, options);
    return paths.map(p => [rule.match(p), rule.match(p, true)]);
  } catch (error) {
    return String(error);
  }
});
process.stdout.write(JSON.stringify(answers));
"""

EXTGLOB_PIECES = ["a", "b", ".", "*", "?", "!(", "@(", "+(", "*(", "?(", "|", ")", ")", "[a]", "[.]", "\\", "x", "/"]
NAMES = ["a", "b", "ab", "ba", "aab", "abab", "bab", ".a", "a.", "x", "xa", "ax", "a.b", "..", ".", "abx", "xab", "B.A"]


def extglob_patterns(count: int) -> list[str]:
    """Seeded, so every run asks the same questions; mostly extended globs, nested and unclosed."""
    chooser = random.Random(16)  # noqa: S311 - test data, not a secret
    made = {"x/" + "".join(chooser.choice(EXTGLOB_PIECES) for _ in range(chooser.randint(2, 12))) for _ in range(count)}
    return sorted(made)


def minimatch_answers(patterns: list[str], paths: list[str]) -> list:
    npm_root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    done = subprocess.run(
        ["node", "-e", MINIMATCH_SCRIPT, npm_root],
        input=json.dumps({"patterns": patterns, "paths": paths}),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout)


def native_answers(pattern: str, paths: list[str]) -> list | str:
    try:
        rule = Rule(pattern)
    except PatternError as error:
        return f"refused: {error.reason}"
    return [[rule.match(p), rule.match(p, True)] for p in paths]


@requires_npm
def test_extended_globs_match_like_npms_own_minimatch() -> None:
    patterns = extglob_patterns(3000)
    paths = [f"x/{name}" for name in NAMES] + ["x", "/x/a", "x/a/b", "x/ab/", "a"]
    expected = minimatch_answers(patterns, paths)
    mismatches = []
    for pattern, theirs in zip(patterns, expected, strict=True):
        ours = native_answers(pattern, paths)
        if isinstance(theirs, str) != isinstance(ours, str) or (not isinstance(ours, str) and ours != theirs):
            mismatches.append(f"{pattern!r}: minimatch {theirs!r:.80}, native {ours!r:.80}")
    assert mismatches == []

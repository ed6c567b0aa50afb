"""Versions against npm's own judge: the pinned `semver` package (what npm 11 bundles, installed by
sandbox/install) decides every crafted version. The end-to-end refusals (nothing reaches the
registry) are cases of tests/integration/test_hostile_input.py."""

from __future__ import annotations

import json
import subprocess

import pytest

from pipe.npm.manifest import MAX_SAFE_INTEGER, read_npm_version
from pipe.versioning import SemVer
from tests.conftest import REPO_ROOT

SEMVER = REPO_ROOT / "sandbox" / ".oracles" / "node_modules" / "semver"

# What npm does with package.json's version on publish: `npm pkg fix` cleans it loosely
# (@npmcli/package-json), then libnpmpublish cleans it strictly; null when either refuses.
NPM_VERDICTS = """
const semver = require(process.argv[1])
const versions = JSON.parse(require('fs').readFileSync(0, 'utf8'))
console.log(JSON.stringify(versions.map(v => {
  const loose = semver.valid(v, { loose: true }) ? semver.clean(v, { loose: true }) : null
  return { strict: semver.valid(v), published: loose ? semver.clean(loose) : null }
})))
"""

MAX = MAX_SAFE_INTEGER
CRAFTED = [
    "1.0.0", "v1.0.0", " 1.0.0 ", "1.0.0+build.7", "1.0.0-rc.1", "0.0.0-0", "1.0.0-alpha-1.x",
    f"{MAX}.{MAX}.{MAX}", f"{MAX + 1}.0.0", f"0.{MAX + 1}.0", f"0.0.{MAX + 1}", f"{MAX + 2}.0.0",
    "99999999999999999999.0.0", "1.99999999999999999999.0", "1.0.0-99999999999999999999",
    "1.0.0-" + "a" * 250, "1.0.0-" + "a" * 251, "1.0.0+" + "b" * 250, "1.0.0+" + "b" * 251,
    "9" * 253 + ".0.0", "9" * 5000 + ".0.0",
    "01.0.0", "1.00.0", "1.0.0-01", "1.0", "1", "1.0.0-", "1.0.0+", "1.0.0-a..b", "=1.0.0", "V1.0.0",
    "1.0.0\u0663", "\u0661.0.0", "1.0.0-\u00e9", "1.0.0\n", "1.0.0 -rc", "-1.0.0", "1.0.0.0",
]  # fmt: skip


@pytest.fixture(scope="module")
def npm_verdicts() -> dict[str, dict]:
    if not (SEMVER / "package.json").is_file():
        pytest.fail(f"{SEMVER} is missing: run sandbox/install (it installs the test oracles).", pytrace=False)
    done = subprocess.run(
        ["node", "-e", NPM_VERDICTS, str(SEMVER)], input=json.dumps(CRAFTED), capture_output=True, text=True, check=True
    )
    return dict(zip(CRAFTED, json.loads(done.stdout), strict=True))


def published_by_the_pipe(text: str) -> str | None:
    read = read_npm_version(text)
    if not isinstance(read, SemVer):
        return None
    return str(SemVer(read.major, read.minor, read.patch, read.prerelease))


@pytest.mark.parametrize("text", CRAFTED, ids=[repr(v)[:40] for v in CRAFTED])
def test_the_pipe_publishes_only_what_npm_would_and_as_npm_would(npm_verdicts, text: str):
    ours, npm = published_by_the_pipe(text), npm_verdicts[text]
    if ours is not None:
        assert ours == npm["published"], f"the pipe would publish {ours!r}, npm {npm['published']!r}"
    if npm["strict"] is not None:  # a version npm takes as it is written: the pipe takes it too
        assert ours == npm["published"]

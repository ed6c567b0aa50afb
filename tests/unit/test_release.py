"""scripts/release puts one version everywhere a user or Pipelines reads it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT

FILES = ("CHANGELOG.md", "pipe.yml", "README.md", "pipe/__init__.py", "scripts/release")


def copy_project(target: Path) -> Path:
    for name in FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target / name)
    return target


def test_release_moves_unreleased_entries_and_sets_the_version(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    done = subprocess.run(["scripts/release", "9.8.7"], cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    changelog = (project / "CHANGELOG.md").read_text()
    assert re.search(r"^## Unreleased\n\n## 9\.8\.7 \(\d{4}-\d{2}-\d{2}\)\n", changelog, flags=re.MULTILINE)
    assert '__version__ = "9.8.7"' in (project / "pipe/__init__.py").read_text()
    assert re.search(r"^image: .*bitbucket-packages-publish:9\.8\.7$", (project / "pipe.yml").read_text(), re.M)
    readme = (project / "README.md").read_text()
    assert "bitbucket-packages-publish:9.8.7" in readme
    assert not re.search(r"bitbucket-packages-publish:\d+\.\d+\.\d+", readme.replace("9.8.7", ""))


def test_release_refuses_a_version_that_is_not_semver(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    done = subprocess.run(["scripts/release", "1.2"], cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "✖ '1.2' is not X.Y.Z"

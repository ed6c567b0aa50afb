"""`python3 -m pipe` as a process: what only the entry point does (tests call `cli.main` in-process)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, base_env, run_subprocess


def test_exit_code_and_last_line_survive_the_fast_exit(tmp_path):
    result = run_subprocess(base_env(PACKAGE_TYPE="rubygems"), tmp_path)
    assert result.code == 1
    assert result.output.splitlines()[-1].startswith("✖ PACKAGE_TYPE 'rubygems' is not supported")


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path):
    """`| head -1`: stdout closes before the pipe has said everything."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), **base_env(PACKAGE_TYPE="rubygems")}
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first write breaks the pipe
    with open(write_end, "wb") as closed_stdout:
        done = subprocess.run(
            [sys.executable, "-m", "pipe"], cwd=tmp_path, env=env, stdout=closed_stdout,
            stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == ""

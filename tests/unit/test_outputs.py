"""Results for later steps: the output-variables file and the JSON summary."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from pipe import cli
from pipe.errors import PipeError
from pipe.outputs import SUMMARY_FILE, Publication, write_variables
from tests.conftest import base_env, run_in_process


@pytest.fixture
def fake_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    def publish(config, log, masker):
        log.info("Publishing demo 1.2.3")
        return Publication(
            summary="published demo 1.2.3 to the registry",
            variables={"PUBLISHED_NAME": "demo", "PUBLISHED_VERSION": "1.2.3"},
            details={"files": 3},
        )

    module = types.ModuleType("fake_ok_publisher")
    module.publish = publish
    monkeypatch.setitem(sys.modules, "fake_ok_publisher", module)
    monkeypatch.setitem(cli.PUBLISHERS, "npm", "fake_ok_publisher")


def test_success_prints_steps_then_one_check_line_and_writes_results(
    workdir: Path, tmp_path: Path, fake_publisher
) -> None:
    variables = tmp_path / "outputs.env"
    variables.write_text("EARLIER=kept\n")
    storage = tmp_path / "storage"
    env = base_env(
        PACKAGE_TYPE="npm", BITBUCKET_PIPELINES_VARIABLES_PATH=str(variables), BITBUCKET_PIPE_STORAGE_DIR=str(storage)
    )
    run = run_in_process(env, workdir)
    assert run.code == 0
    assert run.lines == ["Publishing demo 1.2.3", "✔ published demo 1.2.3 to the registry"]
    assert variables.read_text() == "EARLIER=kept\nPUBLISHED_NAME=demo\nPUBLISHED_VERSION=1.2.3\n"
    summary = json.loads((storage / SUMMARY_FILE).read_text())
    assert summary["package_type"] == "npm"
    assert summary["outputs"] == {"PUBLISHED_NAME": "demo", "PUBLISHED_VERSION": "1.2.3"}
    assert summary["details"] == {"files": 3}
    assert summary["dry_run"] is False


def test_no_files_when_pipelines_does_not_ask(workdir: Path, fake_publisher) -> None:
    run = run_in_process(base_env(PACKAGE_TYPE="npm"), workdir)
    assert run.code == 0
    assert list(workdir.iterdir()) == []


def test_an_output_value_cannot_inject_another_variable(tmp_path: Path) -> None:
    with pytest.raises(PipeError):
        write_variables(str(tmp_path / "o.env"), {"PUBLISHED_NAME": "x\nEVIL=1"})


def test_unwritable_outputs_file_is_one_clear_line(workdir: Path, tmp_path: Path, fake_publisher) -> None:
    env = base_env(PACKAGE_TYPE="npm", BITBUCKET_PIPELINES_VARIABLES_PATH=str(tmp_path / "missing-dir" / "o.env"))
    run = run_in_process(env, workdir)
    assert run.code == 1
    assert run.last_line == (
        "✖ could not write output variables to BITBUCKET_PIPELINES_VARIABLES_PATH (No such file or directory): "
        "check that the step can write there."
    )

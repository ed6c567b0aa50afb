"""Results for later steps: `NAME=value` lines for Pipelines' output variables, and a JSON
summary in the pipe's storage directory."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import PipeError

SUMMARY_FILE = "bitbucket-packages-publish.json"
_OUTPUT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Publication:
    """What a publisher did: the ✔ sentence, output variables, and details for the summary."""

    summary: str
    variables: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, object] = field(default_factory=dict)


def write_variables(path: str | None, variables: Mapping[str, str]) -> None:
    """Append `NAME=value` lines (Pipelines' output-variables file format)."""
    if not path or not variables:
        return
    lines = []
    for name, value in variables.items():
        text = str(value)
        # A newline would inject another variable into the file.
        if not _OUTPUT_NAME.match(name) or "\n" in text or "\r" in text:
            raise PipeError(f"internal error: output {name!r} cannot be written as NAME=value.")
        lines.append(f"{name}={text}\n")
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(lines)
    except OSError as error:
        raise PipeError(
            f"could not write output variables to BITBUCKET_PIPELINES_VARIABLES_PATH ({error.strerror}): "
            "check that the step can write there."
        ) from None


def write_summary(directory: str | None, summary: Mapping[str, object]) -> Path | None:
    if not directory:
        return None
    target = Path(directory) / SUMMARY_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as error:
        raise PipeError(
            f"could not write the summary to BITBUCKET_PIPE_STORAGE_DIR ({error.strerror}): "
            "check that the step can write there."
        ) from None
    return target

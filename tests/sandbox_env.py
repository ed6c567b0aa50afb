"""The local registries' addresses and test credentials, as `sandbox/` scripts read them:
`sandbox/sandbox.env`'s KEY=value lines, each overridden by the environment. Shared by the
test layers and the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

SANDBOX_ENV_FILE = Path(__file__).resolve().parent.parent / "sandbox" / "sandbox.env"


def load_sandbox_env(path: Path = SANDBOX_ENV_FILE) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key.strip()] = os.environ.get(key.strip(), value.strip())
    return values

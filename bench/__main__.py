"""`make bench`: run every benchmark in turn, each printing its own side-by-side table.

.venv/bin/python -m bench                  # all of them, with their defaults
.venv/bin/python -m bench net --runs 1     # one of them, with its own arguments
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

BENCHMARKS = ("npm_publish", "maven_deploy", "maven_staging", "oci_push", "oci_release", "build_cache", "image", "net")


def run(name: str, arguments: list[str]) -> bool:
    module = f"bench.{name}"
    if importlib.util.find_spec(module) is None:
        print(f"no benchmark {name!r}: one of {', '.join(BENCHMARKS)}", file=sys.stderr)
        return False
    print(f"\n== {module} ==", flush=True)
    return subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode == 0


def main() -> int:
    if len(sys.argv) > 1:
        return 0 if run(sys.argv[1], sys.argv[2:]) else 1
    failed = [name for name in BENCHMARKS if not run(name, [])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

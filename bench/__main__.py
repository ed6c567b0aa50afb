"""`make bench`: run every benchmark in turn, each printing its own side-by-side table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

BENCHMARKS = ("npm_publish", "maven_deploy", "maven_staging", "oci_push", "oci_release", "build_cache", "image")


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        module = f"bench.{name}"
        if importlib.util.find_spec(module) is None:
            continue
        print(f"\n== {module} ==", flush=True)
        failed |= subprocess.run([sys.executable, "-m", module], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

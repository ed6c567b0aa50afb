"""Benchmark: deploy the same Maven project (POM, main jar, 20 attached jars) with the pipe and
with `mvn deploy:deploy-file` to the local nginx Maven repository.

    .venv/bin/python -m bench.maven_deploy [--runs 3] [--attached 20] [--kb 64]

Each run uses a fresh groupId, so both tools upload every file (nothing is skipped). Both are
measured as whole processes, start-up included: `python -m pipe` and `mvn` (offline, Debian's
/usr/share/maven-repo as its central repository, credentials in a throw-away settings.xml in a
temporary directory). The median wall time of the runs is printed side by side.
Needs `sandbox/up` to have run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from tests.sandbox_env import load_sandbox_env

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_PLUGIN = "org.apache.maven.plugins:maven-deploy-plugin:3.0.0"
SERVER_ID = "bench-target"


def write_project(folder: Path, group: str, artifact: str, version: str, attached: int, size_kb: int) -> list[str]:
    """pom.xml and target/ as `mvn package` leaves them; returns the attached classifiers."""
    (folder / "target").mkdir(parents=True)
    (folder / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
        f"  <groupId>{group}</groupId>\n  <artifactId>{artifact}</artifactId>\n  <version>{version}</version>\n"
        "</project>\n",
        encoding="utf-8",
    )
    classifiers = [f"part{index:02d}" for index in range(1, attached + 1)]
    for classifier in ["", *classifiers]:
        name = f"{artifact}-{version}{'-' + classifier if classifier else ''}.jar"
        with zipfile.ZipFile(folder / "target" / name, "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            jar.writestr("data.bin", os.urandom(size_kb * 1024))
    return classifiers


def maven_settings(directory: Path, user: str, token: str) -> Path:
    """A settings.xml (in a temporary directory, never in a project) with the deploy credentials
    and Debian's file repository standing in for Maven Central."""
    central = (
        "<id>central</id><url>file:///usr/share/maven-repo</url>"
        "<releases><checksumPolicy>ignore</checksumPolicy></releases><snapshots><enabled>false</enabled></snapshots>"
    )
    settings = directory / "settings.xml"
    settings.write_text(
        f"<settings><servers><server><id>{SERVER_ID}</id><username>{escape(user)}</username>"
        f"<password>{escape(token)}</password></server></servers>"
        f"<profiles><profile><id>offline-central</id><repositories><repository>{central}</repository></repositories>"
        f"<pluginRepositories><pluginRepository>{central}</pluginRepository></pluginRepositories></profile></profiles>"
        "<activeProfiles><activeProfile>offline-central</activeProfile></activeProfiles></settings>",
        encoding="utf-8",
    )
    return settings


def deploy_file_command(
    project: Path, artifact: str, version: str, classifiers: list[str], settings: Path, local_repo: Path, url: str
) -> list[str]:
    """`mvn deploy:deploy-file` of the POM, the main jar and every attached jar, as one deploy."""
    target = project / "target"
    return [
        "mvn",
        "-B",
        "-ntp",
        "-q",
        "-s",
        str(settings),
        f"-Dmaven.repo.local={local_repo}",
        f"{DEPLOY_PLUGIN}:deploy-file",
        f"-Dfile={target / f'{artifact}-{version}.jar'}",
        f"-DpomFile={project / 'pom.xml'}",
        f"-Dfiles={','.join(str(target / f'{artifact}-{version}-{c}.jar') for c in classifiers)}",
        f"-Dclassifiers={','.join(classifiers)}",
        f"-Dtypes={','.join('jar' for _ in classifiers)}",
        f"-Durl={url}",
        f"-DrepositoryId={SERVER_ID}",
    ]


def pipe_command_env(project: Path, url: str, user: str, token: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "BITBUCKET_PACKAGES_USERNAME": user,
        "BITBUCKET_PACKAGES_TOKEN": token,
        "PACKAGE_TYPE": "maven",
        "REGISTRY_URL": url,
        "BITBUCKET_CLONE_DIR": str(project),
    }


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall


def run(runs: int, attached: int, size_kb: int) -> tuple[list[float], list[float]]:
    values = load_sandbox_env()
    url, user, token = values["SANDBOX_MAVEN_REGISTRY"], values["SANDBOX_WRITER_USER"], values["SANDBOX_WRITER_TOKEN"]
    pipe_times, mvn_times = [], []
    with tempfile.TemporaryDirectory(prefix="bench-maven-") as temp:
        root = Path(temp)
        settings = maven_settings(root, user, token)
        for index in range(runs):
            for tool in ("pipe", "mvn"):
                group = f"org.bbpp.bench.{tool}{uuid.uuid4().hex[:10]}"
                project = root / f"{tool}-{index}"
                classifiers = write_project(project, group, "bench-lib", "1.0.0", attached, size_kb)
                if tool == "pipe":
                    env = pipe_command_env(project, url, user, token)
                    pipe_times.append(timed([sys.executable, "-m", "pipe"], project, env))
                else:
                    command = deploy_file_command(
                        project, "bench-lib", "1.0.0", classifiers, settings, root / "m2", url
                    )
                    mvn_times.append(timed(command, project, dict(os.environ)))
    return pipe_times, mvn_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--attached", type=int, default=20)
    parser.add_argument("--kb", type=int, default=64, help="random payload per jar, KiB")
    args = parser.parse_args()
    pipe_times, mvn_times = run(args.runs, args.attached, args.kb)
    pipe, mvn = statistics.median(pipe_times), statistics.median(mvn_times)
    files = args.attached + 2
    print(
        f"Maven deploy: POM + main jar + {args.attached} attached jars ({args.kb} KiB each), {args.runs} runs, median"
    )
    print(f"{'tool':<28}{'wall time':>12}")
    print(f"{'pipe (python -m pipe)':<28}{pipe:>11.2f}s")
    print(f"{'mvn deploy:deploy-file':<28}{mvn:>11.2f}s")
    print(f"pipe is {mvn / pipe:.1f}x faster ({files} files, each with checksums, plus metadata)")


if __name__ == "__main__":
    main()

"""Benchmark: deploy the same Maven project with the pipe and with Maven to the local nginx Maven
repository, in two scenarios: one POM with a main jar and 20 attached jars (`mvn deploy:deploy-file`),
and a reactor of a parent and 20 jar modules (Maven's deploy plugin over the reactor).

    .venv/bin/python -m bench.maven_deploy [--runs 3] [--attached 20] [--modules 20] [--kb 64]

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
JAR_PLUGIN = "org.apache.maven.plugins:maven-jar-plugin:3.3.0"
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


def write_jar(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        jar.writestr("data.bin", payload)


def write_reactor(
    folder: Path,
    group: str,
    parent: str,
    version: str,
    modules: dict[str, list[str]],
    size_kb: int,
    skipped: tuple[str, ...] = (),
) -> None:
    """A multi-module project as `mvn package` leaves it: an aggregator + parent POM (packaging pom)
    listing `modules` (artifactId → the sibling modules it depends on) in the order given; each
    module inherits groupId and version, names its dependencies as ${project.groupId} /
    ${project.version}, and has its jar in target/ (and the same payload in target/classes, for
    Maven's jar:jar). Modules in `skipped` set maven.deploy.skip."""
    listed = "".join(f"<module>{name}</module>" for name in modules)
    _write_pom(
        folder,
        f"<groupId>{group}</groupId><artifactId>{parent}</artifactId><version>{version}</version>"
        f"<packaging>pom</packaging><modules>{listed}</modules>",
    )
    for name, needs in modules.items():
        dependencies = "".join(
            f"<dependency><groupId>${{project.groupId}}</groupId><artifactId>{need}</artifactId>"
            "<version>${project.version}</version></dependency>"
            for need in needs
        )
        skip = "<properties><maven.deploy.skip>true</maven.deploy.skip></properties>" if name in skipped else ""
        _write_pom(
            folder / name,
            f"<parent><groupId>{group}</groupId><artifactId>{parent}</artifactId><version>{version}</version>"
            f"</parent><artifactId>{name}</artifactId>{skip}<dependencies>{dependencies}</dependencies>",
        )
        payload = os.urandom(size_kb * 1024)
        write_jar(folder / name / "target" / f"{name}-{version}.jar", payload)
        (folder / name / "target" / "classes").mkdir()
        (folder / name / "target" / "classes" / "data.bin").write_bytes(payload)


def _write_pom(folder: Path, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(
        f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>{body}</project>\n',
        encoding="utf-8",
    )


def maven_command(settings: Path, local_repo: Path) -> list[str]:
    """`mvn`, batch and quiet, with these settings and a local repository of its own."""
    return ["mvn", "-B", "-ntp", "-q", "-s", str(settings), f"-Dmaven.repo.local={local_repo}"]


def reactor_deploy_command(project: Path, settings: Path, local_repo: Path, url: str) -> list[str]:
    """`mvn` deploying every module of the reactor under `project`: the lifecycle's package and deploy
    steps for jars (Debian ships no compiler plugin to run the whole lifecycle offline)."""
    return [
        *maven_command(settings, local_repo),
        "-f",
        str(project / "pom.xml"),
        f"{JAR_PLUGIN}:jar",
        f"{DEPLOY_PLUGIN}:deploy",
        f"-DaltDeploymentRepository={SERVER_ID}::{url}",
    ]


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
        *maven_command(settings, local_repo),
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


Scenario = tuple[Path, list[str]]


def single_pom(root: Path, tool: str, index: int, settings: Path, url: str, attached: int, size_kb: int) -> Scenario:
    """One POM with a main jar and `attached` classifier jars, and the mvn command that deploys it."""
    group = f"org.bbpp.bench.{tool}{uuid.uuid4().hex[:10]}"
    project = root / f"{tool}-{index}"
    classifiers = write_project(project, group, "bench-lib", "1.0.0", attached, size_kb)
    return project, deploy_file_command(project, "bench-lib", "1.0.0", classifiers, settings, root / "m2", url)


def write_chain_reactor(project: Path, group: str, modules: int, size_kb: int) -> None:
    """A parent aggregator and `modules` jar modules, each depending on the one before."""
    names = [f"module{number:02d}" for number in range(1, modules + 1)]
    needs = {name: names[number - 1 : number] if number else [] for number, name in enumerate(names)}
    write_reactor(project, group, "bench-parent", "1.0.0", needs, size_kb)


def reactor(root: Path, tool: str, index: int, settings: Path, url: str, modules: int, size_kb: int) -> Scenario:
    """A chain reactor (`write_chain_reactor`) in a fresh group, and the mvn command that deploys it."""
    project = root / f"reactor-{tool}-{index}"
    write_chain_reactor(project, f"org.bbpp.bench.{tool}{uuid.uuid4().hex[:10]}", modules, size_kb)
    return project, reactor_deploy_command(project, settings, root / "m2", url)


def run(runs: int, scenario, *sizes: int) -> tuple[list[float], list[float]]:
    """Median-ready wall times of the pipe and of mvn, alternating, each on its own fresh project."""
    values = load_sandbox_env()
    url, user, token = values["SANDBOX_MAVEN_REGISTRY"], values["SANDBOX_WRITER_USER"], values["SANDBOX_WRITER_TOKEN"]
    pipe_times, mvn_times = [], []
    with tempfile.TemporaryDirectory(prefix="bench-maven-") as temp:
        root = Path(temp)
        settings = maven_settings(root, user, token)
        for index in range(runs):
            for tool in ("pipe", "mvn"):
                project, command = scenario(root, tool, index, settings, url, *sizes)
                if tool == "pipe":
                    env = pipe_command_env(project, url, user, token)
                    pipe_times.append(timed([sys.executable, "-m", "pipe"], project, env))
                else:
                    mvn_times.append(timed(command, root, dict(os.environ)))
    return pipe_times, mvn_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--attached", type=int, default=20)
    parser.add_argument("--modules", type=int, default=20, help="jar modules of the reactor (plus its parent)")
    parser.add_argument("--kb", type=int, default=64, help="random payload per jar, KiB")
    args = parser.parse_args()
    pipe, mvn = (statistics.median(t) for t in run(args.runs, single_pom, args.attached, args.kb))
    print(
        f"Maven deploy: POM + main jar + {args.attached} attached jars ({args.kb} KiB each), {args.runs} runs, median"
    )
    print(f"{'tool':<36}{'wall time':>12}")
    print(f"{'pipe (python -m pipe)':<36}{pipe:>11.2f}s")
    print(f"{'mvn deploy:deploy-file':<36}{mvn:>11.2f}s")
    print(f"pipe is {mvn / pipe:.1f}x faster ({args.attached + 2} files, each with checksums, plus metadata)")
    pipe, mvn = (statistics.median(t) for t in run(args.runs, reactor, args.modules, args.kb))
    print(f"\nMaven reactor: parent + {args.modules} jar modules ({args.kb} KiB each), {args.runs} runs, median")
    print(f"{'tool':<36}{'wall time':>12}")
    print(f"{'pipe (python -m pipe)':<36}{pipe:>11.2f}s")
    print(f"{'mvn jar:jar deploy:deploy (reactor)':<36}{mvn:>11.2f}s")
    print(f"pipe is {mvn / pipe:.1f}x faster ({2 * args.modules + 1} files, each with checksums, plus metadata)")


if __name__ == "__main__":
    main()

"""The Pipelines run the pipe is part of: what it was started for (tag, branch, commit, build
number, repository) and the paths Pipelines gives a pipe (clone folder, output variables file,
pipe storage folder). Named for the run, not `BUILD_CONTEXT` (the Docker build folder)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipe.versioning import SemVer


@dataclass(frozen=True)
class PipelinesRun:
    tag: str | None
    branch: str | None
    commit: str | None
    build_number: str | None
    workspace: str | None
    repo_slug: str | None
    clone_dir: str | None
    git_origin: str | None
    variables_path: str | None = None  # where output variables go (BITBUCKET_PIPELINES_VARIABLES_PATH)
    storage_dir: str | None = None  # the pipe's own storage folder (BITBUCKET_PIPE_STORAGE_DIR)
    shared_storage_dir: str | None = None  # every pipe's storage (BITBUCKET_PIPE_SHARED_STORAGE_DIR)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PipelinesRun:
        def value(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        return cls(
            tag=value("BITBUCKET_TAG"),
            branch=value("BITBUCKET_BRANCH"),
            commit=value("BITBUCKET_COMMIT"),
            build_number=value("BITBUCKET_BUILD_NUMBER"),
            workspace=value("BITBUCKET_WORKSPACE"),
            repo_slug=value("BITBUCKET_REPO_SLUG"),
            clone_dir=value("BITBUCKET_CLONE_DIR"),
            git_origin=value("BITBUCKET_GIT_HTTP_ORIGIN"),
            variables_path=value("BITBUCKET_PIPELINES_VARIABLES_PATH"),
            storage_dir=value("BITBUCKET_PIPE_STORAGE_DIR"),
            shared_storage_dir=value("BITBUCKET_PIPE_SHARED_STORAGE_DIR"),
        )

    @property
    def storage_dirs(self) -> list[str]:
        """Folders Pipelines fills with pipes' storage during the step."""
        return [folder for folder in (self.storage_dir, self.shared_storage_dir) if folder]

    @property
    def short_commit(self) -> str | None:
        return self.commit[:7] if self.commit else None

    @property
    def tag_version(self) -> SemVer | None:
        """The semantic version a tag pipeline was started for (`v1.2.3` → 1.2.3), if any."""
        return SemVer.parse(self.tag) if self.tag else None

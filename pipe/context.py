"""What Pipelines tells about the build: tag, branch, commit, build number, repository."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipe.versioning import SemVer


@dataclass(frozen=True)
class BuildContext:
    tag: str | None
    branch: str | None
    commit: str | None
    build_number: str | None
    workspace: str | None
    repo_slug: str | None
    clone_dir: str | None
    git_origin: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BuildContext:
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
        )

    @property
    def short_commit(self) -> str | None:
        return self.commit[:7] if self.commit else None

    @property
    def tag_version(self) -> SemVer | None:
        """The semantic version a tag pipeline was started for (`v1.2.3` → 1.2.3), if any."""
        return SemVer.parse(self.tag) if self.tag else None

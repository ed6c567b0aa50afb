"""The one exception family the pipe raises on purpose.

Every message is read by a person looking at a failed pipeline, so it says what happened
*and* what to do about it. Only the entry point (`pipe.cli`) prints them.
"""


class PipeError(Exception):
    """Base of every error the pipe reports to the user as a single ✖ line."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(PipeError):
    """A pipe variable is missing, malformed or contradicts another one."""


class InputError(PipeError):
    """The files the pipe was pointed at (Dockerfile, package.json, pom.xml, …) are unusable."""


class RegistryError(PipeError):
    """The registry refused a request or could not be reached. `transient`: another try of the
    same request may succeed (a caller with a retry loop may make it, see `pipe.http.retry`);
    `retry_after`: the seconds the registry asked to wait first (`Retry-After`), if it said."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = transient
        self.retry_after = retry_after


class ConflictError(PipeError):
    """The version is already published with different content: releases are immutable."""


class EngineError(PipeError):
    """The Docker engine is unreachable or failed a build/push."""

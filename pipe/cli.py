"""The pipe's front door and its only error boundary.

It builds the configuration from the environment it is given, picks the publisher, and is the
only place that prints ✔/✖ and decides the exit code. Every line goes through the secret mask.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipe import __version__
from pipe.config import CREDENTIAL_VARIABLES, Config, load_config
from pipe.errors import PipeError
from pipe.logs import configure_logging
from pipe.masking import SecretMasker
from pipe.outputs import Publication, write_summary, write_variables

if TYPE_CHECKING:
    from pipe.config import HTTPTransport

# Imported only when chosen, so a run pays for its own publisher alone (docker-py is slow to import).
PUBLISHERS = {"docker": "pipe.containers.publish", "npm": "pipe.npm.publish", "maven": "pipe.maven.publish"}
CLEANERS = {"docker": "pipe.containers.cleanup", "npm": "pipe.npm.cleanup", "maven": "pipe.maven.cleanup"}


INTERRUPTED = {
    False: "interrupted before the publish finished: re-run the step; completed uploads are reused.",
    True: "interrupted before the cleanup finished: re-run the step; it deletes what is left.",
}


def seed_masker(env: Mapping[str, str]) -> SecretMasker:
    """Register the credentials before anything can print, so that even an error about a
    malformed variable cannot show the token."""
    masker = SecretMasker()
    username, token = (env.get(name) or "" for name in CREDENTIAL_VARIABLES)
    masker.add(token.strip(), username.strip() or None)
    return masker


def publish(config: Config, masker: SecretMasker, log: logging.Logger) -> Publication:
    if config.action == "cleanup":
        return importlib.import_module(CLEANERS[config.package_type]).cleanup(config, log, masker)
    publisher = importlib.import_module(PUBLISHERS[config.package_type])
    return publisher.publish(config, log, masker)


def record_results(config: Config, publication: Publication) -> None:
    write_variables(config.context.variables_path, publication.variables)
    write_summary(
        config.context.storage_dir,
        {
            "pipe_version": __version__,
            "action": config.action,
            "package_type": config.package_type,
            "dry_run": config.dry_run,
            "summary": publication.summary,
            "outputs": dict(publication.variables),
            "details": dict(publication.details),
        },
    )


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stream: TextIO | None = None,
    transport: HTTPTransport | None = None,
) -> int:
    """One run. `transport` replaces the network for every registry client (`Config.transport`):
    None, the real one; tests hand in their fake registry here."""
    env = dict(os.environ if environ is None else environ)
    out = stream or sys.stdout
    masker = seed_masker(env)
    # DEBUG is validated with the rest of the config; here only the log level is decided early.
    debug = str(env.get("DEBUG", "")).strip().lower() == "true"
    log = configure_logging(masker, debug, out)

    def say(mark: str, text: str) -> None:
        print(f"{mark} {masker.mask(one_line(text))}", file=out, flush=True)

    try:
        config = load_config(env, (cwd or Path.cwd()).resolve())
        if transport is not None:
            config = replace(config, transport=transport)
        log.debug("bitbucket-packages-publish %s, %s", __version__, config.credentials)
        publication = publish(config, masker, log)
        record_results(config, publication)
    except PipeError as error:
        say("✖", error.message)
        return 1
    except KeyboardInterrupt:
        say("✖", INTERRUPTED[str(env.get("ACTION", "")).strip().lower() == "cleanup"])
        return 1
    except Exception as error:  # noqa: BLE001 - the boundary: nothing escapes as a traceback
        if debug:
            print(masker.mask(traceback.format_exc()), file=out, flush=True)
        say(
            "✖",
            f"unexpected error ({type(error).__name__}: {error}): re-run with DEBUG: 'true' for details, "
            "and report it with that output.",
        )
        return 1
    say("✔", publication.summary)
    return 0

"""Logging set-up: one stream, every line masked, debug lines only with DEBUG=true."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pipe.masking import MaskingFilter, SecretMasker

LOGGER_NAME = "pipe"


class _LineFormatter(logging.Formatter):
    """Info lines are plain sentences; warnings and debug lines say what they are."""

    PREFIXES = {logging.WARNING: "⚠ ", logging.ERROR: "✖ ", logging.DEBUG: "DEBUG: "}

    def format(self, record: logging.LogRecord) -> str:
        line = self.PREFIXES.get(record.levelno, "") + record.getMessage()
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def configure_logging(masker: SecretMasker, debug: bool, stream: TextIO | None = None) -> logging.Logger:
    """Route the pipe's logger *and* the root logger (urllib3, docker) through one masked
    handler. Handlers installed earlier (the toolkit adds one to the root logger on import)
    are removed so that no line can bypass the mask."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_LineFormatter())
    handler.addFilter(MaskingFilter(masker))

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries stay quiet unless DEBUG=true; even then their lines pass the mask.
    root.setLevel(logging.DEBUG if debug else logging.WARNING)

    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    return logger

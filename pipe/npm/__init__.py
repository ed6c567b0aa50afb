"""Publisher for PACKAGE_TYPE=npm (not implemented yet)."""

from __future__ import annotations

import logging

from pipe.config import Config
from pipe.errors import PipeError
from pipe.masking import SecretMasker
from pipe.outputs import Publication


def publish(config: Config, log: logging.Logger, masker: SecretMasker) -> Publication:
    raise PipeError("PACKAGE_TYPE=npm is not implemented yet in this version of the pipe.")

"""Fixtures of the bad-input suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_nsaudio_logging() -> Iterator[None]:
    """main() points the nsaudio logger at this test's captured stderr: put it back after."""
    logger = logging.getLogger("nsaudio")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]

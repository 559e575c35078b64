"""The ``nsaudio`` console script and ``python -m nsaudio``: ``main()``, then a quick exit."""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

from .main import main

__all__ = ["run"]


def run() -> NoReturn:
    status = main()
    # At exit the interpreter's last garbage collections walk every object the imports made
    # (numpy's above all): 6% of the instructions of a short `nsaudio convert`. Frozen, they
    # are skipped; the rest of the shutdown (atexit, joining threads, flushing) is unchanged.
    gc.freeze()
    sys.exit(status)

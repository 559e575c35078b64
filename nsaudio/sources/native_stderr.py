"""C libraries' own stderr output, kept off the user's terminal."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["native_stderr_to_log"]

log = logging.getLogger("nsaudio.sources")


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Catch what C code writes on file descriptor 2 meanwhile, and log it at debug level.

    C libraries print straight to fd 2 with no way to quiet them: libmpg123 inside libsndfile
    ("Note: Illegal Audio-MPEG-Header", libsndfile issue 958), ALSA listing every card it
    fails to probe when PortAudio starts. On stderr that would break nsaudio's one-line
    errors; at -vv the text is still there, as debug lines. A line of nsaudio's own written
    by another thread meanwhile is passed on.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with tempfile.TemporaryFile() as spool:
            os.dup2(spool.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                spool.seek(0)
                text = spool.read().decode("utf-8", "replace")
    finally:
        os.close(saved)
    for line in text.splitlines():
        if line.startswith("nsaudio:"):
            sys.stderr.write(line + "\n")
        elif line.strip():
            log.debug("libsndfile: %s", line.strip())

"""C libraries' own stderr output, kept off the user's terminal.

C libraries print with ``fprintf(stderr, ...)`` and offer no way to stop them: libmpg123
inside libsndfile ("Note: Illegal Audio-MPEG-Header", libsndfile issue 958, and libsndfile
exposes no libmpg123 setting), ALSA listing every card it fails to probe when PortAudio
starts. On stderr that would break nsaudio's one-line errors; at -vv the text is still there,
as debug lines.

What is redirected is C's ``stderr`` stream (stdio's ``FILE *``), never file descriptor 2.
Python's writes (nsaudio's own messages, tracebacks), other threads and child processes keep
the real stderr all along, so the redirect can be held for as long as a file is decoded
without delaying or losing a line. Holders may nest and overlap on any threads: a
process-wide lock and a count; the first holder installs the spool, the last puts C's
stream back and logs what was written meanwhile. Where C's stream cannot be reached (no
``stderr`` or ``__stderrp`` symbol), nothing is redirected and the notes reach stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["native_stderr_to_log"]

log = logging.getLogger("nsaudio.sources")

_IONBF = 2  # setvbuf's "unbuffered", the same value in glibc, musl and the BSDs

_lock = threading.Lock()
_holders = 0
_stream: Any = None  # ctypes view of C's ``stderr`` variable, once found
_original: int | None = None  # C's own stderr stream, put back by the last holder
_spool_fd = -1  # a deleted temporary file, open for the life of the process
_spool_stream: int | None = None  # an unbuffered, appending FILE * on it
_unavailable = False


def _setup() -> bool:
    """Find C's ``stderr`` and make the spool stream, once; False where that cannot be done."""
    global _stream, _spool_fd, _spool_stream, _unavailable
    if _stream is not None:
        return True
    if _unavailable:
        return False
    try:
        libc = ctypes.CDLL(None)
        for name in ("stderr", "__stderrp"):  # glibc and musl; macOS and the BSDs
            try:
                stream = ctypes.c_void_p.in_dll(libc, name)
                break
            except ValueError:
                continue
        else:
            raise OSError("no stderr symbol")
        fdopen, setvbuf = libc.fdopen, libc.setvbuf
        fdopen.restype, fdopen.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_char_p]
        setvbuf.restype = ctypes.c_int
        setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
        # A bare descriptor, not a file object: it stays open until the process ends.
        spool, path = tempfile.mkstemp(prefix="nsaudio-stderr-")
        os.unlink(path)
        fd = os.dup(spool)
        # Appending: once the spool is emptied (truncated), the next note goes to its start.
        handle = fdopen(fd, b"a")
        if not handle:
            os.close(fd)
            os.close(spool)
            raise OSError("fdopen failed")
        setvbuf(handle, None, _IONBF, 0)
    except (OSError, AttributeError, TypeError, ValueError) as err:
        log.debug("C's stderr cannot be redirected here (%s): C libraries' notes stay", err)
        _unavailable = True
        return False
    _stream, _spool_fd, _spool_stream = stream, spool, handle
    return True


def _acquire() -> bool:
    global _holders, _original
    with _lock:
        if not _setup():
            return False
        if _holders == 0:
            _original = _stream.value
            _stream.value = _spool_stream
        _holders += 1
        return True


def _release() -> str:
    """Let go; the last holder gets back what C code wrote meanwhile."""
    global _holders
    with _lock:
        _holders -= 1
        if _holders:
            return ""
        _stream.value = _original
        data = os.pread(_spool_fd, os.fstat(_spool_fd).st_size, 0)
        os.ftruncate(_spool_fd, 0)
    return data.decode("utf-8", "replace")


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Catch what C code writes on its ``stderr`` stream meanwhile; log it at debug level."""
    if not _acquire():
        yield
        return
    try:
        yield
    finally:
        text = _release()
        for line in text.splitlines():
            if line.strip():
                log.debug("C library: %s", line.strip())

"""Ctrl-C for every command: the first stops cleanly, the second aborts."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .exits import EXIT_INTERRUPTED  # the status of a run ended by Ctrl-C or SIGTERM

__all__ = ["EXIT_INTERRUPTED", "Interrupted", "first_interrupt_stops"]


class Interrupted:
    """True once a SIGINT or SIGTERM has arrived."""

    def __init__(self) -> None:
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0


@contextlib.contextmanager
def first_interrupt_stops(stop: Callable[[], None]) -> Iterator[Interrupted]:
    """The first SIGINT or SIGTERM says so on stderr and calls ``stop()`` (which only asks:
    the run then ends cleanly, keeping what it has); the second raises KeyboardInterrupt,
    which aborts. Off the main thread, where Python cannot take signals, nothing changes.
    """
    interrupted = Interrupted()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum: int, frame: Any) -> None:
        interrupted.count += 1
        if interrupted.count > 1:
            raise KeyboardInterrupt
        stop()  # first: it may take down a status line that the message would tear
        sys.stderr.write("\nnsaudio: stopping (Ctrl-C again to abort)\n")
        sys.stderr.flush()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""Ctrl-C for every command: the first stops cleanly, the second aborts."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .exits import EXIT_INTERRUPTED  # the status of a run ended by Ctrl-C or SIGTERM

__all__ = ["EXIT_INTERRUPTED", "Interrupted", "first_interrupt_stops", "stopping_message"]


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
        sys.stderr.write(stopping_message(signum, _is_terminal(sys.stderr)))
        sys.stderr.flush()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for sig, old in previous.items():
            # Once stopping, what is left (closing the outputs, the summary) is short and
            # must not be torn by a second signal arriving just as the stream ended.
            signal.signal(sig, signal.SIG_IGN if interrupted else old)


def stopping_message(signum: int, terminal: bool) -> str:
    """What the first signal prints: Ctrl-C's words for SIGINT, a service manager's for
    SIGTERM (nobody pressed a key). On a terminal it starts on a fresh line, below the
    ``^C`` the terminal echoed; in a log file or a pipe there is no such echo to step over.
    """
    if signum == signal.SIGTERM:
        text = "nsaudio: terminated (SIGTERM): stopping; a second SIGTERM aborts\n"
    else:
        text = "nsaudio: stopping (Ctrl-C again to abort)\n"
    return "\n" + text if terminal else text


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced by an object without one, or closed
        return False

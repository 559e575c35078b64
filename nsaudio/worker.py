"""A thread whose error is handed to whoever joins it.

Python threads swallow what their target raises (it is printed, then lost); nsaudio's
threads (the file reader, the writer behind the resampler, ``results()``' pipeline, the
local server's loop) must instead hand their failure to the thread that owns the run,
which raises it. :class:`Worker` is that hand-off, written once::

    worker = Worker(read, "nsaudio-reader", on_error=lambda err: ring.abort()).start()
    ...
    worker.join()
    worker.raise_error()  # what read() raised, on this thread
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Worker"]


class Worker:
    """Runs ``target()`` on a daemon thread named ``name``.

    Whatever it raises (``BaseException``: a ``KeyboardInterrupt`` or ``SystemExit`` on that
    thread must not vanish either) is kept in :attr:`error` and, first, passed to
    ``on_error`` on the worker's own thread: the place to wake whoever waits for this worker
    (abort a ring, an event). ``ignore`` names exceptions that mean a normal end (a ring the
    consumer closed): neither kept nor passed on.
    """

    def __init__(
        self,
        target: Callable[[], object],
        name: str,
        *,
        on_error: Callable[[BaseException], object] | None = None,
        ignore: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._target = target
        self._on_error = on_error
        self._ignore = ignore
        #: What ``target`` raised, once it has.
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._target()
        except self._ignore:
            pass
        except BaseException as err:
            self.error = err
            if self._on_error is not None:
                self._on_error(err)

    def start(self) -> Worker:
        self.thread.start()
        return self

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (at most ``timeout`` seconds)."""
        self.thread.join(timeout)

    def raise_error(self) -> None:
        """Raise what ``target`` raised, if it did (call after :meth:`join`)."""
        if self.error is not None:
            raise self.error

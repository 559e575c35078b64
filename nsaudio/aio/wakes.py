"""Wake-ups between a caller's event loop and the socket loop, batched per caller loop.

Each ``call_soon_threadsafe`` from one thread to another loop writes to that loop's
self-pipe, and the woken thread takes the GIL from the caller: done per frame or per result,
hundreds of streams made the two loops trade the GIL on every frame (0.36 ms a frame at 300
streams, most of the caller's time). So both directions are batched per caller loop:

- :class:`Wakes`: the streams given frames during one turn of the caller's loop wake the
  socket loop together, when the turn ends or once ``BATCH`` of them wait;
- :class:`Looks`: the streams the socket loop asks to look again (a result, room in a ring,
  the end) are woken on their loop by one ``call_soon_threadsafe`` for all of them.

Both are kept per loop (:func:`per_loop`), weakly, so a finished loop is not kept alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from typing import Protocol

from ..sinks.loop import SocketLoop

__all__ = ["Looks", "PerLoop", "Wakes", "per_loop"]


class _Wakeable(Protocol):
    """A sink given frames without waking the socket loop (``offer(frame, wake=False)``)."""

    def wake(self) -> None: ...


class _Lookable(Protocol):
    """A stream whose waiters look again when this is called, on its own loop."""

    def _woken(self) -> None: ...


class Wakes:
    """One caller loop's streams that were given frames during this turn of the loop: the
    socket loop is told about them together, with one wake-up, when the turn ends or once
    ``BATCH`` of them wait (a long turn, a clock sending to hundreds of streams, must not
    hold the first frames back until its last send)."""

    #: Streams told in one wake-up at most.
    BATCH = 16

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: this is the value of a WeakKeyDictionary keyed by the loop.
        self.loop = weakref.ref(loop)
        self.sinks: dict[int, _Wakeable] = {}
        self.scheduled = False

    def add(self, sink: _Wakeable) -> None:
        self.sinks[id(sink)] = sink
        if len(self.sinks) >= self.BATCH:
            self.flush()
        elif not self.scheduled:
            loop = self.loop()
            if loop is None:  # cannot happen while a stream on it sends
                self.flush()
                return
            self.scheduled = True
            loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self.scheduled = False
        self.flush()

    def flush(self) -> None:
        if not self.sinks:
            return
        sinks, self.sinks = self.sinks, {}
        with SocketLoop.get().held():
            for sink in sinks.values():
                sink.wake()


class Looks:
    """The other way: one caller loop's streams that the socket loop (or any thread) asked to look
    again, woken together by one ``call_soon_threadsafe``: each such call writes to the loop's
    self-pipe and hands it the GIL, and hundreds of streams get results in the same moment."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # weakly, as Wakes
        self.streams: dict[int, _Lookable] = {}
        self.lock = threading.Lock()

    def request(self, stream: _Lookable) -> None:
        """From any thread: ``stream`` looks again soon, on its loop."""
        with self.lock:
            first = not self.streams
            self.streams[id(stream)] = stream
        loop = self.loop()
        if first and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(self.run)

    def run(self) -> None:
        with self.lock:
            streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream._woken()


class PerLoop:
    """A loop's :class:`Wakes` and :class:`Looks`, made on first use."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.wakes = Wakes(loop)
        self.looks = Looks(loop)


_PER_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PerLoop] = (
    weakref.WeakKeyDictionary()
)


def per_loop(loop: asyncio.AbstractEventLoop) -> PerLoop:
    """``loop``'s batches, made on first use."""
    got = _PER_LOOP.get(loop)
    if got is None:
        got = _PER_LOOP[loop] = PerLoop(loop)
    return got

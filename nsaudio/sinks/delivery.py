"""Results from the socket loop to their consumer, on a bounded path of their own.

The loop never waits for a consumer: a slow one cannot delay pongs or sends. Partials that a
newer partial replaced before anyone took them are dropped (each replaces the one before
anyway); full results are never dropped while someone consumes them: if ``capacity`` of them
pile up, the consumer has fallen hopelessly behind and the stream ends with an error.
Nobody consuming at all (no ``on_result``, ``results()`` never called) keeps the newest
``capacity`` results.

With ``on_result``, a thread of its own calls it; if it raises (a closed stdout pipe, a bug),
the failure is handed to ``on_failure`` once and no further result is delivered. Without it,
a consumer iterates (a thread) or, never waiting, calls ``take_all()`` whenever ``on_ready``
says something changed (the asyncio API, whose loop must not block).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..neuralspace.protocol import TranscriptResult

__all__ = ["Delivery"]

log = logging.getLogger("nsaudio.neuralspace")

_END = object()


class Delivery:
    def __init__(
        self,
        on_result: Callable[[TranscriptResult], None] | None,
        on_failure: Callable[[BaseException], None],
        capacity: int = 1000,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """``on_ready``: called (on the putting thread, after the lock is released) whenever a
        result was queued or the delivery ended or stopped; it must not block."""
        if capacity < 2:
            raise ValueError(f"delivery capacity must be at least 2, not {capacity}")
        self.on_result = on_result
        self.on_failure = on_failure
        self.capacity = capacity
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._consumed = on_result is not None
        self._stopped = False
        self._ended = False
        self._calling = threading.Lock()
        self.on_ready = on_ready
        self.failure: BaseException | None = None
        self.dropped = 0
        self._thread: threading.Thread | None = None
        if on_result is not None:
            self._thread = threading.Thread(
                target=self._call_loop, name="nsaudio-delivery", daemon=True
            )
            self._thread.start()

    def put(self, result: TranscriptResult) -> bool:
        """Queue ``result`` (never blocks); False if a consumer fell ``capacity`` behind."""
        with self._cond:
            if self._stopped or self._ended:
                return True
            items = self._items
            if not result.full and items and not items[-1].full:
                items[-1] = result  # a partial not yet taken is replaced by the next
            elif len(items) >= self.capacity:
                if self._consumed:
                    return False
                items.popleft()
                self.dropped += 1
                items.append(result)
            else:
                items.append(result)
            self._cond.notify()
        self._ready()
        return True

    def _ready(self) -> None:
        if self.on_ready is not None:
            self.on_ready()

    def take_all(self) -> tuple[list[TranscriptResult], bool]:
        """Everything queued, without waiting, and whether that is the last of it (ended or
        stopped). Makes the caller a consumer, as iterating does."""
        with self._cond:
            self._consumed = True
            items = list(self._items)
            self._items.clear()
            return items, self._ended or self._stopped

    def end(self) -> None:
        """No more results: the consumer ends after taking what is queued."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        self._ready()

    def stop(self) -> None:
        """Deliver nothing more; once this returns, no ``on_result`` call is under way.

        From the delivering thread itself (``abort()`` in a callback) it cannot wait for the
        call it is inside; from elsewhere it waits for a call in progress, up to 5 s.
        """
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._cond.notify_all()
        self._ready()
        if threading.current_thread() is not self._thread and self._calling.acquire(timeout=5):
            self._calling.release()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _next(self) -> Any:
        with self._cond:
            while not self._items and not self._ended and not self._stopped:
                self._cond.wait()
            if self._stopped or not self._items:
                return _END
            return self._items.popleft()

    def __iter__(self) -> Iterator[TranscriptResult]:
        with self._cond:
            self._consumed = True
        while (item := self._next()) is not _END:
            yield item

    def _call_loop(self) -> None:
        assert self.on_result is not None
        while (item := self._next()) is not _END:
            with self._calling:
                if self._stopped:
                    return
                try:
                    self.on_result(item)
                except BaseException as err:  # reported once by the sink, never a traceback
                    self.failure = err
                    with self._cond:
                        self._stopped = True
                        self._items.clear()
                    self.on_failure(err)
                    return

"""A bounded single-producer/single-consumer queue of audio, sized in samples.

Two policies:

- ``block``: a full ring makes the producer wait (files: backpressure, nothing dropped).
- ``drop_oldest``: a full ring discards its oldest items to make room (live sources: latency
  stays bounded). Every drop is counted; for items that carry a stream position
  (``start``), where: ``dropped_spans``.

``close()`` marks the end of the stream: the consumer drains what is left, then ``get()``
returns ``None``. ``abort()`` also discards what is queued and wakes a blocked producer.
A producer that must never block (an asyncio task) uses ``offer()``: it queues the item, or
leaves a callback that the consumer's next ``get()`` calls once it has made room.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from .errors import RingClosed

__all__ = ["MAX_DROPPED_SPANS", "POLICIES", "Ring"]

POLICIES = ("block", "drop_oldest")
#: Dropped spans kept for a report; past this, drops are still counted but not placed.
MAX_DROPPED_SPANS = 100


class _Sized(Protocol):
    def __len__(self) -> int: ...


T = TypeVar("T", bound=_Sized)


class Ring(Generic[T]):
    """Bounded SPSC queue whose capacity counts samples (``len(item)``), not items.

    An item larger than the whole capacity is still accepted once the ring is empty, so a
    large block never deadlocks a small ring.

    ``capacity``: samples it holds (a positive int); ``policy``: what ``put()`` does when
    full: ``"block"`` waits for room (files: backpressure, nothing lost), ``"drop_oldest"``
    drops the oldest items to make room and counts them (``dropped``, ``dropped_samples``,
    ``dropped_spans``: live audio keeps its latency). A bad capacity or policy is a
    programmer's error: ``ValueError``.
    """

    def __init__(self, capacity: int, policy: str = "block") -> None:
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(
                f"ring capacity must be a positive number of samples, not {capacity!r}"
            )
        if policy not in POLICIES:
            raise ValueError(f"ring policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.capacity = capacity
        self.policy = policy
        self._items: deque[T] = deque()
        self._size = 0
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0
        self.dropped_samples = 0
        #: ``(start, end)`` stream positions of what was dropped, adjacent drops merged.
        self.dropped_spans: list[tuple[int, int]] = []
        self.high_water = 0
        self._on_room: Callable[[], None] | None = None

    @classmethod
    def for_seconds(cls, seconds: float, rate: int, policy: str = "block") -> Ring[T]:
        """A ring holding ``seconds`` of audio at ``rate`` Hz (at least one sample)."""
        return cls(max(1, round(seconds * rate)), policy)

    def __len__(self) -> int:
        return self._size

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Queue ``item``; returns False only if ``block`` timed out waiting for room."""
        n = len(item)
        with self._cond:
            if self._closed:
                raise RingClosed("put into a closed ring")
            if self.policy == "block":
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._size and self._size + n > self.capacity:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                    if self._closed:
                        raise RingClosed("ring closed while waiting for room")
            else:
                while self._items and self._size + n > self.capacity:
                    old = self._items.popleft()
                    self._size -= len(old)
                    self.dropped += 1
                    self.dropped_samples += len(old)
                    self._note_drop(old)
            self._items.append(item)
            self._size += n
            if self._size > self.high_water:
                self.high_water = self._size
            self._cond.notify_all()
            return True

    def offer(self, item: T, on_room: Callable[[], None]) -> bool:
        """Queue ``item`` without ever waiting: True if queued. False when a ``block`` ring is
        full: nothing was queued, and ``on_room()`` will be called once, from the thread that
        next takes an item out (or closes the ring), so the producer can try again then.

        Checking for room and leaving the callback happen under one lock: a ``get()`` between
        them cannot go unnoticed. ``on_room`` must not block or call into this ring.
        """
        with self._cond:
            if self._closed:
                raise RingClosed("put into a closed ring")
            if self.policy == "block" and self._size and self._size + len(item) > self.capacity:
                self._on_room = on_room
                return False
            return self.put(item)  # there is room: this does not wait (the lock is reentrant)

    def _room_made(self) -> None:
        """Call (outside the lock) the callback ``offer()`` left, if any."""
        with self._cond:
            on_room, self._on_room = self._on_room, None
        if on_room is not None:
            on_room()

    def _note_drop(self, item: T) -> None:
        start = getattr(item, "start", None)
        if start is None:
            return
        spans, start = self.dropped_spans, int(start)
        end = start + len(item)
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        elif len(spans) < MAX_DROPPED_SPANS:
            spans.append((start, end))

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item; ``None`` at end of stream (closed and drained) or on timeout."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._size -= len(item)
            self._cond.notify_all()
            waiting = self._on_room is not None
        if waiting:
            self._room_made()
        return item

    def close(self) -> None:
        """End of stream: no more puts; the consumer drains what is queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._room_made()  # an offer() waiting for room learns that none will come

    def abort(self) -> None:
        """Close and discard what is queued (the consumer is gone)."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._size = 0
            self._cond.notify_all()
        self._room_made()

    @property
    def at_end(self) -> bool:
        """True once closed and drained."""
        with self._cond:
            return self._closed and not self._items

    def __iter__(self) -> Iterator[T]:
        while (item := self.get()) is not None:
            yield item

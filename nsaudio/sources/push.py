"""A source your own threaded code writes into: a callback of another audio library, a queue
drained by a thread of yours, a network receiver.

``write()`` may be called from any thread (and from several: writes are queued whole, in the
order they were made); ``blocks()`` is read by the pipeline. Between them, a bounded ring:

- ``live=False`` (audio that can wait: a file read by your code, a recording): a full ring
  makes ``write()`` wait, so nothing is ever dropped;
- ``live=True`` (audio that cannot wait: a device callback, a call): ``write()`` never waits;
  a full ring drops its oldest audio, which the pipeline counts and reports at the end as
  :class:`~nsaudio.errors.AudioLostError`, exactly as for a microphone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from ..blocks import Block
from ..errors import InputError, RingClosed
from ..ring import Ring
from .chunks import ChunkFormat

__all__ = ["PushSource"]


class PushSource:
    """Audio written by the caller: ``write(chunk)`` any number of times, then ``end()``.

    Use it with :class:`~nsaudio.runner.Pipeline` like any source (``standard_stages(source,
    ...)`` picks the resampler from ``rate`` and ``channels``); run the pipeline on one thread
    and write from another.
    """

    def __init__(
        self,
        rate: int,
        channels: int = 1,
        dtype: str = "float32",
        *,
        live: bool = False,
        ring_seconds: float = 2.0,
        name: str = "push",
    ) -> None:
        """``rate``, ``channels``, ``dtype`` (int16, int32, float32 or float64): what every
        chunk holds (arrays of that dtype, shape ``(frames,)`` for mono or ``(frames,
        channels)``, or bytes of interleaved little-endian frames); ``live``: drop the
        oldest audio instead of waiting when the pipeline falls ``ring_seconds`` behind;
        ``name``: what messages call it."""
        self.format = ChunkFormat(rate, channels, dtype, name)
        if not ring_seconds > 0:
            raise InputError(f"{name}: ring_seconds must be positive, not {ring_seconds}")
        self.rate = rate
        self.channels = channels
        self.live = live
        self.name = name
        self._ring: Ring[Block] = Ring.for_seconds(
            ring_seconds, rate, "drop_oldest" if live else "block"
        )
        self._lock = threading.Lock()  # one write at a time: positions follow the order
        self._written = 0
        self._ended = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"PushSource({self.rate}, {self.channels}, {self.format.dtype_name!r}, live={self.live})"

    def write(self, chunk: Any) -> bool:
        """Queue ``chunk`` (an array or bytes, any number of frames). True once queued;
        False when the pipeline has stopped (``stop()``: the audio is not wanted). Checked
        whole first: a bad chunk raises ``InputError`` and nothing of it is queued, and so
        does a write after ``end()``. Not live, it waits while the ring is full."""
        data = self.format.samples(chunk)
        with self._lock:
            if self._ended:
                raise InputError(f"{self.name}: write() after end()")
            if self._stopped:
                return False
            if not len(data):
                return True
            block = Block(data, self._written, self.rate, time.monotonic_ns())
            self._written += len(data)
            try:
                self._ring.put(block)
            except RingClosed:  # stop() while waiting for room
                return False
        return True

    def end(self) -> None:
        """No more audio: the pipeline takes what is queued, flushes its stages and drains.
        Idempotent."""
        with self._lock:
            self._ended = True
        self._ring.close()

    def stop(self) -> None:
        """The pipeline's side: end ``blocks()`` after what is queued (``Pipeline.stop()``).
        Later writes are refused with False. Safe from any thread."""
        self._stopped = True
        self._ring.close()

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        """What was written, in order, until ``end()`` or ``stop()``; a live ring's drops
        show as jumps in the positions, which the pipeline counts."""
        yield from self._ring

    @property
    def written_frames(self) -> int:
        """Frames written so far (dropped ones included)."""
        return self._written

    @property
    def dropped_frames(self) -> int:
        """Frames a live ring dropped because the pipeline fell behind."""
        return self._ring.dropped_samples

    def stats(self) -> dict[str, Any]:
        """What was written and what the ring dropped, for reports."""
        return {
            "written_frames": self._written,
            "dropped": self._ring.dropped,
            "dropped_frames": self._ring.dropped_samples,
            "ring_capacity": self._ring.capacity,
            "ring_high_water": self._ring.high_water,
        }

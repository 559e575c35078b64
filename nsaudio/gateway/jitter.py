"""A track's packets in media-time order: reordered within a small window, gaps left as gaps.

Pure: no clock of its own (every call takes ``now_ns``), no threads, no I/O.

A telephony platform stamps each packet with its media time (Twilio: milliseconds from the
start of the stream). That stamp, not the arrival order, decides where the audio sits in the
stream: a packet's samples are placed at ``timestamp * rate / 1000``. Packets that arrive out
of order within ``window_ms`` are put back in order. A packet that never comes leaves a gap
once the window has passed (by time, or because the audio held behind it outgrew the
window): the next block simply starts later, a jump in ``start`` that the framer and the
sink map back, so the times after it stay true. Nothing is invented to fill it. A packet
whose place was given up (it came after the window) is dropped and counted, never shifted.

Stamps are in whole milliseconds, so a packet may sit a fraction of a millisecond off where
the previous one ended; one within ``tolerance_ms`` of it continues it (the error stays
within the tolerance; it never accumulates, since a larger drift is a gap).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ..blocks import Block
from .errors import CallProtocolError

__all__ = ["MAX_JUMP_S", "JitterBuffer", "JitterStats"]

#: A packet stamped this far past the audio so far is not a gap but a broken stream.
MAX_JUMP_S = 60.0


@dataclass
class JitterStats:
    """What the buffer did: packets put back in order, dropped late, and the gaps left."""

    packets: int = 0
    reordered: int = 0
    late_packets: int = 0
    late_samples: int = 0
    gaps: int = 0
    gap_samples: int = 0


class JitterBuffer:
    """Packets in (``push``), blocks at their stream positions out.

    A packet's samples are any 1-D array, one item per sample (int16; µ-law codes as
    uint8); they go out as they came, cut only where they overlap what went out.

    Args:
        rate: the track's sample rate.
        window_ms: how long a packet waits for an earlier one that is missing, and how much
            audio may wait behind it (default 60 ms: three 20 ms packets).
        tolerance_ms: how far off the end of the previous packet a stamp may be and still
            continue it (default 2 ms: stamps are whole milliseconds).
        start: where the stream begins (media time 0).
    """

    def __init__(
        self, rate: int, *, window_ms: float = 60.0, tolerance_ms: float = 2.0, start: int = 0
    ) -> None:
        if rate <= 0 or window_ms < 0 or tolerance_ms < 0:
            raise ValueError("rate must be positive, the window and tolerance not negative")
        self.rate = rate
        self.window_ns = round(window_ms * 1e6)
        self.window_samples = round(window_ms * rate / 1000)
        self.tolerance = round(tolerance_ms * rate / 1000)
        self.max_jump = round(MAX_JUMP_S * rate)
        self.next = start  # where the next block starts: everything before went out
        self._held: list[tuple[int, int, int, np.ndarray]] = []  # (start, seq, arrival, data)
        self._seq = 0
        self._newest = start  # the furthest position any packet reached
        self.stats = JitterStats()

    @property
    def held(self) -> int:
        """Packets waiting for an earlier one."""
        return len(self._held)

    def position_of_ms(self, timestamp_ms: int) -> int:
        """A media stamp in milliseconds as a stream position (integer, rounded down)."""
        return timestamp_ms * self.rate // 1000

    def push(self, position: int, data: np.ndarray, now_ns: int) -> list[Block]:
        """One packet of ``data`` (mono samples) stamped at ``position``; what is ready."""
        self.stats.packets += 1
        n = len(data)
        if not n:
            return []
        nxt = self.next
        if not self._held and nxt - self.tolerance <= position <= nxt + self.tolerance:
            # In order, nothing waiting (nearly every packet): what _release would do with
            # it alone, without the heap.
            self.next = nxt + n
            if position + n > self._newest:
                self._newest = position + n
            return [Block(data, nxt, self.rate, now_ns)]
        return self._queue(position, data, now_ns)

    def _queue(self, position: int, data: np.ndarray, now_ns: int) -> list[Block]:
        """The general case of :meth:`push`: the packet joins the ones held, in stamp order."""
        if position - self._newest > self.max_jump:
            raise CallProtocolError(
                f"a packet stamped {(position - self._newest) / self.rate:.0f} s past the "
                "audio so far"
            )
        end = position + len(data)
        if end <= self.next - self.tolerance:  # its place went out already
            self._late(len(data))
            return []
        if self._held and position < self._held[0][0]:
            self.stats.reordered += 1
        heapq.heappush(self._held, (position, self._seq, now_ns, data))
        self._seq += 1
        self._newest = max(self._newest, end)
        return self._release(now_ns)

    def tick(self, now_ns: int) -> list[Block]:
        """What the window lets go by now (a missing packet waited long enough)."""
        return self._release(now_ns)

    def flush(self) -> list[Block]:
        """End of stream: everything held goes out, gaps and all."""
        return self._release(None)

    def _late(self, samples: int) -> None:
        self.stats.late_packets += 1
        self.stats.late_samples += samples

    def _release(self, now_ns: int | None) -> list[Block]:
        out: list[Block] = []
        held = self._held
        while held:
            start, _, arrival, data = held[0]
            if start > self.next + self.tolerance:  # something is missing before it
                oldest = min(h[2] for h in held)  # a few packets at most: the window's worth
                waited = now_ns is not None and now_ns - oldest >= self.window_ns
                outgrown = self._newest - self.next > self.window_samples
                if now_ns is not None and not waited and not outgrown:
                    break
                self.stats.gaps += 1
                self.stats.gap_samples += start - self.next
                self.next = start
            heapq.heappop(held)
            if start < self.next - self.tolerance:  # overlaps what went out: keep the rest
                cut = self.next - start
                if cut >= len(data):
                    self._late(len(data))
                    continue
                self.stats.late_samples += cut
                data = data[cut:]
            block = Block(data, self.next, self.rate, arrival)
            self.next += len(data)
            out.append(block)
        return out

"""A speech gate's recent frames, so that a display can show the frame being *sent*.

The pipeline reads ahead of a paced sender by seconds (the send queue, a decoded block), so
the gate's newest frame is not what the service is hearing now. :class:`LevelTrail` keeps
the last few thousand frames the gate labelled (once ``SpeechGate.keep_trail()`` asked for
it), each with its stream position, how much the gate had passed on after it, its level and
its label; a reader who knows how much audio went out finds where it came from
(:meth:`LevelTrail.position_of`) and that frame (:meth:`LevelTrail.at`).

One writer (the thread pushing frames through the gate), any number of readers on other
threads, no lock: a slot is a tuple replaced whole, and the count of frames written is
advanced after its slot is filled. A reader that the writer laps (thousands of frames in a
few microseconds) sees an entry out of order and drops it.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

__all__ = ["LevelTrail", "TrailEntry"]

#: Frames kept: 20 s of 10 ms frames, more than the pipeline ever runs ahead of the sender
#: (a 10 s send queue and a 4 s block at most).
DEFAULT_FRAMES = 2048


class TrailEntry(NamedTuple):
    """One frame the gate labelled: where it ends in the stream (samples at the frames'
    rate), the gate's ``passed_samples`` once it was pushed (held pre-roll passes with the
    onset after it), its level in dBFS and whether it was speech."""

    end: int
    passed: int
    level_db: float
    speech: bool


class LevelTrail:
    """The last ``size`` frames a gate labelled (see the module docstring)."""

    def __init__(self, size: int = DEFAULT_FRAMES) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1 frame, not {size}")
        self.size = size
        self._slots: list[TrailEntry | None] = [None] * size
        self.count = 0  # frames written ever

    def add(self, end: int, passed: int, level_db: float, speech: bool) -> None:
        """The writer's side: one frame, after the ones before it."""
        self._slots[self.count % self.size] = TrailEntry(end, passed, level_db, speech)
        self.count += 1

    def clear(self) -> None:
        self._slots = [None] * self.size
        self.count = 0

    def entries(self) -> list[TrailEntry]:
        """The frames kept, oldest first (safe from any thread)."""
        n, slots, size = self.count, self._slots, self.size
        out: list[TrailEntry] = []
        for i in range(max(0, n - size), n):
            entry = slots[i % size]
            if entry is not None and (not out or entry.end > out[-1].end):
                out.append(entry)
        return out

    def position_of(self, sent: int) -> int:
        """The stream position of the ``sent``-th sample of the audio the gate passed: 0
        before any was sent; the end of the frame that passed it when ``sent`` is exactly
        the end of a passed frame (the sender then waits, or a gap the gate skips follows).
        Sent audio older than the trail maps to its oldest frame, audio newer than it to its
        newest."""
        entries = self.entries()
        if sent <= 0 or not entries:
            return 0
        i = bisect.bisect_left([e.passed for e in entries], sent)
        if i == len(entries):
            return entries[-1].end
        entry = entries[i]  # the first frame after which the gate had passed `sent` or more
        if i == 0 and self.count > self.size:
            return entry.end  # older than what is kept: where it was sent from is not known
        return max(0, entry.end - (entry.passed - sent))

    def at(self, position: int) -> TrailEntry | None:
        """The frame that holds stream sample ``position`` (the newest if it is past all of
        them, the oldest if it is before), or None when nothing is kept."""
        entries = self.entries()
        if not entries:
            return None
        i = bisect.bisect_right([e.end for e in entries], position)
        return entries[min(i, len(entries) - 1)]

    def gap_end(self, passed: int) -> int | None:
        """Where the stretch after the first ``passed`` samples of passed audio ends, as far
        as the gate has seen: the end of the newest frame after which ``passed_samples`` was
        still ``passed`` (frames it skipped or held, or just the frame that passed the last of
        them). None when ``passed`` is not the end of a frame kept here."""
        entries = self.entries()
        passed_after = [e.passed for e in entries]
        i = bisect.bisect_left(passed_after, passed)
        j = bisect.bisect_right(passed_after, passed)
        if i == j:
            return None
        return entries[j - 1].end

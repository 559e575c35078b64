"""What the verdict rests on: the speech the local detector heard, and what full results covered.

Pure bookkeeping in integer stream samples, no clocks. The session machine feeds it every
frame it is handed (each labelled speech or not by the pipeline's gate) and the end of every
full result, clamped to the audio that result's session was actually sent. A span of speech
is *covered* once a full result ends after its onset and no earlier than ``tolerance``
samples before its end: the detector holds "speech" for a hangover after the last loud frame
and labels whole frames, so a service that ends a segment where the words end stops short of
the span by up to that much.

A span shorter than the tolerance is a blip (one loud frame and its hangover: a click, a
breath, a swing of the noise) that no service would transcribe: it needs no result, and is
never named as missing (it is still re-sent after a drop, like any audio not yet covered).

Only uncovered spans are kept (a covered one is forgotten), so memory follows what is
outstanding, not the length of the stream. Speech that can never be sent again (the replay
buffer let it go while no session was open) is moved to ``lost``.
"""

from __future__ import annotations

import collections

from ..blocks import Frame

__all__ = ["MAX_SPANS_NAMED", "Coverage"]

#: At most this many lost spans are remembered by position (every one is counted).
MAX_SPANS_NAMED = 100


class Coverage:
    """Speech spans heard, covered, and lost; see the module docstring."""

    def __init__(self, tolerance: int) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be 0 or more samples, not {tolerance}")
        self.tolerance = tolerance
        self.final = 0  # stream sample the full results cover up to
        self.spans: collections.deque[list[int]] = collections.deque()  # uncovered [on, end]
        self.lost: list[tuple[int, int]] = []
        self.lost_samples = 0
        self.speech_samples = 0  # heard in all
        # The newest span, once covered and forgotten: speech that goes on from its end (the
        # detector's hangover after a service finalised at a chunk boundary) is judged as
        # part of it, not as a new onset the final ended before.
        self._covered_on = self._covered_end = -1

    def heard(self, frame: Frame) -> None:
        """One frame as handed to the machine; ``frame.speech`` True makes or extends a span."""
        if not frame.speech:
            return
        self.speech_samples += frame.frames
        last = self.spans[-1] if self.spans else None
        if last is not None and last[1] == frame.start:
            last[1] = frame.end
        elif last is None and self._covered_end == frame.start:
            self.spans.append([self._covered_on, frame.end])
        else:
            self.spans.append([frame.start, frame.end])
        self._forget_covered()

    def cover(self, end: int) -> bool:
        """A full result covers the stream up to ``end``; True if that moved the coverage."""
        if end <= self.final:
            return False
        self.final = end
        self._forget_covered()
        return True

    def lose(self, start: int, end: int) -> int:
        """Audio ``[start, end)`` can never be sent again: its uncovered speech is lost.

        Returns the speech samples lost (0 when only silence went).
        """
        lost = 0
        kept: collections.deque[list[int]] = collections.deque()
        for on, off in self.spans:
            a, b = max(on, start), min(off, end)
            if a < b and not self._counts([on, off]):
                pass  # a blip: nothing that counts was lost
            elif a < b:
                lost += b - a
                if len(self.lost) < MAX_SPANS_NAMED:
                    if self.lost and self.lost[-1][1] == a:
                        self.lost[-1] = (self.lost[-1][0], b)
                    else:
                        self.lost.append((a, b))
                if on < a:
                    kept.append([on, a])
                if b < off:
                    kept.append([b, off])
            else:
                kept.append([on, off])
        self.spans = kept
        self.lost_samples += lost
        return lost

    @property
    def complete(self) -> bool:
        """Every span heard so far is covered, blips aside (lost speech aside: see ``lost``)."""
        return not any(self._counts(span) for span in self.spans)

    def _counts(self, span: list[int]) -> bool:
        return span[1] - span[0] >= self.tolerance

    def first_uncovered(self) -> int | None:
        """Where the oldest uncovered speech begins (None: all covered)."""
        return self.spans[0][0] if self.spans else None

    def uncovered(self) -> list[tuple[int, int]]:
        """The stream samples of speech no full result covers: each uncovered span, from
        where the coverage stops if it stops inside one."""
        return [(max(on, self.final), off) for on, off in self.spans if self._counts([on, off])]

    def missing(self) -> list[tuple[int, int]]:
        """Lost and uncovered speech, in stream order, touching spans merged."""
        out: list[tuple[int, int]] = []
        for a, b in sorted(self.lost + self.uncovered()):
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out

    def _forget_covered(self) -> None:
        final, tol, spans = self.final, self.tolerance, self.spans
        while spans and final > spans[0][0] and final >= spans[0][1] - tol:
            self._covered_on, self._covered_end = spans.popleft()

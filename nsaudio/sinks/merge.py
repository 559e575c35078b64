"""The results of one session per channel, merged into one stream in time order: pure.

Each channel's session returns its full results in its own time order, but the sessions
finalise independently: a customer's short reply can be finalised while the agent's long
sentence, which started earlier, is still being spoken. :class:`ResultMerger` holds each
full result back until no channel can still deliver one that starts earlier, then releases
it labelled with its channel's name, so the merged transcript is ordered by start time.

When can a channel no longer deliver a result that starts before time ``t``? Its
*watermark* says, from facts about its audio (the frames written to its session, with the
energy gate's speech labels) and its results:

- a channel that has ended (its session closed or failed): never again;
- a channel with speech it heard and no full result has covered yet (a speech run that
  began at or after the end of its last full result, or one still going more than
  ``slack`` past it): only from the end of that last full result on;
- otherwise, only in the audio it has not yet been written, less ``margin`` for a service
  that starts a segment a little before our gate hears its onset.

A channel whose heard speech no result ever covers (a cough the gate took for speech and the
service did not) holds the others back only until ``hold`` seconds of its audio have been
written past that speech. Partial results are never held: each replaces the one before, and
one late is worthless. At most ``capacity`` full results are held; past that the earliest
goes out regardless. Results of a channel that come later than what was released (the
service finalised noise the gate never heard) go out at once: late, never lost.

Positions are integer samples at ``rate``; result times are seconds, as the sessions give
them (absolute stream times, the same timeline for every channel).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Sequence

from ..neuralspace.protocol import TranscriptResult

__all__ = ["ResultMerger"]


@dataclasses.dataclass
class _Channel:
    written: int = 0  # end of the last frame written to its session
    onset: int | None = None  # where its latest speech run began
    speech_end: int | None = None  # where its latest speech frame ended
    in_speech: bool = False
    covered: float = 0.0  # end of its latest full result, seconds
    ended: bool = False


class ResultMerger:
    """Full results of several channels' sessions released in start-time order; see the
    module docstring for when. Every method returns what it releases, in order, each result
    labelled with its channel's name (``channel``)."""

    def __init__(
        self,
        names: Sequence[str],
        rate: int,
        *,
        margin: float = 1.0,
        slack: float = 1.0,
        hold: float = 15.0,
        capacity: int = 1000,
    ) -> None:
        """``names``: of the channels, by index; ``rate``: of their frames (Hz);
        ``margin``: seconds a result may start before the gate's onset; ``slack``: seconds
        a gate's speech may run past the end of the full result that covers it; ``hold``:
        seconds of a channel's audio written past speech no result covers before it no
        longer holds the others; ``capacity``: full results held at most."""
        if not names:
            raise ValueError("nothing to merge: no channels")
        if rate <= 0 or min(margin, slack, hold) < 0 or capacity < 1:
            raise ValueError(
                "rate and capacity must be positive, margin, slack and hold not negative"
            )
        self.names = list(names)
        self.rate = rate
        self.margin, self.slack, self.hold, self.capacity = margin, slack, hold, capacity
        self._channels = [_Channel() for _ in names]
        self._held: list[tuple[float, int, int, TranscriptResult]] = []
        self._order = itertools.count()  # ties in start and channel: arrival order

    @property
    def held(self) -> int:
        """Full results waiting for the other channels."""
        return len(self._held)

    def frame(
        self, channel: int, start: int, end: int, speech: bool | None
    ) -> list[TranscriptResult]:
        """A frame from ``start`` to ``end`` went to ``channel``'s session; ``speech`` is the
        gate's label (None, no gate: taken as speech, so nothing is released on a guess)."""
        c = self._channels[channel]
        heard = speech is not False
        if heard:
            if not c.in_speech or start > c.written:  # a new run, or one after a gap
                c.onset = start
            c.speech_end = end
        c.in_speech = heard
        c.written = max(c.written, end)
        return self._release()

    def result(self, channel: int, result: TranscriptResult) -> list[TranscriptResult]:
        """A result from ``channel``'s session: a partial goes out at once, a full result
        when the other channels allow."""
        labelled = dataclasses.replace(result, channel=self.names[channel])
        if not result.full:
            return [labelled]
        c = self._channels[channel]
        c.covered = max(c.covered, result.end_time)
        heapq.heappush(self._held, (result.start_time, channel, next(self._order), labelled))
        return self._release()

    def end(self, channel: int) -> list[TranscriptResult]:
        """``channel``'s session is over (closed, failed or aborted): it holds nobody back."""
        self._channels[channel].ended = True
        return self._release()

    def flush(self) -> list[TranscriptResult]:
        """Everything held, in order (the end of the whole stream)."""
        out = [item[3] for item in sorted(self._held)]
        self._held.clear()
        return out

    def watermark(self, channel: int) -> float:
        """Seconds before which ``channel`` will deliver no more full results."""
        c = self._channels[channel]
        if c.ended:
            return math.inf
        if self._pending(c):
            return c.covered
        return max(c.covered, c.written / self.rate - self.margin)

    def _pending(self, c: _Channel) -> bool:
        """Speech heard that no full result has covered, and not given up on."""
        if c.speech_end is None or c.onset is None:
            return False
        if c.written - c.speech_end >= self.hold * self.rate:
            return False  # no result came for it: the others have waited long enough
        began_since = c.onset / self.rate >= c.covered
        runs_past = c.speech_end / self.rate > c.covered + self.slack
        return began_since or runs_past

    def _release(self) -> list[TranscriptResult]:
        out: list[TranscriptResult] = []
        held = self._held
        marks = [self.watermark(i) for i in range(len(self._channels))]
        while held:
            start, channel = held[0][0], held[0][1]
            others = min((m for i, m in enumerate(marks) if i != channel), default=math.inf)
            if start >= others and len(held) <= self.capacity:
                break
            out.append(heapq.heappop(held)[3])
        return out

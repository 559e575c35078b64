"""Live audio that never reached the service: how much, where, and the one line that says so.

Three places can lose live audio, each counted where it happens:

- the source's capture ring (``drop_oldest``) when processing falls behind the device: the
  pipeline sees it as a jump in the blocks' stream positions;
- the sink's own ring (``drop_oldest`` for live audio) when sending falls behind: the ring
  records the positions of the frames it dropped;
- the device itself: PortAudio's input-overflow flag says the host discarded input nobody
  read in time, just before that callback's first sample; how much, it does not say.

Pure: positions in, seconds and a sentence out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Losses", "merge_spans"]

#: Places named in the one line; the rest are counted.
SHOWN = 3


def merge_spans(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, with overlapping or touching spans joined."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@dataclass(frozen=True)
class Losses:
    """Live audio lost before sending, in stream seconds.

    ``captured``/``captured_seconds``: what the capture ring dropped; ``queued``/
    ``queued_seconds``: what the sink's ring dropped. The totals are exact; the spans are
    the first ones recorded (a long run that keeps dropping has more). ``overflows``: how
    many times the device discarded input inside the stream, ``overflow_at`` where.
    """

    captured: Sequence[tuple[float, float]] = ()
    captured_seconds: float = 0.0
    queued: Sequence[tuple[float, float]] = ()
    queued_seconds: float = 0.0
    overflows: int = 0
    overflow_at: Sequence[float] = ()

    @property
    def dropped_seconds(self) -> float:
        return self.captured_seconds + self.queued_seconds

    def __bool__(self) -> bool:
        return self.dropped_seconds > 0 or self.overflows > 0

    def describe(self) -> str:
        """One sentence: how much was lost, where, and why ("" when nothing was)."""
        parts = []
        if self.dropped_seconds > 0:
            spans = merge_spans([*self.captured, *self.queued])
            shown = sum(b - a for a, b in spans)
            more = self.dropped_seconds > shown + 0.001  # spans past the ones recorded
            where = _places([f"{a:.1f}-{b:.1f} s" for a, b in spans], more)
            if not self.queued_seconds:
                who = "this machine fell behind the live audio"
            elif not self.captured_seconds:
                who = "the connection fell behind the live audio"
            else:
                who = "this machine and the connection fell behind the live audio"
            parts.append(
                f"{_duration(self.dropped_seconds)} of captured audio was dropped before it "
                f"could be sent{where}: {who}"
            )
        if self.overflows:
            times = "time" if self.overflows == 1 else "times"
            at = [f"{t:.1f} s" for t in self.overflow_at]
            where = _places(at, self.overflows > len(at))
            parts.append(
                f"the audio device discarded input {self.overflows} {times}{where} (how much, "
                "it does not say): this machine did not read it in time"
            )
        return "; ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def _places(places: list[str], more: bool) -> str:
    if not places:
        return ""
    shown = ", ".join(places[:SHOWN])
    hidden = len(places) - SHOWN
    if hidden > 0:
        shown += f" and {hidden} more place{'s' if hidden > 1 else ''}"
    elif more:
        shown += " and elsewhere"
    return f" (at {shown})"

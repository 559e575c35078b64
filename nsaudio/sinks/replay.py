"""The sink's memory of audio sent but not yet finalised, and of where each session sits.

Pure bookkeeping, no threads or sockets: the sink holds the locks.
"""

from __future__ import annotations

import bisect
import collections

from ..blocks import Frame

__all__ = ["ReplayBuffer", "Timeline"]


class ReplayBuffer:
    """Frames sent since the last full result, up to ``limit`` samples.

    A full result ending at stream sample ``final`` finalises every frame before it; what
    is left is exactly what a new session must hear again. Past the limit (a service that
    never finalises) the oldest frames go: ``dropped_samples`` counts them and
    ``dropped_to`` is the stream sample the last of them ended at. (The frames kept need
    not be contiguous: a gap between them is audio never sent, not audio lost.)
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"replay limit must be positive, not {limit}")
        self.limit = limit
        self.frames: collections.deque[Frame] = collections.deque()
        self.samples = 0
        self.dropped_samples = 0
        self.dropped_to = 0

    def add(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.samples += frame.frames
        while self.samples > self.limit and len(self.frames) > 1:
            old = self.frames.popleft()
            self.samples -= old.frames
            self.dropped_samples += old.frames
            self.dropped_to = old.end

    def finalised(self, final: int) -> None:
        """Forget the frames that end at or before stream sample ``final``."""
        while self.frames and self.frames[0].end <= final:
            self.samples -= self.frames.popleft().frames

    def unfinalised(self, final: int, next_pos: int) -> tuple[int, list[tuple[int, bytes]]]:
        """Where a new session starts, and ``(stream position, pcm)`` pieces to send again.

        The first piece is cut at ``final`` so nothing already finalised is heard twice.
        """
        if not self.frames:
            return next_pos, []
        start = max(final, self.frames[0].start)
        pieces = []
        for frame in self.frames:
            skip = max(0, start - frame.start)
            pieces.append((frame.start + skip, frame.pcm[2 * skip :]))
        return start, pieces


class Timeline:
    """Where a session's audio sits in the stream, so its result times can be made absolute.

    ``runs`` holds ``(session_sample, stream_sample)`` where each contiguous run of sent
    audio begins: one run unless the ring dropped frames (a live source outran us) and the
    audio sent skips ahead. The sender appends before each send; the receiver reads.
    """

    #: Runs this many seconds of session audio before the newest result's end are dropped
    #: (no result reaches that far back), so a gated session of hours keeps few of them.
    KEEP_BACK_S = 120

    def __init__(self, start: int) -> None:
        self.runs: list[tuple[int, int]] = [(0, start)]
        self.sent = 0
        self._next = start

    def sending(self, start: int, frames: int) -> None:
        if start != self._next:
            self.runs.append((self.sent, start))
        self.sent += frames
        self._next = start + frames

    def stream_sample(self, seconds: float, rate: int, *, clamp: bool = False) -> int:
        """Session ``seconds`` as a stream sample, taken as an end; with ``clamp``, never past
        the audio this session was sent (where it was sent from, not where the stream is)."""
        s = round(seconds * rate)
        if clamp and s >= self.sent:
            return self._next
        return self._stream(s, end=True)

    def stream_at(self, session_samples: int) -> int:
        """The stream sample that ends the first ``session_samples`` of this session."""
        return self._stream(session_samples, end=True)

    def forget_before(self, seconds: float, rate: int) -> None:
        """Drop runs that end more than ``KEEP_BACK_S`` before session ``seconds``."""
        s = round(seconds * rate) - self.KEEP_BACK_S * rate
        runs = self.runs
        keep = bisect.bisect_right(runs, s, key=lambda r: r[0]) - 1
        if keep > 0:
            del runs[:keep]

    def to_stream(self, seconds: float, rate: int, *, end: bool) -> float:
        """Session ``seconds`` as stream seconds; an ``end`` on a jump belongs to the run before."""
        return self._stream(round(seconds * rate), end=end) / rate

    def _stream(self, s: int, *, end: bool) -> int:
        runs = self.runs
        find = bisect.bisect_left if end else bisect.bisect_right
        session, stream = runs[max(0, find(runs, s, key=lambda r: r[0]) - 1)]
        return stream + s - session

"""Where the chunks a caller sends go in the stream, before the stages: pure, no I/O.

A chunk sits right after the previous one, or where the caller says (``send(chunk,
start=)``: a phone call's media timestamps): a start past the end of the audio so far is a
gap, which nothing fills and the stages and the sink map back, so the times after it stay
true; a start before that end is an error (audio cannot be placed twice).

At equal rates nothing is filtered, so chunks shorter than a slice are held here, whole,
until they reach the end of the frame being filled, and go through the stages together:
the same frames out at the same moment as one at a time, for a fifth of the stage calls
with 20 ms packets into 100 ms frames.
"""

from __future__ import annotations

import numpy as np

from ..blocks import Block
from ..errors import InputError
from ..stages import Framer

__all__ = ["Placer", "check_start"]


def check_start(start: object) -> None:
    """``InputError`` unless ``start`` is None or a whole number of frames, 0 or more."""
    if start is not None and (isinstance(start, bool) or not isinstance(start, int) or start < 0):
        raise InputError(f"stream: start must be a whole number of frames, not {start!r}")


class Placer:
    """Chunks in (``blocks()``), the blocks to push through the stages out.

    Args:
        rate: the input's rate (frames per second).
        slice_frames: a long chunk is cut into blocks of at most this many frames, so that
            its sender can let others run between them.
        framer: the stages' framer when nothing before it changes positions (equal rates):
            short chunks are then held until they complete its frame. None: nothing held.
    """

    def __init__(self, rate: int, slice_frames: int, framer: Framer | None = None) -> None:
        self.rate = rate
        self.slice_frames = slice_frames
        self.framer = framer
        self.position = 0  # where the next block starts: frames placed so far, and the gaps
        self.gaps = 0
        self.gap_frames = 0  # frames the stream skipped over
        self._held: list[np.ndarray] = []
        self._held_frames = 0
        self._held_t_ns = 0

    @property
    def end(self) -> int:
        """Where the audio so far ends (held chunks included): the next chunk's place."""
        return self.position + self._held_frames

    @property
    def taken(self) -> int:
        """Frames of input taken so far (gaps not counted)."""
        return self.end - self.gap_frames

    def blocks(self, data: np.ndarray, start: int | None, t_ns: int) -> list[Block]:
        """The blocks ``data`` (placed at ``start``, None: at :attr:`end`) makes ready now,
        in order: the held chunks first at a gap, then ``data`` in slices, or nothing while
        it is held. ``InputError`` (and nothing changed) if ``start`` goes back."""
        out: list[Block] = []
        if start is not None and start != self.end:
            if start < self.end:
                raise InputError(
                    f"stream: a chunk placed at frame {start} goes back into the audio so "
                    f"far (it reaches frame {self.end}); nothing of it was sent"
                )
            out += self.rest()
            self.gaps += 1
            self.gap_frames += start - self.position
            self.position = start
        if self.framer is not None:
            data = self._hold(data, t_ns)
        for i in range(0, len(data), self.slice_frames):
            piece = data[i : i + self.slice_frames]
            out.append(Block(piece, self.position, self.rate, t_ns))
            self.position += len(piece)
        return out

    def rest(self) -> list[Block]:
        """The held chunks (short of a frame), as one block: at a gap, or at the end."""
        if not self._held:
            return []
        held = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        self._held, self._held_frames = [], 0
        block = Block(held, self.position, self.rate, self._held_t_ns)
        self.position += len(held)
        return [block]

    def _hold(self, data: np.ndarray, t_ns: int) -> np.ndarray:
        """What of the input (held chunks, then ``data``) goes on now: all of it, or nothing
        while it does not reach the end of the frame being filled."""
        assert self.framer is not None
        due = self.framer.next_end
        if len(data) < self.slice_frames and due is not None and self.end + len(data) < due:
            self._held.append(data)
            self._held_frames += len(data)
            self._held_t_ns = t_ns
            return data[:0]
        if not self._held:
            return data
        out = np.concatenate([*self._held, data])
        self._held, self._held_frames = [], 0
        return out

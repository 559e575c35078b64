"""Cut mono float32 audio into exact int16 little-endian PCM frames."""

from __future__ import annotations

import numpy as np

from ..blocks import Block, Frame
from ..errors import InputError

__all__ = ["MAX_FRAME_MS", "MIN_FRAME_MS", "Framer", "to_int16"]

MIN_FRAME_MS = 1
MAX_FRAME_MS = 60_000


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 LE: scaled by 32768, rounded, clipped; NaN becomes 0.
    Int16 (a resampler passing its input through) stays as it is."""
    if x.dtype == np.int16:
        return x.astype("<i2", copy=False)
    with np.errstate(over="ignore"):  # 1e38 * 32768 is inf, clipped below: no warning
        y = np.multiply(x, 32768.0, dtype=np.float32)
    np.rint(y, out=y)
    np.clip(y, -32768.0, 32767.0, out=y)
    if np.isnan(y).any():
        y[np.isnan(y)] = 0.0
    return y.astype("<i2")


class Framer:
    """Mono float32 (or int16) blocks in, int16 LE frames of exactly ``frame_ms`` out.

    The last, shorter frame is emitted by ``flush()``: the stream's final milliseconds are
    never dropped.

    A frame's ``start`` is its absolute position in the stream: the position of the block its
    first sample came from, plus the offset within it. At a *gap* (a block whose ``start`` is
    not where the previous block ended: a live ring dropped audio) the frame being filled is
    emitted as it is, short rather than padded, since padding would invent audio that was never
    captured; the next frame starts at the new block's position. So every frame holds
    contiguous audio, frames never overlap, and a jump in ``start`` marks each gap for the
    sink to map back.

    Arguments: ``rate``, the blocks' (and frames') rate in Hz; ``frame_ms``, each frame's
    duration in milliseconds (whole samples: rounded).
    """

    def __init__(self, rate: int, frame_ms: float = 100) -> None:
        if not isinstance(rate, int) or rate <= 0:
            raise InputError(f"frame rate must be a positive integer, not {rate!r}")
        if not MIN_FRAME_MS <= frame_ms <= MAX_FRAME_MS:
            raise InputError(
                f"frame duration must be {MIN_FRAME_MS} to {MAX_FRAME_MS} ms, not {frame_ms}"
            )
        samples = round(rate * frame_ms / 1000)
        if samples < 1:
            raise InputError(f"a {frame_ms} ms frame at {rate} Hz holds no sample")
        self.rate = rate
        self.frame_samples = samples
        self._frame_bytes = 2 * samples
        # Samples of the frame being filled, as the float blocks they came in: they are made
        # int16 once a frame is whole, in one call (a 20 ms block at a time, converting each
        # on arrival cost five conversions per 100 ms frame; numpy's per-call cost dominates).
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._pos = 0  # position of the first pending sample (of the next frame)
        self._next: int | None = None  # where the next block should start
        self._t_ns = 0

    @property
    def next_end(self) -> int | None:
        """Where the frame being filled is whole: the stream position the next block must
        reach before this framer can give anything (None before the first block)."""
        return None if self._next is None else self._pos + self.frame_samples

    def push(self, block: Block) -> list[Frame]:
        """The whole frames ``block`` completes (a mono block at ``rate``)."""
        if block.data.ndim != 1:
            raise InputError("the framer takes mono blocks: put a resampler before it")
        frames = []
        if block.start != self._next:
            frames = self.flush()  # a gap (or the first block): the partial frame goes as it is
            self._pos = block.start
        self._next = block.start + block.frames
        self._t_ns = block.t_ns
        n = self._pending_samples + block.frames
        if n < self.frame_samples:
            if block.frames:  # a copy: the caller may reuse its array
                self._pending.append(block.data.copy())
                self._pending_samples = n
            return frames
        fs, fb, data = self.frame_samples, self._frame_bytes, block.data
        if self._pending:  # the frame being filled is completed first, on its own
            need = fs - self._pending_samples
            head = np.concatenate([*self._pending, data[:need]])
            frames.append(Frame(to_int16(head).tobytes(), self._pos, self.rate, block.t_ns))
            self._pos += fs
            data = data[need:]
        whole = len(data) // fs * fs
        if whole:
            pcm = memoryview(to_int16(data[:whole]).tobytes())
            for i in range(0, 2 * whole, fb):
                frames.append(Frame(bytes(pcm[i : i + fb]), self._pos, self.rate, block.t_ns))
                self._pos += fs
        rest = data[whole:]
        self._pending = [rest.copy()] if len(rest) else []  # a copy: the caller's array
        self._pending_samples = len(rest)
        return frames

    def flush(self) -> list[Frame]:
        """End of stream: the last, shorter frame, if any audio is left."""
        if not self._pending_samples:
            return []
        data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        frame = Frame(to_int16(data).tobytes(), self._pos, self.rate, self._t_ns)
        self._pos += frame.frames
        self._pending = []
        self._pending_samples = 0
        return [frame]

    def reset(self) -> None:
        """Forget the frame being filled and the stream position."""
        self._pending = []
        self._pending_samples = 0
        self._pos = 0
        self._next = None
        self._t_ns = 0

"""Cut mono float32 audio into exact int16 little-endian PCM frames."""

from __future__ import annotations

import numpy as np

from ..blocks import Block, Frame
from ..errors import InputError

__all__ = ["MAX_FRAME_MS", "MIN_FRAME_MS", "Framer", "to_int16"]

MIN_FRAME_MS = 1
MAX_FRAME_MS = 60_000


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 LE: scaled by 32768, rounded, clipped; NaN becomes 0."""
    with np.errstate(over="ignore"):  # 1e38 * 32768 is inf, clipped below: no warning
        y = np.multiply(x, 32768.0, dtype=np.float32)
    np.rint(y, out=y)
    np.clip(y, -32768.0, 32767.0, out=y)
    if np.isnan(y).any():
        y[np.isnan(y)] = 0.0
    return y.astype("<i2")


class Framer:
    """Mono float32 blocks in, int16 LE frames of exactly ``frame_ms`` out.

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
        self._pending = bytearray()
        self._pos = 0  # position of the first pending sample (of the next frame)
        self._next: int | None = None  # where the next block should start
        self._t_ns = 0

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
        pcm = to_int16(block.data).tobytes()
        if not self._pending and len(pcm) < self._frame_bytes:
            self._pending += pcm
            return frames
        buf = memoryview(bytes(self._pending) + pcm if self._pending else pcm)
        fb = self._frame_bytes
        whole = len(buf) // fb * fb
        for i in range(0, whole, fb):
            frames.append(Frame(bytes(buf[i : i + fb]), self._pos, self.rate, block.t_ns))
            self._pos += self.frame_samples
        self._pending = bytearray(buf[whole:])
        return frames

    def flush(self) -> list[Frame]:
        """End of stream: the last, shorter frame, if any audio is left."""
        if not self._pending:
            return []
        frame = Frame(bytes(self._pending), self._pos, self.rate, self._t_ns)
        self._pos += frame.frames
        self._pending.clear()
        return [frame]

    def reset(self) -> None:
        """Forget the frame being filled and the stream position."""
        self._pending.clear()
        self._pos = 0
        self._next = None
        self._t_ns = 0

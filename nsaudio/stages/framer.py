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
    never dropped. Frame positions count samples from the start of the stream.
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
        self._pos = 0
        self._t_ns = 0

    def push(self, block: Block) -> list[Frame]:
        if block.data.ndim != 1:
            raise InputError("the framer takes mono blocks: put a resampler before it")
        self._t_ns = block.t_ns
        pcm = to_int16(block.data).tobytes()
        if not self._pending and len(pcm) < self._frame_bytes:
            self._pending += pcm
            return []
        buf = memoryview(bytes(self._pending) + pcm if self._pending else pcm)
        fb = self._frame_bytes
        whole = len(buf) // fb * fb
        frames = []
        for i in range(0, whole, fb):
            frames.append(Frame(bytes(buf[i : i + fb]), self._pos, self.rate, block.t_ns))
            self._pos += self.frame_samples
        self._pending = bytearray(buf[whole:])
        return frames

    def flush(self) -> list[Frame]:
        if not self._pending:
            return []
        frame = Frame(bytes(self._pending), self._pos, self.rate, self._t_ns)
        self._pos += frame.frames
        self._pending.clear()
        return [frame]

    def reset(self) -> None:
        self._pending.clear()
        self._pos = 0
        self._t_ns = 0

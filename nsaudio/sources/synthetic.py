"""Sources made in memory, for tests, benchmarks and the Python API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from ..blocks import Block
from ..errors import InputError
from .file import DEFAULT_BLOCK_FRAMES
from .limits import check_layout

__all__ = ["ArraySource", "ToneSource"]


class ArraySource:
    """An array of samples, ``(frames,)`` or ``(frames, channels)``, cut into blocks.

    ``data``: float samples at full scale 1.0 (float32 or float64: kept as float32), or
    integer PCM at its type's full scale: int16 is kept as int16 (as a 16-bit file is read),
    int8 and int32 are scaled to float32, uint8 is taken as offset binary (128 is 0). Other
    types are refused with :class:`~nsaudio.errors.InputError`, never clipped or guessed.
    ``rate``: samples per second per channel; ``block_frames``: frames per block.

    With ``realtime=True`` each block is released when its last sample would have been
    captured by a live device, and stamped with that time: a stand-in for a microphone.
    """

    def __init__(
        self,
        data: np.ndarray,
        rate: int,
        *,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        realtime: bool = False,
    ) -> None:
        arr = _samples(np.asarray(data))
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise InputError(f"audio array must be 1-D or 2-D, not {arr.ndim}-D")
        check_layout("array", rate, arr.shape[1])
        if block_frames <= 0:
            raise InputError(f"block size must be a positive number of frames, not {block_frames}")
        self.data = arr
        self.rate = rate
        self.channels = arr.shape[1]
        self.block_frames = block_frames
        self.realtime = realtime
        self.live = realtime
        self.name = "array"
        self.format = f"array/{arr.dtype}"
        self._stopped = threading.Event()

    @property
    def frames(self) -> int:
        """Sample frames in the array."""
        return int(self.data.shape[0])

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        """The array in blocks of ``block_frames`` (paced with ``realtime``)."""
        t0 = time.monotonic_ns()
        for start in range(0, len(self.data), self.block_frames):
            chunk = self.data[start : start + self.block_frames]
            if self.realtime:
                due = t0 + (start + len(chunk)) * 1_000_000_000 // self.rate
                delay = due - time.monotonic_ns()
                if delay > 0:
                    self._stopped.wait(delay / 1e9)
                t_ns = due
            else:
                t_ns = time.monotonic_ns()
            if self._stopped.is_set():
                return
            yield Block(chunk, start, self.rate, t_ns)

    def stop(self) -> None:
        """End ``blocks()`` before its next block (a paced wait ends at once)."""
        self._stopped.set()


class ToneSource(ArraySource):
    """A sine tone of ``seconds`` at ``rate`` Hz: ``freq`` Hz at amplitude ``level`` (full
    scale 1.0) in the first of ``channels``, each further channel a quarter of ``freq``
    higher than the one before. ``block_frames`` and ``realtime`` as for
    :class:`ArraySource`."""

    def __init__(
        self,
        seconds: float,
        rate: int = 48000,
        channels: int = 1,
        *,
        freq: float = 440.0,
        level: float = 0.5,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        realtime: bool = False,
    ) -> None:
        n = round(seconds * rate)
        t = np.arange(n, dtype=np.float64) / rate
        cols = [level * np.sin(2 * np.pi * (freq * (1 + 0.25 * c)) * t) for c in range(channels)]
        super().__init__(
            np.stack(cols, axis=1).astype(np.float32),
            rate,
            block_frames=block_frames,
            realtime=realtime,
        )
        self.name = f"tone:{freq:g}Hz"


def _samples(arr: np.ndarray) -> np.ndarray:
    """Samples as the pipeline takes them: float32 at full scale 1.0, or int16."""
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f":
        return arr.astype(np.float32, copy=False)
    if kind == "i" and size == 2:
        return arr.astype(np.int16, copy=False)  # native order, as the resampler reads it
    if kind == "i" and size in (1, 4):
        return (arr / float(2 ** (8 * size - 1))).astype(np.float32)
    if kind == "u" and size == 1:
        return ((arr.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise InputError(
        f"audio array of {arr.dtype} is not supported: give float (full scale 1.0), int8, "
        "int16, int32 or uint8 samples"
    )

"""Audio handed over by the caller's own code, checked at the call: a numpy array or bytes.

Shared by :class:`~nsaudio.sources.push.PushSource` (threads) and :mod:`nsaudio.aio`
(asyncio). A chunk that is wrong in any way raises :class:`~nsaudio.errors.InputError` before
anything of it is used, so a caller that catches the error has sent nothing of that chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .limits import check_layout

__all__ = ["DTYPES", "ChunkFormat"]

#: The sample types accepted, and how bytes of each are read (little-endian, interleaved).
DTYPES = {"int16": "<i2", "int32": "<i4", "float32": "<f4", "float64": "<f8"}


class ChunkFormat:
    """What the caller promised to send: ``rate`` Hz, ``channels``, samples of ``dtype``.

    ``samples(chunk)`` turns one chunk into a private ``(frames, channels)`` array that a
    :class:`~nsaudio.blocks.Block` can carry: int16 as it is (the resampler scales it while
    downmixing), everything else float32 with full scale 1.0. The caller may reuse its buffer
    as soon as the call returns.
    """

    def __init__(self, rate: int, channels: int, dtype: str, name: str = "audio") -> None:
        """``rate``: samples per second per channel (1000 to 768000); ``channels``: 1 to
        256; ``dtype``: one of :data:`DTYPES`; ``name``: what error messages call it."""
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise InputError(f"{name}: the sample rate must be a positive integer, not {rate!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
            raise InputError(
                f"{name}: the channel count must be a positive integer, not {channels!r}"
            )
        check_layout(name, rate, channels)
        if dtype not in DTYPES:
            raise InputError(f"{name}: dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.rate = rate
        self.channels = channels
        self.dtype = np.dtype(DTYPES[dtype])
        self.dtype_name = dtype
        self.name = name
        self._frame_bytes = self.dtype.itemsize * channels
        self._bytes_as_they_are = dtype == "int16" and self.dtype.isnative

    def __repr__(self) -> str:
        return f"ChunkFormat({self.rate}, {self.channels}, {self.dtype_name!r})"

    def samples(self, chunk: Any) -> np.ndarray:
        """``chunk`` (an array of the promised dtype and channels, or bytes of whole frames)
        as a ``(frames, channels)`` array of its own; ``InputError`` if it is not that."""
        if type(chunk) is bytes and self._bytes_as_they_are:
            # The common case of a network's int16 packets, in as few steps as it takes: an
            # array over bytes nobody can change needs no copy of its own.
            if len(chunk) % self._frame_bytes:
                self._from_bytes(chunk)  # raises, saying why
            return np.frombuffer(chunk, np.int16).reshape(-1, self.channels)
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            data = self._from_bytes(chunk)
        elif isinstance(chunk, np.ndarray):
            data = self._from_array(chunk)
        else:
            raise InputError(
                f"{self.name}: send a numpy array or bytes, not {type(chunk).__name__}"
            )
        if data.dtype.kind == "f" and len(data) and not np.isfinite(data).all():
            raise InputError(
                f"{self.name}: the chunk holds NaN or infinite samples; nothing of it was taken"
            )
        if data.dtype == np.int16:
            return data.astype(np.int16)  # a copy of our own, native order
        if data.dtype.kind == "i":
            return data.astype(np.float32) * np.float32(2.0**-31)
        return data.astype(np.float32)

    def _from_bytes(self, chunk: bytes | bytearray | memoryview) -> np.ndarray:
        raw = memoryview(chunk).cast("B")
        frame_bytes = self._frame_bytes
        if len(raw) % frame_bytes:
            raise InputError(
                f"{self.name}: {len(raw)} bytes is not a whole number of frames "
                f"({frame_bytes} bytes each: {self.channels} x {self.dtype_name}); "
                "nothing of it was taken"
            )
        return np.frombuffer(raw, self.dtype).reshape(-1, self.channels)

    def _from_array(self, chunk: np.ndarray) -> np.ndarray:
        if chunk.dtype.newbyteorder("=") != self.dtype.newbyteorder("="):
            raise InputError(
                f"{self.name}: the array holds {chunk.dtype}, the stream was opened for "
                f"{self.dtype_name}"
            )
        if chunk.ndim == 1 and self.channels == 1:
            return chunk.reshape(-1, 1)
        if chunk.ndim == 2 and chunk.shape[1] == self.channels:
            return chunk
        want = "(frames,) or (frames, 1)" if self.channels == 1 else f"(frames, {self.channels})"
        raise InputError(
            f"{self.name}: an array of shape {chunk.shape} does not fit a stream of "
            f"{self.channels} channel{'s' if self.channels > 1 else ''}: give {want}"
        )

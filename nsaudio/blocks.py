"""What moves through the pipeline: audio blocks and PCM frames.

Positions are integer sample counts at the item's own rate; seconds are derived, never
accumulated. ``t_ns`` is the ``time.monotonic_ns()`` at which the newest input sample that
went into the item became available, so latency can be measured anywhere downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "ChannelFrame", "Frame"]


@dataclass(slots=True)
class Block:
    """Audio of shape ``(frames, channels)`` from sources, ``(frames,)`` once mono.

    Samples are float32 with full scale 1.0, or int16 with full scale 32768 where a source
    reads 16-bit (or narrower) integer audio: converting while downmixing, in the
    resampler, costs a third of asking libsndfile for float.

    ``data``: the samples; ``start``: the stream position of the first of them, in samples
    (frames) at ``rate`` Hz from the start of the stream; ``t_ns``: the
    ``time.monotonic_ns()`` at which its newest sample became available.
    """

    data: np.ndarray
    start: int
    rate: int
    t_ns: int

    @property
    def frames(self) -> int:
        """Sample frames in the block (rows of ``data``)."""
        return int(self.data.shape[0])

    def __len__(self) -> int:
        return self.frames


@dataclass(slots=True)
class Frame:
    """A frame of int16 little-endian mono PCM, as the service wants it.

    ``pcm``: the bytes; ``start``: the stream position of its first sample at ``rate`` Hz;
    ``t_ns``: the ``time.monotonic_ns()`` at which its newest input sample became
    available; ``speech``: the energy gate's label (None before a gate saw it).
    """

    pcm: bytes
    start: int
    rate: int
    t_ns: int
    speech: bool | None = None

    @property
    def frames(self) -> int:
        """Samples in the frame."""
        return len(self.pcm) // 2

    def __len__(self) -> int:
        return self.frames

    @property
    def end(self) -> int:
        """The stream position just after its last sample."""
        return self.start + self.frames


@dataclass(slots=True)
class ChannelFrame(Frame):
    """A frame of one input channel when each channel has a session of its own:
    ``channel`` is its index (from 0) among the channels split apart; ``pcm``, ``start``,
    ``rate``, ``t_ns`` and ``speech`` as for :class:`Frame`."""

    channel: int = 0

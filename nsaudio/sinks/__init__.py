"""Where frames go: files, nowhere (benchmarks), several sinks at once, or the speech service.

A sink has ``open(rate)``, ``write(frame)``, ``close()`` (end of stream: finish the work)
and ``abort()`` (failure: stop and leave nothing half-done). ``NeuralSpaceSink`` and
``TeeSink`` are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._lazy import lazy_exports
from ..blocks import Frame
from .files import NullSink, RawSink, WavSink

if TYPE_CHECKING:
    from .neuralspace import NeuralSpaceSink
    from .tee import TeeSink

__all__ = ["NeuralSpaceSink", "NullSink", "RawSink", "Sink", "TeeSink", "WavSink"]


class Sink(Protocol):
    """What a pipeline writes frames into; implement these four to make your own."""

    def open(self, rate: int) -> None:
        """Get ready for frames at ``rate`` Hz (int16 mono)."""

    def write(self, frame: Frame) -> None:
        """Take one frame; may block (backpressure) but never drops it silently."""

    def close(self) -> None:
        """End of stream: finish the work (drain, write headers) and release everything."""

    def abort(self) -> None:
        """A failure upstream: stop at once and leave nothing half-done behind."""


__getattr__, __dir__ = lazy_exports(
    __name__, {"NeuralSpaceSink": ".neuralspace", "TeeSink": ".tee"}, __all__
)

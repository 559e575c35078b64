"""Where frames go: files, nowhere (benchmarks), several sinks at once, or the speech service.

A sink has ``open(rate)``, ``write(frame)``, ``close()`` (end of stream: finish the work)
and ``abort()`` (failure: stop and leave nothing half-done). ``NeuralSpaceSink`` and
``TeeSink`` are imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._lazy import lazy_exports
from ..blocks import Frame
from .files import NullSink, RawSink, WavSink

if TYPE_CHECKING:
    from .neuralspace import NeuralSpaceSink
    from .tee import TeeSink

__all__ = [
    "DropsAudio",
    "GivesResults",
    "Hurries",
    "NeuralSpaceSink",
    "NullSink",
    "RawSink",
    "Sink",
    "TeeSink",
    "WavSink",
]


@runtime_checkable
class Sink(Protocol):
    """What a pipeline writes frames into; implement these four to make your own.

    Optional, each its own protocol: :class:`DropsAudio` (``dropped_audio()``: a sink that
    may drop frames it could not send, such as a live ``NeuralSpaceSink``, says how many, so
    the run does not pass for whole), :class:`GivesResults` (``results()``: what
    ``Pipeline.results()`` yields), :class:`Hurries` (``hurry(within)``: what
    ``Pipeline.stop()`` tells it). A sink that wraps others must forward these for them, as
    :class:`~nsaudio.sinks.tee.TeeSink` does.
    """

    def open(self, rate: int) -> None:
        """Get ready for frames at ``rate`` Hz (int16 mono)."""

    def write(self, frame: Frame) -> None:
        """Take one frame; may block (backpressure) but never drops it silently."""

    def close(self) -> None:
        """End of stream: finish the work (drain, write headers) and release everything."""

    def abort(self) -> None:
        """A failure upstream: stop at once and leave nothing half-done behind."""


@runtime_checkable
class DropsAudio(Protocol):
    """A sink that may drop frames before it sends them (a live stream's send queue)."""

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        """Samples dropped, and the ``(start, end)`` stream positions of the first of them."""
        ...


@runtime_checkable
class Hurries(Protocol):
    """A sink that can end sooner than its own pace when the user stops the stream (the
    service's: no more pacing, a bounded wait for the last results)."""

    def hurry(self, within: float) -> None:
        """End within ``within`` seconds from now, delivering what comes until then."""
        ...


@runtime_checkable
class GivesResults(Protocol):
    """A sink that gives results back (a speech service's transcripts)."""

    def results(self) -> Iterator[Any]:
        """Every result as it arrives; ends when the stream does."""
        ...


__getattr__, __dir__ = lazy_exports(
    __name__, {"NeuralSpaceSink": ".neuralspace", "TeeSink": ".tee"}, __all__
)

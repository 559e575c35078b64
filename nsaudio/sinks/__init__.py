"""Where frames go: files, nowhere (benchmarks), or the speech service.

A sink has ``open(rate)``, ``write(frame)``, ``close()`` (end of stream: finish the work)
and ``abort()`` (failure: stop and leave nothing half-done).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..blocks import Frame
from .files import NullSink, RawSink, WavSink

if TYPE_CHECKING:
    from .neuralspace import NeuralSpaceSink

__all__ = ["NeuralSpaceSink", "NullSink", "RawSink", "Sink", "WavSink"]


class Sink(Protocol):
    def open(self, rate: int) -> None: ...

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def __getattr__(name: str) -> Any:
    if name == "NeuralSpaceSink":
        from .neuralspace import NeuralSpaceSink

        return NeuralSpaceSink
    raise AttributeError(name)

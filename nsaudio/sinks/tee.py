"""One stream of frames into several sinks (``--record`` beside the service)."""

from __future__ import annotations

from ..blocks import Frame
from . import Sink

__all__ = ["TeeSink"]


class TeeSink:
    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    def open(self, rate: int) -> None:
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(rate)
                opened.append(sink)
        except BaseException:
            for sink in opened:
                sink.abort()
            raise

    def write(self, frame: Frame) -> None:
        for sink in self.sinks:
            sink.write(frame)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()

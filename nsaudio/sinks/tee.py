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

    def hurry(self, within: float) -> None:
        """The user stopped the stream: every sink that can end sooner is told so."""
        for sink in self.sinks:
            hurry = getattr(sink, "hurry", None)
            if hurry is not None:
                hurry(within)

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        """What the sinks that can drop (a live ``NeuralSpaceSink``) dropped before sending."""
        total, spans = 0, []
        for sink in self.sinks:
            dropped = getattr(sink, "dropped_audio", None)
            if dropped is not None:
                n, places = dropped()
                total += n
                spans += places
        return total, sorted(spans)

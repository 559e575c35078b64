"""One stream of frames into several sinks (``--record`` beside the service)."""

from __future__ import annotations

from ..blocks import Frame
from . import DropsAudio, Hurries, Sink

__all__ = ["TeeSink"]


class TeeSink:
    """Feeds every frame to each of ``sinks``, in the order given.

    ``TeeSink(service, WavSink("sent.wav"))`` sends a stream and keeps exactly what was sent.
    Each verb goes to every sink in order: ``open(rate)`` (if one fails, those already
    opened are aborted), ``write(frame)``, ``close()`` (each drains or finishes in turn) and
    ``abort()``. A sink that raises stops the verb there; the pipeline then aborts them all.

    Loss detection passes through: ``dropped_audio()`` adds up what the sinks that can drop
    frames (:class:`~nsaudio.sinks.DropsAudio`, a live ``NeuralSpaceSink``) dropped, so a
    tee in front of the service does not hide a loss from ``Pipeline.run()``; and
    ``hurry(within)`` reaches every sink that can end sooner (:class:`~nsaudio.sinks.Hurries`).

    The sinks are separate arguments; each is checked now, so that a list passed by mistake
    (``TeeSink([a, b])``) or something that is not a sink fails here, not mid-stream.
    """

    def __init__(self, *sinks: Sink) -> None:
        if not sinks:
            raise TypeError("TeeSink needs at least one sink")
        for sink in sinks:
            if isinstance(sink, (list, tuple)):
                raise TypeError("pass the sinks as separate arguments: TeeSink(*sinks)")
            if not isinstance(sink, Sink):
                raise TypeError(
                    f"{sink!r} is not a sink: it needs open(), write(), close() and abort()"
                )
        self.sinks = sinks

    def __repr__(self) -> str:
        return f"TeeSink({', '.join(map(repr, self.sinks))})"

    def open(self, rate: int) -> None:
        """Open each sink; if one fails, abort those already opened."""
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
        """The frame to each sink in turn."""
        for sink in self.sinks:
            sink.write(frame)

    def close(self) -> None:
        """Close each sink in turn."""
        for sink in self.sinks:
            sink.close()

    def abort(self) -> None:
        """Abort every sink."""
        for sink in self.sinks:
            sink.abort()

    def hurry(self, within: float) -> None:
        """The user stopped the stream: every sink that can end sooner is told so."""
        for sink in self.sinks:
            if isinstance(sink, Hurries):
                sink.hurry(within)

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        """What the sinks that can drop (a live ``NeuralSpaceSink``) dropped before sending:
        samples, and the ``(start, end)`` positions of the first of them, in order."""
        total, spans = 0, []
        for sink in self.sinks:
            if isinstance(sink, DropsAudio):
                n, places = sink.dropped_audio()
                total += n
                spans += places
        return total, sorted(spans)

"""Run a source through stages into a sink.

Files take the fast path: large blocks, a reader thread decoding and downmixing the next
block while the caller's thread resamples this one (reads, numpy and soxr all release the
GIL, so both cores work), and the frames handed to the sink (which may have threads of its
own, like the WebSocket sender). With ``write_thread`` (``convert`` to a file), the stages
after the first and the sink's writes get a thread of their own too, so the resampling is
all the caller's thread does. Live sources capture on their own thread into their own ring
(``drop_oldest``); processing runs on the caller's thread, so a slow stage can never block
the capture.

Live audio lost on the way (see :mod:`.losses`) does not pass for success: once the stream
has otherwise ended well, ``run()`` raises :class:`~.errors.AudioLostError` saying how much
and where.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .blocks import Block
from .detectors.base import SpeechDetector, make_detector
from .errors import AudioLostError, InputError, RingClosed
from .formats import format_rate
from .losses import Losses
from .ring import MAX_DROPPED_SPANS, Ring
from .sinks import DropsAudio, GivesResults, Hurries, Sink
from .sources import ReportsOverflows, Source, Stoppable
from .stages import Chain, EnergyGate, Framer, Resampler, SpeechGate, Stage
from .stages.base import Prepares, Resamples
from .stages.speech_gate import find_gate
from .worker import Worker

__all__ = ["Pipeline", "RunStats", "prefetched", "standard_stages"]

#: Seconds of decoded file audio the reader thread may run ahead of processing.
PREFETCH_SECONDS = 4.0
#: Seconds of resampled audio the resampling may run ahead of the writer thread.
WRITE_BEHIND_SECONDS = 4.0
#: How long a stopped stream waits for its last results (``Pipeline.stop()``).
STOP_WITHIN_S = 0.8


@dataclass
class RunStats:
    """What a run did, for reports and benchmarks."""

    input_frames: int = 0
    output_frames: int = 0
    seconds: float = 0.0
    #: A live source's blocks that did not follow on: input frames never seen, and the
    #: first ``(start, end)`` positions of them (audio its capture ring dropped).
    gap_frames: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)

    def note_gap(self, start: int, end: int) -> None:
        self.gap_frames += end - start
        if len(self.gaps) < MAX_DROPPED_SPANS:
            self.gaps.append((start, end))


def standard_stages(
    source: Source,
    fmt: str = "pcm_16k",
    *,
    frame_ms: float = 100,
    channel: int | None = None,
    quality: str = "HQ",
    gate_threshold: float | None = 0.5,
    skip_silence: bool = False,
    pre_roll_ms: float = 300,
    tail_ms: float = 700,
    detector: SpeechDetector | None = None,
    gate_vad: str = "energy",
    gate_vad_model: str | Path | None = None,
) -> list[Stage]:
    """The stages that turn ``source``'s audio into ``fmt`` (``pcm_16k`` or ``pcm_8k``)
    frames: the resampler to the format's rate (``channel``: keep that input channel instead
    of the mean; ``quality``: soxr's, HQ by default), the framer (``frame_ms`` per frame), and
    the speech gate (``gate_threshold``; None: no gate).

    The gate labels frames (a streaming sink uses the labels to know when the last speech it
    sent has been transcribed); with ``skip_silence`` it passes only speech, with
    ``pre_roll_ms`` before each onset and ``tail_ms`` after (see
    :class:`~nsaudio.stages.SpeechGate`). It decides with ``detector`` (one per stream: a
    :class:`~nsaudio.detectors.SileroDetector`, say, from ``make_detector("silero")``),
    else with a fresh detector named ``gate_vad`` at ``gate_threshold``: ``"energy"`` (an
    :class:`~nsaudio.stages.EnergyGate`) or ``"silero"`` (``gate_vad_model``: its ONNX file
    instead of the bundled one), as ``--gate-vad`` and ``--gate-vad-model``. Raises
    :class:`~nsaudio.errors.InputError` for a model without Silero or Silero without a gate,
    :class:`~nsaudio.errors.DetectorError` when Silero's extra or model is missing.
    """
    if gate_vad_model is not None and gate_vad != "silero":
        raise InputError("a detector model (gate_vad_model) is for gate_vad='silero'")
    if detector is None and gate_vad != "energy":
        if gate_threshold is None:
            raise InputError(f"gate_vad={gate_vad!r} needs a gate: gate_threshold is None")
        detector = make_detector(gate_vad, gate_threshold, model_path=gate_vad_model)
    rate = format_rate(fmt)
    stages: list[Stage] = [
        Resampler(source.rate, rate, source.channels, channel=channel, quality=quality),
        Framer(rate, frame_ms),
    ]
    if detector is not None:
        stages.append(
            SpeechGate(
                detector, skip_silence=skip_silence, pre_roll_ms=pre_roll_ms, tail_ms=tail_ms
            )
        )
    elif gate_threshold is not None:
        stages.append(
            EnergyGate(
                gate_threshold, skip_silence=skip_silence, pre_roll_ms=pre_roll_ms, tail_ms=tail_ms
            )
        )
    return stages


def prefetched(
    source: Source,
    prepare: Callable[[Block], Block] | None = None,
    seconds: float = PREFETCH_SECONDS,
) -> Iterator[Block]:
    """``source.blocks()`` read on a thread of its own, through a bounded blocking ring.

    ``prepare``, if given, is stateless per-block work (a stage's ``prepare()``, such as the
    resampler's downmix) done on the reader's thread so that both cores work.
    """
    ring: Ring[Block] = Ring.for_seconds(seconds, source.rate, "block")

    def read() -> None:
        blocks = source.blocks()
        try:
            for block in blocks:
                ring.put(block if prepare is None else prepare(block))
        finally:
            _close(blocks)  # a generator: run its cleanup now
            ring.close()

    # RingClosed: the consumer stopped early, which is no error of the reader's.
    reader = Worker(read, "nsaudio-reader", ignore=(RingClosed,)).start()
    try:
        yield from ring
        reader.join()
        reader.raise_error()
    finally:
        ring.abort()
        if reader.is_alive():  # the consumer stopped early: the reader may wait on input
            _stop_source(source)
        reader.join()


def _stop_source(source: Source) -> None:
    if isinstance(source, Stoppable):  # a source without stop() ends only at its end
        source.stop()


def _close(blocks: Iterator[Any]) -> None:
    """Close a generator, so that its cleanup runs now rather than when it is collected."""
    if isinstance(blocks, Generator):
        blocks.close()


def _output_rate(stages: Sequence[Stage], rate: int) -> int:
    for stage in stages:
        if isinstance(stage, Resamples):
            rate = stage.out_rate
    return rate


class Pipeline:
    """``source -> stages -> sink``; ``run()`` blocks until the end of the stream.

    End of stream is an event: the stages are flushed and the sink is closed, so the last
    milliseconds always arrive. On any error the sink is aborted and the error re-raised.
    """

    def __init__(
        self,
        source: Source,
        stages: Sequence[Stage],
        sink: Sink,
        *,
        rate: int | None = None,
        limit_seconds: float | None = None,
        write_thread: bool = False,
    ) -> None:
        """``rate``: of the frames (default: the last stage's); ``limit_seconds``: input to
        take; ``write_thread``: for a file source, run the stages after the first and the
        sink's ``write()`` on a thread of their own (the sink is still used by one thread at a
        time: ``open()``, then the writer thread, then ``close()`` or ``abort()`` once the
        writer has ended). Only for sinks whose writes never wait long (a regular file): an
        interrupt waits for the write under way."""
        if not isinstance(sink, Sink):
            raise TypeError(
                f"{sink!r} is not a sink: it needs open(), write(), close() and abort()"
            )
        self.source = source
        self.limit_frames = (
            None if limit_seconds is None else max(0, round(limit_seconds * source.rate))
        )
        self.chain = Chain(stages)
        self.sink = sink
        self.rate = rate if rate is not None else _output_rate(stages, source.rate)
        self.stats = RunStats()
        self.write_thread = write_thread
        self._stop = threading.Event()
        self._stopped_by_user = False

    @property
    def gate(self) -> SpeechGate | None:
        """The speech gate among the stages (the last, if there are several), or None: what
        it heard (level, speech or silence, samples seen and skipped) is the stream's meter."""
        return find_gate(self.chain.stages)

    def stop(self, within: float = STOP_WITHIN_S) -> None:
        """End the stream early but cleanly: stages flushed, sink closed, its last results
        awaited for at most ``within`` seconds (a sink that can wait less, such as the
        service's, is told so): ``run()`` returns soon after, at any pace.

        Safe from another thread or a signal handler.
        """
        self._stopped_by_user = True
        self._stop.set()
        _stop_source(self.source)
        if isinstance(self.sink, Hurries):
            self.sink.hurry(within)

    def results(self) -> Iterator[Any]:
        """Run on a background thread and yield the sink's results as they arrive.

        Every result received is yielded before the run's error, if any, is raised. Leaving
        the loop early (``break``, an exception, Ctrl-C) stops the run as :meth:`stop` does:
        the generator's end returns within about a second."""
        sink = self.sink
        if not isinstance(sink, GivesResults):
            raise TypeError(f"{type(sink).__name__} gives no results")
        # An error aborts the sink, which ends sink.results() even if open() failed.
        worker = Worker(self.run, "nsaudio-pipeline", on_error=lambda err: self.sink.abort())
        worker.start()
        try:
            yield from sink.results()
        finally:
            if worker.is_alive() and worker.error is None:
                self.stop()
            try:
                worker.join()
            except BaseException:  # interrupted again while it drains: give up on the drain
                self.sink.abort()
                raise
        worker.raise_error()

    def run(self) -> RunStats:
        """Run the stream to its end (or ``stop()``) on this thread and return what it did.

        The sink is opened first, closed at the end (its drain included), aborted on any
        error, which is raised; live audio lost on the way raises
        :class:`~nsaudio.errors.AudioLostError` once the stream has otherwise ended well.
        """
        t0 = time.perf_counter()
        stats = self.stats
        try:
            self.sink.open(self.rate)
            first = self.chain.stages[0] if self.chain.stages else None
            blocks = (
                self.source.blocks()
                if self.source.live
                else prefetched(self.source, first.prepare if isinstance(first, Prepares) else None)
            )
            stages = self.chain.stages
            if self.write_thread and not self.source.live and len(stages) > 1:
                self._feed_written_behind(blocks, Chain(stages[:1]), Chain(stages[1:]))
            else:
                self._feed_all(blocks, self.chain, self._write)
            self.sink.close()  # the drain: a second Ctrl-C while it waits aborts
        except BaseException:
            self.sink.abort()  # also after a failed open(): whatever it created goes
            raise
        stats.seconds = time.perf_counter() - t0
        losses = self.losses()
        if losses:
            raise AudioLostError(losses.describe(), losses, stats)
        return stats

    def losses(self) -> Losses:
        """Live audio lost before sending: gaps in the source's positions, input the device
        discarded (a :class:`~nsaudio.sources.ReportsOverflows` source), frames the sink
        dropped (a :class:`~nsaudio.sinks.DropsAudio` sink); each optional, so any source or
        sink can take part."""
        stats, in_rate = self.stats, self.source.rate
        overflows, overflow_at = (
            self.source.device_overflows() if isinstance(self.source, ReportsOverflows) else (0, [])
        )
        queued, queued_at = (
            self.sink.dropped_audio() if isinstance(self.sink, DropsAudio) else (0, [])
        )
        return Losses(
            captured=[(a / in_rate, b / in_rate) for a, b in stats.gaps],
            captured_seconds=stats.gap_frames / in_rate,
            queued=[(a / self.rate, b / self.rate) for a, b in queued_at],
            queued_seconds=queued / self.rate,
            overflows=overflows,
            overflow_at=[p / in_rate for p in overflow_at],
        )

    def _write(self, frame: Any) -> None:
        self.sink.write(frame)
        self.stats.output_frames += len(frame)

    def _feed_all(self, blocks: Iterator[Block], chain: Chain, emit: Callable[[Any], Any]) -> None:
        """Every block through ``chain`` into ``emit``, then the chain's flush."""
        try:
            self._feed(blocks, chain, emit)
        finally:
            _close(blocks)  # a generator: stop its reader now
        for item in chain.flush():
            emit(item)

    def _feed_written_behind(self, blocks: Iterator[Block], head: Chain, tail: Chain) -> None:
        """``head`` on this thread; ``tail`` and the sink's writes on a writer thread, joined
        by a bounded ring. The writer flushes ``tail`` only after a whole stream: after an
        error or an interrupt here it stops at once, and its own error is raised here."""
        ring: Ring[Block] = Ring.for_seconds(WRITE_BEHIND_SECONDS, self.rate, "block")
        whole = threading.Event()  # set just before the ring closes at the end of the stream

        def write() -> None:
            for block in ring:
                if not self._stopped_by_user:  # stopped: what is queued is not sent
                    for frame in tail.push(block):
                        self._write(frame)
            if whole.is_set():
                for frame in tail.flush():
                    self._write(frame)

        # A failed write aborts the ring: this thread's producer stops with RingClosed.
        writer = Worker(write, "nsaudio-writer", on_error=lambda err: ring.abort()).start()
        try:
            self._feed_all(blocks, head, ring.put)
            whole.set()
            ring.close()
        except RingClosed:
            if writer.error is None:
                raise
        finally:
            if not whole.is_set():
                ring.abort()
            writer.join()
        writer.raise_error()

    def _feed(self, blocks: Iterator[Block], chain: Chain, emit: Callable[[Any], Any]) -> None:
        stats = self.stats
        follows = None if not self.source.live else 0  # where a live source's next block starts
        for block in blocks:
            if follows is not None:
                if block.start > follows:
                    stats.note_gap(follows, block.start)
                follows = block.start + len(block)
            if self.limit_frames is not None:
                room = self.limit_frames - stats.input_frames
                if room < len(block):
                    block = Block(block.data[:room], block.start, block.rate, block.t_ns)
                    self._stop.set()
            stats.input_frames += len(block)
            for item in chain.push(block):
                if self._stopped_by_user:
                    break  # a file's block holds seconds: do not send them all first
                emit(item)
            if self._stop.is_set():
                _stop_source(self.source)
                return

"""One ``nsaudio stream`` run: built from the options, executed, and its end told.

:func:`build` makes everything a run needs before a frame is read (the stages, the session
and its sink, ``--record``, the pipeline) into a :class:`StreamRun`; :func:`execute` runs it
under the Ctrl-C handling and returns how it ended (:class:`Ended`); :func:`conclude` says so
on stderr and gives the exit status. The status line and the transcript are each owned by a
``with`` block in :func:`~.stream.run` (:func:`status_line`, :func:`transcript_writer`), so
whichever way a run ends, both are put away, the status line first.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ..channels import channel_path
from ..errors import AudioLostError, ConsumerError
from ..formats import FORMATS
from ..neuralspace.protocol import StreamParams, TranscriptResult
from ..runner import Pipeline, standard_stages
from ..sinks import Sink
from ..sinks.channels import ChannelSinks
from ..sinks.config import SessionConfig
from ..sources import Source
from ..sources.stdin import StdinSource
from ..stages import SpeechGate, Stage
from ..stages.speech_gate import find_gate
from ..stages.split import ChannelSplit
from .interrupts import EXIT_INTERRUPTED, first_interrupt_stops
from .options import resampler_quality
from .output import ResultWriter, TranscriptFile, Writer, make_writer, no_text_note
from .service import Endpoint

if TYPE_CHECKING:
    from ..sinks.neuralspace import NeuralSpaceSink
    from .status import StatusLine

__all__ = [
    "EXIT_BROKEN_PIPE",
    "STOP_WITHIN_S",
    "Ended",
    "Lane",
    "StreamRun",
    "build",
    "conclude",
    "execute",
    "gate_summary",
    "status_line",
    "transcript_writer",
]

log = logging.getLogger("nsaudio.stream")

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it
#: After the first Ctrl-C (or SIGTERM), how long the last results are awaited: the stream
#: ends within 2 s of it.
STOP_WITHIN_S = 1.8


@dataclass(frozen=True)
class Lane:
    """One session of a run: its channel's label (None when the run has a single session),
    the gate that labels its frames, and the sink that streams them to the service."""

    name: str | None
    gate: SpeechGate
    sink: NeuralSpaceSink


@dataclass(frozen=True)
class StreamRun:
    """A run built and not yet started.

    ``pipeline``: the source through the stages into the sink (``--record`` included);
    ``lanes``: its sessions; ``rate``: of the frames sent; ``pace``: the sender's.
    """

    source: Source
    pipeline: Pipeline
    lanes: list[Lane]
    rate: int
    pace: float


@dataclass(frozen=True)
class Ended:
    """How a run that did not raise ended: by Ctrl-C (``interrupted``), by the reader of
    stdout going away (``broken_pipe``), with live audio lost on the way (``lost``, to raise
    once everything else is said), or none of these."""

    interrupted: bool = False
    broken_pipe: bool = False
    lost: AudioLostError | None = None


# -- the terminal and the transcript ---------------------------------------------------------


class _NoStatus:
    """The status line when it is off: the plain writer, and nothing to start or close."""

    def writer(self, kind: str, out: TextIO, *, live: bool) -> Writer:
        return make_writer(kind, out, live=live)

    def start(self, **_: Any) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def status_line(args: argparse.Namespace) -> Iterator[StatusLine | _NoStatus]:
    """The live status line while the block runs, put away when it ends, whichever way.

    It is up when stderr is a terminal and neither ``-q`` nor ``--no-status`` was given
    (its module is imported only then); otherwise this gives a stand-in that does nothing.
    """
    try:
        on = not (args.no_status or getattr(args, "quiet", False)) and sys.stderr.isatty()
    except (AttributeError, ValueError):
        on = False
    if not on:
        yield _NoStatus()
        return
    from .status import StatusLine

    status = StatusLine(sys.stderr)
    try:
        yield status
    finally:
        status.close()


@contextlib.contextmanager
def transcript_writer(
    args: argparse.Namespace, status: StatusLine | _NoStatus
) -> Iterator[ResultWriter]:
    """The writer of the transcript (stdout, or ``-o FILE``), closed when the block ends.

    FILE is put in place if the block ended without an error, or if anything was written
    (a run that fails halfway keeps the results it printed); otherwise it never appears.
    """
    transcript = TranscriptFile(args.out)
    writer = status.writer(
        args.output, transcript.out, live=args.output == "text" and transcript.out.isatty()
    )
    finished = False
    try:
        yield writer
        finished = True
    finally:
        writer.close()
        transcript.finish(keep=finished or writer.written > 0)


# -- building ----------------------------------------------------------------------------


def default_pace(args: argparse.Namespace, source: Source) -> float:
    """``--pace``; live input and a pipe on stdin are never paced (their writer paces them),
    anything else is sent at real time unless asked otherwise."""
    if source.live:
        return 0.0
    if args.pace is not None:
        return float(args.pace)
    if args.source == "-" and not StdinSource.is_regular_file(sys.stdin.buffer):
        return 0.0  # a pipe is paced by its writer (arecord, ffmpeg -re)
    return 1.0


def ring_seconds(pace: float) -> float:
    """Seconds of frames a session queues ahead of what it has sent. Paced, the queue only
    has to cover a stall; a short one means Ctrl-C on a file stops within a couple of
    seconds instead of sending ten more."""
    return 2.0 if pace > 0 else 10.0


def session_config(
    args: argparse.Namespace, *, pace: float, live: bool, gate: SpeechGate
) -> SessionConfig:
    """The options' settings of a session whose frames ``gate`` labels."""
    return SessionConfig(
        pace=pace,
        live=live,
        ring_seconds=ring_seconds(pace),
        drain_timeout=args.drain_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        connect_timeout=args.connect_timeout,
        startup_timeout=args.connect_timeout,
        # The gate holds speech for its hangover and labels whole frames: a final result
        # may end that much (and a little) before a span of speech does.
        speech_tolerance=(gate.hangover_ms + args.frame_ms + 100) / 1000,
    )


def recording(sink: Sink, path: str | None) -> Sink:
    """``sink``, and beside it a WAV of what it is sent when ``--record`` gave ``path``."""
    if not path:
        return sink
    from ..sinks.files import WavSink
    from ..sinks.tee import TeeSink

    # A run that fails halfway keeps the audio it sent, as -o keeps its results.
    return TeeSink(sink, WavSink(path, keep_partial=True))


def build(
    args: argparse.Namespace,
    source: Source,
    endpoint: Endpoint,
    params: StreamParams,
    writer: ResultWriter,
    names: Sequence[str] | None = None,
) -> StreamRun:
    """Everything the run needs, results to ``writer``; nothing is read or sent yet.

    ``names``: with ``--split-channels``, the channels' labels: a session for each channel
    (see :mod:`nsaudio.channels`); None: one session for the mean, or ``--channel``.
    """
    fmt, rate = params.format, FORMATS[params.format]
    quality = resampler_quality(args, source.live)
    log.info(
        "%s: %s, %d Hz, %d channels -> %s (soxr %s, %g ms frames%s)",
        source.name, getattr(source, "format", "audio"), source.rate, source.channels,
        fmt, quality, args.frame_ms, ", a session per channel" if names else "",
    )  # fmt: skip
    pace = default_pace(args, source)

    def stages(channel: int | None) -> list[Stage]:
        # A detector of its own for each stream (it keeps the stream's state).
        return standard_stages(
            source, fmt, frame_ms=args.frame_ms, channel=channel, quality=quality,
            gate_threshold=args.gate_threshold, skip_silence=args.gate,
            pre_roll_ms=args.gate_pre_roll, tail_ms=args.gate_tail, gate_vad=args.gate_vad,
            gate_vad_model=args.gate_vad_model,
        )  # fmt: skip

    def session(
        name: str | None, gate: SpeechGate, on_result: Callable[[TranscriptResult], None]
    ) -> Lane:
        config = session_config(args, pace=pace, live=source.live, gate=gate)
        return Lane(name, gate, endpoint.sink(params, config, on_result=on_result))

    lanes: list[Lane] = []
    if names is None:
        mono = stages(args.channel)
        lanes.append(session(None, _gate_of(mono), writer.write))
        pipeline = Pipeline(
            source, mono, recording(lanes[0].sink, args.record), rate=rate,
            limit_seconds=args.duration,
        )  # fmt: skip
    else:
        split = ChannelSplit([stages(i) for i in range(len(names))], rate=rate)
        gates = dict(zip(names, split.gates, strict=True))

        def channel_sink(name: str, on_result: Callable[[TranscriptResult], None]) -> Sink:
            lanes.append(session(name, _gate_of([gates[name]]), on_result))
            return recording(lanes[-1].sink, args.record and channel_path(args.record, name))

        # A channel waits for another's result no longer than that one's queue may run ahead
        # of what it has sent (a live source's stays near empty), and then the time its
        # service takes to finalise.
        ahead = 2.0 if source.live else ring_seconds(pace)
        channels = ChannelSinks(
            names, channel_sink, on_result=writer.write, hold_seconds=ahead + 5.0
        )
        pipeline = Pipeline(source, [split], channels, rate=rate, limit_seconds=args.duration)
    return StreamRun(source, pipeline, lanes, rate, pace)


def _gate_of(stages: Sequence[object]) -> SpeechGate:
    gate = find_gate(stages)
    if gate is None:  # standard_stages() with a threshold always makes one
        raise RuntimeError("the stream's stages have no speech gate")
    return gate


# -- running -----------------------------------------------------------------------------


def execute(args: argparse.Namespace, run: StreamRun, status: StatusLine | _NoStatus) -> Ended:
    """Run the pipeline to its end; the first Ctrl-C stops it cleanly (the last results are
    drained), the second aborts it."""
    status.start(
        lanes=run.lanes, source=run.source, rate=run.rate, pace=run.pace, limit=args.duration,
        gated=args.gate, partials=not args.disable_partial,
    )  # fmt: skip
    pipeline = run.pipeline

    def stop() -> None:
        status.close()  # first: the interrupt's line must not tear it
        # What is queued goes out unpaced; the last results are awaited briefly.
        pipeline.stop(within=STOP_WITHIN_S)

    with first_interrupt_stops(stop) as interrupted:
        try:
            pipeline.run()
        except ConsumerError as err:
            if not isinstance(err.__cause__, BrokenPipeError):
                raise
            _mute_stdout()  # before the transcript's writer flushes at the end of its block
            return Ended(broken_pipe=True)
        except AudioLostError as err:
            return Ended(interrupted=bool(interrupted), lost=err)
    return Ended(interrupted=bool(interrupted))


def _mute_stdout() -> None:
    """Whoever read our output went away (``| head``): nothing more reaches the closed pipe,
    at the end of the run or at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def conclude(args: argparse.Namespace, run: StreamRun, ended: Ended) -> int:
    """Say on stderr how the run ended (the status line is gone by now) and give its exit
    status; audio lost on the way is raised last, after the report and the summary."""
    if ended.broken_pipe:
        sys.stderr.write("nsaudio: the output was closed; stopped the stream\n")
        return EXIT_BROKEN_PIPE
    for lane in run.lanes:
        _report(lane, run.source, run.rate)
    quiet = getattr(args, "quiet", False)
    if args.gate and not quiet:
        for lane in run.lanes:
            label = f"{lane.name}: " if lane.name is not None else ""
            sys.stderr.write(f"nsaudio: {label}{gate_summary(lane.gate, run.rate)}\n")
    for lane in run.lanes if not (quiet or ended.interrupted) else ():
        # A session that ended well with no text: say so, and why (nothing heard as speech,
        # or speech the service found no words in).
        note = None
        if not lane.sink.transcript.text.strip():
            note = no_text_note(lane.gate, run.rate, gated=args.gate)
        if note:
            label = f"{lane.name}: " if lane.name is not None else ""
            sys.stderr.write(f"nsaudio: {label}{note}\n")
    if ended.lost is not None:
        raise ended.lost  # exit 1 with one line, Ctrl-C or not: audio went untranscribed
    return EXIT_INTERRUPTED if ended.interrupted else 0


def gate_summary(gate: SpeechGate, rate: int) -> str:
    """``sent 11.2 s of 26.1 s; the gate skipped 14.9 s``: what ``--gate`` saved."""
    sent, seen = gate.passed_samples / rate, gate.seen_samples / rate
    if not gate.passed_samples and gate.seen_samples:
        return (
            f"sent nothing of {seen:.1f} s: the gate heard no speech "
            "(a lower --gate-threshold hears quieter speech)"
        )
    return f"sent {sent:.1f} s of {seen:.1f} s; the gate skipped {seen - sent:.1f} s"


def _report(lane: Lane, source: Source, rate: int) -> None:
    stats = lane.sink.stats()
    source_stats: dict[str, Any] = getattr(source, "stats", dict)()
    dropped = stats.get("dropped_frames", 0)
    captured = source_stats.get("dropped_samples", 0) / (source_stats.get("rate") or 1)
    overflows = source_stats.get("overflows", 0)
    silence = stats["silence_samples"]
    label = f"{lane.name}: " if lane.name is not None else ""
    log.info(
        "%ssent %.2f s of audio (and %.2f s of silence after it, to end the stream) in %d "
        "frames; %d reconnects; dropped: %d frames before sending, %.2f s of captured audio, "
        "%d device overflows; %d malformed results",
        label, (stats["samples_sent"] - silence) / rate, silence / rate, stats["frames_sent"],
        stats["reconnects"], dropped, captured, overflows, stats["malformed"],
    )  # fmt: skip
    if stats["reconnects"]:
        lost = stats.get("replay_dropped_samples", 0)
        log.warning(
            "%sthe connection was re-established %d times; %s",
            label,
            stats["reconnects"],
            f"{lost / rate:.2f} s of unfinalised audio outgrew the replay buffer"
            if lost
            else "every unfinalised frame was sent again",
        )

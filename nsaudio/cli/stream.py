"""``nsaudio stream SOURCE``: audio to the speech service, transcripts to stdout."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..errors import AudioLostError, ConsumerError, InputError
from ..formats import FORMATS
from ..neuralspace.protocol import RESERVED_QUERY_KEYS, StreamParams, check_query_key
from ..runner import Pipeline, standard_stages
from ..sinks import Sink
from ..sources import open_source
from ..sources.stdin import StdinSource
from .interrupts import EXIT_INTERRUPTED, first_interrupt_stops
from .options import (
    add_source_options,
    milliseconds,
    positive_float,
    resampler_quality,
    unit_interval,
    whole_number,
)
from .output import OUTPUTS, TranscriptFile, make_writer, no_text_note, recording
from .service import add_service_options, check_before_start, service_endpoint

log = logging.getLogger("nsaudio.stream")

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it
#: After the first Ctrl-C, how long the last results are awaited.
STOP_WITHIN_S = 1.5
MIN_STREAM_FRAME_MS, MAX_STREAM_FRAME_MS = 20, 1000


def frame_ms(text: str) -> float:
    value = positive_float(text)
    if not MIN_STREAM_FRAME_MS <= value <= MAX_STREAM_FRAME_MS:
        raise argparse.ArgumentTypeError(
            f"must be {MIN_STREAM_FRAME_MS} to {MAX_STREAM_FRAME_MS} ms, not {text}"
        )
    return value


def pace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be 0 (as fast as possible) or a positive factor, not {text}"
        )
    return value


#: The option that sets each query key nsaudio sets itself (max_chunk_size: --max-chunk-size).
_OPTION_OF = {key: "--" + key.replace("_", "-") for key in RESERVED_QUERY_KEYS}


class _QueryParam(argparse.Action):
    """``--param KEY=VALUE``, repeatable, into a dict; a key nsaudio sets or gives twice is
    a usage error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        key, sep, value = str(values).partition("=")
        if not sep or not key:
            parser.error(f"argument --param: expected KEY=VALUE, not {values!r}")
        if key in _OPTION_OF:
            parser.error(f"argument --param: nsaudio sets {key} itself: use {_OPTION_OF[key]}")
        try:
            check_query_key(key)
        except InputError as err:
            parser.error(f"argument --param: {err}")
        params = dict(getattr(namespace, self.dest) or {})
        if key in params:
            parser.error(f"argument --param: {key} given twice")
        params[key] = value
        setattr(namespace, self.dest, params)


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "stream",
        parents=[common],
        help="stream audio to the speech service and print transcripts",
        description="Stream SOURCE (a file, - for stdin, mic:, mic:N or mic:NAME) to NeuralSpace "
        "VoiceAI, or to the built-in local server when NS_API_KEY is not set, and print the "
        "transcript as it comes.",
    )
    p.add_argument(
        "source", metavar="SOURCE", help="audio file, - (stdin), mic:, mic:N or mic:NAME"
    )
    p.add_argument(
        "--language", default="en", help="language code (default en; see 'nsaudio languages')"
    )
    add_source_options(p)
    p.add_argument(
        "--max-chunk-size",
        type=whole_number(1, 60, "seconds"),
        default=5,
        metavar="S",
        help="seconds of speech after which the service finalises (default 5)",
    )
    p.add_argument(
        "--vad-threshold",
        type=positive_float,
        default=0.5,
        metavar="X",
        help="the service's speech threshold, any positive number (default 0.5)",
    )
    p.add_argument("--disable-partial", action="store_true", help="ask for full results only")
    p.add_argument(
        "--param",
        action=_QueryParam,
        default={},
        metavar="KEY=VALUE",
        help="another query parameter for the service, sent unchanged (e.g. min_chunk_size=2); "
        "repeatable",
    )
    p.add_argument(
        "--frame-ms",
        type=frame_ms,
        default=100,
        metavar="MS",
        help="audio per message, 20 to 1000 ms (default 100)",
    )
    p.add_argument(
        "--pace",
        type=pace,
        default=None,
        metavar="F",
        help="send files at F x real time (default 1; 0: as fast as the service takes "
        "them; stdin from a pipe defaults to 0)",
    )
    p.add_argument(
        "--duration", type=positive_float, metavar="S", help="stop after S seconds of audio"
    )
    p.add_argument(
        "--output", choices=OUTPUTS, default="text", help="text (default), jsonl, srt or vtt"
    )
    p.add_argument(
        "-o", "--out", metavar="FILE", help="write the transcript to FILE instead of stdout"
    )
    p.add_argument("--record", metavar="FILE.wav", help="also save the exact audio sent, as WAV")
    p.add_argument(
        "--no-status",
        action="store_true",
        help="no live status line on stderr (progress, level, speech/silence, audio sent); "
        "it shows only when stderr is a terminal, and not with -q",
    )
    gate = p.add_argument_group(
        "energy gate",
        "The gate hears speech as frames standing out of an adaptive noise floor. --gate sends "
        "only speech, with a pre-roll before each onset and a tail of the real audio after it "
        "so the service finalises each utterance; result times stay those of the stream.",
    )
    gate.add_argument("--gate", action="store_true", help="send only what the gate hears as speech")
    gate.add_argument(
        "--gate-threshold",
        type=unit_interval,
        default=0.5,
        metavar="X",
        help="the gate's sensitivity, above 0 to 1: higher needs louder speech (default 0.5: "
        "16 dB above the noise floor; 1: 26 dB)",
    )
    gate.add_argument(
        "--gate-pre-roll",
        type=milliseconds,
        default=300,
        metavar="MS",
        help="audio sent before each onset (default 300)",
    )
    gate.add_argument(
        "--gate-tail",
        type=milliseconds,
        default=700,
        metavar="MS",
        help="audio sent after the speech ends, past a 300 ms hangover, so the service's VAD "
        "hears the end (default 700: 1 s in all)",
    )
    p.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="how long to wait for the last result at the end (default 30)",
    )
    p.add_argument(
        "--ping-interval",
        type=positive_float,
        default=2.5,
        metavar="S",
        help="ping the service this often to know it is alive (default 2.5)",
    )
    p.add_argument(
        "--ping-timeout",
        type=positive_float,
        default=7.0,
        metavar="S",
        help="neither a pong nor a result this long after a ping: the connection is dead, "
        "reconnect (default 7; with the interval, a half-open connection is noticed within "
        "10 s)",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="how long opening a session may take; the first one is retried for as long "
        "(default 10)",
    )
    add_service_options(p)
    p.set_defaults(run=run)


def _default_pace(args: argparse.Namespace, source: Any) -> float:
    if source.live:
        return 0.0
    if args.pace is not None:
        return float(args.pace)
    if args.source == "-" and not StdinSource.is_regular_file(sys.stdin.buffer):
        return 0.0  # a pipe is paced by its writer (arecord, ffmpeg -re)
    return 1.0


def run(args: argparse.Namespace) -> int:
    if args.record and not args.record.lower().endswith(".wav"):
        raise InputError(f"{args.record}: --record writes WAV: give a name ending in .wav")
    check_before_start(args)
    source = open_source(args.source, raw=args.raw)
    try:
        return _run(args, source)
    finally:
        close = getattr(source, "close", None)  # also when the run never read from it
        if close is not None:
            close()


def _run(args: argparse.Namespace, source: Any) -> int:
    fmt = args.format
    quality = resampler_quality(args, source.live)
    log.info(
        "%s: %s, %d Hz, %d channels -> %s (soxr %s, %g ms frames)",
        source.name, getattr(source, "format", "audio"), source.rate, source.channels,
        fmt, quality, args.frame_ms,
    )  # fmt: skip
    # What can be refused is made before the service starts (the local server takes 0.6 s):
    # a bad --channel, -o or --record is a usage error at once.
    stages = standard_stages(
        source, fmt, frame_ms=args.frame_ms, channel=args.channel, quality=quality,
        gate_threshold=args.gate_threshold, skip_silence=args.gate,
        pre_roll_ms=args.gate_pre_roll, tail_ms=args.gate_tail,
    )  # fmt: skip
    transcript = TranscriptFile(args.out)
    record = recording(args.record)
    with transcript.discarded_on_error(record), service_endpoint(args) as endpoint:
        language = endpoint.check_language(args.language)
        params = StreamParams(
            language=language,
            format=fmt,
            max_chunk_size=args.max_chunk_size,
            vad_threshold=args.vad_threshold,
            disable_partial=args.disable_partial,
            extra=args.param,
        )
        status = _status_line(args)
        writer = (status.writer if status else make_writer)(
            args.output, transcript.out, live=args.output == "text" and transcript.out.isatty()
        )
        finished = False
        lost: AudioLostError | None = None
        try:
            pace = _default_pace(args, source)
            from ..sinks.config import SessionConfig

            gate: Any = stages[-1]
            config = SessionConfig(
                pace=pace,
                live=source.live,
                # Paced, the queue only has to cover a stall; a short one means Ctrl-C on a
                # file stops within a couple of seconds instead of sending ten more.
                ring_seconds=2.0 if pace > 0 else 10.0,
                drain_timeout=args.drain_timeout,
                ping_interval=args.ping_interval,
                ping_timeout=args.ping_timeout,
                connect_timeout=args.connect_timeout,
                startup_timeout=args.connect_timeout,
                # The gate holds speech for its hangover and labels whole frames: a final
                # result may end that much (and a little) before a span of speech does.
                speech_tolerance=(gate.hangover_ms + args.frame_ms + 100) / 1000,
            )
            sink = endpoint.sink(params, config, on_result=writer.write)
            target: Sink = sink
            if record is not None:
                from ..sinks.tee import TeeSink

                target = TeeSink(sink, record)
            pipeline = Pipeline(
                source, stages, target, rate=FORMATS[fmt], limit_seconds=args.duration
            )
            if status:
                status.start(
                    source=source, gate=stages[-1], sink=sink, rate=FORMATS[fmt], pace=pace,
                    limit=args.duration, gated=args.gate, partials=not args.disable_partial,
                )  # fmt: skip

            def stop() -> None:
                if status:
                    status.close()  # before the interrupt's line
                # What is queued goes out unpaced; the last results are awaited briefly.
                pipeline.stop(within=STOP_WITHIN_S)

            with first_interrupt_stops(stop) as interrupted:
                try:
                    pipeline.run()
                except ConsumerError as err:
                    if isinstance(err.__cause__, BrokenPipeError):
                        if status:
                            status.close()
                        return _broken_pipe()
                    raise
                except AudioLostError as err:
                    lost = err  # the stream ended: its transcript is kept, then the error
            finished = True
        finally:
            if status:
                status.close()  # before any error line or summary
            writer.close()
            transcript.finish(keep=finished or writer.written > 0)
    _report(sink.stats(), getattr(source, "stats", dict)(), FORMATS[fmt])
    if args.gate and not getattr(args, "quiet", False):
        sys.stderr.write(f"nsaudio: {gate_summary(stages[-1], FORMATS[fmt])}\n")
    note = (
        None
        if writer.texts or interrupted
        else no_text_note(stages[-1], FORMATS[fmt], gated=args.gate)
    )
    if note and not getattr(args, "quiet", False):
        sys.stderr.write(f"nsaudio: {note}\n")
    if lost is not None:
        raise lost  # exit 1 with one line, Ctrl-C or not: audio went untranscribed
    return EXIT_INTERRUPTED if interrupted else 0


def _status_line(args: argparse.Namespace) -> Any:
    """The live status line when stderr is a terminal, and not with -q or --no-status; its
    module is imported only then."""
    try:
        on = not (args.no_status or getattr(args, "quiet", False)) and sys.stderr.isatty()
    except (AttributeError, ValueError):
        on = False
    if not on:
        return None
    from .status import StatusLine

    return StatusLine(sys.stderr)


def gate_summary(gate: Any, rate: int) -> str:
    """``sent 11.2 s of 26.1 s; the gate skipped 14.9 s``: what ``--gate`` saved."""
    sent, seen = gate.passed_samples / rate, gate.seen_samples / rate
    if not gate.passed_samples and gate.seen_samples:
        return (
            f"sent nothing of {seen:.1f} s: the gate heard no speech "
            "(a lower --gate-threshold hears quieter speech)"
        )
    return f"sent {sent:.1f} s of {seen:.1f} s; the gate skipped {seen - sent:.1f} s"


def _broken_pipe() -> int:
    """Whoever read our output went away (``| head``): say so once, exit as SIGPIPE would."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing more reaches the closed pipe at exit
    os.close(devnull)
    sys.stderr.write("nsaudio: the output was closed; stopped the stream\n")
    return EXIT_BROKEN_PIPE


def _report(stats: dict[str, Any], source_stats: dict[str, Any], rate: int) -> None:
    dropped = stats.get("dropped_frames", 0)
    captured = source_stats.get("dropped_samples", 0) / (source_stats.get("rate") or 1)
    overflows = source_stats.get("overflows", 0)
    silence = stats["silence_samples"]
    log.info(
        "sent %.2f s of audio (and %.2f s of silence after it, to end the stream) in %d "
        "frames; %d reconnects; dropped: %d frames before sending, %.2f s of captured audio, "
        "%d device overflows; %d malformed results",
        (stats["samples_sent"] - silence) / rate, silence / rate, stats["frames_sent"],
        stats["reconnects"], dropped, captured, overflows, stats["malformed"],
    )  # fmt: skip
    if stats["reconnects"]:
        lost = stats.get("replay_dropped_samples", 0)
        log.warning(
            "the connection was re-established %d times; %s",
            stats["reconnects"],
            f"{lost / rate:.2f} s of unfinalised audio outgrew the replay buffer"
            if lost
            else "every unfinalised frame was sent again",
        )

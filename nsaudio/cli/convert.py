"""``nsaudio convert SOURCE OUT``: audio to the exact PCM the service wants, on the fast path."""

from __future__ import annotations

import argparse
import logging
import os
import stat

from ..errors import InputError
from ..formats import format_rate
from ..runner import Pipeline, standard_stages
from ..sinks import RawSink, WavSink
from ..sources import open_source
from .options import add_source_options, resampler_quality

log = logging.getLogger("nsaudio.convert")

#: Large frames on the fast path: framing cost vanishes, the bytes are the same.
CONVERT_FRAME_MS = 1000
#: Large blocks too, twice streaming's: half as many hand-offs between the three threads.
#: On benchmarks/throughput.py's input, 15 alternating runs of each size against sox:
#: 0.48x sox's time at 65536, 0.42x at 131072, 0.41x at 262144; peak RSS 32, 34, 38 MB.
CONVERT_BLOCK_FRAMES = 131072


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "convert",
        parents=[common],
        help="convert audio to int16 LE mono at 16 or 8 kHz",
        description="Convert SOURCE to the service's PCM. OUT: .raw/.pcm headerless int16 LE "
        "mono, .wav 16-bit mono WAV, - raw to stdout; a device or a pipe (/dev/null, a FIFO) "
        "takes raw PCM too.",
    )
    p.add_argument("source", metavar="SOURCE", help="audio file, or - for stdin")
    p.add_argument("out", metavar="OUT", help="output .raw, .pcm, .wav, or - for stdout")
    add_source_options(p)
    p.set_defaults(run=run)


def sink_class(out: str) -> type[RawSink] | type[WavSink]:
    """The sink an output name asks for; checked before any audio is read. A device or a
    pipe that exists (``/dev/null``, a FIFO, ``/dev/stdout``) takes headerless PCM whatever
    its name."""
    lower = out.lower()
    if out == "-" or lower.endswith((".raw", ".pcm")) or _device_or_pipe(out):
        return RawSink
    if lower.endswith(".wav"):
        return WavSink
    raise InputError(f"{out}: output must end in .raw, .pcm or .wav, or be - for stdout")


def _device_or_pipe(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def run(args: argparse.Namespace) -> int:
    make_sink = sink_class(args.out)
    source = open_source(args.source, raw=args.raw, block_frames=CONVERT_BLOCK_FRAMES)
    stages = standard_stages(
        source,
        args.format,
        frame_ms=CONVERT_FRAME_MS,
        channel=args.channel,
        quality=resampler_quality(args, source.live),
        gate_threshold=None,
    )
    sink = make_sink(args.out)
    rate = format_rate(args.format)
    # A third thread frames and writes while this one resamples; not for a pipe or a
    # device, whose writes may wait on a reader that Ctrl-C should not have to wait for.
    try:
        stats = Pipeline(source, stages, sink, rate=rate, write_thread=sink.to_regular_file).run()
    except BrokenPipeError:
        # The reader went away (| head): exit 141, and -v says what it had, no more.
        log.info(
            "%s: wrote %d frames (%.2f s) at %d Hz, then the output was closed; stopped",
            args.out, sink.frames_written, sink.frames_written / rate, rate,
        )  # fmt: skip
        raise
    log.info(
        "%s: %d frames at %d Hz -> %s: %d frames at %d Hz in %.3f s",
        source.name,
        stats.input_frames,
        source.rate,
        args.out,
        stats.output_frames,
        format_rate(args.format),
        stats.seconds,
    )
    return 0

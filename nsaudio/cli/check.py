"""``nsaudio check SOURCE``: am I audible? A live level meter, then a verdict.

The source goes through the same stages as ``stream`` (resampler to 16 kHz, framer, energy
gate), so "speech" here is what the pipeline would call speech. Peak and clipping are
measured on the input before resampling. Files are read as fast as they decode.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from typing import Any

from ..meter import LevelMeter, LevelStats
from ..runner import prefetched
from ..sources import Source, open_source
from ..stages import Chain, EnergyGate, Framer, Resampler
from .interrupts import EXIT_INTERRUPTED, first_interrupt_stops
from .options import positive_float, raw_spec, unit_interval

log = logging.getLogger("nsaudio.check")

RATE = 16000
FRAME_MS = 20
#: A microphone is listened to this long unless --duration says otherwise.
MIC_SECONDS = 5.0
METER_INTERVAL = 0.1
EXIT_NOT_AUDIBLE = 1

EPILOG = """\
verdicts (the first rule that applies):
  silence    peak below -60 dBFS, or no frame that the energy gate calls speech
  clipping   0.1% or more of the input samples at full scale (within one 16-bit step),
             measured before resampling
  too quiet  speech found, but peak below -35 dBFS or speech RMS below -45 dBFS
  audible    otherwise

exit status: 0 audible; 1 too quiet, clipping or silence; 2 bad input or device;
130 interrupted (Ctrl-C on a microphone ends the check early: the verdict is still printed)
"""


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check",
        parents=[common],
        help="am I audible? level meter and a verdict for a microphone or a file",
        description="Listen to SOURCE (a file, - for stdin, mic:, mic:N or mic:NAME) and say\n"
        "whether speech in it is audible, too quiet, clipping, or absent. A microphone\n"
        "shows a live level meter on stderr when that is a terminal; files are read as\n"
        "fast as they decode.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help="audio file, - for stdin, or mic:[N|NAME]")
    p.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help=f"seconds to listen to a microphone (default {MIC_SECONDS:g}) or to read of a file "
        "(default: all of it)",
    )
    p.add_argument(
        "--threshold",
        type=unit_interval,
        default=0.5,
        metavar="X",
        help="speech score (0..1) at which the energy gate calls a frame speech (default 0.5)",
    )
    p.add_argument(
        "--raw",
        type=raw_spec,
        metavar="RATE:CH:TYPE",
        help="SOURCE is headerless PCM, e.g. 16000:1:s16le",
    )
    p.add_argument("--json", action="store_true", help="the verdict as one JSON object")
    p.add_argument("--no-meter", action="store_true", help="no live meter, even on a terminal")
    p.set_defaults(run=run)


def _show_meter(args: argparse.Namespace, source: Source) -> bool:
    if args.no_meter or getattr(args, "quiet", False) or not source.live:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    live = args.source.startswith("mic:")
    source = (
        open_source(args.source, duration=args.duration or MIC_SECONDS)
        if live
        else open_source(args.source, raw=args.raw)
    )
    log.info(
        "%s: %d Hz, %d ch, %s",
        source.name,
        source.rate,
        source.channels,
        getattr(source, "format", "?"),
    )
    stats = LevelStats()
    gate = EnergyGate(args.threshold)
    chain = Chain([Resampler(source.rate, RATE, source.channels), Framer(RATE, FRAME_MS), gate])
    meter = LevelMeter() if _show_meter(args, source) else None
    limit = None if live or args.duration is None else round(args.duration * source.rate)

    blocks = source.blocks() if source.live else prefetched(source)
    # Ctrl-C ends a microphone's check early, with its verdict; a file's ends at once (130).
    stop_ctx: contextlib.AbstractContextManager[object] = (
        first_interrupt_stops(source.stop) if live else contextlib.nullcontext(False)
    )
    next_draw = 0.0
    drawn = 0
    with stop_ctx as interrupted:
        try:
            for block in blocks:
                if limit is not None:
                    room = limit - stats.input_frames
                    if room <= 0:
                        break
                    if block.frames > room:
                        block.data = block.data[:room]
                peak, clipped = stats.add_block(block)
                now = time.monotonic()
                if meter is not None:
                    meter.peak(peak, clipped, now)
                for frame in chain.push(block):
                    stats.add_frame(frame)
                    if meter is not None:
                        meter.frame(gate.level_db, bool(frame.speech))
                if meter is not None and now >= next_draw:
                    line = meter.render(now)
                    sys.stderr.write("\r" + line)
                    sys.stderr.flush()
                    drawn, next_draw = len(line), now + METER_INTERVAL
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()
            if drawn:
                sys.stderr.write("\r" + " " * drawn + "\r")
                sys.stderr.flush()
        for frame in chain.flush():
            stats.add_frame(frame)

    verdict = stats.verdict(live=source.live)
    extra: dict[str, Any] = {}
    if live:
        overflows, dropped = source.overflows, source.dropped  # type: ignore[attr-defined]
        extra = {"overflows": overflows, "dropped": dropped}
        if overflows or dropped:
            log.warning(
                "%d input overflow(s) and %d dropped block(s): some audio was lost",
                overflows,
                dropped,
            )
    if args.json:
        out = {
            **verdict.as_dict(),
            "source": source.name,
            "rate": source.rate,
            "channels": source.channels,
            **extra,
        }
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stdout.write(verdict.line() + "\n")
    sys.stdout.flush()
    if interrupted:
        return EXIT_INTERRUPTED
    return 0 if verdict.ok else EXIT_NOT_AUDIBLE

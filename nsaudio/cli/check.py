"""``nsaudio check SOURCE``: am I audible? A live level meter, then a verdict.

A :class:`~nsaudio.runner.Pipeline` like ``stream``'s: the source, a stage that measures each
input block (peak and clipping, before resampling), the resampler to 16 kHz, the framer, the
energy gate, and a sink that meters the gated frames instead of sending them. So "speech"
here is what the pipeline would call speech, ``--duration``, end of stream and Ctrl-C work as
they do for ``stream``, and the verdict (:mod:`nsaudio.meter`) says what ``stream`` and the
gate will make of the audio. Files are read as fast as they decode.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from typing import Any, TextIO

from ..blocks import Block, Frame
from ..errors import AudioLostError
from ..meter import LevelMeter, LevelStats
from ..runner import Pipeline
from ..sources import Source, open_source
from ..stages import EnergyGate, Framer, Resampler, Stage, level_dbfs
from .interrupts import EXIT_INTERRUPTED, first_interrupt_stops
from .options import positive_float, raw_spec, unit_interval

log = logging.getLogger("nsaudio.check")

RATE = 16000
FRAME_MS = 20
#: A microphone is listened to this long unless --duration says otherwise.
MIC_SECONDS = 5.0
METER_INTERVAL = 0.1
EXIT_NOT_AUDIBLE = 1

EPILOG = """verdicts (the first rule that applies), and what `nsaudio stream` will make of the audio:
  clipping   0.1% or more of the input samples at full scale (within one 16-bit step),
             measured before resampling: distorted speech is misheard
  silence    no frame that the energy gate calls speech, nor would it 20 dB louder:
             --gate sends nothing, and no text comes back
  tone       most of the loud speech frames are one steady frequency: the gate sends it,
             and a recogniser finds no words in it
  too quiet  the gate hears under 80% of the speech it would hear 20 dB louder: the
             gate, and a service's VAD, would cut up or miss that speech
  audible    otherwise: it will be sent, and heard

The gate is the one `stream --gate` uses; the local server's VAD decides speech with the
same detector at the same threshold (--threshold here, --gate-threshold there).

exit status: 0 audible; 1 too quiet, clipping, tone or silence; 2 bad input or device;
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


class InputLevels:
    """A stage that passes input blocks on unchanged, measuring them first: peak and
    clipping must be seen before resampling smooths clipped plateaus away."""

    def __init__(self, stats: LevelStats, meter: LevelMeter | None) -> None:
        self.stats, self.meter = stats, meter

    def push(self, block: Block) -> list[Block]:
        peak, clipped = self.stats.add_block(block)
        if self.meter is not None:
            self.meter.peak(peak, clipped, time.monotonic())
        return [block]

    def flush(self) -> list[Block]:
        return []

    def reset(self) -> None:
        pass


class LevelSink:
    """Where ``check``'s frames go: into :class:`~nsaudio.meter.LevelStats`, and with a
    ``meter`` a live line on ``out`` (redrawn every ``METER_INTERVAL``, erased at the end)."""

    def __init__(self, stats: LevelStats, meter: LevelMeter | None, out: TextIO) -> None:
        self.stats, self.meter, self.out = stats, meter, out
        self._drawn = 0
        self._next_draw = 0.0

    def open(self, rate: int) -> None:
        pass

    def write(self, frame: Frame) -> None:
        self.stats.add_frame(frame)
        if self.meter is None:
            return
        self.meter.frame(level_dbfs(frame.pcm), bool(frame.speech))
        now = time.monotonic()
        if now >= self._next_draw:
            line = self.meter.render(now)
            self.out.write("\r" + line)
            self.out.flush()
            self._drawn, self._next_draw = len(line), now + METER_INTERVAL

    def close(self) -> None:
        if self._drawn:
            self.out.write("\r" + " " * self._drawn + "\r")
            self.out.flush()
            self._drawn = 0

    def abort(self) -> None:
        self.close()


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
    stats = LevelStats(threshold=args.threshold)
    meter = LevelMeter() if _show_meter(args, source) else None
    gate = EnergyGate(args.threshold)
    stages: list[Stage] = [
        InputLevels(stats, meter),
        Resampler(source.rate, RATE, source.channels),
        Framer(RATE, FRAME_MS),
        gate,
    ]
    pipeline = Pipeline(
        source, stages, LevelSink(stats, meter, sys.stderr), rate=RATE,
        limit_seconds=None if live else args.duration,
    )  # fmt: skip
    # Ctrl-C ends a microphone's check early, with its verdict; a file's ends at once (130).
    stop_ctx: contextlib.AbstractContextManager[object] = (
        first_interrupt_stops(pipeline.stop) if live else contextlib.nullcontext(False)
    )
    with stop_ctx as interrupted:
        try:
            pipeline.run()
        except AudioLostError as err:  # the verdict stands on what was heard
            log.warning("%s", err)

    verdict = stats.verdict(live=source.live)
    extra: dict[str, Any] = {}
    if live:
        overflows, dropped = source.overflows, source.dropped  # type: ignore[attr-defined]
        extra = {"overflows": overflows, "dropped": dropped}
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

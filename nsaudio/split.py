"""A long uncompressed file converted on two threads: segments resampled apart, then spliced.

soxr runs a stream on one thread, and in ``nsaudio convert`` it is most of the work. Cut
into segments, a file can be resampled on both cores: each worker reads its segments from
its own handle (libsndfile and soxr release the GIL), downmixes, resamples and rounds to
int16, and the caller's thread writes the segments in order. Each segment's stream starts
``roll`` input samples early and runs ``roll`` past its end, more than the filter reaches,
and only the output of the segment's own span is kept, so every kept sample saw the same
input as in one pass over the whole file: the splice is within 1 LSB of one-shot soxr (the
float results differ by rounding, ~1e-7, as soxr's FFT blocks fall elsewhere), and
bit-exact where the stream starts on a multiple of soxr's block step (``EXACT_STEPS``).

Only uncompressed files whose length is known take this path (seeking is exact and cheap);
everything else goes through :class:`~nsaudio.runner.Pipeline`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

from .blocks import Block, Frame
from .errors import RingClosed
from .ring import Ring
from .runner import RunStats
from .sinks import Sink
from .sources import FileSource
from .stages import Resampler, to_int16

__all__ = [
    "EXACT_STEPS",
    "SEGMENT_SECONDS",
    "Segment",
    "plan",
    "run_split",
    "splittable",
]

#: Input per segment: long enough that a segment's set-up and its rolls cost little, short
#: enough that the two workers finish together and a segment's output (held until the one
#: before it is written) stays small: 15 s is 480 kB at 16 kHz.
SEGMENT_SECONDS = 15.0
#: Input steps of soxr's (1.1) FFT blocks, by (input rate, output rate, quality), measured:
#: a stream started on a multiple gives the same floats as one started at 0. Elsewhere the
#: splice is within 1 LSB, not bit-exact.
EXACT_STEPS = {
    (48000, 16000, "HQ"): 4404,
    (32000, 16000, "HQ"): 1660,
    (16000, 8000, "HQ"): 1660,
    (8000, 16000, "HQ"): 830,
}
log = logging.getLogger("nsaudio.split")

_CONTAINERS = frozenset({"WAV", "WAVEX", "W64", "RF64", "AIFF"})
_UNCOMPRESSED = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})


class Segment(NamedTuple):
    """Input read ``[read_from, read_to)``; output kept for the input span ``[keep_from,
    keep_to)``, at the output rate ``[out_from, out_to)`` (``out_to`` None: to the end)."""

    read_from: int
    read_to: int
    keep_from: int
    keep_to: int
    out_from: int
    out_to: int | None


def plan(
    frames: int, in_rate: int, out_rate: int, *, segment: int, roll: int, align: int
) -> list[Segment]:
    """Segments covering ``frames`` input samples.

    ``segment`` and ``align`` must be multiples of ``in_rate / gcd(in_rate, out_rate)`` so
    that every boundary falls on a whole output sample; a stream starts on a multiple of
    ``align``, at least ``roll`` samples before its span, and runs ``roll + 2 * align`` past
    it.
    """
    step = in_rate // math.gcd(in_rate, out_rate)
    if segment % step or align % step:
        raise ValueError(f"segment {segment} and align {align} must be multiples of {step}")
    out: list[Segment] = []
    for keep_from in range(0, frames, segment):
        keep_to = min(frames, keep_from + segment)
        read_from = max(0, (keep_from - roll) // align * align)
        last = keep_to == frames
        out.append(
            Segment(
                read_from,
                # beyond the filter's reach, two blocks more: the flush at the end changes
                # the rounding of the whole FFT block it falls in
                frames if last else min(frames, keep_to + roll + 2 * align),
                keep_from,
                keep_to,
                keep_from * out_rate // in_rate,
                None if last else keep_to * out_rate // in_rate,
            )
        )
    return out


def filter_reach(in_rate: int, out_rate: int, quality: str) -> int:
    """Input samples on either side of an output sample that reach it: the extent of an
    impulse's response (every sample not exactly 0), so it holds for any ratio and quality.

    Beyond it lies only rounding noise (~1e-9), which moves with the layout of soxr's FFT
    blocks; callers take twice this as a margin.
    """
    n = 2 * in_rate
    while True:
        impulse = np.zeros(n, np.float32)
        impulse[n // 2] = 1.0
        y = soxr.resample(impulse, in_rate, out_rate, quality=quality)
        heard = np.flatnonzero(y)
        if heard[0] > 0 and heard[-1] < len(y) - 1:  # the response ends inside
            break
        n *= 2
    mid = n // 2 * out_rate / in_rate
    half = max(mid - heard[0], heard[-1] - mid)
    return math.ceil((half + 2) * in_rate / out_rate)


def splittable(source: object, out_rate: int, *, segment_seconds: float = SEGMENT_SECONDS) -> bool:
    """True where :func:`run_split` applies and pays: an uncompressed file of known length
    spanning at least two segments, a rate to change, and two CPUs to do it on."""
    if not isinstance(source, FileSource) or source.rate == out_rate:
        return False
    container, _, subtype = source.format.partition("/")
    frames = source.frames
    return (
        container in _CONTAINERS
        and subtype in _UNCOMPRESSED
        and frames is not None
        and frames >= 2 * segment_seconds * source.rate
        and _cpus() >= 2
    )


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the CPUs this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Worker:
    """Segments ``index, index + stride, ...`` of the plan, as int16 frames into ``ring``; an
    empty frame at the input position reached ends each segment. ``ended`` is the first
    segment that found the audio ending before its own end (the file shrank after the
    source opened it): the last one to write."""

    def __init__(
        self,
        source: FileSource,
        segments: list[Segment],
        index: int,
        stride: int,
        resampler: Resampler,
        block: int,
        capacity: int,
    ) -> None:
        self.source = source
        self.segments = segments
        self.indices = range(index, len(segments), stride)
        self.resampler = resampler
        self.buffer = np.empty((block, source.channels), source.dtype)
        self.ring: Ring[Frame] = Ring(capacity)
        self.error: BaseException | None = None
        self.ended: int | None = None
        self.thread = threading.Thread(target=self._run, name=f"nsaudio-split-{index}", daemon=True)

    def _run(self) -> None:
        try:
            with sf.SoundFile(str(self.source.path)) as f:
                for i in self.indices:
                    self._segment(f, i)
                    if self.ended is not None:
                        break
        except RingClosed:
            pass  # the writer stopped
        except BaseException as err:
            self.error = err
        finally:
            self.ring.close()

    def _segment(self, f: sf.SoundFile, i: int) -> None:
        seg, src, res = self.segments[i], self.source, self.resampler
        res.reset()
        pos = seg.read_from
        if pos < f.frames:  # the file may have shrunk since the source opened it
            f.seek(pos)
            while pos < seg.read_to:
                want = min(len(self.buffer), seg.read_to - pos)
                data = f.read(want, always_2d=True, out=self.buffer[:want])  # used in push()
                self._keep(seg, res.push(Block(data, pos, src.rate, 0)))
                pos += len(data)
                if len(data) < want:  # the audio ends here: the flush below is its end
                    break
        self._keep(seg, res.flush())
        if pos < seg.keep_to:  # the audio ends before this segment does
            self.ended = i
        self.ring.put(Frame(b"", min(pos, seg.keep_to), res.out_rate, 0))

    def _keep(self, seg: Segment, blocks: list[Block]) -> None:
        for b in blocks:
            lo = max(seg.out_from - b.start, 0)
            hi = b.frames if seg.out_to is None else min(seg.out_to - b.start, b.frames)
            if hi > lo:
                pcm = to_int16(b.data[lo:hi]).tobytes()
                self.ring.put(Frame(pcm, b.start + lo, b.rate, time.monotonic_ns()))


def run_split(
    source: FileSource,
    make_resampler: Callable[[], Resampler],
    sink: Sink,
    *,
    segment_seconds: float = SEGMENT_SECONDS,
    workers: int = 2,
) -> RunStats:
    """``source`` through resamplers from ``make_resampler`` on ``workers`` threads, the
    frames into ``sink`` in order from the caller's thread.

    As :meth:`Pipeline.run`: any error (Ctrl-C too) aborts the sink, so nothing half-written
    is left, and is re-raised; the threads are joined and the source closed in any case.
    """
    t0 = time.perf_counter()
    stats = RunStats()
    crew: list[_Worker] = []
    try:
        frames = source.frames or 0
        source.close()  # the workers read through handles of their own
        resamplers = [make_resampler() for _ in range(workers)]
        first = resamplers[0]
        in_rate, out_rate = first.in_rate, first.out_rate
        step = in_rate // math.gcd(in_rate, out_rate)
        exact = EXACT_STEPS.get((in_rate, out_rate, first.quality), step)
        align = exact * step // math.gcd(exact, step)
        segment = max(step, round(segment_seconds * in_rate) // step * step)
        roll = 2 * filter_reach(in_rate, out_rate, first.quality)
        segments = plan(frames, in_rate, out_rate, segment=segment, roll=roll, align=align)
        block = source.block_frames
        capacity = (segment + block) * out_rate // in_rate + 1
        log.debug("%s: %d segments on %d threads", source.name, len(segments), workers)
        crew = [
            _Worker(source, segments, i, workers, res, block, capacity)
            for i, res in enumerate(resamplers)
        ]
        sink.open(out_rate)
        for w in crew:
            w.thread.start()
        for i in range(len(segments)):
            w = crew[i % workers]
            while (frame := w.ring.get()) is not None and frame.frames:
                sink.write(frame)
                stats.output_frames += frame.frames
            if frame is None:  # the worker stopped early: it failed
                raise w.error or RuntimeError("a split worker stopped without saying why")
            stats.input_frames = frame.start
            if w.ended == i:
                break
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        for w in crew:
            w.ring.abort()
        for w in crew:
            if w.thread.ident is not None:  # started
                w.thread.join()
        source.close()
    stats.seconds = time.perf_counter() - t0
    return stats

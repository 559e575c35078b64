"""Silero gates of the streams on one event loop, scored together, off the loop.

Scored alone, Silero costs about 0.6 ms of CPU per 100 ms frame, most of it the model's fixed
cost per call; in one call for many streams, a small part of that per stream
(``benchmarks/vad_batch.py``). A gateway's loop carries hundreds of streams, so a stream's
Silero gate does not score its frames inline: it is a :class:`GateLane` of its loop's
:class:`GateScoring`, which

- takes the frames as they come out of the stream's stages, without waiting (:meth:`GateLane.push`);
- ``WAIT_S`` after the first frame waits (5 ms, so that other streams' frames join it; at
  the end of the loop's turn for a sender that awaits the decisions), scores every lane's
  waiting frames in one batched call per window step
  (:meth:`~nsaudio.detectors.SileroBatcher.run`) in a worker thread of its own (onnxruntime
  lets go of the GIL, so the loop goes on meanwhile); frames that come while a batch runs go
  in the next one, which starts as soon as it ends, so batches grow with the load;
- back on the loop, has each gate decide on its frames in order, and hands what passes to
  the lane's ``deliver`` (a live stream's sink), or keeps it for :meth:`GateLane.through`
  (a sender that awaits).

One batch runs at a time, so a detector is never used by two threads at once: its windows
are prepared on the loop before the batch starts, its state is stepped in the worker while
the batch runs, and its scores are read on the loop after. A stream's frames keep their
order. A live lane holds at most ``limit_samples`` of waiting audio, dropping the oldest
beyond it (counted, as a live stream's ring does), so a machine that cannot keep up loses
audio it says it lost, never its memory. A lane whose scoring fails (the model raised) is
failed with a :class:`~nsaudio.errors.DetectorError`, and its ``on_fail`` ends its stream:
the frames it held are gone, so the stream must not end as if they were sent.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import time
import weakref
from collections.abc import Callable, Iterable

import numpy as np

from ..blocks import Frame
from ..detectors.batcher import SileroBatcher
from ..detectors.silero import SileroDetector, Windows
from ..errors import DetectorError, NsAudioError
from ..ring import MAX_DROPPED_SPANS
from ..stages.speech_gate import SpeechGate

__all__ = ["WAIT_S", "GateLane", "GateScoring", "scoring_for"]

#: How long the first frame of a batch waits for other streams' frames to join it, seconds
#: (against the 100 ms a frame holds; a model call costs about as much for 30 streams as
#: for one).
WAIT_S = 0.005


class GateLane:
    """One stream's Silero gate on its loop's :class:`GateScoring` (see the module docstring).

    ``deliver``: called on the loop with the frames that passed, in order, after each batch;
    None: they are kept for :meth:`through`. ``limit_samples``: waiting audio kept at most
    (None: no limit, for a sender that awaits each push). ``dropped_samples`` and
    ``dropped_spans`` count what was dropped beyond it (stream positions; the first
    ``MAX_DROPPED_SPANS`` places). ``on_fail``: called on the loop once, with the error, if
    this lane fails (its frames are then gone: the stream must end with that error).
    """

    def __init__(
        self,
        scoring: GateScoring,
        gate: SpeechGate,
        deliver: Callable[[list[Frame]], None] | None,
        limit_samples: int | None,
        on_fail: Callable[[NsAudioError], None] | None = None,
    ) -> None:
        self.scoring = scoring
        self.gate = gate
        self.detector: SileroDetector = gate.detector  # type: ignore[assignment]
        self.deliver = deliver
        self.limit_samples = limit_samples
        self.on_fail = on_fail
        self.waiting: collections.deque[Frame] = collections.deque()
        self.waiting_samples = 0
        self.in_flight: list[Frame] = []
        self.ready: list[Frame] = []  # passed, for through() (no deliver)
        self.error: NsAudioError | None = None
        self.dropped_samples = 0
        self.dropped_frames = 0
        self.dropped_spans: list[tuple[int, int]] = []
        self._idle: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        """Frames pushed and not decided yet."""
        return bool(self.waiting or self.in_flight)

    def push(self, frames: Iterable[Frame], *, soon: bool = False) -> None:
        """Frames for the gate, in stream order; decided after the next batch (``soon``: one
        that starts when this turn of the loop ends, for a sender that awaits them). Raises
        the scoring's failure, if it failed this lane."""
        if self.error is not None:
            raise self.error
        for frame in frames:
            self.waiting.append(frame)
            self.waiting_samples += frame.frames
        limit = self.limit_samples
        while limit is not None and self.waiting_samples > limit and len(self.waiting) > 1:
            old = self.waiting.popleft()
            self.waiting_samples -= old.frames
            self.dropped_samples += old.frames
            self.dropped_frames += 1
            spans = self.dropped_spans
            if spans and spans[-1][1] == old.start:
                spans[-1] = (spans[-1][0], old.end)
            elif len(spans) < MAX_DROPPED_SPANS:
                spans.append((old.start, old.end))
        if self.waiting:
            self.scoring.want(self, soon)

    async def settle(self) -> None:
        """Until every frame pushed so far is decided; raises the scoring's failure."""
        while self.busy and self.error is None:
            if self._idle is None or self._idle.done():
                self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)
        if self.error is not None:
            raise self.error

    async def through(self, frames: Iterable[Frame]) -> list[Frame]:
        """:meth:`push` ``frames``, await their decisions, and return what passed since the
        last call (with ``deliver``, it had it instead)."""
        self.push(frames, soon=True)
        await self.settle()
        ready, self.ready = self.ready, []
        return ready

    def _decided(self, passed: list[Frame]) -> None:
        if self.deliver is not None:
            if passed:
                self.deliver(passed)
        else:
            self.ready.extend(passed)
        if not self.busy:
            self._wake()

    def _fail(self, err: BaseException) -> None:
        if self.error is not None:
            return
        if isinstance(err, NsAudioError):
            error = err
        else:
            error = DetectorError(f"the speech detector failed: {type(err).__name__}: {err}")
            error.__cause__ = err
        self.error = error
        self.waiting.clear()
        self.waiting_samples = 0
        self.in_flight = []
        self._wake()
        if self.on_fail is not None:
            self.on_fail(error)

    def _wake(self) -> None:
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)


class GateScoring:
    """The Silero lanes of one loop, batched (see the module docstring): made by
    :func:`scoring_for`. ``batcher`` counts the model calls, the batches and the streams'
    jobs in them; ``run_seconds`` is the batches' time in the worker, in all."""

    def __init__(self, loop: asyncio.AbstractEventLoop, batcher: SileroBatcher) -> None:
        self._loop = weakref.ref(loop)  # the value of a WeakKeyDictionary keyed by the loop
        self.batcher = batcher
        self._wanting: dict[int, GateLane] = {}
        self._scheduled = False
        self._running = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.run_seconds = 0.0

    def lane(
        self,
        gate: SpeechGate,
        deliver: Callable[[list[Frame]], None] | None = None,
        limit_samples: int | None = None,
        on_fail: Callable[[NsAudioError], None] | None = None,
    ) -> GateLane:
        return GateLane(self, gate, deliver, limit_samples, on_fail)

    def want(self, lane: GateLane, soon: bool = False) -> None:
        """``lane`` has frames waiting: a batch starts ``WAIT_S`` from now (``soon``: when
        this turn of the loop ends), or when the running one is done."""
        self._wanting[id(lane)] = lane
        if self._running or (self._scheduled and not soon):
            return
        loop = self._loop()
        if loop is not None:
            self._scheduled = True
            if soon:
                loop.call_soon(self._start)
            else:
                loop.call_later(WAIT_S, self._start)

    def _start(self) -> None:
        self._scheduled = False
        loop = self._loop()
        if self._running or not self._wanting or loop is None:
            return
        lanes, self._wanting = list(self._wanting.values()), {}
        batch: list[tuple[GateLane, Windows]] = []
        for lane in lanes:
            if not lane.waiting:  # failed, its frames gone
                continue
            frames = _equal_frames(lane.waiting)
            for _ in frames:
                lane.waiting.popleft()
            lane.waiting_samples -= sum(f.frames for f in frames)
            if lane.waiting:  # frames of another size: the next batch
                self._wanting[id(lane)] = lane
            rows = np.stack([np.frombuffer(f.pcm, "<i2") for f in frames])
            try:
                job = lane.detector.prepare(rows, frames[0].rate)
            except Exception as err:  # a rate the detector refuses...: this lane fails
                lane._fail(err)
                continue
            lane.in_flight = frames
            batch.append((lane, job))
        if not batch:
            if self._wanting:
                self._scheduled = True
                loop.call_soon(self._start)
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="nsaudio-silero"
            )
        self._running = True
        future = loop.run_in_executor(self._executor, self._run, [j for _, j in batch])
        future.add_done_callback(lambda f: self._done(f, batch))

    def _run(self, jobs: list[Windows]) -> None:
        t0 = time.perf_counter()
        try:
            self.batcher.run(jobs)
        finally:
            self.run_seconds += time.perf_counter() - t0

    def _done(self, future: asyncio.Future[None], batch: list[tuple[GateLane, Windows]]) -> None:
        self._running = False
        err = future.exception() if not future.cancelled() else asyncio.CancelledError()
        try:
            for lane, job in batch:
                frames, lane.in_flight = lane.in_flight, []
                if err is not None:
                    lane._fail(err)
                    continue
                try:
                    passed: list[Frame] = []
                    for frame, score in zip(frames, lane.detector.finish(job), strict=True):
                        passed += lane.gate.decide(frame, score)
                    lane._decided(passed)
                except Exception as lane_err:  # this lane's (its deliver...): it alone fails
                    lane._fail(lane_err)
        finally:
            if self._wanting:
                self._start()


def _equal_frames(waiting: collections.deque[Frame]) -> list[Frame]:
    """The first frames of ``waiting`` that have its first one's size and rate (the
    detector scores them as rows of one array)."""
    first = waiting[0]
    out = [first]
    for frame in itertools.islice(waiting, 1, None):
        if frame.frames != first.frames or frame.rate != first.rate:
            break
        out.append(frame)
    return out


_SCORINGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, GateScoring]] = (
    weakref.WeakKeyDictionary()
)


def scoring_for(loop: asyncio.AbstractEventLoop, detector: SileroDetector) -> GateScoring:
    """The batched scoring of ``loop`` for detectors of ``detector``'s model."""
    per_model = _SCORINGS.setdefault(loop, {})
    key = id(detector.model)
    scoring = per_model.get(key)
    if scoring is None or scoring.batcher.model is not detector.model:
        scoring = per_model[key] = GateScoring(loop, SileroBatcher(detector.model))
    return scoring

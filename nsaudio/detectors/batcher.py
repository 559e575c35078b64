"""Score many streams' Silero windows in one onnxruntime call per step.

One stream's windows are scored one after the other (each needs the state the one before
left), but windows of different streams are independent: the model takes a batch of them
with their states stacked, ``(2, streams, 128)``. One call for 300 streams costs about a
quarter of 300 calls (the model's fixed cost per call dominates a single window:
``benchmarks/vad_batch.py`` measures it).

Two ways in:

- :meth:`SileroBatcher.run`: the caller has every stream's windows at hand (one thread
  serving many streams, as a telephony gateway does on each packet tick): they are scored
  at once, on the caller's thread. :func:`~nsaudio.stages.speech_gate.push_together` does
  this for gates.
- :meth:`SileroBatcher.submit`: each stream on a thread of its own (a pipeline per stream),
  each blocked in ``push`` while its windows are scored. The first of a batch leads it: it
  waits for the others until every stream active in the last second has joined, or
  ``max_wait_ms`` has passed (:class:`BatchPolicy`, a pure decision), then runs the batch on
  its own thread while the others wait for it. A frame is so delayed by at most
  ``max_wait_ms`` plus one batch's run; a stream alone is never delayed.

Either way inference runs on the streams' own threads (pipeline or clock thread), never on
the session engine's event loop, and onnxruntime releases the GIL while it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .silero import SileroModel, Windows

__all__ = ["BatchPolicy", "SileroBatcher"]

#: A follower waits this long for its leader's batch at most (a batch takes milliseconds).
FOLLOWER_WAIT_S = 30.0


class BatchPolicy:
    """When the leader of a batch stops waiting for more streams to join (pure, no clock).

    A stream is *active* if it submitted within ``active_s`` (default: a second, or ten
    waits if that is longer, so that a stream is not forgotten while a batch waits); a batch
    is ready when every active stream is in it, or it holds ``max_batch`` streams, or
    ``max_wait_s`` has passed since it opened. A stream's first frame may so go alone: the
    others are not known yet.
    """

    def __init__(
        self, max_wait_s: float, *, max_batch: int = 1024, active_s: float | None = None
    ) -> None:
        if not 0 <= max_wait_s < float("inf"):
            raise InputError(f"max_wait must be 0 or more seconds, not {max_wait_s}")
        if max_batch < 1:
            raise InputError(f"max_batch must be at least 1, not {max_batch}")
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.active_s = active_s if active_s is not None else max(1.0, 10 * max_wait_s)
        self._seen: dict[int, float] = {}  # stream -> when it last submitted

    def note(self, stream: int, now: float) -> None:
        """``stream`` submitted at ``now``; streams quiet for ``active_s`` are forgotten."""
        self._seen[stream] = now
        if len(self._seen) > 1 and min(self._seen.values()) < now - self.active_s:
            self._seen = {s: t for s, t in self._seen.items() if t >= now - self.active_s}

    @property
    def active(self) -> int:
        return len(self._seen)

    def ready(self, size: int, opened: float, now: float) -> bool:
        return size >= min(self.active, self.max_batch) or now >= opened + self.max_wait_s

    def deadline(self, opened: float) -> float:
        return opened + self.max_wait_s


@dataclass(eq=False)
class _Batch:
    jobs: list[Windows] = field(default_factory=list)
    opened: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class SileroBatcher:
    """Scores the windows of every :class:`~nsaudio.detectors.SileroDetector` made with
    ``batcher=`` this, together (see the module's docstring).

    ``model``: a loaded :class:`~nsaudio.detectors.SileroModel` (default: the process's,
    from ``model_path`` or the bundled file). ``max_wait_ms``: how long the leader of a
    batch waits for other streams (default 10: at 300 streams of 100 ms frames, about 30
    join a batch). ``max_batch``: streams a batch takes at most. ``clock``: monotonic
    seconds, for tests. ``calls``, ``windows``, ``jobs`` and ``batches`` count the model
    calls, the windows scored, the streams' frames (jobs) scored and the batches run.
    """

    def __init__(
        self,
        model: SileroModel | None = None,
        *,
        model_path: str | Path | None = None,
        max_wait_ms: float = 10.0,
        max_batch: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if model is not None and model_path is not None:
            raise InputError("give a model or a model path, not both")
        self.model = model if model is not None else SileroModel.shared(model_path)
        self.policy = BatchPolicy(max_wait_ms / 1000, max_batch=max_batch)
        self._clock = clock
        self._cond = threading.Condition()
        self._open = _Batch()
        self._count_lock = threading.Lock()
        self.calls = 0
        self.windows = 0
        self.jobs = 0
        self.batches = 0

    def run(self, jobs: Sequence[Windows]) -> None:
        """Score ``jobs`` (at most one per stream) now, on this thread: step ``i`` of every
        job that has one goes in one call, per rate."""
        by_rate: dict[int, list[Windows]] = {}
        for job in jobs:
            if job.count:
                by_rate.setdefault(job.rate, []).append(job)
        calls = windows = 0
        for rate, group in by_rate.items():
            group.sort(key=lambda j: -j.count)  # those with step i are a prefix of the group
            counts = [j.count for j in group]
            x = np.zeros((counts[0], len(group), group[0].inputs.shape[1]), np.float32)
            for b, job in enumerate(group):
                x[: job.count, b] = job.inputs
            state = np.stack([j.detector.state for j in group], axis=1)
            probs = np.empty((counts[0], len(group)), np.float32)
            n = len(group)
            for i in range(counts[0]):
                while counts[n - 1] <= i:
                    n -= 1
                part = state if n == len(group) else np.ascontiguousarray(state[:, :n])
                probs[i, :n], state[:, :n] = self.model.run(x[i, :n], part, rate)
                calls += 1
                windows += n
            for b, job in enumerate(group):
                job.probs = probs[: job.count, b]
                job.detector.state = state[:, b]
        with self._count_lock:
            self.calls += calls
            self.windows += windows
            self.jobs += len(jobs)
            self.batches += 1

    def submit(self, job: Windows) -> None:
        """Score one stream's ``job`` with the others submitted about now; returns when done
        (see the module's docstring). Raises what the model raised."""
        with self._cond:
            now = self._clock()
            self.policy.note(id(job.detector), now)
            batch = self._open
            batch.jobs.append(job)
            leader = len(batch.jobs) == 1
            if leader:
                batch.opened = now
                while not self.policy.ready(len(batch.jobs), batch.opened, now):
                    self._cond.wait(self.policy.deadline(batch.opened) - now)
                    now = self._clock()
                if self._open is batch:
                    self._open = _Batch()  # whoever comes now opens the next batch
            else:
                if len(batch.jobs) >= self.policy.max_batch:
                    self._open = _Batch()  # full: the next stream opens another
                if self.policy.ready(len(batch.jobs), batch.opened, now):
                    self._cond.notify()  # the leader waits for this: wake it, only now
        if leader:
            try:
                self.run(batch.jobs)
            except BaseException as err:
                batch.error = err
                raise
            finally:
                batch.done.set()
        elif not batch.done.wait(FOLLOWER_WAIT_S):
            raise RuntimeError(f"a Silero batch did not finish within {FOLLOWER_WAIT_S:g} s")
        elif batch.error is not None:
            raise RuntimeError("the Silero batch this stream was in failed") from batch.error

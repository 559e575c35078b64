"""Label frames as speech or silence with a speech detector, and optionally pass only the speech.

Each frame is scored by a detector (:mod:`nsaudio.detectors`: ``energy`` by default, or
``silero``), and is speech when its score reaches the detector's ``threshold``. Speech is
held for ``hangover_ms`` after the last frame that reached it, so the quiet ends of words
are kept.

By default every frame passes with its label (a streaming sink uses the labels to know when
the last speech it sent has been transcribed). With ``skip_silence`` the gate passes only
what a service needs to transcribe the speech, and holds the rest back:

- the speech itself (hangover included);
- a **pre-roll**: up to ``pre_roll_ms`` of the audio just before each onset (whole frames,
  at least that long where the gap allows), so a first syllable too quiet to trip the
  detector is still heard. It is counted from where the speech began: a detector whose
  first speech frame comes late (its ``onset_lag_ms``: Silero's 150) gets that much more;
- a **tail**: ``tail_ms`` of the real audio after the hangover, so the service's own VAD hears
  the speech end and finalises it. The default, 700 ms, makes 1.0 s of audio after the last
  loud frame with the 300 ms hangover: the local server closes a segment 0.6 s after its
  speech, and its docs (and the services we know) call 1 s comfortable.

All of this is the detector's decision only: the same frames, positions and timing rules
whichever detector decides. Frames keep their stream positions, so what was skipped shows
as a jump in ``start`` that the sink maps back when it reports times. ``seen_samples`` and
``passed_samples`` count what came in and what went out.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..blocks import Frame
from ..detectors.base import SpeechDetector
from ..detectors.energy import SILENCE_DB, level_dbfs
from ..errors import InputError
from .trail import LevelTrail

__all__ = ["SpeechGate", "find_gate", "push_together"]


class SpeechGate:
    """Sets ``frame.speech`` from ``detector``; with ``skip_silence`` passes only speech, its
    pre-roll and tail (see the module's docstring).

    ``detector``: any :class:`~nsaudio.detectors.SpeechDetector`, one per stream (it keeps the
    stream's state); ``hangover_ms``: how long speech is held after the last frame the
    detector called speech; ``skip_silence``, ``pre_roll_ms`` and ``tail_ms``: pass only
    speech, with that much audio before each onset and after the hangover. ``level_db`` (the frame's RMS level, for meters: measured when asked),
    ``score`` (clipped to 0..1) and ``speaking`` describe the last frame; ``seen_samples``,
    ``passed_samples`` and ``speech_samples`` count what came in, what went out, and what
    was labelled speech. A display that shows the frame being *sent* asks for
    :meth:`keep_trail`.
    """

    _level_db: float  # NaN until a meter asks for the last frame's level

    def __init__(
        self,
        detector: SpeechDetector,
        *,
        hangover_ms: float = 300,
        skip_silence: bool = False,
        pre_roll_ms: float = 300,
        tail_ms: float = 700,
    ) -> None:
        for name, ms in (("hangover", hangover_ms), ("pre-roll", pre_roll_ms), ("tail", tail_ms)):
            if not 0 <= ms < float("inf"):
                raise InputError(f"{name} must be 0 or more milliseconds, not {ms}")
        if not isinstance(detector, SpeechDetector):
            raise TypeError(f"{detector!r} is not a speech detector: it needs scores() and reset()")
        self.detector = detector
        self.hangover_ms = hangover_ms
        self.skip_silence = skip_silence
        self.pre_roll_ms = pre_roll_ms
        self.tail_ms = tail_ms
        #: The recent frames' positions, levels and labels, once :meth:`keep_trail` asked.
        self.trail: LevelTrail | None = None
        self.reset()

    @property
    def threshold(self) -> float:
        """The detector's threshold: the score a frame needs to be speech."""
        return self.detector.threshold

    @property
    def level_db(self) -> float:
        """The last frame's RMS level in dBFS (-100 before the first)."""
        if math.isnan(self._level_db):
            self._level_db = level_dbfs(self._last_pcm)
        return self._level_db

    @property
    def skipped_samples(self) -> int:
        """Samples seen and not passed on (held in the pre-roll or skipped)."""
        return self.seen_samples - self.passed_samples

    def reset(self) -> None:
        """Forget the stream: the detector's state, the pre-roll held, the counters."""
        self.detector.reset()
        self._last_pcm = b""
        self._level_db = SILENCE_DB
        self.score = 0.0
        self.speaking = False
        self.seen_samples = 0
        self.passed_samples = 0
        self.speech_samples = 0
        if self.trail is not None:
            self.trail.clear()
        self._hang_left = 0.0
        self._tail_left = 0  # samples of tail still to pass
        self._held: collections.deque[Frame] = collections.deque()  # the pre-roll
        self._held_samples = 0

    def push(self, frame: Frame) -> list[Frame]:
        """Label ``frame``; what passes now (with ``skip_silence``, maybe nothing, or the
        pre-roll held before it)."""
        (score,) = self.detector.scores(samples(frame), frame.rate)
        return self.decide(frame, score)

    def decide(self, frame: Frame, score: float) -> list[Frame]:
        """:meth:`push` with the frame's score already known (see :func:`push_together`)."""
        seconds = frame.frames / frame.rate
        self.seen_samples += frame.frames
        self._last_pcm, self._level_db = frame.pcm, math.nan  # a meter measures it if it asks
        self.score = min(1.0, max(0.0, score))
        if score >= self.detector.threshold:
            self._hang_left = self.hangover_ms / 1000
            frame.speech = True
        elif self._hang_left > 0:
            self._hang_left -= seconds
            frame.speech = True
        else:
            frame.speech = False
        self.speaking = frame.speech
        if frame.speech:
            self.speech_samples += frame.frames
        if not self.skip_silence:
            out = [frame]
        elif frame.speech:
            self._tail_left = round(self.tail_ms * frame.rate / 1000)
            out = [*self._held, frame]
            self._held.clear()
            self._held_samples = 0
        elif self._tail_left > 0:
            self._tail_left -= frame.frames
            out = [frame]
        else:
            self._hold(frame)
            out = []
        for passed in out:
            self.passed_samples += passed.frames
        if self.trail is not None:
            self.trail.add(frame.end, self.passed_samples, self.level_db, frame.speech)
        return out

    def keep_trail(self) -> LevelTrail:
        """From now on, keep the recent frames' stream positions, levels and labels (see
        :mod:`.trail`): the pipeline reads seconds ahead of a paced sender, so a display
        finds there the frame being sent, not the newest. Each frame's level is then
        measured as it passes (a few microseconds), which the gate otherwise leaves to a
        meter that asks. Returns the trail (the same one if asked again)."""
        if self.trail is None:
            self.trail = LevelTrail()
        return self.trail

    def _hold(self, frame: Frame) -> None:
        """Keep ``frame`` for the next onset's pre-roll; forget what is older than that."""
        self._held.append(frame)
        self._held_samples += frame.frames
        pre_roll = round((self.pre_roll_ms + self.detector.onset_lag_ms) * frame.rate / 1000)
        while self._held and self._held_samples - self._held[0].frames >= pre_roll:
            self._held_samples -= self._held.popleft().frames

    def flush(self) -> list[Frame]:
        """End of stream: a pre-roll with no speech after it is skipped for good."""
        self._held.clear()
        self._held_samples = 0
        return []


def samples(frame: Frame) -> np.ndarray:
    """A frame's PCM as the ``(1, n)`` int16 array detectors score."""
    return np.frombuffer(frame.pcm, dtype="<i2").reshape(1, -1)


def push_together(gates: Sequence[SpeechGate], frames: Sequence[Frame]) -> list[list[Frame]]:
    """``[gate.push(frame) for gate, frame in zip(gates, frames)]``, with the Silero
    detectors that share a :class:`~nsaudio.detectors.SileroBatcher` scored in one call per
    window step, on this thread: for a thread that serves many streams (a telephony
    gateway's packet clock). Each gate at most once; other detectors score one by one."""
    from ..detectors.silero import Batcher, SileroDetector, Windows

    if len(gates) != len(frames):
        raise ValueError(f"{len(gates)} gates for {len(frames)} frames")
    if len({id(g) for g in gates}) != len(gates):
        raise ValueError("a gate appears twice: its frames must be pushed in turn")
    jobs: dict[int, Windows] = {}
    by_batcher: dict[int, tuple[Batcher, list[Windows]]] = {}
    for i, (gate, frame) in enumerate(zip(gates, frames, strict=True)):
        d = gate.detector
        if isinstance(d, SileroDetector) and d.batcher is not None:
            job = jobs[i] = d.prepare(samples(frame), frame.rate)
            by_batcher.setdefault(id(d.batcher), (d.batcher, []))[1].append(job)
    for batcher, group in by_batcher.values():
        batcher.run(group)
    out = []
    for i, (gate, frame) in enumerate(zip(gates, frames, strict=True)):
        pending = jobs.get(i)
        if pending is None:
            out.append(gate.push(frame))
        else:
            (score,) = pending.detector.finish(pending)
            out.append(gate.decide(frame, score))
    return out


def find_gate(stages: Iterable[object]) -> SpeechGate | None:
    """The speech gate among ``stages`` (the last, if there are several), or None; an
    :class:`~nsaudio.stages.EnergyGate` is one."""
    gates = [stage for stage in stages if isinstance(stage, SpeechGate)]
    return gates[-1] if gates else None

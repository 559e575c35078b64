"""Label frames as speech or silence from their energy, and optionally pass only the speech.

Each frame's level is judged by :class:`~nsaudio.stages.energy.EnergyDetector` (the same
detector the local server segments with): its distance above an adaptive noise floor maps
to a 0..1 score, and a frame is speech when the score reaches ``threshold``. Speech is held
for ``hangover_ms`` after the last loud frame so the quiet ends of words are kept.

By default every frame passes with its label (a streaming sink uses the labels to know when
the last speech it sent has been transcribed). With ``skip_silence`` the gate passes only
what a service needs to transcribe the speech, and holds the rest back:

- the speech itself (hangover included);
- a **pre-roll**: up to ``pre_roll_ms`` of the audio just before each onset (whole frames,
  at least that long where the gap allows), so a first syllable too quiet to trip the
  detector is still heard;
- a **tail**: ``tail_ms`` of the real audio after the hangover, so the service's own VAD hears
  the speech end and finalises it. The default, 700 ms, makes 1.0 s of audio after the last
  loud frame with the 300 ms hangover: the local server closes a segment 0.6 s after its
  speech, and its docs (and the services we know) call 1 s comfortable.

Frames keep their stream positions, so what was skipped shows as a jump in ``start`` that
the sink maps back when it reports times. ``seen_samples`` and ``passed_samples`` count what
came in and what went out, ``speech_samples`` what of it was labelled speech.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from ..blocks import Frame
from ..errors import InputError
from .energy import SILENCE_DB, EnergyDetector, level_dbfs
from .trail import LevelTrail

__all__ = ["EnergyGate", "find_gate", "level_dbfs"]


class EnergyGate:
    """Sets ``frame.speech``; with ``skip_silence`` passes only speech, its pre-roll and tail.

    ``level_db``, ``floor_db``, ``score`` and ``speaking`` describe the last frame, ``trail``
    the last few thousand (:class:`~nsaudio.stages.trail.LevelTrail`).

    Arguments: ``threshold``, the speech score (0..1, above 0) a frame needs: it stands
    ``margin_db + threshold * span_db`` dB above the noise floor (16 dB at 0.5);
    ``hangover_ms``, how long speech is held after the last loud frame; ``skip_silence``,
    pass only speech, with ``pre_roll_ms`` of audio before each onset and ``tail_ms`` after
    the hangover (see the module docstring). The detector's: ``floor_min_db``, the lowest the
    noise floor goes (dBFS); ``initial_floor_db``, where it starts; ``floor_rise_db_per_s``,
    how fast it rises towards a louder background (it falls at once) (see
    :class:`~nsaudio.stages.energy.EnergyDetector`). Bad values raise
    :class:`~nsaudio.errors.InputError`.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        hangover_ms: float = 300,
        skip_silence: bool = False,
        pre_roll_ms: float = 300,
        tail_ms: float = 700,
        floor_min_db: float = -80.0,
        initial_floor_db: float = -60.0,
        margin_db: float = 6.0,
        span_db: float = 20.0,
        floor_rise_db_per_s: float = 6.0,
    ) -> None:
        for name, ms in (("hangover", hangover_ms), ("pre-roll", pre_roll_ms), ("tail", tail_ms)):
            if not 0 <= ms < float("inf"):
                raise InputError(f"{name} must be 0 or more milliseconds, not {ms}")
        if not 0 < threshold <= 1:  # the gate's score is 0..1 (the service's VAD takes more)
            raise InputError(f"gate threshold must be above 0 and at most 1, not {threshold}")
        self.detector = EnergyDetector(
            threshold,
            floor_min_db=floor_min_db,
            initial_floor_db=initial_floor_db,
            margin_db=margin_db,
            span_db=span_db,
            floor_rise_db_per_s=floor_rise_db_per_s,
        )
        self.threshold = threshold
        self.hangover_ms = hangover_ms
        self.skip_silence = skip_silence
        self.pre_roll_ms = pre_roll_ms
        self.tail_ms = tail_ms
        self.initial_floor_db = initial_floor_db
        #: The recent frames' positions, levels and labels: what a display shows of the
        #: frame being sent, which is seconds behind the newest one (see :mod:`.trail`).
        self.trail = LevelTrail()
        self.reset()

    @property
    def floor_db(self) -> float:
        """The detector's noise floor now, dBFS."""
        return self.detector.floor_db

    @property
    def skipped_samples(self) -> int:
        """Samples seen and not passed on (held in the pre-roll or skipped)."""
        return self.seen_samples - self.passed_samples

    def reset(self) -> None:
        """Forget the stream: the floor, the counters, the held pre-roll and the trail."""
        self.detector.reset()
        self.level_db = SILENCE_DB
        self.score = 0.0
        self.speaking = False
        self.seen_samples = 0
        self.passed_samples = 0
        self.speech_samples = 0
        self._hang_left = 0.0
        self._tail_left = 0  # samples of tail still to pass
        self._held: collections.deque[Frame] = collections.deque()  # the pre-roll
        self._held_samples = 0
        self.trail.clear()

    def push(self, frame: Frame) -> list[Frame]:
        """Label ``frame`` (``frame.speech``); returns it, or with ``skip_silence`` what is
        to be sent now (the held pre-roll and this frame at an onset; nothing in a gap)."""
        seconds = frame.frames / frame.rate
        self.seen_samples += frame.frames
        self.level_db = level_dbfs(frame.pcm)
        self.score = self.detector.score(self.level_db, seconds)
        if self.score >= self.threshold:
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
        self.trail.add(frame.end, self.passed_samples, self.level_db, frame.speech)
        return out

    def _hold(self, frame: Frame) -> None:
        """Keep ``frame`` for the next onset's pre-roll; forget what is older than that."""
        self._held.append(frame)
        self._held_samples += frame.frames
        pre_roll = round(self.pre_roll_ms * frame.rate / 1000)
        while self._held and self._held_samples - self._held[0].frames >= pre_roll:
            self._held_samples -= self._held.popleft().frames

    def flush(self) -> list[Frame]:
        """End of stream: a pre-roll with no speech after it is skipped for good."""
        self._held.clear()
        self._held_samples = 0
        return []


def find_gate(stages: Iterable[object]) -> EnergyGate | None:
    """The energy gate among ``stages`` (the last, if there are several), or None."""
    gates = [stage for stage in stages if isinstance(stage, EnergyGate)]
    return gates[-1] if gates else None

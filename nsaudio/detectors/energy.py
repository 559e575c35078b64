"""The energy speech detector: a frame's level against an adaptive noise floor.

The default detector of both the client's gate (:class:`~nsaudio.stages.SpeechGate`,
:class:`~nsaudio.stages.EnergyGate`) and the local server's segmenter (``nsaudio.server.vad``);
they differ only in what they do with the decision (the gate holds it for a hangover, the
server opens and closes segments). It is good in steady noise and fooled by noise whose level
moves (music, clicks, other voices): ``nsaudio.detectors.silero`` is the other choice.

The floor follows a frame's level down at once and creeps up at ``floor_rise_db_per_s``:
steady noise becomes the floor within seconds, and the dips between syllables keep it
below speech. A sliding-window minimum, which the server used before, is fooled by noise
whose level swings: brown noise (room rumble) at -53 dBFS has 20 ms frames 10 dB below its
average now and then, the window minimum sits on those, and ordinary frames of the noise
then stood 15 dB above "the floor": the server took a whole recording's quiet for speech.

``quiet_rise_db_per_s`` (the same by default) is the rise through frames short of speech
while ``between`` is set: the local server's segmenter sets it between its segments, and
the rate ten times faster (``nsaudio.server.vad``), so in a pause its floor remembers about
0.2 s of noise instead of seconds. A floor that sits on the quietest frame of the last few
seconds depends on how many seconds of noise there were, which a gate changes (it sends a
pre-roll, not the whole pause): traced on the test suite's recording, the second sentence
began on a floor of -63.6 dBFS heard whole and -60.3 gated, and the 3 dB carried through the
sentence to move its end by a frame. With the faster rise in pauses the floor at an onset
comes from the last 0.2-0.3 s, which the gate's pre-roll sends, so both start the sentence
on the same floor (``benchmarks/gate_times.py``). Inside an utterance the floor keeps the
slow rise: there the frames short of speech are mostly weak syllables and the tails of
words, and a fast rise lifted the floor to them and lost the quiet words after them (tried:
the suite's "in the morning", and "almost empty" of the quiet fixture, went).

The distance above the floor maps to a score in 0..1: ``margin_db`` above the floor is 0,
``margin_db + span_db`` above is 1. A frame is speech when its score reaches ``threshold``,
so with the defaults a threshold of 0.5 means 16 dB above the floor, 0.2 means 10 dB and
1.0 means 26 dB. The service's ``vad_threshold`` (0 < x <= 1, default 0.5) is this
threshold, as is the gate's ``--gate-threshold``: a higher value needs louder speech.

Pure: no clocks, no I/O; frames may have any duration (``seconds`` paces the floor).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..errors import InputError

Int16Frames = npt.NDArray[np.int16]

__all__ = ["SILENCE_DB", "EnergyDetector", "level_dbfs", "levels_dbfs"]

#: Level reported for digital silence, whose true level is -inf dBFS.
SILENCE_DB = -100.0
_FULL_SCALE_SQUARED = 32768.0 * 32768.0


def level_dbfs(pcm: bytes) -> float:
    """RMS level of int16 LE PCM in dBFS (full-scale sine is about -3); silence floors at -100."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if not len(x):
        return SILENCE_DB
    ms = float(np.dot(x, x)) / len(x) / _FULL_SCALE_SQUARED
    return max(SILENCE_DB, 10.0 * math.log10(ms)) if ms > 0 else SILENCE_DB


def levels_dbfs(frames: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """:func:`level_dbfs` of each row of a ``(n, frame)`` int16 array, in one pass."""
    f = frames.astype(np.float64)
    power = np.einsum("ij,ij->i", f, f) / (frames.shape[1] * _FULL_SCALE_SQUARED)
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(power)
    return np.maximum(levels, SILENCE_DB)


def _level_of_row(row: npt.NDArray[np.int16]) -> float:
    """:func:`levels_dbfs` of one frame, bit for bit, in a third of the time (one stream's
    frame at a time is the common case, and numpy's per-call costs dominate it). The sum
    of squares is exact in float64 whatever the order (each square is below 2**30), and
    ``np.log10`` of a scalar is the array's."""
    f = row.astype(np.float64)
    power = float(f @ f) / (len(row) * _FULL_SCALE_SQUARED)
    return max(float(10.0 * np.log10(power)), SILENCE_DB) if power > 0 else SILENCE_DB


class EnergyDetector:
    """``score(level_db, seconds)`` updates the floor with one frame and returns its score.

    ``scores(frames, rate)`` is the :class:`~nsaudio.detectors.SpeechDetector` verb: the
    scores of consecutive frames, unclipped, so that ``score >= threshold`` is the decision
    at any threshold (see :meth:`is_speech`). ``floor_db`` is the current floor; ``reset()``
    starts over at ``initial_floor_db``. ``threshold`` must be a positive number; the keyword
    arguments tune the floor (its lowest value, where it starts, how fast it rises) and the
    score (``margin_db`` above the floor is 0, ``margin_db + span_db`` is 1).
    """

    name = "energy"
    onset_lag_ms = 0.0  # it hears the first loud frame as it comes

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        floor_min_db: float = -80.0,
        initial_floor_db: float = -60.0,
        margin_db: float = 6.0,
        span_db: float = 20.0,
        floor_rise_db_per_s: float = 6.0,
        quiet_rise_db_per_s: float | None = None,
    ) -> None:
        if not (math.isfinite(threshold) and threshold > 0):
            raise InputError(f"speech threshold must be a positive number, not {threshold}")
        if span_db <= 0:
            raise InputError(f"score span must be positive, not {span_db} dB")
        if floor_rise_db_per_s < 0:
            raise InputError(f"floor rise must not be negative, not {floor_rise_db_per_s} dB/s")
        if quiet_rise_db_per_s is None:
            quiet_rise_db_per_s = floor_rise_db_per_s
        if quiet_rise_db_per_s < 0:
            raise InputError(f"floor rise must not be negative, not {quiet_rise_db_per_s} dB/s")
        self.threshold = threshold
        self.floor_min_db = floor_min_db
        self.initial_floor_db = initial_floor_db
        self.margin_db = margin_db
        self.span_db = span_db
        self.floor_rise_db_per_s = floor_rise_db_per_s
        self.quiet_rise_db_per_s = quiet_rise_db_per_s
        #: Set by a caller that knows the stream is between utterances (see the module).
        self.between = False
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the floor starts over at ``initial_floor_db``."""
        self.floor_db = self.initial_floor_db

    def scores(self, frames: Int16Frames, rate: int) -> list[float]:
        """Update the floor with each row of ``frames`` (consecutive int16 frames at ``rate``);
        each row's score, not clipped to 0..1 (speech where it reaches ``threshold``)."""
        seconds = frames.shape[1] / rate
        if frames.shape[0] == 1:
            return [self._excess(_level_of_row(frames[0]), seconds)]
        return [self._excess(level, seconds) for level in levels_dbfs(frames).tolist()]

    def score(self, level_db: float, seconds: float) -> float:
        """Update the floor with one frame of ``seconds``; its speech score in [0, 1]."""
        return min(1.0, max(0.0, self._excess(level_db, seconds)))

    def is_speech(self, level_db: float, seconds: float) -> bool:
        """Update the floor; True if the frame is speech at ``threshold``.

        The same as ``score() >= threshold`` up to a threshold of 1; above (the service takes
        any positive threshold) it needs ``margin_db + threshold * span_db`` dB above the
        floor, past the score's top: 1.5 needs 36 dB with the defaults.
        """
        return self._excess(level_db, seconds) >= self.threshold

    def _excess(self, level_db: float, seconds: float) -> float:
        floor = self.floor_db
        if level_db < floor:
            floor = max(level_db, self.floor_min_db)
        else:
            excess = level_db - floor - self.margin_db  # short of speech: quiet, between them
            quiet = self.between and excess < self.threshold * self.span_db
            rise = self.quiet_rise_db_per_s if quiet else self.floor_rise_db_per_s
            floor = min(level_db, floor + rise * seconds)
        self.floor_db = floor
        return (level_db - floor - self.margin_db) / self.span_db

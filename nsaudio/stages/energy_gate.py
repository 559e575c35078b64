"""Label frames as speech or silence from their energy; the audio is left as it is.

Each frame's level is judged by :class:`~nsaudio.stages.energy.EnergyDetector` (the same
detector the local server segments with): its distance above an adaptive noise floor maps
to a 0..1 score, and a frame is speech when the score reaches ``threshold``. Speech is held
for ``hangover_ms`` after the last loud frame so the quiet ends of words are kept. Frames
pass through with their positions unchanged.
"""

from __future__ import annotations

from ..blocks import Frame
from ..errors import InputError
from .energy import SILENCE_DB, EnergyDetector, level_dbfs

__all__ = ["EnergyGate", "level_dbfs"]


class EnergyGate:
    """Sets ``frame.speech``; ``level_db``, ``floor_db`` and ``score`` describe the last frame.

    The keyword arguments other than ``hangover_ms`` tune the detector (see
    :class:`~nsaudio.stages.energy.EnergyDetector`).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        hangover_ms: float = 300,
        floor_min_db: float = -80.0,
        initial_floor_db: float = -60.0,
        margin_db: float = 6.0,
        span_db: float = 20.0,
        floor_rise_db_per_s: float = 6.0,
    ) -> None:
        if hangover_ms < 0:
            raise InputError(f"hangover must not be negative, not {hangover_ms} ms")
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
        self.initial_floor_db = initial_floor_db
        self.reset()

    @property
    def floor_db(self) -> float:
        return self.detector.floor_db

    def reset(self) -> None:
        self.detector.reset()
        self.level_db = SILENCE_DB
        self.score = 0.0
        self._hang_left = 0.0

    def push(self, frame: Frame) -> list[Frame]:
        seconds = frame.frames / frame.rate
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
        return [frame]

    def flush(self) -> list[Frame]:
        return []

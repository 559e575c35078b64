"""Label frames as speech or silence from their energy; the audio is left as it is.

The level of each frame (dBFS, RMS) is compared with an adaptive noise floor: the floor
follows the level down at once and creeps up slowly, so steady noise becomes the floor and
speech stands above it. The distance above the floor maps to a 0..1 score; a frame is speech
when the score reaches ``threshold``, and speech is held for ``hangover_ms`` after the last
loud frame so the quiet ends of words are kept.
"""

from __future__ import annotations

import math

import numpy as np

from ..blocks import Frame
from ..errors import InputError

__all__ = ["EnergyGate", "level_dbfs"]

SILENCE_DB = -100.0


def level_dbfs(pcm: bytes) -> float:
    """RMS level of int16 LE PCM in dBFS (full-scale sine is about -3); silence floors at -100."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if not len(x):
        return SILENCE_DB
    ms = float(np.dot(x, x)) / len(x) / (32768.0 * 32768.0)
    return max(SILENCE_DB, 10.0 * math.log10(ms)) if ms > 0 else SILENCE_DB


class EnergyGate:
    """Sets ``frame.speech``; ``level_db``, ``floor_db`` and ``score`` describe the last frame."""

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
        if not 0 < threshold <= 1:
            raise InputError(f"speech threshold must be above 0 and at most 1, not {threshold}")
        if hangover_ms < 0:
            raise InputError(f"hangover must not be negative, not {hangover_ms} ms")
        self.threshold = threshold
        self.hangover_ms = hangover_ms
        self.floor_min_db = floor_min_db
        self.initial_floor_db = initial_floor_db
        self.margin_db = margin_db
        self.span_db = span_db
        self.floor_rise_db_per_s = floor_rise_db_per_s
        self.reset()

    def reset(self) -> None:
        self.floor_db = self.initial_floor_db
        self.level_db = SILENCE_DB
        self.score = 0.0
        self._hang_left = 0.0

    def _update(self, level: float, seconds: float) -> float:
        floor = self.floor_db
        if level < floor:
            floor = max(level, self.floor_min_db)
        else:
            floor = min(level, floor + self.floor_rise_db_per_s * seconds)
        self.floor_db = floor
        return min(1.0, max(0.0, (level - floor - self.margin_db) / self.span_db))

    def push(self, frame: Frame) -> list[Frame]:
        seconds = frame.frames / frame.rate
        self.level_db = level_dbfs(frame.pcm)
        self.score = self._update(self.level_db, seconds)
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

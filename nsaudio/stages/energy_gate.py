"""The gate with the energy detector: :class:`~nsaudio.stages.SpeechGate` as it always was.

Each frame's level is judged by :class:`~nsaudio.detectors.EnergyDetector` (the same
detector the local server segments with by default): its distance above an adaptive noise
floor maps to a 0..1 score, and a frame is speech when the score reaches ``threshold``. The
hangover, ``skip_silence``, pre-roll and tail are the gate's (``speech_gate``).
"""

from __future__ import annotations

from ..detectors.energy import EnergyDetector, level_dbfs
from ..errors import InputError
from .speech_gate import SpeechGate, find_gate

__all__ = ["EnergyGate", "find_gate", "level_dbfs"]


class EnergyGate(SpeechGate):
    """A :class:`~nsaudio.stages.SpeechGate` deciding with a fresh
    :class:`~nsaudio.detectors.EnergyDetector`.

    ``threshold``: above 0 and at most 1 (the score's range; 0.5 is 16 dB above the floor).
    ``hangover_ms``, ``skip_silence``, ``pre_roll_ms`` and ``tail_ms``: as for
    :class:`~nsaudio.stages.SpeechGate`. The keyword arguments after ``tail_ms`` tune the
    detector (:class:`~nsaudio.detectors.EnergyDetector`): ``floor_min_db``, the lowest the
    noise floor goes (dBFS); ``initial_floor_db``, where it starts; ``margin_db`` and
    ``span_db``, a frame is speech ``margin_db + threshold * span_db`` dB above the floor;
    ``floor_rise_db_per_s``, how fast the floor rises towards a louder background (it falls
    at once). ``floor_db`` is the detector's current floor.
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
        if not 0 < threshold <= 1:  # the gate's score is 0..1 (the service's VAD takes more)
            raise InputError(f"gate threshold must be above 0 and at most 1, not {threshold}")
        self.energy = EnergyDetector(
            threshold,
            floor_min_db=floor_min_db,
            initial_floor_db=initial_floor_db,
            margin_db=margin_db,
            span_db=span_db,
            floor_rise_db_per_s=floor_rise_db_per_s,
        )
        self.initial_floor_db = initial_floor_db
        super().__init__(
            self.energy,
            hangover_ms=hangover_ms,
            skip_silence=skip_silence,
            pre_roll_ms=pre_roll_ms,
            tail_ms=tail_ms,
        )

    @property
    def floor_db(self) -> float:
        """The detector's noise floor now, dBFS."""
        return self.energy.floor_db

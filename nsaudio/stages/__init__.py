"""Pure processing stages: ``push(x) -> list``, ``flush() -> list``, ``reset()``."""

from ..detectors.energy import EnergyDetector
from .base import Chain, Stage
from .energy_gate import EnergyGate, level_dbfs
from .framer import Framer, to_int16
from .resampler import QUALITIES, Resampler
from .speech_gate import SpeechGate, push_together

__all__ = [
    "QUALITIES",
    "Chain",
    "EnergyDetector",
    "EnergyGate",
    "Framer",
    "Resampler",
    "SpeechGate",
    "Stage",
    "level_dbfs",
    "push_together",
    "to_int16",
]

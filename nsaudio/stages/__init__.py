"""Pure processing stages: ``push(x) -> list``, ``flush() -> list``, ``reset()``."""

from .base import Chain, Stage
from .energy import EnergyDetector
from .energy_gate import EnergyGate, level_dbfs
from .framer import Framer, to_int16
from .resampler import QUALITIES, Resampler

__all__ = [
    "QUALITIES",
    "Chain",
    "EnergyDetector",
    "EnergyGate",
    "Framer",
    "Resampler",
    "Stage",
    "level_dbfs",
    "to_int16",
]

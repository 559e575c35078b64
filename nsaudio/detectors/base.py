"""The speech detector interface, and the detectors by name.

A detector scores consecutive frames of one stream, keeping whatever state it needs between
calls (the energy detector's noise floor, Silero's recurrent state and context samples):

- ``scores(frames, rate) -> list[float]``: ``frames`` is a 2-D int16 array, one frame a row,
  consecutive in the stream, at ``rate`` Hz; one score a row. A frame is speech when its
  score reaches ``threshold``. Scores are not clipped: the energy detector's exceed 1 for
  loud frames, so a threshold above 1 still means "louder" (the service's ``vad_threshold``
  takes any positive number); Silero's are probabilities.
- ``reset()``: forget the stream.
- ``threshold`` and ``name`` (``"energy"``, ``"silero"``);
- ``onset_lag_ms``: how much later than the speech itself the detector's first speech frame
  can come (energy: 0, it hears the first loud frame; Silero: 150, its state takes a few
  windows to rise). The gate reaches that much further back for its pre-roll.

The gate (:class:`~nsaudio.stages.SpeechGate`) and the local server's segmenter
(``nsaudio.server.vad``) take any object with these verbs; both default to energy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from .batcher import SileroBatcher

__all__ = ["DETECTORS", "SpeechDetector", "make_detector"]

#: The detectors by name; the first is the default.
DETECTORS = ("energy", "silero")


@runtime_checkable
class SpeechDetector(Protocol):
    """What the gate and the server's segmenter need of a detector (see the module's docstring)."""

    name: str
    threshold: float
    onset_lag_ms: float

    def scores(self, frames: npt.NDArray[np.int16], rate: int) -> list[float]: ...

    def reset(self) -> None: ...


def make_detector(
    name: str,
    threshold: float = 0.5,
    *,
    model_path: str | Path | None = None,
    batcher: SileroBatcher | None = None,
) -> SpeechDetector:
    """A fresh detector for one stream: ``"energy"`` or ``"silero"``, speech from ``threshold``.

    ``model_path`` (Silero only): an ONNX file instead of the bundled model. ``batcher``
    (Silero only): score this stream's windows together with the other streams that share
    it. Raises :class:`~nsaudio.errors.DetectorError` when Silero's extra is not installed
    or its model cannot be loaded, :class:`~nsaudio.errors.InputError` for a bad name or
    threshold.
    """
    if name == "energy":
        if model_path is not None or batcher is not None:
            raise InputError("the energy detector takes no model and no batcher")
        from .energy import EnergyDetector

        return EnergyDetector(threshold)
    if name == "silero":
        from .silero import SileroDetector

        return SileroDetector(threshold, model_path=model_path, batcher=batcher)
    raise InputError(f"unknown speech detector {name!r}: choose {' or '.join(DETECTORS)}")

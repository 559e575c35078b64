"""Speech detectors: which frames of a stream hold speech.

One interface (``base.SpeechDetector``: ``scores(frames, rate)``, ``reset()``, ``threshold``)
serves both the client's gate (:class:`~nsaudio.stages.SpeechGate`) and the local server's
segmenter. Two detectors:

- ``energy`` (``energy.EnergyDetector``, the default): a frame's level against an adaptive
  noise floor. Costs a few microseconds a frame; good in steady noise, fooled by noise whose
  level moves (music, clicks, voices in the room).
- ``silero`` (``silero.SileroDetector``): the Silero VAD network through onnxruntime, no
  torch (``pip install 'nsaudio[vad]'``), its model shipped in ``data/``. Tells speech from
  music and clicks; about 130 µs of CPU per 32 ms window one stream at a time, about 32 µs
  when many streams share a ``batcher.SileroBatcher``.

Importing this package loads nothing: each name is imported on first use, and onnxruntime
only when a Silero model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "DETECTORS": ".base",
    "SpeechDetector": ".base",
    "make_detector": ".base",
    "EnergyDetector": ".energy",
    "SileroDetector": ".silero",
    "SileroModel": ".silero",
    "SileroBatcher": ".batcher",
    "BatchPolicy": ".batcher",
}

__all__ = [
    "DETECTORS",
    "BatchPolicy",
    "EnergyDetector",
    "SileroBatcher",
    "SileroDetector",
    "SileroModel",
    "SpeechDetector",
    "make_detector",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # pragma: no cover
    from .base import DETECTORS, SpeechDetector, make_detector
    from .batcher import BatchPolicy, SileroBatcher
    from .energy import EnergyDetector
    from .silero import SileroDetector, SileroModel

"""Bounds every source checks, so absurd headers fail early with a clear message."""

from __future__ import annotations

from ..errors import UnsupportedAudioError

__all__ = ["MAX_CHANNELS", "MAX_RATE", "MIN_RATE", "check_layout"]

MIN_RATE = 1000
MAX_RATE = 768_000
MAX_CHANNELS = 256


def check_layout(name: str, rate: int, channels: int) -> None:
    """Raise ``UnsupportedAudioError`` unless rate and channel count are plausible."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UnsupportedAudioError(
            f"{name}: sample rate {rate} Hz is outside {MIN_RATE} to {MAX_RATE} Hz"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise UnsupportedAudioError(f"{name}: {channels} channels is outside 1 to {MAX_CHANNELS}")

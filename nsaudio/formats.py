"""The PCM formats the service accepts, and the checks every entry point shares."""

from __future__ import annotations

from .errors import InputError

__all__ = ["FORMATS", "format_rate"]

#: Service format name -> sample rate of its int16 LE mono PCM.
FORMATS: dict[str, int] = {"pcm_16k": 16000, "pcm_8k": 8000}


def format_rate(name: str) -> int:
    """The sample rate of a service format; ``InputError`` naming the choices otherwise."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        choices = ", ".join(FORMATS)
        raise InputError(f"unsupported format {name!r}: choose one of {choices}") from None

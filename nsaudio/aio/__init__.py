"""The asyncio API: ``async with nsaudio.connect(...) as stream`` (see :mod:`.stream`).

:mod:`.stream` holds the stream; :mod:`.wakes` the batched wake-ups between the caller's
loop and the socket loop.
"""

from __future__ import annotations

from .stream import AsyncStream, connect

__all__ = ["AsyncStream", "connect"]

"""The asyncio API: ``async with nsaudio.connect(...) as stream`` (see :mod:`.stream`), and
a session per channel, ``async with nsaudio.connect_channels(...) as stream`` (see
:mod:`.channels`).

:mod:`.stream` and :mod:`.channels` hold the streams; :mod:`.onloop` what they share on the
caller's loop; :mod:`.wakes` the batched wake-ups between the caller's loop and the socket
loop.
"""

from __future__ import annotations

from .channels import AsyncChannelStream, connect_channels
from .stream import AsyncStream, connect

__all__ = ["AsyncChannelStream", "AsyncStream", "connect", "connect_channels"]

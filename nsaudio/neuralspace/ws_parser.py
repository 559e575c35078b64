"""Where ``websockets``' frame parser stands, so that frames it would take whole can be read
past it (:class:`~nsaudio.neuralspace.pong_connection.PongConnection` on the client,
:class:`~nsaudio.gateway.push_connection.PushConnection` on the gateway's server side).

websockets parses frames with a generator (``Protocol.parse``) at about 8 µs a frame. A
connection may read a frame itself only where websockets would have read the same bytes as
the start of a frame: its parser suspended at ``StreamReader.at_eof`` inside
``Protocol.parse``'s loop, nothing in its reader's buffer, the connection open. Anything
else (and everything after it) goes to websockets as the bytes came.

Only ``websockets>=15,<18`` is supported; any other shape of the parser is taken as "not at
a frame's start", which only costs the speed.
"""

from __future__ import annotations

from typing import Any

from websockets.protocol import OPEN, Protocol
from websockets.streams import StreamReader

__all__ = ["FrameStartWatch", "at_frame_start", "frame_limit", "in_fragmented_message"]


def at_frame_start(protocol: Any) -> bool:
    """websockets' parser waits for the first byte of a frame, with nothing buffered, on an
    open connection with no extension (which would decode each frame), and its debug log
    (which would show each frame) is off."""
    return (
        protocol.state is OPEN
        and not protocol.debug
        and not protocol.extensions
        and not protocol.reader.buffer
        and _waits_for_frame(protocol.parser)
    )


class FrameStartWatch:
    """For a connection that reads frames past websockets: ``_at_frame_start()`` says it may,
    checked once and remembered until bytes go to websockets (which resets
    ``_parser_idle``). ``_may_read_past()`` adds the connection's own condition."""

    protocol: Any
    # websockets' parser was seen waiting for a frame, and has been given nothing since.
    _parser_idle = False

    def _may_read_past(self) -> bool:
        return True

    def _at_frame_start(self) -> bool:
        protocol = self.protocol
        if protocol.state is not OPEN:  # closing: every byte is websockets'
            return False
        if not self._parser_idle:
            self._parser_idle = self._may_read_past() and at_frame_start(protocol)
        return self._parser_idle


def frame_limit(protocol: Any) -> int | None:
    """The largest payload websockets takes in the first frame of a message: ``max_size``
    up to 15; from 16, the smaller of ``max_message_size`` and ``max_fragment_size``."""
    if not hasattr(protocol, "max_message_size"):
        return protocol.max_size
    limits = [n for n in (protocol.max_message_size, protocol.max_fragment_size) if n is not None]
    return min(limits) if limits else None


def in_fragmented_message(protocol: Any) -> bool:
    """websockets has taken the first fragment of a message and waits for the rest (named
    ``cur_size`` up to 15, ``current_size`` from 16)."""
    size = getattr(protocol, "current_size", getattr(protocol, "cur_size", None))
    return size is not None


def _waits_for_frame(parser: Any) -> bool:
    """True if websockets' parser (a generator) is suspended where a frame begins: the
    innermost generator it delegates to is ``StreamReader.at_eof``, called from
    ``Protocol.parse``'s loop, where nothing of a frame has been read."""
    outer, inner = None, parser
    while getattr(inner, "gi_yieldfrom", None) is not None:
        outer, inner = inner, inner.gi_yieldfrom
    return getattr(inner, "gi_code", None) is _AT_EOF and getattr(outer, "gi_code", None) is _PARSE


_AT_EOF = StreamReader.at_eof.__code__
_PARSE = Protocol.parse.__code__

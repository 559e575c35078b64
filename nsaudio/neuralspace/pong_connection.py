"""A ``websockets`` client connection that reads the service's pongs itself.

The session machine pings once a frame sent (a pong proves the service has every byte before
it), so a session's replies are mostly pongs: at 200 gateway calls, 2,000 a second. Each
would cost websockets' generator-based parser about 8 µs and its event loop more.
:class:`PongConnection` reads them straight from the bytes that came and hands each to
``acknowledge_pings`` (as websockets does; the sink replaces it), when websockets would have
read the same bytes as the start of a frame (:func:`~.ws_parser.at_frame_start`), no
fragmented message is under way (whose size budget a pong would count against) and its size
limit takes any pong.

Only whole pongs as websockets takes them are read here: FIN, no RSV bit, unmasked (a server
must not mask), the length in the first byte (at most 125). From the first byte that is
anything else (a message, a ping, a close, a frame cut by the read, anything websockets must
refuse), the bytes go to websockets as they came.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection

from .ws_parser import FrameStartWatch, frame_limit, in_fragmented_message

__all__ = ["PongConnection"]

_PONG = 0x8A  # FIN, opcode 0xA


class PongConnection(FrameStartWatch, ClientConnection):
    """A ``ClientConnection`` for ``connect(create_connection=...)``; behaves as its base
    class in everything it shows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = frame_limit(self.protocol)
        self._pong_fits = limit is None or limit >= 125  # else websockets may refuse one

    def data_received(self, data: bytes) -> None:
        if data[:1] == b"\x8a" and self._at_frame_start():
            data = self._take_pongs(data)
            if not data:
                return
        self._parser_idle = False
        super().data_received(data)

    def _may_read_past(self) -> bool:
        return self._pong_fits and not in_fragmented_message(self.protocol)

    def _take_pongs(self, data: bytes) -> bytes:
        """The whole pongs at the start of ``data`` acknowledged; the rest, from the first
        byte that is not one, for websockets."""
        pos, end = 0, len(data)
        while end - pos >= 2 and data[pos] == _PONG:
            length = data[pos + 1]  # a mask bit or a 126/127 length code: more than 125
            stop = pos + 2 + length
            if length > 125 or stop > end:
                break
            self.acknowledge_pings(data[pos + 2 : stop])
            pos = stop
        return data[pos:] if pos else data

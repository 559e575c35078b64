"""A ``websockets`` server connection that hands each message to a callback as it is parsed.

websockets' own path for a message is a queue (its ``Assembler``), a future woken per
message and a task step into ``recv()``: for a 20 ms Twilio media message that costs more
than everything the gateway then does with it. :class:`PushConnection` keeps websockets for
what it does well (the opening handshake, ``process_request``, the close handshake, control
frames, ``max_size`` and its 1009, UTF-8 left to the receiver) and takes the data frames
itself: each whole message goes to :meth:`deliver`'s callback, synchronously, inside the
``data_received`` that parsed it, so one message is handled before the next is taken.

Messages that arrive before the handler calls :meth:`deliver` (a client may send its first
messages with the upgrade) are held, in order, and reading stops while more than
``HOLD_LIMIT`` are held; they go to the callback first.

Once messages are delivered, the frames a call sends nearly all the time (whole, masked,
text or binary, within ``max_size``) are read here, straight from the bytes that came,
when websockets' own parser is waiting for the start of a frame
(:func:`~nsaudio.neuralspace.ws_parser.at_frame_start`): its generator-based parser costs
8 µs a frame, the few header checks here under 1 µs (the unmasking is websockets' own).
Everything else goes to websockets as the bytes came (a control frame, a fragment, a frame
cut short by the read, anything it must refuse or judge) and what follows it too, until its
parser is again provably at the start of a frame with nothing buffered.

Only ``websockets>=15,<18`` is supported: the class relies on ``process_event(event)``,
``data_received(data)`` and ``connection_lost(exc)``, which these versions call the same
way, and looks at the parser's generator to know it waits for a frame (checked against
15.0.1 and 17.4; any other shape is taken as "not at a frame's start", which only costs the
speed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode, apply_mask

from ..neuralspace.ws_parser import FrameStartWatch, frame_limit

__all__ = ["HOLD_LIMIT", "PushConnection", "Receiver"]

#: Messages held before the handler takes over, above which reading pauses.
HOLD_LIMIT = 64

#: ``receive(data, text) -> more``: one whole message (``text``: a text message, ``data``
#: its UTF-8 bytes, undecoded); False when it wants no more (the connection then drops the
#: rest of its data frames).
Receiver = Callable[[bytes, bool], bool]


class PushConnection(FrameStartWatch, ServerConnection):
    """A ``ServerConnection`` whose data messages go to :meth:`deliver`'s callback; pass the
    class to ``serve(create_connection=...)``. ``recv()`` and ``async for`` get nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receive: Receiver | None = None
        self._held: list[tuple[bytes, bool]] | None = []  # None once the handler took over
        self._parts: bytearray | None = None  # a fragmented message so far
        self._parts_text = False
        self._ended: asyncio.Future[None] | None = None
        self._paused = False
        self._frame_limit = frame_limit(self.protocol)

    def deliver(self, receive: Receiver) -> asyncio.Future[None]:
        """Give every message, from the first, to ``receive`` as it comes.

        Returns a future that is done when ``receive`` wants no more (result None), raised
        (that exception) or the connection closed first (websockets' ``ConnectionClosed``).
        Call it once.
        """
        if self._held is None:
            raise RuntimeError("deliver() was called already")
        held, self._held = self._held, None
        self._ended = self.loop.create_future()
        if self._paused:  # no read comes before this returns: held messages stay first
            self._paused = False
            self.transport.resume_reading()
        for data, text in held:
            if not self._give(receive, data, text):
                return self._ended
        if self.connection_lost_waiter.done():
            self._ended.set_exception(self.protocol.close_exc)
        else:
            self._receive = receive
        return self._ended

    def stop_delivery(self) -> None:
        """No more messages to the callback (the handler is ending)."""
        self._receive = None
        self._held = None

    def _give(self, receive: Receiver, data: bytes, text: bool) -> bool:
        assert self._ended is not None
        try:
            more = receive(data, text)
        except Exception as err:  # the handler re-raises it, as if its own code had
            more = False
            if not self._ended.done():  # (a handler cancelled at the drain's deadline is)
                self._ended.set_exception(err)
        if not more:
            self._receive = None
            if not self._ended.done():
                self._ended.set_result(None)
        return more

    def data_received(self, data: bytes) -> None:
        if self._receive is not None and self._at_frame_start():
            data = self._take_frames(data)
            if not data:
                return
            self._parser_idle = False
        super().data_received(data)

    def _may_read_past(self) -> bool:
        return self._parts is None  # not in a fragmented message (this class keeps those)

    def _take_frames(self, data: bytes) -> bytes:
        """The whole, masked, unfragmented data frames at the start of ``data`` to the
        callback, as websockets would have parsed them; the rest, from the first byte that
        is not one, for websockets."""
        max_size = self._frame_limit
        pos, end = 0, len(data)
        while self._receive is not None and end - pos >= 6:
            head1, head2 = data[pos], data[pos + 1]
            # FIN, no RSV bit, text or binary; masked (a client must mask).
            if (head1 != 0x81 and head1 != 0x82) or not head2 & 0x80:
                break
            length = head2 & 0x7F
            at = pos + 2
            if length == 126:
                length, at = (data[at] << 8) | data[at + 1], at + 2
            elif length == 127:
                if end - at < 8:
                    break
                length, at = int.from_bytes(data[at : at + 8], "big"), at + 8
            if max_size is not None and length > max_size:
                break  # websockets refuses it (1009)
            if end - at - 4 < length:
                break  # cut short by the read
            payload = apply_mask(data[at + 4 : at + 4 + length], data[at : at + 4])
            pos = at + 4 + length
            self._give(self._receive, payload, head1 == 0x81)
        return data[pos:] if pos else data

    def process_event(self, event: Any) -> None:
        if type(event) is not Frame or event.opcode not in _DATA:
            super().process_event(event)  # the request, control frames
            return
        # websockets' parser has checked the sequence (a continuation follows a first frame)
        # and the size of the whole message against max_size.
        if event.opcode is Opcode.CONT:
            assert self._parts is not None
            self._parts += event.data
            if not event.fin:
                return
            data, text, self._parts = bytes(self._parts), self._parts_text, None
        elif not event.fin:
            self._parts, self._parts_text = bytearray(event.data), event.opcode is Opcode.TEXT
            return
        else:
            data, text = bytes(event.data), event.opcode is Opcode.TEXT
        if self._receive is not None:
            self._give(self._receive, data, text)
        elif self._held is not None:
            self._held.append((data, text))
            if len(self._held) > HOLD_LIMIT and not self._paused:
                self._paused = True
                self.transport.pause_reading()
        # else: the handler wants no more; the rest is dropped

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._receive = None
        if self._ended is not None and not self._ended.done():
            self._ended.set_exception(self.protocol.close_exc)


_DATA = frozenset((Opcode.TEXT, Opcode.BINARY, Opcode.CONT))

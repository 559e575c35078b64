"""The Twilio Media Streams listener: a ``websockets`` server that takes a stream on any path.

Before a byte of audio is read, the upgrade is checked: while draining it is refused (503);
with an Auth Token, a missing or wrong ``X-Twilio-Signature`` is refused with 403 (and no
session to the speech service is opened); at ``--max-calls`` it is refused (503). Messages
are bounded (64 kB; a larger one closes the stream with 1009), the opening handshake and
the wait for ``start`` by the handshake timeout, silence after it by the idle timeout.

Each message is handled by :meth:`_MediaStream.take` inside the read that parsed it
(:class:`~nsaudio.gateway.push_connection.PushConnection`), in order, one before the next;
the handler task only waits for the stream to end, then closes it (1008 after bad input,
1013 when the call was refused) and ends the call.
"""

from __future__ import annotations

import http
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CallProtocolError, internal_error
from .jitter import JitterBuffer
from .signature import SignatureChecker
from .twilio import (
    MAX_MESSAGE_BYTES,
    RATE,
    TRACK_LABELS,
    Media,
    Start,
    Stop,
    TwilioStream,
    Unknown,
)

if TYPE_CHECKING:
    from .call import Call
    from .push_connection import PushConnection
    from .server import Connection, Gateway

__all__ = ["TwilioListener"]

log = logging.getLogger("nsaudio.gateway")
PROTOCOL = "twilio"


class TwilioListener:
    """Listens on ``host:port`` for media streams (``port`` 0: any free port; see
    ``port`` once started)."""

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        cfg = gateway.config
        self.checker = (
            SignatureChecker(cfg.auth_token, cfg.public_url, cfg.shared_key)
            if cfg.auth_token
            else None
        )
        self._server: Any = None

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        from .push_connection import PushConnection

        cfg = self.gateway.config
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check,
            create_connection=PushConnection,
            max_size=MAX_MESSAGE_BYTES, open_timeout=cfg.handshake_timeout,
            ping_interval=None, close_timeout=2, compression=None, server_header=None,
            reuse_port=cfg.reuse_port or None,
        )  # fmt: skip
        self.port = self._server.sockets[0].getsockname()[1]

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=False)

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    def _check(self, conn: Any, request: Any) -> Any:
        gw = self.gateway
        if gw.draining:
            gw.metrics.refused.labels(PROTOCOL, "draining").inc()
            return conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
        if self.checker is not None and not self.checker.check(request.path, request.headers):
            gw.metrics.refused.labels(PROTOCOL, "signature").inc()
            peer = conn.remote_address[0] if conn.remote_address else "?"
            log.warning(
                "refused a media stream from %s: %s X-Twilio-Signature", peer,
                "wrong" if request.headers.get("X-Twilio-Signature") else "no",
            )  # fmt: skip
            return conn.respond(http.HTTPStatus.FORBIDDEN, "forbidden\n")
        if not gw.has_room():
            gw.metrics.refused.labels(PROTOCOL, "max_calls").inc()
            return conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "at capacity\n")
        return None

    async def _handle(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        ws: PushConnection = connection  # serve(create_connection=) makes them

        gw = self.gateway
        conn = gw.connection(PROTOCOL, lambda: ws.transport.abort())
        media = _MediaStream(gw, conn)
        try:
            await ws.deliver(media.take)
            if media.reason == "refused":
                await ws.close(1013, "at capacity")
            elif media.reason == "bad_input":
                gw.metrics.bad_messages.labels(PROTOCOL).inc()
                await ws.close(1008, "bad input")
        except ConnectionClosed as err:
            sent = getattr(err, "sent", None)
            if sent is not None and sent.code == 1009:
                media.reason = "bad_input"
                media.detail = f"a message over {MAX_MESSAGE_BYTES} bytes"
                gw.metrics.bad_messages.labels(PROTOCOL).inc()
        except Exception as err:  # ours: this call ends saying so, every other call goes on
            media.reason, media.detail = internal_error(err)
            await ws.close(1011, "internal error")
        finally:
            ws.stop_delivery()
            reason = conn.ended_by or media.reason
            gw.forget(conn)
            try:
                await self._end(media.call, media.jitter, reason, media.detail)
            finally:
                gw.handler_done()

    async def _end(
        self, call: Call | None, jitter: dict[str, JitterBuffer], reason: str, detail: str
    ) -> None:
        gw = self.gateway
        if call is not None:
            for track, jb in jitter.items():
                for block in jb.flush():
                    call.audio(track, block)
                call.note_missing(track, jb.stats.gap_samples + jb.stats.late_samples)
            await gw.end_call(call, reason, detail)
        elif reason not in ("closed", "refused"):
            gw.metrics.refused.labels(PROTOCOL, reason).inc()
            log.warning(
                "a media stream ended before its start (%s%s)", reason,
                f": {detail}" if detail else "",
            )  # fmt: skip


class _MediaStream:
    """One media stream's messages, taken as websockets parses them (no awaiting): the
    call starts at ``start``, its audio goes through a jitter buffer per track.

    :meth:`take` returns False when the stream is over for it: ``reason`` then says why
    (``stop``; ``refused`` at capacity; ``bad_input`` with ``detail``); else the stream
    ends when the connection does (``closed``).
    """

    def __init__(self, gateway: Gateway, conn: Connection) -> None:
        self.gateway = gateway
        self.conn = conn
        self.stream = TwilioStream()
        self.call: Call | None = None
        self.jitter: dict[str, JitterBuffer] = {}
        self.reason, self.detail = "closed", ""
        self.unknown_seen = False

    def take(self, data: bytes, text: bool) -> bool:
        self.conn.last = time.monotonic()
        try:
            event = self.stream.feed_text(data) if text else self.stream.feed(data)
        except CallProtocolError as err:
            self.reason, self.detail = "bad_input", str(err)
            return False
        if type(event) is Media:
            call = self.call
            assert call is not None  # the stream refuses media before start
            now = time.monotonic_ns()
            jitter = self.jitter
            jb = jitter[event.track]
            blocks = jb.push(  # µ-law codes: the track decodes them a frame at a time
                jb.position_of_ms(event.timestamp_ms), np.frombuffer(event.payload, np.uint8), now
            )
            for block in blocks:
                call.audio(event.track, block)
            if len(jitter) > 1:  # the other track's window may have passed
                for track, other in jitter.items():
                    if other is not jb and other.held:
                        for block in other.tick(now):
                            call.audio(track, block)
        elif isinstance(event, Start):
            gw = self.gateway
            self.call = gw.start_call(
                self.conn, PROTOCOL, event.call_sid,
                {t: TRACK_LABELS[t] for t in event.tracks}, RATE, event.custom_parameters,
                encoding="ulaw",
            )  # fmt: skip
            if self.call is None:
                self.reason = "refused"
                return False
            self.jitter = {
                t: JitterBuffer(RATE, window_ms=gw.config.jitter_ms) for t in event.tracks
            }
        elif isinstance(event, Stop):
            self.reason = "stop"
            return False
        elif isinstance(event, Unknown) and not self.unknown_seen:
            self.unknown_seen = True  # one line per call, however many come
            self.gateway.metrics.unknown_events.labels(PROTOCOL).inc()
            log.warning(
                "stream %s: skipped an unknown %r event (and any more of them)",
                self.call.call_id if self.call else "before start", event.event,
            )  # fmt: skip
        return True

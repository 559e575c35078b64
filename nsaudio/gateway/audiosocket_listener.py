"""The Asterisk AudioSocket listener: TCP, one call per connection.

AudioSocket carries no authentication, so who may connect is decided by address: a peer
outside ``--allow`` (or, with no ``--allow``, any peer that is not loopback) is closed the
moment it connects, before a byte is read. The UUID must come within the handshake timeout,
audio must keep coming within the idle timeout, and a message can be at most 64 kB (its
length field's limit; audio at most 1 s of it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

from ..blocks import Block
from .audiosocket import (
    AUDIO_RATES,
    KIND_SLIN,
    Audio,
    AudioSocketCall,
    Dtmf,
    Failure,
    Hangup,
    Parser,
    Unknown,
)
from .errors import CallProtocolError, internal_error

if TYPE_CHECKING:
    from .call import Call
    from .server import Connection, Gateway

__all__ = ["AudioSocketListener", "peer_allowed"]

log = logging.getLogger("nsaudio.gateway")
PROTOCOL = "audiosocket"
TRACK = "audio"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_allowed(address: str, allow: Sequence[Network]) -> bool:
    """Whether a peer at ``address`` may connect: in one of ``allow``, or, with none given,
    a loopback address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not allow:
        return ip.is_loopback
    return any(ip in net for net in allow)


class AudioSocketListener:
    """Listens on ``host:port`` (``port`` 0: any free port; see ``port`` once started)."""

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AudioSocketConnection(self), self.host, self.port,
            reuse_port=self.gateway.config.reuse_port or None,
        )  # fmt: skip
        self.port = self._server.sockets[0].getsockname()[1]

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        pass  # asyncio's wait_closed would wait for every connection: the gateway does that

    async def _end(self, call: Call | None, address: str, reason: str, detail: str) -> None:
        gw = self.gateway
        if call is not None:
            await gw.end_call(call, reason, detail)
        elif reason not in ("closed", "refused"):
            gw.metrics.refused.labels(PROTOCOL, reason).inc()
            log.warning(
                "an AudioSocket connection from %s ended before its UUID (%s%s)", address,
                reason, f": {detail}" if detail else "",
            )  # fmt: skip

    def _start(self, conn: Connection, state: AudioSocketCall) -> Call | None:
        assert state.call_id is not None
        # The session opens now, at 0x10's 8 kHz (what every Asterisk sends); a call whose
        # first audio comes at another rate has it opened again at that rate.
        return self.gateway.start_call(
            conn, PROTOCOL, state.call_id, {TRACK: "caller"}, AUDIO_RATES[KIND_SLIN]
        )


class _AudioSocketConnection(asyncio.Protocol):
    """One connection: its messages are parsed, and its audio pushed to the call, inside
    the read that brought them (no task woken a read). Its handler task, :meth:`_run`, only
    waits for the end (``_done``), then closes the connection and ends the call.

    ``reason`` says why it ended: ``closed`` (by the peer), ``hangup``, ``error`` (Asterisk
    said so), ``refused`` (no room for the call), ``bad_input`` with ``detail``; or the
    watchdog's reason, which it gives by aborting the transport.
    """

    def __init__(self, listener: AudioSocketListener) -> None:
        self.listener = listener
        self.gateway = listener.gateway
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.conn: Connection | None = None
        self.parser = Parser()
        self.state = AudioSocketCall()
        self.call: Call | None = None
        self.position = 0
        self.reason, self.detail = "closed", ""
        self._done: asyncio.Future[None] | None = None  # None: refused before a byte was read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses: no isinstance here)
        transport = cast(asyncio.Transport, transport)
        gw = self.gateway
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.address = address = peer[0] if peer else ""
        if not peer_allowed(address, gw.config.allow):
            gw.metrics.refused.labels(PROTOCOL, "not_allowed").inc()
            log.warning("refused an AudioSocket connection from %s: not in --allow", address)
            transport.abort()
            return
        if gw.draining or not gw.has_room():
            gw.metrics.refused.labels(PROTOCOL, "draining" if gw.draining else "max_calls").inc()
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.conn = gw.connection(PROTOCOL, transport.abort, loop.create_task(self._run()))

    def data_received(self, data: bytes) -> None:
        done = self._done
        if done is None or done.done():
            return  # refused, or over: what comes after the end is not read
        conn = self.conn
        assert conn is not None
        conn.last = time.monotonic()
        now = time.monotonic_ns()
        state = self.state
        try:
            for msg in self.parser.feed(data):
                item = state.take(msg)
                if type(item) is Audio:
                    call = self.call
                    assert call is not None  # made at the UUID, which comes first
                    samples = np.frombuffer(item.pcm, "<i2")
                    call.audio(TRACK, Block(samples, self.position, item.rate, now))
                    self.position += len(samples)
                elif item is None:  # the UUID: the call's sessions open now, its rate
                    self.call = self.listener._start(conn, state)  # comes with its first audio
                    if self.call is None:
                        self._end("refused")
                        return
                elif isinstance(item, Hangup):
                    self._end("hangup")
                    return
                elif isinstance(item, Failure):
                    self._end("error", f"Asterisk reported error {item.code or '?'}")
                    return
                elif isinstance(item, Dtmf):
                    log.debug("call %s: DTMF %s", state.call_id, item.digit)
                elif isinstance(item, Unknown):
                    self.gateway.metrics.unknown_events.labels(PROTOCOL).inc()
        except CallProtocolError as err:
            self._bad_input(err)
        except Exception as err:  # ours: this call ends saying so, every other call goes on
            self._end(*internal_error(err))

    def eof_received(self) -> bool:
        if self._done is not None and not self._done.done():
            try:
                self.parser.end()
            except CallProtocolError as err:
                self._bad_input(err)
            self._end(self.reason, self.detail)
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(self.reason, self.detail)

    def _bad_input(self, err: CallProtocolError) -> None:
        self.gateway.metrics.bad_messages.labels(PROTOCOL).inc()
        self._end("bad_input", str(err))

    def _end(self, reason: str, detail: str = "") -> None:
        """The connection is over for the call: the first reason given stands (the
        watchdog's, if it aborted the transport), and from now on the watchdog and the drain
        no longer see the connection, so nothing replaces it before the handler runs."""
        done = self._done
        if done is None or done.done():
            return
        assert self.transport is not None and self.conn is not None
        self.reason, self.detail = self.conn.ended_by or reason, detail
        self.gateway.forget(self.conn)
        done.set_result(None)
        self.transport.close()  # reads no more; buffered writes (none) would still go

    async def _run(self) -> None:
        gw = self.gateway
        try:
            assert self._done is not None
            await self._done
        finally:
            assert self.transport is not None and self.conn is not None
            self.transport.close()
            reason = self.conn.ended_by or self.reason  # (cancelled before the end: the drain)
            gw.forget(self.conn)
            try:
                await self.listener._end(self.call, self.address, reason, self.detail)
            finally:
                gw.handler_done()

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
from typing import TYPE_CHECKING

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
_READ = 65536

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
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_READ,
            reuse_port=self.gateway.config.reuse_port or None,
        )  # fmt: skip
        self.port = self._server.sockets[0].getsockname()[1]

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        pass  # asyncio's wait_closed would wait for every connection: the gateway does that

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gw = self.gateway
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else ""
        if not peer_allowed(address, gw.config.allow):
            gw.metrics.refused.labels(PROTOCOL, "not_allowed").inc()
            log.warning("refused an AudioSocket connection from %s: not in --allow", address)
            writer.transport.abort()
            return
        if gw.draining or not gw.has_room():
            gw.metrics.refused.labels(PROTOCOL, "draining" if gw.draining else "max_calls").inc()
            writer.transport.abort()
            return
        conn = gw.connection(PROTOCOL, writer.transport.abort)
        parser = Parser()
        state = AudioSocketCall()
        call: Call | None = None
        position = 0
        reason, detail = "closed", ""
        try:
            while True:
                data = await reader.read(_READ)
                if not data:
                    parser.end()
                    break
                conn.last = time.monotonic()
                now = time.monotonic_ns()
                for msg in parser.feed(data):
                    item = state.take(msg)
                    if type(item) is Audio:
                        assert call is not None  # made at the UUID, which comes first
                        samples = np.frombuffer(item.pcm, "<i2")
                        call.audio(TRACK, Block(samples, position, item.rate, now))
                        position += len(samples)
                    elif item is None:  # the UUID: the call's sessions open now, its rate
                        call = self._start(conn, state)  # comes with its first audio
                        if call is None:
                            reason = "refused"
                            return
                    elif isinstance(item, Hangup):
                        reason = "hangup"
                        return
                    elif isinstance(item, Failure):
                        reason, detail = "error", f"Asterisk reported error {item.code or '?'}"
                        return
                    elif isinstance(item, Dtmf):
                        log.debug("call %s: DTMF %s", state.call_id, item.digit)
                    elif isinstance(item, Unknown):
                        gw.metrics.unknown_events.labels(PROTOCOL).inc()
        except CallProtocolError as err:
            reason, detail = "bad_input", str(err)
            gw.metrics.bad_messages.labels(PROTOCOL).inc()
        except (ConnectionError, OSError):
            pass
        except Exception as err:  # ours: this call ends saying so, every other call goes on
            reason, detail = internal_error(err)
        finally:
            writer.close()
            reason = conn.ended_by or reason
            gw.forget(conn)
            try:
                await self._end(call, state, address, reason, detail)
            finally:
                gw.handler_done()

    async def _end(
        self, call: Call | None, state: AudioSocketCall, address: str, reason: str, detail: str
    ) -> None:
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

"""Helpers for the gateway tests: a gateway on a thread of its own, and simulated callers.

Callers speak the real protocols to the real listeners over loopback: Twilio Media Streams
(JSON over a WebSocket, µ-law, signed upgrades) and AudioSocket (TCP frames). Audio is the
fault tests' slot code (``tests/faults/slots.py``), so every word a session lost or repeated
shows in the transcript.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nsaudio.gateway import Gateway, GatewayConfig
from nsaudio.gateway.audiosocket import KIND_HANGUP, KIND_SLIN, KIND_UUID, encode
from nsaudio.gateway.call import CallEnd
from nsaudio.gateway.server import engine_loop

PACKET = 160  # 20 ms at 8 kHz


def ulaw_encode(x: np.ndarray) -> bytes:
    """Float mono (full scale 1.0) to G.711 µ-law bytes (the standard encoder, bias 0x84)."""
    s = np.clip(np.round(np.asarray(x, np.float64) * 32768), -32768, 32767).astype(np.int32)
    sign = np.where(s < 0, 0x80, 0)
    mag = np.minimum(np.abs(s), 32635) + 0x84
    exp = np.floor(np.log2(mag)).astype(np.int32) - 7
    exp = np.clip(exp, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    return (~(sign | (exp << 4) | mant) & 0xFF).astype(np.uint8).tobytes()


def slin_encode(x: np.ndarray) -> bytes:
    return np.clip(np.round(np.asarray(x) * 32768), -32768, 32767).astype("<i2").tobytes()


@dataclass
class Recorded:
    """What the gateway's hooks saw."""

    results: list[tuple[str, str, Any]] = field(default_factory=list)
    ends: list[CallEnd] = field(default_factory=list)

    def words(self, call_id: str, track: str = "caller") -> list[str]:
        return " ".join(
            r.text for c, t, r in self.results if c == call_id and t == track and r.full
        ).split()


class GatewayThread:
    """A :class:`Gateway` on the session engine's loop thread; ``drain()`` from the test's."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.recorded = Recorded()
        self.loop = engine_loop()  # where the command runs it too
        self.gateway: Gateway | None = None

    def __enter__(self) -> GatewayThread:
        rec = self.recorded

        async def start() -> Gateway:
            gw = Gateway(
                self.config,
                on_result=lambda c, t, r: rec.results.append((c, t, r)),
                on_call_end=rec.ends.append,
            )
            await gw.start()
            return gw

        self.gateway = self.run(start())
        return self

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def twilio_url(self) -> str:
        assert self.gateway is not None
        return f"ws://127.0.0.1:{self.gateway.twilio_port}"

    @property
    def audiosocket_port(self) -> int:
        assert self.gateway is not None and self.gateway.audiosocket_port is not None
        return self.gateway.audiosocket_port

    def drain(self, timeout: float = 120) -> bool:
        assert self.gateway is not None
        return bool(self.run(self.gateway.drain(), timeout))

    def wait_ends(self, n: int, timeout: float = 60) -> list[CallEnd]:
        deadline = self.loop.time() + timeout
        while len(self.recorded.ends) < n:
            if self.loop.time() > deadline:
                raise AssertionError(f"{len(self.recorded.ends)} of {n} calls ended")
            threading.Event().wait(0.05)
        return self.recorded.ends

    def wait_call(self, call_id: str, timeout: float = 60) -> CallEnd:
        """The end of ``call_id``, once it has ended."""
        deadline = self.loop.time() + timeout
        while True:
            for end in self.recorded.ends:
                if end.call_id == call_id:
                    return end
            if self.loop.time() > deadline:
                raise AssertionError(f"call {call_id} did not end")
            threading.Event().wait(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.gateway is not None and not self.gateway.draining:
            self.run(self.gateway.close())


def twilio_start(call_sid: str, tracks: tuple[str, ...] = ("inbound",)) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ" + call_sid[2:],
        "start": {
            "accountSid": "AC" + "0" * 32, "streamSid": "MZ" + call_sid[2:], "callSid": call_sid,
            "tracks": list(tracks), "customParameters": {"who": "test"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    })  # fmt: skip


def twilio_media(track: str, k: int, payload: bytes) -> str:
    """Byte for byte as Twilio sends it (compact, keys in this order: as logged from live
    calls), so the gateway reads these the short way; ``test_twilio`` tries other layouts."""
    return (
        f'{{"event":"media","sequenceNumber":"{k + 2}","media":{{"track":"{track}",'
        f'"chunk":"{k + 1}","timestamp":"{k * 20}",'
        f'"payload":"{base64.b64encode(payload).decode()}"}},"streamSid":"MZ1"}}'
    )


def twilio_messages(call_sid: str, tracks: dict[str, np.ndarray]) -> list[str]:
    """A whole stream: connected, start, media (tracks interleaved per 20 ms), stop."""
    names = tuple(tracks)
    out = ['{"event": "connected", "protocol": "Call", "version": "1.0.0"}']
    out.append(twilio_start(call_sid, names))
    encoded = {t: ulaw_encode(x) for t, x in tracks.items()}
    n = max(len(x) for x in tracks.values()) // PACKET
    for k in range(n):
        for t in names:
            chunk = encoded[t][k * PACKET : (k + 1) * PACKET]
            if chunk:
                out.append(twilio_media(t, k, chunk))
    out.append('{"event": "stop", "sequenceNumber": "999", "stop": {}}')
    return out


async def twilio_call(
    url: str,
    messages: list[str],
    *,
    headers: dict[str, str] | None = None,
    pace: float = 0.0,
    hook: Callable[[int], Any] | None = None,
) -> int | None:
    """Send ``messages`` on a Media Streams WebSocket (``pace`` s between media messages);
    the close code the gateway gave, or None if it closed cleanly."""
    from websockets.asyncio.client import connect

    async with connect(url, additional_headers=headers, max_size=None, open_timeout=10) as ws:
        for i, m in enumerate(messages):
            if hook is not None:
                await hook(i)
            await ws.send(m)
            if pace and '"media"' in m[:30]:
                await asyncio.sleep(pace)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), 60)
        return ws.close_code


def audiosocket_frames(call_id: uuid.UUID, x: np.ndarray, *, hangup: bool = True) -> list[bytes]:
    pcm = slin_encode(x)
    frames = [encode(KIND_UUID, call_id.bytes)]
    frames += [encode(KIND_SLIN, pcm[i : i + 2 * PACKET]) for i in range(0, len(pcm), 2 * PACKET)]
    if hangup:
        frames.append(encode(KIND_HANGUP))
    return frames


async def audiosocket_call(port: int, frames: list[bytes], *, pace: float = 0.0) -> bytes:
    """Send ``frames`` over TCP; whatever the gateway sent back before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for f in frames:
        writer.write(f)
        if pace:
            await writer.drain()
            await asyncio.sleep(pace)
    await writer.drain()
    got = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    return got


class WebhookReceiver:
    """An HTTP server on loopback that keeps every JSON body POSTed to it; the first
    ``fail_first`` requests are answered 500 (so retries show)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests = 0
        self.events: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()

        async def start() -> Any:
            return await asyncio.start_server(self._handle, "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-path-token"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        ))  # fmt: skip
        body = await reader.readexactly(length)
        self.requests += 1
        if self.requests <= self.fail_first:
            writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
        else:
            self.events.append(json.loads(body))
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    def ends(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "call_end"]

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

"""Messages reach the Twilio listener as websockets parses them, whatever the TCP reads hold.

A raw socket writes the WebSocket bytes itself, so the test chooses the reads: the upgrade
and the first messages in one write, several messages per write, a message cut across
writes, a message in fragments, control frames between them.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time

import numpy as np
import pytest

from nsaudio.gateway.push_connection import HOLD_LIMIT, PushConnection

from .support import twilio_messages

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
TEXT, BINARY, CONT, PING = 0x1, 0x2, 0x0, 0x9


def frame(data: bytes, opcode: int = TEXT, fin: bool = True) -> bytes:
    """A client frame (masked with a zero key, so the payload reads as is)."""
    n = len(data)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return bytes([(0x80 if fin else 0) | opcode]) + size + b"\0\0\0\0" + data


def fragments(data: bytes, parts: int) -> bytes:
    step = -(-len(data) // parts)
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    return b"".join(
        frame(p, TEXT if i == 0 else CONT, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)
    )


def write_in_cuts(sock: socket.socket, data: bytes, seed: int) -> None:
    """``data`` in writes of 1 byte to 3 kB, a millisecond apart (separate reads)."""
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        n = rng.choice((1, 7, 300, 1000, 3000))
        sock.sendall(data[i : i + n])
        i += n
        time.sleep(0.001)


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_every_message_in_order_however_the_reads_cut_them():
    """At the connection: the upgrade and 2 * HOLD_LIMIT messages in one write (held, and
    reading paused, until the handler takes over), then messages several to a read, cut
    across reads, in fragments, with pings between them; each reaches the callback once,
    in order, then the callback says it wants no more and the rest is dropped."""
    got: list[tuple[bytes, bool]] = []
    first = [json.dumps({"n": i}).encode() for i in range(2 * HOLD_LIMIT)]
    later = [json.dumps({"n": i, "pad": "x" * (i % 700)}).encode() for i in range(len(first), 400)]
    ended: list[BaseException | None] = []

    async def handler(ws: PushConnection) -> None:
        await asyncio.sleep(0.2)  # the first write has been read by now: all of it is held

        def take(data: bytes, text: bool) -> bool:
            got.append((data, text))
            return data != b"enough"

        try:
            await ws.deliver(take)
            ended.append(None)
        except Exception as err:
            ended.append(err)

    async def serve_once() -> None:
        from websockets.asyncio.server import serve

        server = await serve(
            handler, "127.0.0.1", 0, create_connection=PushConnection, ping_interval=None
        )
        port = server.sockets[0].getsockname()[1]
        await asyncio.to_thread(client, port)
        server.close()
        await server.wait_closed()

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(UPGRADE + b"".join(frame(m) for m in first))
            rest = b""
            for i, m in enumerate(later):
                if i % 50 == 7:
                    rest += frame(b"ping", PING)
                rest += fragments(m, 3) if i % 25 == 3 else frame(m)
            rest += frame(b"\x00\x01binary", BINARY) + frame(b"enough") + frame(b"dropped")
            write_in_cuts(sock, rest, seed=17)
            read_until_closed(sock)

    asyncio.run(serve_once())
    expected = [(m, True) for m in first + later]
    expected += [(b"\x00\x01binary", False), (b"enough", True)]
    assert got == expected
    assert ended == [None]


def test_a_raising_callback_ends_its_handler_with_that_error():
    errors: list[BaseException] = []

    async def handler(ws: PushConnection) -> None:
        def take(data: bytes, text: bool) -> bool:
            raise ValueError(data.decode())

        try:
            await ws.deliver(take)
        except ValueError as err:
            errors.append(err)

    async def serve_once() -> None:
        from websockets.asyncio.client import connect
        from websockets.asyncio.server import serve

        server = await serve(handler, "127.0.0.1", 0, create_connection=PushConnection)
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            await ws.send("first")
            await ws.send("second")
            await asyncio.wait_for(ws.wait_closed(), 10)
        server.close()
        await server.wait_closed()

    asyncio.run(serve_once())
    assert [str(e) for e in errors] == ["first"]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_call_whose_messages_come_batched_and_cut_keeps_every_word(gateway, call_audio, seed):
    """At the gateway: the whole call's bytes, cut anyhow (the upgrade, connected and start
    in the first write with some media), every word arrives and the call ends at its stop."""
    gw = gateway()
    call_sid = "CA" + str(seed) * 32
    msgs = [m.encode() for m in twilio_messages(call_sid, {"inbound": call_audio.data[:, 0]})]
    port = int(gw.twilio_url.rsplit(":", 1)[1])
    data = b"".join(fragments(m, 2) if i % 40 == 5 else frame(m) for i, m in enumerate(msgs))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(UPGRADE + data[:5000])
        writer = threading.Thread(target=write_in_cuts, args=(sock, data[5000:], seed))
        writer.start()
        reply = read_until_closed(sock)
        writer.join()
    assert reply.startswith(b"HTTP/1.1 101")
    end = gw.wait_call(call_sid)
    assert (end.reason, end.verdict) == ("stop", "complete"), end
    assert gw.recorded.words(call_sid) == call_audio.words


@pytest.mark.parametrize(
    ("data", "text", "says"),
    [(b"\xff\xfe not UTF-8", True, "not UTF-8"), (b'{"event": "stop"}', False, "binary")],
)
def test_a_message_that_is_not_utf8_text_is_bad_input(gateway, data, text, says):
    gw = gateway()
    call_sid = "CA" + "7" * 32
    start = twilio_messages(call_sid, {"inbound": np.zeros(1600, np.float32)})[:2]

    async def send() -> int | None:
        from websockets.asyncio.client import connect

        async with connect(gw.twilio_url) as ws:
            for m in start:
                await ws.send(m)
            await ws.send(data, text=text)
            await asyncio.wait_for(ws.wait_closed(), 10)
            return ws.close_code

    assert asyncio.run(send()) == 1008
    end = gw.wait_call(call_sid)
    assert end.reason == "bad_input" and says in end.detail, end

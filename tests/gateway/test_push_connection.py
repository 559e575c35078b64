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


def serve_one(handler, client, **serve_kw) -> None:
    """A ``PushConnection`` server on a free loopback port (no pings), ``client(port)`` run
    on a thread against it, then the server closed."""

    async def main() -> None:
        from websockets.asyncio.server import serve

        server = await serve(
            handler, "127.0.0.1", 0, create_connection=PushConnection, ping_interval=None,
            **serve_kw,
        )  # fmt: skip
        port = server.sockets[0].getsockname()[1]
        await asyncio.to_thread(client, port)
        server.close()
        await server.wait_closed()

    asyncio.run(main())


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

    serve_one(handler, client)
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


def masked(data: bytes, opcode: int, rng: random.Random, fin: bool = True) -> bytes:
    """A client frame as a browser or Twilio writes it: a random mask, and a length in any
    of the three encodings a reader must take (2, 4 or 10 header bytes; the longer ones
    also for short payloads, which RFC 6455 forbids but websockets reads)."""
    from websockets.frames import apply_mask

    n = len(data)
    form = rng.choice([f for f in (7, 16, 64) if (f, n < 126, n < 65536) != (7, False, False)])
    if form == 7 and n < 126:
        size = bytes([0x80 | n])
    elif form == 16 and n < 65536:
        size = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        size = bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = rng.randbytes(4)
    return bytes([(0x80 if fin else 0) | opcode]) + size + key + apply_mask(data, key)


def serve_raw(take_from: list[tuple[bytes, bool]], wire: bytes, seed: int, **serve_kw):
    """Serve one connection whose handler delivers every message into ``take_from``; a raw
    client writes the upgrade, then ``wire`` in random cuts, and reads until the server
    closes. The handler's end is returned (None, or the exception)."""
    ended: list[BaseException | None] = []

    async def handler(ws: PushConnection) -> None:
        def take(data: bytes, text: bool) -> bool:
            take_from.append((data, text))
            return True

        try:
            await ws.deliver(take)
            ended.append(None)
        except Exception as err:
            ended.append(err)

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(UPGRADE)
            time.sleep(0.1)  # the handler has taken over: every frame below is delivered
            write_in_cuts(sock, wire, seed)
            read_until_closed(sock)

    serve_one(handler, client, **serve_kw)
    return ended


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_frames_read_past_websockets_are_the_messages_it_would_have_given(seed):
    """Random masks, all three length encodings, empty and 60 kB messages, text and binary,
    pings and fragmented messages between them (which websockets reads), cut by the reads
    anywhere: every message arrives once, in order, unmasked, with its kind; then a close."""
    rng = random.Random(seed)
    messages = []
    wire = b""
    for i in range(300):
        size = (
            rng.choice([0, 1, 125, 126, 400, 65535 - 1, 60_000])
            if i % 7 == 0
            else rng.randint(0, 900)
        )
        data = rng.randbytes(size)
        text = i % 3 != 0
        if text:
            data = data.hex().encode()[:size]
        messages.append((data, text))
        opcode = TEXT if text else BINARY
        if i % 23 == 5 and len(data) > 2:  # in fragments: websockets reads these
            cut = len(data) // 2
            wire += masked(data[:cut], opcode, rng, fin=False) + masked(data[cut:], CONT, rng)
        else:
            wire += masked(data, opcode, rng)
        if i % 31 == 9:
            wire += masked(b"are you there", PING, rng)
    wire += masked(b"\x03\xe8", 0x8, rng)  # close, 1000
    got: list[tuple[bytes, bool]] = []
    ended = serve_raw(got, wire, seed)
    assert got == messages
    assert len(ended) == 1 and type(ended[0]).__name__ == "ConnectionClosedOK"


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (bytes([0x81, 5]) + b"hello", 1002),  # not masked
        (bytes([0xC1, 0x85]) + b"\0\0\0\0hello", 1002),  # RSV1 without an extension
        (bytes([0x81, 0xFF]) + (70_000).to_bytes(8, "big") + b"\0\0\0\0" + b"x" * 70_000, 1009),
        (bytes([0x83, 0x80]) + b"\0\0\0\0", 1002),  # a reserved opcode
    ],
    ids=["unmasked", "rsv1", "too-big", "opcode-3"],
)
def test_a_frame_websockets_refuses_is_refused_after_good_ones_went_past_it(bad, code):
    """Good frames are read here; a bad one after them still goes to websockets, which
    closes with its code; nothing after it is delivered."""
    rng = random.Random(1)
    good = [(f"message {i}".encode(), True) for i in range(20)]
    wire = b"".join(masked(m, TEXT, rng) for m, _ in good) + bad + masked(b"after", TEXT, rng)
    got: list[tuple[bytes, bool]] = []
    ended = serve_raw(got, wire, seed=7, max_size=65536)
    assert got == good
    assert len(ended) == 1 and ended[0] is not None
    assert ended[0].sent is not None and ended[0].sent.code == code, ended[0]


def test_whole_frames_after_the_handshake_do_not_go_through_websockets_parser(monkeypatch):
    """The point of reading them here: once delivery began, whole data frames never reach
    websockets' parser; a ping does (and gets its pong), and the next whole frames are read
    here again. If a websockets release changes its parser's shape, this fails (the frames
    would still arrive, through websockets, only slower)."""
    from websockets.protocol import Protocol

    fed: list[int] = []
    real = Protocol.receive_data

    def receive_data(self, data):
        fed.append(len(data))
        return real(self, data)

    monkeypatch.setattr(Protocol, "receive_data", receive_data)
    rng = random.Random(2)
    first = [(f"first {i}".encode(), True) for i in range(50)]
    later = [(f"later {i}".encode(), True) for i in range(50)]
    ping = masked(b"ping", PING, rng)
    wire_first = b"".join(masked(m, TEXT, rng) for m, _ in first)
    wire_later = b"".join(masked(m, TEXT, rng) for m, _ in later)
    got: list[tuple[bytes, bool]] = []

    async def handler(ws: PushConnection) -> None:
        await ws.deliver(lambda data, text: got.append((data, text)) or True)

    pong = []

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(UPGRADE)
            sock.settimeout(10)
            assert sock.recv(4096).startswith(b"HTTP/1.1 101")
            time.sleep(0.1)
            fed.clear()  # the upgrade went through websockets, as it should
            sock.sendall(wire_first)
            time.sleep(0.1)
            sock.sendall(ping)
            pong.append(sock.recv(4096))
            time.sleep(0.1)
            sock.sendall(wire_later)
            time.sleep(0.1)

    serve_one(handler, client)
    assert got[:100] == first + later
    assert pong == [bytes([0x8A, 4]) + b"ping"]
    assert fed[:1] == [len(ping)], fed  # the ping alone; then the connection's end

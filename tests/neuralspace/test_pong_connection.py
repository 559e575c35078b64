"""The service's pongs are read past websockets' parser, and everything else is as before.

A raw server answers the upgrade, then writes the bytes the test chooses, in random cuts:
pongs (ours and others), messages, fragments with pongs between them, pings, then a close.
The same bytes go to websockets' own ``ClientConnection`` and to ``PongConnection``; each
must see the same pongs, the same messages and the same end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import random
from typing import Any

import pytest

from nsaudio.neuralspace.pong_connection import PongConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(data: bytes, opcode: int, fin: bool = True, length_form: int = 7) -> bytes:
    """A server frame (unmasked), its length in the form given (7, 16 or 64 bits; the
    longer forms also for short payloads, which websockets reads)."""
    n = len(data)
    if length_form == 7 and n < 126:
        size = bytes([n])
    elif length_form in (7, 16) and n < 65536:
        size = bytes([126]) + n.to_bytes(2, "big")
    else:
        size = bytes([127]) + n.to_bytes(8, "big")
    return bytes([(0x80 if fin else 0) | opcode]) + size + data


def in_cuts(wire: bytes, seed: int) -> list[bytes]:
    """``wire`` cut anywhere, into pieces of 1 byte to 3 kB."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(wire):
        n = rng.choice((1, 2, 9, 10, 100, 700, 3000))
        out.append(wire[i : i + n])
        i += n
    return out


def run_client(cls: type, writes: list[bytes], max_size: int = 1 << 20) -> dict[str, Any]:
    """Connect a ``cls`` client to a raw server that writes each of ``writes`` a millisecond
    apart (separate reads), then closes once the client has sent its close; what the client
    saw."""
    seen: dict[str, Any] = {"pongs": [], "messages": []}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await asyncio.sleep(0.05)  # the client has its acknowledge_pings in place
        for data in writes:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(0.001)
        # A client that closed waits for the server to close TCP: once it said so, this does.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 5)
        writer.close()

    async def main() -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            ws = await connect(
                f"ws://127.0.0.1:{port}/", create_connection=cls, ping_interval=None,
                compression=None, max_size=max_size, close_timeout=2,
            )  # fmt: skip
            ws.acknowledge_pings = seen["pongs"].append
            try:
                async for message in ws:
                    seen["messages"].append(message)
            except ConnectionClosed:
                pass
            await ws.wait_closed()
            protocol = ws.protocol
            seen["sent"] = protocol.close_sent and protocol.close_sent.code
            seen["rcvd"] = protocol.close_rcvd and protocol.close_rcvd.code

    asyncio.run(main())
    return seen


def random_wire(rng: random.Random) -> tuple[bytes, list[bytes], list[Any]]:
    """Pongs (mostly 8 bytes, as the sink's), results, pings, fragmented messages with
    pongs between their fragments, non-minimal lengths; then a close 1000."""
    wire, pongs, messages = b"", [], []
    for i in range(600):
        kind = rng.random()
        if kind < 0.7:
            data = rng.choice([rng.randbytes(8), b"", rng.randbytes(125), rng.randbytes(3)])
            wire += frame(data, PONG, length_form=7 if i % 17 else 16)
            pongs.append(data)
        elif kind < 0.85:
            text = rng.random() < 0.8
            data = rng.randbytes(rng.choice([0, 5, 126, 900, 70_000]))
            if text:
                data = data.hex().encode()[: len(data)]
            wire += frame(data, TEXT if text else BINARY)
            messages.append(data.decode() if text else data)
        elif kind < 0.92:
            wire += frame(b"are you there", PING)
        else:  # a message in three fragments, a pong between each
            data = rng.randbytes(30).hex().encode()
            for j, part in enumerate((data[:20], data[20:40], data[40:])):
                wire += frame(part, TEXT if j == 0 else CONT, fin=j == 2)
                if j < 2:
                    pong = rng.randbytes(8)
                    wire += frame(pong, PONG)
                    pongs.append(pong)
            messages.append(data.decode())
    return wire + frame(b"\x03\xe8", CLOSE), pongs, messages


@pytest.mark.parametrize("seed", [1, 2])
def test_pongs_messages_and_the_end_are_what_websockets_gives(seed):
    wire, pongs, messages = random_wire(random.Random(seed))
    ours = run_client(PongConnection, in_cuts(wire, seed))
    theirs = run_client(_websockets_client(), in_cuts(wire, seed))
    assert ours["pongs"] == theirs["pongs"] == pongs
    assert ours["messages"] == theirs["messages"] == messages
    assert (ours["rcvd"], ours["sent"]) == (theirs["rcvd"], theirs["sent"]) == (1000, 1000)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (bytes([0x8A, 0x88]) + b"\0\0\0\0" + b"x" * 8, 1002),  # masked: a server must not
        (bytes([0xCA, 8]) + b"x" * 8, 1002),  # RSV1 without an extension
        (bytes([0x0A, 8]) + b"x" * 8, 1002),  # a fragmented control frame
        (frame(b"x" * 126, PONG), 1002),  # a control frame over 125 bytes
    ],
    ids=["masked", "rsv1", "not-fin", "too-long"],
)
def test_a_pong_websockets_refuses_is_refused_after_good_ones_went_past_it(bad, code):
    """Good pongs in cuts, then the bad frame and 30 pongs after it in one read (enough
    bytes for any length the bad frame's header could be taken to say)."""
    good = [i.to_bytes(8, "big") for i in range(40)]
    writes = [*in_cuts(b"".join(frame(p, PONG) for p in good), 3), bad + frame(b"after", PONG) * 30]
    ours = run_client(PongConnection, writes)
    theirs = run_client(_websockets_client(), writes)
    assert ours["pongs"] == theirs["pongs"] == good
    assert ours["sent"] == theirs["sent"] == code


def test_a_pong_inside_a_fragmented_message_counts_against_its_size_as_websockets_says():
    """Inside a fragmented message websockets takes a frame only within what is left of
    the message's size limit, pongs too: one that does not fit closes with 1009."""
    first = frame(b"a" * 195, TEXT, fin=False)  # 5 bytes left of 200
    writes = [frame(b"before!!", PONG), first, frame(b"12345678", PONG), frame(b"b", CONT)]
    ours = run_client(PongConnection, writes, max_size=200)
    theirs = run_client(_websockets_client(), writes, max_size=200)
    assert ours["pongs"] == theirs["pongs"] == [b"before!!"]
    assert ours["sent"] == theirs["sent"] == 1009


def test_pongs_do_not_go_through_websockets_parser(monkeypatch):
    """The point: pongs at a frame's start are read here. A read that ends inside a frame,
    and the reads after it up to one that ends at a frame's end, are websockets'; then the
    pongs are read here again. If a websockets release changes its parser's shape, this
    fails (the pongs would still come, only slower)."""
    from websockets.protocol import Protocol

    fed: list[bytes] = []
    real = Protocol.receive_data

    def receive_data(self: Any, data: bytes) -> Any:
        fed.append(data)
        return real(self, data)

    monkeypatch.setattr(Protocol, "receive_data", receive_data)
    pongs = [i.to_bytes(8, "big") for i in range(400)]
    result = frame(b'{"full": true}', TEXT)
    writes = [frame(p, PONG) + (result if i % 100 == 50 else b"") for i, p in enumerate(pongs)]
    writes[200:202] = [writes[200] + writes[201][:5], writes[201][5:]]  # one pong cut
    seen = run_client(PongConnection, [*writes, frame(b"\x03\xe8", CLOSE)])
    assert seen["pongs"] == pongs and seen["messages"] == ['{"full": true}'] * 4
    taken_by_websockets = sum(b"".join(fed).count(p) for p in pongs)
    assert taken_by_websockets == 1, taken_by_websockets  # the cut one


def _websockets_client() -> type:
    from websockets.asyncio.client import ClientConnection

    return ClientConnection

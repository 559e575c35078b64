"""The short way through Twilio's own media layout (``parse_text``) against the long way
(``parse_message`` of the decoded text): the same event or the same error, for Twilio's
messages and for thousands of random and hostile changes to them."""

from __future__ import annotations

import base64
import random

import pytest

from nsaudio.gateway import twilio
from nsaudio.gateway.errors import CallProtocolError
from nsaudio.gateway.twilio import MAX_PAYLOAD_BYTES, Media, TwilioStream, parse_text

from .support import twilio_media


def wire(track="inbound", chunk="101", ts="2088", payload=bytes(range(160)), seq="102",
         sid="MZ5174584e1127285e2b015e720b3d9e68") -> bytes:  # fmt: skip
    """A media message byte for byte as Twilio sends it (compact, keys in this order: as
    logged from live calls)."""
    p = payload if isinstance(payload, str) else base64.b64encode(payload).decode()
    return (
        f'{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"{track}",'
        f'"chunk":"{chunk}","timestamp":"{ts}","payload":"{p}"}},"streamSid":"{sid}"}}'
    ).encode()


def long_way(data: bytes):
    """What the long way says: the event, or the error's text."""
    try:
        return twilio.parse_message(data.decode())
    except UnicodeDecodeError:
        return "a text message that is not UTF-8"
    except CallProtocolError as err:
        return str(err)


def short_way(data: bytes):
    try:
        return parse_text(data)
    except CallProtocolError as err:
        return str(err)


def test_twilio_media_messages_take_the_short_way(monkeypatch):
    messages = [
        wire(),
        wire("outbound", "1", "0", b""),
        wire(chunk="0" * 15, ts="9" * 15, payload=bytes(MAX_PAYLOAD_BYTES)),
        wire(payload=b"\x00\x7f"),  # padding "=="
        wire(payload=b"\x00\x7f\x80"),
        wire(sid="MZ_a.b:c-d"),
        twilio_media("outbound", 7, b"\x01\x02").encode(),  # what the calls in the tests send
    ]
    expected = [long_way(m) for m in messages]
    assert all(type(e) is Media for e in expected)
    assert expected[2] == Media("inbound", 0, 10**15 - 1, bytes(MAX_PAYLOAD_BYTES))

    def refuse(text):
        raise AssertionError("the long way was taken")

    monkeypatch.setattr(twilio, "parse_message", refuse)
    assert [parse_text(m) for m in messages] == expected
    assert [type(x) for x in parse_text(messages[0])] == [str, int, int, bytes]


@pytest.mark.parametrize(
    "message",
    [
        wire(chunk="1" * 16),  # one digit over
        wire(ts="١٢"),  # digits, but not ASCII ones
        wire(track="inbound_track"),
        wire(payload="AAA"),
        wire(payload="AA=A"),
        wire(payload="AAAA\\"),  # an escaped quote would follow
        wire(payload="AA\\u0041"),
        wire(payload="A" * ((MAX_PAYLOAD_BYTES + 2) // 3 * 4 + 4)),
        wire(sid="MZ1\\"),
        wire(sid="MZ\x01"),
        wire(sid=""),
        wire(seq=""),
        wire() + b" ",
        wire().replace(b'"media","', b'"media" ,"'),
        wire().replace(b"inbound", b"inbound\xff"),
        wire(payload="\xe9AAA"),
    ],
)
def test_anything_else_gets_the_long_ways_answer(message):
    assert short_way(message) == long_way(message)


ALPHABET = [
    b'"', b"\\", b"{", b"}", b",", b":", b" ", b"0", b"9", b"A", b"z", b"+", b"/", b"=",
    b"\x00", b"\x1f", b"\xff", "é".encode(), "١".encode(), "²".encode(), b"\\u0022",
    b"inbound", b"outbound", b"_track", b"-", b".",
]  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        i = rng.randrange(len(data) + 1)
        op = rng.randrange(5)
        if op == 0:  # insert
            data = data[:i] + rng.choice(ALPHABET) + data[i:]
        elif op == 1:  # delete a few bytes
            data = data[:i] + data[i + rng.randint(1, 4) :]
        elif op == 2:  # replace one
            data = data[:i] + rng.choice(ALPHABET) + data[i + 1 :]
        elif op == 3:  # repeat a stretch (a long payload, a long number)
            j = min(len(data), i + rng.randint(1, 12))
            data = data[:j] + data[i:j] * rng.choice((2, 20, 5000)) + data[j:]
        else:  # cut
            data = data[:i]
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_and_hostile_messages_get_the_same_answer_both_ways(seed):
    rng = random.Random(seed)
    kinds: dict[str, int] = {}
    for _ in range(6000):
        n = rng.choice((0, 1, 2, 3, 159, 160, 161, 320, MAX_PAYLOAD_BYTES))
        message = wire(
            rng.choice(("inbound", "outbound")), str(rng.randrange(10**rng.randint(1, 15))),
            str(rng.randrange(10**6)), rng.randbytes(n), str(rng.randrange(10**6)),
            rng.choice(("MZ" + rng.randbytes(16).hex(), "MZ1", "a" * 128, "a" * 129)),
        )  # fmt: skip
        if rng.random() < 0.8:
            message = mutate(rng, message)
        answer = long_way(message)
        assert short_way(message) == answer, message[:200]
        kind = type(answer).__name__
        kinds[kind] = kinds.get(kind, 0) + 1
    # Both ways were tried often: events and refusals.
    assert kinds.get("Media", 0) > 1000 and kinds.get("str", 0) > 1000, kinds


def test_the_stream_checks_the_order_on_the_short_way_too():
    s = TwilioStream()
    with pytest.raises(CallProtocolError, match="media message before start"):
        s.feed_text(wire())
    s.feed_text(
        b'{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],'
        b'"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}'
    )
    assert s.feed_text(wire()) == Media("inbound", 101, 2088, bytes(range(160)))
    with pytest.raises(CallProtocolError, match="did not announce"):
        s.feed_text(wire("outbound"))
    with pytest.raises(CallProtocolError, match="not UTF-8"):
        s.feed_text(b'{"event":"mark","mark":{"name":"\xff"}}')
    s.feed_text(b'{"event":"stop"}')
    with pytest.raises(CallProtocolError, match="after stop"):
        s.feed_text(wire())

"""Twilio Media Streams messages: every event, and every way a message can be wrong."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from nsaudio.gateway.errors import CallProtocolError
from nsaudio.gateway.twilio import (
    MAX_MESSAGE_BYTES,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioStream,
    Unknown,
    parse_message,
    ulaw_to_float,
)
from nsaudio.sources.pcm import _g711_tables

START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
    "start": {
        "accountSid": "AC0000000000000000000000000000000a",
        "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
        "callSid": "CA1234567890abcdef1234567890abcdef",
        "tracks": ["inbound", "outbound"],
        "customParameters": {"agent": "42"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}


def media(track="inbound", chunk="1", ts="0", payload=b"\xff" * 160) -> str:
    p = payload if isinstance(payload, str) else base64.b64encode(payload).decode()
    return json.dumps(
        {"event": "media", "sequenceNumber": "2", "streamSid": "MZ1",
         "media": {"track": track, "chunk": chunk, "timestamp": ts, "payload": p}}
    )  # fmt: skip


def test_every_event_type():
    assert parse_message('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') == (
        Connected("Call", "1.0.0")
    )
    start = parse_message(json.dumps(START))
    assert start == Start(
        "MZ18ad3ab5a668481ce02b83e7395059f0", "CA1234567890abcdef1234567890abcdef",
        "AC0000000000000000000000000000000a", ("inbound", "outbound"), {"agent": "42"},
    )  # fmt: skip
    m = parse_message(media("outbound", "7", "140", b"\x00\x7f\x80"))
    assert m == Media("outbound", 7, 140, b"\x00\x7f\x80")
    assert parse_message(json.dumps({"event": "media", "media": {
        "track": "inbound", "chunk": 3, "timestamp": 40, "payload": ""}})) == Media("inbound", 3, 40, b"")  # fmt: skip
    assert parse_message('{"event": "mark", "mark": {"name": "greeting"}}') == Mark("greeting")
    assert parse_message(
        '{"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}'
    ) == Dtmf("inbound", "5")
    assert parse_message('{"event": "stop", "stop": {"callSid": "CA1"}}') == Stop()
    assert parse_message('{"event": "clear"}') == Unknown("clear")
    # What json.loads takes, with whitespace around the value too.
    assert parse_message(' \n{"event": "stop"}\r\n ') == Stop()


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("{not json", "not JSON"),
        ('{"event": "stop"} {"event": "stop"}', "not JSON"),  # two values
        ('{"event": "stop"}x', "not JSON"),
        ("[1, 2]", "JSON list"),
        ('{"event": 3}', "without an 'event'"),
        ("[" * 10_000 + "]" * 10_000, "nested too deeply|JSON"),
        (media(payload="not base64!"), "not valid base64"),
        (media(payload="AAA"), "not valid base64"),  # a length that is not a multiple of 4
        (media(payload="A" * 20_000), "payload over"),
        (media(track="sideways"), "unknown track"),
        (media(chunk="-1"), "'chunk' must be a whole number"),
        (media(ts="1e3"), "'timestamp' must be a whole number"),
        (media(ts=True), "'timestamp' must be a whole number"),
        ('{"event": "media"}', "without its 'media'"),
        ('{"event": "start", "start": {}}', "'tracks'"),
        ('{"event": "x' + "y" * 100 + '"}', "over 64"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(message, says):
    with pytest.raises(CallProtocolError, match=says):
        parse_message(message)


def test_oversized_and_binary_messages_are_refused():
    with pytest.raises(CallProtocolError, match="over 65536 bytes"):
        parse_message('{"event": "mark", "mark": {"name": "' + "x" * MAX_MESSAGE_BYTES + '"}}')
    with pytest.raises(CallProtocolError, match="binary"):
        parse_message(b'{"event": "stop"}')


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        (
            "mediaFormat",
            {"encoding": "audio/x-l16", "sampleRate": 8000, "channels": 1},
            "media format",
        ),
        (
            "mediaFormat",
            {"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 1},
            "media format",
        ),
        ("callSid", "../../etc/passwd", "not an id"),
        ("callSid", "", "1 to 128"),
        ("tracks", [], "'tracks'"),
        ("tracks", ["inbound", "outbound", "inbound"], "'tracks'"),
        ("customParameters", {"a": 1}, "customParameters"),
    ],
)
def test_a_bad_start_is_refused(field, value, says):
    msg = json.loads(json.dumps(START))
    msg["start"][field] = value
    with pytest.raises(CallProtocolError, match=says):
        parse_message(json.dumps(msg))


def test_the_stream_enforces_the_order():
    s = TwilioStream()
    s.feed('{"event": "connected"}')
    with pytest.raises(CallProtocolError, match="media message before start"):
        s.feed(media())
    one_track = json.loads(json.dumps(START))
    one_track["start"]["tracks"] = ["inbound"]
    s.feed(json.dumps(one_track))
    assert s.start is not None and s.start.tracks == ("inbound",)
    assert isinstance(s.feed(media()), Media)
    with pytest.raises(CallProtocolError, match="did not announce"):
        s.feed(media("outbound"))
    with pytest.raises(CallProtocolError, match="second start"):
        s.feed(json.dumps(START))
    s.feed('{"event": "stop"}')
    with pytest.raises(CallProtocolError, match="after stop"):
        s.feed(media())


def test_ulaw_decodes_with_the_g711_table():
    codes = bytes(range(256))
    x = ulaw_to_float(codes)
    assert x.dtype == np.float32 and x.shape == (256,)
    np.testing.assert_array_equal(x, _g711_tables()[0])
    # 0xff and 0x7f are the two zeros; 0x00 and 0x80 the extremes, +-32124.
    assert x[0xFF] == 0 and x[0x7F] == 0
    assert round(x[0x00] * 32768) == -32124 and round(x[0x80] * 32768) == 32124


def test_ulaw_to_int16_is_the_float_table_exactly():
    from nsaudio.gateway.twilio import ulaw_to_int16

    codes = bytes(range(256))
    np.testing.assert_array_equal(
        ulaw_to_int16(codes).astype(np.float32) / 32768, ulaw_to_float(codes)
    )

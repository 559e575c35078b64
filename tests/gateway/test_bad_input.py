"""Bad input ends only the call it came in: one log line, its verdict; other calls go on.

Every case runs beside a good call on the same gateway, whose every word must arrive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid

import pytest

from nsaudio.gateway.audiosocket import KIND_SLIN, KIND_UUID, encode

from .support import (
    audiosocket_call,
    audiosocket_frames,
    twilio_call,
    twilio_media,
    twilio_messages,
    twilio_start,
)

GOOD = "CA" + "9" * 32
BAD = "CA" + "b" * 32
CONNECTED = '{"event": "connected", "protocol": "Call", "version": "1.0.0"}'

TWILIO_CASES = {
    "malformed JSON": [CONNECTED, twilio_start(BAD), "{this is not json"],
    "media before start": [CONNECTED, twilio_media("inbound", 0, b"\xff" * 160)],
    "invalid base64": [
        CONNECTED,
        twilio_start(BAD),
        twilio_media("inbound", 0, b"\xff" * 160).replace('"payload":"', '"payload":"!!'),
    ],
    "payload of odd base64 length": [
        CONNECTED,
        twilio_start(BAD),
        json.dumps(
            {
                "event": "media",
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "/w="},
            }
        ),
    ],
    "oversized message": [
        CONNECTED,
        twilio_start(BAD),
        json.dumps({"event": "mark", "mark": {"name": "x" * 70_000}}),
    ],
    "a track not started": [
        CONNECTED,
        twilio_start(BAD),
        twilio_media("outbound", 0, b"\xff" * 160),
    ],
}


async def _beside_good(gw, call_audio, bad):
    good = twilio_messages(GOOD, {"inbound": call_audio.data[:, 0]})
    return await asyncio.gather(twilio_call(gw.twilio_url, good, pace=0.002), bad)


@pytest.mark.parametrize("case", list(TWILIO_CASES))
def test_a_bad_twilio_message_ends_only_its_call(gateway, call_audio, caplog, case):
    gw = gateway()
    with caplog.at_level(logging.INFO, logger="nsaudio.gateway"):
        codes = asyncio.run(
            _beside_good(gw, call_audio, twilio_call(gw.twilio_url, TWILIO_CASES[case]))
        )
        ends = gw.wait_ends(2 if case != "media before start" else 1)
    assert codes[1] in (1008, 1009), codes
    good = next(e for e in ends if e.call_id == GOOD)
    assert good.verdict == "complete" and gw.recorded.words(GOOD) == call_audio.words
    about_bad = [
        r for r in caplog.records if BAD in r.getMessage() or "before its start" in r.getMessage()
    ]
    assert len([r for r in about_bad if "ended" in r.getMessage()]) == 1, [
        r.getMessage() for r in about_bad
    ]
    if case != "media before start":
        bad = next(e for e in ends if e.call_id == BAD)
        assert bad.reason == "bad_input" and bad.detail


def test_an_unknown_event_is_skipped_with_one_line(gateway, call_audio, caplog):
    gw = gateway()
    msgs = twilio_messages(BAD, {"inbound": call_audio.data[:, 0]})
    msgs[5:5] = ['{"event": "clear"}', '{"event": "clear"}', '{"event": "newthing"}']
    with caplog.at_level(logging.WARNING, logger="nsaudio.gateway"):
        asyncio.run(twilio_call(gw.twilio_url, msgs))
        (end,) = gw.wait_ends(1)
    assert end.verdict == "complete" and gw.recorded.words(BAD) == call_audio.words
    assert len([r for r in caplog.records if "unknown" in r.getMessage()]) == 1


def test_a_twilio_client_that_vanishes_mid_call(gateway, call_audio):
    gw = gateway()
    msgs = twilio_messages(BAD, {"inbound": call_audio.data[:, 0]})[: 2 + 150]  # 3 s, no stop

    async def vanish():
        from websockets.asyncio.client import connect

        ws = await connect(gw.twilio_url)
        for m in msgs:
            await ws.send(m)
        ws.transport.abort()

    asyncio.run(_beside_good(gw, call_audio, vanish()))
    ends = gw.wait_ends(2)
    bad = next(e for e in ends if e.call_id == BAD)
    assert bad.reason == "closed" and bad.verdict == "complete"  # what it sent was transcribed
    assert gw.recorded.words(BAD) == [w for w in call_audio.words if int(w[1:]) < 30]
    assert next(e for e in ends if e.call_id == GOOD).verdict == "complete"


def test_silent_connections_are_closed_by_the_timeouts(gateway):
    gw = gateway(handshake_timeout=0.5, idle_timeout=0.8)

    async def silent():
        from websockets.asyncio.client import connect

        r, w = await asyncio.open_connection("127.0.0.1", gw.audiosocket_port)  # says nothing
        t0 = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(r.read(), 5) == b""
        as_closed = asyncio.get_running_loop().time() - t0
        ws = await connect(gw.twilio_url)  # upgrades, then says nothing
        await ws.send(CONNECTED)
        await asyncio.wait_for(ws.wait_closed(), 5)
        ws2 = await connect(gw.twilio_url)  # starts a call, then goes quiet
        await ws2.send(twilio_start(BAD))
        await asyncio.wait_for(ws2.wait_closed(), 5)
        w.close()
        return as_closed

    assert asyncio.run(silent()) < 2
    (end,) = gw.wait_ends(1)
    assert end.call_id == BAD and end.reason == "idle"


AUDIOSOCKET_CASES = {
    "a length past the data": lambda cid: [
        encode(KIND_UUID, cid.bytes),
        encode(KIND_SLIN, bytes(320))[:200],
    ],
    "audio before the UUID": lambda cid: [encode(KIND_SLIN, bytes(320))],
    "odd audio length": lambda cid: [encode(KIND_UUID, cid.bytes), encode(KIND_SLIN, bytes(321))],
    "a short UUID": lambda cid: [encode(KIND_UUID, cid.bytes[:8])],
}


@pytest.mark.parametrize("case", list(AUDIOSOCKET_CASES))
def test_bad_audiosocket_input_ends_only_its_call(gateway, call_audio, case):
    gw = gateway()
    good = uuid.uuid4()

    async def both():
        bad = AUDIOSOCKET_CASES[case](uuid.uuid4())

        async def send_bad():
            r, w = await asyncio.open_connection("127.0.0.1", gw.audiosocket_port)
            for f in bad:
                w.write(f)
            await w.drain()
            w.write_eof()  # the peer is done: what it sent is all there is
            await asyncio.wait_for(r.read(), 10)
            w.close()

        await asyncio.gather(
            audiosocket_call(
                gw.audiosocket_port, audiosocket_frames(good, call_audio.data[:, 0]), pace=0.001
            ),
            send_bad(),
        )

    asyncio.run(both())
    ok = gw.wait_call(str(good))
    ends = gw.recorded.ends
    assert ok.verdict == "complete" and gw.recorded.words(str(good)) == call_audio.words
    bad_ends = [e for e in ends if e.call_id != str(good)]
    for e in bad_ends:
        assert e.reason == "bad_input"
    assert gw.gateway.metrics.bad_messages.labels("audiosocket")._value.get() == 1


def test_peers_outside_allow_are_closed_at_once(gateway):
    import ipaddress

    from nsaudio.gateway.audiosocket_listener import peer_allowed

    nets = (ipaddress.ip_network("10.1.0.0/16"),)
    assert peer_allowed("10.1.2.3", nets) and not peer_allowed("10.2.0.1", nets)
    assert peer_allowed("::ffff:10.1.2.3", nets)
    assert not peer_allowed("127.0.0.1", nets)  # --allow replaces the loopback default
    assert peer_allowed("127.0.0.1", ()) and not peer_allowed("192.0.2.1", ())
    gw = gateway(allow=nets)
    with socket.create_connection(("127.0.0.1", gw.audiosocket_port), timeout=5) as s:
        try:
            s.sendall(encode(KIND_UUID, uuid.uuid4().bytes))
            assert s.recv(10) == b""  # closed before a byte was read
        except ConnectionResetError:
            pass  # aborted (a reset) before or while we sent
    assert gw.gateway.metrics.refused.labels("audiosocket", "not_allowed")._value.get() == 1


@pytest.mark.parametrize("protocol", ["twilio", "audiosocket"])
def test_a_failure_of_our_own_on_one_call_ends_it_saying_so(
    gateway, call_audio, caplog, monkeypatch, protocol
):
    # Our bug, not the caller's (a session's push raising, as one did when a call's first
    # audio reopened its session): that call ends with one line naming the failure and its
    # verdict, and the good call beside it keeps every word.
    from nsaudio.gateway.call import Call

    bad_id = BAD if protocol == "twilio" else str(uuid.uuid4())
    audio = Call.audio

    def failing_audio(self, track, block):
        if self.call_id == bad_id and block.start >= 8000:  # a second into the call
            raise RuntimeError("a session could not take audio")
        audio(self, track, block)

    monkeypatch.setattr(Call, "audio", failing_audio)
    gw = gateway()
    x = call_audio.data[:, 0]
    with caplog.at_level(logging.INFO, logger="nsaudio.gateway"):
        if protocol == "twilio":
            from websockets.exceptions import ConnectionClosed

            async def bad():  # closed while it still sends: the code it was given
                try:
                    return await twilio_call(
                        gw.twilio_url, twilio_messages(BAD, {"inbound": x}), pace=0.001
                    )
                except ConnectionClosed as err:
                    return err.rcvd.code if err.rcvd else None

            assert asyncio.run(_beside_good(gw, call_audio, bad()))[1] == 1011
            good_id = GOOD
        else:
            good_id = str(uuid.uuid4())

            async def both():
                port = gw.audiosocket_port
                frames = audiosocket_frames(uuid.UUID(bad_id), x)
                good = audiosocket_frames(uuid.UUID(good_id), x)
                bad_call = audiosocket_call(port, frames, pace=0.001)
                return await asyncio.gather(
                    audiosocket_call(port, good, pace=0.001), bad_call, return_exceptions=True
                )

            asyncio.run(both())
        ends = gw.wait_ends(2)
    ok = next(e for e in ends if e.call_id == good_id)
    assert ok.verdict == "complete" and gw.recorded.words(good_id) == call_audio.words
    failed = next(e for e in ends if e.call_id == bad_id)
    assert failed.reason == "internal_error", failed
    assert failed.detail == "internal error: RuntimeError: a session could not take audio"
    assert failed.tracks["caller"]["received_s"] == 1.0  # what came before it was taken
    lines = [r.getMessage() for r in caplog.records if bad_id in r.getMessage()]
    assert len([m for m in lines if "ended" in m]) == 1, lines
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.INFO)

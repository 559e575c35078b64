"""Whole calls through the gateway to a real service on loopback, both protocols."""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
import pytest

from ..faults.support import check_times
from .support import audiosocket_call, audiosocket_frames, twilio_call, twilio_messages


def test_a_twilio_call_with_both_tracks_keeps_every_word(gateway, call_audio, tmp_path):
    gw = gateway(out_dir=str(tmp_path))
    agent = np.zeros_like(call_audio.data[:, 0])
    agent[8000:] = call_audio.data[:-8000, 0]  # the agent's words, one second later
    msgs = twilio_messages("CA" + "1" * 32, {"inbound": call_audio.data[:, 0], "outbound": agent})
    assert asyncio.run(twilio_call(gw.twilio_url, msgs)) == 1000
    (end,) = gw.wait_ends(1)
    assert end.verdict == "complete", end
    assert end.reason == "stop" and set(end.tracks) == {"caller", "agent"}
    assert gw.recorded.words("CA" + "1" * 32, "caller") == call_audio.words
    # The agent's track holds the same tones one second later: the same words, their
    # times one second on (the last second of them fell past the end of the call).
    agent_words = gw.recorded.words("CA" + "1" * 32, "agent")
    assert agent_words == [w for w in call_audio.words if int(w[1:]) < 50]
    lines = [
        json.loads(x) for x in (tmp_path / ("CA" + "1" * 32 + ".jsonl")).read_text().splitlines()
    ]
    assert {x["track"] for x in lines} == {"caller", "agent"}
    caller = [x for x in lines if x["track"] == "caller"]
    assert " ".join(x["text"] for x in caller).split() == call_audio.words
    check_times(caller)
    first_agent = next(x for x in lines if x["track"] == "agent")
    assert first_agent["start_time"] == 1.0
    assert all(x["call_id"] == "CA" + "1" * 32 and x["full"] for x in lines)


@pytest.mark.parametrize("cuts", ["whole messages", "random cuts"])
def test_an_audiosocket_call_keeps_every_word(gateway, call_audio, tmp_path, cuts):
    from nsaudio.gateway.audiosocket import KIND_SLIN, KIND_UUID, encode

    gw = gateway(out_dir=str(tmp_path))
    cid = uuid.uuid4()
    frames = audiosocket_frames(cid, call_audio.data[:, 0])
    if cuts == "random cuts":  # reads that end inside messages; after the hangup, more
        wire = b"".join(frames)  # bytes in the same read and in a read of their own
        at = np.sort(np.random.default_rng(7).choice(len(wire), 400, replace=False))
        frames = [wire[i:j] for i, j in zip([0, *at], [*at, len(wire)], strict=True)]
        frames[-1] += encode(KIND_SLIN, bytes(320))
        frames.append(encode(KIND_UUID, cid.bytes) + encode(KIND_SLIN, bytes(320))[:9])
    asyncio.run(
        audiosocket_call(gw.audiosocket_port, frames, pace=0.0005 if cuts == "random cuts" else 0)
    )
    (end,) = gw.wait_ends(1)
    assert end.verdict == "complete" and end.reason == "hangup", end  # what followed: unread
    assert gw.gateway.metrics.bad_messages.labels("audiosocket")._value.get() == 0
    assert gw.recorded.words(str(cid)) == call_audio.words
    lines = [json.loads(x) for x in (tmp_path / f"{cid}.jsonl").read_text().splitlines()]
    check_times(lines)


def test_an_audiosocket_call_at_16_khz_reopens_its_session_at_that_rate(gateway, tmp_path):
    # The session opens at the UUID for 0x10's 8 kHz; the first audio is 0x12 (16 kHz,
    # Asterisk 20.17 and later): the stream is opened again at 16 kHz before anything was
    # sent, and every word arrives at its time.
    from nsaudio.gateway.audiosocket import KIND_HANGUP, KIND_UUID, encode

    from ..faults.slots import make_speech
    from .support import slin_encode

    audio = make_speech(4, rate=16000, channels=1)
    gw = gateway(out_dir=str(tmp_path))
    cid = uuid.uuid4()
    pcm = slin_encode(audio.data[:, 0])
    frames = [encode(KIND_UUID, cid.bytes)]
    frames += [encode(0x12, pcm[i : i + 640]) for i in range(0, len(pcm), 640)]
    frames.append(encode(KIND_HANGUP))
    asyncio.run(audiosocket_call(gw.audiosocket_port, frames))
    (end,) = gw.wait_ends(1)
    assert end.verdict == "complete", end
    assert end.tracks["caller"]["received_s"] == 4.0
    assert gw.recorded.words(str(cid)) == audio.words
    check_times([json.loads(x) for x in (tmp_path / f"{cid}.jsonl").read_text().splitlines()])
    assert sum(1 for s in gw.service.sessions if len(bytes(s.audio))) == 1


def test_a_16_khz_call_whose_8_khz_session_is_already_open_reopens_it(gateway, tmp_path):
    # As above, but the first audio comes only once the 8 kHz session is open and the track
    # sends to it. The track must forget that it was sending: the new stream is not entered
    # yet, and handing it the packet raised out of the listener, which closed the call.
    from nsaudio.gateway.audiosocket import KIND_HANGUP, KIND_UUID, encode

    from ..faults.slots import make_speech
    from .support import slin_encode

    audio = make_speech(4, rate=16000, channels=1)
    gw = gateway(out_dir=str(tmp_path))
    cid = uuid.uuid4()
    pcm = slin_encode(audio.data[:, 0])

    async def call() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.audiosocket_port)
        writer.write(encode(KIND_UUID, cid.bytes))
        await writer.drain()
        for _ in range(500):  # the 8 kHz session opens at the UUID
            if gw.service.sessions:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # and the track is sending to it
        for i in range(0, len(pcm), 640):
            writer.write(encode(0x12, pcm[i : i + 640]))
        writer.write(encode(KIND_HANGUP))
        await writer.drain()
        got = await asyncio.wait_for(reader.read(), 60)
        writer.close()
        return got

    assert asyncio.run(call()) == b""
    (end,) = gw.wait_ends(1)
    assert end.verdict == "complete" and end.reason == "hangup", end
    assert end.tracks["caller"]["received_s"] == 4.0
    assert gw.recorded.words(str(cid)) == audio.words
    check_times([json.loads(x) for x in (tmp_path / f"{cid}.jsonl").read_text().splitlines()])
    assert len(gw.service.sessions) == 2
    assert sum(1 for s in gw.service.sessions if len(bytes(s.audio))) == 1


def test_packets_that_never_come_are_gaps_and_every_later_word_keeps_its_call_time(
    gateway, call_audio, tmp_path
):
    # The platform never delivers the packets of slot 3 and of slots 20-22 (the media
    # timestamps of the rest say where they belong): every other word arrives at its call
    # time; had the gaps been closed up, every later word would be 100 or 400 ms early.
    gw = gateway(out_dir=str(tmp_path))
    sid = "CA" + "7" * 32
    missing = {3, 20, 21, 22}
    msgs = twilio_messages(sid, {"inbound": call_audio.data[:, 0]})

    def slot(message: str) -> int | None:  # the 100 ms slot a media message is in
        chunk = json.loads(message).get("media", {}).get("chunk")
        return None if chunk is None else (int(chunk) - 1) // 5

    msgs = [m for m in msgs if slot(m) not in missing]
    assert asyncio.run(twilio_call(gw.twilio_url, msgs)) == 1000
    (end,) = gw.wait_ends(1)
    assert end.tracks["caller"]["missing_s"] == 0.4, end
    assert end.tracks["caller"]["received_s"] == 5.6, end
    expected = [w for w in call_audio.words if int(w[1:]) not in missing]
    assert gw.recorded.words(sid) == expected
    lines = [json.loads(x) for x in (tmp_path / f"{sid}.jsonl").read_text().splitlines()]
    check_times(lines, gaps=True)


@pytest.mark.server
def test_a_call_gated_by_silero_sends_its_sentences_and_keeps_every_word(tmp_path):
    # --gate-vad silero: each track's gate decides with a Silero detector of its own. The
    # call's 26 s (three sentences, loud keyboard clicks in the pauses, 16 kHz AudioSocket)
    # reach the local server as the sentences with their pre-roll and tail (the energy
    # detector would send the clicks too: 80 % of the audio), and every word comes back.
    from nsaudio.gateway import GatewayConfig, ServiceTarget, TrackSettings
    from nsaudio.gateway.audiosocket import KIND_HANGUP, KIND_UUID, encode
    from nsaudio.neuralspace.protocol import StreamParams
    from nsaudio.server.app import LocalServer

    from ..recordings import three_utterances_with
    from .support import GatewayThread, slin_encode

    try:
        rec = three_utterances_with(tmp_path, "clicks", -6)
    except FileNotFoundError as err:  # no flite or sox
        pytest.skip(str(err))
    track = TrackSettings(params=StreamParams(format="pcm_16k"), gate=True, gate_vad="silero",
                          drain_timeout=30, ping_timeout=60)  # fmt: skip
    cid = uuid.uuid4()
    pcm = slin_encode(rec.samples.astype(np.float64) / 32768)
    frames = [encode(KIND_UUID, cid.bytes)]
    frames += [encode(0x12, pcm[i : i + 640]) for i in range(0, len(pcm), 640)]
    frames.append(encode(KIND_HANGUP))
    with LocalServer() as server:
        config = GatewayConfig(service=ServiceTarget(server.base_url, "any-key"), track=track,
                               audiosocket=("127.0.0.1", 0))  # fmt: skip
        with GatewayThread(config) as gw:
            asyncio.run(audiosocket_call(gw.audiosocket_port, frames, pace=0.004))
            (end,) = gw.wait_ends(1, timeout=90)
            words = gw.recorded.words(str(cid))
    assert end.verdict == "complete", end
    caller = end.tracks["caller"]
    assert caller["received_s"] == 26.0
    assert caller["sent_s"] < 0.6 * caller["received_s"], caller  # the pauses were skipped
    assert words == " ".join(rec.texts).split()

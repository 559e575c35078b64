"""Whole calls through the gateway to a real service on loopback, both protocols."""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np

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


def test_an_audiosocket_call_keeps_every_word(gateway, call_audio, tmp_path):
    gw = gateway(out_dir=str(tmp_path))
    cid = uuid.uuid4()
    asyncio.run(
        audiosocket_call(gw.audiosocket_port, audiosocket_frames(cid, call_audio.data[:, 0]))
    )
    (end,) = gw.wait_ends(1)
    assert end.verdict == "complete" and end.reason == "hangup", end
    assert gw.recorded.words(str(cid)) == call_audio.words
    lines = [json.loads(x) for x in (tmp_path / f"{cid}.jsonl").read_text().splitlines()]
    check_times(lines)

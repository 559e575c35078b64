"""Replay bookkeeping: what a new session must hear again, and where its times belong."""

from __future__ import annotations

import pytest

from nsaudio.blocks import Frame
from nsaudio.sinks.replay import ReplayBuffer, Timeline


def frame(start: int, n: int = 100) -> Frame:
    return Frame(bytes(range(256))[:2] * n, start, 16000, 0)


def test_finalised_frames_are_forgotten_and_the_rest_cut_at_the_final_position():
    buf = ReplayBuffer(10_000)
    for start in range(0, 500, 100):
        buf.add(frame(start))
    buf.finalised(250)  # frames ending at 100 and 200 are done; 200..300 straddles
    assert [f.start for f in buf.frames] == [200, 300, 400]
    start, pieces = buf.unfinalised(250, next_pos=500)
    assert start == 250
    assert [(pos, len(pcm) // 2) for pos, pcm in pieces] == [(250, 50), (300, 100), (400, 100)]


def test_nothing_unfinalised_starts_where_sending_stopped():
    buf = ReplayBuffer(1000)
    buf.add(frame(0))
    buf.finalised(100)
    assert buf.unfinalised(100, next_pos=100) == (100, [])


def test_the_limit_drops_oldest_and_counts():
    buf = ReplayBuffer(250)
    for start in range(0, 500, 100):
        buf.add(frame(start))
    assert [f.start for f in buf.frames] == [300, 400] and buf.dropped_samples == 300
    with pytest.raises(ValueError):
        ReplayBuffer(0)


def test_timeline_maps_session_times_across_drops():
    t = Timeline(start=8000)  # the session began at stream sample 8000
    t.sending(8000, 1600)
    t.sending(9600, 1600)
    t.sending(16000, 1600)  # frames 11200..16000 were dropped before sending
    assert t.to_stream(0.0, 16000, end=False) == 0.5
    assert t.to_stream(0.1, 16000, end=False) == 0.6
    assert t.to_stream(0.2, 16000, end=True) == 0.7  # the end of the run before the jump
    assert t.to_stream(0.2, 16000, end=False) == 1.0  # the start of the run after it
    assert t.to_stream(0.25, 16000, end=True) == 1.05

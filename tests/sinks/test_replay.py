"""Replay bookkeeping: what a new session must hear again, and where its times belong."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(0, 5000),
    runs=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 2000)), min_size=1, max_size=12),
    frame=st.sampled_from([1, 17, 160, 320, 1600]),
    rate=st.sampled_from([8000, 16000]),
    data=st.data(),
)
def test_timeline_maps_every_session_sample_back_exactly_across_random_gaps(
    first, runs, frame, rate, data
):
    """Frames sent in runs separated by gaps (what the gate skipped, what a ring dropped):
    every session sample maps to the stream sample it was, as a start and as an end."""
    t = Timeline(start=first)
    stream: list[int] = []  # stream position of each session sample
    pos = first
    for gap, length in runs:
        pos += gap
        for at in range(pos, pos + length, frame):
            n = min(frame, pos + length - at)
            t.sending(at, n)
            stream.extend(range(at, at + n))
        pos += length
    assert t.sent == len(stream)
    jumps = {i for i in range(1, len(stream)) if stream[i] != stream[i - 1] + 1}
    for s in data.draw(st.lists(st.integers(0, len(stream)), min_size=1, max_size=40)):
        seconds = s / rate
        if s < len(stream):
            assert t.to_stream(seconds, rate, end=False) == stream[s] / rate
        if s > 0:
            # An end at a jump is the end of the run before it, never the start of the next.
            want = stream[s - 1] + 1 if (s in jumps or s == len(stream)) else stream[s]
            assert t.to_stream(seconds, rate, end=True) == want / rate

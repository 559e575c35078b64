"""Several channels' results merged in time order (``sinks/merge.py``): pure, so every case
is a script of frames and results, and a simulated call checks the order in general."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.neuralspace.protocol import TranscriptResult
from nsaudio.sinks.merge import ResultMerger

RATE = 100  # one sample per 10 ms keeps the scripts readable
FRAME = 10  # 100 ms frames


def full(start, end, text="x"):
    return TranscriptResult(True, text, start, end)


def frames(merger, channel, start_s, end_s, speech):
    """Frames of ``channel`` from ``start_s`` to ``end_s`` labelled ``speech``; what they
    released."""
    out = []
    for pos in range(round(start_s * RATE), round(end_s * RATE), FRAME):
        out += merger.frame(channel, pos, pos + FRAME, speech)
    return out


def texts(results):
    return [(r.channel, r.text) for r in results]


def test_a_later_start_finalised_first_waits_for_the_earlier_one():
    """The agent speaks 6-9 s; the customer 6.5-8 s, finalised first: it waits."""
    m = ResultMerger(["agent", "customer"], RATE)
    assert frames(m, 0, 0, 6, False) + frames(m, 1, 0, 6, False) == []
    frames(m, 0, 6, 9, True)
    frames(m, 1, 6, 6.5, False)
    frames(m, 1, 6.5, 8, True)
    frames(m, 1, 8, 9, False)
    assert m.result(1, full(6.4, 8.1, "short")) == []  # the agent's speech is not covered
    assert m.held == 1
    frames(m, 0, 9, 9.6, False)
    frames(m, 1, 9, 9.6, False)
    got = m.result(0, full(5.9, 9.1, "long"))
    assert texts(got) == [("agent", "long"), ("customer", "short")]
    assert m.held == 0


def test_silence_on_the_other_channel_holds_nothing_back_past_the_margin():
    m = ResultMerger(["a", "b"], RATE, margin=1.0)
    frames(m, 0, 0, 3, True)
    frames(m, 1, 0, 3, False)
    assert m.result(0, full(2.4, 2.9)) == []  # b has written 3 s: before 2.0 s is certain
    assert frames(m, 1, 3, 3.4, False) == []  # b at 3.4 s: before 2.4 s is certain
    assert texts(frames(m, 1, 3.4, 3.5, False)) == [("a", "x")]  # b at 3.5: 2.4 is too


def test_partials_are_never_held_and_say_their_channel():
    m = ResultMerger(["a", "b"], RATE)
    frames(m, 1, 0, 5, True)  # b speaks, uncovered: every full result of a waits
    got = m.result(0, TranscriptResult(False, "part", 1.0, 2.0))
    assert texts(got) == [("a", "part")] and not got[0].full
    assert m.result(0, full(1.0, 2.0)) == [] and m.held == 1


def test_speech_no_result_covers_holds_the_others_only_for_a_while():
    m = ResultMerger(["a", "b"], RATE, hold=4.0)
    frames(m, 1, 0, 1, True)  # a cough the service does not transcribe
    frames(m, 0, 0, 2, True)
    assert m.result(0, full(0.5, 2.0)) == []
    assert frames(m, 1, 1, 4.9, False) == []  # 3.9 s past its speech
    assert texts(frames(m, 1, 4.9, 5.0, False)) == [("a", "x")]  # 4 s: no longer waited for


def test_an_ended_channel_holds_nobody_and_flush_gives_the_rest_in_order():
    m = ResultMerger(["a", "b", "c"], RATE)
    frames(m, 1, 0, 10, True)
    frames(m, 2, 0, 10, True)
    assert m.result(0, full(3, 4, "a3")) == []  # b and c speak, uncovered
    assert m.result(2, full(1, 2, "c1")) == []  # b speaks, uncovered
    assert texts(m.end(1)) == [("c", "c1")]  # a's next result starts at 4 s or later
    assert texts(m.result(2, full(2, 9.5, "c2"))) == [("c", "c2"), ("a", "a3")]
    # Later than what went out (a noise the gate never heard): late, never lost.
    assert texts(m.result(1, full(0.5, 1, "late"))) == [("b", "late")]
    assert m.result(2, full(9.6, 9.9, "c3")) == []  # a may still speak from 4 s on
    assert texts(m.flush()) == [("c", "c3")] and m.held == 0


def test_at_most_capacity_results_wait():
    m = ResultMerger(["a", "b"], RATE, capacity=3)
    frames(m, 1, 0, 20, True)
    out = []
    for i in range(5):
        out += m.result(0, full(i, i + 0.5, f"r{i}"))
    assert texts(out) == [("a", "r0"), ("a", "r1")] and m.held == 3


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ResultMerger([], RATE)
    with pytest.raises(ValueError):
        ResultMerger(["a"], 0)


# -- a simulated call ---------------------------------------------------------------------

utterance = st.tuples(st.integers(1, 40), st.integers(3, 60))  # gap before, length (frames)


@settings(max_examples=200, deadline=None)
@given(
    talk=st.lists(st.lists(utterance, max_size=5), min_size=2, max_size=3),
    lags=st.lists(st.integers(0, 20), min_size=3, max_size=3),
    delays=st.lists(st.integers(2, 25), min_size=20, max_size=20),
    early=st.integers(0, 5),
)
def test_a_simulated_call_comes_out_in_start_order_and_whole(talk, lags, delays, early):
    """Each channel: utterances (the gate's speech with a 0.3 s hangover), each finalised
    ``delay`` frames after its end (never before the one before it) as a full result starting
    up to ``early`` frames (less than the margin) before the gate's onset. Channels write their frames ``lag`` frames
    apart; results come when their channel's writing has passed their end plus the delay."""
    n = len(talk)
    m = ResultMerger([f"ch{i}" for i in range(n)], RATE, margin=1.0, slack=1.0, hold=30.0)
    speech, results = [], []
    d = iter(delays * 10)
    for ch, utterances in enumerate(talk):
        pos, spans, due = 0, [], 0
        for gap, length in utterances:
            pos += gap
            spans.append((pos, pos + length + 3))  # hangover: 3 frames
            start = max(0, pos - early) * FRAME / RATE
            end = (pos + length) * FRAME / RATE
            due = max(due, pos + length + 3 + next(d))  # a session's results come in order
            results.append((due, ch, full(start, end, f"{ch}@{pos}")))
            pos += length + 3
        speech.append(spans)
    total = max([0] + [due for due, _, _ in results]) + 30
    out = []
    for t in range(total + max(lags)):  # frame clock
        for ch in range(n):
            f = t - lags[ch]
            if 0 <= f < total:
                label = any(a <= f < b for a, b in speech[ch])
                out += m.frame(ch, f * FRAME, (f + 1) * FRAME, label)
                out += [x for due, c, r in results if c == ch and due == f for x in m.result(c, r)]
    for ch in range(n):
        out += m.end(ch)
    out += m.flush()
    assert sorted(r.text for r in out) == sorted(r.text for _, _, r in results)
    starts = [r.start_time for r in out]
    assert starts == sorted(starts), texts(out)
    assert all(math.isfinite(m.watermark(ch)) is False for ch in range(n))

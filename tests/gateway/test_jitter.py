"""The jitter buffer on a fake clock: order restored, gaps left as gaps, nothing shifted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.gateway.errors import CallProtocolError
from nsaudio.gateway.jitter import JitterBuffer

RATE = 8000
PKT = 160  # 20 ms
MS = 1_000_000


def packet(k: int) -> np.ndarray:
    """Packet k's samples: each holds its own absolute sample index, so placement shows."""
    return (np.arange(k * PKT, (k + 1) * PKT) % 30000).astype(np.float32)


def placed(blocks) -> dict[int, float]:
    out = {}
    for b in blocks:
        for i, v in enumerate(b.data):
            assert b.start + i not in out, "a position written twice"
            out[b.start + i] = float(v)
    return out


def test_in_order_packets_go_straight_through():
    jb = JitterBuffer(RATE)
    for k in range(5):
        blocks = jb.push(k * PKT, packet(k), k * 20 * MS)
        assert [(b.start, len(b)) for b in blocks] == [(k * PKT, PKT)]
        assert blocks[0].t_ns == k * 20 * MS  # the packet's arrival, for latency
    assert jb.stats.gaps == 0 and jb.held == 0


def test_a_swapped_pair_is_put_back_in_order():
    jb = JitterBuffer(RATE)
    assert len(jb.push(0, packet(0), 0)) == 1
    assert jb.push(2 * PKT, packet(2), 40 * MS) == []  # waits for packet 1
    out = jb.push(PKT, packet(1), 45 * MS)
    assert [b.start for b in out] == [PKT, 2 * PKT]
    assert jb.stats.reordered == 1 and jb.stats.gaps == 0


def test_a_lost_packet_becomes_a_gap_after_the_window():
    jb = JitterBuffer(RATE, window_ms=60)
    jb.push(0, packet(0), 0)
    assert jb.push(2 * PKT, packet(2), 40 * MS) == []
    assert jb.tick(99 * MS) == []  # 59 ms waited
    out = jb.tick(100 * MS)
    assert [(b.start, len(b)) for b in out] == [(2 * PKT, PKT)]  # at its own place: a jump
    assert jb.stats.gaps == 1 and jb.stats.gap_samples == PKT
    # The lost packet turning up now is too late: dropped, not shifted.
    assert jb.push(PKT, packet(1), 120 * MS) == []
    assert jb.stats.late_packets == 1


def test_audio_held_behind_a_gap_is_bounded_by_the_window():
    jb = JitterBuffer(RATE, window_ms=60)
    jb.push(0, packet(0), 0)
    out = []
    for k in (2, 3, 4):  # all arrive at once: no time passes
        out += jb.push(k * PKT, packet(k), 10 * MS)
    assert [b.start for b in out] == [2 * PKT, 3 * PKT, 4 * PKT]
    assert jb.held == 0 and jb.stats.gap_samples == PKT


def test_whole_millisecond_stamps_within_the_tolerance_continue_the_stream():
    jb = JitterBuffer(RATE, tolerance_ms=2)
    jb.push(0, packet(0), 0)
    (b,) = jb.push(PKT + 8, packet(1), 20 * MS)  # 1 ms late by its stamp
    assert b.start == PKT and jb.stats.gaps == 0
    (b,) = jb.push(2 * PKT - 8, packet(2), 40 * MS)  # 1 ms early
    assert b.start == 2 * PKT
    out = jb.push(4 * PKT, packet(4), 60 * MS) + jb.tick(200 * MS)
    assert out[0].start == 4 * PKT  # a real gap is kept


def test_a_duplicate_is_dropped_and_an_overlap_trimmed():
    jb = JitterBuffer(RATE)
    jb.push(0, packet(0), 0)
    jb.push(PKT, packet(1), 0)
    assert jb.push(PKT, packet(1), 0) == []
    (b,) = jb.push(PKT + 80, np.concatenate([packet(1)[80:], packet(2)[:80]]), 0)
    assert b.start == 2 * PKT and len(b) == 80
    assert b.data[0] == packet(2)[0]


def test_flush_lets_everything_out():
    jb = JitterBuffer(RATE)
    jb.push(0, packet(0), 0)
    jb.push(3 * PKT, packet(3), 0)
    assert [b.start for b in jb.flush()] == [3 * PKT]


def test_a_stamp_far_ahead_is_a_broken_stream():
    jb = JitterBuffer(RATE)
    jb.push(0, packet(0), 0)
    with pytest.raises(CallProtocolError, match="past the audio"):
        jb.push(61 * RATE, packet(0), 0)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(5, 60),
    lost=st.sets(st.integers(0, 59), max_size=10),
    swaps=st.lists(st.integers(0, 58), max_size=10),
)
def test_any_loss_and_small_reordering_places_every_sample_at_its_stamp(n, lost, swaps):
    """Reordering within the window: every packet that came is placed exactly at its stamp,
    nothing is invented, and each lost packet is a gap of exactly its length."""
    order = [k for k in range(n) if k not in lost]
    for i in swaps:  # adjacent swaps: each packet at most a few places off
        if i + 1 < len(order):
            order[i], order[i + 1] = order[i + 1], order[i]
    jb = JitterBuffer(RATE, window_ms=60)
    blocks, t = [], 0
    for k in order:
        t += 20 * MS
        blocks += jb.push(k * PKT, packet(k), t)
    blocks += jb.flush()
    got = placed(blocks)
    expected = {}
    for k in range(n):
        if k not in lost:
            expected.update({k * PKT + i: float(v) for i, v in enumerate(packet(k))})
    # Reordering may come too late for the window only when packets are out by more than it;
    # whatever was placed is exactly right, and only late packets are missing.
    for pos, v in got.items():
        assert expected[pos] == v
    missing = set(expected) - set(got)
    assert len(missing) == jb.stats.late_samples
    starts = [b.start for b in blocks]
    assert starts == sorted(starts)


class _HeapOnly(JitterBuffer):
    """The buffer without its in-order shortcut: every packet through the heap."""

    def push(self, position, data, now_ns):
        self.stats.packets += 1
        return self._queue(position, data, now_ns) if len(data) else []


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(-3, 5),  # packets ahead of the last one's place (0: in order)
            st.sampled_from([0, 0, 0, -1, 1, -15, -16, -17, 15, 16, 17]),  # off its place:
            # whole-millisecond stamps (within the 16-sample tolerance), and just past it
            st.sampled_from([0, 1, 80, 160, 320]),  # samples in the packet
            st.integers(0, 90),  # ms since the previous packet
        ),
        max_size=80,
    )
)
def test_the_in_order_shortcut_gives_what_the_heap_gives(steps):
    """Every kind of packet (in order, a sample or two off its place, duplicate, late,
    ahead, reordered, empty, after a long wait): the shortcut's blocks, times and counts are
    the heap's, step by step."""
    fast, heap = JitterBuffer(RATE, window_ms=60), _HeapOnly(RATE, window_ms=60)
    place, t = 0, 0
    for ahead, off, size, wait in steps:
        t += wait * MS
        position = max(0, place + ahead * PKT + off)
        data = np.arange(position, position + size, dtype=np.int16)
        got = [(b.start, b.data.tolist(), b.t_ns) for b in fast.push(position, data, t)]
        want = [(b.start, b.data.tolist(), b.t_ns) for b in heap.push(position, data, t)]
        assert got == want
        got = [(b.start, b.data.tolist(), b.t_ns) for b in fast.tick(t)]
        assert got == [(b.start, b.data.tolist(), b.t_ns) for b in heap.tick(t)]
        assert (fast.stats, fast.next, fast.held) == (heap.stats, heap.next, heap.held)
        assert fast._newest == heap._newest  # the furthest stamp: what "outgrown" is from
        place = max(place, position + size)
    assert [(b.start, len(b)) for b in fast.flush()] == [(b.start, len(b)) for b in heap.flush()]

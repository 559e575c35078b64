"""Absolute stream positions through the stages, across gaps (audio a live ring dropped).

A gap is a block whose ``start`` is not where the previous block ended. Through the
resampler and the framer, the output must be what each contiguous run gives on its own,
placed exactly where that run sits in the stream: positions are integers, mapped
``start * out_rate // in_rate``, never renumbered.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Block, Frame
from nsaudio.stages import Chain, EnergyGate, Framer, Resampler, to_int16

RATES = [(44100, 16000), (48000, 8000), (8000, 16000), (22050, 8000), (16000, 16000)]


def signal(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)


def cut(
    x: np.ndarray, sizes: list[int], gaps: list[int]
) -> tuple[list[Block], list[tuple[int, int]]]:
    """Blocks of ``x`` of the given sizes, ``gaps[i]`` samples skipped before block i.

    Returns the blocks and the contiguous runs as (start, end) stream positions.
    """
    blocks, runs, pos = [], [], 0
    for i, (n, gap) in enumerate(zip(sizes, gaps, strict=True)):
        if gap or not runs:
            pos += gap
            runs.append((pos, pos))
        blocks.append(Block(x[pos : pos + n], pos, 0, t_ns=i))
        pos += n
        runs[-1] = (runs[-1][0], pos)
    return blocks, runs


def placed(items: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of every sample of (start, data) pieces."""
    if not items:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    pos = np.concatenate([np.arange(s, s + len(d), dtype=np.int64) for s, d in items])
    return pos, np.concatenate([d for _, d in items])


@settings(max_examples=60, deadline=None)
@given(
    rates=st.sampled_from(RATES),
    blocks=st.lists(
        st.tuples(
            st.sampled_from([1, 17, 509, 4410, 44100]),
            st.one_of(st.just(0), st.just(0), st.integers(min_value=1, max_value=30000)),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_resampler_with_gaps_equals_one_shot_of_each_run(rates, blocks):
    in_rate, out_rate = rates
    sizes = [n for n, _ in blocks]
    gaps = [g for _, g in blocks]
    x = signal(sum(sizes) + sum(gaps))
    pieces, runs = cut(x, sizes, gaps)
    r = Resampler(in_rate, out_rate)
    got = []
    for b in pieces:
        b.rate = in_rate
        got += r.push(b)
    got += r.flush()
    assert all(b.rate == out_rate for b in got)
    starts = [b.start for b in got]
    assert starts == sorted(starts)
    expected = []
    for i, (s, e) in enumerate(runs):
        y = (
            soxr.resample(x[s:e], in_rate, out_rate, quality="HQ")
            if in_rate != out_rate
            else x[s:e]
        )
        start = s * out_rate // in_rate
        if i + 1 < len(runs):  # a rounding overlap with the next run is cut off
            y = y[: runs[i + 1][0] * out_rate // in_rate - start]
        expected.append((start, y))
    got_pos, got_val = placed([(b.start, b.data) for b in got])
    exp_pos, exp_val = placed(expected)
    np.testing.assert_array_equal(got_pos, exp_pos)
    np.testing.assert_array_equal(got_val, exp_val)


@settings(max_examples=60, deadline=None)
@given(
    frame=st.sampled_from([16, 80, 160, 320, 1600]),
    blocks=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2000),
            st.one_of(st.just(0), st.integers(min_value=1, max_value=5000)),
        ),
        max_size=15,
    ),
)
def test_framer_with_gaps_frames_each_run_from_its_own_start(frame, blocks):
    sizes = [n for n, _ in blocks]
    gaps = [g for _, g in blocks]
    x = signal(sum(sizes) + sum(gaps))
    pieces, runs = cut(x, sizes, gaps)
    framer = Framer(16000, frame / 16)  # frame samples at 16 kHz
    assert framer.frame_samples == frame
    got: list[Frame] = []
    for b in pieces:
        got += framer.push(b)
    got += framer.flush()
    expected = []
    for s, e in runs:
        pcm = to_int16(x[s:e]).tobytes()
        expected += [
            (p, pcm[2 * (p - s) : 2 * min(e, p + frame) - 2 * s]) for p in range(s, e, frame)
        ]
    assert [(f.start, f.pcm) for f in got] == expected


def test_the_issue_example_frames_keep_their_positions():
    # Blocks at 0, 1600, 4800, 6400 (1600..4800 dropped) used to become frames at
    # 0, 1600, 3200, 4800: everything after the drop came out 0.1 s early.
    x = signal(8000)
    stages = Chain([Resampler(16000, 16000), Framer(16000, 100), EnergyGate()])
    frames = []
    for start in (0, 1600, 4800, 6400):
        frames += stages.push(Block(x[start : start + 1600], start, 16000, start))
    frames += stages.flush()
    assert [f.start for f in frames] == [0, 1600, 4800, 6400]
    assert all(f.pcm == to_int16(x[f.start : f.end]).tobytes() for f in frames)


@pytest.mark.parametrize("block", [1, 17, 509, 4800, 44100])
def test_a_resampled_stream_with_a_drop_keeps_absolute_frame_positions(block):
    """48 kHz in 10 ms blocks, 0.5 s dropped: frames after it start 0.5 s later, exactly."""
    x = signal(48000 * 3)
    drop_from, drop_to = 48000, 72000  # 1.0 s to 1.5 s never reached the stages
    stages = Chain([Resampler(48000, 16000, quality="LQ"), Framer(16000, 20), EnergyGate()])
    frames: list[Frame] = []
    for start in range(0, len(x), block):
        end = min(start + block, len(x))
        if end <= drop_from or start >= drop_to:
            frames += stages.push(Block(x[start:end], start, 48000, 0))
    frames += stages.flush()
    resumed = -(-drop_to // block) * block  # the first block pushed after the drop
    jumps = [(a.end, b.start) for a, b in pairwise(frames) if a.end != b.start]
    assert jumps == [(jumps[0][0], resumed // 3)]  # one jump, to exactly where audio resumed
    assert jumps[0][0] <= drop_from // 3 + 16  # the run before ends at the drop (plus ring-out)
    assert abs(frames[-1].end - 48000) <= 1  # the end is where it was (rounding down)

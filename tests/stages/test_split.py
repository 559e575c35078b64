"""One input of several channels through a chain of stages per channel (``stages/split.py``):
each channel's frames are exactly what its own mono signal gives through the same stages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Block, ChannelFrame
from nsaudio.errors import InputError
from nsaudio.stages import EnergyGate, Framer, Resampler
from nsaudio.stages.split import ChannelSplit

IN_RATE, OUT_RATE = 48000, 16000


def lane(channel: int | None, channels: int = 1, skip_silence: bool = False):
    return [
        Resampler(IN_RATE, OUT_RATE, channels, channel=channel),
        Framer(OUT_RATE, 20),
        EnergyGate(skip_silence=skip_silence, pre_roll_ms=100, tail_ms=200),
    ]


def call(n: int, seed: int = 5) -> np.ndarray:
    """Stereo: a tone burst on the left in the first half, noise on the right in the second."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / IN_RATE
    left = np.where(t < n / IN_RATE / 2, 0.4 * np.sin(2 * np.pi * 440 * t), 0.0)
    right = np.where(t >= n / IN_RATE / 2, rng.uniform(-0.3, 0.3, n), 0.0)
    return np.stack([left, right], axis=1).astype(np.float32)


def run(stages, blocks):
    return [f for push in pushes(stages, blocks) for f in push]


def pushes(stages, blocks):
    """What each push gave, then what the flush gave."""
    out = [_push(stages, block) for block in blocks]
    flushed = []
    for i, stage in enumerate(stages):
        tail = stage.flush()
        for later in stages[i + 1 :]:
            tail = [y for x in tail for y in later.push(x)]
        flushed += tail
    return [*out, flushed]


def _push(stages, item):
    items = [item]
    for stage in stages:
        items = [y for x in items for y in stage.push(x)]
    return items


def blocks_of(x: np.ndarray, sizes: list[int]) -> list[Block]:
    out, pos, i = [], 0, 0
    while pos < len(x):
        n = sizes[i % len(sizes)]
        out.append(Block(x[pos : pos + n], pos, IN_RATE, t_ns=i))
        pos += n
        i += 1
    return out


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.sampled_from([17, 509, 4800, 48000]), min_size=1, max_size=5),
    skip_silence=st.booleans(),
)
def test_each_channel_gets_what_its_own_signal_gives(sizes, skip_silence):
    x = call(IN_RATE)
    split = ChannelSplit([lane(0, 2, skip_silence), lane(1, 2, skip_silence)], rate=OUT_RATE)
    each = pushes([split], blocks_of(x, sizes))
    for push in each:  # no channel waits behind another's whole block
        assert [(f.start, f.channel) for f in push] == sorted((f.start, f.channel) for f in push)
    got = [f for push in each for f in push]
    assert all(isinstance(f, ChannelFrame) for f in got)
    for ch in (0, 1):
        mono = np.ascontiguousarray(x[:, ch])
        alone = run(lane(None, 1, skip_silence), blocks_of(mono, [48000]))
        mine = [f for f in got if f.channel == ch]
        assert [(f.start, f.pcm, f.speech) for f in mine] == [
            (f.start, f.pcm, f.speech) for f in alone
        ]
    gates = split.gates
    assert all(isinstance(g, EnergyGate) for g in gates)
    assert gates[0].seen_samples == gates[1].seen_samples == OUT_RATE
    if skip_silence:  # each gate passed its own speech: the tone left, the noise right
        frames = {ch: [f.start for f in got if f.channel == ch] for ch in (0, 1)}
        half, ms = OUT_RATE // 2, OUT_RATE // 1000
        assert max(frames[0]) < half + (300 + 200 + 20) * ms  # hangover, tail, a frame
        assert min(frames[1]) >= half - (100 + 20) * ms  # the pre-roll, a frame


def test_a_block_of_another_channel_count_is_refused():
    split = ChannelSplit([lane(0, 2), lane(1, 2)], rate=OUT_RATE)
    with pytest.raises(InputError, match="3 channels cannot be split 2 ways"):
        split.push(Block(np.zeros((480, 3), np.float32), 0, IN_RATE, 0))
    with pytest.raises(InputError, match="needs 2 or more channels"):
        ChannelSplit([lane(0, 1)], rate=OUT_RATE)


def test_reset_forgets_the_stream():
    x = call(IN_RATE // 2)
    split = ChannelSplit([lane(0, 2), lane(1, 2)], rate=OUT_RATE)
    first = run([split], blocks_of(x, [4800]))
    split.reset()
    again = run([split], blocks_of(x, [4800]))
    assert [(f.start, f.channel, f.pcm) for f in first] == [
        (f.start, f.channel, f.pcm) for f in again
    ]

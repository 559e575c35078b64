"""The bytes framer gives exactly the general stages' frames for telephony audio."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Block
from nsaudio.gateway.frames import PcmFramer
from nsaudio.stages import Chain, Framer, Resampler


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=30),
    gaps=st.lists(st.integers(0, 300), min_size=30, max_size=30),
)
def test_same_frames_as_resampler_and_framer(sizes, gaps):
    rng = np.random.default_rng(len(sizes))
    general = Chain([Resampler(8000, 8000), Framer(8000, 100)])
    fast = PcmFramer(8000, 100)
    pos, a, b = 0, [], []
    for n, gap in zip(sizes, gaps, strict=False):
        pos += gap if gap > 250 else 0  # now and then a gap the platform left
        x = rng.integers(-32768, 32767, n).astype(np.int16)
        a += general.push(Block(x, pos, 8000, pos))
        b += fast.push(Block(x, pos, 8000, pos))
        pos += n
    a += general.flush()
    b += fast.flush()
    assert [(f.pcm, f.start, f.t_ns) for f in a] == [(f.pcm, f.start, f.t_ns) for f in b]

"""The energy detector's one-frame path is the batch's, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.detectors.energy import EnergyDetector, levels_dbfs


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 4000),
    scale=st.sampled_from([0.0, 1.0, 3.0, 300.0, 8000.0, 40000.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_frame_scores_as_a_batch_of_it_does(n, scale, seed):
    x = np.random.default_rng(seed).standard_normal(n) * scale
    row = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    frames = np.stack([row, row[::-1]])
    one, batch = EnergyDetector(), EnergyDetector()
    for _ in range(3):  # the floor moves the same way too
        got = one.scores(frames[:1], 8000) + one.scores(frames[1:], 8000)
        assert got == batch.scores(frames, 8000)
        assert one.floor_db == batch.floor_db
    assert levels_dbfs(frames[:1])[0] == levels_dbfs(frames)[0]

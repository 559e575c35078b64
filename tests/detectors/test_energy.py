"""The energy detector: its one-frame path is the batch's, bit for bit; its floor's rise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.detectors.energy import EnergyDetector, levels_dbfs

from ..noises import steady


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


def test_between_utterances_frames_short_of_speech_raise_the_floor_at_the_quiet_rate() -> None:
    d = EnergyDetector(quiet_rise_db_per_s=60.0)
    d.between = True  # as the server's segmenter sets it while no segment is open
    assert d.floor_db == -60.0
    d.score(-55.0, 0.02)  # 5 dB above: noise, 60 dB/s
    assert d.floor_db == pytest.approx(-58.8)
    d.score(-46.0, 0.02)  # 12.8 dB above, short of speech (16 dB): 60 dB/s too
    assert d.floor_db == pytest.approx(-57.6)
    d.score(-30.0, 0.02)  # speech creeps it
    assert d.floor_db == pytest.approx(-57.48)
    d.score(-57.0, 0.02)  # the frame's own level caps the rise
    assert d.floor_db == pytest.approx(-57.0)
    # Inside an utterance every frame creeps at the one rate: a weak syllable must not lift
    # the floor to itself. Without the keyword, the rates are the same (the gate's detector).
    d.between = False
    d.score(-52.0, 0.02)
    assert d.floor_db == pytest.approx(-56.88)
    d = EnergyDetector()
    d.between = True
    d.score(-55.0, 0.02)
    assert d.floor_db == pytest.approx(-59.88)


def _brown_levels(seed: int) -> np.ndarray:
    noise = steady(16000 * 9, 16000, -53, seed=seed)
    pcm = np.clip(np.rint(noise * 32768), -32768, 32767).astype(np.int16)
    return levels_dbfs(pcm.reshape(-1, 320))  # 20 ms frames, as the server's


def test_with_the_quiet_rise_the_floor_at_an_onset_is_the_last_0_3_s_of_noise() -> None:
    # Seven seconds of brown noise heard whole, against a gate's view of the same pause: a
    # second of other noise (the last sentence's tail), then the same 0.3 s (its pre-roll).
    differences = {None: [], 60.0: []}
    for seed in range(1, 9):
        levels = _brown_levels(seed)
        whole, gated = levels[:350], np.concatenate([levels[360:410], levels[335:350]])
        for rise in differences:
            a, b = (
                EnergyDetector(quiet_rise_db_per_s=rise),
                EnergyDetector(quiet_rise_db_per_s=rise),
            )
            a.between = b.between = True  # a pause: no segment open
            for level in whole:
                a.score(float(level), 0.02)
            for level in gated:
                b.score(float(level), 0.02)
            differences[rise].append(abs(a.floor_db - b.floor_db))
    assert max(differences[60.0]) < 0.01
    # The slow rise everywhere keeps seconds of history: the two floors part (by 0.9-5.8 dB).
    assert sum(d > 0.5 for d in differences[None]) >= 2

"""The streaming resampler against one-shot soxr, over awkward block sizes."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Block
from nsaudio.errors import InputError
from nsaudio.stages import Framer, Resampler, to_int16

BLOCK_SIZES = [1, 17, 509, 44100]


def stream(resampler: Resampler, data: np.ndarray, block: int) -> np.ndarray:
    out = []
    for start in range(0, len(data), block):
        for b in resampler.push(Block(data[start : start + block], start, resampler.in_rate, 0)):
            out.append(b.data)
    out.extend(b.data for b in resampler.flush())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def mean_downmix(x: np.ndarray) -> np.ndarray:
    return (x @ np.full((x.shape[1], 1), 1 / x.shape[1], np.float32))[:, 0]


@pytest.mark.parametrize("block", BLOCK_SIZES)
@pytest.mark.parametrize("out_rate", [16000, 8000])
def test_streaming_equals_one_shot_exactly_for_float32(tone, block, out_rate):
    mono = np.ascontiguousarray(tone[:, 0])
    expected = soxr.resample(mono, 44100, out_rate, quality="HQ")
    got = stream(Resampler(44100, out_rate, 1), mono[:, None], block)
    assert got.dtype == np.float32
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_int16_frames_within_one_lsb_of_one_shot(tone, block):
    expected = to_int16(soxr.resample(mean_downmix(tone), 44100, 16000, quality="HQ")).astype(int)
    resampler, framer = Resampler(44100, 16000, 2), Framer(16000, 20)
    frames = []
    for start in range(0, len(tone), block):
        for b in resampler.push(Block(tone[start : start + block], start, 44100, 0)):
            frames += framer.push(b)
    for b in resampler.flush():
        frames += framer.push(b)
    frames += framer.flush()
    got = np.frombuffer(b"".join(f.pcm for f in frames), "<i2").astype(int)
    assert len(got) == len(expected)
    assert np.max(np.abs(got - expected)) <= 1


def test_int16_input_matches_float_input(tone):
    ints = np.round(tone * 32767).astype(np.int16)
    floats = ints.astype(np.float32) / 32768
    a = stream(Resampler(44100, 16000, 2), ints, 4096)
    b = stream(Resampler(44100, 16000, 2), floats, 4096)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_stereo_int16_downmix_is_exact():
    # The mean of two int16 channels, full scale both ways included, is exact in float32.
    rng = np.random.default_rng(0)
    x = rng.integers(-32768, 32768, (5000, 2)).astype(np.int16)
    x[:4] = [[-32768, -32768], [32767, 32767], [-32768, 32767], [1, 0]]
    exact = (x[:, 0].astype(np.float64) + x[:, 1]) / 65536
    got = stream(Resampler(16000, 16000, 2), x, 777)
    np.testing.assert_array_equal(got.astype(np.float64), exact)


def test_a_prepared_block_is_pushed_as_it_is(tone):
    ints = np.round(tone * 32767).astype(np.int16)
    r = Resampler(44100, 16000, 2)
    block = Block(ints, 0, 44100, 7)
    prepared = r.prepare(block)
    assert prepared.data.ndim == 1 and r.prepare(prepared) is prepared
    a = r.push(prepared) + r.flush()
    r.reset()
    b = r.push(block) + r.flush()
    np.testing.assert_array_equal(
        np.concatenate([x.data for x in a]), np.concatenate([x.data for x in b])
    )
    with pytest.raises(InputError):
        Resampler(48000, 16000, 2).push(prepared)  # still checked for its rate


def test_channel_pick_takes_one_channel(tone):
    expected = soxr.resample(np.ascontiguousarray(tone[:, 1]), 44100, 16000)
    np.testing.assert_array_equal(
        stream(Resampler(44100, 16000, 2, channel=1), tone, 1000), expected
    )


def test_equal_rates_pass_through(tone):
    got = stream(Resampler(44100, 44100, 2), tone, 777)
    np.testing.assert_allclose(got, tone.mean(axis=1), atol=1e-7)


def test_int16_mono_at_equal_rates_passes_through_and_frames_the_same(tone):
    pcm = to_int16(np.ascontiguousarray(tone[:, 0]))
    out = stream(Resampler(44100, 44100, 1), pcm[:, None], 509)
    assert out.dtype == np.int16 and np.array_equal(out, pcm)  # no float round trip
    as_float = pcm.astype(np.float32) / 32768
    for data in (pcm, as_float):  # the frames are those of the same audio given as float
        framer, frames = Framer(44100, 20), []
        for b in Resampler(44100, 44100, 1).push(Block(data[:, None], 0, 44100, 0)):
            frames += framer.push(b)
        frames += framer.flush()
        assert b"".join(f.pcm for f in frames) == pcm.tobytes()
    # Stereo int16 is still mixed in float, and a rate change still filters.
    assert stream(Resampler(44100, 44100, 2), np.stack([pcm, pcm], 1), 509).dtype == np.float32
    assert stream(Resampler(44100, 16000, 1), pcm[:, None], 509).dtype == np.float32


def test_nan_and_inf_do_not_smear():
    x = np.zeros(48000, np.float32)
    x[1000] = np.nan
    x[2000] = np.inf
    x[3000] = -np.inf
    got = stream(Resampler(48000, 16000, 1), x[:, None], 4096)
    assert np.isfinite(got).all()
    assert np.abs(got).max() <= 1.2


def test_reset_starts_a_new_stream(tone):
    r = Resampler(44100, 16000, 2)
    first = stream(r, tone, 3000)
    r.reset()
    second = stream(r, tone, 3000)
    np.testing.assert_array_equal(first, second)


def test_positions_and_times_follow_the_input(tone):
    r = Resampler(44100, 16000, 2)
    starts, total = [], 0
    for i, start in enumerate(range(0, len(tone), 10000)):
        for b in r.push(Block(tone[start : start + 10000], start, 44100, t_ns=1000 + i)):
            assert b.start == total
            assert b.t_ns == 1000 + i
            starts.append(b.start)
            total += len(b)
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_rate=0, out_rate=16000),
        dict(in_rate=44100, out_rate=-1),
        dict(in_rate=44100, out_rate=16000, channels=0),
        dict(in_rate=44100, out_rate=16000, quality="best"),
        dict(in_rate=44100, out_rate=16000, channels=2, channel=2),
    ],
)
def test_bad_arguments_raise_input_error(kwargs):
    with pytest.raises(InputError):
        Resampler(**kwargs)


def test_wrong_block_rate_or_channels_raise(tone):
    with pytest.raises(InputError):
        Resampler(48000, 16000, 2).push(Block(tone, 0, 44100, 0))
    with pytest.raises(InputError):
        Resampler(44100, 16000, 3).push(Block(tone, 0, 44100, 0))


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=30))
def test_output_does_not_depend_on_chunking(cuts):
    rng = np.random.default_rng(7)
    x = rng.uniform(-0.5, 0.5, size=(sum(cuts), 2)).astype(np.float32)
    expected = soxr.resample(mean_downmix(x), 22050, 16000)
    r, out, pos = Resampler(22050, 16000, 2), [], 0
    for n in cuts:
        out += [b.data for b in r.push(Block(x[pos : pos + n], pos, 22050, 0))]
        pos += n
    out += [b.data for b in r.flush()]
    got = np.concatenate(out) if out else np.zeros(0, np.float32)
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, atol=2e-7)

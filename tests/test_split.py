"""The two-thread convert against one-shot soxr and the one-thread pipeline, over awkward
lengths and segment sizes."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

from nsaudio.blocks import Block
from nsaudio.errors import InputError
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks import RawSink
from nsaudio.sources import FileSource
from nsaudio.split import EXACT_STEPS, plan, run_split, splittable
from nsaudio.stages import Resampler, to_int16


def write_wav(path, rate, seconds, channels=2, subtype="PCM_16", seed=0):
    """Tones that differ on each channel, and noise near full scale in places."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    t = np.arange(n) / rate
    x = np.stack([0.4 * np.sin(2 * np.pi * (300 + 700 * c) * t) for c in range(channels)], 1)
    x += rng.normal(0, 0.05, x.shape)
    x[n // 3 : n // 3 + rate // 10] = rng.uniform(-1, 1, (rate // 10, channels))
    sf.write(str(path), np.clip(x, -1, 0.99).astype(np.float32), rate, subtype=subtype)
    return path


def one_shot(path, out_rate, channel=None):
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    downmix = Resampler(rate, rate, data.shape[1], channel=channel).prepare
    m = downmix(Block(data, 0, rate, 0)).data  # the resampler's own downmix, exact
    return to_int16(soxr.resample(m, rate, out_rate, quality="HQ")).astype(int)


def split(path, out_rate, seconds, tmp_path, channel=None, quality="HQ"):
    src = FileSource(path)
    out = tmp_path / "split.raw"

    def make():
        return Resampler(src.rate, out_rate, src.channels, channel=channel, quality=quality)

    stats = run_split(src, make, RawSink(out), segment_seconds=seconds)
    got = np.fromfile(out, "<i2").astype(int)
    assert stats.output_frames == len(got)
    return got


def piped(path, out_rate, tmp_path):
    src = FileSource(path)
    out = tmp_path / "piped.raw"
    stages = standard_stages(src, f"pcm_{out_rate // 1000}k", frame_ms=1000, gate_threshold=None)
    Pipeline(src, stages, RawSink(out), rate=out_rate).run()
    return np.fromfile(out, "<i2").astype(int)


@pytest.mark.parametrize("frames", [1, 2, 3, 7, 4404, 4405, 10_000, 99_999, 100_001, 250_007])
@pytest.mark.parametrize("segment, roll, align", [(3, 1, 3), (300, 1100, 4404), (9999, 7, 3)])
def test_plan_covers_every_sample_once_on_whole_output_samples(frames, segment, roll, align):
    segs = plan(frames, 48000, 16000, segment=segment, roll=roll, align=align)
    assert segs[0].keep_from == 0 and segs[-1].keep_to == frames and segs[-1].out_to is None
    for a, b in itertools.pairwise(segs):
        assert a.keep_to == b.keep_from and a.out_to == b.out_from
        assert a.keep_to * 16000 % 48000 == 0
    for s in segs:
        assert s.read_from % align == 0
        assert s.read_from <= max(0, s.keep_from - roll)
        assert s.read_to == frames or s.read_to >= s.keep_to + roll + 2 * align


def test_plan_refuses_boundaries_between_output_samples():
    with pytest.raises(ValueError):
        plan(1000, 44100, 16000, segment=440, roll=10, align=441)


# (input rate, output rate, input seconds, segment seconds): segments of awkward lengths,
# last segments shorter than the rolls, outputs not whole numbers of anything.
CASES = [
    (48000, 16000, 2.3457, 0.31),
    (48000, 16000, 1.0001, 0.5),
    (48000, 8000, 2.71, 0.37),
    (44100, 16000, 2.5, 0.29),
    (22050, 16000, 1.9, 0.23),
    (8000, 16000, 3.33, 0.41),
    (32000, 16000, 2.0, 0.123),
]


@pytest.mark.parametrize("in_rate, out_rate, seconds, segment", CASES)
def test_split_is_within_one_lsb_of_one_shot_and_exact_where_aligned(
    in_rate, out_rate, seconds, segment, tmp_path
):
    path = write_wav(tmp_path / "in.wav", in_rate, seconds)
    expected = one_shot(path, out_rate)
    got = split(path, out_rate, segment, tmp_path)
    assert len(got) == len(expected)
    assert np.max(np.abs(got - expected)) <= 1
    # rounding where soxr's FFT blocks fall elsewhere, not a filter cut short
    assert np.count_nonzero(got != expected) <= 1 + len(got) // 1000
    if (in_rate, out_rate, "HQ") in EXACT_STEPS:
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got, piped(path, out_rate, tmp_path))


@pytest.mark.parametrize("subtype, channels", [("FLOAT", 1), ("PCM_24", 3), ("PCM_U8", 2)])
def test_split_of_other_encodings_and_a_channel_pick(subtype, channels, tmp_path):
    path = write_wav(tmp_path / "in.wav", 48000, 1.7, channels=channels, subtype=subtype)
    np.testing.assert_array_equal(split(path, 16000, 0.2, tmp_path), one_shot(path, 16000))
    channel = channels - 1
    np.testing.assert_array_equal(
        split(path, 16000, 0.2, tmp_path, channel=channel), one_shot(path, 16000, channel)
    )


def test_a_wav_cut_short_is_converted_as_far_as_it_goes(tmp_path):
    path = write_wav(tmp_path / "in.wav", 48000, 2.0)
    with open(path, "r+b") as f:  # the header still says 2 s
        f.truncate(44 + 4 * 70_001 + 1)
    np.testing.assert_array_equal(split(path, 16000, 0.3, tmp_path), piped(path, 16000, tmp_path))


# Segments of 14,400 input samples whose streams run ~5,000 past them: ends inside a
# segment, on a boundary, inside the run past one, and in the last segment.
@pytest.mark.parametrize("left", [1000, 43_200, 43_300, 50_000, 95_999])
def test_a_file_that_shrinks_while_read_ends_where_the_audio_ends(left, tmp_path):
    path = write_wav(tmp_path / "in.wav", 48000, 2.0)
    src = FileSource(path)  # 2 s, as far as it knows
    with open(path, "r+b") as f:
        f.truncate(44 + 4 * left)
    out = tmp_path / "out.raw"
    make = lambda: Resampler(48000, 16000, 2)  # noqa: E731
    stats = run_split(src, make, RawSink(out), segment_seconds=0.3)
    got = np.fromfile(out, "<i2").astype(int)
    np.testing.assert_array_equal(got, one_shot(path, 16000))
    assert (stats.input_frames, stats.output_frames) == (left, len(got))


def test_a_failing_worker_fails_the_run_and_leaves_no_output(tmp_path):
    path = write_wav(tmp_path / "in.wav", 48000, 2.0)
    src = FileSource(path, block_frames=4096)
    pushes = []

    class Failing(Resampler):
        def push(self, block):
            pushes.append(1)
            if len(pushes) == 9:
                raise OSError("disk on fire")
            return super().push(block)

    out = tmp_path / "out.raw"
    with pytest.raises(OSError, match="disk on fire"):
        run_split(src, lambda: Failing(48000, 16000, 2), RawSink(out), segment_seconds=0.3)
    assert list(tmp_path.iterdir()) == [path]


def test_a_resampler_that_cannot_be_made_leaves_no_output(tmp_path):
    path = write_wav(tmp_path / "in.wav", 48000, 1.0)

    def make():
        return Resampler(48000, 16000, 2, channel=5)

    with pytest.raises(InputError, match="channel 5 does not exist"):
        run_split(FileSource(path), make, RawSink(tmp_path / "out.raw"), segment_seconds=0.3)
    assert list(tmp_path.iterdir()) == [path]


def test_ctrl_c_while_writing_stops_the_workers_and_leaves_no_output(tmp_path):
    path = write_wav(tmp_path / "in.wav", 48000, 3.0)
    out = tmp_path / "out.raw"

    class Interrupted(RawSink):
        def write(self, frame):
            if self.frames_written > 20_000:
                raise KeyboardInterrupt
            super().write(frame)

    src = FileSource(path, block_frames=4096)
    with pytest.raises(KeyboardInterrupt):
        run_split(src, lambda: Resampler(48000, 16000, 2), Interrupted(out), segment_seconds=0.2)
    assert list(tmp_path.iterdir()) == [path]
    assert [t.name for t in threading.enumerate() if t.name.startswith("nsaudio-split")] == []


def test_what_takes_the_split_path(tmp_path):
    seconds = 2 * 15 + 0.5
    long_wav = write_wav(tmp_path / "long.wav", 16000, seconds, channels=1)
    assert splittable(FileSource(long_wav), 8000)
    assert not splittable(FileSource(long_wav), 16000)  # no resampling to share out
    short = write_wav(tmp_path / "short.wav", 16000, 29, channels=1)
    assert not splittable(FileSource(short), 8000)
    flac = tmp_path / "long.flac"
    sf.write(str(flac), sf.read(str(long_wav))[0], 16000)
    assert not splittable(FileSource(flac), 8000)  # seeking a compressed file: not here
    assert math.isclose(FileSource(long_wav).frames / 16000, seconds)

"""Sources made in memory: an array of any common sample type plays at its own level."""

from __future__ import annotations

import io

import numpy as np
import pytest

from nsaudio import ArraySource, Pipeline, RawSink, ToneSource, standard_stages
from nsaudio.errors import InputError

RATE = 16000


def played_rms(data, rate=RATE):
    """The RMS (full scale 1.0) of what a pipeline makes of ``data`` at 16 kHz."""
    source = ArraySource(data, rate)
    out = io.BytesIO()
    Pipeline(source, standard_stages(source, "pcm_16k", gate_threshold=None), RawSink(out)).run()
    pcm = np.frombuffer(out.getvalue(), "<i2") / 32768
    return float(np.sqrt(np.mean(pcm**2))), source


def half_scale_tone():
    t = np.arange(RATE) / RATE
    return 0.5 * np.sin(2 * np.pi * 440 * t)


@pytest.mark.parametrize(
    "convert, kept",
    [
        (lambda x: x.astype(np.float64), "float32"),
        (lambda x: x.astype(np.float32), "float32"),
        (lambda x: np.round(x * 32767).astype(np.int16), "int16"),
        (lambda x: np.round(x * 32767).astype(">i2"), "int16"),  # big-endian, as read from a file
        (lambda x: np.round(x * 2**31 * 0.999).astype(np.int32), "float32"),
        (lambda x: np.round(x * 127).astype(np.int8), "float32"),
        (lambda x: np.round(x * 127 + 128).astype(np.uint8), "float32"),
    ],
    ids=["float64", "float32", "int16", "int16-big-endian", "int32", "int8", "uint8"],
)
def test_an_array_plays_at_its_level_whatever_its_type(convert, kept):
    # A 0.5-amplitude tone has RMS 0.354: int16 used to come out clipped, RMS 0.96.
    rms, source = played_rms(convert(half_scale_tone()))
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.01, rms
    assert source.format == f"array/{kept}" and source.data.dtype == np.dtype(kept)


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.complex64, bool])
def test_types_with_no_full_scale_are_refused(dtype):
    with pytest.raises(InputError, match="not supported"):
        ArraySource(np.zeros(100, dtype=dtype), RATE)


def test_stereo_and_the_tone_source():
    rms, source = played_rms(np.stack([half_scale_tone(), half_scale_tone()], axis=1))
    assert source.channels == 2 and abs(rms - 0.354) < 0.01
    tone = ToneSource(1.0, rate=RATE, channels=2, freq=500, level=0.25)
    assert tone.channels == 2 and tone.frames == RATE and tone.name == "tone:500Hz"
    assert abs(float(np.max(np.abs(tone.data))) - 0.25) < 1e-3

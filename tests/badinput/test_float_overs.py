"""Float WAV with NaN, infinities and absurd values (1e30, FLT_MAX) in a sine.

They must play: NaN as 0, everything beyond full scale clipped to it before filtering, so a
bad sample is a click confined to the resampler's filter length, the sine intact everywhere
else, and no warning (numpy's RuntimeWarnings included) on stderr.
"""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from nsaudio.blocks import Block
from nsaudio.stages import Resampler, to_int16

from ..conftest import run_cli
from .corpus import wav
from .support import assert_in_time, read_pcm, run_main

OUT_RATE = 16000
FLT_MAX = float(np.finfo(np.float32).max)
#: Bad samples, at these fractions of the one-second test signal.
BAD = [
    (1 / 16, [np.nan]),
    (2 / 16, [np.nan] * 50),
    (3 / 16, [np.inf]),
    (4 / 16, [-np.inf]),
    (5 / 16, [1e30]),
    (6 / 16, [-1e30]),
    (7 / 16, [FLT_MAX] * 3),
    (8 / 16, [-FLT_MAX, FLT_MAX]),
    (9 / 16, [1e37] * 10),
    (10 / 16, [np.inf, -np.inf, np.nan]),
]


def tone(rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)


def spoiled(rate: int) -> tuple[np.ndarray, list[int]]:
    """The tone with the bad samples in, and where they are (input sample indices)."""
    x = tone(rate)
    where = []
    for fraction, values in BAD:
        i = round(fraction * rate)
        x[i : i + len(values)] = values
        where.extend(range(i, i + len(values)))
    return x, where


def sanitized(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    y = x if rate == OUT_RATE else soxr.resample(x, rate, OUT_RATE, quality="HQ")
    return to_int16(y).astype(np.int32)


def filter_reach(rate: int) -> int:
    """Output samples either side of an input sample that the HQ filter touches: no more
    than what the resampler holds back."""
    if rate == OUT_RATE:
        return 0
    r = Resampler(rate, OUT_RATE)
    r.push(Block(np.zeros((rate, 1), np.float32), 0, rate, 0))
    return r.delay_samples + 1


def check(got: np.ndarray, x: np.ndarray, where: list[int], rate: int) -> None:
    got = got.astype(np.int32)
    # Exactly what one-shot soxr makes of the input with NaN made 0 and overs clipped.
    expected = to_16k(sanitized(x), rate)
    assert len(got) == len(expected)
    assert np.abs(got - expected).max() <= 1
    # Away from the bad samples, the clean sine, bit for bit (to 1 LSB).
    clean = to_16k(tone(rate), rate)
    reach = filter_reach(rate)
    near = np.zeros(len(got), bool)
    for i in where:
        j = i * OUT_RATE // rate
        near[max(0, j - reach) : j + reach + 1] = True
    assert np.abs(got - clean)[~near].max() <= 1
    if rate != OUT_RATE:
        # Near a lone bad sample, a click of a third of full scale at most, nothing like the
        # full-scale ringing over the whole filter that an unclipped 1e30 makes.
        for fraction, values in BAD:
            if len(values) == 1:
                j = round(fraction * rate) * OUT_RATE // rate
                assert np.abs(got - clean)[j - reach : j + reach + 1].max() < 32768 / 3
    if rate == OUT_RATE:  # no filter: each bad sample, exactly
        bad = np.asarray(where)
        np.testing.assert_array_equal(got[bad], to_int16(sanitized(x[bad])))


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("mode", ["file", "stdin"])
def test_float_wav_with_nan_inf_and_overs(rate, mode, tmp_path, capsys, monkeypatch):
    x, where = spoiled(rate)
    src = tmp_path / "overs.wav"
    src.write_bytes(wav(x.astype("<f4").tobytes(), tag=3, bits=32, rate=rate))
    out = tmp_path / "out.raw"
    if mode == "file":
        run = run_main(["convert", str(src), str(out)], capsys, monkeypatch)
    else:
        run = run_main(["convert", "-", str(out)], capsys, monkeypatch, stdin=src.read_bytes())
    assert (run.status, run.stderr) == (0, "")
    assert_in_time(run.seconds)
    check(read_pcm(out), x, where, rate)


@pytest.mark.parametrize("channel", [None, 0])
def test_stereo_infinities_across_channels(channel, tmp_path, capsys, monkeypatch):
    """+inf and -inf in one frame average to NaN (made 0); picking a channel is a pick, so the
    other channel's infinities cannot reach it (as inf * 0 = NaN would)."""
    rate = 48000
    left, where = spoiled(rate)
    right = tone(rate)
    right[where] = -left[where]  # +inf with -inf, 1e30 with -1e30...
    right[1000:1010] = np.inf  # where the left channel is clean
    x = np.stack([left, right], axis=1)
    src = tmp_path / "stereo.wav"
    src.write_bytes(wav(x.astype("<f4").tobytes(), tag=3, bits=32, rate=rate, channels=2))
    out = tmp_path / "out.raw"
    argv = ["convert", str(src), str(out)] + ([] if channel is None else ["--channel", "0"])
    run = run_main(argv, capsys, monkeypatch)
    assert (run.status, run.stderr) == (0, "")
    got = read_pcm(out).astype(np.int32)
    if channel is None:
        with np.errstate(invalid="ignore"):
            mono = (x @ np.full((2, 1), 0.5, np.float32))[:, 0]
    else:
        mono = left
    assert np.abs(got - to_16k(sanitized(mono), rate)).max() <= 1


def test_float_overs_through_a_real_pipe(tmp_path):
    x, where = spoiled(48000)
    data = wav(x.astype("<f4").tobytes(), tag=3, bits=32, rate=48000)
    proc = run_cli("convert", "-", "-", input=data, timeout=30)
    assert (proc.returncode, proc.stderr.decode()) == (0, "")
    check(np.frombuffer(proc.stdout, "<i2"), x, where, 48000)

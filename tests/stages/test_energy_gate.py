"""The energy gate labels speech and silence and leaves the audio alone."""

from __future__ import annotations

import numpy as np
import pytest

from nsaudio.blocks import Frame
from nsaudio.errors import InputError
from nsaudio.stages import EnergyGate, level_dbfs, to_int16


def frame(x: np.ndarray, start: int = 0) -> Frame:
    return Frame(to_int16(x.astype(np.float32)).tobytes(), start, 16000, 0)


def labels(gate: EnergyGate, signal: np.ndarray, size: int = 320) -> list[bool]:
    out = []
    for i in range(0, len(signal), size):
        (f,) = gate.push(frame(signal[i : i + size], i))
        out.append(bool(f.speech))
    return out


def test_level_of_full_scale_sine_and_silence():
    t = np.arange(16000) / 16000
    assert level_dbfs(frame(np.sin(2 * np.pi * 1000 * t) * 0.999).pcm) == pytest.approx(
        -3.0, abs=0.1
    )
    assert level_dbfs(frame(np.zeros(320)).pcm) == -100.0
    assert level_dbfs(b"") == -100.0


def test_tone_burst_in_noise_is_speech_and_noise_is_not():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.003, 16000 * 3)
    t = np.arange(16000) / 16000
    signal = noise.copy()
    signal[16000:32000] += 0.3 * np.sin(2 * np.pi * 300 * t)
    got = labels(EnergyGate(0.5, hangover_ms=200), signal)
    per_second = len(got) // 3
    assert not any(got[5:per_second])  # noise alone (after the floor settles)
    assert all(got[per_second : 2 * per_second])  # the burst
    assert not any(got[2 * per_second + 15 :])  # after the hangover


def test_hangover_holds_speech_for_its_duration():
    signal = np.concatenate([np.zeros(3200), 0.5 * np.ones(3200), np.zeros(6400)])
    got = labels(EnergyGate(0.5, hangover_ms=100), signal)
    onset_end = got.index(True) + got[got.index(True) :].index(False)
    assert 10 + 10 + 4 <= onset_end <= 10 + 10 + 6  # 10 speech frames + 100 ms / 20 ms


def test_higher_threshold_needs_louder_speech():
    quiet = np.concatenate([np.zeros(3200), 0.001 * np.sin(np.arange(6400) / 3)])
    assert any(labels(EnergyGate(0.2, hangover_ms=0), quiet))
    assert not any(labels(EnergyGate(0.99, hangover_ms=0), quiet))


def test_audio_is_unchanged_and_reset_forgets():
    gate = EnergyGate()
    f = frame(np.linspace(-1, 1, 320))
    pcm = f.pcm
    assert gate.push(f)[0].pcm == pcm
    gate.push(frame(0.5 * np.ones(320)))
    gate.reset()
    assert gate.floor_db == gate.initial_floor_db and gate.flush() == []


@pytest.mark.parametrize("threshold", [0, -0.1, 1.5])
def test_bad_threshold(threshold):
    with pytest.raises(InputError):
        EnergyGate(threshold)


def test_the_gate_and_the_server_share_one_detector():
    from nsaudio.server.vad import Segmenter, VadConfig
    from nsaudio.stages import EnergyDetector

    assert type(EnergyGate(0.7).detector) is EnergyDetector
    assert type(Segmenter(VadConfig(threshold=0.7)).detector) is EnergyDetector


def test_detector_floor_follows_down_at_once_and_creeps_up():
    from nsaudio.stages import EnergyDetector

    d = EnergyDetector(0.5)
    assert d.floor_db == -60.0
    assert d.score(-100.0, 0.02) == 0.0 and d.floor_db == -80.0  # never below floor_min_db
    d.score(-70.0, 0.0)
    assert d.floor_db == -80.0  # a level above the floor: it may only creep
    for _ in range(50):  # one second of -40 dBFS: the floor rises 6 dB
        d.score(-40.0, 0.02)
    assert d.floor_db == pytest.approx(-74.0)
    d.score(-90.0, 0.02)
    assert d.floor_db == -80.0  # and falls at once
    # The score: 6 dB above the floor is 0, 26 dB above is 1, linear between.
    assert d.score(-64.0, 0.0) == pytest.approx(0.5)
    assert d.score(-74.0, 0.0) == 0.0 and d.score(-50.0, 0.0) == 1.0


@pytest.mark.parametrize("frame_ms", [20, 100])
def test_brown_room_noise_is_not_speech(frame_ms):
    """Brown noise (integrated white noise, -53 dBFS) swings by 10 dB over 20 ms frames."""
    rng = np.random.default_rng(5)
    brown = np.cumsum(rng.standard_normal(16000 * 20))
    brown -= np.convolve(brown, np.ones(1601) / 1601, mode="same")  # no drift: room rumble
    brown *= 10 ** (-53 / 20) / np.sqrt(np.mean(brown**2))
    got = labels(EnergyGate(0.5, hangover_ms=0), brown, size=16 * frame_ms)
    assert sum(got[len(got) // 10 :]) <= len(got) // 100  # at most 1 % after the floor settles


# -- skip_silence: only speech, its pre-roll and its tail pass --------------------------


def burst_signal(rate: int = 16000) -> np.ndarray:
    """3 s of quiet noise, 1 s of a loud tone, 3 s of quiet noise."""
    rng = np.random.default_rng(7)
    signal = rng.normal(0, 0.002, rate * 7)
    t = np.arange(rate) / rate
    signal[3 * rate : 4 * rate] += 0.3 * np.sin(2 * np.pi * 300 * t)
    return signal


def passed(gate: EnergyGate, signal: np.ndarray, size: int) -> list[Frame]:
    out = []
    for i in range(0, len(signal), size):
        out += gate.push(frame(signal[i : i + size], i))
    return out + gate.flush()


@pytest.mark.parametrize("size", [320, 1600, 1000])
@pytest.mark.parametrize(("pre_roll_ms", "tail_ms"), [(300, 700), (0, 0), (500, 1200)])
def test_skip_silence_passes_pre_roll_speech_and_tail_with_their_positions(
    size, pre_roll_ms, tail_ms
):
    signal = burst_signal()
    labelled = EnergyGate(0.5, hangover_ms=300)
    starts = range(0, len(signal), size)
    speech = [i for i, yes in zip(starts, labels(labelled, signal, size), strict=True) if yes]
    gate = EnergyGate(0.5, hangover_ms=300, skip_silence=True, pre_roll_ms=pre_roll_ms,
                      tail_ms=tail_ms)  # fmt: skip
    out = passed(gate, signal, size)
    starts = [f.start for f in out]
    # One contiguous run: the pre-roll (whole frames, at least as long as asked), the
    # speech exactly as labelled without a gate, then the tail (whole frames).
    assert starts == list(range(starts[0], starts[-1] + 1, size))
    pre = -(-round(pre_roll_ms * 16) // size)  # frames: ceil
    tail = -(-round(tail_ms * 16) // size)
    assert starts[0] == speech[0] - pre * size
    assert starts[-1] == speech[-1] + tail * size
    assert [f.start for f in out if f.speech] == speech
    for f in out:  # the audio is untouched
        assert f.pcm == to_int16(signal[f.start : f.start + size].astype(np.float32)).tobytes()
    assert gate.seen_samples == len(signal)
    assert gate.passed_samples == sum(f.frames for f in out)
    assert gate.skipped_samples == len(signal) - gate.passed_samples


def test_skip_silence_pre_roll_never_repeats_what_the_tail_sent():
    # Two bursts 0.5 s apart: the gap is shorter than the tail, so it all passes, once.
    rng = np.random.default_rng(3)
    signal = rng.normal(0, 0.002, 16000 * 6)
    t = np.arange(8000) / 16000
    for at in (16000 * 2, 16000 * 3):
        signal[at : at + 8000] += 0.3 * np.sin(2 * np.pi * 300 * t)
    out = passed(EnergyGate(skip_silence=True), signal, 320)
    starts = [f.start for f in out]
    assert starts == sorted(set(starts))
    assert starts == list(range(starts[0], starts[-1] + 1, 320))


def test_skip_silence_without_speech_passes_nothing_and_counts_it_all():
    signal = np.random.default_rng(5).normal(0, 0.002, 16000 * 5)
    gate = EnergyGate(skip_silence=True)
    assert passed(gate, signal, 320) == []
    assert (gate.seen_samples, gate.passed_samples) == (len(signal), 0)
    assert gate.skipped_samples == len(signal)


def test_label_only_gate_passes_everything_and_says_so():
    signal = burst_signal()
    gate = EnergyGate()
    out = passed(gate, signal, 320)
    assert [f.start for f in out] == list(range(0, len(signal), 320))
    assert gate.passed_samples == gate.seen_samples == len(signal)


def test_reset_forgets_the_pre_roll_and_counters():
    signal = burst_signal()
    gate = EnergyGate(skip_silence=True)
    first = passed(gate, signal, 320)
    gate.reset()
    assert (gate.seen_samples, gate.passed_samples, gate.speaking) == (0, 0, False)
    assert [f.start for f in passed(gate, signal, 320)] == [f.start for f in first]


@pytest.mark.parametrize("name", ["hangover_ms", "pre_roll_ms", "tail_ms"])
@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_bad_durations_are_refused(name, value):
    with pytest.raises(InputError):
        EnergyGate(**{name: value})

"""MicSource through the real capture path: paplay ▶ null sink ▶ monitor ▶ PulseAudio ▶ ALSA
▶ PortAudio ▶ MicSource."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf
import soxr

from nsaudio.errors import DeviceError
from nsaudio.meter import db
from nsaudio.sources import open_source
from nsaudio.sources.mic import MicSource, input_devices

from ..conftest import FIXTURES

pytestmark = pytest.mark.device

SPEECH = FIXTURES / "speech_16000_mono_int16.wav"


def capture(source: MicSource, on_first=None) -> list:
    """Every block of ``source``; ``on_first()`` runs once the first block is in."""
    blocks = []
    for block in source.blocks():
        if not blocks and on_first is not None:
            on_first()
        blocks.append(block)
    return blocks


def assert_contiguous(blocks, rate: int, channels: int) -> None:
    pos = 0
    last_t = 0
    for block in blocks:
        assert block.start == pos
        assert block.rate == rate
        assert block.data.dtype == np.float32 and block.data.shape[1] == channels
        assert block.t_ns >= last_t
        pos += block.frames
        last_t = block.t_ns
    assert last_t <= time.monotonic_ns()


def best_match(reference: np.ndarray, captured: np.ndarray) -> float:
    """Highest normalised cross-correlation of ``reference`` anywhere in ``captured``."""
    n = len(reference) + len(captured)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(captured, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = len(captured) - len(reference) + 1
    energy = np.concatenate([[0.0], np.cumsum(captured.astype(np.float64) ** 2)])
    window = energy[len(reference) : len(reference) + lags] - energy[:lags]
    norm = np.sqrt(window * float(np.dot(reference, reference))) + 1e-12
    return float(np.max(corr[:lags] / norm))


def test_captures_what_paplay_plays(pulse):
    mic = MicSource("", duration=4.0)
    device = mic.device
    assert mic.rate == device.default_samplerate
    assert mic.channels == min(2, device.max_input_channels)
    assert mic.live and mic.format.endswith("/float32")
    players = []
    blocks = capture(mic, on_first=lambda: players.append(pulse.play(SPEECH)))
    _, err = players[0].communicate(timeout=10)
    assert players[0].returncode == 0, err

    assert sum(b.frames for b in blocks) == round(4.0 * mic.rate)  # duration counts frames
    assert_contiguous(blocks, mic.rate, mic.channels)
    stats = mic.stats()
    assert (stats["overflows"], stats["dropped"]) == (0, 0), stats

    audio = np.concatenate([b.data for b in blocks])
    ref, ref_rate = sf.read(str(SPEECH), dtype="float32")
    # Unity gain all the way: the fixture's -3 dBFS peak arrives as it left.
    assert abs(db(float(np.max(np.abs(audio)))) - db(float(np.max(np.abs(ref))))) < 1.0
    mono = np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)
    heard = soxr.resample(mono, mic.rate, ref_rate)
    assert best_match(ref, heard) > 0.95


def test_silence_when_nothing_plays(pulse):
    mic = MicSource("", duration=1.0)
    audio = np.concatenate([b.data for b in capture(mic)])
    assert len(audio) == mic.rate
    assert float(np.max(np.abs(audio))) < 1e-4


def test_stop_from_another_thread_drains_and_returns(pulse):
    mic = MicSource("")
    started = time.monotonic()
    timer = threading.Timer(0.5, mic.stop)
    timer.start()
    blocks = capture(mic)
    elapsed = time.monotonic() - started
    timer.join()
    assert elapsed < 2.0
    frames = sum(b.frames for b in blocks)
    assert 0.3 * mic.rate < frames < 1.5 * mic.rate
    assert frames == mic.stats()["captured_frames"]  # everything captured was yielded
    assert_contiguous(blocks, mic.rate, mic.channels)
    assert list(mic.blocks()) == []  # stopped for good


def test_no_drops_over_ten_seconds_of_speech(pulse):
    mic = MicSource("", duration=10.0, block_ms=10)
    with pulse.playing(SPEECH):
        blocks = capture(mic)
    stats = mic.stats()
    assert stats["captured_frames"] == 10 * mic.rate
    assert (stats["overflows"], stats["dropped"], stats["dropped_samples"]) == (0, 0, 0), stats
    assert_contiguous(blocks, mic.rate, mic.channels)
    assert {b.frames for b in blocks[:-1]} == {mic.block_frames}


def test_select_by_name_and_index(pulse):
    devices = {d.name: d for d in input_devices()}
    assert "pulse" in devices and "default" in devices, devices
    by_name = MicSource("PULSE")  # case-insensitive; the exact name beats longer ones
    assert by_name.device.name == "pulse"
    by_part = MicSource("faul")  # a part of exactly one name
    assert by_part.device.name == "default"
    index = devices["pulse"].index
    by_index = open_source(f"mic:{index}", duration=0.2)
    assert isinstance(by_index, MicSource) and by_index.device.index == index
    assert sum(b.frames for b in by_index.blocks()) == round(0.2 * by_index.rate)
    default = MicSource("")
    assert default.device.default


def test_channel_and_rate_overrides(pulse):
    mic = MicSource("pulse", channels=1, rate=16000, duration=0.5, block_ms=20)
    blocks = capture(mic)
    assert (mic.rate, mic.channels, mic.block_frames) == (16000, 1, 320)
    assert_contiguous(blocks, 16000, 1)
    with pytest.raises(DeviceError, match="cannot record 99"):
        MicSource("pulse", channels=99)


def test_unknown_names_and_indices_are_device_errors(pulse):
    with pytest.raises(DeviceError, match="did you mean 'pulse'"):
        MicSource("pulsee")
    with pytest.raises(DeviceError, match="no input device has index 999"):
        MicSource("999")
    with pytest.raises(DeviceError, match="matches 2 input devices"):
        MicSource("u")  # "pulse" and "default"

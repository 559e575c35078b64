"""What needs no sound system: picking a device from a list, and the errors that say what to
install. (Not marked ``device``: these run everywhere.)"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import time
import types

import numpy as np
import pytest

from nsaudio.errors import DeviceError, InputError
from nsaudio.sources.mic import InputDevice, MicSource, load_sounddevice, resolve_device

from ..conftest import assert_one_line_error, run_cli


def dev(index, name, hostapi="ALSA", default=False, channels=2, rate=48000):
    return InputDevice(index, name, hostapi, channels, rate, default)


DEVICES = [
    dev(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)"),
    dev(1, "USB Audio Device: Microphone (hw:1,0)"),
    dev(2, "pulse"),
    dev(3, "default", default=True),
    dev(4, "Pulse Echo Cancel Source", hostapi="JACK"),
]


@pytest.mark.parametrize(
    "spec, index",
    [
        ("", 3),  # the default input
        ("1", 1),
        ("  4 ", 4),
        ("usb", 1),  # a case-insensitive part of one name
        ("alc3246", 0),
        ("PULSE", 2),  # the exact name wins over "Pulse Echo Cancel Source"
        ("echo cancel", 4),
    ],
)
def test_resolve(spec, index):
    assert resolve_device(spec, DEVICES).index == index


def test_ambiguous_names_list_the_matches():
    with pytest.raises(DeviceError) as err:
        resolve_device("hw:", DEVICES)
    text = str(err.value)
    assert "matches 2 input devices" in text and "0 'HDA" in text and "1 'USB" in text
    assert "mic:N" in text


def test_one_device_under_several_host_apis_takes_the_defaults():
    devices = [
        dev(0, "Microphone (USB)", hostapi="MME"),
        dev(5, "Microphone (USB)", hostapi="Windows WASAPI", default=True),
        dev(9, "Microphone (USB)", hostapi="Windows DirectSound"),
    ]
    assert resolve_device("usb", devices).index == 5
    assert resolve_device("usb", [devices[0], devices[2]]).index == 0  # the first listed


def test_no_match_names_close_matches_or_lists_inputs():
    with pytest.raises(DeviceError, match=r"did you mean 'pulse'\? \(see 'nsaudio devices'\)"):
        resolve_device("plse", DEVICES)
    with pytest.raises(DeviceError, match=r"inputs are 'HDA Intel.*'pulse', 'default'"):
        resolve_device("nosuchdevice", DEVICES)


def test_index_and_missing_devices():
    with pytest.raises(DeviceError, match=r"no input device has index 7 \(inputs: 0, 1, 2, 3, 4\)"):
        resolve_device("7", DEVICES)
    with pytest.raises(DeviceError, match="no input device found"):
        resolve_device("", [])
    with pytest.raises(DeviceError, match="no default input device"):
        resolve_device("", [dev(0, "a"), dev(1, "b")])


def test_input_device_json_shape():
    assert dev(2, "pulse").as_dict() == {
        "index": 2, "name": "pulse", "hostapi": "ALSA", "max_input_channels": 2,
        "default_samplerate": 48000, "default": False, "spec": "mic:2",
    }  # fmt: skip


class _Raising(importlib.abc.MetaPathFinder):
    def __init__(self, error):
        self.error = error

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise self.error
        return None


@pytest.mark.parametrize(
    "error, message",
    [
        (OSError("PortAudio library not found"), "PortAudio is missing: install libportaudio2"),
        (ImportError("No module named 'sounddevice'"), "pip install 'nsaudio[mic]'"),
        (RuntimeError("Error initializing PortAudio"), "PortAudio failed to start"),
    ],
)
def test_import_failures_say_what_to_install(monkeypatch, error, message):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Raising(error), *sys.meta_path])
    with pytest.raises(DeviceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_sounddevice()
    with pytest.raises(DeviceError, match=r"PortAudio|nsaudio"):
        MicSource("")


def test_arguments_are_checked_before_the_device():
    for kwargs in ({"block_ms": 0}, {"ring_seconds": 0}, {"duration": -1}):
        with pytest.raises(InputError):
            MicSource("", **kwargs)


def fake_sounddevice(tmp_path, body: str) -> dict:
    (tmp_path / "sounddevice.py").write_text(body)
    return {"PYTHONPATH": str(tmp_path)}


def test_cli_without_portaudio_is_one_line_exit_2(tmp_path):
    env = fake_sounddevice(tmp_path, "raise OSError('PortAudio library not found')\n")
    for args in (["devices"], ["devices", "--json"], ["check", "mic:"], ["check", "mic:3"]):
        line = assert_one_line_error(run_cli(*args, env=env))
        assert "PortAudio is missing: install libportaudio2" in line


def test_cli_without_sounddevice_says_which_extra(tmp_path):
    env = fake_sounddevice(tmp_path, "raise ImportError('No module named _sounddevice')\n")
    line = assert_one_line_error(run_cli("devices", env=env))
    assert "pip install 'nsaudio[mic]'" in line


# -- MicSource's own logic, against a fake sounddevice ----------------------------------------


class FakeSounddevice(types.ModuleType):
    """Enough of sounddevice for MicSource: one input device whose stream calls back from
    a thread of its own, with overflows, an early end or a stall on request."""

    class PortAudioError(Exception):
        pass

    class CallbackStop(Exception):
        pass

    class CallbackAbort(Exception):
        pass

    def __init__(self, *, rate=8000, blocks=None, overflow_at=(), hang_after=None,
                 interval=0.0, open_error=None):  # fmt: skip
        super().__init__("sounddevice")
        self.rate, self.blocks, self.overflow_at = rate, blocks, set(overflow_at)
        self.hang_after, self.interval, self.open_error = hang_after, interval, open_error
        self.default = types.SimpleNamespace(device=(0, 0))
        self.streams = []
        fake = self

        class InputStream:
            def __init__(self, *, callback, finished_callback, blocksize, channels, **kw):
                if fake.open_error:
                    raise fake.PortAudioError(fake.open_error)
                self.callback, self.finished = callback, finished_callback
                self.blocksize, self.channels, self.latency = blocksize, channels, 0.03
                self._stop = threading.Event()
                self._done = threading.Event()
                fake.streams.append(self)

            def start(self):
                threading.Thread(target=self._run, daemon=True).start()

            def _run(self):
                i = 0
                while not self._stop.is_set() and (fake.blocks is None or i < fake.blocks):
                    if fake.hang_after is not None and i >= fake.hang_after:
                        self._stop.wait()
                        break
                    data = np.full((self.blocksize, self.channels), i, dtype=np.float32)
                    flags = types.SimpleNamespace(input_overflow=i in fake.overflow_at)
                    try:
                        self.callback(data, self.blocksize, None, flags)
                    except (fake.CallbackStop, fake.CallbackAbort):
                        break
                    i += 1
                    if fake.interval:
                        time.sleep(fake.interval)
                self.finished()
                self._done.set()

            def stop(self, ignore_errors=True):
                self._stop.set()
                self._done.wait(5)

            abort = stop

            def close(self, ignore_errors=True):
                self.stop()

        self.InputStream = InputStream

    def query_devices(self, kind=None):
        dev = {"index": 0, "name": "Fake Mic", "hostapi": 0, "max_input_channels": 1,
               "max_output_channels": 0, "default_samplerate": float(self.rate)}  # fmt: skip
        return dev if kind else [dev]

    def query_hostapis(self):
        return ({"name": "FakeAPI"},)

    def check_input_settings(self, **kw):
        if self.open_error:
            raise self.PortAudioError(self.open_error)


def fake_mic(monkeypatch, spec="", **kwargs) -> tuple[FakeSounddevice, dict]:
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in ("duration", "ring_seconds", "stall_seconds")}  # fmt: skip
    fake = FakeSounddevice(**kwargs)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    return fake, options


def test_fake_capture_counts_positions_overflows_and_duration(monkeypatch):
    _, opts = fake_mic(monkeypatch, overflow_at={3, 7}, duration=0.1234)
    mic = MicSource("", **opts)
    assert (mic.name, mic.rate, mic.channels, mic.block_frames) == ("mic:0 Fake Mic", 8000, 1, 80)
    assert mic.format == "FakeAPI/float32"
    blocks = list(mic.blocks())
    assert [b.start for b in blocks] == [80 * i for i in range(13)]
    assert blocks[-1].frames == 987 - 960  # the duration in frames, exactly
    assert float(blocks[5].data[0, 0]) == 5.0
    assert mic.overflows == 2 and mic.stats()["captured_frames"] == 987


def test_fake_stop_drains_what_is_queued(monkeypatch):
    _, opts = fake_mic(monkeypatch, interval=0.002)
    mic = MicSource("", **opts)
    got = []
    for block in mic.blocks():
        got.append(block)
        if len(got) == 5:
            mic.stop()  # as a signal handler would: only a flag
    assert len(got) >= 5 and sum(b.frames for b in got) == mic.captured_frames


def test_fake_ring_drops_oldest_and_counts(monkeypatch):
    _, opts = fake_mic(monkeypatch, blocks=100, ring_seconds=0.05, duration=1.0)
    mic = MicSource("", **opts)
    mic.start()
    time.sleep(0.3)  # the consumer is late: the ring holds 5 blocks, keeps the newest
    got = list(mic.blocks())  # all 100 blocks (the duration) were captured
    assert mic.dropped == 95 and mic.dropped_samples == 95 * 80
    assert [b.start for b in got] == [80 * i for i in range(95, 100)]


def test_fake_device_that_stops_or_stalls(monkeypatch):
    _, opts = fake_mic(monkeypatch, blocks=4)
    with pytest.raises(DeviceError, match=r"stopped delivering audio after 0\.04 s"):
        list(MicSource("", **opts).blocks())
    _, opts = fake_mic(monkeypatch, hang_after=3, stall_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(DeviceError, match="no audio from the device"):
        list(MicSource("", **opts).blocks())
    assert time.monotonic() - started < 2


def test_fake_busy_device(monkeypatch):
    fake_mic(monkeypatch, open_error="Device unavailable [PaErrorCode -9985]")
    with pytest.raises(DeviceError) as err:
        MicSource("fake")
    text = str(err.value)
    assert "mic:0 Fake Mic" in text and "Device unavailable" in text and "mic:N" in text

"""The public surface is pinned, and importing nsaudio stays light."""

from __future__ import annotations

import subprocess
import sys

import nsaudio

EXPECTED = {
    "FORMATS", "ArraySource", "AuthenticationError", "Block", "Chain", "DeviceError", "EnergyGate",
    "FileSource", "Frame", "Framer", "InputError", "LocalServer", "MicSource", "NeuralSpaceSink", "ServerProcess", "StreamParams", "TranscriptResult", "NsAudioError", "NullSink",
    "Pipeline", "ProtocolError", "RawSink", "Resampler", "Ring", "RingClosed", "ServiceError",
    "StdinSource", "ToneSource", "UnsupportedAudioError", "WavSink", "__version__", "open_source",
    "standard_stages",
}  # fmt: skip


def test_all_is_pinned():
    assert set(nsaudio.__all__) >= EXPECTED


def test_every_exported_name_resolves():
    for name in nsaudio.__all__:
        if name == "MicSource":
            continue  # needs PortAudio; covered by the device tests
        assert getattr(nsaudio, name) is not None, name


def test_error_tree_mixes_in_standard_bases():
    assert issubclass(nsaudio.InputError, ValueError)
    assert issubclass(nsaudio.UnsupportedAudioError, nsaudio.InputError)
    assert issubclass(nsaudio.ServiceError, RuntimeError)
    assert issubclass(nsaudio.AuthenticationError, nsaudio.ServiceError)
    assert nsaudio.AuthenticationError("x").retryable is False
    assert (
        nsaudio.InputError.exit_status,
        nsaudio.ServiceError.exit_status,
        nsaudio.AuthenticationError.exit_status,
    ) == (2, 1, 3)


def test_import_and_convert_do_not_load_device_or_network_modules():
    code = (
        "import sys, nsaudio, nsaudio.cli.main, nsaudio.cli.convert\n"
        "from nsaudio import FileSource, Pipeline\n"
        "heavy = [m for m in ('sounddevice', 'websocket', 'requests', 'websockets', 'pocketsphinx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

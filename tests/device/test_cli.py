"""``nsaudio devices`` and ``nsaudio check mic:`` through a subprocess, on the real path."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import FIXTURES, ROOT, assert_one_line_error, run_cli

pytestmark = pytest.mark.device

SPEECH = FIXTURES / "speech_16000_mono_int16.wav"


def test_devices_lists_pulse_and_marks_the_default(pulse):
    proc = run_cli("devices")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0].split() == ["SOURCE", "NAME", "HOST", "API", "CHANNELS", "RATE"]
    rows = {line.split()[-4]: line for line in lines[1:]}  # by NAME
    assert "pulse" in rows and "default" in rows, lines
    assert rows["default"].startswith("*") and not rows["pulse"].startswith("*")
    assert "ALSA" in rows["pulse"] and "mic:" in rows["pulse"]


def test_devices_json(pulse):
    proc = run_cli("devices", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    devices = json.loads(proc.stdout)
    by_name = {d["name"]: d for d in devices}
    pulse_dev = by_name["pulse"]
    assert set(pulse_dev) == {
        "index", "name", "hostapi", "max_input_channels", "default_samplerate", "default", "spec",
    }  # fmt: skip
    assert pulse_dev["hostapi"] == "ALSA" and pulse_dev["max_input_channels"] >= 1
    assert pulse_dev["spec"] == f"mic:{pulse_dev['index']}"
    assert isinstance(pulse_dev["default_samplerate"], int)
    assert [d["name"] for d in devices if d["default"]] == ["default"]


def test_check_mic_is_audible_while_speech_plays(pulse):
    with pulse.playing(SPEECH):
        proc = run_cli("check", "mic:", "--duration", "3", "--json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    verdict = json.loads(proc.stdout)
    assert verdict["verdict"] == "audible", verdict
    assert -4.5 < verdict["peak_dbfs"] < -1.5
    assert verdict["seconds"] == 3.0
    assert (verdict["overflows"], verdict["dropped"]) == (0, 0)
    assert proc.stderr == b""  # no meter off a terminal


def test_check_mic_is_silence_when_nothing_plays(pulse):
    proc = run_cli("check", "mic:default", "--duration", "1.5")
    assert proc.returncode == 1, proc.stderr.decode()
    assert proc.stdout.decode().startswith("silence: peak -100.0 dBFS, speech 0% of 1.5 s")


def test_check_mic_by_index_and_unknown_names(pulse):
    devices = json.loads(run_cli("devices", "--json").stdout)
    index = next(d["index"] for d in devices if d["name"] == "pulse")
    assert run_cli("check", f"mic:{index}", "--duration", "0.5").returncode == 1  # silence
    line = assert_one_line_error(run_cli("check", "mic:nosuchdevice"))
    assert "mic:nosuchdevice" in line and "'pulse'" in line and "nsaudio devices" in line
    line = assert_one_line_error(run_cli("check", "mic:defualt"))
    assert "did you mean 'default'" in line


def test_ctrl_c_ends_a_mic_check_with_a_verdict(pulse):
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "check", "mic:", "--duration", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert out.decode().startswith("silence: ")
    assert b"Traceback" not in err

"""``nsaudio check`` on files (no device needed) and the verdict and meter logic under it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from nsaudio.blocks import Block, Frame
from nsaudio.meter import CLIP_LEVEL, LevelMeter, LevelStats, block_peak, db

from .conftest import FIXTURES, MANIFEST, assert_one_line_error, run_cli

EXPECTED = {
    "speech_16000_mono_int16.wav": ("audible", 0),
    "silence_16000_mono_int16.wav": ("silence", 1),
    "clipped_16000_mono_int16.wav": ("clipping", 1),
    "quiet_16000_mono_int16.wav": ("too quiet", 1),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fixture_verdicts(name):
    verdict, status = EXPECTED[name]
    proc = run_cli("check", str(FIXTURES / name))
    assert proc.returncode == status, proc.stderr.decode()
    line = proc.stdout.decode()
    assert line.startswith(f"{verdict}: peak "), line
    assert line.count("\n") == 1 and proc.stderr == b""


def test_every_speech_fixture_is_audible():
    for entry in MANIFEST:
        if entry["kind"] in ("speech", "two_utterances"):
            proc = run_cli("check", "--json", str(FIXTURES / entry["file"]))
            out = json.loads(proc.stdout)
            assert (proc.returncode, out["verdict"]) == (0, "audible"), (entry["file"], out)
            assert out["rate"] == entry["rate"] and out["channels"] == entry["channels"]


def test_json_verdict():
    proc = run_cli("check", str(FIXTURES / "quiet_16000_mono_int16.wav"), "--json")
    out = json.loads(proc.stdout)
    assert out["verdict"] == "too quiet" and proc.returncode == 1
    assert abs(out["peak_dbfs"] - -50.0) < 0.1
    assert 0.5 < out["speech_fraction"] <= 1 and out["speech_rms_dbfs"] < -45
    assert out["clipped_fraction"] == 0 and out["seconds"] == round(41120 / 16000, 2)
    assert out["hint"] and out["source"].endswith("quiet_16000_mono_int16.wav")
    assert "overflows" not in out  # only live sources report capture losses


def test_text_line_format():
    out = run_cli("check", str(FIXTURES / "speech_16000_mono_int16.wav")).stdout.decode()
    assert out.startswith("audible: peak -3.0 dBFS, speech ")
    assert "% of 2.2 s, speech RMS " in out and ";" not in out  # no hint when audible


def test_duration_limits_a_file(tmp_path):
    proc = run_cli("check", str(FIXTURES / "two_utterances_16000_mono_int16.wav"), "--json",
                   "--duration", "0.2")  # fmt: skip
    out = json.loads(proc.stdout)
    # The file opens with 0.25 s of digital zeros: the first 0.2 s are silence.
    assert (out["verdict"], out["seconds"], proc.returncode) == ("silence", 0.2, 1)


def test_stdin_and_raw(tmp_path):
    src = FIXTURES / "clipped_16000_mono_int16.wav"
    proc = run_cli("check", "-", input=src.read_bytes())
    assert proc.stdout.startswith(b"clipping: ") and proc.returncode == 1
    data, _ = sf.read(str(src), dtype="int16")
    proc = run_cli("check", "-", "--raw", "16000:1:s16le", input=data.tobytes())
    assert proc.stdout.startswith(b"clipping: ")


def test_clipping_is_measured_before_resampling(tmp_path):
    # A 48 kHz sine driven 12 dB into clipping: soxr's low-pass rounds the plateaus at
    # 16 kHz, so clipping only shows in the input.
    t = np.arange(48000) / 48000
    x = np.clip(4 * 0.5 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 3 * t)), -1, 1)
    path = tmp_path / "hot.wav"
    sf.write(str(path), np.concatenate([np.zeros(4800), x]), 48000, subtype="PCM_16")
    proc = run_cli("check", str(path), "--json")
    assert json.loads(proc.stdout)["verdict"] == "clipping"


@pytest.mark.parametrize(
    "args",
    [["--threshold", "0"], ["--threshold", "1.5"], ["--threshold", "x"], ["--duration", "-1"]],
)
def test_bad_options_are_one_line_exit_2(args):
    assert_one_line_error(run_cli("check", str(FIXTURES / "speech_16000_mono_int16.wav"), *args))


def test_bad_sources_are_one_line_exit_2(tmp_path):
    assert_one_line_error(run_cli("check", str(tmp_path / "nope.wav")))
    (tmp_path / "t.wav").write_text("not audio\n" * 20)
    assert_one_line_error(run_cli("check", str(tmp_path / "t.wav")))


def test_threshold_changes_what_counts_as_speech():
    path = str(FIXTURES / "speech_16000_mono_int16.wav")
    loose = json.loads(run_cli("check", path, "--json", "--threshold", "0.05").stdout)
    strict = json.loads(run_cli("check", path, "--json", "--threshold", "1").stdout)
    assert loose["speech_fraction"] > strict["speech_fraction"]


# -- the pure parts ------------------------------------------------------------------------


def block(data, rate=16000):
    return Block(np.asarray(data), 0, rate, 0)


def frame(values, speech):
    pcm = np.asarray(values, dtype="<i2").tobytes()
    return Frame(pcm, 0, 16000, 0, speech)


def test_block_peak_int16_and_float():
    assert block_peak(np.array([[0], [-32768], [100]], dtype=np.int16)) == (1.0, 1)
    assert block_peak(np.array([[32766, 32765], [-32766, 5]], dtype=np.int16)) == (32766 / 32768, 2)
    peak, clipped = block_peak(np.array([[0.5], [-0.25], [np.nan]], dtype=np.float32))
    assert (peak, clipped) == (0.5, 0)
    peak, clipped = block_peak(np.array([[np.inf], [0.1], [CLIP_LEVEL], [1.5]], dtype=np.float32))
    assert (peak, clipped) == (1.5, 3)
    assert block_peak(np.zeros((0, 2), dtype=np.float32)) == (0.0, 0)


def stats_for(peak, speech_values=None, clipped=0, total=100_000):
    s = LevelStats()
    data = np.zeros((total, 1), dtype=np.int16)
    data[0, 0] = round(peak * 32767)
    data[1 : 1 + clipped, 0] = 32767
    s.add_block(block(data))
    s.add_frame(frame(np.zeros(320), False))
    if speech_values is not None:
        s.add_frame(frame(speech_values, True))
    return s.verdict()


def test_verdict_rules_in_order():
    loud = np.full(320, 8000)  # about -12 dBFS RMS
    assert stats_for(0.0005, loud).verdict == "silence"  # peak -66 dBFS, whatever the gate says
    assert stats_for(0.7, loud, clipped=100).verdict == "clipping"  # 0.1 % of samples
    assert stats_for(0.7, loud, clipped=99).verdict == "audible"  # just under 0.1 %
    assert stats_for(1.0, None, clipped=500).verdict == "clipping"  # before "no speech"
    assert stats_for(0.7, None).verdict == "silence"  # signal, but no speech
    assert stats_for(0.015, np.full(320, 400)).verdict == "too quiet"  # peak -36.5 dBFS
    assert stats_for(0.5, np.full(320, 150)).verdict == "too quiet"  # speech RMS -46.8
    v = stats_for(0.5, loud)
    assert v.verdict == "audible" and v.ok and v.hint == ""
    assert v.speech_fraction == 0.5 and abs(v.speech_rms_dbfs - db(8000 / 32768)) < 0.01


def test_verdict_hints_for_live_and_recorded():
    s = LevelStats()
    s.add_block(block(np.zeros((1600, 1), dtype=np.int16)))
    assert "nsaudio devices" in s.verdict().hint
    assert s.verdict(live=False).hint == "the recording holds no speech"
    empty = LevelStats().verdict()
    assert (empty.verdict, empty.seconds, empty.peak_dbfs) == ("silence", 0.0, -100.0)


def test_meter_bar_peak_hold_and_states():
    m = LevelMeter(width=20, hold_seconds=1.0, fall_db_per_second=20.0)
    m.peak(10 ** (-6 / 20), 0, now=0.0)  # -6 dBFS
    m.frame(-30.0, True)
    m.frame(-24.0, True)  # the loudest frame since the last render is shown
    line = m.render(0.05)
    assert line.startswith("[" + "#" * 12 + "." * 5 + "|" + "..]")
    assert " -24.0 dBFS" in line and "peak   -6.0" in line and "speech" in line
    assert m.held_peak_db(0.9) == pytest.approx(-6.0)  # held...
    assert m.held_peak_db(1.5) == pytest.approx(-16.0)  # ...then falls at 20 dB/s
    m.frame(-100.0, False)
    quiet = m.render(1.5)
    assert quiet.startswith("[" + "." * 14 + "|") and quiet.rstrip().endswith("-")
    m.peak(1.0, 5, now=2.0)
    assert "CLIP" in m.render(2.1) and "CLIP" not in m.render(3.2)
    assert len({len(m.render(t)) for t in (0, 1, 5)}) == 1  # fixed width: \r rewrites cleanly

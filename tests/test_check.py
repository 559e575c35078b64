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
    # Peaks at -50 dBFS, and stream transcribes it word for word: audible.
    "quiet_16000_mono_int16.wav": ("audible", 0),
}


def attenuated(tmp_path, db_down: float, name: str = "speech_16000_mono_int16.wav"):
    """A fixture ``db_down`` dB quieter, as int16 (rounded, as a recorder would)."""
    data, rate = sf.read(str(FIXTURES / name), dtype="float64")
    path = tmp_path / f"{db_down:g}dB_down.wav"
    sf.write(str(path), data * 10 ** (-db_down / 20), rate, subtype="PCM_16")
    return path


def sine(tmp_path, hz=440.0, seconds=3.0, level=0.5, noise=0.0, rate=16000):
    t = np.arange(round(seconds * rate)) / rate
    x = level * np.sin(2 * np.pi * hz * t) + noise * np.random.default_rng(1).standard_normal(
        len(t)
    )
    path = tmp_path / f"sine{hz:g}.wav"
    sf.write(str(path), x, rate, subtype="PCM_16")
    return path


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


def test_json_verdict(tmp_path):
    proc = run_cli("check", str(attenuated(tmp_path, 52)), "--json")  # peaks at -55 dBFS
    out = json.loads(proc.stdout)
    assert out["verdict"] == "too quiet" and proc.returncode == 1
    assert abs(out["peak_dbfs"] - -55.0) < 0.2
    assert 0.3 < out["speech_fraction"] < 0.8 * out["louder_speech_fraction"]
    assert out["louder_speech_fraction"] > 0.85
    assert out["clipped_fraction"] == 0 and out["seconds"] == 2.2
    assert out["hint"] and out["source"].endswith("52dB_down.wav")
    assert "overflows" not in out  # only live sources report capture losses


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_a_sine_is_a_tone_not_speech(tmp_path, noise):
    proc = run_cli("check", str(sine(tmp_path, noise=noise)))
    line = proc.stdout.decode()
    assert proc.returncode == 1 and line.startswith("tone: peak "), line
    hz = float(line.split("one steady tone near ")[1].split(" Hz")[0])
    assert abs(hz - 440) < 5 and "not a voice" in line


def test_speech_too_quiet_for_the_detector_is_too_quiet_not_silence(tmp_path):
    # 61 dB down (peak -64 dBFS): the gate hears nothing, but it would 20 dB louder.
    out = json.loads(run_cli("check", str(attenuated(tmp_path, 61)), "--json").stdout)
    assert (out["verdict"], out["speech_fraction"]) == ("too quiet", 0.0)
    assert out["louder_speech_fraction"] > 0.5


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


def fed(frames, peak=None, clipped=0, total=100_000):
    """LevelStats given an input block (``peak``, ``clipped`` samples) and 20 ms frames,
    each ``(samples, speech)`` as the energy gate labelled it."""
    s = LevelStats()
    data = np.zeros((total, 1), dtype=np.int16)
    data[0, 0] = round((peak or 0.0) * 32767)
    data[1 : 1 + clipped, 0] = 32767
    s.add_block(block(data))
    for i, (values, speech) in enumerate(frames):
        s.add_frame(Frame(np.asarray(values, dtype="<i2").tobytes(), i * 320, 16000, 0, speech))
    return s.verdict()


NOISE = np.random.default_rng(7).standard_normal(320)
ZEROS = np.zeros(320)
TONE = np.sin(2 * np.pi * 440 * np.arange(320) / 16000)


def voice(amplitude):
    return amplitude * NOISE  # broadband, as no single tone is


def test_verdict_rules_in_order():
    silent = [(ZEROS, False)] * 10
    speech = silent + [(voice(8000), True)] * 40  # about -12 dBFS RMS
    assert fed(speech, 0.7, clipped=100).verdict == "clipping"  # 0.1 % of samples
    assert fed(speech, 0.7, clipped=99).verdict == "audible"  # just under 0.1 %
    assert fed(silent * 5, 1.0, clipped=500).verdict == "clipping"  # before "no speech"
    assert fed(silent * 5).verdict == "silence"
    assert fed(silent + [(TONE * 8000, True)] * 40, 0.3).verdict == "tone"
    # A tone in a quarter of the loud frames is not one: speech can hold a steady vowel.
    mixed = silent + ([(TONE * 8000, True)] + [(voice(8000), True)] * 3) * 10
    assert fed(mixed, 0.3).verdict == "audible"
    # Speech the gate did not hear, but would 20 dB louder (noise at -58 dBFS RMS): quiet.
    quiet = silent + [(voice(40), False)] * 40
    v = fed(quiet, 0.004)
    assert v.verdict == "too quiet" and v.louder_speech_fraction > 0.5
    # Heard at its level as much as 20 dB louder: audible.
    v = fed(speech, 0.5)
    assert v.verdict == "audible" and v.ok and v.hint == ""
    rms = np.sqrt(np.mean(np.round(voice(8000)) ** 2))
    assert v.speech_fraction == 0.8 and abs(v.speech_rms_dbfs - db(rms / 32768)) < 0.01


def test_dominant_tone():
    from nsaudio.meter import dominant_tone

    hz, share = dominant_tone(TONE * 10000, 16000)
    assert abs(hz - 440) < 5 and share > 0.99
    assert dominant_tone(voice(8000), 16000)[1] < 0.5
    assert dominant_tone(ZEROS, 16000) == (0.0, 0.0)


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


# -- the verdict predicts what stream and the gate do ---------------------------------------


@pytest.fixture(scope="module")
def server():
    from nsaudio.server.app import LocalServer

    with LocalServer() as srv:
        yield srv


def stream_text(server, path, *args):
    """What ``stream`` prints of ``path`` (stdout) and says (stderr). Speech that comes back
    as no words may end the run with exit 1 (untranscribed)."""
    proc = run_cli(
        "stream", str(path), "--base-url", server.base_url, "--pace", "0", *args
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    return proc.stdout.decode().strip(), proc.stderr.decode()


@pytest.mark.server
@pytest.mark.parametrize(
    "case, expected",
    [
        ("speech", "audible"),
        ("quiet fixture", "audible"),
        ("52 dB down", "too quiet"),
        ("sine", "tone"),
        ("silence", "silence"),
    ],
)
def test_the_verdict_says_what_stream_and_the_gate_will_do(server, case, expected, tmp_path):
    from .conftest import wer

    said = "the children are playing in the garden"
    path = {
        "speech": lambda: FIXTURES / "speech_16000_mono_int16.wav",
        "quiet fixture": lambda: FIXTURES / "quiet_16000_mono_int16.wav",
        "52 dB down": lambda: attenuated(tmp_path, 52),
        "sine": lambda: sine(tmp_path),
        "silence": lambda: FIXTURES / "silence_16000_mono_int16.wav",
    }[case]()
    if case == "quiet fixture":
        said = next(e["text"] for e in MANIFEST if e["kind"] == "quiet")
    verdict = json.loads(run_cli("check", str(path), "--json").stdout)["verdict"]
    assert verdict == expected
    if verdict == "audible":
        text, _ = stream_text(server, path)
        assert wer(said, text) <= 0.2, text  # sent, and heard
    elif verdict == "too quiet":
        # Where no words are to come, a shorter wait for them (generous: a loaded machine).
        text, _ = stream_text(server, path, "--drain-timeout", "8")
        assert wer(said, text) > 0.3, text  # cut up by the VAD, misheard or missed
    else:
        # A tone or silence: no words; the gate sends a tone as speech, nothing of silence.
        text, gated = stream_text(server, path, "--gate", "--drain-timeout", "8")
        assert text == ""
        assert ("sent nothing of" in gated) == (verdict == "silence"), gated

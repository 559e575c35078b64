"""``nsaudio convert`` through a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from nsaudio.stages import to_int16

from ..conftest import (
    FIXTURES,
    MANIFEST,
    assert_one_line_error,
    best_lag,
    fixture_ids,
    reference,
    run_cli,
    snr_db,
)

AUDIBLE = [f for f in MANIFEST if f["kind"] != "silence"]


@pytest.mark.parametrize("fmt, rate", [("pcm_16k", 16000), ("pcm_8k", 8000)])
@pytest.mark.parametrize("entry", AUDIBLE, ids=fixture_ids(AUDIBLE))
def test_every_fixture_matches_one_shot_soxr(entry, fmt, rate, tmp_path):
    out = tmp_path / "out.raw"
    proc = run_cli("convert", str(FIXTURES / entry["file"]), str(out), "--format", fmt)
    assert proc.returncode == 0, proc.stderr.decode()
    got = np.fromfile(out, "<i2").astype(np.float32) / 32768
    ref = reference(FIXTURES / entry["file"], rate)
    assert abs(len(got) - len(ref)) <= 1
    n = min(len(got), len(ref))
    assert best_lag(ref[:n], got[:n]) == 0
    # Compared with the reference rounded to int16 as well: the quiet fixture (-50 dBFS) sits
    # so close to int16's own quantisation floor that no 16-bit output reaches 50 dB against
    # the float reference; against the rounded one, a 1-LSB slip would still show.
    ref_q = to_int16(ref[:n]).astype(np.float32) / 32768
    assert np.max(np.abs(ref_q - got[:n])) <= 1 / 32768
    assert snr_db(ref_q, got[:n]) >= 50


def test_wav_output_is_16_bit_mono_at_the_format_rate(tmp_path):
    out = tmp_path / "out.wav"
    src = FIXTURES / "speech_44100_stereo_int16.wav"
    assert run_cli("convert", str(src), str(out), "--format", "pcm_8k").returncode == 0
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    raw = tmp_path / "out.pcm"
    assert run_cli("convert", str(src), str(raw), "--format", "pcm_8k").returncode == 0
    np.testing.assert_array_equal(sf.read(str(out), dtype="int16")[0], np.fromfile(raw, "<i2"))


def test_stdout_and_stdin(tmp_path):
    src = FIXTURES / "speech_16000_stereo_int16.wav"
    file_out = tmp_path / "a.raw"
    assert run_cli("convert", str(src), str(file_out)).returncode == 0
    proc = run_cli("convert", "-", "-", input=src.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == file_out.read_bytes()
    flac = FIXTURES / "speech_48000_stereo_flac16.flac"
    assert run_cli("convert", str(flac), str(file_out)).returncode == 0
    assert run_cli("convert", "-", "-", input=flac.read_bytes()).stdout == file_out.read_bytes()


def test_raw_input_and_channel_pick(tmp_path):
    src = FIXTURES / "speech_16000_stereo_int16.wav"
    data, _ = sf.read(str(src), dtype="int16")
    raw_in = tmp_path / "in.raw"
    data.tofile(raw_in)
    proc = run_cli("convert", str(raw_in), "-", "--raw", "16000:2:s16le", "--channel", "1")
    assert proc.returncode == 0, proc.stderr.decode()
    np.testing.assert_array_equal(np.frombuffer(proc.stdout, "<i2"), data[:, 1])


def bad_inputs(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 10)
    (tmp_path / "cut.wav").write_bytes((FIXTURES / "speech_16000_mono_int16.wav").read_bytes()[:30])
    (tmp_path / "garbage.flac").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "adir").mkdir()
    return {
        "empty file": [str(tmp_path / "empty.wav")],
        "text file": [str(tmp_path / "text.wav")],
        "truncated header": [str(tmp_path / "cut.wav")],
        "corrupt flac": [str(tmp_path / "garbage.flac")],
        "directory": [str(tmp_path / "adir")],
        "missing path": [str(tmp_path / "nope.wav")],
    }


@pytest.mark.parametrize(
    "case",
    ["empty file", "text file", "truncated header", "corrupt flac", "directory", "missing path"],
)
def test_bad_input_is_one_line_and_exit_2(case, tmp_path):
    (src,) = bad_inputs(tmp_path)[case]
    out = tmp_path / "out.raw"
    assert_one_line_error(run_cli("convert", src, str(out)))
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "pcm_44k"],
        ["--channel", "3"],
        ["--raw", "16000:1"],
        ["--quality", "best"],
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, tmp_path):
    src = str(FIXTURES / "speech_16000_mono_int16.wav")
    line = assert_one_line_error(run_cli("convert", src, str(tmp_path / "o.raw"), *args))
    assert "Traceback" not in line


def test_bad_output_names(tmp_path):
    src = str(FIXTURES / "speech_16000_mono_int16.wav")
    assert "must end in" in assert_one_line_error(run_cli("convert", src, str(tmp_path / "o.mp3")))
    assert "cannot write" in assert_one_line_error(
        run_cli("convert", src, str(tmp_path / "no" / "o.wav"))
    )


def test_bad_stdin(tmp_path):
    assert "--raw" in assert_one_line_error(
        run_cli("convert", "-", "-", input=b"plain text, not audio")
    )
    assert "empty" in assert_one_line_error(run_cli("convert", "-", "-", input=b""))


def test_verbosity_flags_before_or_after_the_command(tmp_path):
    src = str(FIXTURES / "speech_16000_mono_int16.wav")
    for args in (["-v", "convert", src, "-"], ["convert", "-v", src, "-"]):
        proc = run_cli(*args)
        assert proc.returncode == 0 and b"frames at" in proc.stderr
    assert run_cli("-q", "convert", src, "-").stderr == b""


def test_convert_imports_only_what_it_runs(tmp_path):
    # The command line imports the chosen command's module alone: a convert never loads the
    # streaming client, the service's REST client or the other commands, nor, for a plain
    # 16-bit WAV to a raw file, libsndfile and the readers it does not use.
    src = str(FIXTURES / "speech_16000_mono_int16.wav")
    code = (
        "import sys\n"
        "from nsaudio.cli.main import main\n"
        f"assert main(['convert', {src!r}, {str(tmp_path / 'o.raw')!r}]) == 0\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    loaded = set(proc.stdout.decode().split())
    assert "nsaudio.cli.convert" in loaded
    assert "nsaudio.sources.wav_file" in loaded  # a plain 16-bit WAV: read without libsndfile
    for module in (
        "soundfile",
        "_soundfile",
        "nsaudio.sources.native_stderr",
        "nsaudio.sources.stdin",
        "nsaudio.cli.stream",
        "nsaudio.cli.check",
        "nsaudio.cli.service",
        "nsaudio.sinks.neuralspace",
        "requests",
        "websockets",
        "websocket",
    ):
        assert module not in loaded, module
    assert (tmp_path / "o.raw").stat().st_size == 2 * sf.info(src).frames


def test_help_still_lists_every_command():
    out = run_cli("--help").stdout.decode()
    for name in ("stream", "convert", "serve", "languages", "devices", "check"):
        assert f"    {name} " in out, name
    assert "invalid choice" in run_cli("bogus").stderr.decode()


def test_a_closed_output_pipe_exits_141_and_claims_only_what_was_written():
    # `nsaudio convert LONG.wav - | head -c 100`, with this test as `head`: 26 s of audio is
    # 832 kB of PCM, far more than the pipe holds, so a write fails once the reader is gone.
    import fcntl

    src = str(FIXTURES / "two_utterances_16000_mono_int16.wav")
    total = sf.info(src).frames
    for verbose in ([], ["-v"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "nsaudio", *verbose, "convert", src, "-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        pipe_bytes = fcntl.fcntl(proc.stdout.fileno(), 1032)  # F_GETPIPE_SZ
        got = b""
        while len(got) < 100:  # unbuffered, as head reads: no more than it takes
            chunk = os.read(proc.stdout.fileno(), 100 - len(got))
            assert chunk, "the output ended before 100 bytes"
            got += chunk
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 141, err
        assert "Traceback" not in err and "error" not in err, err
        if not verbose:
            assert err == ""
            continue
        (line,) = err.splitlines()
        written = int(line.split("wrote ")[1].split(" frames")[0])
        # What it claims went into the pipe: at most what the pipe held plus what was read.
        assert 0 < 2 * written <= pipe_bytes + 100 < 2 * total, (line, pipe_bytes)
        assert "the output was closed" in line


def test_a_device_or_a_pipe_takes_raw_pcm_whatever_its_name(tmp_path):
    src = str(FIXTURES / "speech_16000_mono_int16.wav")
    proc = run_cli("convert", src, "/dev/null")
    assert proc.returncode == 0, proc.stderr.decode()
    fifo = tmp_path / "audio.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    proc = run_cli("convert", src, str(fifo))
    data = reader.communicate(timeout=60)[0]
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(data) == 2 * sf.info(src).frames
    assert not [p for p in tmp_path.iterdir() if p.name != "audio.fifo"]  # no temporary left

"""Issue 5: every case of the bad-audio corpus, as a file argument and piped on stdin.

Each case ends within a second either with exit 2 and one line ``nsaudio: error: ...`` (and
no output file left behind), or with exit 0 and sane audio: the 16-bit test sine bit for bit
where the container is PCM, a 440 Hz tone at about the right level where it is lossy or cut.
Every case runs in-process (fast); a representative subset also runs as a real subprocess
through a real pipe, and ``nsaudio stream`` must refuse every unreadable file before it tries
the network.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nsaudio.stages import to_int16

from ..conftest import assert_one_line_error, run_cli
from .corpus import BY_ID, CASES, ERROR, RATE, Case, pcm16, s24
from .support import (
    SECOND,
    SLACK,
    assert_error,
    assert_in_time,
    assert_success,
    read_pcm,
    run_main,
)

MODES = ("file", "stdin")


def outcome(case: Case, mode: str) -> str:
    return case.file if mode == "file" else case.stdin


def write(case: Case, tmp_path: Path) -> Path:
    path = tmp_path / f"{case.id}.{case.ext}"
    path.write_bytes(case.make())
    return path


def dominant_hz(x: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def check_audio(case: Case, got: np.ndarray) -> None:
    """The output of a case that plays is the audio that is there, and nothing else."""
    if case.frames is not None:
        assert len(got) == case.frames
    if case.check == "exact":
        np.testing.assert_array_equal(got, np.frombuffer(pcm16(), "<i2")[: len(got)])
    elif case.check == "s24":
        raw = np.frombuffer(s24(), np.uint8).reshape(-1, 3).astype(np.int32)
        v = raw[:, 0] | raw[:, 1] << 8 | raw[:, 2] << 16
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        expected = to_int16((v / 2**23).astype(np.float32))[: len(got)]
        assert np.abs(got.astype(np.int32) - expected).max() <= 1
    elif case.check == "empty":
        assert len(got) == 0
    else:  # "sine": a lossy, cut or damaged decode of a 440 Hz tone (amplitude 0.3 to 0.5)
        assert len(got) >= RATE // 4, len(got)
        assert abs(dominant_hz(got) - 440) < 5
        rms = float(np.sqrt(np.mean((got / 32768.0) ** 2)))
        assert 0.15 < rms < 0.45, rms
        assert np.abs(got.astype(np.int32)).max() < 32000  # no garbage at full scale


def judge(case: Case, mode: str, lines: list[str], out: Path) -> None:
    if outcome(case, mode) == ERROR:
        assert not out.exists(), "a failed run must not leave its output behind"
        return
    got = read_pcm(out)
    check_audio(case, got)
    if case.warns:
        assert any("cannot decode past" in line for line in lines), lines


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_convert_in_process(case, mode, tmp_path, capsys, monkeypatch):
    src = write(case, tmp_path)
    out = tmp_path / "out.raw"
    if mode == "file":
        run = run_main(["convert", str(src), str(out)], capsys, monkeypatch)
    else:
        run = run_main(["convert", "-", str(out)], capsys, monkeypatch, stdin=src.read_bytes())
    assert_in_time(run.seconds)
    if outcome(case, mode) == ERROR:
        line = assert_error(run)
        if mode == "stdin":
            assert "stdin" in line and "/tmp" not in line  # not the spool file's name
        lines = [line]
    else:
        lines = assert_success(run)
    judge(case, mode, lines, out)


# Through a real pipe and a fresh interpreter: a few of every kind.
SUBPROCESS = [
    "data_size_ffffffff",
    "both_sizes_zero",
    "channels_1025",
    "rate_4294967295",
    "int16_cut_mid_sample",
    "fmt_size_huge",
    "ms_adpcm",
    "random_mp3",
    "random_after_ID3",
    "text_named_wav",
    "empty_flac",
    "flac_cut_half",
    "mp3_damaged_middle",
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case_id", SUBPROCESS)
def test_convert_subprocess(case_id, mode, tmp_path):
    case = BY_ID[case_id]
    src = write(case, tmp_path)
    out = tmp_path / "out.raw"
    t0 = time.monotonic()
    if mode == "file":
        proc = run_cli("convert", str(src), str(out), timeout=30)
    else:
        proc = run_cli("convert", "-", str(out), input=src.read_bytes(), timeout=30)
    assert_in_time(time.monotonic() - t0)
    if outcome(case, mode) == ERROR:
        lines = [assert_one_line_error(proc)]
    else:
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert all(line.startswith("nsaudio: WARNING: ") for line in lines), err
    judge(case, mode, lines, out)


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    """A port that accepts connections and never answers: whoever connects is caught."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def connections(server: socket.socket) -> int:
    count = 0
    while select.select([server], [], [], 0)[0]:
        conn, _ = server.accept()
        conn.close()
        count += 1
    return count


UNREADABLE = [c for c in CASES if c.file == ERROR]
STREAM_SUBPROCESS = [
    "channels_1025",
    "rate_4294967295",
    "random_mp3",
    "empty_wav",
    "flac_garbage_frames",
]


@pytest.mark.parametrize("case", UNREADABLE, ids=[c.id for c in UNREADABLE])
def test_stream_refuses_before_the_network(case, tmp_path, listener, capsys, monkeypatch):
    src = write(case, tmp_path)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    connections(listener)
    monkeypatch.delenv("NS_API_KEY", raising=False)
    run = run_main(["stream", str(src), "--base-url", url, "--pace", "0"], capsys, monkeypatch)
    assert_error(run)
    assert connections(listener) == 0, "the audio must be refused before any connection"
    assert_in_time(run.seconds)


@pytest.mark.parametrize("case_id", STREAM_SUBPROCESS)
def test_stream_refuses_before_the_network_subprocess(case_id, tmp_path, listener):
    src = write(BY_ID[case_id], tmp_path)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    connections(listener)
    t0 = time.monotonic()
    proc = run_cli("stream", str(src), "--base-url", url, "--pace", "0", timeout=30)
    seconds = time.monotonic() - t0
    assert_one_line_error(proc)
    assert connections(listener) == 0, "the audio must be refused before any connection"
    assert seconds < SECOND * SLACK, f"took {seconds:.2f} s"


def test_stdin_spool_is_removed_even_when_no_audio_is_read(tmp_path):
    """FLAC on stdin is spooled to a temporary file, which must go however the run ends: here
    the language is refused after the source is open, before any audio is read."""
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    for case_id in ("flac_cut_half", "random_after_fLaC"):
        proc = run_cli(
            "stream", "-", "--base-url", "http://127.0.0.1:9", "--language", "xx",
            input=BY_ID[case_id].make(), timeout=30, env={"TMPDIR": str(spool_dir)},
        )  # fmt: skip
        assert_one_line_error(proc)
        assert list(spool_dir.iterdir()) == []

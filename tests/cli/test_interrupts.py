"""Ctrl-C always works: SIGINT to ``nsaudio`` reading a pipe that is open but idle.

The writer of stdin is an ``os.pipe`` this test keeps open and silent, so only the
interrupt can end the run. Bounds are generous (the target is under a second).
"""

from __future__ import annotations

import array
import fcntl
import os
import signal
import subprocess
import sys
import termios
import time

import pytest

from nsaudio.server.app import LocalServer

from ..conftest import FIXTURES, ROOT

pytestmark = pytest.mark.server

WAV = (FIXTURES / "speech_16000_mono_int16.wav").read_bytes()
#: What the writer sends before it falls silent: a WAV header and half a second of silence,
#: or half a second of headerless silence. Silence, so that the clean stop has no speech
#: whose last result it must wait for: what is timed is the end of the wait on the pipe.
PREFIXES = {
    "wav": ([], WAV[:44] + bytes(16000)),
    "raw": (["--raw", "16000:1:s16le"], bytes(16000)),
}
EXIT_WITHIN = 5.0


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


def start_on_idle_pipe(*args: str, prefix: bytes) -> tuple[subprocess.Popen, int]:
    """``nsaudio ARGS`` with stdin a pipe holding ``prefix``, its writer kept open.

    Returns once nsaudio has read all of ``prefix``: the audio is read by the pipeline,
    so it is running, its Ctrl-C handling in place, and waiting on the idle pipe.
    """
    read_end, write_end = os.pipe()
    env = {k: v for k, v in os.environ.items() if k not in ("NS_API_KEY", "NS_BASE_URL")}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nsaudio", *args],
            stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
        )  # fmt: skip
        os.write(write_end, prefix)
        deadline = time.monotonic() + 60
        while unread(read_end) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    time.sleep(0.5)
    return proc, write_end


def unread(fd: int) -> int:
    """Bytes waiting in a pipe."""
    n = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, n)
    return n[0]


def interrupt(
    proc: subprocess.Popen, write_end: int, times: int = 1, signum: int = signal.SIGINT
) -> tuple[str, float]:
    """SIGINT, or ``signum`` (``times`` of them, 0.3 s apart); returns stderr and the
    seconds to exit."""
    try:
        assert proc.poll() is None, proc.communicate()[1].decode()
        t = time.monotonic()
        for i in range(times):
            if i:
                time.sleep(0.3)
            proc.send_signal(signum)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"still running 30 s after SIGINT: {err.decode()}")
        return err.decode(), time.monotonic() - t
    finally:
        os.close(write_end)


def assert_clean(err: str) -> None:
    assert "Traceback" not in err, err
    assert all(line.startswith("nsaudio: ") for line in err.splitlines() if line.strip()), err


@pytest.mark.parametrize("kind", PREFIXES)
def test_ctrl_c_stops_a_stream_waiting_on_an_idle_pipe(server, kind, tmp_path):
    args, prefix = PREFIXES[kind]
    out = tmp_path / "out.jsonl"
    proc, w = start_on_idle_pipe(
        "stream", "-", "--base-url", server.base_url, "--output", "jsonl", "-o", str(out), *args,
        prefix=prefix,
    )  # fmt: skip
    err, seconds = interrupt(proc, w)
    assert proc.returncode == 130, err
    assert seconds < EXIT_WITHIN, (seconds, err)
    assert "stopping (Ctrl-C again to abort)" in err
    assert_clean(err)


@pytest.mark.parametrize(
    "signum, words",
    [
        (signal.SIGINT, "nsaudio: stopping (Ctrl-C again to abort)"),
        (signal.SIGTERM, "nsaudio: terminated (SIGTERM): stopping; a second SIGTERM aborts"),
    ],
)
def test_each_signal_says_what_it_is_and_no_blank_line_off_a_terminal(server, signum, words):
    # stderr is a pipe here, as in a log file: no ^C echo to step over, so no blank line.
    _, prefix = PREFIXES["wav"]
    proc, w = start_on_idle_pipe("stream", "-", "--base-url", server.base_url, prefix=prefix)
    err, _ = interrupt(proc, w, signum=signum)
    assert proc.returncode == 130, err
    assert err.splitlines()[0] == words, err
    assert "" not in err.splitlines(), err
    assert_clean(err)


def test_a_second_ctrl_c_aborts_a_stream_on_an_idle_pipe(server):
    _, prefix = PREFIXES["wav"]
    proc, w = start_on_idle_pipe("stream", "-", "--base-url", server.base_url, prefix=prefix)
    err, seconds = interrupt(proc, w, times=2)
    assert proc.returncode == 130, err
    assert seconds < 15, (seconds, err)  # the abort does not wait for the drain
    assert_clean(err)


@pytest.mark.parametrize("kind", PREFIXES)
def test_ctrl_c_stops_convert_reading_an_idle_pipe(kind, tmp_path):
    args, prefix = PREFIXES[kind]
    out = tmp_path / "out.wav"
    proc, w = start_on_idle_pipe("convert", "-", str(out), *args, prefix=prefix)
    err, seconds = interrupt(proc, w)
    assert proc.returncode == 130, err
    assert seconds < EXIT_WITHIN, (seconds, err)
    assert_clean(err)
    assert list(tmp_path.iterdir()) == []  # an interrupted conversion leaves nothing


def test_an_interrupted_convert_never_removes_an_output_that_is_not_a_regular_file(tmp_path):
    """A FIFO (or /dev/stdout, /dev/null) is written as it is, and an abort leaves it be."""
    fifo = tmp_path / "out.raw"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that nsaudio's open() returns
    try:
        args, prefix = PREFIXES["raw"]
        proc, w = start_on_idle_pipe("convert", "-", str(fifo), *args, prefix=prefix)
        err, _ = interrupt(proc, w)
    finally:
        os.close(reader)
    assert proc.returncode == 130, err
    assert_clean(err)
    assert [p.name for p in tmp_path.iterdir()] == ["out.raw"] and fifo.is_fifo()


def test_on_a_terminal_the_message_starts_below_the_echoed_ctrl_c():
    from nsaudio.cli.interrupts import stopping_message

    assert stopping_message(signal.SIGINT, True) == "\nnsaudio: stopping (Ctrl-C again to abort)\n"
    assert stopping_message(signal.SIGINT, False) == "nsaudio: stopping (Ctrl-C again to abort)\n"
    assert "SIGTERM" in stopping_message(signal.SIGTERM, True)

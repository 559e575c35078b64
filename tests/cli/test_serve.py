"""``nsaudio serve`` in the foreground, as someone running it sees it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from ..conftest import FIXTURES, ROOT, run_cli

pytestmark = pytest.mark.server


def test_one_line_per_session_start_and_end_with_seconds_and_results():
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "serve", "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline().decode()
        url = re.search(r"on (http://\S+)", ready)
        assert url, ready
        streamed = run_cli(
            "stream", str(FIXTURES / "speech_16000_mono_int16.wav"),
            "--base-url", url.group(1), "--pace", "0",
        )  # fmt: skip
        assert streamed.returncode == 0, streamed.stderr.decode()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err_bytes = proc.communicate(timeout=30)
    lines = err_bytes.decode().splitlines()
    stamp = r"nsaudio: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO: "
    opened = [line for line in lines if re.match(stamp + "session \\S+ open from 127.0.0.1:", line)]
    closed = [
        line
        for line in lines
        if re.match(
            stamp + r"session \S+ closed \(code 1000\): \d+\.\d\d s of audio, [1-9]\d* results$",
            line,
        )
    ]
    assert len(opened) == 1 and len(closed) == 1, lines
    assert " en pcm_16k " in opened[0]
    assert not any("redacted" in line or "/voice/" in line for line in lines), lines
    assert proc.returncode == 0

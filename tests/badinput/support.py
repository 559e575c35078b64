"""Running ``nsaudio`` in-process on corpus bytes, and judging what it did."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nsaudio.cli.main import main

#: Every case must be over within a second; a loaded machine gets this factor of slack.
SECOND = 1.0
SLACK = float(os.environ.get("NSAUDIO_TIME_SLACK", "3"))


@dataclass
class Run:
    status: int
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_main(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: bytes | None = None,
) -> Run:
    """``nsaudio ARGV`` in this process, ``stdin`` (if given) as its standard input."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    capsys.readouterr()
    t0 = time.monotonic()
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse
        status = int(exit_.code or 0)
    seconds = time.monotonic() - t0
    return Run(status, capsys.readouterr().err, seconds)


def assert_in_time(seconds: float) -> None:
    assert seconds < SECOND * SLACK, f"took {seconds:.2f} s"


def assert_error(run: Run) -> str:
    """Exit 2, one line on stderr, no traceback."""
    assert run.status == 2, (run.status, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert len(run.lines) == 1 and run.lines[0].startswith("nsaudio: error: "), run.stderr
    return run.lines[0]


def assert_success(run: Run) -> list[str]:
    """Exit 0, and nothing on stderr but nsaudio's own warnings (no library chatter)."""
    assert run.status == 0, (run.status, run.stderr)
    assert all(line.startswith("nsaudio: WARNING: ") for line in run.lines), run.stderr
    return run.lines


def read_pcm(path: Path) -> np.ndarray:
    return np.fromfile(path, "<i2")


class Hang(BaseException):
    """Raised by ``time_limit``: a BaseException, so no ``except Exception`` swallows it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail, rather than hang, if the body runs longer than ``seconds`` (main thread only)."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

"""The live status line of ``nsaudio stream``: its rendering, and the real CLI on a pseudo-terminal.

What a terminal shows is checked by replaying the bytes written to the pty through pyte (a
VT100 emulator): a torn line or a status row left behind shows on its final screen. No
timing is asserted; the runs are short and read to the end.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

import numpy as np
import pyte
import pytest
import wcwidth

from nsaudio.cli.status import StatusLine
from nsaudio.cli.status_fields import (
    ChannelLevel,
    Fields,
    StreamProgress,
    clock,
    display_width,
    fit,
    printable,
    render,
    source_seconds,
)
from nsaudio.cli.stream_run import status_line
from nsaudio.neuralspace.protocol import TranscriptResult
from nsaudio.server.app import LocalServer
from nsaudio.sinks.session import SessionCounters

from ..conftest import MANIFEST, ROOT, fixture_path, run_cli

TWO = next(f for f in MANIFEST if f["kind"] == "two_utterances")
HIDE_CURSOR = b"\x1b[?25l"


# -- rendering, pure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("abc", 3),
        ("", 0),
        ("नमस्ते", 4),  # virama and vowel sign E are combining: 0 cells
        ("مَرْحَبًا", 5),  # Arabic with harakat: the marks take no cell
        ("日本語", 6),
        ("ｆｕｌｌ", 8),  # full-width Latin
        ("e\u0301", 1),  # e + combining acute
        ("a\u200bb", 2),  # zero-width space (a format character)
        ("한국어", 6),
    ],
)
def test_display_width_counts_cells(text, cells):
    assert display_width(text) == cells


def test_fit_cuts_to_cells_and_keeps_marks_with_their_base():
    assert fit("hello world", 5) == "hello"
    assert fit("hello world", 5, tail=True) == "world"
    assert fit("日本語", 5) == "日本"  # the third would straddle the edge
    assert fit("ab日", 3) == "ab"
    assert fit("e\u0301e\u0301x", 2) == "e\u0301e\u0301"
    assert fit("नमस्ते", 2, tail=True) == "स्ते"
    assert fit("\u0301abc", 2, tail=True) == "bc"
    assert fit("日本語", 3, tail=True) == "語"
    assert fit("anything", 0) == ""
    for text in ("नमस्ते दुनिया", "مَرْحَبًا بِالْعَالَم", "日本語のテキスト", "mixed 日本 text"):
        for width in range(12):
            assert display_width(fit(text, width)) <= width
            assert display_width(fit(text, width, tail=True)) <= width


def test_printable_turns_control_characters_into_spaces():
    assert printable("a\nb\x1b[2Jc\td") == "a b [2Jc d"
    assert printable("नमस्ते") == "नमस्ते"


def test_clock():
    assert [clock(s) for s in (0, 7.9, 65, 3723)] == ["0:00", "0:07", "1:05", "1:02:03"]


FILE = Fields(
    position=12.3, duration=26.0, eta=13.7, level_db=-23.44, speech=True, sent=11.2,
    skipped=None, reconnects=0, partial_age=0.42,
)  # fmt: skip


def test_render_a_file():
    assert render(FILE) == (
        "[#####.....] 0:12/0:26 ETA 0:13  -23.4 dBFS [######....] speech   sent  11.2 s  "
        "partial  0.4 s ago"
    )


def test_render_live_input_with_the_gate_and_reconnects():
    live = Fields(
        position=75.0, duration=None, eta=None, level_db=-100.0, speech=False, sent=31.0,
        skipped=44.0, reconnects=2, partial_age=None,
    )  # fmt: skip
    assert render(live) == (
        "live  1:15  -99.9 dBFS [..........] silence  sent  31.0 s  skipped  44.0 s  reconnects 2"
    )


def test_render_a_session_per_channel():
    both = ChannelLevel("agent", -23.44, True), ChannelLevel("customer", -120.0, False)
    split = Fields(
        position=12.0, duration=26.0, eta=13.0, level_db=-23.4, speech=True, sent=22.4,
        skipped=None, reconnects=0, partial_age=None, channels=both,
    )  # fmt: skip
    assert render(split) == (
        "[#####.....] 0:12/0:26 ETA 0:13  agent -23.4 dBFS speech   customer -99.9 dBFS "
        "silence  sent  22.4 s"
    )


def test_render_keeps_its_fields_in_place():
    """Fixed-width fields: the line does not jitter as the numbers change."""

    def at(p, level, speech, age):
        eta = None if p < 1 else 26 - p
        return Fields(p, 26.0, eta, level, speech, p, 0.0, 0, age)

    lines = [render(at(*case)) for case in [(0.0, -100.0, False, 0.0), (5.5, -3.2, True, 9.9)]]
    lines.append(render(at(25.9, -45.0, False, 0.1)))
    assert len({len(line) for line in lines}) == 1, lines
    for word in ("ETA", "dBFS", "sent", "skipped", "partial"):
        assert len({line.index(word) for line in lines}) == 1, (word, lines)


class _Sink:
    def __init__(self, sent, reconnects=0):
        self.counters = SessionCounters(samples_sent=sent, reconnects=reconnects)


class _Lane:
    def __init__(self, name, gate, sink):
        self.name, self.gate, self.sink = name, gate, sink


class _Watch:
    last_partial = None


def test_progress_reads_the_stream_from_its_sessions():
    """One session: its gate and sink; several: as far as every session has sent, totals of
    what they sent and reconnected, and each named session's own level and label."""
    from .test_status_fields import fed_gate

    one = [_Lane(None, fed_gate([0.3] * 40), _Sink(24000))]
    fields = StreamProgress(
        lanes=one, rate=16000, duration=4.0, pace=0, gated=False, partials=True,
        watch=_Watch(), now=0.0,
    )(0.5)  # fmt: skip
    assert (fields.position, fields.sent, fields.reconnects) == (1.5, 1.5, 0)
    assert fields.speech and fields.level_db > -20 and fields.partial_age is None
    two = [*one, _Lane("b", fed_gate([0.0] * 40), _Sink(16000, reconnects=2))]
    fields = StreamProgress(
        lanes=two, rate=16000, duration=4.0, pace=0, gated=False, partials=True,
        watch=_Watch(), now=0.0,
    )(0.5)  # fmt: skip
    assert (fields.position, fields.sent, fields.reconnects) == (1.0, 2.5, 2)
    (b,) = fields.channels  # the named sessions
    assert b.name == "b" and b.level_db < -90 and not b.speech
    with pytest.raises(ValueError, match="at least one session"):
        StreamProgress(
            lanes=[], rate=16000, duration=None, pace=0, gated=False, partials=False,
            watch=_Watch(), now=0.0,
        )  # fmt: skip


class _File:
    live, rate = False, 16000

    def __init__(self, frames):
        self.frames = frames


def test_duration_is_the_file_length_or_the_limit():
    assert source_seconds(_File(32000), None) == 2.0
    assert source_seconds(_File(32000), 1.5) == 1.5
    assert source_seconds(_File(None), None) is None
    live = _File(32000)
    live.live = True
    assert source_seconds(live, None) is None


# -- the owner of the terminal, in process, on a pty ----------------------------------------


class Pty:
    """A pseudo-terminal of ``cols`` x ``rows``; ``screen()`` replays what was written."""

    def __init__(self, cols=60, rows=20):
        self.cols, self.rows = cols, rows
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.data = b""

    def read_available(self):
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def screen(self):
        screen = pyte.Screen(self.cols, self.rows)
        pyte.ByteStream(screen).feed(self.data)
        return screen

    def lines(self):
        return [line.rstrip() for line in self.screen().display if line.strip()]

    def close(self):
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pty_err():
    pty = Pty()
    err = open(os.dup(pty.slave), "w", encoding="utf-8")  # noqa: SIM115
    yield pty, err
    err.close()
    pty.close()


def fixed_fields(now):
    return FILE


def drawn_rows(data: bytes) -> list[str]:
    """Every row drawn, split where the cursor goes to a new row or column 0."""
    text = data.decode().replace("\x1b[?25l", "").replace("\x1b[?25h", "")
    for sep in ("\x1b[A", "\x1b[K", "\r", "\n"):
        text = text.replace(sep, "\0")
    return [row for row in text.split("\0") if row]


@pytest.mark.parametrize(
    "partial",
    [
        "यह एक बहुत लंबा आंशिक परिणाम है जो टर्मिनल की चौड़ाई से अधिक है और आगे भी",
        "مَرْحَبًا بِالْعَالَمِ هَذِهِ نَتِيجَةٌ جُزْئِيَّةٌ طَوِيلَةٌ جِدًّا لَا تَتَّسِعُ لَهَا الشَّاشَةُ الصَّغِيرَةُ أَبَدًا",
        "これは端末の幅よりも長い途中経過のテキストです。日本語のテキスト",
    ],
    ids=["hindi", "arabic", "japanese"],
)
def test_a_long_partial_and_the_status_never_wrap(pty_err, partial):
    """Measured with wcwidth (pyte's own dependency), not with the code under test."""
    pty, err = pty_err
    status = StatusLine(err)
    status.run(fixed_fields)
    status.partial(partial)
    status.close()
    pty.read_available()
    rows = drawn_rows(pty.data)
    assert any(row.startswith("...") for row in rows), rows  # the partial, its end kept
    assert any(row.startswith("[#####.....] 0:12/0:26") for row in rows), rows
    for row in rows:
        assert 0 <= wcwidth.wcswidth(row) <= pty.cols - 1, row
    shown = next(row for row in rows if row.startswith("..."))
    assert partial.endswith(shown[3:]) and wcwidth.wcswidth(shown) >= pty.cols - 3
    screen = pty.screen()
    assert not [line for line in screen.display if line.strip()]  # both rows erased
    assert not screen.cursor.hidden


def test_the_live_rows_on_the_emulated_screen(pty_err):
    pty, err = pty_err
    status = StatusLine(err)
    status.run(fixed_fields)
    status.partial("これは端末の幅よりも長い途中経過のテキストです。日本語のテキスト")
    pty.read_available()
    rows = pty.lines()
    assert len(rows) == 2, rows  # one row each: nothing wrapped
    assert rows[0].startswith("...") and rows[0].endswith("日本語のテキスト")
    assert rows[1].startswith("[#####.....] 0:12/0:26")
    status.close()


def test_log_records_and_transcript_lines_scroll_above_the_live_rows(pty_err):
    pty, err = pty_err
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("nsaudio: %(levelname)s: %(message)s"))
    log = logging.getLogger("nsaudio")
    saved = log.handlers[:], log.level, log.propagate
    log.handlers[:], log.propagate = [handler], False
    log.setLevel(logging.WARNING)
    try:
        status = StatusLine(err)
        out = open(os.dup(pty.slave), "w", encoding="utf-8")  # noqa: SIM115
        try:
            writer = status.writer("text", out, live=True)
            status.run(fixed_fields)
            assert handler.stream is not err  # records go through the owner now

            def result(text, full):
                return TranscriptResult(full, text, 0.0, 1.0)

            writer.write(result("hello wor", False))
            t = threading.Thread(target=lambda: log.warning("reconnecting (test)"))
            t.start()
            t.join()
            writer.write(result("hello world", True))
            writer.write(result("and the next", False))
            status.close()
            writer.close()
            assert handler.stream is err
        finally:
            out.close()
    finally:
        log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]
    pty.read_available()
    # The record waits for the timer's next redraw (or the close): the order may differ.
    assert sorted(pty.lines()) == ["hello world", "nsaudio: WARNING: reconnecting (test)"]
    assert status.last_partial is not None
    assert not pty.screen().cursor.hidden


def test_its_with_block_puts_the_status_line_away_whichever_way_it_ends(pty_err, monkeypatch):
    pty, err = pty_err
    monkeypatch.setattr(sys, "stderr", err)
    args = argparse.Namespace(no_status=False, quiet=False)
    with pytest.raises(KeyError), status_line(args) as status:
        assert isinstance(status, StatusLine)
        status.run(fixed_fields)
        status.partial("a partial")
        raise KeyError("the run failed")
    with status_line(args) as again:
        again.run(fixed_fields)
    pty.read_available()
    assert b"0:12/0:26" in pty.data  # it was drawn...
    screen = pty.screen()
    assert not [line for line in screen.display if line.strip()]  # ...and erased both times
    assert not screen.cursor.hidden
    for line in (status, again):
        line._thread.join(timeout=5)
        assert not line._thread.is_alive()  # the timer stopped


def test_an_exception_in_the_timer_is_reported_once_and_stops_only_the_status(pty_err):
    pty, err = pty_err
    calls = []

    def broken(now):
        calls.append(now)
        if len(calls) > 2:
            raise ValueError("x")
        return FILE

    status = StatusLine(err, interval=0.01)
    status.run(broken)
    status._thread.join(timeout=30)
    assert not status._thread.is_alive()
    assert isinstance(status.failed, ValueError)
    status.partial("still no drawing")  # the owner is down: nothing more is drawn
    status.close()
    pty.read_available()
    assert pty.lines() == ["nsaudio: WARNING: the status line stopped (ValueError: x)"]
    assert not pty.screen().cursor.hidden


# -- the CLI on a pseudo-terminal -----------------------------------------------------------

pytest_server = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


def cli_on_pty(
    *args,
    cols=100,
    rows=60,
    stderr_pty=True,
    stdout_pty=True,
    interrupt_on=None,
    env=None,
    stdout_closed=False,
):
    """Run ``nsaudio ARGS`` with stdout and/or stderr on a pty; returns (status, pty, stdout
    bytes or None, stderr bytes or None) once it has exited and everything is read.
    ``interrupt_on``: bytes after which to send SIGINT."""
    pty = Pty(cols, rows)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("NS_API_KEY", "NS_BASE_URL")},
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", *args],
        stdin=subprocess.DEVNULL,
        stdout=pty.slave if stdout_pty else subprocess.PIPE,
        stderr=pty.slave if stderr_pty else subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    os.close(pty.slave)
    if stdout_closed:  # its reader went away (| head)
        proc.stdout.close()
    pipes = [p for p in (proc.stdout, proc.stderr) if p is not None and not p.closed]
    got = {p: b"" for p in pipes}
    fds = {pty.master: None, **{p.fileno(): p for p in pipes}}
    deadline = time.monotonic() + 180
    interrupted = False
    try:
        while fds and time.monotonic() < deadline:
            for fd in select.select(list(fds), [], [], 1.0)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: every writer to the pty has gone
                    chunk = b""
                if not chunk:
                    del fds[fd]
                elif fds[fd] is None:
                    pty.data += chunk
                else:
                    got[fds[fd]] += chunk
            if interrupt_on and not interrupted and interrupt_on in pty.data:
                proc.send_signal(signal.SIGINT)
                interrupted = True
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(pty.master)
        for pipe in pipes:
            pipe.close()
    return status, pty, got.get(proc.stdout), got.get(proc.stderr)


def stream_two(server, *args, **options):
    """``nsaudio stream`` of the two-utterance fixture, unpaced, on a pty (see cli_on_pty)."""
    path = str(fixture_path(TWO["file"]))
    return cli_on_pty(
        "stream", path, "--base-url", server.base_url, "--pace", "0", *args, **options
    )


@pytest_server
def test_the_status_line_shows_redraws_and_leaves_a_clean_screen(server):
    status, pty, _, _ = cli_on_pty(
        "stream", str(fixture_path(TWO["file"])), "--base-url", server.base_url, "--pace", "2"
    )
    assert status == 0, pty.data.decode(errors="replace")
    data = pty.data.decode()
    assert data.count("\r\x1b[K[") >= 3  # redrawn again and again
    for field in ("0:06 ETA", "dBFS [", "sent", "partial"):
        assert field in data, field
    screen = pty.screen()
    lines = [line.rstrip() for line in screen.display if line.strip()]
    assert lines == TWO["texts"]  # whole lines, and nothing of the status left
    assert not screen.cursor.hidden


@pytest_server
def test_jsonl_lines_scroll_above_it_whole_and_the_gate_shows_what_it_skipped(
    server, three_in_noise
):
    status, pty, _, _ = cli_on_pty(
        "stream", str(three_in_noise.path), "--base-url", server.base_url, "--pace", "0",
        "--gate", "--output", "jsonl", cols=400, rows=200,
    )  # fmt: skip
    assert status == 0, pty.data.decode(errors="replace")
    assert "skipped" in pty.data.decode()
    lines = [line.rstrip() for line in pty.screen().display if line.strip()]
    summary = [line for line in lines if line.startswith("nsaudio:")]
    results = [json.loads(line) for line in lines if not line.startswith("nsaudio:")]
    assert [r["text"] for r in results if r["full"]] == list(three_in_noise.texts)
    assert len(summary) == 1 and "the gate skipped" in summary[0], summary
    assert lines[-1] == summary[0]  # the summary comes after the status line is gone


@pytest_server
def test_ctrl_c_takes_the_status_line_down_first(server, three_in_noise):
    status, pty, _, _ = cli_on_pty(
        "stream", str(three_in_noise.path), "--base-url", server.base_url,
        interrupt_on=b"sent   1.0 s",  # sending, so the Ctrl-C handling is in place
    )  # fmt: skip
    assert status == 130, pty.data.decode(errors="replace")
    screen = pty.screen()
    lines = [line.rstrip() for line in screen.display if line.strip()]
    # The stop drains: the last results may still come, as plain lines after the message.
    assert lines[0] == "nsaudio: stopping (Ctrl-C again to abort)", lines
    assert not [line for line in lines[1:] if "dBFS" in line or (
        line.startswith("nsaudio") and "stopped before the last results" not in line)]  # fmt: skip
    assert not screen.cursor.hidden


@pytest_server
def test_a_session_per_channel_shows_each_channels_level(server):
    call = next(f for f in MANIFEST if f["kind"] == "conversation")
    status, pty, _, _ = cli_on_pty(
        "stream", str(fixture_path(call["file"])), "--base-url", server.base_url, "--pace", "0",
        "--split-channels", "--channel-names", "agent,customer", "--ping-timeout", "60",
        cols=140,
    )  # fmt: skip
    assert status == 0, pty.data.decode(errors="replace")
    assert any(
        "agent" in row and "dBFS" in row and "customer" in row and "sent" in row
        for row in drawn_rows(pty.data)
    )
    lines = [line.rstrip() for line in pty.screen().display if line.strip()]
    assert len(lines) == 5 and all(line.startswith(("agent: ", "customer: ")) for line in lines)
    assert not pty.screen().cursor.hidden


@pytest_server
def test_transcript_to_a_pipe_stays_plain_while_the_status_shows_on_stderr(server):
    status, pty, out, _ = stream_two(server, stdout_pty=False)
    assert status == 0, pty.data.decode(errors="replace")
    assert out.decode().splitlines() == TWO["texts"]  # no escape, no partial, nothing else
    assert "dBFS" in pty.data.decode()
    assert not [line for line in pty.screen().display if line.strip()]


@pytest_server
def test_a_closed_stdout_pipe_takes_the_status_line_down_before_its_line(server):
    status, pty, _, _ = stream_two(server, stdout_pty=False, stdout_closed=True)
    assert status == 141, pty.data.decode(errors="replace")
    screen = pty.screen()
    lines = [line.rstrip() for line in screen.display if line.strip()]
    assert lines == ["nsaudio: the output was closed; stopped the stream"], lines
    assert not screen.cursor.hidden


@pytest_server
@pytest.mark.parametrize("flag", ["-q", "--no-status"])
def test_off_with_quiet_or_no_status(server, flag):
    status, pty, _, _ = stream_two(server, flag)
    assert status == 0, pty.data.decode(errors="replace")
    assert HIDE_CURSOR not in pty.data and b"dBFS" not in pty.data
    assert [line.rstrip() for line in pty.screen().display if line.strip()] == TWO["texts"]


@pytest_server
def test_off_and_never_imported_when_stderr_is_not_a_terminal(server):
    status, pty, _, err = stream_two(server, stderr_pty=False)
    assert status == 0, err.decode()
    assert b"\x1b" not in err and b"dBFS" not in pty.data and HIDE_CURSOR not in pty.data
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    proc = run_cli(
        "stream", str(fixture_path(TWO["file"])), "--base-url", server.base_url, "--pace", "0",
        env=profile,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    imports = proc.stderr.decode()
    assert "nsaudio.cli.output" in imports  # the profile is there...
    assert "nsaudio.cli.status" not in imports  # ...and the status line is not in it
    # On a terminal it is.
    status, pty, _, _ = stream_two(server, env=profile)
    assert status == 0 and b"nsaudio.cli.status" in pty.data


@pytest_server
def test_the_level_and_label_shown_are_those_of_the_audio_being_sent(server, tmp_path):
    """3 s of digital silence, then a spoken sentence, paced: every status row that says
    less than 2.8 s was sent shows silence (the pipeline has read the speech seconds before
    it is sent), and no row counts more sent than the file holds."""
    import soundfile as sf

    speech, rate = sf.read(fixture_path("speech_16000_mono_int16.wav"), dtype="int16")
    audio = np.concatenate([np.zeros(3 * rate, dtype=np.int16), speech])
    path = tmp_path / "silence_then_speech.wav"
    sf.write(path, audio, rate, subtype="PCM_16")
    length = len(audio) / rate
    status, pty, _, _ = cli_on_pty(
        "stream", str(path), "--base-url", server.base_url, "--pace", "3", cols=200
    )
    assert status == 0, pty.data.decode(errors="replace")
    rows = [row for row in drawn_rows(pty.data) if " dBFS [" in row and "sent" in row]
    assert len(rows) >= 5, rows
    before_speech = 0
    for row in rows:
        sent = float(row.split("sent")[1].split()[0])
        level = float(row.split(" dBFS")[0].split()[-1])
        assert sent <= round(length, 1), row
        if sent < 2.8:
            before_speech += 1
            assert level < -90 and " silence " in row, row
        if "end silence" in row:
            assert sent == round(length, 1) and " silence " in row, row
    assert before_speech >= 2, rows


@pytest_server
def test_a_pty_that_reports_no_width_still_shows_the_status(server):
    # `script` without a terminal, some containers: the pty says 0 columns.
    speech = str(fixture_path("speech_16000_mono_int16.wav"))
    for env, width in (({"COLUMNS": "70"}, 70), ({"COLUMNS": ""}, 80)):
        status, pty, _, _ = cli_on_pty(
            "stream", speech, "--base-url", server.base_url, "--pace", "0",
            cols=0, stdout_pty=False, env=env,
        )  # fmt: skip
        assert status == 0, pty.data.decode(errors="replace")
        rows = [row for row in drawn_rows(pty.data) if "dBFS" in row]
        assert rows, pty.data.decode(errors="replace")
        assert max(len(row) for row in rows) == width - 1, rows

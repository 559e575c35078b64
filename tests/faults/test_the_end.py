"""The end of a stream against a stand-in service with real habits (issue 15's findings).

Each test is one finding, reproduced at the command line against
:class:`~tests.faults.standin.StandInServer` (its own VAD, slow finals, blank partials,
sessions that expire...), with what nsaudio must do instead: exit 0 exactly when every
word of the slot-coded speech came back, otherwise exit 1 naming the seconds of speech that
did not, and an end that comes by itself, bounded, however the service behaves.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import ROOT
from .slots import SlotAudio, make_pattern
from .standin import Behaviour, StandInServer
from .support import stream

#: 2 s of speech, a 0.5 s pause, a short last word (0.5 s: the slots are 100 ms), then
#: 1 s of silence: the finding's recording.
LAST_WORD = [("speech", 2.0), ("pause", 0.5), ("speech", 0.5), ("pause", 1.0)]


def _file(tmp_path: Path, parts: list[tuple[str, float]], **kw: float) -> tuple[SlotAudio, Path]:
    audio = make_pattern(parts, **kw)  # type: ignore[arg-type]
    return audio, audio.write(tmp_path / "speech.wav")


def _speech_spans(audio: SlotAudio) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    for k, voiced in enumerate(audio.voiced):
        if voiced:
            if spans and abs(spans[-1][1] - k / 10) < 1e-9:
                spans[-1] = (spans[-1][0], (k + 1) / 10)
            else:
                spans.append((k / 10, (k + 1) / 10))
    return spans


def _named(line: str) -> list[tuple[float, float]]:
    m = re.search(r"untranscribed: (.*) of the stream", line)
    assert m, line
    return [(float(a), float(b)) for a, b in re.findall(r"([\d.]+)-([\d.]+) s", m.group(1))]


def _names_the_speech(line: str, audio: SlotAudio) -> None:
    """The seconds named are the speech (each span of it, from its start to its end plus at
    most the gate's hangover and a frame), and nothing else: no silence, no trailing silence."""
    named = _named(line)
    speech = _speech_spans(audio)
    assert len(named) == len(speech), (named, speech)
    for (a, b), (s, e) in zip(named, speech, strict=True):
        assert abs(a - s) <= 0.1 and e - 0.05 <= b <= e + 0.45, (named, speech)


@pytest.mark.parametrize("pace", ["1", "0"])
@pytest.mark.parametrize("latency", [1.5, 3.0])
def test_a_short_last_word_whose_final_is_slow_is_waited_for(tmp_path, latency, pace):
    """Finding 1: the last word's full result comes 1.5 or 3 s after the service's VAD
    closed its segment (which it closes after 0.4 s of silence: the pause makes two); both
    results are printed, exit 0."""
    audio, path = _file(tmp_path, LAST_WORD)
    with StandInServer(Behaviour(final_latency=latency, vad_silence=0.4)) as server:
        run = stream(server, path, "--pace", pace)
    assert run.proc.returncode == 0, run.stderr
    assert run.words == audio.words
    assert len([r for r in run.results if r["full"]]) == 2


def test_a_service_that_never_says_a_word_fails_naming_the_speech(tmp_path):
    """Finding 2: a service that reads everything and answers pings but sends no result:
    exit 1, one line naming the seconds of speech (not the silence), within the end's
    bound (extra silence 5 s, then 5 s to answer)."""
    audio, path = _file(tmp_path, [("pause", 0.5), *LAST_WORD])
    with StandInServer(Behaviour(silent=True)) as server:
        t0 = time.monotonic()
        run = stream(server, path)
        seconds = time.monotonic() - t0
    assert run.proc.returncode == 1, run.stderr
    assert run.results == []
    lines = run.stderr_lines
    assert len(lines) == 1 and lines[0].startswith("nsaudio: error: "), lines
    assert "the service sent no final result" in lines[0]
    _names_the_speech(lines[0], audio)
    assert seconds < 25, seconds


def test_blank_partials_in_silence_are_not_speech(tmp_path):
    """Finding 3: a service that sends a whitespace-only partial in silence: both results,
    exit 0, at once (it waited 30 s, then failed, naming seconds past the end of the file)."""
    audio, path = _file(
        tmp_path, [("speech", 1.5), ("pause", 1.5), ("speech", 1.5), ("pause", 2.5)]
    )
    with StandInServer(Behaviour(blank_partials=True)) as server:
        t0 = time.monotonic()
        run = stream(server, path)
        seconds = time.monotonic() - t0
        blanks = sum(1 for said in server.said for r in said if r["text"] == " ")
    assert run.proc.returncode == 0, run.stderr
    assert run.words == audio.words and blanks > 0
    assert seconds < 5 + 3, seconds  # the end within 5 s (the rest: starting the command)


def test_a_partial_the_service_finalises_only_on_more_silence_is_waited_for(tmp_path):
    """Finding 3, its second half: a service whose VAD needs 2.5 s of silence (more than
    the 1.2 s sent after the audio) finalises the last words once nsaudio sends more."""
    audio, path = _file(tmp_path, [("speech", 1.0), ("pause", 3.0), ("speech", 1.0)])
    with StandInServer(Behaviour(vad_silence=2.5)) as server:
        run = stream(server, path, "-v")
    assert run.proc.returncode == 0, run.stderr
    assert run.words == audio.words
    silence = float(re.search(r"and ([\d.]+) s of silence after it", run.stderr).group(1))
    assert 2.5 <= silence <= 1.2 + 5.0, silence


def _start(server: StandInServer, path: Path, *args: str) -> subprocess.Popen:
    env = {"NS_API_KEY": server.api_key, "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "stream", str(path), "--base-url", server.base_url,
         "--output", "jsonl", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip


def test_a_service_that_never_finalises_and_expires_sessions_ends_by_itself(tmp_path):
    """Finding 4: partials every second, never a full result, each session closed after
    12 s. It was still reconnecting after 702 s; now the end is bounded (the drain's 30 s
    from the last frame, reconnects included; sooner once the service, having heard the
    extra silence, has said nothing new for 5 s): exit 1 naming the speech."""
    audio, path = _file(tmp_path, [("speech", 2.5), ("pause", 0.5)] * 5)
    behaviour = Behaviour(partials_only=True, close_after=12.0)
    with StandInServer(behaviour) as server:
        t0 = time.monotonic()
        proc = _start(server, path, "--pace", "0")
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        seconds = time.monotonic() - t0
    lines = [line for line in err.decode().splitlines() if line.startswith("nsaudio: error")]
    assert proc.returncode == 1 and len(lines) == 1, err.decode()
    assert re.search(r"gave up waiting for the last result after 30 s|the service sent no "
                     r"final result", lines[0]), lines[0]  # fmt: skip
    _names_the_speech(lines[0], audio)
    assert seconds < 45, seconds


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_during_the_end_ends_it_within_two_seconds(tmp_path, sig):
    """Finding 4, the signal: the first SIGTERM (or Ctrl-C) during the end ends the stream
    within 2 s, exit 130, the results so far written (it needed a second one)."""
    _, path = _file(tmp_path, [("speech", 2.5), ("pause", 0.5)] * 2)
    with StandInServer(Behaviour(partials_only=True, close_after=12.0)) as server:
        proc = _start(server, path, "--pace", "0")
        try:
            time.sleep(4)  # the audio went out at once: it is waiting for the last results
            assert proc.poll() is None
            t0 = time.monotonic()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=20)
            seconds = time.monotonic() - t0
        finally:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert seconds < 2 + 0.5, seconds  # and the interpreter's exit
    assert b"Traceback" not in err
    assert out.decode().count('"full": false') >= 1  # the partials it had were written


def test_silence_before_the_speech_is_not_counted_as_lost(tmp_path):
    """Finding 5: 310 s of quiet noise, then two sentences, the connection cut at 312 s: both
    sentences, exit 0 (it said 0.0-13.0 s of silence went untranscribed). The re-sent audio
    is the speech and a little before it, not 300 s of noise."""
    parts = [("pause", 310.0), ("speech", 2.5), ("pause", 1.0), ("speech", 2.5), ("pause", 2.0)]
    audio, path = _file(tmp_path, parts, rate=16000, channels=1, noise_dbfs=-60)
    with StandInServer(Behaviour(cut_at=312.0)) as server:
        run = stream(server, path)
        resent = len(server.sessions[1].audio) / 32000 if len(server.sessions) > 1 else None
    assert run.proc.returncode == 0, run.stderr
    assert run.words == audio.words
    assert resent is not None and resent < 15, resent


def test_rest_that_drips_a_byte_every_two_seconds_is_bounded(tmp_path):
    """Finding 10: the token (or language) request answers one byte every 2 s; with
    --connect-timeout 5 the command ends within 20 s, exit 1, one line naming the timeout."""
    _, path = _file(tmp_path, LAST_WORD)
    with Drip() as drip:
        t0 = time.monotonic()
        run = stream(drip.base_url, path, "--connect-timeout", "5", timeout=60)
        seconds = time.monotonic() - t0
    assert run.proc.returncode == 1, run.stderr
    assert len(run.stderr_lines) == 1 and "within 5 s (timed out)" in run.stderr, run.stderr
    assert seconds < 20, seconds


def test_a_refused_token_names_no_seconds_it_never_heard(tmp_path):
    """Finding 12: a token refused at the start named 0.0-0.4 s (the audio handed in before
    the refusal) on a 26 s file. Nothing was transcribed: the refusal is all there is to say."""
    from .server import FaultServer, Plan

    _, path = _file(tmp_path, [("speech", 2.5), ("pause", 0.5)] * 8)
    with FaultServer(lambda i: Plan(action="close", code=1008, reason="invalid token")) as server:
        run = stream(server, path)
    assert run.proc.returncode == 3, run.stderr
    assert run.stderr_lines == ["nsaudio: error: the service refused the session: invalid token"]


class Drip:
    """A TCP server that answers any request with one byte every two seconds, forever."""

    def __init__(self) -> None:
        import socket
        import threading

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Drip:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        import threading

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn) -> None:
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 100:
                if self._stop.wait(2.0):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

"""One owner per connection, proven over wss:// (issue 8: finding 1, deliverable 2).

The harness (``tls_flood.FloodServer``) floods every session with small results while the
client streams audio, and judges each session from the server's side: a clean end is the
client's close 1000; anything else (an SSL error, a connection that just went away) is an
unplanned end. Two tests show that the harness works: the two-thread pattern breaks
sessions over TLS (client side: an SSL/EOF error, or a crashed process), and the same client
over plain ws:// breaks none. The third holds nsaudio to it: long streams at ``--pace 0``,
``--frame-ms 20``, each one session, closed 1000, every byte delivered once, exit 0; the
fourth shows the same streams meet that over plain ws://, so a failure of the third is TLS.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ..conftest import fixture_path
from .conftest import CertAuthority
from .support import stream
from .tls_flood import FloodServer, server_report, two_threads

SPEECH = "speech_16000_mono_int16.wav"  # 2.2 s, 16 kHz mono int16: what is sent, byte for byte
#: Audio per nsaudio run, and runs. Measured on the earlier two-thread sink (websocket-client,
#: a sender and a receiver thread on one socket; 2 shared cores, load 5-11): a 300 s stream
#: at --pace 0 takes 3-8 s, and 43 of 92 such runs broke (22 of 23 invocations of this test
#: failed); a 150 s stream broke in 1 of 5 runs. The one-loop sink: 24 of 24 clean.
#: (NSAUDIO_TLS_RACE_RUNS=N runs it N times, e.g. to measure a new sink.)
STREAM_SECONDS = 300
RUNS = int(os.environ.get("NSAUDIO_TLS_RACE_RUNS", "4"))


@pytest.fixture
def flood_server(private_ca):
    with FloodServer(ssl_context=private_ca.server_context()) as server:
        yield server


def test_the_harness_catches_two_threads_on_one_tls_socket(flood_server, private_ca):
    # Measured with python -m tests.faults.tls_flood --runs 5 --sessions 10 --seconds 1 on
    # the 2 shared cores: 5, 6, 7, 7, 4 of 10 one-second sessions broke at load 7-8, and 6, 7,
    # 8, 10, 8 at load 5 (client and server agree); over plain ws:// 0 of 20, with a blocking
    # socket (--timeout 0) 0 of 20. The client's 50 us sleep after each send is what makes it that likely (see
    # two_threads.py). So sessions go on until the first break, bounded at 60 s; one or two
    # sessions usually do it.
    run = two_threads(
        flood_server, private_ca.ca_pem,
        "--sessions", "200", "--seconds", "1", "--budget", "60", "--until-error",
    )  # fmt: skip
    report = f"{run.describe()}\nserver:\n{server_report(flood_server)}"
    assert run.crashed or run.failed, f"the race was not caught: {report}"
    # The server's verdict, which the nsaudio test relies on, sees it too: the broken session
    # never sent its close 1000 (a crashed client sent none at all).
    assert flood_server.unclean(), report
    print(f"caught after {len(run.sessions)} session(s), {run.seconds:.1f} s: {report}")


def test_the_same_two_threads_over_plain_ws_break_nothing(private_ca):
    # The control: no TLS, no race. What the test above catches is TLS, not the harness
    # (a blocking TLS socket, --timeout 0, broke none of 20 either, but OpenSSL does not
    # promise that, so it is no test).
    with FloodServer() as server:
        run = two_threads(server, private_ca.ca_pem, "--sessions", "4", "--seconds", "0.5")
        report = f"{run.describe()}\nserver:\n{server_report(server)}"
        assert not run.crashed and not run.failed and len(run.sessions) == 4, report
        assert len(server.sessions) == 4 and not server.unclean(), report
        assert all(s.partials_sent > 10 and s.audio for s in server.sessions), report


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The speech fixture over and over, ``STREAM_SECONDS`` long, and its PCM."""
    pcm, rate = sf.read(str(fixture_path(SPEECH)), dtype="int16")
    assert rate == 16000 and pcm.ndim == 1
    audio = np.tile(pcm, -(-STREAM_SECONDS * rate // len(pcm)))
    path = tmp_path_factory.mktemp("tls_race") / f"speech{STREAM_SECONDS}s.wav"
    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path, audio.astype("<i2").tobytes()


def nsaudio_run(speech: tuple[Path, bytes], ca: CertAuthority | None, i: int = 0) -> str | None:
    """One ``nsaudio stream`` of ``speech`` to a fresh flood server (TLS when ``ca``); None
    if it was one clean session that delivered every byte once and exited 0, else why not."""
    path, pcm = speech
    # A full result every 5 s of audio, as the service's max_chunk_size would: a reconnect
    # (the failure this is about) then replays seconds, not minutes.
    ctx = ca.server_context() if ca else None
    tls = ["--ca-file", str(ca.ca_pem)] if ca else []
    with FloodServer(ssl_context=ctx, final_every=5.0) as server:
        t0 = time.monotonic()
        run = stream(server, path, *tls, "--frame-ms", "20", timeout=180)
        seconds = time.monotonic() - t0
        server.wait_ended()
    problems = []
    if run.proc.returncode != 0:
        problems.append(f"exit {run.proc.returncode}")
    if len(server.sessions) != 1:
        problems.append(f"{len(server.sessions)} sessions")
    if server.unclean():
        problems.append("an unclean end")
    got = bytes(server.sessions[-1].audio) if server.sessions else b""
    # The file's audio, byte for byte, once, then only the trailing silence.
    if got[: len(pcm)] != pcm or got[len(pcm) :].strip(b"\0"):
        problems.append(f"{len(got)} bytes, not the {len(pcm)} sent then silence")
    # The stream ends once full results cover its speech (not the silence sent after it):
    # the last full result must reach the file's last loud 100 ms, within the speech
    # tolerance (the gate's hangover and a frame).
    fulls = [r for r in run.results if r["full"]]
    if not fulls or fulls[-1]["end_time"] < _last_loud(pcm) - 0.5:
        problems.append("no final result for the end of the speech")
    print(f"run {i}: {seconds:.1f} s, {', '.join(problems) or 'ok'}")
    if not problems:
        return None
    return (
        f"run {i} ({seconds:.1f} s): {', '.join(problems)}\n"
        f"server:\n{server_report(server)}\nstderr:\n{run.stderr[-1500:]}"
    )


def _last_loud(pcm: bytes, rate: int = 16000) -> float:
    """Where the last 100 ms block louder than -40 dBFS ends, in seconds."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    block = rate // 10
    n = len(x) // block
    rms = np.sqrt((x[: n * block].reshape(n, block) ** 2).mean(axis=1))
    loud = np.nonzero(rms > 0.01)[0]
    return (loud[-1] + 1) / 10 if len(loud) else 0.0


def test_nsaudio_streams_over_tls_under_a_flood_without_an_unplanned_reconnect(
    long_speech, private_ca
):
    failures = [f for i in range(RUNS) if (f := nsaudio_run(long_speech, private_ca, i))]
    assert not failures, f"{len(failures)} of {RUNS} runs failed:\n" + "\n".join(failures)


def test_nsaudio_over_plain_ws_under_the_same_flood_is_clean(long_speech):
    # The control for the test above: what it asks is met without TLS, even by the
    # earlier two-thread sink (13 of 13 runs clean, where 43 of 92 broke over TLS).
    failure = nsaudio_run(long_speech, None)
    assert failure is None, failure

"""A half-open connection: the server stops reading for good (no audio, no ping, no pong)
but keeps the socket open. The client must notice within ping interval + ping timeout,
reconnect, and finish the stream with nothing lost.

Two ways it shows: everything already fits in the socket buffers, so the sender is idle and
its pings go unanswered; or the stream is longer than the buffers, so the sender is stuck in
a send that cannot progress (bounded by the same interval + timeout).
"""

from __future__ import annotations

import pytest

from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source

from .server import Plan
from .slots import make_speech, words_of
from .support import RATE, check_times, stream

PING_INTERVAL, PING_TIMEOUT = 0.5, 0.5
#: Allowed beyond interval + timeout: the sender checks pongs every 0.1-0.5 s, and the first
#: reconnect attempt is immediate.
SLACK = 0.8


def _run(server, path):
    source = open_source(path)
    results = []
    sink = NeuralSpaceSink(
        server.base_url, server.api_key, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT,
        on_result=results.append,
    )  # fmt: skip
    Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE).run()
    return sink, [r.to_dict() for r in results]


@pytest.mark.parametrize(
    "seconds, at_bytes",
    [(20, 200_000), (120, 64_000)],
    ids=["sender-idle-pings-unanswered", "sender-stuck-in-send"],
)
def test_half_open_is_detected_and_the_stream_completes(tmp_path, fault_server, seconds, at_bytes):
    audio = make_speech(seconds, rate=RATE, channels=1)
    path = audio.write(tmp_path / "speech.wav")
    server = fault_server({0: Plan(at_bytes=at_bytes, action="stall")}, rcvbuf=4096)
    sink, results = _run(server, path)
    assert len(server.sessions) == 2, sink.stats()
    first, second = server.sessions
    assert first.fault_time is not None
    detected_after = second.opened - first.fault_time
    assert detected_after < PING_INTERVAL + PING_TIMEOUT + SLACK, detected_after
    print(f"half-open detected and a new session open {detected_after:.2f} s after the stall")
    assert sink.stats()["reconnects"] == 1
    assert sink.transcript.text.split() == audio.words
    check_times(results)
    heard = set(words_of(bytes(first.audio), RATE)) | set(words_of(bytes(second.audio), RATE))
    assert heard == set(audio.words)


def test_half_open_a_second_before_the_end_with_the_cli_defaults(tmp_path, fault_server):
    # Finding 2 of the session-engine issue: the first session goes half-open about 1 s
    # before the end of the speech, paced at real time as the CLI does by default. nsaudio
    # must notice (ping every 2.5 s, pong timeout 7 s), reconnect, re-send, wait for the re-sent
    # audio's results, print every full result and exit 0.
    audio = make_speech(9, rate=RATE, channels=1)  # voiced 0-2.5, 3-5.5, 6-8.5 s
    path = audio.write(tmp_path / "speech.wav")
    server = fault_server({0: Plan(at_bytes=2 * round(7.5 * RATE), action="stall")})
    run = stream(server, path, "--pace", "1", timeout=90)
    assert run.proc.returncode == 0, run.stderr
    assert len(server.sessions) == 2, run.stderr
    assert "no pong" in run.stderr and "reconnecting" in run.stderr
    assert run.words == audio.words
    fulls = [r for r in run.results if r["full"] and r["text"]]
    last_voiced = max(k for k, v in enumerate(audio.voiced) if v)
    assert abs(fulls[-1]["end_time"] - (last_voiced + 1) / 10) < 1e-6, fulls[-1]
    check_times(run.results)

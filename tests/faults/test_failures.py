"""Closes, refusals and silence: what is retried, what is not, and how each ends.

Exit statuses (nsaudio/cli/exits.py): 0 when a retry saved the stream, 1 when the service or network
failed for good, 3 when the key or token was rejected; always one ``nsaudio: error:`` line.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from nsaudio.cli.exits import exit_status
from nsaudio.errors import ServiceError
from nsaudio.neuralspace.connection import Connector
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source

from ..conftest import assert_one_line_error
from .server import Plan, SilentServer
from .support import RATE, check_server_audio, check_times, stream


def _timed(*args, **kwargs):
    t0 = time.monotonic()
    run = stream(*args, **kwargs)
    return run, time.monotonic() - t0


def test_close_1011_is_retried_and_nothing_is_lost(speech20, reference20, fault_server):
    # Once mid-stream, and once more right after the handshake of the new session.
    server = fault_server({
        0: Plan(at_bytes=150_000, action="close", code=1011, reason="internal error"),
        1: Plan(action="close", code=1011, reason="internal error"),
    })  # fmt: skip
    run = stream(server, speech20.path)
    assert run.proc.returncode == 0, run.stderr
    closes = [line for line in run.stderr_lines if "(1011)" in line]
    assert len(closes) == 2 and all("reconnecting" in line for line in closes), run.stderr
    assert "re-established 2 times" in run.stderr
    assert len(server.sessions) == 3
    assert run.words == speech20.audio.words
    check_times(run.results)
    check_server_audio(server, speech20.audio, reference20.audio)


def test_close_1008_twice_even_with_a_fresh_token_is_an_auth_error(speech20, fault_server):
    server = fault_server(lambda attempt: Plan(action="close", code=1008, reason="invalid token"))
    run, seconds = _timed(server, speech20.path)
    line = assert_one_line_error(run.proc, status=3)
    assert "invalid token" in line
    assert seconds < 5
    assert server.attempts == 2  # the first token, then one fresh one: no more
    assert len(server.tokens) == 2


def test_close_1008_once_then_a_fresh_token_works(speech20, fault_server):
    server = fault_server({0: Plan(action="close", code=1008, reason="invalid token")})
    run = stream(server, speech20.path)
    assert run.proc.returncode == 0, run.stderr
    assert run.words == speech20.audio.words
    assert len(server.tokens) == 2 and server.sessions[1].token == server.tokens[1]


@pytest.mark.parametrize("wrong", ["rejected key", "every REST call 401"])
def test_rest_401_on_the_api_key_is_exit_3_at_once(speech20, fault_server, wrong):
    if wrong == "rejected key":
        server, key = fault_server(), "not-the-key"
    else:
        server, key = fault_server(rest_status=401), None
    run, seconds = _timed(server, speech20.path, key=key)
    line = assert_one_line_error(run.proc, status=3)
    assert "API key" in line and "NS_API_KEY" in line
    assert seconds < 3  # the interpreter's start included; nothing is retried
    assert server.attempts == 0 and len(server.rest_calls) == 1


def test_handshake_refused_401_twice_is_exit_3(speech20, fault_server):
    server = fault_server(lambda attempt: Plan(refuse=401))
    run, seconds = _timed(server, speech20.path)
    assert_one_line_error(run.proc, status=3)
    assert seconds < 5 and server.attempts == 2


def test_handshake_refused_403_is_exit_3(speech20, fault_server):
    server = fault_server(lambda attempt: Plan(refuse=403))
    run = stream(server, speech20.path)
    assert "403" in assert_one_line_error(run.proc, status=3)


def test_handshake_5xx_after_a_cut_is_retried(speech20, reference20, fault_server):
    server = fault_server({0: Plan(at_bytes=100_000, action="cut"), 1: Plan(refuse=503),
                           2: Plan(refuse=502)})  # fmt: skip
    run = stream(server, speech20.path)
    assert run.proc.returncode == 0, run.stderr
    assert server.attempts == 4 and len(server.sessions) == 2
    assert run.words == speech20.audio.words
    check_server_audio(server, speech20.audio, reference20.audio)


def test_no_answer_to_the_first_upgrade_is_exit_1(speech20, fault_server):
    # The first session is retried within a start-up budget as long as the connect timeout
    # (10 s by default): one attempt that hangs that long spends it.
    server = fault_server({0: Plan(hang=30)})
    run, seconds = _timed(server, speech20.path)
    line = assert_one_line_error(run.proc, status=1)
    assert "no answer from 127.0.0.1" in line and "(timed out)" in line
    assert 9 < seconds < 20


def test_connect_timeout_bounds_the_first_session(speech20, fault_server):
    server = fault_server(lambda attempt: Plan(hang=30))
    run, seconds = _timed(server, speech20.path, "--connect-timeout", "2")
    line = assert_one_line_error(run.proc, status=1)
    assert "within 2 s (timed out)" in line
    assert 1.5 < seconds < 8


def test_a_first_session_that_meets_a_transient_failure_is_retried(
    speech20, reference20, fault_server
):
    server = fault_server({0: Plan(refuse=503), 1: Plan(at_bytes=0, action="cut")})
    run = stream(server, speech20.path, "-v")
    assert run.proc.returncode == 0, run.stderr
    assert server.attempts == 3 and len(server.sessions) == 2, run.stderr
    assert "nsaudio: INFO: the service refused the WebSocket (HTTP 503); retrying" in run.stderr
    assert run.words == speech20.audio.words
    check_server_audio(server, speech20.audio, reference20.audio)


def test_a_server_that_accepts_and_says_nothing_times_out():
    with SilentServer() as silent:
        connector = Connector(silent.base_url, "key", StreamParams(), connect_timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            asyncio.run(connector.token())
        assert time.monotonic() - t0 < 2
        assert caught.value.retryable and "cannot reach" in str(caught.value)
        # And the WebSocket upgrade, given a token: bounded by the same timeout.
        t0 = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            asyncio.run(connector.open("made-up-token"))
        assert time.monotonic() - t0 < 2
    assert caught.value.retryable and "timed out" in str(caught.value)
    assert "made-up-token" not in str(caught.value)


def test_no_answer_after_a_cut_gives_up_after_the_reconnect_budget(speech20, fault_server):
    server = fault_server(
        lambda i: Plan(at_bytes=64_000, action="cut") if i == 0 else Plan(hang=20)
    )
    source = open_source(speech20.path)
    sink = NeuralSpaceSink(
        server.base_url, server.api_key, connect_timeout=0.5, reconnect_timeout=2.0,
        backoff=(0.1, 0.4),
    )  # fmt: skip
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE)
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        pipeline.run()
    seconds = time.monotonic() - t0
    assert not caught.value.retryable and exit_status(caught.value) == 1
    message = str(caught.value)
    assert message.startswith("gave up reconnecting after 2 s") and "timed out" in message
    assert 1.5 < seconds < 4.5
    assert 3 <= server.attempts <= 8  # a few tries with backoff, not a busy loop
    for token in server.tokens:
        assert token not in message


def test_the_local_results_of_every_session_are_in_order(speech20, fault_server):
    # Belt and braces for the offsets: partials and fulls from three sessions, all absolute.
    server = fault_server({0: Plan(at_bytes=120_000, action="cut"),
                           1: Plan(at_bytes=150_000, action="cut")})  # fmt: skip
    run = stream(server, speech20.path)
    assert run.proc.returncode == 0, run.stderr
    check_times(run.results)
    fulls = [r for r in run.results if r["full"]]
    assert [r["end_time"] for r in fulls] == sorted(r["end_time"] for r in fulls)

"""Whoever takes the results may fail: a closed stdout pipe (``| head``), a raising callback.

Either is reported once, without a traceback, and ends the stream promptly and cleanly: one
session, no reconnect, the connection closed politely.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

import pytest

from nsaudio.errors import NsAudioError
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source

from ..conftest import ROOT
from .support import RATE


def test_stdout_closed_by_head_ends_the_stream_with_141(speech60, fault_server):
    server = fault_server()
    env = {k: v for k, v in os.environ.items() if k not in ("NS_BASE_URL",)}
    env["NS_API_KEY"] = server.api_key
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsaudio", "stream", str(speech60.path), "--base-url",
         server.base_url, "--output", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # what `head -1` does: one line, then close
    assert first.startswith(b"{")
    proc.stdout.close()
    closed = time.monotonic()
    code = proc.wait(timeout=30)
    seconds = time.monotonic() - closed
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert code == 141, err
    assert "Traceback" not in err and "reconnect" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["nsaudio: the output was closed; stopped the stream"], err
    # The next result after the close finds the pipe closed (a few per second at pace 1).
    assert seconds < 5, seconds
    assert len(server.sessions) == 1 and server.settled()
    assert server.sessions[0].close_code == 1000


def test_a_raising_callback_ends_the_stream_and_is_never_called_again(speech20, fault_server):
    server = fault_server()
    calls = []

    def callback(result):
        calls.append(result)
        raise ValueError("the consumer's own bug")

    source = open_source(speech20.path)
    sink = NeuralSpaceSink(server.base_url, server.api_key, on_result=callback)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE)
    t0 = time.monotonic()
    with pytest.raises(NsAudioError) as caught:
        pipeline.run()
    assert time.monotonic() - t0 < 10  # 20 s of audio at pace 0: not the whole drain
    assert "the result callback failed: ValueError: the consumer's own bug" in str(caught.value)
    assert isinstance(caught.value.__cause__, ValueError)
    assert len(calls) == 1
    assert len(server.sessions) == 1 and sink.stats()["reconnects"] == 0
    time.sleep(0.5)
    assert len(calls) == 1


def test_abort_stops_everything_at_once_and_no_callback_follows(speech60, fault_server):
    # Finding 4: abort() once sent trailing silence, reconnected, re-sent, and called
    # on_result after it returned.
    server = fault_server()
    calls = []
    first = threading.Event()

    def callback(result):
        calls.append(result)
        first.set()

    sink = NeuralSpaceSink(server.base_url, server.api_key, on_result=callback, pace=1.0)
    source = open_source(speech60.path)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE)
    runner = threading.Thread(target=lambda: _run_quietly(pipeline), daemon=True)
    runner.start()
    assert first.wait(30)
    t0 = time.monotonic()
    sink.abort()
    assert time.monotonic() - t0 < 2
    seen = len(calls)
    runner.join(10)
    assert not runner.is_alive()
    time.sleep(1.0)
    assert len(calls) == seen  # nothing after abort() returned
    assert sink.stats()["reconnects"] == 0 and len(server.sessions) == 1
    assert server.settled() and server.sessions[0].close_code != 1000  # cut, not drained


def _run_quietly(pipeline) -> None:
    with contextlib.suppress(Exception):
        pipeline.run()


@pytest.mark.parametrize("live", [True, False], ids=["live", "file"])
def test_a_failure_inside_the_engine_ends_the_stream_with_one_error(fault_server, live):
    # Every callback the socket loop runs is guarded: a bug there (here: a frame that goes
    # back in the stream, which the session machine refuses) ends the stream with an error
    # instead of leaving a coroutine dead and the caller waiting for good.
    from nsaudio.blocks import Frame

    server = fault_server()
    sink = NeuralSpaceSink(server.base_url, server.api_key, live=live)
    sink.open(RATE)
    sink.write(Frame(bytes(3200), 1600, RATE, time.monotonic_ns()))
    t0 = time.monotonic()
    with pytest.raises(NsAudioError) as caught:
        sink.write(Frame(bytes(3200), 0, RATE, time.monotonic_ns()))  # goes back
        sink.close()
    assert time.monotonic() - t0 < 10
    assert "internal error in the WebSocket sink: ValueError" in str(caught.value)
    sink.abort()

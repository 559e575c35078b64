"""The end of a stream in the Python API (issue 15's findings 7, 8, 9 and 11).

A consumer's failure always surfaces, whatever its timing; ``results()`` yields every result
received before it raises the run's error; finished tasks do not pile up; and
``Pipeline.stop()``, ``break`` out of ``results()`` and Ctrl-C end a paced stream within
about a second.
"""

from __future__ import annotations

import _thread
import asyncio
import threading
import time

import pytest

from nsaudio.errors import ConsumerError, NsAudioError, ServiceError
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.loop import SocketLoop
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source

from .server import Plan
from .support import RATE


def _pipeline(server, path, **settings) -> tuple[Pipeline, NeuralSpaceSink]:
    source = open_source(path)
    sink = NeuralSpaceSink(server.base_url, server.api_key, **settings)
    return Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE), sink


@pytest.mark.parametrize("which", ["first", "last"])
def test_a_slow_callback_that_fails_always_fails_the_run(speech20, fault_server, which):
    """Finding 7: ``on_result`` takes 0.4 s and raises on the first full result (the
    second was never delivered, and run() returned normally) or on the last (run() returned
    normally): run() raises ConsumerError either way, the callback's error its cause."""
    reference, ref_sink = _pipeline(fault_server(), speech20.path)
    reference.run()
    fulls = ref_sink.transcript.count
    assert fulls >= 3
    seen: list = []

    def on_result(result):
        time.sleep(0.4)
        seen.append(result)
        n = sum(r.full for r in seen)
        if result.full and (which == "first" or n == fulls):
            raise RuntimeError(f"the consumer broke on full result {n}")

    pipeline, _ = _pipeline(fault_server(), speech20.path, on_result=on_result)
    with pytest.raises(ConsumerError) as caught:
        pipeline.run()
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "the consumer broke" in str(caught.value)
    assert sum(r.full for r in seen) == (1 if which == "first" else fulls)


def test_results_yields_everything_received_before_the_error(speech20, fault_server):
    """Finding 8: with a consumer slower than the results and a run that ends in an error,
    results() yielded 1 of 2 received full results: abort() cleared the queue. Every result
    nsaudio received before the failure comes out, then the error."""
    # The first session is cut after 12 s of audio; every later one is refused as
    # unauthorised: the run fails, after the first session's results.
    server = fault_server(lambda i: Plan(at_bytes=12 * 32000, action="cut") if i == 0
                          else Plan(refuse=401))  # fmt: skip
    pipeline, sink = _pipeline(server, speech20.path)
    got = []
    with pytest.raises(NsAudioError):
        for result in pipeline.results():
            time.sleep(0.2)  # slower than they come
            got.append(result)
    # What nsaudio received: the sink's transcript. (The server's own list can hold one more:
    # a result written just before the abort can sit unread in the client's socket when
    # the client's next write meets the reset.)
    received = [r.text for r in sink.transcript.finals]
    sent = [r["text"] for r in server.sessions[0].results if r["full"]]
    assert len(received) >= 3
    assert received == sent[: len(received)]
    assert [r.text for r in got if r.full] == received


def test_finished_tasks_are_dropped_and_the_task_count_stays_flat(speech60, fault_server):
    """Finding 9: one finished task was kept per ping, forever. A stream of 60 s at pace 0
    (a ping per frame, 600 of them) ends with no task of the sink's left, and the engine
    loop runs no more tasks mid-stream than at its start (the reader and the writer)."""
    server = fault_server()
    pipeline, sink = _pipeline(server, speech60.path)
    counts: list[int] = []
    loop = SocketLoop.get().loop
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            fut = asyncio.run_coroutine_threadsafe(_count_tasks(), loop)
            counts.append(fut.result(5))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        pipeline.run()
    finally:
        stop.set()
        watcher.join(5)
    assert sink.counters.frames_sent >= 600 and len(counts) >= 5
    assert max(counts) <= 4, counts  # reader, writer, the counting one; a close at the end
    assert not sink._tasks and not any(c.tasks for c in sink._conns.values())


async def _count_tasks() -> int:
    return len(asyncio.all_tasks())


def _paced(server, speech60, **kw) -> tuple[Pipeline, NeuralSpaceSink]:
    return _pipeline(server, speech60.path, pace=1.0, **kw)


@pytest.mark.parametrize("pace", [1.0, 0.0])
def test_stop_returns_within_a_second_at_any_pace(speech60, fault_server, pace):
    """Finding 11: Pipeline.stop() waited for the paced queue (12.7 s at pace 1 on a 54 s
    file). Now run() returns about a second after stop(), with the results until then."""
    server = fault_server()
    pipeline, sink = _pipeline(server, speech60.path, pace=pace)
    done = threading.Event()
    threading.Thread(target=lambda: (pipeline.run(), done.set()), daemon=True).start()
    time.sleep(3.0)
    t0 = time.monotonic()
    pipeline.stop()
    assert done.wait(10)
    seconds = time.monotonic() - t0
    print(f"run() returned {seconds:.2f} s after stop() at pace {pace}")
    assert seconds < 2.0  # 0.8 s of waiting for the last results, and the machine's load
    assert sink.outcome is not None and (sink.outcome.ok or sink.outcome.stopped)


def test_break_out_of_results_returns_within_a_second(speech60, fault_server):
    server = fault_server()
    pipeline, _ = _paced(server, speech60)
    t0 = None
    for result in pipeline.results():
        if result.full:
            t0 = time.monotonic()
            break
    assert t0 is not None
    seconds = time.monotonic() - t0
    print(f"the loop's end came {seconds:.2f} s after break")
    assert seconds < 2.0


def test_ctrl_c_in_results_returns_within_a_second_and_is_raised(speech60, fault_server):
    server = fault_server()
    pipeline, _ = _paced(server, speech60)
    t0 = None
    with pytest.raises(KeyboardInterrupt):
        for result in pipeline.results():
            if result.full and t0 is None:
                t0 = time.monotonic()
                _thread.interrupt_main()
    assert t0 is not None
    seconds = time.monotonic() - t0
    print(f"KeyboardInterrupt came out {seconds:.2f} s after it was raised")
    assert seconds < 2.0


def test_a_stop_with_speech_uncovered_is_not_an_error(speech60, fault_server):
    """A user's stop that cuts the last results short ends as stopped: run() returns, the
    outcome names the speech it left out (a warning says it too)."""
    server = fault_server({0: Plan(at_bytes=10 * 32000, action="stall")})
    pipeline, sink = _pipeline(server, speech60.path, pace=1.0)
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            pipeline.run()
        except ServiceError as err:
            failure.append(err)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    time.sleep(12)
    pipeline.stop()
    assert done.wait(10) and not failure, failure
    assert sink.outcome.stopped and sink.outcome.missing

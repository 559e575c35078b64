"""The bounded path from the socket loop to whoever takes the results."""

from __future__ import annotations

import threading
import time

from nsaudio.neuralspace.protocol import TranscriptResult
from nsaudio.sinks.delivery import Delivery


def result(n: int, full: bool = True) -> TranscriptResult:
    return TranscriptResult(full=full, text=f"r{n}", start_time=n, end_time=n + 0.5)


def test_a_slow_callback_never_blocks_put_and_gets_every_full_result_in_order():
    got, release = [], threading.Event()

    def slow(r):
        release.wait(10)
        got.append(r.text)

    d = Delivery(slow, on_failure=lambda err: None, capacity=100)
    t0 = time.monotonic()
    for n in range(50):
        assert d.put(result(n))
    assert time.monotonic() - t0 < 1  # the loop's side never waited for the consumer
    release.set()
    d.end()
    d.join(10)
    assert got == [f"r{n}" for n in range(50)]


def test_partials_not_yet_taken_are_replaced_by_the_next():
    d = Delivery(None, on_failure=lambda err: None, capacity=10)
    d.put(result(0))
    for n in range(1, 6):
        d.put(result(n, full=False))
    d.put(result(6))
    d.end()
    assert [r.text for r in d] == ["r0", "r5", "r6"]


def test_a_consumer_that_falls_a_whole_capacity_behind_is_a_failure():
    d = Delivery(None, on_failure=lambda err: None, capacity=3)
    assert [d.put(result(n)) for n in range(5)] == [True] * 5  # nobody listens: oldest go
    assert d.dropped == 2
    results = iter(d)
    assert next(results).text == "r2"  # now someone consumes (r3, r4 wait)...
    assert d.put(result(5)) is True  # three waiting: full
    assert d.put(result(6)) is False  # ...and has fallen a whole capacity behind


def test_a_raising_callback_is_reported_once_and_called_no_more():
    calls, failures = [], []

    def bad(r):
        calls.append(r.text)
        raise BrokenPipeError(32, "Broken pipe")

    d = Delivery(bad, on_failure=failures.append, capacity=10)
    for n in range(5):
        d.put(result(n))
    d.join(5)
    for n in range(5, 8):
        d.put(result(n))
    assert calls == ["r0"]
    assert len(failures) == 1 and isinstance(failures[0], BrokenPipeError)


def test_stop_waits_for_a_call_in_progress_and_none_follows():
    inside, release, calls = threading.Event(), threading.Event(), []

    def cb(r):
        calls.append(r.text)
        inside.set()
        release.wait(10)

    d = Delivery(cb, on_failure=lambda err: None, capacity=10)
    d.put(result(0))
    d.put(result(1))
    assert inside.wait(5)
    stopper = threading.Thread(target=d.stop)
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive()  # waiting for the call in progress
    release.set()
    stopper.join(5)
    assert not stopper.is_alive()
    d.join(5)
    assert calls == ["r0"]


def test_take_all_never_waits_and_on_ready_says_when_to_look():
    looks = []
    d = Delivery(None, on_failure=lambda err: None, capacity=10, on_ready=lambda: looks.append(1))
    assert d.take_all() == ([], False)
    d.put(result(0, full=False))
    d.put(result(1, full=False))  # replaces the partial not taken
    d.put(result(2))
    assert len(looks) == 3
    items, over = d.take_all()
    assert [r.text for r in items] == ["r1", "r2"] and not over
    d.put(result(3))
    d.end()
    assert len(looks) == 5
    items, over = d.take_all()
    assert [r.text for r in items] == ["r3"] and over  # what was queued, then the end
    assert d.take_all() == ([], True)


def test_take_all_makes_a_consumer_who_must_keep_up():
    d = Delivery(None, on_failure=lambda err: None, capacity=3)
    d.take_all()
    assert all(d.put(result(n)) for n in range(3))
    assert not d.put(result(3))  # a consumer fell capacity behind: the sink ends the stream

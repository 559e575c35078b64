"""The engine loop: notifies from other threads coalesce, and held() wakes it once."""

from __future__ import annotations

import threading
import time

from nsaudio.sinks.loop import EngineLoop


def test_notifies_inside_held_run_once_each_when_the_block_ends():
    engine = EngineLoop.get()
    calls: list[int] = []
    done = threading.Event()
    with engine.held():
        for key in range(50):
            engine.notify(key + 10_000, lambda key=key: calls.append(key))
            engine.notify(key + 10_000, lambda key=key: calls.append(key))  # the same key again
        time.sleep(0.2)
        assert calls == []  # nothing woke the loop yet
    engine.call(done.set)
    assert done.wait(5)
    assert sorted(calls) == list(range(50))  # once per key


def test_held_is_per_thread():
    # Another thread's notify is not held back by this thread's block.
    engine = EngineLoop.get()
    ran = threading.Event()
    with engine.held():
        other = threading.Thread(target=lambda: engine.notify(20_000, ran.set))
        other.start()
        other.join()
        assert ran.wait(5)

"""The one event loop of the process (``sinks/loop.py``): settle() waits for what was
scheduled on it before, so a close frame goes out before the process exits."""

from __future__ import annotations

import threading
import time

from nsaudio.sinks.loop import EngineLoop


def test_settle_returns_once_the_loop_has_run_what_was_scheduled_before_it():
    engine = EngineLoop.get()
    ran = []
    engine.call(lambda: (time.sleep(0.2), ran.append("before")))
    EngineLoop.settle(timeout=5)
    assert ran == ["before"]


def test_settle_waits_at_most_its_timeout_and_never_on_the_loop_itself():
    engine = EngineLoop.get()
    release = threading.Event()
    engine.call(release.wait, 5)  # the loop is busy
    t0 = time.monotonic()
    EngineLoop.settle(timeout=0.2)
    assert time.monotonic() - t0 < 2
    release.set()
    done = threading.Event()
    engine.call(lambda: (EngineLoop.settle(timeout=5), done.set()))
    assert done.wait(2)  # on its own thread it returns at once

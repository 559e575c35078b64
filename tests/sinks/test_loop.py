"""The one event loop of the process (``sinks/loop.py``) that owns every socket."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from nsaudio.sinks.loop import TICK_S, SocketLoop


def test_there_is_one_loop_on_one_thread_and_calls_run_there():
    loop = SocketLoop.get()
    assert SocketLoop.get() is loop and loop.thread.name == "nsaudio-sockets"
    where = []
    done = threading.Event()
    loop.call(lambda: (where.append(threading.current_thread()), done.set()))
    assert done.wait(5) and where == [loop.thread]


def test_many_notifies_of_one_stream_before_the_loop_turns_run_it_once():
    loop = SocketLoop.get()
    gate = threading.Event()
    loop.call(gate.wait, 5)  # hold the loop while the notifies pile up
    runs: list[str] = []
    for _ in range(100):
        loop.notify(1, lambda: runs.append("a"))
    loop.notify(2, lambda: runs.append("b"))
    gate.set()
    done = threading.Event()
    loop.call(done.set)
    assert done.wait(5)
    assert sorted(runs) == ["a", "b"]


def test_every_tick_calls_each_stream_until_it_stops():
    loop = SocketLoop.get()
    ticks: list[float] = []
    loop.call(loop.every_tick, 7, lambda: ticks.append(time.monotonic()))
    time.sleep(6 * TICK_S)
    loop.call(loop.every_tick, 7, None)
    time.sleep(2 * TICK_S)
    seen = len(ticks)
    time.sleep(3 * TICK_S)
    assert len(ticks) == seen >= 3


def test_notifies_inside_held_run_once_each_when_the_block_ends():
    loop = SocketLoop.get()
    calls: list[int] = []
    done = threading.Event()
    with loop.held():
        for key in range(50):
            loop.notify(key + 10_000, lambda key=key: calls.append(key))
            loop.notify(key + 10_000, lambda key=key: calls.append(key))  # the same key again
        time.sleep(0.2)
        assert calls == []  # nothing woke the loop yet
    loop.call(done.set)
    assert done.wait(5)
    assert sorted(calls) == list(range(50))  # once per key


def test_held_is_per_thread():
    # Another thread's notify is not held back by this thread's block.
    loop = SocketLoop.get()
    ran = threading.Event()
    with loop.held():
        other = threading.Thread(target=lambda: loop.notify(20_000, ran.set))
        other.start()
        other.join()
        assert ran.wait(5)


def test_on_the_loops_own_thread_the_notified_run_as_held_ends():
    # The gateway's listeners run on this loop: a frame offered in a packet's read goes out
    # as the block ends, not after every other socket event of the loop's next turn.
    loop = SocketLoop.get()
    seen: list[object] = []
    done = threading.Event()

    def on_the_loop() -> None:
        with loop.held():
            loop.notify(30_000, lambda: seen.append("fed"))
            loop.notify(30_000, lambda: seen.append("fed"))
            seen.append("inside")
        seen.append("after")
        loop.notify(30_001, lambda: seen.append("not held: soon"))  # as before: on a turn
        seen.append("returned")
        loop.call(done.set)

    loop.call(on_the_loop)
    assert done.wait(5)
    assert seen == ["inside", "fed", "after", "returned", "not held: soon"]


def test_a_notified_callback_that_raises_does_not_cost_the_others_their_run(caplog):
    loop = SocketLoop.get()
    ran: list[int] = []
    done = threading.Event()

    def fail() -> None:
        raise ValueError("a bug")

    def on_the_loop() -> None:
        with loop.held():
            loop.notify(30_010, lambda: ran.append(1))
            loop.notify(30_011, fail)
            loop.notify(30_012, lambda: ran.append(3))
        ran.append(4)  # nor is the block's owner hit by it
        done.set()

    with caplog.at_level("DEBUG", logger="nsaudio.neuralspace"):
        loop.call(on_the_loop)
        assert done.wait(5)
    assert ran == [1, 3, 4]
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def test_the_loop_is_uvloops_when_it_is_installed_and_asyncios_without(tmp_path):
    pytest.importorskip("uvloop")  # the gateway extra brings it; the suite installs every extra
    code = (
        "from nsaudio.sinks.loop import SocketLoop; print(type(SocketLoop.get().loop).__module__)"
    )
    run = [sys.executable, "-c", code]
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout == "uvloop\n"
    # As if it were not installed: an uvloop that cannot be imported, first on the path.
    (tmp_path / "uvloop").mkdir()
    (tmp_path / "uvloop" / "__init__.py").write_text(
        "raise ImportError('No module named uvloop')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(run, capture_output=True, text=True, check=True, env=env).stdout
    assert out.startswith("asyncio")


def test_the_end_of_the_process_stops_the_loop_and_closes_it_on_its_own_thread():
    # A running loop under the interpreter's teardown is how uvloop's SIGSEGV at exit came.
    code = (
        "import atexit, threading\n"
        "from nsaudio.sinks.loop import SocketLoop\n"
        "sockets = SocketLoop.get()\n"
        "sockets.call(sockets.every_tick, 1, lambda: None)  # a timer pending, as in a session\n"
        "atexit._run_exitfuncs()  # what the interpreter's end runs before its teardown\n"
        "print(sockets.thread.is_alive(), sockets.loop.is_closed(), threading.active_count())\n"
    )
    run = [sys.executable, "-c", code]
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout == (
        "False True 1\n"
    )


def test_a_loop_held_by_a_callback_is_left_after_the_timeout_and_the_next_get_starts_anew():
    code = (
        "import threading, time\n"
        "from nsaudio.sinks.loop import SocketLoop\n"
        "sockets = SocketLoop.get()\n"
        "release = threading.Event()\n"
        "sockets.call(release.wait, 10)\n"
        "time.sleep(0.1)\n"
        "started = time.monotonic()\n"
        "print(SocketLoop.stop(timeout=0.3), 0.3 <= time.monotonic() - started < 5)\n"
        "release.set()\n"
        "sockets.thread.join(5)\n"
        "print(sockets.thread.is_alive(), SocketLoop.get() is not sockets)\n"
        "print(SocketLoop.stop(), SocketLoop.stop())\n"
    )
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert out == "False True\nFalse True\nTrue True\n"

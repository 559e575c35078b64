"""The thread hand-off: what a worker raised reaches whoever joins it."""

from __future__ import annotations

import threading

import pytest

from nsaudio.errors import RingClosed
from nsaudio.worker import Worker


def test_a_result_free_run_leaves_no_error():
    done = []
    worker = Worker(lambda: done.append(1), "t").start()
    worker.join()
    worker.raise_error()
    assert done == [1] and worker.error is None and not worker.is_alive()
    assert worker.thread.name == "t" and worker.thread.daemon


def test_the_error_is_raised_on_the_joining_thread_after_on_error_ran_on_the_worker():
    seen = []

    def fail():
        raise OSError("disk full")

    def on_error(err):
        seen.append((err, threading.current_thread().name))

    worker = Worker(fail, "writer", on_error=on_error).start()
    worker.join()
    assert isinstance(worker.error, OSError)
    assert seen == [(worker.error, "writer")]
    with pytest.raises(OSError, match="disk full"):
        worker.raise_error()


def test_base_exceptions_are_kept_too_and_ignored_ones_are_not():
    def interrupted():
        raise KeyboardInterrupt

    worker = Worker(interrupted, "t").start()
    worker.join()
    assert isinstance(worker.error, KeyboardInterrupt)

    def consumer_left():
        raise RingClosed("closed")

    called = []
    worker = Worker(consumer_left, "t", on_error=called.append, ignore=(RingClosed,)).start()
    worker.join()
    assert worker.error is None and called == []

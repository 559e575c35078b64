"""The batcher: when a batch is run (a pure policy on a fake clock), and streams on threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from nsaudio.detectors import BatchPolicy, SileroBatcher, SileroDetector
from nsaudio.detectors.silero import Windows
from nsaudio.errors import InputError


def test_a_batch_waits_for_every_active_stream_or_the_deadline():
    p = BatchPolicy(0.010)
    p.note(1, 0.0)
    assert p.ready(1, opened=0.0, now=0.0)  # one stream alone: never waits
    p.note(2, 0.001)
    p.note(3, 0.002)
    assert p.active == 3
    assert not p.ready(1, opened=0.002, now=0.002)
    assert not p.ready(2, opened=0.002, now=0.011)
    assert p.ready(3, opened=0.002, now=0.003)  # all three in: at once
    assert p.ready(1, opened=0.002, now=0.012)  # the deadline: whoever is in goes
    assert p.deadline(0.002) == pytest.approx(0.012)


def test_a_stream_quiet_for_a_second_is_not_waited_for():
    p = BatchPolicy(0.010, active_s=1.0)
    p.note(1, 0.0)
    p.note(2, 0.0)
    p.note(1, 0.5)
    assert p.active == 2
    p.note(1, 1.2)  # stream 2 last came at 0.0: it has ended
    assert p.active == 1 and p.ready(1, opened=1.2, now=1.2)


def test_a_full_batch_goes_at_once():
    p = BatchPolicy(10.0, max_batch=4)
    for s in range(10):
        p.note(s, 0.0)
    assert not p.ready(3, opened=0.0, now=1.0)
    assert p.ready(4, opened=0.0, now=0.0)


@pytest.mark.parametrize("kwargs", [{"max_wait_s": -1}, {"max_wait_s": float("inf")},
                                    {"max_wait_s": 0.01, "max_batch": 0}])  # fmt: skip
def test_bad_policy_is_refused(kwargs):
    with pytest.raises(InputError):
        BatchPolicy(**kwargs)


def speechless(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 300).astype(np.int16)


def test_a_stream_alone_is_never_delayed():
    """With a 5 s wait allowed, 20 frames of one stream take far less than one wait: the
    leader sees no other active stream and runs at once."""
    batcher = SileroBatcher(max_wait_ms=5000)
    d = SileroDetector(batcher=batcher)
    x = speechless(1600 * 20, 0)
    t0 = time.monotonic()
    for i in range(20):
        d.scores(x[i * 1600 : (i + 1) * 1600].reshape(1, -1), 16000)
    assert time.monotonic() - t0 < 4.0
    assert batcher.batches == 20 and d.windows == 62


def run_threads(target, n: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return errors


def test_streams_in_step_share_every_batch():
    """Four threads that each submit a frame and then meet at a barrier: every batch holds
    all four, and each is scored as it would be alone."""
    batcher = SileroBatcher(max_wait_ms=2000)
    barrier = threading.Barrier(4, timeout=30)
    frames = 15
    got: dict[int, list[float]] = {}

    def stream(i: int) -> None:
        d = SileroDetector(batcher=batcher)
        x = speechless(1600 * frames, i)
        got[i] = [d.scores(x[j * 1600 : (j + 1) * 1600].reshape(1, -1), 16000)[0]
                  for j in range(frames) if barrier.wait() is not None]  # fmt: skip

    assert run_threads(stream, 4) == []
    # One batch a step with all four in it, but for the first: the batcher did not know the
    # others yet when the first came, so that step's frames went in two or more batches.
    assert frames + 1 <= batcher.batches <= frames + 3
    for i in range(4):
        alone = SileroDetector()
        x = speechless(1600 * frames, i)
        want = [alone.scores(x[j * 1600 : (j + 1) * 1600].reshape(1, -1), 16000)[0]
                for j in range(frames)]  # fmt: skip
        assert got[i] == pytest.approx(want, abs=1e-5)


def test_a_failed_batch_fails_every_stream_in_it():
    """A malformed job (a real onnxruntime error) in a batch: its leader and its follower
    both raise, and the batcher goes on working."""
    batcher = SileroBatcher(max_wait_ms=1000)
    barrier = threading.Barrier(2, timeout=30)

    def stream(i: int) -> None:
        d = SileroDetector(batcher=batcher)
        d.scores(speechless(1600, i).reshape(1, -1), 16000)  # now the batcher knows both
        barrier.wait()
        job = d.prepare(speechless(1600, i).reshape(1, -1), 16000)
        if i == 1:
            job = Windows(d, 16000, job.inputs[:, :100].copy(), job.ends)  # wrong width
        barrier.wait()
        batcher.submit(job)

    errors = run_threads(stream, 2)
    assert len(errors) == 2
    d = SileroDetector(batcher=batcher)
    assert len(d.scores(speechless(1600, 5).reshape(1, -1), 16000)) == 1

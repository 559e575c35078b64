"""The pipeline (``nsaudio/runner.py``): what it takes, the threads it hands work to, and
how their failures reach the caller.

``Pipeline(write_thread=True)``: the stages after the first, and the sink's writes, on a
thread of their own; the same output, one user of the sink at a time, and every failure
ending the run with nothing left running."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from nsaudio import Pipeline, RawSink, standard_stages
from nsaudio.blocks import Block, Frame
from nsaudio.sinks import NullSink
from nsaudio.sources import ArraySource
from nsaudio.stages import EnergyGate, Framer, Resampler

RATE = 48000


def audio(seconds: float = 3.0, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal((int(seconds * RATE), channels)) * 0.1).astype(np.float32)


class Recorder:
    """A sink keeping its frames and which thread made each call."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.pcm = bytearray()
        self.fail_at = fail_at
        self.writes = 0
        self.sizes: list[int] = []

    def _note(self, verb: str) -> None:
        self.calls.append((verb, threading.current_thread().name))

    def open(self, rate: int) -> None:
        self._note("open")

    def write(self, frame: Frame) -> None:
        self._note("write")
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(28, "No space left on device")
        self.pcm += frame.pcm
        self.sizes.append(frame.frames)

    def close(self) -> None:
        self._note("close")

    def abort(self) -> None:
        self._note("abort")


def pipeline_threads() -> list[threading.Thread]:
    """The reader and writer threads still alive (other tests' servers may run on)."""
    return [t for t in threading.enumerate() if t.name in ("nsaudio-reader", "nsaudio-writer")]


def on_a_thread(job, seconds: float = 30.0) -> tuple[str, BaseException | None]:
    """Run ``job()`` on a thread of its own: its name, and what it raised. A run that hangs
    fails the test instead of hanging it."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            job()
        except BaseException as err:
            failure.append(err)

    worker = threading.Thread(target=target, name="caller", daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the run did not end"
    return worker.name, failure[0] if failure else None


def run(data, sink, *, write_thread: bool, block_frames: int = 4096, stages=None):
    source = ArraySource(data, RATE, block_frames=block_frames)
    stages = stages or standard_stages(source, "pcm_16k", frame_ms=100, gate_threshold=None)
    return Pipeline(source, stages, sink, write_thread=write_thread).run()


@pytest.mark.parametrize("block_frames", [1, 1000, 4096, 48000, 10**6])
def test_the_output_is_the_same_with_or_without_the_writer_thread(block_frames):
    data = audio(1.3)
    plain, behind = Recorder(), Recorder()
    stats_plain = run(data, plain, write_thread=False, block_frames=block_frames)
    stats_behind = run(data, behind, write_thread=True, block_frames=block_frames)
    assert behind.pcm == plain.pcm and len(plain.pcm) > 0
    assert stats_behind.output_frames == stats_plain.output_frames == len(plain.pcm) // 2
    assert stats_behind.input_frames == stats_plain.input_frames == len(data)


def test_the_sink_has_one_user_at_a_time_opened_and_closed_by_the_caller():
    sink = Recorder()
    run(audio(), sink, write_thread=True)
    verbs = [verb for verb, _ in sink.calls]
    assert verbs[0] == "open" and verbs[-1] == "close" and set(verbs[1:-1]) == {"write"}
    here = threading.current_thread().name
    assert sink.calls[0][1] == sink.calls[-1][1] == here
    assert {name for _, name in sink.calls[1:-1]} == {"nsaudio-writer"}
    assert pipeline_threads() == []


def test_a_failed_write_ends_the_run_with_its_error_and_aborts_the_sink():
    sink = Recorder(fail_at=5)
    caller, error = on_a_thread(lambda: run(audio(10.0), sink, write_thread=True))
    assert isinstance(error, OSError) and "No space left" in str(error)
    verbs = [verb for verb, _ in sink.calls]
    assert verbs.count("write") == 5  # nothing written after the failure
    assert verbs[-1] == "abort" and "close" not in verbs
    assert sink.calls[-1][1] == caller
    assert pipeline_threads() == []


def test_a_real_failed_write_on_the_writer_thread_is_raised_to_the_caller():
    # /dev/full: every write that reaches the device fails with ENOSPC.
    _, error = on_a_thread(lambda: run(audio(3.0), RawSink("/dev/full"), write_thread=True))
    assert isinstance(error, OSError) and error.errno == 28
    assert pipeline_threads() == []


class Exploding:
    """A first stage that fails (or is interrupted) once the sink has had three frames."""

    def __init__(self, sink: Recorder, error: BaseException) -> None:
        self.sink, self.error = sink, error

    def push(self, block):
        if self.sink.writes >= 3:
            raise self.error
        time.sleep(0.001)  # let the writer thread catch up
        return [block]

    def flush(self):
        return []

    def reset(self):
        pass


# Types, not instances: a raised instance made at collection would keep the pipeline (its
# traceback's frames) alive until the interpreter's exit.
@pytest.mark.parametrize("error_type", [ValueError, KeyboardInterrupt])
def test_a_failure_before_the_writer_stops_it_without_a_flush(error_type):
    error = error_type("bad block")
    # The tail's flush would write the framer's partial frame: after a failure or Ctrl-C
    # upstream, nothing more is written, the sink is aborted, and no thread is left.
    source = ArraySource(audio(10.0, channels=1), RATE, block_frames=1000)
    tail = standard_stages(source, "pcm_16k", frame_ms=100, gate_threshold=None)
    sink = Recorder()
    pipeline = Pipeline(source, [Exploding(sink, error), *tail], sink, write_thread=True)
    _, raised = on_a_thread(pipeline.run)
    assert raised is error
    verbs = [verb for verb, _ in sink.calls]
    assert verbs[-1] == "abort" and "close" not in verbs
    # Whole 100 ms frames only: the tail's flush (the resampler's held-back samples, the
    # framer's partial frame) is never written.
    assert sink.writes >= 3
    assert set(sink.sizes) == {1600}
    assert pipeline_threads() == []


def test_a_file_sink_gets_the_same_bytes(tmp_path):
    data = audio(2.0)
    paths = []
    for write_thread in (False, True):
        path = tmp_path / f"out-{write_thread}.raw"
        run(data, RawSink(path), write_thread=write_thread)
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].stat().st_size == 2 * 2 * 16000


def test_stop_ends_the_run_cleanly_with_the_writer_thread():
    # stop() from another thread (here the writer's own): the stream ends, the tail is
    # flushed, the sink closed.
    data = audio(30.0, channels=1)
    sink = Recorder()
    source = ArraySource(data, RATE, block_frames=1000)
    stages = standard_stages(source, "pcm_16k", frame_ms=100, gate_threshold=None)
    pipeline = Pipeline(source, stages, sink, write_thread=True)
    original = sink.write

    def write(frame: Frame) -> None:
        original(frame)
        if sink.writes == 3:
            pipeline.stop()

    sink.write = write  # type: ignore[method-assign]
    pipeline.run()
    verbs = [verb for verb, _ in sink.calls]
    assert verbs[-1] == "close"
    assert len(sink.pcm) // 2 < len(data) // 3  # it did stop early
    assert pipeline_threads() == []


# -- what a pipeline takes, and its reader thread --------------------------------------------


class BrokenFile:
    """A file source whose decoding fails after two blocks (a disk error mid-file)."""

    rate, channels, name, live = RATE, 1, "broken", False

    def blocks(self):
        for i in range(2):
            yield Block(np.zeros((RATE, 1), dtype=np.float32), i * RATE, RATE, 0)
        raise OSError(5, "Input/output error")


class Endless:
    """A source with no stop(): it ends only at its end (here, never before the limit)."""

    rate, channels, name, live = RATE, 1, "endless", False

    def blocks(self):
        i = 0
        while True:
            yield Block(np.zeros((4800, 1), dtype=np.float32), i * 4800, RATE, 0)
            i += 1


def test_a_reader_threads_error_is_raised_by_run_and_the_sink_aborted():
    sink = Recorder()
    source = BrokenFile()
    stages = standard_stages(source, "pcm_16k", gate_threshold=None)  # type: ignore[arg-type]
    _, err = on_a_thread(lambda: Pipeline(source, stages, sink).run())  # type: ignore[arg-type]
    assert isinstance(err, OSError) and err.errno == 5
    assert [verb for verb, _ in sink.calls][-1] == "abort"
    assert not pipeline_threads()


def test_a_source_without_stop_is_read_to_the_limit():
    source = Endless()
    sink = Recorder()
    stages = standard_stages(source, "pcm_16k", gate_threshold=None)  # type: ignore[arg-type]
    stats = Pipeline(source, stages, sink, limit_seconds=0.5).run()  # type: ignore[arg-type]
    assert stats.input_frames == RATE // 2 and len(sink.pcm) == 2 * 8000
    assert not pipeline_threads()


def test_what_is_not_a_sink_is_refused_when_the_pipeline_is_made():
    source = ArraySource(audio(0.1), RATE)
    with pytest.raises(TypeError, match="is not a sink"):
        Pipeline(source, [], object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gives no results"):
        next(Pipeline(source, [], RawSink(io.BytesIO())).results())


def test_the_frame_rate_is_the_last_resampling_stages():
    source = ArraySource(audio(0.1), RATE)
    assert Pipeline(source, standard_stages(source, "pcm_8k"), Recorder()).rate == 8000
    assert Pipeline(source, [], Recorder()).rate == RATE


# -- the gate it names ------------------------------------------------------------------


def test_the_gate_is_named_whatever_its_place_among_the_stages():
    source = ArraySource(np.zeros(16000, dtype=np.float32), 16000)
    stages = standard_stages(source, "pcm_16k")
    pipeline = Pipeline(source, stages, NullSink())
    assert isinstance(pipeline.gate, EnergyGate) and pipeline.gate is stages[-1]
    ungated = standard_stages(source, "pcm_16k", gate_threshold=None)
    assert Pipeline(source, ungated, NullSink()).gate is None
    # A stage of the caller's own after the gate does not hide it.
    gate = EnergyGate()
    mine = [Resampler(16000, 16000, 1), Framer(16000, 100), gate, _PassThrough()]
    assert Pipeline(source, mine, NullSink()).gate is gate


class _PassThrough:
    def push(self, item):
        return [item]

    def flush(self):
        return []

    def reset(self):
        pass


def test_the_gate_meters_the_run():
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = np.concatenate([np.zeros(16000, dtype=np.float32), tone])
    source = ArraySource(data, 16000)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), NullSink())
    pipeline.run()
    gate = pipeline.gate
    assert gate is not None
    assert gate.seen_samples == len(data)
    assert gate.speaking and gate.level_db > -20

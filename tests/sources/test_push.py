"""PushSource: audio written from another thread goes through a Pipeline like a file's."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from nsaudio.blocks import Frame
from nsaudio.errors import AudioLostError, InputError
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sources.file import FileSource
from nsaudio.sources.push import PushSource

from ..conftest import fixture_path

STEREO = fixture_path("speech_44100_stereo_int16.wav")
CUTS = (1, 17, 509, 44100, 3)


class Collect:
    """A sink that keeps every frame (optionally slowly: a consumer that falls behind)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.frames: list[Frame] = []
        self.delay = delay

    def open(self, rate: int) -> None:
        self.rate = rate

    def write(self, frame: Frame) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.frames.append(frame)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    @property
    def pcm(self) -> bytes:
        return b"".join(f.pcm for f in self.frames)


def _write_all(source: PushSource, data: np.ndarray, as_bytes: bool = False) -> threading.Thread:
    def write() -> None:
        i = k = 0
        while i < len(data):
            n = CUTS[k % len(CUTS)]
            chunk = data[i : i + n]
            assert source.write(chunk.tobytes() if as_bytes and k % 2 else chunk)
            i, k = i + n, k + 1
        source.end()

    writer = threading.Thread(target=write, name="test-writer", daemon=True)
    writer.start()
    return writer


@pytest.mark.parametrize("as_bytes", [False, True])
def test_written_audio_makes_the_same_frames_as_the_file(as_bytes):
    file_source = FileSource(STEREO)
    reference = Collect()
    Pipeline(file_source, standard_stages(file_source, "pcm_16k"), reference).run()

    data, rate = sf.read(STEREO, dtype="int16")
    # A ring of 10 ms: the writer waits for the pipeline again and again; nothing is lost.
    source = PushSource(rate, 2, "int16", ring_seconds=0.01)
    sink = Collect()
    writer = _write_all(source, data, as_bytes)
    Pipeline(source, standard_stages(source, "pcm_16k"), sink).run()
    writer.join(10)
    assert sink.pcm == reference.pcm  # identical to the sample
    assert [f.start for f in sink.frames] == [f.start for f in reference.frames]
    assert source.written_frames == len(data) and source.dropped_frames == 0


def test_live_drops_are_counted_and_reported_like_a_microphones():
    rate = 16000
    source = PushSource(rate, 1, "float32", live=True, ring_seconds=0.05)
    sink = Collect(delay=0.02)  # 20 ms per 100 ms frame: slower than a writer that never waits
    tone = (0.3 * np.sin(np.arange(rate) / rate * 2 * np.pi * 440)).astype(np.float32)

    def write() -> None:
        for _ in range(3):
            for i in range(0, rate, 160):
                source.write(tone[i : i + 160])  # never waits: live
        source.end()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    with pytest.raises(AudioLostError) as lost:
        Pipeline(source, standard_stages(source, "pcm_16k", gate_threshold=None), sink).run()
    writer.join(10)
    dropped = source.dropped_frames
    assert dropped > 0
    losses = lost.value.losses
    assert losses.captured_seconds == dropped / rate and losses.queued_seconds == 0
    assert str(lost.value).endswith("this machine fell behind the live audio")
    sent = sum(len(f) for f in sink.frames)
    assert sent == 3 * rate - dropped  # everything not dropped was sent, once


def test_bad_writes_raise_and_queue_nothing():
    source = PushSource(16000, 2, "float32")
    source.write(np.zeros((10, 2), np.float32))
    for bad in (
        np.zeros((10, 2), np.float64),  # wrong dtype
        np.zeros(10, np.float32),  # mono into stereo
        np.full((4, 2), np.nan, np.float32),
        b"\x00" * 12,  # a frame and a half
    ):
        with pytest.raises(InputError):
            source.write(bad)
    assert source.written_frames == 10
    source.end()
    with pytest.raises(InputError, match="after end"):
        source.write(np.zeros((10, 2), np.float32))
    assert [len(b) for b in source.blocks()] == [10]


@pytest.mark.parametrize(
    "args", [(0, 1, "float32"), (16000, 0, "float32"), (16000, 1, "int8"), (16000.5, 1, "int16")]
)
def test_a_bad_layout_is_an_input_error(args):
    with pytest.raises(InputError):
        PushSource(*args)


def test_stop_ends_the_pipeline_and_later_writes_are_refused():
    source = PushSource(16000, 1, "int16", live=True)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), Collect())
    done = threading.Event()
    runner = threading.Thread(target=lambda: (pipeline.run(), done.set()), daemon=True)
    runner.start()
    assert source.write(np.zeros(1600, np.int16))
    pipeline.stop()  # as Ctrl-C does: the source ends, the stages flush, the sink closes
    assert done.wait(10)
    assert source.write(np.zeros(1600, np.int16)) is False
    assert pipeline.stats.input_frames == 1600


def test_a_non_live_writer_waiting_for_room_is_released_by_stop():
    source = PushSource(16000, 1, "int16", ring_seconds=0.01)  # 160 frames
    source.write(np.zeros(160, np.int16))
    result: list[bool] = []
    writer = threading.Thread(target=lambda: result.append(source.write(np.zeros(160, np.int16))))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive()  # waits: the ring is full and nobody reads
    source.stop()
    writer.join(5)
    assert result == [False]


def test_several_writer_threads_each_chunk_whole_and_in_place():
    # Four threads write chunks of their own value: every block is one whole chunk, the
    # positions follow one another, and nothing is lost or doubled.
    source = PushSource(8000, 1, "int16", ring_seconds=0.05)
    n_chunks, size = 200, 37

    def write(value: int) -> None:
        for _ in range(n_chunks):
            source.write(np.full(size, value, np.int16))

    writers = [threading.Thread(target=write, args=(v,)) for v in range(1, 5)]
    for w in writers:
        w.start()
    blocks = []
    reader = threading.Thread(target=lambda: blocks.extend(source.blocks()))
    reader.start()
    for w in writers:
        w.join(10)
    source.end()
    reader.join(10)
    assert len(blocks) == 4 * n_chunks
    assert [b.start for b in blocks] == [k * size for k in range(4 * n_chunks)]
    for b in blocks:
        assert len(set(b.data[:, 0].tolist())) == 1  # one writer's chunk, whole
    values = np.concatenate([b.data[:, 0] for b in blocks])
    assert [int((values == v).sum()) for v in range(1, 5)] == [n_chunks * size] * 4

"""One sink per channel behind the pipeline's one (``sinks/channels.py``): each channel's
frames to its own sink, failures kept to their channel and named, results merged.

The sinks here are real ones (WAV files, the WebSocket sink against the local server) and
sinks of the test's own that fail on purpose, as any caller's own sink may.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from nsaudio.blocks import Frame
from nsaudio.cli.exits import exit_status
from nsaudio.errors import AuthenticationError, ConsumerError, ServiceError
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.server.app import LocalServer
from nsaudio.sinks import NullSink, WavSink
from nsaudio.sinks.channels import ChannelSinks
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sinks.tee import TeeSink
from nsaudio.sources import FileSource
from nsaudio.sources.synthetic import ArraySource
from nsaudio.stages.split import ChannelSplit

from ..conftest import FIXTURES, MANIFEST

CALL = next(f for f in MANIFEST if f["kind"] == "conversation")
RATE = 16000


class Failing:
    """A sink that fails as told: at ``open()``, or at its ``at``-th frame."""

    def __init__(self, error: Exception, at: int | None = None) -> None:
        self.error, self.at, self.frames, self.aborted = error, at, 0, False

    def open(self, rate: int) -> None:
        if self.at is None:
            raise self.error

    def write(self, frame: Frame) -> None:
        self.frames += 1
        if self.frames == self.at:
            raise self.error

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True


def stereo(seconds: float = 2.0) -> ArraySource:
    t = np.arange(round(seconds * 48000)) / 48000
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)
    return ArraySource(np.stack([left, right], axis=1).astype(np.float32), 48000)


def split_pipeline(source, sinks: ChannelSinks) -> Pipeline:
    lanes = [standard_stages(source, "pcm_16k", channel=i) for i in range(source.channels)]
    return Pipeline(source, [ChannelSplit(lanes, rate=RATE)], sinks, rate=RATE)


def test_each_channel_gets_exactly_its_own_frames(tmp_path):
    source = stereo()
    paths = {name: tmp_path / f"{name}.wav" for name in ("left", "right")}
    sinks = ChannelSinks(["left", "right"], lambda name, _: WavSink(paths[name]))
    split_pipeline(source, sinks).run()
    for i, name in enumerate(("left", "right")):
        mono = ArraySource(source.data[:, i], 48000)
        alone = tmp_path / f"alone-{name}.wav"
        Pipeline(mono, standard_stages(mono, "pcm_16k"), WavSink(alone)).run()
        got, expected = sf.read(paths[name], dtype="int16")[0], sf.read(alone, dtype="int16")[0]
        assert len(got) == RATE * 2 and np.array_equal(got, expected), name


def test_a_channel_failing_midway_is_set_aside_the_others_finish_then_it_is_named(tmp_path):
    failing = Failing(ServiceError("gave up; untranscribed: 0.3-2.0 s of the stream"), at=3)
    kept = tmp_path / "left.wav"
    sinks = ChannelSinks(
        ["left", "right"], lambda name, _: WavSink(kept) if name == "left" else failing
    )
    with pytest.raises(ServiceError) as caught:
        split_pipeline(stereo(), sinks).run()
    assert str(caught.value) == "channel right: gave up; untranscribed: 0.3-2.0 s of the stream"
    assert exit_status(caught.value) == 1 and failing.aborted and failing.frames == 3
    assert len(sf.read(kept, dtype="int16")[0]) == 2 * RATE  # the other one went to its end


def test_every_channel_failing_ends_the_stream_at_once_with_each_named():
    made = {}

    def make(name, _):
        error = ServiceError(f"{name} broke")
        error.untranscribed([(1.0, 2.5)] if name == "a" else [], None)
        made[name] = Failing(error, at=2)
        return made[name]

    with pytest.raises(ServiceError) as caught:
        split_pipeline(stereo(60), ChannelSinks(["a", "b"], make)).run()
    assert str(caught.value) == (
        "channel a: a broke; untranscribed: 1.0-2.5 s of the stream; channel b: b broke"
    )
    assert made["a"].frames == made["b"].frames == 2  # not a frame more than it took


def test_a_channel_that_cannot_open_is_named_and_the_others_are_let_go(tmp_path):
    never = tmp_path / "never.wav"
    sinks = ChannelSinks(
        ["agent", "customer"],
        lambda name, _: WavSink(never) if name == "agent" else Failing(AuthenticationError("no")),
    )
    with pytest.raises(AuthenticationError) as caught:
        split_pipeline(stereo(), sinks).run()
    assert str(caught.value) == "channel customer: no" and exit_status(caught.value) == 3
    assert not list(tmp_path.iterdir())  # the WAV that was opened was taken away


def test_frames_that_are_not_a_splits_are_refused():
    sinks = ChannelSinks(["a", "b"], lambda name, _: NullSink())
    sinks.open(RATE)
    with pytest.raises(TypeError, match="ChannelSplit"):
        sinks.write(Frame(b"\0\0" * 160, 0, RATE, 0))
    sinks.abort()
    with pytest.raises(ValueError, match="distinct"):
        ChannelSinks(["a", "a"], lambda name, _: NullSink())


@pytest.mark.server
def test_results_come_merged_labelled_and_a_failing_consumer_stops_every_session():
    source = FileSource(FIXTURES / CALL["file"])
    with LocalServer() as server:
        made: list[NeuralSpaceSink] = []

        def make(name, on_result):
            made.append(NeuralSpaceSink(server.base_url, "k", StreamParams(), on_result=on_result))
            return TeeSink(made[-1], NullSink())

        got = list(split_pipeline(source, ChannelSinks(CALL["names"], make)).results())
        fulls = [r for r in got if r.full and r.text]
        for name, texts in zip(CALL["names"], CALL["channel_texts"], strict=True):
            assert [r.text for r in fulls if r.channel == name] == texts
        assert [r.start_time for r in fulls] == sorted(r.start_time for r in fulls)

        def broken(result):
            raise OSError("the consumer broke")

        made.clear()
        sinks = ChannelSinks(CALL["names"], make, on_result=broken)
        with pytest.raises(ConsumerError, match="the consumer broke") as caught:
            split_pipeline(FileSource(FIXTURES / CALL["file"]), sinks).run()
        assert isinstance(caught.value.__cause__, OSError)
        assert all(sink.stats()["samples_sent"] < 12 * RATE for sink in made)  # stopped early

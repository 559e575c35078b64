"""TeeSink: one stream into several sinks, checked when it is made, losses passed through."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from nsaudio import (
    ArraySource,
    AudioLostError,
    NullSink,
    Pipeline,
    TeeSink,
    WavSink,
    standard_stages,
)
from nsaudio.blocks import Frame
from nsaudio.sinks import DropsAudio


class DroppingSink(NullSink):
    """A sink of one's own that drops every other frame, as a live service's queue may,
    and says so (the DropsAudio protocol)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[tuple[int, int]] = []

    def write(self, frame: Frame) -> None:
        if len(self.dropped) < (frame.start // frame.frames + 1) // 2:
            self.dropped.append((frame.start, frame.end))
        else:
            super().write(frame)

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        return sum(b - a for a, b in self.dropped), list(self.dropped)


class FailingOpen(NullSink):
    def open(self, rate: int) -> None:
        raise OSError("no room")


def test_every_frame_reaches_every_sink(tmp_path):
    t = np.arange(16000) / 16000
    source = ArraySource(0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    counted = NullSink()
    wav = WavSink(tmp_path / "sent.wav")
    Pipeline(source, standard_stages(source), TeeSink(counted, wav)).run()
    assert counted.frames_written == 16000
    assert sf.info(str(tmp_path / "sent.wav")).frames == 16000


def test_sinks_are_checked_when_the_tee_is_made():
    with pytest.raises(TypeError, match="separate arguments"):
        TeeSink([NullSink(), NullSink()])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not a sink"):
        TeeSink(NullSink(), "out.wav")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at least one"):
        TeeSink()


def test_a_failed_open_aborts_the_sinks_already_opened(tmp_path):
    wav = WavSink(tmp_path / "never.wav")
    with pytest.raises(OSError, match="no room"):
        TeeSink(wav, FailingOpen()).open(16000)
    assert list(tmp_path.iterdir()) == []  # the WAV opened first was aborted: nothing left


def test_losses_pass_through_the_tee_to_the_pipeline():
    dropping = DroppingSink()
    tee = TeeSink(NullSink(), dropping)
    assert isinstance(tee, DropsAudio) and not isinstance(NullSink(), DropsAudio)
    source = ArraySource(np.zeros(16000, dtype=np.float32), 16000, realtime=True)
    with pytest.raises(AudioLostError) as caught:
        Pipeline(source, standard_stages(source, frame_ms=100), tee).run()
    lost, spans = tee.dropped_audio()
    assert lost == sum(b - a for a, b in dropping.dropped) > 0
    assert spans == sorted(spans) and caught.value.losses.queued_seconds == lost / 16000

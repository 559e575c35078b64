"""Live audio lost before sending: the one line that says so, and the pipeline that notices."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from nsaudio import AudioLostError, NullSink, Pipeline, standard_stages
from nsaudio.blocks import Block
from nsaudio.cli.exits import exit_status
from nsaudio.losses import Losses, merge_spans


def test_nothing_lost_is_false_and_says_nothing():
    assert not Losses()
    assert Losses().describe() == ""


def test_captured_drops_name_the_seconds_and_the_places():
    lost = Losses(captured=[(3.1, 3.52)], captured_seconds=0.42)
    assert lost
    assert lost.describe() == (
        "0.42 s of captured audio was dropped before it could be sent (at 3.1-3.5 s): "
        "this machine fell behind the live audio"
    )


def test_both_rings_merge_their_places_and_name_both_causes():
    lost = Losses(
        captured=[(1.0, 1.2)], captured_seconds=0.2,
        queued=[(1.2, 1.5), (9.0, 9.1)], queued_seconds=0.4,
    )  # fmt: skip
    assert lost.describe() == (
        "0.60 s of captured audio was dropped before it could be sent (at 1.0-1.5 s, "
        "9.0-9.1 s): this machine and the connection fell behind the live audio"
    )
    assert (
        Losses(queued=[(2.0, 2.1)], queued_seconds=0.1)
        .describe()
        .endswith(": the connection fell behind the live audio")
    )


def test_many_places_are_counted_and_unrecorded_ones_said():
    spans = [(float(i), i + 0.1) for i in range(5)]
    text = Losses(captured=spans, captured_seconds=0.5).describe()
    assert "(at 0.0-0.1 s, 1.0-1.1 s, 2.0-2.1 s and 2 more places)" in text
    text = Losses(captured=spans[:1], captured_seconds=3.0).describe()
    assert "(at 0.0-0.1 s and elsewhere)" in text


def test_device_overflows_say_the_amount_is_unknown():
    text = Losses(overflows=2, overflow_at=[1.25, 4.0]).describe()
    assert text == (
        "the audio device discarded input 2 times (at 1.2 s, 4.0 s) (how much, it does not "
        "say): this machine did not read it in time"
    )
    both = Losses(captured=[(0.0, 0.005)], captured_seconds=0.005, overflows=1)
    assert both.describe().startswith("5.0 ms of captured audio was dropped")
    assert "; the audio device discarded input 1 time (how much" in both.describe()


def test_merge_spans():
    assert merge_spans([(3, 4), (0, 1), (1, 2), (3.5, 5)]) == [(0, 2), (3, 5)]


class JumpingLiveSource:
    """A live source whose blocks skip the positions in ``skip`` (as a capture ring's drops)."""

    live = True
    rate = 16000
    channels = 1
    name = "jumping"

    def __init__(self, seconds: float, skip: list[tuple[int, int]], block: int = 160) -> None:
        self.n, self.skip, self.block = round(seconds * self.rate), skip, block
        self.overflows: tuple[int, list[int]] = (0, [])

    def blocks(self) -> Iterator[Block]:
        for start in range(0, self.n, self.block):
            if not any(a <= start < b for a, b in self.skip):
                yield Block(np.zeros((self.block, 1), np.float32), start, self.rate, 0)

    def stop(self) -> None:
        pass


def run(source: object) -> AudioLostError | None:
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), NullSink())  # type: ignore[arg-type]
    try:
        pipeline.run()
    except AudioLostError as err:
        return err
    return None


def test_a_live_source_whose_positions_jump_ends_in_audio_lost():
    err = run(JumpingLiveSource(2.0, [(8000, 9600), (16000, 16320)]))
    assert err is not None and exit_status(err) == 1
    assert err.losses.captured == [(0.5, 0.6), (1.0, 1.02)]
    assert err.losses.captured_seconds == pytest.approx(0.12)
    assert err.stats.gap_frames == 1920
    assert str(err).startswith("0.12 s of captured audio was dropped before it could be sent")


def test_a_live_source_that_follows_on_is_a_success():
    assert run(JumpingLiveSource(1.0, [])) is None


def test_device_overflows_inside_the_stream_end_in_audio_lost():
    source = JumpingLiveSource(1.0, [])
    source.device_overflows = lambda: (1, [4000])  # type: ignore[attr-defined]
    err = run(source)
    assert err is not None and err.losses.overflow_at == [0.25]
    assert err.losses.overflows == 1 and err.losses.dropped_seconds == 0


def test_files_are_never_checked_for_gaps():
    source = JumpingLiveSource(1.0, [(0, 1600)])
    source.live = False  # type: ignore[misc]
    assert run(source) is None

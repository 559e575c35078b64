"""A live source whose ring drops audio mid-utterance, through the stages and the sink to
the real local server: result times stay absolute.

The source is the two-utterance fixture captured in 20 ms blocks into a real
``Ring(drop_oldest)``; for a while the consumer stalls, the ring fills and drops its oldest
blocks, so 0.4 s of the first sentence never reaches the stages. Everything after the drop
must keep its true stream time: the second sentence's result has the times it has in a run
where nothing was dropped (within one frame), not 0.4 s earlier. And the run does not pass
for a success: every result is delivered, then ``AudioLostError`` says what was dropped and
where.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nsaudio import NeuralSpaceSink, Pipeline, StreamParams, standard_stages
from nsaudio.blocks import Block
from nsaudio.cli.exits import exit_status
from nsaudio.errors import AudioLostError
from nsaudio.ring import Ring
from nsaudio.server.app import LocalServer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RATE = 16000
BLOCK = 320  # 20 ms, the frame size too: the drop is a whole number of frames
FRAME_S = BLOCK / RATE


class StallingLiveSource:
    """Blocks of ``data`` through a drop_oldest ring whose consumer stalls from sample
    ``stall[0]`` to ``stall[1]``: the ring keeps its newest ``ring_samples`` and drops the rest."""

    live = True
    channels = 1
    rate = RATE
    name = "stalling"
    format = "array/float32"

    def __init__(self, data: np.ndarray, stall: tuple[int, int], ring_samples: int) -> None:
        self.data = data
        self.stall = stall
        self.ring: Ring[Block] = Ring(ring_samples, "drop_oldest")

    def blocks(self) -> Iterator[Block]:
        for start in range(0, len(self.data), BLOCK):
            self.ring.put(Block(self.data[start : start + BLOCK], start, RATE, time.monotonic_ns()))
            if not self.stall[0] <= start < self.stall[1]:
                while (block := self.ring.get(timeout=0)) is not None:
                    yield block


def fulls(
    server: LocalServer, source: StallingLiveSource, lost: list[AudioLostError] | None = None
) -> list[tuple[float, float, str]]:
    """The full results; with ``lost``, the run must end in the ``AudioLostError`` it holds."""
    sink = NeuralSpaceSink(server.base_url, "key", StreamParams(language="en", format="pcm_16k"))
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k", frame_ms=20), sink)
    out: list[tuple[float, float, str]] = []
    try:
        for r in pipeline.results():
            if r.full:
                out.append((r.start_time, r.end_time, r.text))
    except AudioLostError as err:
        if lost is None:
            raise
        lost.append(err)
    else:
        assert lost is None, "a run that dropped audio ended as a success"
    return out


@pytest.fixture(scope="module")
def fixture() -> tuple[np.ndarray, list[list[int]], list[str]]:
    entry = next(
        e
        for e in json.loads((FIXTURES / "fixtures.json").read_text())
        if e["kind"] == "two_utterances"
    )
    data, rate = sf.read(FIXTURES / entry["file"], dtype="float32")
    assert rate == RATE
    return data, entry["segments"], entry["texts"]


def test_times_after_a_ring_drop_mid_utterance_stay_absolute(sphinx_server, fixture):
    data, segments, texts = fixture
    (s1, e1), (s2, e2) = segments
    stall = (s1 + 12800, s1 + 12800 + 16000)  # 1 s stalled inside the first sentence
    ring_samples = 9600  # the ring keeps 0.6 s of the 1.02 s queued: 0.42 s is dropped
    assert stall[1] < e1

    reference = fulls(sphinx_server, StallingLiveSource(data, (0, 0), ring_samples))
    source = StallingLiveSource(data, stall, ring_samples)
    lost: list[AudioLostError] = []
    dropped = fulls(sphinx_server, source, lost)

    gone = stall[1] - stall[0] + BLOCK - ring_samples  # 0.42 s
    assert source.ring.dropped_samples == gone
    # Every result came first; then the error, with what the ring dropped, where it dropped it.
    (err,) = lost
    assert exit_status(err) == 1
    assert err.losses.captured_seconds == pytest.approx(gone / RATE)
    first = -(-stall[0] // BLOCK) * BLOCK  # the first block the stalled consumer missed
    assert err.losses.captured == [(first / RATE, (first + gone) / RATE)]
    assert (err.losses.queued_seconds, err.losses.overflows) == (0, 0)
    assert str(err) == (
        f"0.42 s of captured audio was dropped before it could be sent (at "
        f"{first / RATE:.1f}-{(first + gone) / RATE:.1f} s): "
        "this machine fell behind the live audio"
    )
    assert [text for *_, text in reference] == texts
    assert len(dropped) == 2
    (ref1, ref2), (got1, got2) = reference, dropped
    # The sentence after the drop: its true times, within one frame.
    assert got2[0] == pytest.approx(ref2[0], abs=FRAME_S)
    assert got2[1] == pytest.approx(ref2[1], abs=FRAME_S)
    assert got2[2] == texts[1]
    # The sentence the drop cut into starts where it did and ends at its true end.
    assert got1[0] == pytest.approx(ref1[0], abs=FRAME_S)
    assert got1[1] == pytest.approx(ref1[1], abs=FRAME_S)
    # And against the fixture's own marks: each result holds its sentence.
    assert got1[0] <= s1 / RATE and got1[1] >= e1 / RATE - FRAME_S
    assert got2[0] <= s2 / RATE and got2[1] >= e2 / RATE - FRAME_S

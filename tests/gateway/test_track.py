"""A call's track (``StreamTrack``) when its stream fails under it, on a real local server."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from nsaudio.blocks import Block
from nsaudio.gateway.track import ServiceTarget, StreamTrack, TrackSettings
from nsaudio.neuralspace.protocol import StreamParams

RATE = 8000


@pytest.mark.server
@pytest.mark.parametrize("when", ["mid-call", "after the last packet"])
def test_a_track_whose_silero_scoring_fails_ends_with_that_error(three_in_noise, when):
    # The batched Silero scoring fails (the model raised): the frames of that batch are gone,
    # so the track's verdict is not ok and names the detector, and finish() returns at once
    # instead of waiting for a drain of audio that was never sent.
    pytest.importorskip("onnxruntime")
    import soxr

    from nsaudio.aio.scoring import scoring_for
    from nsaudio.server.app import LocalServer

    x = soxr.resample(three_in_noise.samples[: 6 * 16000], 16000, RATE).astype(np.int16)

    async def main(base_url):
        settings = TrackSettings(params=StreamParams(format="pcm_8k"), gate=True,
                                 gate_vad="silero", ping_timeout=60, drain_timeout=60)  # fmt: skip
        track = StreamTrack(ServiceTarget(base_url, "key"), settings, RATE, lambda r: None)
        packets = range(0, len(x) - 160 + 1, 160)
        for k, i in enumerate(packets):
            if k == (len(packets) // 2 if when == "mid-call" else len(packets) - 1):
                stream = track.stream
                assert stream is not None and stream.gate is not None
                batcher = scoring_for(asyncio.get_running_loop(), stream.gate.detector).batcher

                def broken(jobs):
                    raise RuntimeError("onnxruntime: simulated failure")

                batcher.run = broken
            track.push(Block(x[i : i + 160], i, RATE, time.monotonic_ns()))
            await asyncio.sleep(0.002)
        return await asyncio.wait_for(track.finish(), 30)  # not the drain's 60 s

    with LocalServer() as server:
        verdict = asyncio.run(main(server.base_url))
    assert not verdict.ok
    assert (
        verdict.error == "the speech detector failed: RuntimeError: onnxruntime: simulated failure"
    )

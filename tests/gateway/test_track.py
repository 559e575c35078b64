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


@pytest.mark.server
def test_a_ulaw_track_joins_its_packets_and_each_frame_leaves_at_the_packet_it_did_alone():
    """A Twilio track's 20 ms µ-law packets go to its stream a frame at a time, decoded in
    one step. The frames are the ones packet-by-packet ``send_nowait`` of the decoded audio
    makes (positions, gaps and all), and each leaves during the push of the same packet.
    Gaps: one packet inside a frame, two at a frame's edge, one before the last packet."""
    from nsaudio.aio import connect
    from nsaudio.gateway.twilio import ulaw_to_int16
    from nsaudio.server.app import LocalServer

    from .support import ulaw_encode

    rng = np.random.default_rng(5)
    codes = np.frombuffer(ulaw_encode(rng.standard_normal(3 * RATE) * 0.1), np.uint8)
    missing = {37, 80, 81, len(codes) // 160 - 2}
    packets = [(k * 160, codes[k * 160 : k * 160 + 160]) for k in range(len(codes) // 160)]
    packets = [(pos, p) for pos, p in packets if pos // 160 not in missing]
    params = StreamParams(format="pcm_8k")

    def at_packets(send_log, pushed):
        """Each frame of real audio: its start, and the last packet pushed before it was
        written to the socket (the loop runs the sink between two pushes)."""
        import bisect

        return [(start, bisect.bisect_right(pushed, sent) - 1) for start, t, sent in send_log if t]

    async def joined(url):
        settings = TrackSettings(params=params, log_sends=True)
        track = StreamTrack(ServiceTarget(url, "key"), settings, RATE, lambda r: None, "ulaw")
        while not track._sending:  # timed from an open session, as the reference is
            await asyncio.sleep(0.01)
        stream, calls = track.stream, []
        send_nowait = stream.send_nowait
        stream.send_nowait = lambda data, start: (
            calls.append(start) or send_nowait(data, start=start)
        )
        pushed = []
        for pos, p in packets:
            pushed.append(time.monotonic_ns())
            track.push(Block(p, pos, RATE, pushed[-1]))
            await asyncio.sleep(0.001)
        verdict = await asyncio.wait_for(track.finish(), 30)
        assert len(calls) <= len(packets) // 5 + 2 * len(missing) + 1, calls  # joined
        return verdict, at_packets(track.sink.send_log, pushed)

    async def one_by_one(url):
        stream = connect(url, "key", params, rate=RATE, dtype="int16", live=True, log_sends=True)
        pushed = []
        async with stream:
            for pos, p in packets:
                pushed.append(time.monotonic_ns())
                stream.send_nowait(ulaw_to_int16(p.tobytes()), start=pos)
                await asyncio.sleep(0.001)
            await stream.end()
            async for _ in stream:
                pass
        return at_packets(stream.sink.send_log, pushed)

    with LocalServer() as server:
        verdict, frames = asyncio.run(joined(server.base_url))
        reference = asyncio.run(one_by_one(server.base_url))
    assert verdict.ok, verdict
    assert frames == reference
    starts = [s for s, _ in frames]
    assert 37 * 160 // 800 * 800 in starts and 38 * 160 in starts and 82 * 160 in starts
    assert len(frames) == len(set(starts)) >= 29

"""Silero gates of one loop's streams, scored together in a worker thread (nsaudio.aio.scoring).

The lanes are checked against the same gate deciding inline, frame for frame; the streams
against the threaded ``Pipeline`` on a real recording and a real local server.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import nsaudio
from nsaudio.blocks import Frame
from nsaudio.errors import DetectorError

from .support import collect, silero_pipeline

pytest.importorskip("onnxruntime")

RATE = 16000
FRAME = 1600  # 100 ms


def _gate():
    from nsaudio.detectors import make_detector
    from nsaudio.stages import SpeechGate

    return SpeechGate(make_detector("silero"), skip_silence=True)


def _frames(samples: np.ndarray, size: int = FRAME) -> list[Frame]:
    return [
        Frame(samples[i : i + size].tobytes(), i, RATE, 0)
        for i in range(0, len(samples) - size + 1, size)
    ]


def _decided(frames: list[Frame]) -> list[tuple[int, int, bool | None]]:
    return [(f.start, f.end, f.speech) for f in frames]


def _inline(frames: list[Frame]) -> list[tuple[int, int, bool | None]]:
    gate = _gate()
    return _decided([out for f in frames for out in gate.push(_copy(f))])


def _copy(f: Frame) -> Frame:
    return Frame(f.pcm, f.start, f.rate, f.t_ns)


def test_lanes_decide_as_the_gate_does_inline_in_order_and_in_batches(three_in_noise):
    # Three streams of the same recording, offset, pushed in bursts of uneven sizes (a
    # burst's frames go in one job, the next burst's wait for the next batch): each lane
    # passes the same frames, with the same labels, as its gate pushing them one by one.
    from nsaudio.aio.scoring import scoring_for

    streams = [three_in_noise.samples[k * 8000 :] for k in range(3)]
    frames = [_frames(s) for s in streams]
    expected = [_inline(f) for f in frames]

    async def main():
        loop = asyncio.get_running_loop()
        got: list[list[Frame]] = [[], [], []]
        gates = [_gate() for _ in streams]
        scoring = scoring_for(loop, gates[0].detector)
        lanes = [scoring.lane(g, got[i].extend) for i, g in enumerate(gates)]
        threads = set()
        run = scoring.batcher.run

        def recording_run(jobs):
            threads.add(threading.current_thread().name)
            run(jobs)

        scoring.batcher.run = recording_run
        for i in range(0, max(map(len, frames)), 7):
            for k, lane in enumerate(lanes):
                lane.push(_copy(f) for f in frames[k][i : i + 1 + (i + k) % 7])
                lane.push(_copy(f) for f in frames[k][i + 1 + (i + k) % 7 : i + 7])
            await asyncio.sleep(0)
        for lane in lanes:
            await lane.settle()
        return got, scoring.batcher, threads

    got, batcher, threads = asyncio.run(main())
    for k in range(3):
        assert _decided(got[k]) == expected[k]
    assert any(e[2] for e in expected[0]) and not all(e[2] for e in expected[0])
    assert batcher.jobs > batcher.batches  # several streams' frames scored per call
    assert threads and all(t.startswith("nsaudio-silero") for t in threads)


def test_frames_of_another_size_wait_for_the_next_batch_and_keep_their_order(three_in_noise):
    x = three_in_noise.samples[: 4 * RATE]
    frames = _frames(x[: 3 * RATE]) + _frames(x[3 * RATE :], 800)  # then 50 ms frames
    from nsaudio.aio.scoring import scoring_for

    async def main():
        gate = _gate()
        lane = scoring_for(asyncio.get_running_loop(), gate.detector).lane(gate)
        return await lane.through(_copy(f) for f in frames)

    got = asyncio.run(main())
    assert _decided(got) == _inline(frames)


def test_a_live_lane_drops_its_oldest_waiting_audio_beyond_its_limit_and_counts_it(
    three_in_noise,
):
    frames = _frames(three_in_noise.samples[: 3 * RATE])  # 30 frames, pushed at once
    from nsaudio.aio.scoring import scoring_for

    async def main():
        gate = _gate()
        got: list[Frame] = []
        lane = scoring_for(asyncio.get_running_loop(), gate.detector).lane(
            gate, got.extend, limit_samples=5 * FRAME
        )
        lane.push(frames)
        assert lane.waiting_samples == 5 * FRAME
        await lane.settle()
        return lane, gate

    lane, gate = asyncio.run(main())
    assert lane.dropped_samples == 25 * FRAME
    assert lane.dropped_spans == [(0, 25 * FRAME)]
    assert gate.seen_samples == 5 * FRAME


def test_a_failing_model_fails_its_lanes_with_one_line_that_names_it(three_in_noise):
    from nsaudio.aio.scoring import scoring_for

    async def main():
        gate = _gate()
        scoring = scoring_for(asyncio.get_running_loop(), gate.detector)

        def broken(jobs):
            raise RuntimeError("onnxruntime: bad input shape")

        scoring.batcher.run = broken
        lane = scoring.lane(gate)
        with pytest.raises(DetectorError, match="the speech detector failed: RuntimeError: "):
            await lane.through(_frames(three_in_noise.samples[:RATE]))
        with pytest.raises(DetectorError):  # and every push after it
            lane.push(_frames(three_in_noise.samples[RATE : 2 * RATE]))

    asyncio.run(main())


@pytest.mark.server
def test_streams_on_one_loop_gate_with_silero_together_and_send_what_the_pipeline_sends(
    three_in_noise,
):
    # Four streams of one loop, three live (send_nowait, as the gateway sends) and one not
    # (send), all gated by Silero: their frames are scored in shared batches, and each
    # stream gets exactly the threaded Pipeline's results.
    from nsaudio.aio.scoring import scoring_for
    from nsaudio.server.app import LocalServer

    rec = three_in_noise
    with LocalServer() as server:
        expected, reference_gate = silero_pipeline(server.base_url, rec.path)

        async def one(live: bool) -> tuple[list, nsaudio.AsyncStream]:
            # The live streams send 26 s at about 100 times real time: a buffer of all of it,
            # so that a busy worker is never more than a buffer behind (a live stream would
            # rightly drop and report what falls past it; here that would be the machine).
            async with nsaudio.connect(
                server.base_url, "key", rate=rec.rate, dtype="int16", gate=True,
                gate_vad="silero", ping_timeout=60, live=live, buffer_seconds=30,
            ) as stream:  # fmt: skip
                results = asyncio.create_task(collect(stream))
                for i in range(0, len(rec.samples), 320):  # 20 ms packets
                    chunk = rec.samples[i : i + 320]
                    if live:
                        stream.send_nowait(chunk)
                    else:
                        await stream.send(chunk)
                    if i % 3200 == 0:
                        await asyncio.sleep(0.002)  # the others' turn
                await stream.end()
                got = await results
            return got, stream

        async def main():
            runs = await asyncio.gather(one(True), one(True), one(True), one(False))
            gate = runs[0][1].gate
            assert gate is not None
            return runs, scoring_for(asyncio.get_running_loop(), gate.detector).batcher

        runs, batcher = asyncio.run(asyncio.wait_for(main(), 120))
    want = [(r.text, r.start_time, r.end_time) for r in expected if r.full]
    for got, stream in runs:
        assert [(r.text, r.start_time, r.end_time) for r in got if r.full] == want
        assert stream.gate is not None
        assert stream.gate.passed_samples == reference_gate.passed_samples < 0.6 * len(rec.samples)
        assert not stream.losses()
    assert batcher.jobs >= 4 and batcher.windows > 4 * 800  # scored there, not inline


def test_a_lane_whose_delivery_raises_fails_alone_and_the_batch_goes_on(three_in_noise):
    # One lane's own failure after its batch (its deliver raised) fails that lane; the other
    # lanes of the batch still get their frames, and the scoring goes on with later batches.
    from nsaudio.aio.scoring import scoring_for

    end = three_in_noise.segments[0][1]  # through the first sentence, which passes
    frames = _frames(three_in_noise.samples[: end + RATE])
    half = len(frames) // 2

    async def main():
        gates = [_gate() for _ in range(3)]
        scoring = scoring_for(asyncio.get_running_loop(), gates[0].detector)
        got: list[list[Frame]] = [[], [], []]

        def broken(passed):
            raise RuntimeError("the sink is gone")

        failed = []
        lanes = [
            scoring.lane(gates[0], got[0].extend),
            scoring.lane(gates[1], broken, on_fail=failed.append),
            scoring.lane(gates[2], got[2].extend),
        ]
        for lane in lanes:
            lane.push(_copy(f) for f in frames)
        await lanes[0].settle()
        await lanes[2].settle()
        with pytest.raises(DetectorError, match="RuntimeError: the sink is gone"):
            await lanes[1].settle()
        lanes[2].push(_copy(f) for f in frames[:half])  # a later batch
        await lanes[2].settle()
        return got, failed, gates[2].seen_samples

    got, failed, seen = asyncio.run(main())
    assert _decided(got[0]) == _inline(frames)
    assert got[0] and _decided(got[2][: len(got[0])]) == _decided(got[0])
    assert seen == (len(frames) + half) * FRAME  # its later batch was scored and decided
    assert len(failed) == 1 and isinstance(failed[0], DetectorError)


def test_a_live_lane_places_only_the_first_hundred_drops(three_in_noise):
    from nsaudio.aio.scoring import scoring_for
    from nsaudio.ring import MAX_DROPPED_SPANS

    pcm = three_in_noise.samples[:FRAME].tobytes()

    async def main():
        gate = _gate()
        lane = scoring_for(asyncio.get_running_loop(), gate.detector).lane(
            gate, lambda passed: None, limit_samples=5 * FRAME
        )
        position = 0
        for _ in range(150):  # ten frames each time the worker comes back: five dropped
            lane.push(Frame(pcm, (position + i) * FRAME, RATE, 0) for i in range(10))
            position += 10
            await lane.settle()
        return lane

    lane = asyncio.run(main())
    assert lane.dropped_samples == 150 * 5 * FRAME and lane.dropped_frames == 750
    assert len(lane.dropped_spans) == MAX_DROPPED_SPANS
    assert lane.dropped_spans[0] == (0, 5 * FRAME)


@pytest.mark.server
@pytest.mark.parametrize("live", [True, False])
def test_a_stream_whose_batched_scoring_fails_ends_with_that_error(three_in_noise, live):
    # The model fails mid-stream: the frames of that batch are gone, so the stream must not
    # end as if they were sent. Its session ends at once and leaving the block raises the
    # detector's one line (no hang waiting for a drain of frames that never came).
    from nsaudio.aio.scoring import scoring_for
    from nsaudio.server.app import LocalServer

    samples = three_in_noise.samples[: 6 * RATE]

    async def main(url):
        async with nsaudio.connect(url, "key", rate=RATE, dtype="int16", gate=True,
                                   gate_vad="silero", live=live, ping_timeout=60) as stream:  # fmt: skip
            assert stream.gate is not None
            batcher = scoring_for(asyncio.get_running_loop(), stream.gate.detector).batcher
            run = batcher.run
            calls = 0

            def failing(jobs):
                nonlocal calls
                calls += 1
                if calls > 5:
                    raise RuntimeError("onnxruntime: simulated failure")
                run(jobs)

            batcher.run = failing
            try:
                for i in range(0, len(samples), 1600):
                    if live:
                        stream.send_nowait(samples[i : i + 1600])
                        await asyncio.sleep(0.01)
                    else:
                        await stream.send(samples[i : i + 1600])
            except DetectorError:
                pass  # the next send after the failure says it too
            finally:
                batcher.run = run

    with LocalServer() as server, pytest.raises(DetectorError, match="detector failed: Runtime"):
        asyncio.run(asyncio.wait_for(main(server.base_url), 60))


@pytest.mark.server
def test_a_cancelled_end_goes_on_and_the_block_is_left_with_every_word(three_in_noise):
    # end() is cancelled while the last frames wait for their batch: the flush goes on, the
    # next end() (leaving the block) waits for it, and every sentence comes back.
    from nsaudio.server.app import LocalServer

    rec = three_in_noise

    async def main(url):
        async with nsaudio.connect(url, "key", rate=RATE, dtype="int16", gate=True,
                                   gate_vad="silero", live=True, ping_timeout=60) as stream:  # fmt: skip
            results = asyncio.create_task(collect(stream))
            for i in range(0, len(rec.samples), 3200):
                stream.send_nowait(rec.samples[i : i + 3200])
                await asyncio.sleep(0.001)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(stream.end(), 0.0001)
        return await results

    with LocalServer() as server:
        got = asyncio.run(asyncio.wait_for(main(server.base_url), 90))
    assert " ".join(r.text for r in got if r.full).split() == " ".join(rec.texts).split()

"""``nsaudio.connect()``: the same stages, session engine and verdict as ``Pipeline``, driven
from the caller's event loop, which it never blocks."""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
import weakref

import numpy as np
import pytest
import soundfile as sf

import nsaudio
from nsaudio.cli.exits import exit_status
from nsaudio.errors import (
    AudioLostError,
    AuthenticationError,
    ConsumerError,
    InputError,
    ServiceError,
)
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source
from nsaudio.sources.synthetic import ArraySource

from ..faults.server import Plan
from ..faults.slots import make_speech
from ..faults.support import check_times
from .support import (
    Ticker,
    client_sockets,
    collect,
    eventually,
    feed,
    silero_pipeline,
    socket_loop_tasks,
)

RATE = 16000


def _full(results) -> list[tuple[str, float, float]]:
    return [(r.text, r.start_time, r.end_time) for r in results if r.full]


def _words(results) -> list[str]:
    return " ".join(r.text for r in results if r.full).split()


def test_results_are_the_pipelines_for_the_same_audio(speech20, fault_server):
    # The file's 48 kHz stereo int16 in awkward chunks, every other one as bytes: the service
    # gets exactly the bytes a Pipeline sends for the file, and the same results come back.
    server = fault_server()
    data, _ = sf.read(speech20.path, dtype="int16")
    expected: list = []
    source = open_source(speech20.path)
    sink = NeuralSpaceSink(server.base_url, server.api_key, on_result=expected.append)
    Pipeline(source, standard_stages(source, "pcm_16k"), sink).run()

    async def main() -> list:
        async with nsaudio.connect(
            server.base_url, server.api_key, StreamParams(), rate=48000, channels=2, dtype="int16"
        ) as stream:
            sender = asyncio.create_task(feed(stream, data, as_bytes=True))
            got = await collect(stream)
            await sender
        return got

    got = asyncio.run(main())
    assert _words(got) == speech20.audio.words
    assert _full(got) == _full(expected)
    check_times([r.to_dict() for r in got])
    assert len(server.sessions) == 2
    assert bytes(server.sessions[1].audio) == bytes(server.sessions[0].audio)


def test_audio_at_the_services_rate_in_small_chunks_makes_the_pipelines_frames(fault_server):
    # 16 kHz mono int16 in 20 ms packets (and odd sizes): the chunks wait whole for the end of
    # the frame being filled, and the service gets exactly the bytes a Pipeline sends for the
    # same audio, results included.
    audio = make_speech(12, rate=RATE, channels=1)
    pcm = (audio.data[:, 0] * 32767).round().astype(np.int16)
    server = fault_server()
    expected: list = []
    source = ArraySource(pcm.astype(np.float32)[:, None] / 32768, RATE)
    sink = NeuralSpaceSink(server.base_url, server.api_key, on_result=expected.append)
    Pipeline(source, standard_stages(source, "pcm_16k"), sink).run()

    async def main() -> list:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, dtype="int16"
        ) as stream:
            sender = asyncio.create_task(
                feed(stream, pcm, cuts=(320, 320, 7, 313, 1, 1599, 320), as_bytes=True)
            )
            got = await collect(stream)
            await sender
        return got

    got = asyncio.run(main())
    assert _words(got) == audio.words
    assert _full(got) == _full(expected)
    assert bytes(server.sessions[1].audio) == bytes(server.sessions[0].audio)


def test_a_held_chunk_goes_out_with_the_one_that_completes_its_frame(fault_server):
    server = fault_server()

    async def main() -> list[int]:
        offered = []
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, dtype="int16"
        ) as stream:
            for _ in range(6):  # 20 ms each, into 100 ms frames
                await stream.send(np.zeros(RATE // 50, np.int16))
                offered.append(stream.run_stats().output_frames)
        return offered

    # The fifth packet completes the first frame: it goes at once, not with the sixth.
    assert asyncio.run(main()) == [0, 0, 0, 0, RATE // 10, RATE // 10]


def test_bad_input_at_the_call_is_an_input_error_and_nothing_of_it_is_sent(fault_server):
    audio = make_speech(6, rate=RATE, channels=2)
    data = audio.data
    server = fault_server()

    async def main() -> list:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, channels=2, dtype="float32"
        ) as stream:
            await stream.send(data[:1600])
            nan = data[:100].copy()
            nan[50, 1] = np.nan
            for bad in (
                data[:100].astype(np.float64),  # wrong dtype
                data[:100, 0],  # mono into a stereo stream
                np.zeros((100, 3), np.float32),  # three channels
                nan,
                np.full((10, 2), np.inf, np.float32),
                data[:100].tobytes()[:-2],  # half a frame short
                [0.0, 0.0],
            ):
                with pytest.raises(InputError):
                    await stream.send(bad)
            assert stream.stats()["input_frames"] == 1600  # nothing of them was taken
            await feed(stream, data[1600:], end=False)
            await stream.end()
            with pytest.raises(InputError, match="after the stream ended"):
                await stream.send(data[:10])
            return await collect(stream)

    got = asyncio.run(main())
    assert _words(got) == audio.words  # every word once: no bad chunk reached the service
    assert len(bytes(server.sessions[0].audio)) >= len(data) * 2


def test_a_long_chunk_goes_through_in_slices_with_the_loop_turning_between(speech20, fault_server):
    # 20 s of 48 kHz stereo in one call: other tasks run between its 0.1 s slices (counted as
    # turns of the loop), and every word arrives.
    server = fault_server()
    turns = 0

    async def spin() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    async def main() -> tuple[list, int]:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=48000, channels=2, live=True, buffer_seconds=30
        ) as stream:
            spinner = asyncio.create_task(spin())
            await asyncio.sleep(0)
            before = turns
            await stream.send(speech20.audio.data)  # live: never waits for room
            during = turns - before
            spinner.cancel()
            await stream.end()
            return await collect(stream), during

    got, during = asyncio.run(main())
    assert during >= 190, during  # 200 slices: a turn of the loop after each but the last
    assert _words(got) == speech20.audio.words


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"rate": 0}, "positive integer"),
        ({"rate": 16000.0}, "positive integer"),
        ({"channels": 0}, "positive integer"),
        ({"dtype": "int8"}, "dtype must be one of"),
        ({"frame_ms": 0}, "frame duration"),
        ({"on_result": print}, "iterate it instead"),
        ({"channel": 2, "channels": 2}, "channel 2 does not exist"),
        ({"gate_vad": "webrtc"}, "unknown speech detector 'webrtc'"),
        ({"gate_vad_model": "m.onnx"}, "is for gate_vad='silero'"),
        ({"gate_vad": "silero", "gate_threshold": None}, "needs a gate"),
    ],
)
def test_bad_arguments_are_input_errors_before_anything_connects(kwargs, says):
    with pytest.raises(InputError) as caught:
        nsaudio.connect("http://127.0.0.1:9", "key", **kwargs)
    assert says in str(caught.value)


def test_a_full_buffer_makes_send_wait_while_the_loop_keeps_turning(fault_server):
    # The server stops reading for 3 s after 2 s of audio: the sender's window (2 s
    # unconfirmed) closes, the 1 s buffer fills, and send() waits; the loop does not.
    audio = make_speech(20, rate=RATE, channels=1)
    server = fault_server({0: Plan(at_bytes=64000, action="stall", stall=3.0)}, rcvbuf=4096)
    waits: list[float] = []

    async def main():
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, buffer_seconds=1.0
        ) as stream:
            results = asyncio.create_task(collect(stream))
            with Ticker() as ticker:
                for i in range(0, len(audio.data), RATE // 10):
                    t0 = time.monotonic()
                    await stream.send(audio.data[i : i + RATE // 10])
                    waits.append(time.monotonic() - t0)
                await stream.end()
            got = await results
        return got, ticker.worst, stream.stats()

    got, worst, stats = asyncio.run(main())
    assert max(waits) >= 1.5, max(waits)  # send() waited for the stalled server
    assert worst < 0.5, worst  # a generous bound: the loop went on meanwhile
    assert stats["dropped_frames"] == 0 and stats["reconnects"] == 0, stats
    assert stats["ring_high_water"] <= RATE, stats
    assert _words(got) == audio.words


def test_live_audio_dropped_while_the_server_is_away_is_reported_at_the_end(fault_server):
    # As tests/faults/test_backpressure.py does for a Pipeline: session 0 stops reading for
    # good after 1.5 s, the next upgrade hangs 3 s; audio keeps coming at real time.
    audio = make_speech(8, rate=RATE, channels=1)
    server = fault_server({0: Plan(at_bytes=48000, action="stall"), 1: Plan(hang=3)})
    seen: list = []

    async def main():
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=RATE, live=True, buffer_seconds=0.5,
            ping_interval=0.3, ping_timeout=0.3, connect_timeout=1.0,
        ) as stream:  # fmt: skip
            results = asyncio.create_task(collect(stream))
            await feed(stream, audio.data, cuts=(RATE // 100,), pace=1.0)
            seen.extend(await results)

    with pytest.raises(AudioLostError) as lost:
        asyncio.run(main())
    losses = lost.value.losses
    assert losses.queued_seconds > 0 and losses.captured_seconds == 0
    assert str(lost.value).endswith("): the connection fell behind the live audio")
    words = _words(seen)
    assert set(words) <= set(audio.words) and len(set(words)) == len(words)
    assert words[-10:] == audio.words[-10:]  # the stream went on to its end
    check_times([r.to_dict() for r in seen], gaps=True)


@pytest.mark.parametrize("how", ["cancel", "raise"])
def test_leaving_early_stops_at_once_and_leaves_nothing_behind(speech20, fault_server, how):
    # The task in the block is cancelled (or raises) while another task iterates: the
    # iteration ends at once, no result comes after, no reconnect, no task or socket is left.
    server = fault_server()
    tasks_before = socket_loop_tasks()
    seen: list[float] = []
    consumer_ended: list[float] = []

    async def consume(stream) -> None:
        async for _ in stream:
            seen.append(time.monotonic())
        consumer_ended.append(time.monotonic())

    async def run(started: asyncio.Future, boom: asyncio.Event) -> None:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=48000, channels=2
        ) as stream:
            consumer = asyncio.create_task(consume(stream))
            sender = asyncio.create_task(feed(stream, speech20.audio.data, pace=1.0))
            started.set_result((consumer, sender))
            await boom.wait()
            raise ValueError("the caller's own bug")

    async def main() -> tuple[float, int]:
        started = asyncio.get_running_loop().create_future()
        boom = asyncio.Event()
        task = asyncio.create_task(run(started, boom))
        consumer, sender = await started
        while len(seen) < 3:
            await asyncio.sleep(0.05)
        stopped = time.monotonic()
        if how == "cancel":
            task.cancel()
        else:
            boom.set()
        with pytest.raises(asyncio.CancelledError if how == "cancel" else ValueError):
            await task
        await asyncio.wait_for(consumer, 5)  # the iteration ended by itself
        with pytest.raises(InputError, match="ended"):
            await asyncio.wait_for(sender, 5)  # so did the sending, with a clear error
        await asyncio.sleep(1.0)  # would a result still come? nobody may get one
        return stopped, len(asyncio.all_tasks()) - 1

    stopped, left = asyncio.run(main())
    assert left == 0  # the caller's loop: only main() remains
    assert consumer_ended and consumer_ended[0] - stopped < 1.0
    assert all(t <= stopped + 0.05 for t in seen), "a result came after the stream stopped"
    assert eventually(lambda: client_sockets(server.port) == 0), "a socket was left open"
    assert eventually(lambda: socket_loop_tasks() == tasks_before), "a task was left running"
    assert server.attempts == 1 and len(server.sessions) == 1  # no reconnect


def test_a_failure_raises_what_the_pipeline_raises(speech20, fault_server):
    # The connection is cut after 2 s and every later upgrade hangs: the reconnect budget
    # runs out. Pipeline.run() and the asyncio API end with the same error.
    options = {"connect_timeout": 0.5, "reconnect_timeout": 2.0, "backoff": (0.1, 0.4)}

    def plans(i: int) -> Plan:
        return Plan(at_bytes=64_000, action="cut") if i == 0 else Plan(hang=20)

    server = fault_server(plans)
    source = open_source(speech20.path)
    sink = NeuralSpaceSink(server.base_url, server.api_key, **options)
    with pytest.raises(ServiceError) as threaded:
        Pipeline(source, standard_stages(source, "pcm_16k"), sink).run()

    server = fault_server(plans)

    async def main() -> None:
        async with nsaudio.connect(
            server.base_url, server.api_key, rate=48000, channels=2, **options
        ) as stream:
            await feed(stream, speech20.audio.data)

    t0 = time.monotonic()
    with pytest.raises(ServiceError) as aio:
        asyncio.run(main())
    assert time.monotonic() - t0 < 10
    assert type(aio.value) is type(threaded.value)
    assert not aio.value.retryable and exit_status(aio.value) == 1
    message = str(aio.value)
    assert message.startswith("gave up reconnecting after 2 s")

    def first_clause(text: str) -> str:  # the servers' ports differ
        return re.sub(r"127\.0\.0\.1:\d+", "SERVER", text).split(";")[0]

    assert first_clause(message) == first_clause(str(threaded.value))
    for token in server.tokens:
        assert token not in message


def test_a_rejected_key_fails_when_the_block_is_entered(fault_server):
    server = fault_server()

    async def main() -> None:
        async with nsaudio.connect(server.base_url, "not-the-key") as stream:
            pytest.fail(f"entered {stream!r}")

    with pytest.raises(AuthenticationError):
        asyncio.run(main())
    assert eventually(lambda: client_sockets(server.port) == 0)


def test_any_loop_will_do_one_after_another_and_on_another_thread(fault_server):
    # Jupyter's loop, FastAPI's, asyncio.run's: the stream binds to the loop that enters it.
    audio = make_speech(3, rate=RATE, channels=1)
    server = fault_server()

    async def once() -> list[str]:
        async with nsaudio.connect(server.base_url, server.api_key, rate=RATE) as stream:
            sender = asyncio.create_task(feed(stream, audio.data))
            got = await collect(stream)
            await sender
        return _words(got)

    assert asyncio.run(once()) == audio.words
    assert asyncio.run(once()) == audio.words
    elsewhere: list = []
    thread = threading.Thread(target=lambda: elsewhere.append(asyncio.run(once())))
    thread.start()
    thread.join(30)
    assert elsewhere == [audio.words]
    stream = nsaudio.connect(server.base_url, server.api_key, rate=RATE)
    with pytest.raises(RuntimeError, match="outside"):
        asyncio.run(stream.send(audio.data[:10]))


def test_a_finished_loop_is_not_kept_alive_by_the_streams_it_ran(fault_server):
    audio = make_speech(1, rate=RATE, channels=1)
    server = fault_server()
    loops: list[weakref.ref] = []

    async def once() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        async with nsaudio.connect(server.base_url, server.api_key, rate=RATE) as stream:
            await feed(stream, audio.data)

    asyncio.run(once())

    # The socket loop lets go of the stream's last pieces a turn or two after it ends.
    def freed() -> bool:
        gc.collect()
        return loops[0]() is None

    assert eventually(freed)


@pytest.mark.slow
def test_results_left_untaken_end_the_stream_with_a_consumer_error(fault_server):
    # One result taken, then none: once the delivery's 1000 results wait, the stream ends
    # with the error Pipeline.results() gives a consumer that stopped taking them.
    audio = make_speech(330, rate=RATE, channels=1, voiced_s=0.2, silent_s=0.1)
    server = fault_server()

    async def main() -> None:
        async with nsaudio.connect(server.base_url, server.api_key, rate=RATE) as stream:
            sender = asyncio.create_task(feed(stream, audio.data, cuts=(RATE,)))
            await stream.__anext__()
            await sender

    with pytest.raises(ConsumerError, match="results were not taken: 1000 waiting"):
        asyncio.run(main())


@pytest.mark.server
def test_a_silero_gate_sends_what_the_pipelines_sends(three_in_noise):
    # The same detector, gate and engine as the threaded API: the same frames go to the
    # service, so the same results come back, with what Silero heard as silence skipped.
    from nsaudio.server.app import LocalServer

    rec = three_in_noise
    with LocalServer() as server:
        expected, reference_gate = silero_pipeline(server.base_url, rec.path)

        async def main() -> tuple[list, nsaudio.AsyncStream]:
            async with nsaudio.connect(
                server.base_url, "key", rate=rec.rate, dtype="int16", gate=True,
                gate_vad="silero", ping_timeout=60,
            ) as stream:  # fmt: skip
                sender = asyncio.create_task(feed(stream, rec.samples))
                got = await collect(stream)
                await sender
            return got, stream

        got, stream = asyncio.run(asyncio.wait_for(main(), 120))
    assert stream.gate is not None and stream.gate.detector.name == "silero"
    assert stream.gate.passed_samples == reference_gate.passed_samples < 0.6 * len(rec.samples)
    assert _full(got) == _full(expected)
    assert " ".join(r.text for r in got if r.full).split() == " ".join(rec.texts).split()

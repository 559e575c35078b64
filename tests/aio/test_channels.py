"""``nsaudio.connect_channels()``: a session per channel from the caller's event loop, the
merged results labelled and in start order, as ``nsaudio stream --split-channels`` gives them.

The recording is the CLI's (``fixtures/conversation_16000_stereo_flac16.flac``: the agent on
the left, the customer on the right, the customer's second turn inside the agent's second,
finalised first and still yielded after it), against a real local server; faults come from
the fault server, whose slot-coded recording has the same words on both channels.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import numpy as np
import pytest
import soundfile as sf

import nsaudio
from nsaudio.errors import AudioLostError, InputError, ServiceError
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.server.app import LocalServer

from ..conftest import FIXTURES, MANIFEST, run_cli, wer
from ..faults.server import Plan
from ..faults.slots import make_pattern, make_speech
from ..faults.support import check_times
from .support import client_sockets, collect, eventually, feed, socket_loop_tasks

CALL = next(f for f in MANIFEST if f["kind"] == "conversation")
NAMES = CALL["names"]
SPEECH = next(f for f in MANIFEST if f["file"] == "speech_16000_mono_int16.wav")
# As the CLI's tests: a loaded machine's recogniser may take longer than the default pong
# timeout to read a window of audio sent unpaced, and a reconnect would re-cut segments.
PATIENT = 60.0


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


def run(url: str, key: str, data: np.ndarray, **kwargs) -> list:
    """Every result of ``data`` streamed through ``connect_channels(**kwargs)``, sent in
    awkward chunks (every other one as bytes) while another task iterates."""

    async def main() -> list:
        async with nsaudio.connect_channels(url, key, **kwargs) as stream:
            sender = asyncio.create_task(feed(stream, data, as_bytes=True))
            got = await collect(stream)
            await sender
        return got

    return bounded(main())


def bounded(coro, seconds: float = 90):
    """``asyncio.run(coro)``, cancelled (and failing) if it takes more than ``seconds``."""
    return asyncio.run(asyncio.wait_for(coro, seconds))


def fulls(results) -> list:
    return [r for r in results if r.full and r.text]


def words(results) -> list[str]:
    return " ".join(r.text for r in fulls(results)).split()


@pytest.mark.server
def test_each_channels_words_exact_with_its_label_and_the_clis_times(server):
    """The issue's measure, against the CLI's --split-channels run of the same recording."""
    cli = run_cli("stream", str(FIXTURES / CALL["file"]), "--base-url", server.base_url,
                  "--pace", "0", "--ping-timeout", "60", "--split-channels",
                  "--channel-names", ",".join(NAMES), "--output", "jsonl")  # fmt: skip
    assert cli.returncode == 0, cli.stderr.decode()
    theirs = [json.loads(line) for line in cli.stdout.decode().splitlines()]
    theirs = [r for r in theirs if r["full"] and r["text"]]
    audio, rate = sf.read(FIXTURES / CALL["file"], dtype="int16")

    got = run(server.base_url, "any-key", audio, params=StreamParams(language="en"),
              rate=rate, channels=2, dtype="int16", names=NAMES, ping_timeout=PATIENT)  # fmt: skip
    assert {r.channel for r in got} == set(NAMES)  # every result is labelled, partials too
    mine = fulls(got)
    for name, texts in zip(NAMES, CALL["channel_texts"], strict=True):
        said = " ".join(r.text for r in mine if r.channel == name)
        assert wer(" ".join(texts), said) == 0, (name, said)
    # The same results, in the same order (start order), at the CLI's times.
    assert [(r.channel, r.text) for r in mine] == [(r["channel"], r["text"]) for r in theirs]
    assert [r.start_time for r in mine] == sorted(r.start_time for r in mine)
    for a, b in zip(mine, theirs, strict=True):
        assert abs(a.start_time - b["start_time"]) <= 0.02, (a, b)
        assert abs(a.end_time - b["end_time"]) <= 0.02, (a, b)


@pytest.mark.server
def test_channels_gated_by_silero_are_scored_together_and_give_the_clis_results(server):
    # The channels' Silero gates score in one batch per slice, in a worker thread: the same
    # decisions as the CLI's --split-channels --gate-vad silero (each channel inline), so
    # the same results at the same times.
    pytest.importorskip("onnxruntime")
    from nsaudio.aio.scoring import scoring_for

    cli = run_cli("stream", str(FIXTURES / CALL["file"]), "--base-url", server.base_url,
                  "--pace", "0", "--ping-timeout", "60", "--split-channels", "--gate",
                  "--gate-vad", "silero", "--channel-names", ",".join(NAMES),
                  "--output", "jsonl")  # fmt: skip
    assert cli.returncode == 0, cli.stderr.decode()
    theirs = [json.loads(line) for line in cli.stdout.decode().splitlines()]
    theirs = [r for r in theirs if r["full"] and r["text"]]
    audio, rate = sf.read(FIXTURES / CALL["file"], dtype="int16")

    async def main():
        async with nsaudio.connect_channels(
            server.base_url, "any-key", rate=rate, channels=2, dtype="int16", names=NAMES,
            gate=True, gate_vad="silero", ping_timeout=PATIENT,
        ) as stream:  # fmt: skip
            gate = stream.gates[NAMES[0]]
            assert gate is not None and gate.detector.name == "silero"
            batcher = scoring_for(asyncio.get_running_loop(), gate.detector).batcher
            jobs, batches = batcher.jobs, batcher.batches
            sender = asyncio.create_task(feed(stream, audio))
            got = await collect(stream)
            await sender
        return got, batcher.jobs - jobs, batcher.batches - batches, stream.gates

    got, jobs, batches, gates = bounded(main())
    mine = fulls(got)
    assert [(r.channel, r.text) for r in mine] == [(r["channel"], r["text"]) for r in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert abs(a.start_time - b["start_time"]) <= 0.02, (a, b)
        assert abs(a.end_time - b["end_time"]) <= 0.02, (a, b)
    assert jobs > batches  # both channels' frames in a batch
    assert all(g is not None and g.passed_samples < g.seen_samples for g in gates.values())


def test_full_results_come_in_start_order_though_finalised_out_of_it(fault_server):
    # The left channel speaks for a second; the right, 0.1-0.3 s: its result is finalised
    # first (the fault server's send_time says), and still comes after the left's.
    left = make_pattern([("speech", 1.0), ("pause", 1.0)], rate=16000, channels=1)
    right = make_pattern([("pause", 0.1), ("speech", 0.2), ("pause", 1.7)], rate=16000, channels=1)
    data = np.concatenate([left.data, right.data], axis=1)
    server = fault_server()

    async def main() -> list:
        async with nsaudio.connect_channels(server.base_url, server.api_key, rate=16000) as stream:
            sender = asyncio.create_task(feed(stream, data, cuts=(320,), pace=1.0))
            got = await collect(stream)
            await sender
        return got

    got = fulls(bounded(main()))
    assert [(r.channel, r.text.split()) for r in got] == [
        ("ch1", left.words),
        ("ch2", right.words),
    ]
    assert got[1].send_time < got[0].send_time


@pytest.mark.server
@pytest.mark.parametrize(
    ("gate", "vad"),
    [(False, "energy"), (True, "energy"), (True, "silero")],
    ids=["ungated", "gated", "gated-silero"],
)
def test_a_channel_silent_for_the_whole_call_is_no_error(server, gate, vad):
    speech, rate = sf.read(FIXTURES / SPEECH["file"], dtype="int16")
    data = np.stack([speech, np.zeros_like(speech)], axis=1)

    async def main():
        async with nsaudio.connect_channels(
            server.base_url, "any-key", rate=rate, dtype="int16", names=("caller", "line"),
            gate=gate, gate_vad=vad, ping_timeout=PATIENT,
        ) as stream:  # fmt: skip
            # Each channel's gate has a detector of its own (it keeps that channel's state).
            gates = list(stream.gates.values())
            assert [g.detector.name for g in gates] == [vad, vad]
            assert gates[0].detector is not gates[1].detector
            sender = asyncio.create_task(feed(stream, data))
            got = await collect(stream)
            await sender
        return got, stream.stats()

    got, stats = bounded(main())
    assert [(r.channel, r.text) for r in fulls(got)] == [("caller", SPEECH["text"])]
    line = stats["line"]  # its audio, not the silence made at its end: with the gate, none
    sent = line["samples_sent"] - line["silence_samples"]
    assert sent == 0 if gate else sent == len(speech)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"channels": 1}, "the stream has 1 channel: splitting channels needs 2 or more"),
        ({"names": ("a", "b", "c")}, "3 channel names for the 2 channels of the stream"),
        ({"channels": 3, "names": ("a", "b")}, "2 channel names for the 3 channels of"),
        ({"names": ("agent", "agent")}, "channel names must differ"),
        ({"names": ("agent", "b/c")}, "channel name 'b/c'"),
        ({"channel": 0}, "to send one, use connect(channel=)"),
        ({"on_result": print}, "iterate it instead"),
        ({"hold_seconds": -1}, "hold_seconds must be 0 or more"),
        ({"rate": 0}, "positive integer"),
        ({"dtype": "int8"}, "dtype must be one of"),
    ],
)
def test_bad_arguments_are_input_errors_before_anything_connects(kwargs, says):
    with pytest.raises(InputError) as caught:
        nsaudio.connect_channels("http://127.0.0.1:9", "key", **kwargs)
    assert says in str(caught.value)


def test_a_chunk_of_another_channel_count_is_refused_whole(fault_server):
    audio = make_speech(6, rate=16000, channels=2)
    data = audio.data
    server = fault_server()

    async def main() -> list:
        async with nsaudio.connect_channels(
            server.base_url, server.api_key, rate=16000, dtype="float32"
        ) as stream:
            await stream.send(data[:1600])
            nan = data[:100].copy()
            nan[50, 0] = np.nan
            for bad in (
                data[:100, 0],  # mono
                np.zeros((100, 3), np.float32),  # three channels
                data[:100].astype(np.float64),
                nan,
                data[:100].tobytes()[:-4],  # half a frame short
            ):
                with pytest.raises(InputError):
                    await stream.send(bad)
            assert stream.run_stats().input_frames == 1600  # nothing of them was taken
            await feed(stream, data[1600:])
            with pytest.raises(InputError, match="after the stream ended"):
                await stream.send(data[:10])
            return await collect(stream)

    got = bounded(main())
    for name in ("ch1", "ch2"):  # every word once per channel: no bad chunk reached either
        assert words([r for r in got if r.channel == name]) == audio.words, name
    assert len(server.sessions) == 2


def test_a_long_chunk_goes_through_in_slices_with_the_loop_turning_between(speech20, fault_server):
    # 20 s of 48 kHz stereo in one call, both channels: other tasks run between its 0.1 s
    # slices (counted as turns of the loop), and every word of each channel arrives.
    server = fault_server()
    turns = 0

    async def spin() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    async def main() -> tuple[list, int]:
        async with nsaudio.connect_channels(
            server.base_url, server.api_key, rate=48000, live=True, buffer_seconds=30
        ) as stream:
            spinner = asyncio.create_task(spin())
            await asyncio.sleep(0)
            before = turns
            await stream.send(speech20.audio.data)  # live: never waits for room
            during = turns - before
            spinner.cancel()
            await stream.end()
            return await collect(stream), during

    got, during = bounded(main())
    assert during >= 190, during  # 200 slices: a turn of the loop after each but the last
    channels = by_channel(got)
    assert sorted(channels) == ["ch1", "ch2"]
    for name, results in channels.items():
        assert words(results) == speech20.audio.words, name


@pytest.mark.parametrize("how", ["cancel", "raise"])
def test_leaving_early_stops_every_channel_and_leaves_nothing_behind(speech20, fault_server, how):
    # The task in the block is cancelled (or raises) while another task iterates: the
    # iteration ends at once, no result comes after, no channel reconnects, no task or
    # socket is left.
    server = fault_server()
    tasks_before = socket_loop_tasks()
    seen: list[float] = []
    channels_seen: set[str | None] = set()
    consumer_ended: list[float] = []

    async def consume(stream) -> None:
        async for result in stream:
            seen.append(time.monotonic())
            channels_seen.add(result.channel)
        consumer_ended.append(time.monotonic())

    async def block(started: asyncio.Future, boom: asyncio.Event) -> None:
        async with nsaudio.connect_channels(
            server.base_url, server.api_key, rate=48000, names=("left", "right")
        ) as stream:
            consumer = asyncio.create_task(consume(stream))
            sender = asyncio.create_task(feed(stream, speech20.audio.data, pace=1.0))
            started.set_result((consumer, sender))
            await boom.wait()
            raise ValueError("the caller's own bug")

    async def main() -> tuple[float, int]:
        before = asyncio.all_tasks()
        started = asyncio.get_running_loop().create_future()
        boom = asyncio.Event()
        task = asyncio.create_task(block(started, boom))
        consumer, sender = await started
        while len(channels_seen) < 2 or len(seen) < 4:
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
        return stopped, len(asyncio.all_tasks() - before)

    stopped, left = bounded(main())
    assert left == 0  # the caller's loop: no task of the stream's remains
    assert channels_seen == {"left", "right"}
    assert consumer_ended and consumer_ended[0] - stopped < 1.0
    assert all(t <= stopped + 0.05 for t in seen), "a result came after the stream stopped"
    assert eventually(lambda: client_sockets(server.port) == 0), "a socket was left open"
    assert eventually(lambda: socket_loop_tasks() == tasks_before), "a task was left running"
    assert server.attempts == 2 and len(server.sessions) == 2  # no reconnect


def test_live_audio_one_channel_dropped_is_reported_at_the_end_and_the_other_is_whole(
    fault_server,
):
    # As connect()'s test: one channel's session (the first to connect) stops reading for
    # good after 1.5 s and its reconnect hangs 3 s, while audio keeps coming at real time.
    audio = make_speech(8, rate=16000, channels=2)
    server = fault_server({0: Plan(at_bytes=48000, action="stall"), 2: Plan(hang=3)})
    seen: list = []

    async def main():
        async with nsaudio.connect_channels(
            server.base_url, server.api_key, rate=16000, live=True, buffer_seconds=0.5,
            ping_interval=0.3, ping_timeout=0.3, connect_timeout=1.0,
        ) as stream:  # fmt: skip
            results = asyncio.create_task(collect(stream))
            await feed(stream, audio.data, cuts=(160,), pace=1.0)
            seen.extend(await results)

    with pytest.raises(AudioLostError) as lost:
        bounded(main())
    losses = lost.value.losses
    assert losses.queued_seconds > 0 and losses.captured_seconds == 0
    assert str(lost.value).endswith("): the connection fell behind the live audio")
    said = {name: words(results) for name, results in by_channel(seen).items()}
    assert sorted(said) == ["ch1", "ch2"]
    assert audio.words in said.values()  # the channel that kept up: every word
    for got in said.values():  # the other: what it kept, once each, up to its end
        assert set(got) <= set(audio.words) and len(set(got)) == len(got)
        assert got[-10:] == audio.words[-10:]
    check_times([r.to_dict() for r in seen if r.channel == "ch1"], gaps=True)
    check_times([r.to_dict() for r in seen if r.channel == "ch2"], gaps=True)


def by_channel(results) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in results:
        out.setdefault(r.channel, []).append(r)
    return out


@pytest.mark.parametrize(
    ("plans", "options", "says"),
    [
        (
            {0: Plan(partials_only=True)},
            {"drain_timeout": 2},
            r"gave up waiting for the last result after 2 s; "
            r"untranscribed: \d+\.\d-\d+\.\d s(, \d+\.\d-\d+\.\d s)* of the stream",
        ),
        (  # cut after 2 s, and every reconnect hangs: the channel is set aside mid-stream
            lambda i: (
                Plan(at_bytes=64_000, action="cut")
                if i == 0
                else Plan(hang=20)
                if i > 1
                else Plan()
            ),
            {"connect_timeout": 0.5, "reconnect_timeout": 2.0, "backoff": (0.1, 0.4)},
            r"gave up reconnecting after 2 s.*",
        ),
    ],
    ids=["never-finalised", "cut-for-good"],
)
def test_a_failing_channel_is_named_and_the_others_transcript_is_whole(
    speech20, fault_server, plans, options, says
):
    # Which channel's session meets the fault is whichever connected first: the error says.
    server = fault_server(plans)
    seen: list = []

    async def main() -> None:
        async with nsaudio.connect_channels(
            server.base_url, server.api_key, rate=48000, dtype="float32", **options
        ) as stream:
            sender = asyncio.create_task(feed(stream, speech20.audio.data))
            seen.extend(await collect(stream))
            await sender

    with pytest.raises(ServiceError) as caught:
        bounded(main())
    message = str(caught.value)
    failed = re.fullmatch(rf"channel (ch[12]): {says}", message)
    assert failed, message
    other = {"ch1": "ch2", "ch2": "ch1"}[failed.group(1)]
    assert f"channel {other}" not in message
    channels = by_channel(seen)
    assert words(channels[other]) == speech20.audio.words  # the other channel's is whole
    check_times([r.to_dict() for r in channels[other]])
    assert words(channels.get(failed.group(1), [])) != speech20.audio.words
    for token in server.tokens:
        assert token not in message

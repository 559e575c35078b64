"""A server that stops reading: a file waits for it (nothing dropped, memory bounded), a live
source drops its oldest audio while the connection is down, says how much and where, and
the run ends in ``AudioLostError``."""

from __future__ import annotations

import threading
import time

import pytest

from nsaudio.errors import AudioLostError
from nsaudio.runner import Pipeline, standard_stages
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import open_source
from nsaudio.sources.synthetic import ArraySource

from .server import Plan
from .slots import make_speech, words_of
from .support import RATE, check_times


def _longest_still(samples: list[tuple[float, int, int]]) -> float:
    """The longest time over which neither the sender nor the pipeline moved."""
    best, since = 0.0, 0
    for i in range(1, len(samples)):
        if samples[i][1:] != samples[since][1:]:
            since = i
        best = max(best, samples[i][0] - samples[since][0])
    return best


def test_a_stalled_server_blocks_a_file_without_dropping_anything(tmp_path, fault_server):
    # 120 s at pace 0 is more than the socket buffers hold (about 2 MB on loopback here),
    # so the sender really blocks, then the ring fills, then the pipeline waits.
    audio = make_speech(120, rate=RATE, channels=1)
    path = audio.write(tmp_path / "long.wav")
    server = fault_server({0: Plan(at_bytes=64000, action="stall", stall=3.0)}, rcvbuf=4096)
    source = open_source(path)
    sink = NeuralSpaceSink(server.base_url, server.api_key, ring_seconds=5)
    pipeline = Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE)
    samples: list[tuple[float, int, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            samples.append(
                (time.monotonic(), sink.counters.samples_sent, pipeline.stats.output_frames)
            )

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        pipeline.run()
    finally:
        done.set()
        watcher.join()
    stats = sink.stats()
    capacity = 5 * RATE
    assert stats["dropped_frames"] == 0 and stats["reconnects"] == 0, stats
    assert capacity - RATE // 10 <= stats["ring_high_water"] <= capacity, stats  # full, bounded
    assert _longest_still(samples) >= 2.0  # the writer was held back, not buffering on
    assert sink.transcript.text.split() == audio.words
    assert len(server.sessions) == 1
    assert words_of(bytes(server.sessions[0].audio), RATE) == audio.words


def test_a_live_source_drops_its_oldest_audio_while_the_server_is_away(fault_server):
    # Session 0 stops reading after 1.5 s (for good); the next upgrade gets no answer for 3 s
    # (connect timeout 1 s), then a session works. Capture goes on at real time meanwhile.
    audio = make_speech(8, rate=RATE, channels=1)
    server = fault_server({0: Plan(at_bytes=48000, action="stall"), 1: Plan(hang=3)})
    source = ArraySource(audio.data, RATE, block_frames=RATE // 10, realtime=True)
    results = []
    sink = NeuralSpaceSink(
        server.base_url, server.api_key, live=True, ring_seconds=0.5,
        ping_interval=0.3, ping_timeout=0.3, connect_timeout=1.0, on_result=results.append,
    )  # fmt: skip
    with pytest.raises(AudioLostError) as lost:
        Pipeline(source, standard_stages(source, "pcm_16k"), sink, rate=RATE).run()
    stats = sink.stats()
    assert stats["dropped_frames"] > 0, stats
    # The run says what the sink's ring dropped, and where: nothing else was lost.
    losses = lost.value.losses
    assert losses.queued_seconds == stats["dropped_samples"] / RATE
    assert sum(b - a for a, b in losses.queued) == pytest.approx(losses.queued_seconds)
    assert losses.captured_seconds == 0 and losses.overflows == 0
    assert str(lost.value).startswith(
        f"{losses.queued_seconds:.2f} s of captured audio was dropped before it could be sent (at "
    )
    assert str(lost.value).endswith("): the connection fell behind the live audio")
    assert stats["ring_high_water"] <= RATE // 2
    assert stats["reconnects"] >= 2, stats
    words = sink.transcript.text.split()
    assert set(words) <= set(audio.words) and len(set(words)) == len(words)  # nothing repeated
    missing = len(audio.words) - len(words)
    assert 0 < missing <= stats["dropped_frames"]  # only what was dropped is missing
    assert words[-10:] == audio.words[-10:]  # and the stream went on to its end
    check_times([r.to_dict() for r in results], gaps=True)  # times stay absolute across drops

"""The gate's trail: from audio sent back to the frame it came from."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from nsaudio.blocks import Frame
from nsaudio.stages import EnergyGate
from nsaudio.stages.trail import LevelTrail

RATE = 16000
FRAME = 1600  # 100 ms


def frames(levels):
    """100 ms frames of a 440 Hz tone at each amplitude in ``levels`` (0: digital silence)."""
    t = np.arange(FRAME) / RATE
    for i, amp in enumerate(levels):
        pcm = (amp * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        yield Frame(pcm, i * FRAME, RATE, 0)


def test_ungated_every_frame_passes_and_maps_to_itself():
    gate = EnergyGate()
    trail = gate.keep_trail()
    for f in frames([0.0] * 10 + [0.3] * 10):
        gate.push(f)
    assert trail.position_of(0) == 0
    assert trail.position_of(5 * FRAME) == 5 * FRAME
    assert trail.position_of(5 * FRAME + 100) == 5 * FRAME + 100
    assert trail.gap_end(5 * FRAME) == 5 * FRAME  # no gap: the frame that passed it ends there
    assert trail.at(5 * FRAME - 1).level_db < -90 and not trail.at(5 * FRAME - 1).speech
    assert trail.at(15 * FRAME - 1).level_db > -20 and trail.at(15 * FRAME - 1).speech


def test_gated_a_gap_maps_to_its_start_and_ends_where_the_gate_saw_it_end():
    gate = EnergyGate(skip_silence=True, pre_roll_ms=300, tail_ms=0, hangover_ms=0)
    trail = gate.keep_trail()
    levels = [0.0] * 10 + [0.3] * 5 + [0.0] * 20 + [0.3] * 5
    for f in frames(levels):
        gate.push(f)
    first = 8 * FRAME  # 3 frames of pre-roll, then 5 of speech: 8 frames passed
    assert trail.position_of(1) == 7 * FRAME + 1  # the pre-roll goes first
    assert trail.position_of(first) == 15 * FRAME  # the end of the first burst
    # All of it went out: the gap after it runs to the next onset (its pre-roll, held
    # meanwhile, is part of the gap until it goes out with the onset).
    assert trail.gap_end(first) == 35 * FRAME
    assert trail.position_of(first + 1) == 32 * FRAME + 1
    assert trail.gap_end(0) == 10 * FRAME  # from the start to the first onset


def test_older_than_the_trail_maps_to_its_oldest_and_newer_to_its_newest():
    trail = LevelTrail(size=4)
    for i in range(10):
        trail.add((i + 1) * 10, (i + 1) * 10, -20.0, True)
    assert [e.end for e in trail.entries()] == [70, 80, 90, 100]
    assert trail.position_of(5) == 70  # before the oldest kept: the oldest frame
    assert trail.position_of(1000) == 100
    assert trail.at(-1).end == 70 and trail.at(10_000).end == 100
    trail.clear()
    assert trail.entries() == [] and trail.position_of(50) == 0 and trail.at(0) is None
    with pytest.raises(ValueError):
        LevelTrail(0)


def test_a_reader_on_another_thread_always_sees_frames_in_order():
    trail = LevelTrail(size=64)
    done = threading.Event()

    def write():
        for i in range(200_000):
            trail.add(i + 1, i + 1, -20.0, False)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    checks = 0
    while not done.is_set():
        ends = [e.end for e in trail.entries()]
        assert ends == sorted(set(ends))
        checks += 1
    writer.join()
    assert checks > 0


def test_a_gate_keeps_no_trail_until_asked_and_the_same_one_after():
    gate = EnergyGate()
    for f in frames([0.3] * 3):
        gate.push(f)
    assert gate.trail is None  # nothing measured for a display nobody runs
    trail = gate.keep_trail()
    assert gate.keep_trail() is trail and trail.entries() == []
    for f in frames([0.3] * 3):
        gate.push(f)
    assert len(trail.entries()) == 3
    gate.reset()
    assert trail.entries() == [] and gate.trail is trail

"""The placer on its own: where chunks go, gaps, and short chunks held whole until they
complete the frame being filled (no sockets)."""

from __future__ import annotations

import numpy as np
import pytest

from nsaudio.aio.placing import Placer
from nsaudio.errors import InputError
from nsaudio.stages import Framer

RATE = 8000


def _run(placer: Placer, framer: Framer | None, chunks) -> list[tuple[int, int]]:
    """Feed ``(start, n)`` chunks; the frames the framer made, as (start, frames)."""
    out = []
    for start, n in chunks:
        for block in placer.blocks(np.zeros(n, np.int16), start, 0):
            if framer is not None:
                out += [(f.start, f.frames) for f in framer.push(block)]
            else:
                out.append((block.start, len(block)))
    for block in placer.rest():
        out += [(f.start, f.frames) for f in framer.push(block)] if framer else []
    if framer is not None:
        out += [(f.start, f.frames) for f in framer.flush()]
    return out


@pytest.mark.parametrize("cuts", [(160,), (1, 17, 509), (800,), (3, 1597)])
def test_held_chunks_make_the_frames_a_framer_makes_of_the_whole(cuts):
    total = 8000
    chunks, i, k = [], 0, 0
    while i < total:
        n = min(cuts[k % len(cuts)], total - i)
        chunks.append((None, n))
        i, k = i + n, k + 1
    framer = Framer(RATE, 100)
    placer = Placer(RATE, 800, framer)
    assert _run(placer, framer, chunks) == [(s, 800) for s in range(0, total, 800)]
    assert placer.taken == total and placer.gaps == 0


def test_a_gap_lets_the_held_chunks_go_at_their_place_and_counts_what_it_skipped():
    framer = Framer(RATE, 100)
    placer = Placer(RATE, 800, framer)
    # 1.5 frames of 20 ms packets, then the stream jumps 0.2 s ahead, then one whole frame.
    chunks = [(k * 160, 160) for k in range(7)] + [(1120 + 1600 + k * 160, 160) for k in range(5)]
    assert _run(placer, framer, chunks) == [(0, 800), (800, 320), (2720, 800)]
    assert placer.gaps == 1 and placer.gap_frames == 1600
    assert placer.taken == 12 * 160


def test_going_back_is_an_input_error_and_changes_nothing():
    framer = Framer(RATE, 100)
    placer = Placer(RATE, 800, framer)
    for block in placer.blocks(np.zeros(300, np.int16), 0, 0):  # the first chunk goes on
        framer.push(block)
    before = (placer.end, placer.taken, placer.gaps)
    with pytest.raises(InputError, match="goes back"):
        placer.blocks(np.zeros(10, np.int16), 299, 0)
    assert (placer.end, placer.taken, placer.gaps) == before
    assert placer.blocks(np.zeros(10, np.int16), 300, 0) == []  # where it ends: held, no gap


def test_without_a_framer_long_chunks_are_sliced_and_nothing_is_held():
    placer = Placer(RATE, 800)
    assert _run(placer, None, [(None, 2000), (5000, 10)]) == [
        (0, 800), (800, 800), (1600, 400), (5000, 10),
    ]  # fmt: skip

"""Framer edge cases: exact sizes, the last partial frame, rounding, clipping, NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Block
from nsaudio.errors import InputError
from nsaudio.stages import Framer, to_int16


def frames_of(framer: Framer, blocks: list[np.ndarray]):
    out, pos = [], 0
    for b in blocks:
        out += framer.push(Block(b.astype(np.float32), pos, framer.rate, pos))
        pos += len(b)
    return out + framer.flush()


def test_frames_have_the_exact_duration_and_the_tail_is_kept():
    frames = frames_of(Framer(16000, 20), [np.zeros(1000), np.zeros(333)])
    sizes = [f.frames for f in frames]
    assert sizes == [320, 320, 320, 320, 53]
    assert [f.start for f in frames] == [0, 320, 640, 960, 1280]
    assert sum(sizes) == 1333


def test_frame_exactly_filled_leaves_nothing_to_flush():
    framer = Framer(8000, 10)
    assert len(framer.push(Block(np.zeros(80, np.float32), 0, 8000, 0))) == 1
    assert framer.flush() == []


def test_empty_stream_gives_no_frame():
    assert frames_of(Framer(16000), []) == []


def test_rounding_clipping_and_nan():
    x = np.array(
        [
            0.0,
            0.5 / 32768,
            1.5 / 32768,
            -0.5 / 32768,
            1.0,
            2.0,
            -1.0,
            -3.0,
            np.nan,
            np.inf,
            -np.inf,
        ],
        np.float32,
    )
    got = to_int16(x).tolist()
    assert got == [0, 0, 2, 0, 32767, 32767, -32768, -32768, 0, 32767, -32768]


def test_output_is_little_endian():
    (frame,) = frames_of(Framer(16000, 1000), [np.array([256 / 32768], np.float32)])
    assert frame.pcm == b"\x00\x01"


def test_time_stamp_is_that_of_the_block_completing_the_frame():
    framer = Framer(16000, 10)  # 160 samples
    assert framer.push(Block(np.zeros(100, np.float32), 0, 16000, 111)) == []
    (frame,) = framer.push(Block(np.zeros(100, np.float32), 100, 16000, 222))
    assert frame.t_ns == 222


@pytest.mark.parametrize("frame_ms", [0, 0.01, 70000])
def test_bad_frame_durations(frame_ms):
    with pytest.raises(InputError):
        Framer(16000, frame_ms)


def test_stereo_block_is_refused():
    with pytest.raises(InputError):
        Framer(16000).push(Block(np.zeros((10, 2), np.float32), 0, 16000, 0))


@settings(max_examples=50, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=20),
    frame_ms=st.sampled_from([1, 10, 20, 100]),
)
def test_pcm_does_not_depend_on_chunking(cuts, frame_ms):
    x = np.sin(np.arange(sum(cuts)) / 7).astype(np.float32)
    blocks, pos = [], 0
    for n in cuts:
        blocks.append(x[pos : pos + n])
        pos += n
    frames = frames_of(Framer(8000, frame_ms), blocks)
    assert b"".join(f.pcm for f in frames) == to_int16(x).tobytes()
    assert all(f.frames == round(8 * frame_ms) for f in frames[:-1])


def test_next_end_says_where_the_frame_being_filled_is_whole():
    framer = Framer(16000, 100)  # 1600 samples
    assert framer.next_end is None
    x = np.zeros(4000, np.float32)
    assert framer.push(Block(x[:320], 0, 16000, 0)) == [] and framer.next_end == 1600
    assert len(framer.push(Block(x[:1280], 320, 16000, 0))) == 1 and framer.next_end == 3200
    framer.push(Block(x[:100], 5000, 16000, 0))  # a gap: a new frame starts where it does
    assert framer.next_end == 6600

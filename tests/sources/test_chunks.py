"""Audio handed over by the caller's code: every chunk is checked whole at the call."""

from __future__ import annotations

import numpy as np
import pytest

from nsaudio.errors import InputError
from nsaudio.sources.chunks import ChunkFormat


def test_arrays_and_bytes_of_every_dtype_become_a_private_frames_by_channels_array():
    stereo = np.array([[0.5, -0.25], [1.0, -1.0], [0.0, 0.125]])
    for dtype, scale, kind in (
        ("float32", 1.0, np.float32), ("float64", 1.0, np.float32),
        ("int16", 32767.0, np.int16), ("int32", 2.0**31 - 1, np.float32),
    ):  # fmt: skip
        fmt = ChunkFormat(8000, 2, dtype)
        raw = (
            np.round(stereo * scale).astype(fmt.dtype)
            if "int" in dtype
            else stereo.astype(fmt.dtype)
        )
        for chunk in (raw, raw.tobytes(), bytearray(raw.tobytes()), memoryview(raw.tobytes())):
            got = fmt.samples(chunk)
            assert got.shape == (3, 2) and got.dtype == kind, (dtype, type(chunk))
            as_float = got / 32768 if kind is np.int16 else got
            assert np.allclose(as_float, stereo, atol=1e-4), dtype
            assert not np.shares_memory(got, raw)  # the caller may reuse its buffer at once


def test_mono_takes_one_or_two_dimensions_and_any_number_of_frames():
    fmt = ChunkFormat(16000, 1, "int16")
    assert fmt.samples(np.zeros(5, np.int16)).shape == (5, 1)
    assert fmt.samples(np.zeros((5, 1), np.int16)).shape == (5, 1)
    assert fmt.samples(np.zeros(0, np.int16)).shape == (0, 1)
    assert fmt.samples(b"").shape == (0, 1)


@pytest.mark.parametrize(
    ("fmt", "chunk", "says"),
    [
        (ChunkFormat(16000, 1, "float32"), np.zeros(4, np.float64), "holds float64"),
        (ChunkFormat(16000, 1, "int16"), np.zeros(4, np.float32), "holds float32"),
        (ChunkFormat(16000, 2, "float32"), np.zeros(4, np.float32), "(frames, 2)"),
        (ChunkFormat(16000, 2, "float32"), np.zeros((4, 3), np.float32), "(frames, 2)"),
        (ChunkFormat(16000, 1, "float32"), np.zeros((2, 2, 2), np.float32), "(frames,)"),
        (ChunkFormat(16000, 1, "float32"), np.array([0.1, np.nan], np.float32), "NaN"),
        (ChunkFormat(16000, 1, "float32"), np.array([0.1, np.inf], np.float32), "infinite"),
        (ChunkFormat(16000, 1, "float64"), np.array([-np.inf, 0.0]), "infinite"),
        (ChunkFormat(16000, 2, "int16"), b"\x00" * 6, "not a whole number of frames"),
        (ChunkFormat(16000, 1, "float32"), [0.0, 0.1], "not list"),
        (ChunkFormat(16000, 1, "float32"), "audio", "not str"),
    ],
)
def test_a_bad_chunk_is_refused_with_what_to_give(fmt, chunk, says):
    with pytest.raises(InputError) as caught:
        fmt.samples(chunk)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((0, 1, "float32"), "positive integer"),
        ((-8000, 1, "float32"), "positive integer"),
        ((16000.0, 1, "float32"), "positive integer"),
        ((16000, 0, "float32"), "positive integer"),
        ((16000, 1, "uint8"), "dtype must be one of"),
        ((100, 1, "int16"), "outside 1000 to 768000"),
        ((16000, 300, "int16"), "outside 1 to 256"),
    ],
)
def test_a_bad_layout_is_refused_when_the_format_is_made(args, says):
    with pytest.raises(InputError) as caught:
        ChunkFormat(*args)
    assert says in str(caught.value)

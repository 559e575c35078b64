"""Property tests: arbitrary damage to a WAV header, and arbitrary raw PCM bytes.

(a) Bytes flipped anywhere in the 44-byte header of a valid WAV, fields set to boundary
    values, the file truncated anywhere: ``read_wav_header``, ``StdinSource`` and (for the
    file path) libsndfile through ``open_source`` raise nothing but nsaudio's ``InputError``
    family, never hang, and whatever they accept goes through the resampler and framer.
(b) Any bytes decoded as raw PCM of every sample type come out as float32 of the right shape,
    finite and within full scale for the integer and G.711 types; f32/f64 (NaN, infinities,
    1e300) come out of Resampler + Framer as exactly the int16 of the clipped signal.

``filterwarnings = error`` in pyproject makes any numpy RuntimeWarning a failure too.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soxr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nsaudio.blocks import Block
from nsaudio.errors import InputError
from nsaudio.sources import StdinSource, open_source
from nsaudio.sources.limits import MAX_CHANNELS, MAX_RATE, MIN_RATE
from nsaudio.sources.pcm import SAMPLE_FORMATS, RawSpec
from nsaudio.sources.wav_stream import read_wav_header
from nsaudio.stages import Chain, Framer, Resampler, to_int16

from .corpus import pcm16, wav
from .support import time_limit

VALID = wav(pcm16()[:600])
HEADER = 44
#: (offset, width) of every numeric field of the canonical 44-byte header.
FIELDS = [(4, 4), (16, 4), (20, 2), (22, 2), (24, 4), (28, 4), (32, 2), (34, 2), (40, 4)]
BOUNDARY = [0, 1, 2, 3, 4, 8, 12, 16, 24, 32, 64, 255, 256, 1000, 0x7FFF, 0x8000, 0xFFFF,
            0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]  # fmt: skip
LIMIT_S = 5.0  # per example; a hang fails the test instead of stalling the suite


@st.composite
def damaged_wavs(draw) -> bytes:
    data = bytearray(VALID)
    flips = st.lists(st.tuples(st.integers(0, HEADER - 1), st.integers(0, 255)), max_size=3)
    for offset, value in draw(flips):
        data[offset] = value
    for offset, width in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        value = draw(st.sampled_from(BOUNDARY)) & (0xFFFFFFFF if width == 4 else 0xFFFF)
        data[offset : offset + width] = value.to_bytes(width, "little")
    cut = draw(st.none() | st.integers(0, len(data)))
    return bytes(data if cut is None else data[:cut])


def through_the_stages(source, blocks: list[Block]) -> None:
    """What a source accepted, resampled and framed without complaint: valid int16."""
    chain = Chain([Resampler(source.rate, 16000, source.channels), Framer(16000, 20)])
    frames = [f for b in blocks for f in chain.push(b)] + chain.flush()
    for frame in frames:
        assert len(frame.pcm) % 2 == 0


def check_accepted(source) -> None:
    assert MIN_RATE <= source.rate <= MAX_RATE
    assert 1 <= source.channels <= MAX_CHANNELS
    blocks = list(source.blocks())
    for b in blocks:
        assert b.data.ndim == 2 and b.data.shape[1] == source.channels
        assert b.data.dtype in (np.float32, np.int16)
    through_the_stages(source, blocks)


@settings(max_examples=300, deadline=None)
@given(data=damaged_wavs(), block_frames=st.sampled_from([1, 7, 4096]))
def test_damaged_header_streamed(data, block_frames):
    with time_limit(LIMIT_S):
        try:
            header = read_wav_header(io.BytesIO(data).read)
        except InputError:
            pass
        else:
            assert MIN_RATE <= header.rate <= MAX_RATE and 1 <= header.channels <= MAX_CHANNELS
        try:
            source = StdinSource(io.BufferedReader(io.BytesIO(data)), block_frames=block_frames)
        except InputError:
            event("refused")
            return
        event("accepted")
        check_accepted(source)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=damaged_wavs())
def test_damaged_header_as_a_file(data, tmp_path):
    """The same damage through libsndfile (and nsaudio's fallback for size-0 WAV)."""
    path = tmp_path / "damaged.wav"
    path.write_bytes(data)
    with time_limit(LIMIT_S):
        try:
            source = open_source(path)
        except InputError:
            event("refused")
            return
        event(f"accepted as {type(source).__name__}")
        try:
            check_accepted(source)
        except InputError:
            event(
                "refused while decoding"
            )  # a block that cannot be decoded: refused with nsaudio's error, fine


def floats(width: int) -> st.SearchStrategy[bytes]:
    code = "<f4" if width == 32 else "<f8"
    return st.lists(st.floats(width=width, allow_nan=True, allow_infinity=True), max_size=300).map(
        lambda xs: np.array(xs, dtype=code).tobytes()
    )


def raw_bytes(name: str) -> st.SearchStrategy[bytes]:
    if name == "f32le":
        return st.binary(max_size=1200) | floats(32)
    if name == "f64le":
        return st.binary(max_size=2400) | floats(64)
    return st.binary(max_size=1200)


def decoded(data: bytes, spec: RawSpec, block_frames: int) -> np.ndarray:
    source = StdinSource(io.BytesIO(data), raw=spec, block_frames=block_frames)
    blocks = [b.data for b in source.blocks()]
    for b in blocks:
        assert b.dtype == np.float32 and b.ndim == 2 and b.shape[1] == spec.channels
    return np.concatenate(blocks) if blocks else np.zeros((0, spec.channels), np.float32)


def expected_int16(x: np.ndarray, rate: int) -> np.ndarray:
    """One-shot: mean downmix, NaN made 0, clipped to full scale, soxr HQ, int16."""
    with np.errstate(invalid="ignore"):
        mono = (
            x[:, 0]
            if x.shape[1] == 1
            else (x @ np.full((x.shape[1], 1), 1 / x.shape[1], np.float32))[:, 0]
        )
    mono = np.clip(np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    if rate != 16000:
        mono = soxr.resample(mono, rate, 16000, quality="HQ")
    return to_int16(mono)


@pytest.mark.parametrize("name", list(SAMPLE_FORMATS))
@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    channels=st.integers(1, 3),
    block_frames=st.sampled_from([1, 5, 65536]),
    rate=st.sampled_from([16000, 48000]),
)
def test_raw_pcm_of_any_bytes(name, data, channels, block_frames, rate):
    fmt = SAMPLE_FORMATS[name]
    raw = data.draw(raw_bytes(name))
    spec = RawSpec(rate, channels, fmt)
    with time_limit(LIMIT_S):
        x = decoded(raw, spec, block_frames)
    assert x.shape == (len(raw) // (fmt.width * channels), channels)
    if name not in ("f32le", "f64le"):
        assert np.isfinite(x).all() and (not x.size or np.abs(x).max() <= 1.0)
        return
    chain = Chain([Resampler(rate, 16000, channels), Framer(16000, 20)])
    blocks = [Block(x[i : i + block_frames], i, rate, 0) for i in range(0, len(x), block_frames)]
    pcm = b"".join(f.pcm for b in blocks for f in chain.push(b)) + b"".join(
        f.pcm for f in chain.flush()
    )
    got = np.frombuffer(pcm, "<i2").astype(np.int32)
    want = expected_int16(x, rate).astype(np.int32)
    assert len(got) == len(want)
    assert not len(got) or np.abs(got - want).max() <= 1

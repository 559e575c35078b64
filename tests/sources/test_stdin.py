"""WAV read as it arrives, spooled containers, and raw PCM, against libsndfile's reading."""

from __future__ import annotations

import contextlib
import io
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from nsaudio.errors import InputError, UnsupportedAudioError
from nsaudio.sources import FileSource, StdinSource, parse_raw_spec
from nsaudio.sources.wav_stream import read_wav_header

from ..conftest import FIXTURES, MANIFEST, fixture_ids

WAVS = [f for f in MANIFEST if f["file"].endswith(".wav")]
OTHERS = [f for f in MANIFEST if not f["file"].endswith(".wav")]


def as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 32768 if x.dtype == np.int16 else x


def collect(source) -> np.ndarray:
    return np.concatenate([as_float(b.data) for b in source.blocks()])


class Trickle(io.RawIOBase):
    """A pipe that hands out a few bytes at a time, like a live writer."""

    def __init__(self, data: bytes, step: int):
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.step, len(self.data) - self.pos)
        b[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize("entry", WAVS, ids=fixture_ids(WAVS))
def test_streamed_wav_equals_libsndfile(entry):
    path = FIXTURES / entry["file"]
    expected, rate = sf.read(str(path), dtype="float32", always_2d=True)
    src = StdinSource(io.BufferedReader(Trickle(path.read_bytes(), 997)), block_frames=1000)
    assert (src.rate, src.channels) == (rate, expected.shape[1])
    np.testing.assert_array_equal(collect(src), expected)


@pytest.mark.parametrize("entry", OTHERS, ids=fixture_ids(OTHERS))
def test_other_containers_are_spooled(entry):
    path = FIXTURES / entry["file"]
    src = StdinSource(io.BytesIO(path.read_bytes()))
    np.testing.assert_array_equal(collect(src), collect(FileSource(path)))


def wav_bytes(
    samples: bytes,
    *,
    tag=1,
    channels=1,
    rate=16000,
    bits=16,
    riff_size=None,
    data_size=None,
    extra_chunk=b"",
):
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    data_size = len(samples) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra_chunk
        + b"data"
        + struct.pack("<I", data_size)
        + samples
    )
    riff = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", riff) + body


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF, 10**9])
def test_streaming_writer_sizes_read_to_the_end(size):
    pcm = (np.arange(5000, dtype=np.int16) - 2500).tobytes()
    src = StdinSource(io.BytesIO(wav_bytes(pcm, riff_size=size, data_size=size)))
    np.testing.assert_array_equal(collect(src)[:, 0], np.frombuffer(pcm, "<i2") / 32768)


def test_data_size_is_honoured_and_trailing_chunks_ignored():
    pcm = np.arange(100, dtype=np.int16).tobytes()
    data = wav_bytes(
        pcm + b"LIST\x04\x00\x00\x00abcd",
        data_size=len(pcm),
        extra_chunk=b"junk\x03\x00\x00\x00xyz\x00",
    )
    assert len(collect(StdinSource(io.BytesIO(data)))) == 100


def test_24_bit_u8_and_float64():
    v = np.array([0, 1, -1, 8388607, -8388608], dtype=np.int64)
    pcm24 = b"".join(int(x & 0xFFFFFF).to_bytes(3, "little") for x in v)
    got = collect(StdinSource(io.BytesIO(wav_bytes(pcm24, bits=24))))[:, 0]
    np.testing.assert_allclose(got, v / 2**23, atol=1e-7)
    got = collect(StdinSource(io.BytesIO(wav_bytes(bytes([0, 128, 255]), bits=8))))[:, 0]
    np.testing.assert_allclose(got, [-1, 0, 127 / 128])
    f64 = np.array([0.25, -0.5], "<f8").tobytes()
    np.testing.assert_allclose(
        collect(StdinSource(io.BytesIO(wav_bytes(f64, tag=3, bits=64))))[:, 0], [0.25, -0.5]
    )


def test_cut_mid_sample_drops_only_the_partial_frame():
    pcm = np.arange(10, dtype=np.int16).tobytes()[:-1]
    assert len(collect(StdinSource(io.BytesIO(wav_bytes(pcm, data_size=0))))) == 9


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, this is text\n", "--raw"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "ends before"),
        (wav_bytes(b"", channels=0), "channels"),
        (wav_bytes(b"", rate=1), "sample rate"),
        (wav_bytes(b"", tag=0x55), "not supported"),
        (wav_bytes(b"", bits=12), "not supported"),
    ],
)
def test_bad_streams_raise_input_errors(data, message):
    with pytest.raises(InputError, match=message):
        StdinSource(io.BytesIO(data))


def test_blockalign_zero_is_refused():
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 0, 16)
    data = b"RIFF\x00\x00\x00\x00WAVEfmt " + struct.pack("<I", 16) + fmt + b"data\x00\x00\x00\x00"
    with pytest.raises(UnsupportedAudioError, match="block align"):
        StdinSource(io.BytesIO(data))


def test_raw_pcm():
    spec = parse_raw_spec("8000:2:s16le")
    pcm = np.arange(-50, 50, dtype=np.int16).tobytes()
    got = collect(StdinSource(io.BytesIO(pcm), raw=spec))
    assert got.shape == (50, 2)
    np.testing.assert_array_equal(got.ravel(), np.arange(-50, 50) / 32768)


@pytest.mark.parametrize(
    "text", ["16000:1", "x:1:s16le", "16000:0:s16le", "16000:1:s13", "0:1:s16le"]
)
def test_bad_raw_specs(text):
    with pytest.raises(InputError):
        parse_raw_spec(text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_header_parser_never_fails_untyped(data):
    with contextlib.suppress(UnsupportedAudioError):
        read_wav_header(io.BytesIO(b"RIFF" + data).read)


@settings(max_examples=40, deadline=None)
@given(
    pcm=st.binary(max_size=600),
    step=st.integers(min_value=1, max_value=64),
    ch=st.integers(min_value=1, max_value=3),
)
def test_streamed_decoding_is_independent_of_arrival(pcm, step, ch):
    whole = len(pcm) // (2 * ch) * (2 * ch)
    src = StdinSource(
        io.BufferedReader(Trickle(wav_bytes(pcm, channels=ch, data_size=0), step)), block_frames=7
    )
    blocks = [as_float(b.data) for b in src.blocks()]
    got = np.concatenate(blocks) if blocks else np.zeros((0, ch), np.float32)
    expected = np.frombuffer(pcm[:whole], "<i2").reshape(-1, ch) / 32768
    np.testing.assert_array_equal(got, expected)


def test_stop_ends_a_read_waiting_on_an_idle_pipe():
    """No thread is left blocked in read(): stop() ends blocks() while the writer is silent."""
    import os
    import threading

    wav = (FIXTURES / "speech_16000_mono_int16.wav").read_bytes()
    r, w = os.pipe()
    try:
        os.write(w, wav[: 44 + 3200])
        with open(r, "rb", buffering=0, closefd=False) as stream:
            src = StdinSource(stream, block_frames=800)
            got: list = []
            reader = threading.Thread(target=lambda: got.extend(src.blocks()))
            reader.start()
            reader.join(0.5)
            assert reader.is_alive()  # waiting on the idle pipe
            src.stop()
            reader.join(5)
            assert not reader.is_alive()
            assert sum(b.frames for b in got) == 1600  # what had arrived
    finally:
        os.close(r)
        os.close(w)

"""16-bit PCM WAV read without libsndfile: the same samples as libsndfile, or libsndfile's turn.

Every case is compared with what libsndfile itself reads from the same file, so the direct
reader can never quietly disagree with the one it stands in for.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import soundfile as sf

from nsaudio.sources import FileSource
from nsaudio.sources.wav_file import Pcm16Wav, open_pcm16_wav

from ..badinput.corpus import chunk, fmt_chunk, riff

RNG = np.random.default_rng(7)


def samples(frames: int, channels: int) -> np.ndarray:
    return RNG.integers(-32768, 32768, size=(frames, channels), dtype=np.int16)


def read_all(source: FileSource) -> np.ndarray:
    blocks = list(source.blocks())
    pos = 0
    for block in blocks:  # positions follow on, block after block
        assert block.start == pos
        pos += len(block)
    return np.concatenate([b.data for b in blocks]) if blocks else np.zeros((0, source.channels))


def libsndfile(path: os.PathLike[str]) -> np.ndarray:
    return sf.read(str(path), dtype="int16", always_2d=True)[0]


def write(path, frames: int, channels: int, fmt: str = "WAV", rate: int = 48000) -> np.ndarray:
    data = samples(frames, channels)
    sf.write(str(path), data, rate, format=fmt, subtype="PCM_16")
    return data


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("fmt", ["WAV", "WAVEX"])
@pytest.mark.parametrize("block_frames", [1, 1000, 65536])
def test_whole_pcm16_files_are_read_directly_and_equal_libsndfile(
    tmp_path, channels, fmt, block_frames
):
    path = tmp_path / "a.wav"
    data = write(path, 4801, channels, fmt)
    source = FileSource(path, block_frames=block_frames)
    assert isinstance(source._file, Pcm16Wav)
    assert (source.rate, source.channels, source.frames) == (48000, channels, 4801)
    assert source.format == "WAV/PCM_16"
    got = read_all(source)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, data)
    np.testing.assert_array_equal(got, libsndfile(path))


def pcm_bytes(frames: int, channels: int) -> bytes:
    return samples(frames, channels).astype("<i2").tobytes()


# Hand-made layouts that libsndfile reads, each with a whole data chunk.
LAYOUTS = {
    "list_before_data": lambda pcm: riff(fmt_chunk(channels=2), chunk(b"LIST", b"x" * 31), chunk(b"data", pcm)),
    "list_after_data": lambda pcm: riff(fmt_chunk(channels=2), chunk(b"data", pcm), chunk(b"LIST", b"INFOjunk")),
    "bytes_after_riff": lambda pcm: riff(fmt_chunk(channels=2), chunk(b"data", pcm)) + b"\x00" * 100,
    "odd_data_size": lambda pcm: riff(fmt_chunk(channels=2), chunk(b"data", pcm[:-1])),
    "riff_size_too_small": lambda pcm: riff(fmt_chunk(channels=2), chunk(b"data", pcm), size=36),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_other_whole_layouts_are_read_directly_and_equal_libsndfile(tmp_path, name):
    path = tmp_path / "a.wav"
    path.write_bytes(LAYOUTS[name](pcm_bytes(3000, 2)))
    direct = open_pcm16_wav(str(path))
    assert direct is not None
    direct.close()
    np.testing.assert_array_equal(read_all(FileSource(path, block_frames=700)), libsndfile(path))


PCM = pcm_bytes(2000, 1)
# Files the direct reader must leave to libsndfile: other encodings, and headers that are
# not whole (the corpus in tests/badinput checks what libsndfile then makes of them).
FALLBACKS = {
    "s24": lambda p: sf.write(str(p), samples(100, 1), 16000, subtype="PCM_24"),
    "float": lambda p: sf.write(str(p), samples(100, 1) / 32768, 16000, subtype="FLOAT"),
    "ulaw": lambda p: sf.write(str(p), samples(100, 1), 16000, subtype="ULAW"),
    "u8": lambda p: sf.write(str(p), samples(100, 1), 16000, subtype="PCM_U8"),
    "flac": lambda p: sf.write(str(p), samples(100, 1), 16000, format="FLAC"),
    "data_size_beyond_eof": lambda p: p.write_bytes(riff(fmt_chunk(), chunk(b"data", PCM))[:-10]),
    "data_size_unknown": lambda p: p.write_bytes(riff(fmt_chunk(), b"data" + b"\xff" * 4 + PCM)),
    "data_size_zero_with_data": lambda p: p.write_bytes(
        riff(fmt_chunk(), b"data" + b"\x00" * 4 + PCM)
    ),
    "data_size_zero_no_data": lambda p: p.write_bytes(riff(fmt_chunk(), chunk(b"data", b""))),
    "not_riff": lambda p: p.write_bytes(b"not audio at all" * 10),
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_anything_else_is_left_to_libsndfile(tmp_path, name):
    path = tmp_path / "a.wav"
    FALLBACKS[name](path)
    assert open_pcm16_wav(str(path)) is None


def test_missing_and_unreadable_files_are_left_to_the_caller(tmp_path):
    assert open_pcm16_wav(str(tmp_path / "nothing.wav")) is None
    assert open_pcm16_wav(str(tmp_path)) is None


def test_a_file_cut_while_it_is_read_ends_where_it_was_cut(tmp_path):
    # Its header promised more: what is there is played, and the stream ends cleanly.
    path = tmp_path / "a.wav"
    data = write(path, 10000, 2)
    source = FileSource(path, block_frames=1000)  # the first block is read now
    with open(path, "r+b") as f:
        f.truncate(44 + 4 * 4500 + 3)  # mid-frame, past the first block
    got = read_all(source)
    np.testing.assert_array_equal(got, data[:4500])


def test_the_file_is_closed_at_the_end_of_the_stream(tmp_path):
    path = tmp_path / "a.wav"
    write(path, 100, 1)
    source = FileSource(path)
    read_all(source)
    assert source._file._stream.closed


def test_a_wav_on_a_named_pipe_is_left_to_libsndfile_unread(tmp_path):
    # As from `nsaudio convert <(cat a.wav) out.raw`: a header read here would be gone
    # from the pipe before libsndfile saw it.
    src = tmp_path / "a.wav"
    data = write(src, 3000, 2)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(src.read_bytes())

    got: list[tuple[object, np.ndarray]] = []

    def read() -> None:
        source = FileSource(fifo)
        got.append((source._file, read_all(source)))

    threads = [threading.Thread(target=job, daemon=True) for job in (feed, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert got, "the pipe was never read to its end"  # rather than a test that hangs
    assert not isinstance(got[0][0], Pcm16Wav)
    np.testing.assert_array_equal(got[0][1], data)

"""FileSource (``nsaudio/sources/file.py``): blocks, positions and types as a pipeline needs
them; errors said before any block; stop() and close()."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from nsaudio.errors import InputError, UnsupportedAudioError
from nsaudio.sources import Closeable, FileSource, Stoppable

from ..conftest import FIXTURES


@pytest.mark.parametrize(
    "name, dtype",
    [
        ("speech_16000_mono_int16.wav", np.int16),
        ("speech_48000_stereo_flac16.flac", np.int16),
        ("speech_22050_mono_float32.wav", np.float32),
        ("speech_96000_mono_flac24.flac", np.float32),
    ],
)
def test_blocks_are_contiguous_and_hold_the_whole_file(name, dtype):
    path = FIXTURES / name
    info = sf.info(str(path))
    source = FileSource(path, block_frames=10_000)
    assert (source.rate, source.channels, source.frames) == (
        info.samplerate, info.channels, info.frames,
    )  # fmt: skip
    assert source.name == str(path) and not source.live
    blocks = list(source.blocks())  # closes the file at its end
    assert [b.start for b in blocks] == [10_000 * i for i in range(len(blocks))]
    assert all(b.data.dtype == dtype and b.data.shape[1] == info.channels for b in blocks)
    assert sum(len(b) for b in blocks) == info.frames
    assert all(len(b) == 10_000 for b in blocks[:-1])


def test_stop_ends_blocks_before_the_next_one():
    source = FileSource(FIXTURES / "two_utterances_16000_mono_int16.wav", block_frames=1600)
    assert isinstance(source, Stoppable) and isinstance(source, Closeable)
    got = []
    for block in source.blocks():
        got.append(block)
        if len(got) == 3:
            source.stop()
    assert len(got) == 3
    source.close()  # again: harmless


def test_errors_are_said_before_any_block(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        FileSource(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="is a directory"):
        FileSource(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(UnsupportedAudioError, match="the file is empty"):
        FileSource(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("not audio at all\n" * 10)
    with pytest.raises(UnsupportedAudioError, match="not audio nsaudio can read"):
        FileSource(tmp_path / "text.wav")
    with pytest.raises(InputError, match="block size"):
        FileSource(FIXTURES / "speech_16000_mono_int16.wav", block_frames=0)


def test_a_name_of_ones_own_is_used_in_messages(tmp_path):
    with FileSource(FIXTURES / "speech_16000_mono_int16.wav", name="upload 42") as source:
        assert source.name == "upload 42"
    with pytest.raises(InputError, match=r"^upload 7: no such file"):
        FileSource(tmp_path / "x.wav", name="upload 7")

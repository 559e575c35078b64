"""Audio files through libsndfile: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, mu-law, A-law..."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import soundfile as sf

from ..blocks import Block
from ..errors import InputError, UnsupportedAudioError
from .limits import check_layout

__all__ = ["DEFAULT_BLOCK_FRAMES", "FileSource"]

#: Large blocks keep the per-block Python cost negligible on the fast path.
DEFAULT_BLOCK_FRAMES = 65536

#: Encodings whose every value int16 holds exactly: read as int16, no float conversion.
_INT16_EXACT = frozenset({"PCM_16", "PCM_S8", "PCM_U8", "ULAW", "ALAW"})


def _describe(err: Exception) -> str:
    text = str(err).strip().rstrip(".")
    # libsndfile prefixes its messages with "Error opening '<path>': "; the path is said anyway.
    return text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text


class FileSource:
    """Reads an audio file in large blocks of shape ``(frames, channels)``.

    16-bit and narrower integer encodings come as int16, everything else as float32.
    """

    live = False

    def __init__(self, path: str | os.PathLike[str], *, block_frames: int = DEFAULT_BLOCK_FRAMES):
        if block_frames <= 0:
            raise InputError(f"block size must be a positive number of frames, not {block_frames}")
        self.path = Path(path)
        self.name = str(path)
        self.block_frames = block_frames
        if not self.path.exists():
            raise InputError(f"{self.name}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.name}: is a directory, not an audio file")
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise UnsupportedAudioError(f"{self.name}: the file is empty")
        try:
            self._file = sf.SoundFile(str(self.path))
        except PermissionError:
            raise InputError(f"{self.name}: permission denied") from None
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
            raise UnsupportedAudioError(
                f"{self.name}: not audio nsaudio can read ({_describe(err)})"
            ) from None
        try:
            check_layout(self.name, self._file.samplerate, self._file.channels)
        except UnsupportedAudioError:
            self._file.close()
            raise
        self.rate: int = self._file.samplerate
        self.channels: int = self._file.channels
        self.format = f"{self._file.format}/{self._file.subtype}"
        self._dtype = "int16" if self._file.subtype in _INT16_EXACT else "float32"

    @property
    def frames(self) -> int | None:
        """Length in frames where the header knows it."""
        n = self._file.frames
        return n if n >= 0 else None

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        pos = 0
        try:
            while True:
                try:
                    data = self._file.read(self.block_frames, dtype=self._dtype, always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as err:
                    raise UnsupportedAudioError(
                        f"{self.name}: cannot decode past {pos / self.rate:.3f} s "
                        f"({_describe(err)})"
                    ) from None
                if not len(data):
                    return
                yield Block(data, pos, self.rate, time.monotonic_ns())
                pos += len(data)
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

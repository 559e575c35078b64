"""Sinks that keep the frames: headerless PCM and WAV files, stdout, or nothing at all."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import BinaryIO

import soundfile as sf

from ..blocks import Frame
from ..errors import InputError

__all__ = ["NullSink", "RawSink", "WavSink"]


def _open_for_writing(path: str) -> BinaryIO:
    try:
        return open(path, "wb")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror})") from None


class RawSink:
    """Headerless int16 LE mono PCM to a path, or to stdout for ``-``."""

    def __init__(self, path: str | os.PathLike[str] | BinaryIO) -> None:
        self._owned = False
        self.path: str | None = None
        if isinstance(path, (str, os.PathLike)):
            self.path = os.fspath(path)
            if self.path != "-":
                self._out: BinaryIO = _open_for_writing(self.path)
                self._owned = True
            else:
                self._out = sys.stdout.buffer
        else:
            self._out = path
        self.frames_written = 0

    def open(self, rate: int) -> None:
        self.rate = rate

    def write(self, frame: Frame) -> None:
        self._out.write(frame.pcm)
        self.frames_written += frame.frames

    def close(self) -> None:
        if self._owned:
            self._out.close()
        else:
            self._out.flush()

    def abort(self) -> None:
        """Stop on failure: a file this sink created is removed, never left half-written."""
        if self._owned:
            self._out.close()
            if self.path is not None:
                os.unlink(self.path)


class WavSink:
    """16-bit PCM mono WAV; the header is completed on ``close()``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: sf.SoundFile | None = None
        self.frames_written = 0
        # Fail on an unwritable path now, before any audio is read.
        _open_for_writing(self.path).close()

    def open(self, rate: int) -> None:
        self._file = sf.SoundFile(
            self.path, "w", samplerate=rate, channels=1, format="WAV", subtype="PCM_16"
        )

    def write(self, frame: Frame) -> None:
        if self._file is None:
            raise RuntimeError("WavSink.write() before open()")
        self._file.buffer_write(frame.pcm, dtype="int16")
        self.frames_written += frame.frames

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def abort(self) -> None:
        self.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class NullSink:
    """Counts frames and throws them away (benchmarks)."""

    def __init__(self) -> None:
        self.frames_written = 0

    def open(self, rate: int) -> None:
        self.rate = rate

    def write(self, frame: Frame) -> None:
        self.frames_written += frame.frames

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

"""16-bit PCM WAV files read straight from disk, without loading libsndfile.

Most audio handed to nsaudio is plain 16-bit WAV, and for it libsndfile only copies bytes:
importing it takes 22 ms, a twentieth of converting ten minutes of audio, and reading through
it took twice the CPU time of reading the file directly. :func:`open_pcm16_wav` takes only a
file whose header is whole and consistent (PCM, 16-bit, a data size that is known and present
in the file); anything else, including every damaged header, is left to libsndfile, so what
nsaudio accepts, rejects and says about a file does not depend on which reader took it.
"""

from __future__ import annotations

import io
import os
import stat
import sys

import numpy as np

from ..errors import InputError
from .wav_stream import read_wav_header

__all__ = ["Pcm16Wav", "open_pcm16_wav"]


class Pcm16Wav:
    """The part of ``soundfile.SoundFile`` that :class:`~.file.FileSource` uses, for a
    16-bit PCM WAV whose data chunk is whole: ``samplerate``, ``channels``, ``frames``,
    ``format``, ``subtype``, ``read()`` and ``close()``."""

    format = "WAV"
    subtype = "PCM_16"

    def __init__(self, stream: io.BufferedReader, rate: int, channels: int, frames: int) -> None:
        self._stream = stream
        self.samplerate = rate
        self.channels = channels
        self.frames = frames
        self._left = frames  # frames not read yet

    def read(self, frames: int, dtype: str = "int16", always_2d: bool = True) -> np.ndarray:
        """Up to ``frames`` frames as int16 of shape ``(n, channels)``; fewer only at the end.

        A failed read raises ``RuntimeError``, as libsndfile's do.
        """
        if dtype != "int16" or not always_2d:
            raise ValueError("Pcm16Wav reads int16 frames of shape (n, channels) only")
        want = min(frames, self._left)
        out = np.empty((want, self.channels), dtype="<i2")
        if not want:
            return out
        view = out.data.cast("B")
        got = 0
        try:
            while got < len(view):
                n = self._stream.readinto(view[got:])
                if not n:  # the file shrank under us: what is there is the end
                    break
                got += n
        except OSError as err:
            raise RuntimeError(f"read error: {err.strerror or err}") from None
        whole = got // (2 * self.channels)
        self._left = self._left - whole if whole == want else 0
        return out[:whole]

    def close(self) -> None:
        self._stream.close()


def open_pcm16_wav(path: str) -> Pcm16Wav | None:
    """``path`` opened for reading if it is a whole 16-bit PCM WAV, else None (libsndfile's).

    Whole: a RIFF/WAVE header nsaudio's stream parser accepts, 16-bit PCM samples
    (``WAVE_FORMAT_PCM`` or ``EXTENSIBLE`` with PCM), a data size that is neither unknown
    (0, 0xFFFFFFFF) nor beyond the end of the file, in a regular file (a pipe is left unread
    for libsndfile). Errors opening the file are left to the caller's libsndfile path too,
    which words them as it always has.
    """
    if sys.byteorder != "little":  # the samples are read as they lie on disk
        return None
    try:
        # Not even opened unless regular: opening and closing a named pipe unread would
        # break its writer's pipe, and what was read here would be gone from it.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        stream = open(path, "rb")  # noqa: SIM115 - Pcm16Wav owns it
    except OSError:
        return None
    try:
        info = os.fstat(stream.fileno())
        header = read_wav_header(stream.read, path)  # buffered: whole reads up to the end
        data_start = stream.tell()
    except (InputError, OSError):
        stream.close()
        return None
    if (
        header.fmt.name != "s16le"
        or header.data_bytes is None
        or data_start + header.data_bytes > info.st_size
    ):
        stream.close()
        return None
    frames = header.data_bytes // header.block_align
    return Pcm16Wav(stream, header.rate, header.channels, frames)

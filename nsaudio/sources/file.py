"""Audio files through libsndfile: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, mu-law, A-law...

A whole 16-bit PCM WAV is read directly instead (:mod:`.wav_file`), and libsndfile is then
not even imported.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..blocks import Block
from ..errors import InputError, UnsupportedAudioError
from .limits import check_layout
from .wav_file import open_pcm16_wav

__all__ = ["DEFAULT_BLOCK_FRAMES", "FileSource"]

log = logging.getLogger("nsaudio.sources")

#: Large blocks keep the per-block Python cost negligible on the fast path.
DEFAULT_BLOCK_FRAMES = 65536

#: Encodings whose every value int16 holds exactly: read as int16, no float conversion.
_INT16_EXACT = frozenset({"PCM_16", "PCM_S8", "PCM_U8", "ULAW", "ALAW"})


def _describe(err: Exception) -> str:
    text = str(err).strip().rstrip(".")
    # libsndfile prefixes its messages with "Error opening '<path>': "; the path is said anyway.
    text = text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text
    # What libsndfile says when its last guess (MP3) fails too, even for a regular file.
    if text.startswith("File does not exist or is not a regular file"):
        return "Format not recognised"
    return text


class FileSource:
    """Reads an audio file in large blocks of shape ``(frames, channels)``.

    16-bit and narrower integer encodings come as int16, everything else as float32.
    ``path``: any format libsndfile reads (a plain 16-bit PCM WAV is read directly, without
    it); ``block_frames``: frames per block; ``name``: what messages call it (default: the
    path). An unreadable file raises :class:`~nsaudio.errors.InputError` (or
    :class:`~nsaudio.errors.UnsupportedAudioError`) here, before any block is read.
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        name: str | None = None,
    ):
        if block_frames <= 0:
            raise InputError(f"block size must be a positive number of frames, not {block_frames}")
        self.path = os.fspath(path)
        self.name = self.path if name is None else name
        self.block_frames = block_frames
        try:
            mode = os.stat(self.path)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise InputError(f"{self.name}: no such file") from None
            mode = None  # said below, by the open that fails
        if mode is not None and stat.S_ISDIR(mode.st_mode):
            raise InputError(f"{self.name}: is a directory, not an audio file")
        if mode is not None and stat.S_ISREG(mode.st_mode) and mode.st_size == 0:
            raise UnsupportedAudioError(f"{self.name}: the file is empty")
        self._file: Any = open_pcm16_wav(self.path) or self._open_sndfile()
        try:
            check_layout(self.name, self._file.samplerate, self._file.channels)
        except UnsupportedAudioError:
            self._file.close()
            raise
        self.rate: int = self._file.samplerate
        self.channels: int = self._file.channels
        self.format = f"{self._file.format}/{self._file.subtype}"
        self._dtype = "int16" if self._file.subtype in _INT16_EXACT else "float32"
        # libmpg123 prints its notes as it decodes: quiet it once for the whole file, not
        # block by block (see native_stderr.py), until close() or garbage collection.
        self._quiet = contextlib.ExitStack()
        self._release_quiet = weakref.finalize(self, self._quiet.close)
        if self._file.format == "MP3":
            from .native_stderr import native_stderr_to_log

            self._quiet.enter_context(native_stderr_to_log())
        self._damage: str | None = None  # why the audio stops early, once it is known
        self._stopped = threading.Event()
        # The first block is decoded now, so that audio that cannot be decoded at all fails
        # here, before anything else (a connection to the service) is set up.
        try:
            self._first: np.ndarray | None = self._read(0)
        except BaseException:
            self.close()
            raise

    def _open_sndfile(self) -> Any:
        import soundfile as sf

        from .native_stderr import native_stderr_to_log

        try:
            with native_stderr_to_log():
                return sf.SoundFile(self.path)
        except PermissionError:
            raise InputError(f"{self.name}: permission denied") from None
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
            raise UnsupportedAudioError(
                f"{self.name}: not audio nsaudio can read ({_describe(err)})"
            ) from None

    @property
    def frames(self) -> int | None:
        """Length in frames where the header knows it."""
        n = self._file.frames
        return n if n >= 0 else None

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        """The file's blocks in order; a file damaged halfway ends where decoding stops,
        with a warning. ``stop()`` ends it before the next block."""
        pos = 0
        try:
            while True:
                if self._stopped.is_set():
                    break
                if self._first is not None:
                    data, self._first = self._first, None
                elif self._damage is not None:
                    break
                else:
                    data = self._read(pos)
                if not len(data):
                    break
                yield Block(data, pos, self.rate, time.monotonic_ns())
                pos += len(data)
            if self._damage is not None and not self._stopped.is_set():  # said when reached
                log.warning("%s", self._damage)
        finally:
            self.close()

    def stop(self) -> None:
        """End ``blocks()`` before its next block; safe from a signal handler or any thread."""
        self._stopped.set()

    def _read(self, pos: int) -> np.ndarray:
        """The next block; at a decoding error, what decodes of it, and then the end.

        A file cut short or damaged plays up to the damage, with a warning, as a cut WAV
        does; audio of which nothing at all decodes is an error.
        """
        try:
            return self._file.read(self.block_frames, dtype=self._dtype, always_2d=True)
        except RuntimeError as err:  # libsndfile's errors are RuntimeErrors too
            reason = _describe(err) or "decoding error"
        data = self._salvage(pos)
        if not pos and not len(data):
            raise UnsupportedAudioError(f"{self.name}: cannot decode the audio ({reason})")
        end = (pos + len(data)) / self.rate
        self._damage = (
            f"{self.name}: cannot decode past {end:.3f} s ({reason}): the rest is left out"
        )
        return data

    def _salvage(self, pos: int) -> np.ndarray:
        """Decode again from ``pos``, keeping what comes before the error.

        libsndfile fills the buffer up to the error and then reports it, and soundfile raises
        without saying how far it got: the frames never written are told by a NaN sentinel,
        which no decoder that fails this way (FLAC, MP3, Vorbis, Opus) produces. A fresh
        handle: after an error, libsndfile's FLAC reader may fail again at once.
        """
        import soundfile as sf

        from .native_stderr import native_stderr_to_log

        buf = np.full((self.block_frames, self.channels), np.nan, dtype=np.float32)
        try:
            with native_stderr_to_log(), sf.SoundFile(self.path) as f:
                f.seek(pos)
                return f.read(out=buf)  # no error this time: the count is known
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError):
            pass
        written = np.flatnonzero(~np.isnan(buf).all(axis=1))
        return buf[: written[-1] + 1] if len(written) else buf[:0]

    def close(self) -> None:
        """Close the file."""
        self._file.close()
        self._release_quiet()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

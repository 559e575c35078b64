"""Sinks that keep the frames: headerless PCM and WAV files, stdout, or nothing at all.

Every file is written through :class:`PendingFile`: it appears under its name only once it
is complete (``close()``), and a run that fails leaves nothing behind (``abort()``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import weakref
from typing import TYPE_CHECKING, BinaryIO

from ..blocks import Frame
from ..errors import InputError

if TYPE_CHECKING:
    import soundfile as sf

__all__ = ["NullSink", "PendingFile", "RawSink", "WavSink"]


def _cannot_write(path: str, err: OSError) -> InputError:
    if isinstance(err, IsADirectoryError):
        return InputError(f"{path}: is a directory")
    return InputError(f"{path}: cannot write ({err.strerror})")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class PendingFile:
    """An output that appears under its name only when it is complete.

    ``name`` is where to write: a hidden temporary beside the target
    (``.NAME.xxxxxxxx.part``, same folder, so the rename is atomic). ``commit()`` renames it
    onto the target; ``discard()`` removes it, and so does the end of the process if
    neither was called. A symbolic link's file is replaced, not the link. A target that is
    not a regular file (``/dev/null``, a FIFO, a terminal) is written directly and never
    removed. An unwritable target fails here, before any audio is read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        target = os.path.realpath(self.path)
        try:
            mode: int | None = os.stat(target).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as err:
            raise _cannot_write(self.path, err) from None
        if mode is not None and stat.S_ISDIR(mode):
            raise InputError(f"{self.path}: is a directory")
        if mode is not None and not os.access(target, os.W_OK):
            raise InputError(f"{self.path}: cannot write (permission denied)")
        self._target: str | None = None
        self.name = self.path
        if mode is not None and not stat.S_ISREG(mode):
            return  # a device or a pipe: there is nothing to rename or remove
        folder, base = os.path.split(target)
        while True:
            # os.urandom, not secrets: that imports hashlib, whose OpenSSL adds 4 MB to the RSS
            temp = os.path.join(folder, f".{base}.{os.urandom(4).hex()}.part")
            try:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
            except OSError as err:
                raise _cannot_write(self.path, err) from None
        self.name, self._target = temp, target
        self._discard = weakref.finalize(self, _remove, temp)

    @property
    def regular(self) -> bool:
        """True for a regular file (written to a temporary and renamed), False for a device
        or a pipe, whose writes may wait on a reader."""
        return self._target is not None

    def commit(self) -> None:
        """Put the written file in place under its name (idempotent)."""
        if self._target is not None and self._discard.alive:
            os.replace(self.name, self._target)
            self._discard.detach()

    def discard(self) -> None:
        """Remove what was written (idempotent; nothing after ``commit()``)."""
        if self._target is not None:
            self._discard()


class RawSink:
    """Headerless int16 LE mono PCM to ``path``: a file (written beside it under a hidden
    name and put in place by ``close()``), ``-`` for stdout, a device or a pipe (written as
    it is), or an open binary stream. An unwritable path fails here."""

    def __init__(self, path: str | os.PathLike[str] | BinaryIO) -> None:
        self._pending: PendingFile | None = None
        self.path: str | None = None
        if isinstance(path, (str, os.PathLike)):
            self.path = os.fspath(path)
            if self.path != "-":
                self._pending = PendingFile(self.path)
                try:
                    self._out: BinaryIO = open(self._pending.name, "wb")  # noqa: SIM115
                except OSError as err:
                    self._pending.discard()
                    raise _cannot_write(self.path, err) from None
            else:
                self._out = sys.stdout.buffer
        else:
            self._out = path
        self.frames_written = 0

    @property
    def to_regular_file(self) -> bool:
        """Writes go to a regular file: none of them waits on a reader."""
        return self._pending is not None and self._pending.regular

    def open(self, rate: int) -> None:
        """Ready for frames at ``rate`` Hz (nothing to write: no header)."""
        self.rate = rate

    def write(self, frame: Frame) -> None:
        """Write the frame's bytes."""
        self._out.write(frame.pcm)
        self.frames_written += frame.frames  # only once the write returned: never claimed early

    def close(self) -> None:
        """End of stream: the file is put in place (or the stream flushed)."""
        if self._pending is not None:
            self._out.close()
            self._pending.commit()
        else:
            self._out.flush()

    def abort(self) -> None:
        """Stop on failure: a file this sink would have written never appears."""
        if self._pending is not None:
            self._out.close()
            self._pending.discard()


class WavSink:
    """16-bit PCM mono WAV to ``path``; the header is completed, and the file put in place, by
    ``close()``. An unwritable path fails here.

    ``keep_partial``: ``abort()`` keeps what was written (a complete WAV of it) instead of
    removing it, when there is any (``stream --record``: the audio that was sent).
    """

    def __init__(self, path: str | os.PathLike[str], *, keep_partial: bool = False) -> None:
        self.path = os.fspath(path)
        self.keep_partial = keep_partial
        self._file: sf.SoundFile | None = None
        self.frames_written = 0
        self._pending = PendingFile(self.path)  # an unwritable path fails now

    @property
    def to_regular_file(self) -> bool:
        """Writes go to a regular file: none of them waits on a reader."""
        return self._pending.regular

    def open(self, rate: int) -> None:
        """Start the WAV at ``rate`` Hz."""
        import soundfile as sf  # only here: a raw conversion never loads libsndfile

        self._file = sf.SoundFile(
            self._pending.name, "w", samplerate=rate, channels=1, format="WAV", subtype="PCM_16"
        )

    def write(self, frame: Frame) -> None:
        """Append the frame's samples."""
        if self._file is None:
            raise RuntimeError("WavSink.write() before open()")
        self._file.buffer_write(frame.pcm, dtype="int16")
        self.frames_written += frame.frames

    def close(self) -> None:
        """Complete the header and put the file in place."""
        if self._file is not None:
            self._file.close()
            self._pending.commit()
        else:
            self._pending.discard()  # never opened: nothing to keep

    def abort(self) -> None:
        """Remove what was written, or with ``keep_partial`` keep it as a complete WAV."""
        if self.keep_partial and self.frames_written:
            self.close()
            return
        if self._file is not None:
            self._file.close()
        self._pending.discard()


class NullSink:
    """Counts frames and throws them away (benchmarks)."""

    def __init__(self) -> None:
        self.frames_written = 0

    def open(self, rate: int) -> None:
        """Ready for frames at ``rate`` Hz."""
        self.rate = rate

    def write(self, frame: Frame) -> None:
        """Count the frame's samples in ``frames_written``."""
        self.frames_written += frame.frames

    def close(self) -> None:
        """Nothing to finish."""

    def abort(self) -> None:
        """Nothing to undo."""

"""Audio on standard input: WAV read as it arrives, other containers spooled, or raw PCM."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import stat
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from typing import BinaryIO

from ..blocks import Block
from ..errors import InputError, UnsupportedAudioError
from .file import DEFAULT_BLOCK_FRAMES, FileSource
from .pcm import RawSpec, SampleFormat, decode
from .wav_stream import read_wav_header

__all__ = ["StdinSource"]

log = logging.getLogger("nsaudio.sources")

# Containers libsndfile reads but only from a seekable file: spooled to a temporary file.
_SPOOLED_MAGIC = (
    b"fLaC",
    b"OggS",
    b"FORM",
    b"ID3",
    b"\xff\xfb",
    b"\xff\xf3",
    b"\xff\xf2",
    b".snd",
    b"caff",
)


#: How often a read waiting on an idle pipe looks whether it was stopped (milliseconds).
POLL_MS = 100


class _Reader:
    """Exact reads over a binary stream, with a pushed-back prefix, that ``stop()`` ends.

    A pipe, socket or terminal is polled and read through its file descriptor, so a read
    waiting on an idle writer returns within :data:`POLL_MS` of ``stop()``: no thread is
    ever left blocked in ``read()``. Other streams (files, in-memory buffers) never block
    for long and are read as they are.
    """

    def __init__(self, stream: BinaryIO, fd: int | None) -> None:
        self.stream = stream
        self.prefix = b""
        self.stopped = threading.Event()
        self._fd = fd
        self._poll: select.poll | None = None
        if fd is not None:
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)

    def stop(self) -> None:
        """Make reads return ``b""`` (end of stream); safe from any thread or a signal handler."""
        self.stopped.set()

    def read(self, n: int) -> bytes:
        out = self.prefix[:n]
        self.prefix = self.prefix[n:]
        while len(out) < n:
            more = self._some(n - len(out))
            if not more:
                break
            out += more
        return out

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes, returning as soon as some are there: live pipes stay live."""
        if self.prefix:
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return self._some(n)

    def _some(self, n: int) -> bytes:
        if self._poll is None or self._fd is None:
            if self.stopped.is_set():
                return b""
            read1 = getattr(self.stream, "read1", None)
            return read1(n) if read1 is not None else self.stream.read(n)
        while not self.stopped.is_set():
            if self._poll.poll(POLL_MS):  # data, the writer's end (POLLHUP), or an error
                return os.read(self._fd, n)
        return b""


class StdinSource:
    """Blocks from a byte stream (default: ``sys.stdin.buffer``).

    WAV (including streaming writers' unknown sizes) is decoded as it arrives; FLAC, OGG,
    MP3 and AIFF are spooled to a temporary file first; headerless PCM needs ``raw`` (a
    :class:`~nsaudio.sources.pcm.RawSpec`: rate, channels, sample type). ``block_frames``:
    frames per block; ``name``: what messages call it; ``owns_stream``: close ``stream`` at
    the end of ``blocks()`` and in ``close()``. The header is read here: input that is not
    audio raises :class:`~nsaudio.errors.InputError` before any block.
    """

    live = False

    def __init__(
        self,
        stream: BinaryIO | None = None,
        *,
        raw: RawSpec | None = None,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        name: str = "stdin",
        owns_stream: bool = False,
    ) -> None:
        """``owns_stream``: close ``stream`` at the end of ``blocks()`` and in ``close()``."""
        self.name = name
        self._owns_stream = owns_stream
        self.block_frames = block_frames
        if stream is None:
            stream = sys.stdin.buffer
            _check_not_tty(stream)
        self._stream = stream
        self._reader = _Reader(self._stream, _pollable_fd(stream))
        self._spooled: FileSource | None = None
        self._spool_path: str | None = None
        self._remaining: int | None = None
        if raw is not None:
            self.rate, self.channels, self._fmt = raw.rate, raw.channels, raw.fmt
            self.format = f"raw/{raw.fmt.name}"
            return
        magic = self._reader.read(12)
        if not magic:
            raise UnsupportedAudioError(f"{name}: no input (the stream is empty)")
        self._reader.prefix = magic
        if magic[:4] == b"RIFF":
            header = read_wav_header(self._reader.read, name)
            self.rate, self.channels, self._fmt = header.rate, header.channels, header.fmt
            self._remaining = header.data_bytes
            self.format = f"WAV/{header.fmt.name}"
        elif magic.startswith(_SPOOLED_MAGIC):
            self._spool()
        else:
            raise UnsupportedAudioError(
                f"{name}: not WAV, FLAC, OGG, MP3 or AIFF; for headerless PCM give "
                "--raw RATE:CHANNELS:TYPE (for example 16000:1:s16le)"
            )

    def _spool(self) -> None:
        fd, path = tempfile.mkstemp(prefix="nsaudio-", suffix=".audio")
        self._spool_path = path
        with os.fdopen(fd, "wb") as out:
            while chunk := self._reader.read_some(1 << 20):
                out.write(chunk)
        # Removed by close(), or failing that when this object goes or the interpreter exits
        # (a run that stops before reading, on a network error say, leaves nothing behind).
        self._unlink_spool = weakref.finalize(self, _remove, path)
        try:
            self._spooled = FileSource(path, block_frames=self.block_frames, name=self.name)
        except BaseException:
            self._unlink_spool()
            raise
        self.rate, self.channels = self._spooled.rate, self._spooled.channels
        self.format = self._spooled.format

    @staticmethod
    def is_regular_file(stream: BinaryIO) -> bool:
        """True when the stream is a redirected file rather than a pipe or terminal."""
        try:
            return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        except (OSError, ValueError, AttributeError):
            return False

    def stop(self) -> None:
        """End ``blocks()`` early: a read waiting on an idle pipe returns promptly.

        Only sets flags, so it is safe from a signal handler or any thread.
        """
        self._reader.stop()
        if self._spooled is not None:
            self._spooled.stop()

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        """Blocks as the bytes arrive, until the stream ends or ``stop()``."""
        try:
            if self._spooled is not None:
                yield from self._spooled.blocks()
            else:
                yield from self._pcm_blocks(self._fmt)
        finally:
            self.close()

    def _pcm_blocks(self, fmt: SampleFormat) -> Iterator[Block]:
        align = self.channels * fmt.width
        want = self.block_frames * align
        carry = b""
        pos = 0
        while self._remaining is None or self._remaining > 0:
            n = want if self._remaining is None else min(want, self._remaining)
            data = self._reader.read_some(n)
            if not data:
                break
            if self._remaining is not None:
                self._remaining -= len(data)
            if carry:
                data, carry = carry + data, b""
            whole = len(data) // align * align
            if whole < len(data):
                carry = data[whole:]
            if whole:
                block = decode(memoryview(data)[:whole], fmt, self.channels)
                yield Block(block, pos, self.rate, time.monotonic_ns())
                pos += len(block)
        if carry and not self._reader.stopped.is_set():
            log.warning(
                "%s: ignored %d trailing bytes, less than one sample frame", self.name, len(carry)
            )

    def close(self) -> None:
        """Release the stream (if owned) and any spooled temporary file."""
        if self._owns_stream:
            self._stream.close()
        if self._spooled is not None:
            self._spooled.close()
        if self._spool_path is not None:
            self._unlink_spool()
            self._spool_path = None


def _pollable_fd(stream: BinaryIO) -> int | None:
    """The descriptor to poll and read for a pipe, socket or terminal; None otherwise.

    Only for stdin itself (which nothing has read through its buffer yet) or an unbuffered
    stream: reading the descriptor of a buffered one would skip what its buffer holds.
    """
    if stream is not getattr(sys.stdin, "buffer", None) and not isinstance(stream, io.RawIOBase):
        return None
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) else None


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _check_not_tty(stream: BinaryIO) -> None:
    if hasattr(stream, "isatty") and stream.isatty():
        raise InputError(
            "stdin is a terminal: pipe audio into nsaudio, "
            "for example 'arecord -f S16_LE -r 16000 | nsaudio stream -'"
        )

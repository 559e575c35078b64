"""Where audio comes from: files, stdin, microphones, and synthetic sources.

Every source has ``rate``, ``channels``, ``name``, ``live``, ``blocks()`` yielding
float32 :class:`~nsaudio.blocks.Block` s of shape ``(frames, channels)``, and ``stop()``,
which makes ``blocks()`` end promptly even while it waits for input (an idle pipe, a
device): safe from any thread or a signal handler.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from .._lazy import lazy_exports
from ..blocks import Block
from ..errors import InputError
from .file import DEFAULT_BLOCK_FRAMES, FileSource
from .pcm import RawSpec, parse_raw_spec
from .wav_stream import read_wav_header

if TYPE_CHECKING:
    from .mic import MicSource
    from .push import PushSource
    from .stdin import StdinSource
    from .synthetic import ArraySource, ToneSource

__all__ = [
    "ArraySource",
    "FileSource",
    "MicSource",
    "PushSource",
    "RawSpec",
    "Source",
    "StdinSource",
    "ToneSource",
    "open_source",
    "parse_raw_spec",
]


class Source(Protocol):
    """What a pipeline reads audio from; implement these to make your own.

    ``live`` sources (a device) are read as they capture and never paced; the others are
    read on a thread of their own. An optional ``stop()`` ends ``blocks()`` early.
    """

    rate: int
    channels: int
    name: str
    live: bool

    def blocks(self) -> Iterator[Block]:
        """Blocks of shape ``(frames, channels)``, each with its stream position, then the end."""
        ...

    def stop(self) -> None: ...


def open_source(
    spec: str | os.PathLike[str],
    *,
    raw: RawSpec | None = None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    **mic_options: Any,
) -> Source:
    """Open ``path``, ``-`` (stdin), ``mic:`` (default input), ``mic:N`` or ``mic:NAME``."""
    text = os.fspath(spec)
    if text.startswith("mic:"):
        from .mic import MicSource

        return MicSource(text[4:], **mic_options)
    if text == "-":
        from .stdin import StdinSource

        return StdinSource(raw=raw, block_frames=block_frames)
    if raw is not None:
        if not os.path.isfile(text):
            raise InputError(f"{text}: no such file")
        return _streamed(text, raw, block_frames)
    source = FileSource(text, block_frames=block_frames)
    if source.frames == 0 and source.format.startswith("WAV/") and _wav_size_unknown(text):
        # libsndfile takes a streaming writer's data size of 0 at its word: nothing to play.
        source.close()
        return _streamed(text, None, block_frames)
    return source


def _streamed(path: str, raw: RawSpec | None, block_frames: int) -> StdinSource:
    from .stdin import StdinSource

    stream = open(path, "rb")  # noqa: SIM115 - the source owns it and closes it
    try:
        return StdinSource(stream, raw=raw, block_frames=block_frames, name=path, owns_stream=True)
    except BaseException:
        stream.close()
        raise


def _wav_size_unknown(path: str) -> bool:
    """True for a WAV whose data size says "unknown" (0), with bytes after it, and whose
    RIFF size is not that of the file (a finished file may hold an empty data chunk)."""
    with open(path, "rb") as f:
        riff_size = int.from_bytes(f.read(8)[4:], "little")
        f.seek(0)
        try:
            header = read_wav_header(f.read, path)
        except InputError:
            return False
        finished = riff_size + 8 == os.fstat(f.fileno()).st_size
        return header.data_bytes is None and not finished and bool(f.read(1))


# Imported on first use only: MicSource needs PortAudio, and a file's conversion needs none.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MicSource": ".mic",
        "PushSource": ".push",
        "StdinSource": ".stdin",
        "ArraySource": ".synthetic",
        "ToneSource": ".synthetic",
    },
    __all__,
)

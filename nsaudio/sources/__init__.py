"""Where audio comes from: files, stdin, microphones, and synthetic sources.

Every source has ``rate``, ``channels``, ``name``, ``live`` and ``blocks()`` yielding
float32 :class:`~nsaudio.blocks.Block` s of shape ``(frames, channels)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..blocks import Block
from ..errors import InputError
from .file import DEFAULT_BLOCK_FRAMES, FileSource
from .pcm import RawSpec, parse_raw_spec
from .stdin import StdinSource
from .synthetic import ArraySource, ToneSource

if TYPE_CHECKING:
    from .mic import MicSource

__all__ = [
    "ArraySource",
    "FileSource",
    "MicSource",
    "RawSpec",
    "Source",
    "StdinSource",
    "ToneSource",
    "open_source",
    "parse_raw_spec",
]


class Source(Protocol):
    rate: int
    channels: int
    name: str
    live: bool

    def blocks(self) -> Iterator[Block]: ...


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
        return StdinSource(raw=raw, block_frames=block_frames)
    if raw is not None:
        if not os.path.isfile(text):
            raise InputError(f"{text}: no such file")
        return StdinSource(open(text, "rb"), raw=raw, block_frames=block_frames, name=text)
    return FileSource(text, block_frames=block_frames)


def __getattr__(name: str) -> Any:
    if name == "MicSource":
        from .mic import MicSource

        return MicSource
    raise AttributeError(name)

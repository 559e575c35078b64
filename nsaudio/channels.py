"""One session per input channel: a call with the agent on one channel and the customer on
the other, each transcribed on its own, one transcript labelled by channel.

:func:`split_channels` builds the :class:`~nsaudio.runner.Pipeline` that does it: the
source's blocks go through a :class:`~nsaudio.stages.split.ChannelSplit` (a resampler that
takes one channel, a framer and an energy gate per channel) into
:class:`~nsaudio.sinks.channels.ChannelSinks` (one sink per channel, each its own session
with its own replay and verdict; results merged in time order with the channel's name in
``result.channel``). The pieces can be put together by hand for other stages or sinks.
:func:`channel_names` checks the names a user gives.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Sequence

from .errors import InputError
from .formats import format_rate
from .neuralspace.protocol import TranscriptResult
from .runner import Pipeline, standard_stages
from .sinks.channels import ChannelSinks, MakeSink
from .sources import Source
from .stages.split import ChannelSplit

__all__ = [
    "MAX_NAME",
    "channel_names",
    "channel_path",
    "check_channel_name",
    "split_channels",
]

#: Characters a channel's name may have at most.
MAX_NAME = 32
#: Not in a name: the list's separator, path separators (``--record`` files are named
#: after channels), and what would break a WebVTT voice tag.
_FORBIDDEN = ",/\\<>&"


def channel_names(
    names: Sequence[str] | None, channels: int, source: str = "the input"
) -> list[str]:
    """The channels' labels: ``names`` checked (as many as ``channels``, distinct, each
    1 to :data:`MAX_NAME` printable characters without ``, / \\ < > &``, not starting
    with a dot), or ``ch1``, ``ch2``, ... when None. ``source`` names the input in errors.

    Raises :class:`~nsaudio.errors.InputError` if the input has one channel, or the names
    do not fit.
    """
    if channels < 2:
        raise InputError(f"{source} has {channels} channel: splitting channels needs 2 or more")
    if names is None:
        return [f"ch{i + 1}" for i in range(channels)]
    out = [name.strip() for name in names]
    if len(out) != channels:
        raise InputError(
            f"{len(out)} channel names for the {channels} channels of {source}: give one each"
        )
    for name in out:
        check_channel_name(name)
    if len(set(out)) != len(out):
        raise InputError(f"channel names must differ: {', '.join(out)}")
    return out


def check_channel_name(name: str) -> None:
    """Raise :class:`~nsaudio.errors.InputError` unless ``name`` can label a channel."""
    if not name:
        raise InputError("a channel name is empty")
    if len(name) > MAX_NAME:
        raise InputError(f"channel name {name!r} is longer than {MAX_NAME} characters")
    bad = [c for c in name if c in _FORBIDDEN or (unicodedata.category(c)[0] in "CZ" and c != " ")]
    if bad or name.startswith("."):
        raise InputError(
            f"channel name {name!r}: letters, digits, spaces and punctuation other than "
            f"{' '.join(_FORBIDDEN)}, not starting with a dot"
        )


def channel_path(path: str | os.PathLike[str], name: str) -> str:
    """Where channel ``name``'s file of ``path`` goes: ``sent.wav`` -> ``sent.agent.wav``."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.{name}{ext}"


def split_channels(
    source: Source,
    make_sink: MakeSink,
    fmt: str = "pcm_16k",
    *,
    names: Sequence[str] | None = None,
    on_result: Callable[[TranscriptResult], None] | None = None,
    limit_seconds: float | None = None,
    hold_seconds: float = 15.0,
    frame_ms: float = 100,
    quality: str = "HQ",
    gate_threshold: float = 0.5,
    skip_silence: bool = False,
    pre_roll_ms: float = 300,
    tail_ms: float = 700,
) -> Pipeline:
    """A pipeline from ``source`` with a session per channel (see the module docstring).

    ``make_sink(name, on_result)`` makes channel ``name``'s sink, which must send its
    results to ``on_result`` (e.g. ``NeuralSpaceSink(url, key, params,
    on_result=on_result)``); ``fmt``: the service's format; ``names``: the channels' labels
    (default ``ch1``, ``ch2``...; see :func:`channel_names`); ``on_result``: takes every
    merged result (else iterate ``pipeline.results()``); ``limit_seconds``: input to take;
    ``hold_seconds``: see :class:`~nsaudio.sinks.channels.ChannelSinks`. The rest are
    :func:`~nsaudio.runner.standard_stages` 's, for every channel's stages: ``frame_ms``,
    ``quality`` (soxr's), ``gate_threshold``, ``skip_silence``, ``pre_roll_ms`` and
    ``tail_ms``.
    """
    labels = channel_names(names, source.channels, source.name)
    rate = format_rate(fmt)
    lanes = [
        standard_stages(
            source,
            fmt,
            channel=i,
            frame_ms=frame_ms,
            quality=quality,
            gate_threshold=gate_threshold,
            skip_silence=skip_silence,
            pre_roll_ms=pre_roll_ms,
            tail_ms=tail_ms,
        )
        for i in range(source.channels)
    ]
    sinks = ChannelSinks(labels, make_sink, on_result=on_result, hold_seconds=hold_seconds)
    return Pipeline(
        source, [ChannelSplit(lanes, rate=rate)], sinks, rate=rate, limit_seconds=limit_seconds
    )

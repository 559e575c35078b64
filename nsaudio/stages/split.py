"""One input of several channels into a chain of stages per channel: a pure stage.

Each channel gets stages of its own (in ``nsaudio stream --split-channels``: a resampler
that takes that channel alone, a framer and an energy gate), so each has its own hold-back,
frames and speech labels, and a session of its own behind
:class:`~nsaudio.sinks.channels.ChannelSinks`. Every frame out is a
:class:`~nsaudio.blocks.ChannelFrame` carrying its channel's index; the frames of one push
come out in stream order (by position, then channel), so no channel's session waits while
another's takes a whole block.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..blocks import Block, ChannelFrame, Frame
from ..errors import InputError
from .base import Chain, Stage
from .speech_gate import SpeechGate, find_gate

__all__ = ["ChannelSplit"]


class ChannelSplit:
    """Blocks of ``len(lanes)`` channels in; :class:`~nsaudio.blocks.ChannelFrame` s out.

    ``lanes``: the stages of each channel, in channel order, each list ending in frames
    (its first stage picks its channel out of the block, as ``Resampler(channel=i)`` does);
    ``rate``: of those frames. ``gates`` are each channel's energy gates (None where a
    channel has none), for meters and summaries.
    """

    def __init__(self, lanes: Sequence[Sequence[Stage]], *, rate: int) -> None:
        if len(lanes) < 2:
            raise InputError(f"a channel split needs 2 or more channels, not {len(lanes)}")
        self.chains = [Chain(stages) for stages in lanes]
        self.rate = rate

    @property
    def channels(self) -> int:
        """How many channels it splits."""
        return len(self.chains)

    @property
    def gates(self) -> list[SpeechGate | None]:
        """Each channel's speech gate, in channel order (None where it has none)."""
        return [find_gate(chain.stages) for chain in self.chains]

    def push(self, block: Block) -> list[ChannelFrame]:
        """Each channel of ``block`` through its own stages: their frames, in stream order."""
        if block.data.ndim != 2 or block.data.shape[1] != len(self.chains):
            got = block.data.shape[1] if block.data.ndim == 2 else 1
            raise InputError(f"a block of {got} channels cannot be split {len(self.chains)} ways")
        return _in_order([chain.push(block) for chain in self.chains])

    def flush(self) -> list[ChannelFrame]:
        """End of stream: every channel's stages flushed, their frames in stream order."""
        return _in_order([chain.flush() for chain in self.chains])

    def reset(self) -> None:
        """Forget the stream in every channel's stages."""
        for chain in self.chains:
            chain.reset()


def _in_order(per_channel: list[list[Frame]]) -> list[ChannelFrame]:
    out = [
        ChannelFrame(f.pcm, f.start, f.rate, f.t_ns, f.speech, channel=i)
        for i, frames in enumerate(per_channel)
        for f in frames
    ]
    out.sort(key=lambda f: (f.start, f.channel))  # stable: each channel's own order is kept
    return out

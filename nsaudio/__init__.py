"""nsaudio: live or recorded audio into a real-time speech-to-text service, and transcripts back.

The pipeline, as the package layout draws it::

    sources/ ──ring──▶ stages/ (Resampler ▶ Framer ▶ SpeechGate) ──▶ sinks/ ──▶ service

``Pipeline`` runs it on threads; ``connect()`` (``nsaudio.aio``) runs the same stages and
sink from your own asyncio loop, and ``connect_channels()`` a session per channel.

``import nsaudio`` loads nothing heavy: each name below is imported on first use, so the
command line starts fast and works where PortAudio or the server extras are missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "Block": ".blocks",
    "ChannelFrame": ".blocks",
    "Frame": ".blocks",
    "NsAudioError": ".errors",
    "AudioLostError": ".errors",
    "InputError": ".errors",
    "UnsupportedAudioError": ".errors",
    "DeviceError": ".errors",
    "DetectorError": ".errors",
    "ServiceError": ".errors",
    "AuthenticationError": ".errors",
    "ProtocolError": ".errors",
    "RingClosed": ".errors",
    "FORMATS": ".formats",
    "Ring": ".ring",
    "Pipeline": ".runner",
    "standard_stages": ".runner",
    "split_channels": ".channels",
    "Source": ".sources",
    "open_source": ".sources",
    "ArraySource": ".sources.synthetic",
    "ToneSource": ".sources.synthetic",
    "PushSource": ".sources.push",
    "FileSource": ".sources.file",
    "StdinSource": ".sources.stdin",
    "MicSource": ".sources.mic",
    "Stage": ".stages.base",
    "Chain": ".stages.base",
    "Resampler": ".stages.resampler",
    "Framer": ".stages.framer",
    "EnergyGate": ".stages.energy_gate",
    "SpeechGate": ".stages.speech_gate",
    "ChannelSplit": ".stages.split",
    "Sink": ".sinks",
    "TeeSink": ".sinks.tee",
    "ChannelSinks": ".sinks.channels",
    "NullSink": ".sinks.files",
    "RawSink": ".sinks.files",
    "WavSink": ".sinks.files",
    "NeuralSpaceSink": ".sinks.neuralspace",
    "StreamParams": ".neuralspace.protocol",
    "Transcript": ".neuralspace.protocol",
    "TranscriptResult": ".neuralspace.protocol",
    "ServerProcess": ".server.child",
    "LocalServer": ".server.app",
    "AsyncStream": ".aio",
    "AsyncChannelStream": ".aio",
    "connect": ".aio",
    "connect_channels": ".aio",
}

__all__ = [
    "FORMATS",
    "ArraySource",
    "AsyncChannelStream",
    "AsyncStream",
    "AudioLostError",
    "AuthenticationError",
    "Block",
    "Chain",
    "ChannelFrame",
    "ChannelSinks",
    "ChannelSplit",
    "DetectorError",
    "DeviceError",
    "EnergyGate",
    "FileSource",
    "Frame",
    "Framer",
    "InputError",
    "LocalServer",
    "MicSource",
    "NeuralSpaceSink",
    "NsAudioError",
    "NullSink",
    "Pipeline",
    "ProtocolError",
    "PushSource",
    "RawSink",
    "Resampler",
    "Ring",
    "RingClosed",
    "ServerProcess",
    "ServiceError",
    "Sink",
    "Source",
    "SpeechGate",
    "Stage",
    "StdinSource",
    "StreamParams",
    "TeeSink",
    "ToneSource",
    "Transcript",
    "TranscriptResult",
    "UnsupportedAudioError",
    "WavSink",
    "__version__",
    "connect",
    "connect_channels",
    "open_source",
    "split_channels",
    "standard_stages",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # pragma: no cover
    from .aio import AsyncChannelStream, AsyncStream, connect, connect_channels
    from .blocks import Block, ChannelFrame, Frame
    from .channels import split_channels
    from .errors import (
        AudioLostError,
        AuthenticationError,
        DetectorError,
        DeviceError,
        InputError,
        NsAudioError,
        ProtocolError,
        RingClosed,
        ServiceError,
        UnsupportedAudioError,
    )
    from .formats import FORMATS
    from .neuralspace.protocol import StreamParams, Transcript, TranscriptResult
    from .ring import Ring
    from .runner import Pipeline, standard_stages
    from .server.app import LocalServer
    from .server.child import ServerProcess
    from .sinks import Sink
    from .sinks.channels import ChannelSinks
    from .sinks.files import NullSink, RawSink, WavSink
    from .sinks.neuralspace import NeuralSpaceSink
    from .sinks.tee import TeeSink
    from .sources import Source, open_source
    from .sources.file import FileSource
    from .sources.mic import MicSource
    from .sources.push import PushSource
    from .sources.stdin import StdinSource
    from .sources.synthetic import ArraySource, ToneSource
    from .stages import Chain, EnergyGate, Framer, Resampler, SpeechGate, Stage
    from .stages.split import ChannelSplit

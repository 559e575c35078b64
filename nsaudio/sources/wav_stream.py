"""WAV read as it arrives, for pipes: libsndfile seeks, so it cannot open stdin.

Streaming writers (arecord, ffmpeg to a pipe) put 0 or 0xFFFFFFFF in the RIFF and data size
fields, and sizes beyond the end of a cut file are common: in those cases the data runs to
the end of the stream.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UnsupportedAudioError
from .limits import check_layout
from .pcm import SAMPLE_FORMATS, SampleFormat

__all__ = ["WavHeader", "read_wav_header"]

_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_SKIPPED_CHUNK = 16 * 2**20


@dataclass(frozen=True, slots=True)
class WavHeader:
    rate: int
    channels: int
    fmt: SampleFormat
    data_bytes: int | None  # None: read to the end of the stream

    @property
    def block_align(self) -> int:
        return self.channels * self.fmt.width


def _sample_format(tag: int, bits: int, name: str) -> SampleFormat:
    table = {
        (_PCM, 8): "u8", (_PCM, 16): "s16le", (_PCM, 24): "s24le", (_PCM, 32): "s32le",
        (_FLOAT, 32): "f32le", (_FLOAT, 64): "f64le", (_ULAW, 8): "ulaw", (_ALAW, 8): "alaw",
    }  # fmt: skip
    try:
        return SAMPLE_FORMATS[table[(tag, bits)]]
    except KeyError:
        raise UnsupportedAudioError(
            f"{name}: WAV encoding {tag:#x} with {bits}-bit samples is not supported"
        ) from None


def _parse_fmt(body: bytes, name: str) -> tuple[int, int, SampleFormat, int]:
    if len(body) < 16:
        raise UnsupportedAudioError(f"{name}: WAV fmt chunk is too short ({len(body)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise UnsupportedAudioError(f"{name}: WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        tag = struct.unpack("<H", body[24:26])[0]
    check_layout(name, rate, channels)
    fmt = _sample_format(tag, bits, name)
    if block_align != channels * fmt.width:
        raise UnsupportedAudioError(
            f"{name}: WAV block align {block_align} does not match {channels} channels of "
            f"{bits}-bit samples"
        )
    return rate, channels, fmt, block_align


def read_wav_header(read: Callable[[int], bytes], name: str = "stdin") -> WavHeader:
    """Read RIFF/WAVE chunks up to the start of the data; the data is left unread.

    ``read(n)`` must return ``n`` bytes unless the stream ended.
    """
    head = read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise UnsupportedAudioError(f"{name}: not a RIFF/WAVE stream")
    parsed: tuple[int, int, SampleFormat, int] | None = None
    while True:
        chunk = read(8)
        if len(chunk) < 8:
            raise UnsupportedAudioError(f"{name}: WAV header ends before the data chunk")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            if size > 4096:
                raise UnsupportedAudioError(f"{name}: WAV fmt chunk of {size} bytes is implausible")
            body = read(size + (size & 1))
            if len(body) < size:
                raise UnsupportedAudioError(f"{name}: WAV fmt chunk is cut short")
            parsed = _parse_fmt(body[:size], name)
        elif cid == b"data":
            if parsed is None:
                raise UnsupportedAudioError(f"{name}: WAV data chunk comes before its fmt chunk")
            rate, channels, fmt, _ = parsed
            data_bytes = None if size in _UNKNOWN_SIZES else size
            return WavHeader(rate, channels, fmt, data_bytes)
        else:
            if size > _MAX_SKIPPED_CHUNK:
                raise UnsupportedAudioError(
                    f"{name}: WAV chunk {cid!r} of {size} bytes before the data is implausible"
                )
            skipped = read(size + (size & 1))
            if len(skipped) < size:
                raise UnsupportedAudioError(f"{name}: WAV header ends inside chunk {cid!r}")

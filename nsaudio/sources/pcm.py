"""Decoding interleaved sample bytes to float32, shared by raw PCM and streamed WAV."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..errors import InputError
from .limits import check_layout

__all__ = ["SAMPLE_FORMATS", "RawSpec", "SampleFormat", "decode", "parse_raw_spec"]


@dataclass(frozen=True, slots=True)
class SampleFormat:
    name: str
    width: int  # bytes per sample


@cache  # made on first use: most runs decode no G.711
def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(256, dtype=np.int32)
    # mu-law (G.711): invert, split sign/exponent/mantissa, undo the bias of 0x84.
    u = ~codes & 0xFF
    mag = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    ulaw = np.where(u & 0x80, 0x84 - mag, mag - 0x84).astype(np.float32) / 32768.0
    # A-law (G.711): even bits inverted, segment 0 is linear.
    a = codes ^ 0x55
    seg = (a >> 4) & 0x07
    mant = a & 0x0F
    mag = np.where(seg == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(seg - 1, 0))
    alaw = np.where(a & 0x80, mag, -mag).astype(np.float32) / 32768.0
    return ulaw, alaw


SAMPLE_FORMATS: dict[str, SampleFormat] = {
    f.name: f
    for f in (
        SampleFormat("u8", 1),
        SampleFormat("s16le", 2),
        SampleFormat("s24le", 3),
        SampleFormat("s32le", 4),
        SampleFormat("f32le", 4),
        SampleFormat("f64le", 8),
        SampleFormat("ulaw", 1),
        SampleFormat("alaw", 1),
    )
}
_ALIASES = {
    "uint8": "u8", "s16": "s16le", "int16": "s16le", "s24": "s24le", "int24": "s24le",
    "s32": "s32le", "int32": "s32le", "f32": "f32le", "float32": "f32le", "float": "f32le",
    "f64": "f64le", "float64": "f64le", "mulaw": "ulaw", "mu-law": "ulaw", "a-law": "alaw",
}  # fmt: skip


def sample_format(name: str) -> SampleFormat:
    key = _ALIASES.get(name.lower(), name.lower())
    try:
        return SAMPLE_FORMATS[key]
    except KeyError:
        raise InputError(
            f"unknown sample type {name!r}: choose one of {', '.join(SAMPLE_FORMATS)}"
        ) from None


def decode(data: bytes | memoryview, fmt: SampleFormat, channels: int) -> np.ndarray:
    """Whole frames of interleaved samples to float32 ``(frames, channels)``, full scale 1.0."""
    name = fmt.name
    if name == "s16le":
        x = np.frombuffer(data, "<i2").astype(np.float32) * (1 / 32768)
    elif name == "f32le":
        x = np.frombuffer(data, "<f4").astype(np.float32)
    elif name == "s32le":
        x = (np.frombuffer(data, "<i4") * (1 / 2**31)).astype(np.float32)
    elif name == "s24le":
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) * (1 / 2**23)).astype(np.float32)
    elif name == "u8":
        x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) * (1 / 128)
    elif name == "f64le":
        with np.errstate(over="ignore"):
            x = np.frombuffer(data, "<f8").astype(np.float32)
    elif name == "ulaw":
        x = _g711_tables()[0][np.frombuffer(data, np.uint8)]
    elif name == "alaw":
        x = _g711_tables()[1][np.frombuffer(data, np.uint8)]
    else:  # pragma: no cover - SAMPLE_FORMATS is closed
        raise InputError(f"cannot decode {name}")
    return x.reshape(-1, channels)


@dataclass(frozen=True, slots=True)
class RawSpec:
    """Headerless PCM described on the command line: ``RATE:CHANNELS:TYPE``."""

    rate: int
    channels: int
    fmt: SampleFormat


def parse_raw_spec(text: str) -> RawSpec:
    """Parse ``--raw 16000:1:s16le`` (TYPE: u8, s16le, s24le, s32le, f32le, f64le, ulaw, alaw)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"--raw wants RATE:CHANNELS:TYPE, for example 16000:1:s16le, not {text!r}")
    try:
        rate, channels = int(parts[0]), int(parts[1])
    except ValueError:
        raise InputError(f"--raw wants whole numbers for RATE and CHANNELS, not {text!r}") from None
    check_layout("--raw", rate, channels)
    return RawSpec(rate, channels, sample_format(parts[2]))

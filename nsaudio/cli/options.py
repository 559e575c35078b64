"""Option types shared by the subcommands: each turns bad text into a one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import InputError
from ..formats import FORMATS
from ..sources.pcm import RawSpec, parse_raw_spec

__all__ = ["add_source_options", "milliseconds", "positive_float", "raw_spec", "unit_interval"]


def raw_spec(text: str) -> RawSpec:
    try:
        return parse_raw_spec(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def whole_number(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An option type: a whole number from ``low`` to ``high`` (``unit`` for messages)."""
    span = f"{low} to {high} {unit}".rstrip()

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number, {span}, not {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {span}, not {text}")
        return value

    return parse


def milliseconds(text: str) -> float:
    """A duration in milliseconds, 0 to 60000."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"must be 0 to 60000 ms, not {text}")
    return value


def unit_interval(text: str) -> float:
    """A threshold above 0 and at most 1."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {text}")
    return value


def add_source_options(p: argparse.ArgumentParser) -> None:
    """Options that say how to read SOURCE and what to make of it."""
    p.add_argument(
        "--format",
        default="pcm_16k",
        choices=list(FORMATS),
        help="what the service wants: int16 LE mono at 16 kHz or 8 kHz (default pcm_16k)",
    )
    p.add_argument(
        "--raw",
        type=raw_spec,
        metavar="RATE:CH:TYPE",
        help="SOURCE is headerless PCM, e.g. 16000:1:s16le "
        "(types u8 s16le s24le s32le f32le f64le ulaw alaw)",
    )
    p.add_argument(
        "--channel",
        type=int,
        metavar="N",
        help="use input channel N (from 0) instead of the mean of all channels",
    )
    p.add_argument(
        "--quality",
        default=None,
        type=str.upper,
        choices=["QQ", "LQ", "MQ", "HQ", "VHQ"],
        help="soxr resampling quality (default HQ; LQ for a microphone, whose hold-back is "
        "half HQ's: 11 against 23 ms on average, 22 against 40 at worst)",
    )


def resampler_quality(args: argparse.Namespace, live: bool) -> str:
    """``--quality``, else LQ for live sources (latency) and HQ for the rest (fidelity)."""
    return str(args.quality or ("LQ" if live else "HQ"))

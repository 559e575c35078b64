"""``nsaudio devices``: the input devices PortAudio sees, and how to name them in SOURCE."""

from __future__ import annotations

import argparse
import json
import sys

from ..sources.mic import input_devices

HEADER = ("", "SOURCE", "NAME", "HOST API", "CHANNELS", "RATE")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "devices",
        parents=[common],
        help="list input devices (for mic:N and mic:NAME)",
        description="List the input devices PortAudio sees: index, name, host API, input "
        "channels and default sample rate; * marks the default input (what mic: opens). "
        "Use a device as SOURCE with mic:N (its index) or mic:NAME (part of its name).",
    )
    p.add_argument("--json", action="store_true", help="one JSON array of device objects")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    devices = input_devices()
    if args.json:
        sys.stdout.write(json.dumps([d.as_dict() for d in devices], indent=2) + "\n")
        return 0
    if not devices:
        sys.stderr.write(
            "nsaudio: no input devices: connect or enable a microphone (on a headless "
            "machine, start PulseAudio with a null sink)\n"
        )
        return 0
    rows = [HEADER] + [
        (
            "*" if d.default else "",
            d.spec,
            d.name,
            d.hostapi,
            str(d.max_input_channels),
            str(d.default_samplerate),
        )
        for d in devices
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        cells[4] = row[4].rjust(widths[4])
        cells[5] = row[5].rjust(widths[5])
        sys.stdout.write("  ".join(cells).rstrip() + "\n")
    return 0

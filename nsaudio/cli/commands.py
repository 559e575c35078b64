"""The list of subcommands, in the order ``--help`` shows them."""

from __future__ import annotations

from . import check, convert, devices, languages, serve, stream

ALL = [stream, convert, serve, languages, devices, check]

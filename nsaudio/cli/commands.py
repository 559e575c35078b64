"""The list of subcommands, in the order ``--help`` shows them."""

from __future__ import annotations

from . import convert, languages, serve, stream

ALL = [stream, convert, serve, languages]

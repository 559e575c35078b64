"""The subcommands, in the order ``--help`` shows them, each imported only when it is needed.

A command's module imports what the command runs (the WebSocket sink and requests for
``stream``, the level meter for ``check``...), so the command line imports the chosen
command's module alone: ``nsaudio convert`` does not pay for ``stream``'s imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

__all__ = ["NAMES", "needed"]

NAMES = ("stream", "convert", "serve", "gateway", "languages", "devices", "check")


def needed(argv: Sequence[str]) -> list[ModuleType]:
    """The command modules whose parsers ``argv`` needs: the named command's alone, or every
    one when no command is named (``--help``) or the name is unknown (the error lists them).

    The options before the command take no values, so the first word that is not an option
    is the command.
    """
    word = next((a for a in argv if not a.startswith("-")), None)
    names = [word] if word in NAMES else NAMES
    return [importlib.import_module(f"{__package__}.{name}") for name in names]

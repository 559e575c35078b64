"""``nsaudio`` command line: parse, dispatch, and turn errors into one line and an exit status."""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

# The command line does no linear algebra worth a thread pool, and OpenBLAS starting one per
# core doubles numpy's import time: half of what a short `nsaudio convert` costs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ..errors import NsAudioError
from . import commands
from .exits import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, exit_status

__all__ = ["main", "run"]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, exit 2, like every other nsaudio error, pointing to the
    help of the command they concern (``nsaudio stream --help`` for a typo in its flags)."""

    #: The command parsers, by name (set on the top-level parser by :func:`build_parser`).
    commands: dict[str, argparse.ArgumentParser] = {}  # noqa: RUF012 - replaced, not changed

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"nsaudio: error: {message} (see '{self.prog} --help')\n")
        sys.exit(EXIT_USAGE)

    def parse_command_line(self, argv: Sequence[str] | None) -> argparse.Namespace:
        """``parse_args``, but words no parser took are reported by the command's parser:
        argparse reports them from the top-level one, whose help lists no command's flags."""
        parsed, extras = self.parse_known_args(argv)
        if extras:
            owner = self.commands.get(getattr(parsed, "command", None) or "", self)
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


class _Version(argparse.Action):
    """``--version``: the version, read only when asked (no package metadata lookup)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from .. import __version__

        sys.stdout.write(f"nsaudio {__version__}\n")
        parser.exit()


def _verbosity_options() -> argparse.ArgumentParser:
    # SUPPRESS lets -v/-q stand before or after the command without one erasing the other.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more detail on stderr (-vv: debug, the WebSocket trace and tracebacks; "
        "-vvv: every audio frame too)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only errors on stderr",
    )
    return p


def build_parser(argv: Sequence[str] | None = None) -> _Parser:
    """The parser for ``argv`` (default ``sys.argv[1:]``): only the command it names is
    imported and added, or every command if it names none."""
    common = _verbosity_options()
    parser = _Parser(
        prog="nsaudio",
        parents=[common],
        description="Stream live or recorded audio to a real-time speech-to-text service.",
    )
    parser.add_argument("--version", action=_Version, help="print nsaudio's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in commands.needed(sys.argv[1:] if argv is None else argv):
        module.add_parser(sub, common)
    parser.commands = dict(sub.choices)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nsaudio: %(levelname)s: %(message)s"))
    root = logging.getLogger("nsaudio")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if verbose >= 2:
        # The WebSocket library's own trace: handshake, control frames and results at -vv,
        # every audio frame too at -vvv. The connector adds a filter to its logger that
        # redacts tokens before anything is written.
        wslog = logging.getLogger("websockets.client")
        wslog.handlers[:] = [handler]
        wslog.setLevel(logging.DEBUG)
        wslog.propagate = False
        if verbose == 2:
            wslog.addFilter(_no_audio_frames)


def _no_audio_frames(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(("> BINARY", "< BINARY", "> CONT", "< CONT"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()  # `nsaudio` alone: what it can do, not an error
        return 0
    args = parser.parse_command_line(argv)
    verbose = getattr(args, "verbose", 0) or 0
    _setup_logging(verbose, getattr(args, "quiet", False))
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("nsaudio: interrupted\n")
        return EXIT_INTERRUPTED
    except NsAudioError as err:
        if verbose >= 2:
            logging.getLogger("nsaudio").exception("traceback")
        sys.stderr.write(f"nsaudio: error: {err}\n")
        return exit_status(err)
    except BrokenPipeError:
        # The reader of our stdout went away (| head): not an error of ours, but not a
        # whole output either: the status a writer killed by SIGPIPE gets, as sox's.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more reaches the pipe at exit
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except Exception as err:  # a bug: still one line unless asked for the traceback
        if verbose >= 2:
            logging.getLogger("nsaudio").exception("traceback")
        sys.stderr.write(
            f"nsaudio: error: internal error: {type(err).__name__}: {err} "
            "(run with -vv for the traceback)\n"
        )
        return 1


def run() -> NoReturn:
    """The ``nsaudio`` command: :func:`main`, then :func:`exit_now`.

    The command's imports come first with the cyclic garbage collector off: numpy and the
    rest make tens of thousands of objects that live as long as the process, and collecting
    while they are made (a tenth of start-up) frees nothing. They are then frozen out of
    every later collection.
    """
    gc.disable()
    try:
        commands.needed(sys.argv[1:])  # imported now, found in sys.modules by main()
    finally:
        gc.freeze()
        gc.enable()
    exit_now(main())


def exit_now(status: int) -> NoReturn:
    """End the process as ``sys.exit(status)`` would, without the interpreter's teardown.

    Freeing numpy's, soxr's and soundfile's modules object by object takes 30-90 ms, a tenth
    of a ten-minute ``convert``, and changes nothing outside the process. What does change
    something runs as before: the atexit hooks (logging's flush, the removal of an unfinished
    output file) and the flush of stdout and stderr, whose failure gives status 120 as
    Python's own exit does. Files were closed by whoever wrote them; nothing is synced that
    was not synced before. The sessions' loop thread, if one was started, is stopped first;
    while another thread still runs, the ordinary exit, which waits for it.
    """
    sockets = sys.modules.get("nsaudio.sinks.loop")  # not imported for it: convert has none
    if sockets is not None:
        sockets.SocketLoop.stop()
    if threading.active_count() > 1:
        gc.unfreeze()  # the teardown frees everything, as if run() had frozen nothing
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed stream
            status = status or 120
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()

"""``nsaudio serve``: the offline, protocol-compatible server, in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TYPE_CHECKING

from ..detectors.base import DETECTORS
from ..errors import NsAudioError
from ..extras import require_extra
from ..server.child import CHILD_ERROR
from ..server.engines import ENGINES  # numpy only: pocketsphinx loads with its engine
from .exits import exit_status
from .options import whole_number
from .service import read_api_key

if TYPE_CHECKING:
    from ..server.app import LocalServer

# Sessions at once: pocketsphinx decodes about 2.5 real-time streams per core; the cheap
# engine is for load tests with hundreds of streams.
DEFAULT_MAX_SESSIONS = {"pocketsphinx": 16, "cheap": 1024}


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the offline NeuralSpace-compatible server",
        description="Serve the NeuralSpace VoiceAI REST and WebSocket API on one port, with "
        "offline English recognition (pocketsphinx, or --engine cheap for load tests). Any API "
        "key is accepted unless --api-key-file is given.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=whole_number(0, 65535),
        default=8765,
        help="port (default 8765; 0 picks a free one)",
    )
    p.add_argument("--api-key-file", metavar="FILE", help="accept only the key in FILE")
    p.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="pocketsphinx",
        help="recogniser: pocketsphinx (default), or cheap: no recognition, each utterance the "
        "VAD finds comes back as '[speech 1.2 s]', for load tests with hundreds of streams",
    )
    p.add_argument(
        "--vad",
        choices=list(DETECTORS),
        default="energy",
        help="the speech detector that segments each session: energy (default: level above "
        "an adaptive noise floor) or silero (a neural VAD, needs pip install 'nsaudio[vad]')",
    )
    p.add_argument(
        "--max-sessions",
        type=whole_number(1, 100_000),
        default=None,
        metavar="N",
        help="sessions open at once; more are refused with close code 1013 (default 16, "
        "or 1024 with --engine cheap)",
    )
    # For nsaudio stream: print the URL on stdout when listening, stop when stdin closes.
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.child:
        _session_lines(quiet=getattr(args, "quiet", False))
    try:
        server = _server(args)
    except NsAudioError as err:
        if not args.child:
            raise
        # The parent (nsaudio stream) reads this line instead of a URL and raises it.
        sys.stdout.write(f"{CHILD_ERROR}{err}\n")
        sys.stdout.flush()
        return exit_status(err)

    def ready(srv: LocalServer) -> None:
        if args.child:
            sys.stdout.write(srv.base_url + "\n")
            sys.stdout.flush()
            threading.Thread(target=_stop_at_eof, args=(srv,), daemon=True).start()
        else:
            sys.stderr.write(
                f"nsaudio: serving the NeuralSpace API on {srv.base_url} (Ctrl-C stops)\n"
            )

    server.serve_forever(on_ready=ready)
    return 0


def _session_lines(*, quiet: bool) -> None:
    """A server's log: a time on every line, and one line per session as it opens and as it
    closes (with its seconds of audio and results) unless ``-q``; the server's other info
    lines still need ``-v``."""
    for handler in logging.getLogger("nsaudio").handlers:
        handler.setFormatter(
            logging.Formatter(
                "nsaudio: %(asctime)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
    if not quiet:
        sessions = logging.getLogger("nsaudio.server.sessions")
        sessions.setLevel(min(logging.INFO, logging.getLogger("nsaudio").getEffectiveLevel()))


def _server(args: argparse.Namespace) -> LocalServer:
    """The server ``args`` ask for, its recogniser checked first: a missing or broken
    pocketsphinx is one line and exit 2 before anything listens, not a traceback per session."""
    if args.engine == "pocketsphinx":
        require_extra("pocketsphinx", "server", "the built-in offline server", load=True)
    from ..server.app import LocalServer  # the server's modules: imported only to serve

    key = read_api_key(args.api_key_file) if args.api_key_file else None
    if args.vad == "silero":
        from ..detectors.silero import SileroModel

        SileroModel.shared()  # a missing extra or a damaged model: one line, before listening
    return LocalServer(
        host=args.host,
        port=args.port,
        api_key=key,
        engine_factory=ENGINES[args.engine],
        max_sessions=args.max_sessions or DEFAULT_MAX_SESSIONS[args.engine],
        vad=args.vad,
    )


def _stop_at_eof(server: LocalServer) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    server.stop()

"""A TLS server that floods a session with small results while it reads the client's audio.

This is the harness for "one owner per connection" (docs/architecture.md, "The session
engine"; docs/facts.md, "TLS and threads"): a client that reads a ``wss://`` socket in one thread while another thread writes
to it (with a timeout set) corrupts the TLS session now and then, because OpenSSL forbids
concurrent use of one session (CPython issue 77271). The corruption shows up as an SSL error
on either side ("EOF occurred in violation of protocol", "decryption failed or bad record
mac"), an unplanned end of the session, or a crashed client process. The more reads and
writes overlap, the likelier it is, so this server keeps both directions busy.

:class:`FloodServer` is a :class:`~tests.faults.server.FaultServer` (same REST, same token
check, same WebSocket path, same port and TLS options) whose sessions behave differently:

- while audio keeps arriving, a partial result goes out every ``interval`` seconds
  (``{"full": false, ..., "end_time": <seconds of audio received so far>, "text": "x"}``);
- with ``final_every``, also a full result every that many seconds of audio (as the
  service's ``max_chunk_size`` does: a long stream's replay buffer then stays small);
- once no audio has arrived for ``quiet`` seconds (the client's end of stream: nsaudio's
  trailing silence went out and it waits for the last result), one full result covering every
  byte received since the last full result goes out, and the flood pauses until more audio
  comes (partials after it would keep a client's drain from ever settling);
- every session records what it saw (:class:`FloodSession`): bytes received, results sent,
  the close code the client sent (1000 for a clean end), and the error the connection ended
  with (the SSL error, if that is what ended it). :attr:`FloodSession.clean` is the verdict.

:func:`two_threads` runs the two-thread client (``two_threads.py``) against a server in a
subprocess. To measure how often the harness catches it (fresh server and CA per run)::

    python -m tests.faults.tls_flood --runs 5 --sessions 10 --seconds 1 [--plain] [--timeout 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .server import FaultServer, Session


@dataclass
class FloodSession(Session):
    """One session as the flood server saw it (``audio`` holds every byte received)."""

    partials_sent: int = 0
    finals_sent: int = 0
    #: The code of the close frame the client sent (None: it sent none).
    client_close: int | None = None
    #: What ended the connection, when it was not a close handshake: e.g. an ``SSLError``.
    error: str | None = None
    ended: float | None = None

    @property
    def clean(self) -> bool:
        """The client closed with 1000: every byte before that close arrived intact.

        (An error after the close handshake, e.g. a reset because the client shut its socket
        with results still unread, is no fault of the session's and is not counted.)
        """
        return self.client_close == 1000

    def describe(self) -> str:
        return (
            f"session {self.index}: {len(self.audio)} bytes in, {self.partials_sent} partials "
            f"and {self.finals_sent} finals out, client close {self.client_close}, "
            f"close code {self.close_code}, error {self.error}"
        )


class FloodServer(FaultServer):
    """See the module docstring. Takes :class:`FaultServer`'s options (``ssl_context``,
    ``api_key``, ``plans`` for refusals before the session), and ``interval``, ``quiet`` and
    ``final_every``."""

    def __init__(
        self,
        *args: object,
        interval: float = 0.001,
        quiet: float = 0.25,
        final_every: float | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.interval = interval
        self.quiet = quiet
        self.final_every = final_every
        self.sessions: list[FloodSession] = []  # type: ignore[assignment]

    def __enter__(self) -> FloodServer:
        self.start()
        return self

    def unclean(self) -> list[FloodSession]:
        return [s for s in self.sessions if not s.clean]

    def wait_ended(self, timeout: float = 10) -> None:
        """Wait (bounded) until every session has ended: the server may still be finishing a
        close when the client is already gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.ended is not None for s in self.sessions):
                return
            time.sleep(0.02)

    async def _handle(self, ws: ServerConnection) -> None:
        base = self._pending.pop(id(ws))
        session = FloodSession(**vars(base))
        self.sessions.append(session)
        last_audio = [time.monotonic()]
        flood = asyncio.create_task(self._flood(ws, session, last_audio))
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    session.audio += message
                    last_audio[0] = time.monotonic()
        except ConnectionClosed:
            pass
        except Exception as err:  # anything else is worth knowing about, not a server crash
            session.error = f"{type(err).__name__}: {err}"
        finally:
            flood.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flood
            session.close_code = ws.close_code
            rcvd = ws.protocol.close_rcvd
            session.client_close = rcvd.code if rcvd is not None else None
            exc = ws.connection_exc
            if exc is not None and session.error is None:
                session.error = f"{type(exc).__name__}: {exc}"
            session.ended = time.monotonic()

    async def _flood(self, ws: ServerConnection, session: FloodSession, last: list[float]) -> None:
        bytes_per_s = 2 * session.rate
        final_at = 0  # bytes the last full result covered
        every = self.final_every * bytes_per_s if self.final_every else float("inf")
        try:
            while True:
                got = len(session.audio)
                if got > final_at:
                    full = time.monotonic() - last[0] >= self.quiet or got - final_at >= every
                    body = {
                        "full": full,
                        "stream_id": session.session_id,
                        "chunk_id": session.partials_sent + session.finals_sent + 1,
                        "start_time": final_at / bytes_per_s,
                        "end_time": got / bytes_per_s,
                        "send_time": 0,
                        "text": "x",
                    }
                    await ws.send(json.dumps(body))
                    if full:
                        session.finals_sent += 1
                        final_at = got
                    else:
                        session.partials_sent += 1
                await asyncio.sleep(self.interval)
        except ConnectionClosed:
            pass


CLIENT = Path(__file__).with_name("two_threads.py")


@dataclass
class ClientRun:
    """What the two-thread client said: one dict per session, and how its process ended."""

    proc: subprocess.CompletedProcess
    sessions: list[dict]
    seconds: float

    @property
    def crashed(self) -> bool:
        return self.proc.returncode != 0

    @property
    def failed(self) -> list[dict]:
        return [s for s in self.sessions if not s["ok"]]

    def describe(self) -> str:
        return (
            f"{len(self.sessions)} sessions in {self.seconds:.1f} s, exit {self.proc.returncode}; "
            f"client errors: {[s['error'] for s in self.failed]}; stderr: {self.proc.stderr[-800:]}"
        )


def two_threads(server: FloodServer, ca: Path, *args: str, timeout: float = 180) -> ClientRun:
    """Run ``two_threads.py`` (its options: ``args``) against ``server`` in a subprocess,
    which the race may crash; returns once the server has seen every session end."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(CLIENT), server.base_url, str(ca), server.api_key, *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    sessions = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    server.wait_ended()
    return ClientRun(proc, sessions, seconds)


def server_report(server: FloodServer) -> str:
    return "\n".join(s.describe() for s in server.sessions)


def main() -> int:
    from .conftest import make_ca

    p = argparse.ArgumentParser(description="How often the harness catches two threads.")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    p.add_argument("--timeout", default="20", help="the client's socket timeout (0: none)")
    p.add_argument("--interval", type=float, default=0.001, help="seconds between results")
    p.add_argument("--final-every", type=float, help="a full result every S s of audio")
    p.add_argument("--frame-bytes", default="3200", help="bytes per send")
    p.add_argument("--gap", default="5e-5", help="the client's sleep after each send")
    p.add_argument("-v", "--verbose", action="store_true", help="every unclean session")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        ca = make_ca(Path(d))
        for run in range(args.runs):
            ctx = None if args.plain else ca.server_context()
            with FloodServer(
                ssl_context=ctx, interval=args.interval, final_every=args.final_every
            ) as server:
                got = two_threads(
                    server, ca.ca_pem, "--sessions", str(args.sessions),
                    "--seconds", str(args.seconds), "--timeout", args.timeout,
                    "--frame-bytes", args.frame_bytes, "--gap", args.gap,
                    "--budget", str(max(60.0, 3 * args.sessions * args.seconds)),
                )  # fmt: skip
                print(
                    f"run {run}: {len(got.failed)} of {len(got.sessions)} sessions failed "
                    f"(client), {len(server.unclean())} of {len(server.sessions)} unclean "
                    f"(server), client exit {got.proc.returncode}, {got.seconds:.1f} s",
                    flush=True,
                )
                if args.verbose:
                    for s in server.unclean():
                        print("   ", s.describe())
                    for c in got.failed:
                        print("    client:", c["error"])
                    if got.crashed:
                        print("    client stderr:", got.proc.stderr[-800:])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A NeuralSpace-compatible server that fails on purpose, for the client's fault tests.

``FaultServer`` runs a real ``websockets`` asyncio server on 127.0.0.1, port 0, in a daemon
thread: REST (``/api/v2/languages``, ``/api/v2/token``, both checking ``Authorization``) and
the WebSocket stream path on one port, optionally over TLS. Every session's audio is kept
byte for byte, and a deterministic recogniser (:class:`SlotRecogniser`) names each voiced
100 ms slot by its tones (see ``slots.py``), so a gap or a repeat in what arrived is visible.

What goes wrong is chosen per WebSocket handshake attempt (0, 1, 2, ... in arrival order)
with a :class:`Plan`: refuse the upgrade, answer nothing, cut the TCP connection, close with a
code, stop reading (for a while, or for good: a half-open connection that answers no ping),
send a message over 1 MiB, or send arbitrary text (malformed results) mid-stream.

Every wait is bounded and ends when the server stops, so no test can hang on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .slots import SLOTS_PER_SECOND, decode_slot

STREAM_PREFIX = "/voice/stream/live/transcribe/"
RATES = {"pcm_16k": 16000, "pcm_8k": 8000}
#: The longest any fault waits (a stall "for good", an unanswered upgrade) before giving up.
MAX_WAIT = 60.0


@dataclass(frozen=True)
class Plan:
    """What one WebSocket handshake attempt meets.

    ``refuse``: answer the upgrade with this HTTP status. ``hang``: answer nothing for this
    many seconds, then drop the connection. Otherwise the session opens, and when
    ``at_bytes`` of audio have arrived (0: right after the handshake) ``action`` happens:

    - ``"cut"``: abort the TCP connection, no close frame;
    - ``"close"``: close with ``code`` and ``reason``;
    - ``"stall"``: stop reading for ``stall`` seconds (None: for good, and answer no ping);
    - ``"big"``: send a result message of ``big`` bytes, then go on.

    ``inject``: ``(n, text)`` pairs: send ``text`` as is right after the n-th result.
    ``partials_only``: every result goes out as a partial (``full`` false): the session
    never finalises anything, so a client's drain waits for a result that never comes.
    """

    refuse: int | None = None
    hang: float | None = None
    at_bytes: int = 0
    action: str | None = None
    code: int = 1011
    reason: str = ""
    stall: float | None = None
    big: int = (1 << 20) + 1
    inject: tuple[tuple[int, str], ...] = ()
    partials_only: bool = False

    def __post_init__(self) -> None:
        if self.action not in (None, "cut", "close", "stall", "big"):
            raise ValueError(f"unknown fault action {self.action!r}")


@dataclass
class Session:
    """One accepted WebSocket session, as the server saw it."""

    index: int
    token: str
    session_id: str
    query: dict[str, str]
    rate: int
    audio: bytearray = field(default_factory=bytearray)
    results: list[dict] = field(default_factory=list)
    faulted: bool = False
    close_code: int | None = None
    ended: bool = False  # the server's handler for it has returned
    opened: float = field(default_factory=time.monotonic)
    fault_time: float | None = None


class SlotRecogniser:
    """Names each voiced slot ``w{k}``; a partial every 5 slots, a full one every 10 or at silence.

    Times are session seconds at slot boundaries; ``chunk_id`` counts the messages.
    """

    def __init__(self, rate: int, stream_id: str, *, lenient: bool = False) -> None:
        self.rate = rate
        self.lenient = lenient
        self.slot_bytes = 2 * rate // SLOTS_PER_SECOND
        self.stream_id = stream_id
        self.pending = b""
        self.slot = 0  # session slots decoded so far
        self.words: list[str] = []
        self.seg_start = 0
        self.chunk_id = 0

    def _result(self, full: bool, end_slot: int) -> dict:
        self.chunk_id += 1
        return {
            "full": full,
            "stream_id": self.stream_id,
            "chunk_id": self.chunk_id,
            "start_time": self.seg_start / SLOTS_PER_SECOND,
            "end_time": end_slot / SLOTS_PER_SECOND,
            "send_time": time.time(),
            "text": " ".join(self.words),
        }

    def feed(self, pcm: bytes) -> list[dict]:
        self.pending += pcm
        out = []
        while len(self.pending) >= self.slot_bytes:
            chunk, self.pending = (
                self.pending[: self.slot_bytes],
                self.pending[self.slot_bytes :],
            )
            try:
                k: int | str | None = decode_slot(np.frombuffer(chunk, "<i2"), self.rate)
            except ValueError:
                if not self.lenient:
                    raise
                k = "?"
            if k is None:
                if self.words:
                    out.append(self._result(True, self.slot))
                    self.words = []
            else:
                if not self.words:
                    self.seg_start = self.slot
                self.words.append(f"w{k}")
                if len(self.words) == 10:
                    out.append(self._result(True, self.slot + 1))
                    self.words = []
                elif len(self.words) % 5 == 0:
                    out.append(self._result(False, self.slot + 1))
            self.slot += 1
        return out


class FaultServer:
    """See the module docstring. ``plans`` maps an attempt number to its :class:`Plan`
    (or is a function of it); attempts without one get a well-behaved session.

    ``rest_status``: every REST call answers this status instead (e.g. 401).
    ``rcvbuf``: the accepted sockets' receive buffer, so that a stall blocks the client soon.
    ``lenient``: a voiced slot whose tones do not decode is the word ``w?`` instead of an
    error (audio through a real device, captured from any point of a slot).
    """

    def __init__(
        self,
        plans: dict[int, Plan] | Callable[[int], Plan | None] | None = None,
        *,
        api_key: str = "fault-test-key-7c1e",
        rest_status: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        rcvbuf: int | None = None,
        lenient: bool = False,
    ) -> None:
        self.plans = plans or {}
        self.lenient = lenient
        self.api_key = api_key
        self.rest_status = rest_status
        self.ssl_context = ssl_context
        self.rcvbuf = rcvbuf
        self.tokens: list[str] = []
        self.sessions: list[Session] = []
        self.attempts = 0
        self.rest_calls: list[tuple[str, int]] = []
        self._pending: dict[int, Session] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._sock is not None, "start() the server first"
        return self._sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def plan(self, attempt: int) -> Plan:
        plans = self.plans
        got = plans(attempt) if callable(plans) else plans.get(attempt)
        return got or Plan()

    def start(self) -> FaultServer:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready)), name="fault-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault server did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "the fault server did not stop"
        self._thread = None

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handle,
            sock=self._sock,
            ssl=self.ssl_context,
            process_request=self._process_request,
            max_size=1 << 20,
            ping_interval=None,  # the client pings; a stalled server must not answer
            open_timeout=None,  # a hanging upgrade is ended by its own plan
            close_timeout=0.5,  # a handler that stopped reading must not hold up stop()
        ) as server:
            ready.set()
            await self._stop.wait()
            server.close()
            await server.wait_closed()

    async def _wait(self, seconds: float | None) -> None:
        """Sleep ``seconds`` (None: ``MAX_WAIT``), or less if the server stops."""
        assert self._stop is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), MAX_WAIT if seconds is None else seconds)

    # -- HTTP ------------------------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.startswith(STREAM_PREFIX):
            return await self._upgrade(conn, parts.path, parts.query)
        if parts.path not in ("/api/v2/languages", "/api/v2/token"):
            return conn.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        status = self.rest_status
        if status is None and request.headers.get("Authorization") != self.api_key:
            status = 401
        self.rest_calls.append((parts.path, status or 200))
        if status is not None:
            return conn.respond(status, json.dumps({"error": {"status": status}}))
        if parts.path == "/api/v2/languages":
            return conn.respond(http.HTTPStatus.OK, json.dumps({"data": {"languages": ["en"]}}))
        token = secrets.token_urlsafe(18)
        self.tokens.append(token)
        return conn.respond(http.HTTPStatus.OK, json.dumps({"data": {"token": token}}))

    async def _upgrade(self, conn: ServerConnection, path: str, query: str) -> Response | None:
        attempt = self.attempts
        self.attempts += 1
        plan = self.plan(attempt)
        if plan.hang is not None:
            await self._wait(plan.hang)
            conn.transport.abort()
            return conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "gave up\n")
        if plan.refuse is not None:
            return conn.respond(plan.refuse, "refused by the test plan\n")
        try:
            _language, token, session_id = unquote(path[len(STREAM_PREFIX) :]).split("/")
        except ValueError:
            return conn.respond(http.HTTPStatus.NOT_FOUND, "not a stream path\n")
        if token not in self.tokens:
            return conn.respond(http.HTTPStatus.UNAUTHORIZED, "unknown token\n")
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        session = Session(attempt, token, session_id, q, RATES.get(q.get("format", ""), 16000))
        self._pending[id(conn)] = session
        return None

    # -- WebSocket -------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        session = self._pending.pop(id(ws))
        self.sessions.append(session)
        plan = self.plan(session.index)
        rec = SlotRecogniser(session.rate, session.session_id, lenient=self.lenient)
        injected = 0
        try:
            if plan.action and plan.at_bytes <= 0 and not await self._fault(ws, session, plan):
                return
            async for message in ws:
                if isinstance(message, str):
                    continue
                rest = b""
                fire = plan.action and not session.faulted
                if fire and len(session.audio) + len(message) >= plan.at_bytes:
                    keep = plan.at_bytes - len(session.audio)
                    message, rest = message[:keep], message[keep:]
                else:
                    fire = False
                for chunk in (message, rest):
                    session.audio += chunk
                    for result in rec.feed(chunk):
                        if plan.partials_only:
                            result = {**result, "full": False}
                        session.results.append(result)
                        await ws.send(json.dumps(result))
                        for n, text in plan.inject[injected:]:
                            if n > len(session.results):
                                break
                            await ws.send(text)
                            injected += 1
                    if fire:
                        fire = False
                        if not await self._fault(ws, session, plan):
                            return
        except ConnectionClosed:
            pass
        finally:
            session.close_code = ws.close_code
            session.ended = True

    def settled(self, timeout: float = 5.0) -> bool:
        """Wait (up to ``timeout``) until every session's handler has returned, so that what
        each one recorded (its close code) is final; True if they all did."""
        deadline = time.monotonic() + timeout
        while not all(s.ended for s in self.sessions):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    async def _fault(self, ws: ServerConnection, session: Session, plan: Plan) -> bool:
        """Do the plan's action; False if the session is over."""
        session.faulted = True
        session.fault_time = time.monotonic()
        if plan.action == "cut":
            ws.transport.abort()
            return False
        if plan.action == "close":
            await ws.close(plan.code, plan.reason)
            return False
        if plan.action == "big":
            body = {"full": True, "stream_id": session.session_id, "chunk_id": 0,
                    "start_time": 0.0, "end_time": 0.0, "send_time": 0.0, "text": ""}  # fmt: skip
            filler = plan.big - len(json.dumps(body))
            body["text"] = "x" * max(0, filler)
            await ws.send(json.dumps(body))
            return True
        ws.transport.pause_reading()  # "stall": no audio, no ping read, no pong
        await self._wait(plan.stall)
        if plan.stall is None:
            ws.transport.abort()
            return False
        ws.transport.resume_reading()
        return True


class SilentServer:
    """Accepts TCP connections (the kernel does, from the backlog) and never says a word."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

"""The gateway: listeners in, one session per track out, transcripts and operations.

:class:`Gateway` runs on an asyncio loop, best the session engine's own
(:func:`engine_loop`): ``await gateway.start()`` listens,
``await gateway.drain()`` stops taking calls (readiness goes false at once), lets the calls
in progress finish up to ``drain_timeout``, ends the rest with their verdicts, delivers the
last webhook events and says whether everything ended well. The speech sessions run on
nsaudio's session engine (its own loop thread, shared by every session of the process),
each track a stream of the asyncio API (:class:`~.track.StreamTrack`): no thread per call.

One owner per resource: each connection belongs to its listener's handler task, which alone
reads it and ends its call; the watchdog only aborts a connection's transport (idle or no
handshake in time), which that handler then sees as the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..detectors.base import make_detector
from ..errors import InputError
from ..neuralspace.protocol import TranscriptResult
from .audiosocket_listener import AudioSocketListener, Network
from .call import Call, CallEnd
from .metrics import GatewayMetrics
from .ops import OpsServer
from .track import ServiceTarget, StreamTrack, TrackSession, TrackSettings
from .twilio_listener import TwilioListener
from .webhook import WebhookSender

__all__ = ["Connection", "Gateway", "GatewayConfig", "engine_loop", "is_loopback"]

log = logging.getLogger("nsaudio.gateway")

#: How often the watchdog looks for silent connections.
WATCH_S = 0.25


def engine_loop() -> asyncio.AbstractEventLoop:
    """The session engine's loop (its own thread), where the gateway should run.

    The gateway works on any loop, but on another thread's every frame handed to a session
    crosses threads, and two busy Python threads pass the GIL back and forth: profiled at 100
    calls, the wake-up writes alone took 0.35 ms each on the gateway's thread. On the
    engine's loop, one thread parses the calls and drives their sessions, whose waits
    (opening, the end's drain) are awaited there.
    """
    from ..sinks.loop import SocketLoop

    return SocketLoop.get().loop


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` listens on loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class GatewayConfig:
    """What the gateway listens on, whom it lets in and where transcripts go.

    Args:
        service: the speech service (URL and key).
        track: how each track is streamed (format, frames, gate, timeouts).
        twilio, audiosocket, ops: ``(host, port)`` to listen on, or None for none (port 0:
            any free port).
        auth_token: Twilio's Auth Token: upgrades must carry its signature.
        shared_key: a Twilio Webhooks rule's shared key (HMAC-SHA256), if one applies.
        public_url: the URL base Twilio calls, when a proxy sits in front.
        insecure_no_signature: let the Twilio listener take unsigned upgrades on a
            non-loopback address (otherwise refused at start).
        allow: networks AudioSocket peers may come from (none: loopback only).
        max_calls: calls at once; beyond, new ones are refused.
        out_dir: where ``<call id>.jsonl`` transcripts go (None: none written).
        webhook: where to POST each final result and each call end (None: nowhere).
        drain_timeout: how long a drain lets calls finish before ending them.
        handshake_timeout: how long a connection may take to say which call it is.
        idle_timeout: how long a call may send nothing before it is ended.
        jitter_ms: the reorder window of each track.
        reuse_port: share the ports with other processes (``--workers``).
    """

    service: ServiceTarget
    track: TrackSettings = field(default_factory=TrackSettings)
    twilio: tuple[str, int] | None = None
    audiosocket: tuple[str, int] | None = None
    ops: tuple[str, int] | None = None
    auth_token: str | None = field(default=None, repr=False)
    shared_key: str | None = field(default=None, repr=False)
    public_url: str | None = None
    insecure_no_signature: bool = False
    allow: tuple[Network, ...] = ()
    max_calls: int = 500
    out_dir: str | None = None
    webhook: str | None = None
    drain_timeout: float = 30.0
    handshake_timeout: float = 5.0
    idle_timeout: float = 10.0
    jitter_ms: float = 60.0
    reuse_port: bool = False

    def check(self) -> None:
        """``InputError`` for a configuration that would expose the operator's account."""
        if self.twilio is None and self.audiosocket is None:
            raise InputError(
                "nothing to listen on: give --twilio HOST:PORT, --audiosocket HOST:PORT or both"
            )
        if self.max_calls < 1:
            raise InputError("--max-calls must be at least 1")
        t = self.track
        if t.gate_vad_model is not None and t.gate_vad != "silero":
            raise InputError("--gate-vad-model is for --gate-vad silero")
        # A missing extra or a bad model file now, not at the first call (the model is
        # loaded once and shared by every track's detector).
        make_detector(t.gate_vad, t.gate_threshold, model_path=t.gate_vad_model)
        twilio = self.twilio
        unsigned = twilio is not None and not self.auth_token and not self.insecure_no_signature
        if twilio is not None and unsigned and not is_loopback(twilio[0]):
            raise InputError(
                f"--twilio {twilio[0]}:{twilio[1]} is not a loopback address and no "
                "--twilio-auth-token-file was given: anyone could open calls on your "
                "account. Give the token file, or --insecure-no-signature if something in "
                "front checks the signature"
            )
        if self.audiosocket is not None and not self.allow and not is_loopback(self.audiosocket[0]):
            raise InputError(
                f"--audiosocket {self.audiosocket[0]}:{self.audiosocket[1]} is not a loopback "
                "address: AudioSocket has no authentication, so say who may connect with "
                "--allow CIDR (repeatable)"
            )


class Connection:
    """A connection the watchdog keeps an eye on: ``last`` is when it last sent anything."""

    __slots__ = ("abort", "call", "ended_by", "last", "opened", "protocol")

    def __init__(self, protocol: str, abort: Callable[[], None]) -> None:
        self.protocol = protocol
        self.abort = abort
        self.opened = self.last = time.monotonic()
        self.call: Call | None = None
        self.ended_by: str | None = None

    def end(self, reason: str) -> None:
        if self.ended_by is None:
            self.ended_by = reason
            self.abort()


class Gateway:
    """Calls in, transcripts out (see the module docstring).

    Args:
        config: a :class:`GatewayConfig`.
        on_result: called on the loop as ``on_result(call_id, track, result)`` for every
            result (partials too), times absolute from the call's start.
        on_call_end: called on the loop with each call's :class:`CallEnd`.

    A hook that raises is logged and counted (``hook_failures``); the call goes on.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        on_result: Callable[[str, str, TranscriptResult], Any] | None = None,
        on_call_end: Callable[[CallEnd], Any] | None = None,
    ) -> None:
        config.check()
        self.config = config
        self.on_result = on_result
        self.on_call_end = on_call_end
        self.metrics = GatewayMetrics()
        self.draining = False
        self._stopping = False  # set by stop_taking_calls(), from any thread
        self.calls: dict[str, Call] = {}
        self.ended: list[CallEnd] = []
        self.files_in_use: set[str] = set()
        self.webhook: WebhookSender | None = None
        self.twilio: TwilioListener | None = None
        self.audiosocket: AudioSocketListener | None = None
        self.ops: OpsServer | None = None
        self._connections: set[Connection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._call_ended = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on every configured port; raises ``InputError`` if one cannot be had."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        if cfg.webhook is not None:
            self.webhook = WebhookSender(
                cfg.webhook, on_failure=lambda _e: self.metrics.webhook_failures.inc()
            )
            self.webhook.start()
        try:
            if cfg.twilio is not None:
                self.twilio = TwilioListener(self, *cfg.twilio)
                await self.twilio.start()
            if cfg.audiosocket is not None:
                self.audiosocket = AudioSocketListener(self, *cfg.audiosocket)
                await self.audiosocket.start()
            if cfg.ops is not None:
                self.ops = OpsServer(
                    *cfg.ops, ready=lambda: self.ready, metrics=self.metrics.render
                )
                await self.ops.start()
        except OSError as err:
            await self.close()
            raise InputError(f"cannot listen: {err.strerror or err}") from None
        self.metrics.ready.set(1)
        self._watchdog = asyncio.ensure_future(self._watch())

    @property
    def ready(self) -> bool:
        return not (self.draining or self._stopping) and self._watchdog is not None

    def stop_taking_calls(self) -> None:
        """Readiness false from now on; safe from any thread, a signal handler's included:
        ``/readyz`` says so before the loop, busy with calls, gets to :meth:`drain` (which
        sets the metric: nothing here takes a lock)."""
        self._stopping = True

    @property
    def twilio_port(self) -> int | None:
        return self.twilio.port if self.twilio else None

    @property
    def audiosocket_port(self) -> int | None:
        return self.audiosocket.port if self.audiosocket else None

    @property
    def ops_port(self) -> int | None:
        return self.ops.port if self.ops else None

    async def drain(self) -> bool:
        """Stop taking calls, let those in progress finish (up to ``drain_timeout``), end
        the rest cleanly, deliver the last webhook events. True if every call in progress
        ended ``complete`` and no webhook event failed from the start of the drain on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_timeout
        self.draining = True
        self.metrics.ready.set(0)
        for listener in (self.twilio, self.audiosocket):
            if listener is not None:
                listener.stop_accepting()
        before = len(self.ended)
        failed_before = self.webhook.failed if self.webhook is not None else 0
        in_flight = len(self.calls)
        log.info("draining: %d calls in progress, up to %g s", in_flight, self.config.drain_timeout)
        # The calls run on until a share of the time is left for ending the rest: the end
        # of a session waits for its last results.
        end_budget = min(10.0, self.config.drain_timeout / 3)
        await self._until(lambda: not self.calls and not self._handlers, deadline - end_budget)
        for conn in list(self._connections):
            conn.end("drain")  # its handler ends the call, hurried
        await self._until(lambda: not self._handlers, deadline - 0.5)
        aborted = 0
        for call in list(self.calls.values()):
            aborted += 1
            await self._finish(call, await call.abort("drain", "cut at the drain deadline"))
        for task in list(self._handlers):
            task.cancel()
        delivered = True
        if self.webhook is not None:
            delivered = await self.webhook.close(max(0.5, deadline - loop.time()))
            delivered &= self.webhook.failed == failed_before
        ends = self.ended[before:]
        ok = delivered and not aborted and all(e.verdict == "complete" for e in ends)
        log.info(
            "drained: %d calls ended (%d complete), %d cut at the deadline%s", len(ends),
            sum(e.verdict == "complete" for e in ends), aborted,
            "" if delivered else "; webhook events left undelivered",
        )  # fmt: skip
        await self.close()
        return ok

    async def close(self) -> None:
        """Stop everything at once (after ``drain()``, or instead of it)."""
        self.draining = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for listener in (self.twilio, self.audiosocket):
            if listener is not None:
                listener.stop_accepting()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(listener.wait_closed(), 2)
        for conn in list(self._connections):
            conn.end("closed")
        for call in list(self.calls.values()):
            await self._finish(call, await call.abort("closed", "the gateway stopped"))
        if self.ops is not None:
            await self.ops.stop()
        if self.webhook is not None and self.webhook._tasks:
            await self.webhook.close(0)

    async def _until(self, done: Callable[[], bool], when: float) -> None:
        loop = asyncio.get_running_loop()
        while not done() and loop.time() < when:
            self._call_ended.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._call_ended.wait(), min(0.1, when - loop.time()))

    async def _watch(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            for conn in list(self._connections):
                if conn.call is None:
                    if now - conn.opened > cfg.handshake_timeout:
                        conn.end("timeout")
                elif now - conn.last > cfg.idle_timeout:
                    conn.end("idle")

    # -- what the listeners call -----------------------------------------------------------

    def connection(
        self, protocol: str, abort: Callable[[], None], handler: asyncio.Task[Any] | None = None
    ) -> Connection:
        """A new connection, whose ``handler`` task (default: the current one) ends it."""
        conn = Connection(protocol, abort)
        self._connections.add(conn)
        self.metrics.connections.labels(protocol).inc()
        task = handler or asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        return conn

    def forget(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.metrics.connections.labels(conn.protocol).dec()

    def has_room(self) -> bool:
        return len(self.calls) < self.config.max_calls

    def start_call(
        self,
        conn: Any,
        protocol: str,
        call_id: str,
        tracks: dict[str, str],
        rate: int | None,
        parameters: dict[str, str] | None = None,
        encoding: str = "linear",
    ) -> Call | None:
        """A new call on ``conn``, or None if refused (draining, full, or the id in use).
        ``encoding``: what its blocks' samples are (see :data:`~.track.ENCODINGS`)."""
        reason = (
            "draining" if self.draining else "max_calls" if not self.has_room()
            else "duplicate_id" if call_id in self.calls else None
        )  # fmt: skip
        if reason is not None:
            self.metrics.refused.labels(protocol, reason).inc()
            log.warning("refused call %s: %s", call_id, reason.replace("_", " "))
            return None
        call = Call(self, protocol, call_id, tracks, rate, parameters, encoding)
        self.calls[call_id] = call
        if conn is not None:
            conn.call = call
        self.metrics.active_calls.labels(protocol).inc()
        return call

    async def end_call(self, call: Call, reason: str, detail: str = "") -> CallEnd:
        """End ``call`` (hurried when the drain ends it), record it, wake the drain."""
        end = await call.end(reason, detail, hurry=reason == "drain")
        await self._finish(call, end)
        return end

    async def _finish(self, call: Call, end: CallEnd) -> None:
        if self.calls.pop(call.call_id, None) is not None:
            self.metrics.active_calls.labels(call.protocol).dec()
            self.ended.append(end)
            if len(self.ended) > 10_000:
                del self.ended[:5_000]
        self._call_ended.set()

    def handler_done(self) -> None:
        """A listener's handler is about to return (its call, if any, has ended)."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.discard(task)
        self._call_ended.set()

    def open_track(
        self,
        rate: int | None,
        on_result: Callable[[TranscriptResult], None],
        encoding: str = "linear",
    ) -> TrackSession:
        """A track's session (``rate`` None: the track's first block says it; ``encoding``:
        what its blocks' samples are, see :data:`~.track.ENCODINGS`)."""
        return StreamTrack(self.config.service, self.config.track, rate, on_result, encoding)

    def call_hook(self, hook: Callable[..., Any] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            hook(*args)
        except Exception as err:  # the embedder's bug: said once per call, never fatal
            self.metrics.hook_failures.inc()
            log.warning("a gateway hook raised %s: %s", type(err).__name__, err)

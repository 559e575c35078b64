"""One track of a call as one session to the speech service, driven from the gateway's loop.

:class:`TrackSession` is all the gateway asks of a session: ``push(block)`` positioned audio
(never blocks), ``await finish()`` for the verdict, ``abort()``. :class:`SinkTrack` builds it
from the pieces ``nsaudio stream`` uses (``standard_stages`` and a live
:class:`~nsaudio.sinks.neuralspace.NeuralSpaceSink`, the whole session engine: reconnect
with replay, the gate, the verdict); the asyncio API (``nsaudio.connect``) can stand in for
it without the rest of the gateway changing.

The sink's ``open()`` and ``close()`` wait (for the first session, for the drain), so they
run on the gateway's thread pool, never on its loop; ``write()`` does not wait (a live ring
drops its oldest audio rather than block, counted). Frames that come while the first session
opens wait here, bounded the same way. Results come back on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from ..blocks import Block, Frame
from ..errors import NsAudioError
from ..neuralspace.protocol import StreamParams, TranscriptResult
from ..runner import standard_stages
from ..stages import Chain, EnergyGate
from .frames import PcmFramer

__all__ = ["ServiceTarget", "SinkTrack", "TrackSession", "TrackSettings", "TrackVerdict"]

log = logging.getLogger("nsaudio.gateway")


@dataclass(frozen=True)
class ServiceTarget:
    """Where sessions go: a REST base URL and its API key (never shown), a private CA."""

    base_url: str
    api_key: str = field(repr=False)
    ca_file: str | None = None


@dataclass(frozen=True)
class TrackSettings:
    """How each track is streamed (the options ``nsaudio stream`` takes for the same)."""

    params: StreamParams = field(default_factory=lambda: StreamParams(format="pcm_8k"))
    frame_ms: float = 100.0
    gate: bool = False
    gate_threshold: float = 0.5
    gate_pre_roll_ms: float = 300.0
    gate_tail_ms: float = 700.0
    quality: str = "LQ"
    ring_seconds: float = 10.0
    drain_timeout: float = 30.0
    ping_interval: float = 2.5
    ping_timeout: float = 7.0
    connect_timeout: float = 10.0
    log_sends: bool = False


@dataclass
class TrackVerdict:
    """How a track's session ended: ``ok`` only when everything it was sent was transcribed.

    ``error``: one line saying what went wrong. ``stats``: seconds sent, reconnects, audio
    dropped before it could be sent.
    """

    ok: bool
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class _Source:
    """What ``standard_stages`` needs to know of a source."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.channels = 1


class TrackSession(Protocol):
    """A track's session, as the gateway drives it (see the module docstring)."""

    def push(self, block: Block) -> None: ...

    async def finish(self, *, hurry: bool = False) -> TrackVerdict: ...

    async def abort(self) -> None: ...


class SinkTrack:
    """A :class:`TrackSession` on ``standard_stages`` and a live ``NeuralSpaceSink``.

    Args:
        target: the service.
        settings: how to stream.
        rate: the track's sample rate (Twilio 8000; AudioSocket 8000 to 192000), or None to
            take it from the first block (the session opens at once either way: what the
            service gets does not depend on it).
        on_result: called on the loop with each result (partials too), times absolute.
        loop: the gateway's loop.
        pool: threads for the sink's waiting calls.
        send_log: where to keep ``(frame t_ns, sent ns)`` pairs, if measuring latency.
    """

    def __init__(
        self,
        target: ServiceTarget,
        settings: TrackSettings,
        rate: int | None,
        on_result: Callable[[TranscriptResult], None],
        loop: asyncio.AbstractEventLoop,
        pool: concurrent.futures.Executor,
    ) -> None:
        from ..sinks.neuralspace import NeuralSpaceSink

        self.settings = settings
        self.rate = rate
        self._loop = loop
        self._pool = pool
        self._on_result = on_result
        self._chain = self._stages(rate) if rate is not None else None
        self.sink = NeuralSpaceSink(
            target.base_url, target.api_key, settings.params, live=True,
            ring_seconds=settings.ring_seconds, drain_timeout=settings.drain_timeout,
            ping_interval=settings.ping_interval, ping_timeout=settings.ping_timeout,
            connect_timeout=settings.connect_timeout, startup_timeout=settings.connect_timeout,
            on_result=self._deliver, ca_file=target.ca_file, log_sends=settings.log_sends,
        )  # fmt: skip
        self._waiting: collections.deque[Frame] | None = collections.deque()
        self._waiting_samples = 0
        self._waiting_limit = round(settings.ring_seconds * settings.params.rate)
        self.dropped_waiting = 0  # samples dropped while the first session opened
        self.received_samples = 0
        self._open_error: str | None = None
        self._handed_over = False
        self._opening: asyncio.Future[Any] = loop.run_in_executor(pool, self._open)
        self._opening.add_done_callback(self._opened)
        self._finished = False

    def _stages(self, rate: int) -> Chain:
        s = self.settings
        if rate == s.params.rate:  # telephony into pcm_8k: bytes in, bytes out
            return Chain(
                [
                    PcmFramer(rate, s.frame_ms),
                    EnergyGate(
                        s.gate_threshold, skip_silence=s.gate, pre_roll_ms=s.gate_pre_roll_ms,
                        tail_ms=s.gate_tail_ms,
                    ),
                ]
            )  # fmt: skip
        return Chain(
            standard_stages(
                cast(Any, _Source(rate)), s.params.format, frame_ms=s.frame_ms,
                quality=s.quality, gate_threshold=s.gate_threshold, skip_silence=s.gate,
                pre_roll_ms=s.gate_pre_roll_ms, tail_ms=s.gate_tail_ms,
            )
        )  # fmt: skip

    # -- the sink's side (its threads) --------------------------------------------------

    def _deliver(self, result: TranscriptResult) -> None:
        """On the sink's delivery thread: hand the result to the loop."""
        self._loop.call_soon_threadsafe(self._on_result, result)

    def _open(self) -> None:
        self.sink.open(self.settings.params.rate)

    # -- the loop's side ----------------------------------------------------------------

    def _opened(self, fut: asyncio.Future[Any]) -> None:
        if self._handed_over:
            return
        self._handed_over = True
        err = fut.exception() if not fut.cancelled() else None
        if fut.cancelled() or err is not None:
            self._open_error = str(err) if err is not None else "the session was not opened"
            if err is not None and not isinstance(err, NsAudioError):
                log.debug("opening a session failed", exc_info=err)
            self._waiting = None
            return
        waiting, self._waiting = self._waiting, None
        if self._finished:
            return
        for frame in waiting or ():
            self._write(frame)

    def _write(self, frame: Frame) -> None:
        with contextlib.suppress(NsAudioError):  # it ended with its reason: finish() says it
            self.sink.write(frame)

    def push(self, block: Block) -> None:
        """Audio at its stream position (a jump in ``start`` is a gap); never waits."""
        if self._chain is None:
            self.rate = block.rate
            self._chain = self._stages(block.rate)
        self.received_samples += len(block)
        for frame in self._chain.push(block):
            self._frame(frame)

    def _frame(self, frame: Frame) -> None:
        waiting = self._waiting
        if waiting is None:
            if self._open_error is None:
                self._write(frame)
            return
        waiting.append(frame)
        self._waiting_samples += len(frame)
        while self._waiting_samples > self._waiting_limit:
            old = waiting.popleft()
            self._waiting_samples -= len(old)
            self.dropped_waiting += len(old)

    async def finish(self, *, hurry: bool = False) -> TrackVerdict:
        """End of the track: the stages flushed, the last results awaited; the verdict."""
        if self._finished:
            raise RuntimeError("finish() twice")
        for frame in self._chain.flush() if self._chain is not None else ():
            self._frame(frame)
        with contextlib.suppress(BaseException):  # its failure is _open_error
            await asyncio.shield(self._opening)
        # A future already done when awaited returns at once, before the callbacks it
        # scheduled have run: hand the waiting frames over here (it happens once).
        self._opened(self._opening)
        self._finished = True
        if self._open_error is not None:
            return TrackVerdict(False, self._open_error, self._stats())
        if hurry:  # the gateway's drain ran out: the last results get a second more
            self.sink.hurry(1.0)
        error: str | None = None
        try:
            await self._loop.run_in_executor(self._pool, self.sink.close)
        except NsAudioError as err:
            error = str(err)
        dropped = self.sink.dropped_audio()[0] + self.dropped_waiting
        if error is None and dropped:
            error = (
                f"{dropped / self.settings.params.rate:.2f} s of audio was dropped before it "
                "could be sent (the service was away longer than the queue holds)"
            )
        return TrackVerdict(error is None, error, self._stats())

    async def abort(self) -> None:
        """Stop at once: no reconnect, no result after this."""
        self._finished = True
        self._opening.cancel()
        await self._loop.run_in_executor(self._pool, self.sink.abort)

    def _stats(self) -> dict[str, Any]:
        stats = self.sink.stats()
        rate = self.settings.params.rate
        return {
            "received_s": round(self.received_samples / (self.rate or rate), 3),
            "sent_s": round(stats.get("samples_sent", 0) / rate, 3),
            "reconnects": stats.get("reconnects", 0),
            "dropped_s": round((stats.get("dropped_samples", 0) + self.dropped_waiting) / rate, 3),
        }

    def send_delays_ms(self) -> list[float]:
        """Packet in -> frame written to the socket, in ms, for each frame (``log_sends``)."""
        log_ = self.sink.send_log
        if log_ is None:
            return []
        return [(sent - t_ns) / 1e6 for _, t_ns, sent in log_ if t_ns]

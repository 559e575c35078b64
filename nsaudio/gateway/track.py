"""One track of a call as one stream of the asyncio API, on the gateway's own loop.

:class:`TrackSession` is all the gateway asks of a session: ``push(block)`` positioned audio
(it never waits), ``await finish()`` for the verdict, ``await abort()``. :class:`StreamTrack`
is it on :func:`nsaudio.connect` (a live :class:`~nsaudio.aio.AsyncStream`): the stages
``nsaudio stream`` uses and the whole session engine (reconnect with replay, the gate, the
verdict), with the platform's media positions passed through as ``send_nowait(chunk,
start=)``, so that a packet that never came is a gap the times step over. A listener pushes
audio as it parses it, in its protocol's ``data_received``, with no task woken per packet.

No thread per track: the stream's sockets are on the session engine's loop (which the
gateway runs on, see :func:`~nsaudio.gateway.server.engine_loop`), and each track has one
task, which opens its stream, hands its results to the call and ends with its verdict.
Blocks that come while the first session opens wait here, bounded as the stream's own
buffer is (the oldest dropped and counted beyond it).

Packets are joined before they go to the stream: contiguous blocks wait here until they
reach the end of the frame the stream is filling (:attr:`~nsaudio.aio.AsyncStream.frame_due`),
then go as one ``send_nowait``, decoded in one step (a Twilio track's blocks are µ-law
codes). The same frames leave at the same moment as packet by packet, for a fifth of the
calls with 20 ms packets into 100 ms frames.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..blocks import Block
from ..errors import NsAudioError
from ..neuralspace.protocol import StreamParams, TranscriptResult

if TYPE_CHECKING:
    from ..aio import AsyncStream

__all__ = [
    "ENCODINGS",
    "ServiceTarget",
    "StreamTrack",
    "TrackSession",
    "TrackSettings",
    "TrackVerdict",
]

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
    gate_vad: str = "energy"
    gate_vad_model: str | None = None
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

    ``error``: one line saying what went wrong. ``stats``: seconds received, sent, dropped
    before they could be sent, and reconnects.
    """

    ok: bool
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class TrackSession(Protocol):
    """A track's session, as the gateway drives it (see the module docstring)."""

    def push(self, block: Block) -> None:
        """Audio at its stream position (a jump in ``start`` is a gap); never waits."""

    async def finish(self, *, hurry: bool = False) -> TrackVerdict:
        """The end of the track: the last results awaited; its verdict."""

    async def abort(self) -> None:
        """Stop at once: no reconnect, no result after this."""


#: When the gateway's drain ends a track, its last results get this long.
HURRY_S = 1.0

#: How a track's blocks carry their samples: ``linear``, int16 (AudioSocket's signed
#: linear); ``ulaw``, uint8 G.711 µ-law codes (Twilio's), decoded as they go to the stream.
ENCODINGS = ("linear", "ulaw")


class StreamTrack:
    """A :class:`TrackSession` on a live :class:`~nsaudio.aio.AsyncStream`.

    Args:
        target: the service.
        settings: how to stream.
        rate: the track's sample rate as far as the platform has said (Twilio: 8000;
            AudioSocket: 8000, the rate every Asterisk sends, until the first audio's kind
            says otherwise): the stream opens at once, and a first block at another rate
            opens it again at that rate (nothing was sent to the first). None: the stream
            opens with the first block.
        on_result: called on the loop with each result (partials too), times absolute.
        encoding: what the blocks' samples are (:data:`ENCODINGS`).
    """

    def __init__(
        self,
        target: ServiceTarget,
        settings: TrackSettings,
        rate: int | None,
        on_result: Callable[[TranscriptResult], None],
        encoding: str = "linear",
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
        self.target = target
        self.settings = settings
        self.rate = rate
        self._on_result = on_result
        self._decode: Callable[[np.ndarray], np.ndarray] | None = None
        if encoding == "ulaw":
            from .twilio import ulaw_to_int16

            self._decode = ulaw_to_int16
        # Contiguous blocks joined until they reach the stream's frame_due (see the module
        # docstring): their samples, where the first starts and where the last ends.
        self._parts: list[np.ndarray] = []
        self._parts_start = self._parts_end = 0
        self._due: int | None = None  # the stream's frame_due when the first of them came
        self.stream: AsyncStream | None = None
        self._task: asyncio.Task[str | None] | None = None
        self._retired: set[asyncio.Task[str | None]] = set()  # opened at a rate that was not
        # Blocks that came before the stream was entered (None once it was, or gave up).
        self._waiting: collections.deque[Block] | None = None
        self._waiting_samples = 0
        self.dropped_waiting = 0  # input samples dropped while the first session opened
        self.received_samples = 0
        self._sending = False  # the stream takes audio (entered, not ended, not failed)
        self._ending = False
        self._hurry = False
        if rate is not None:
            self._open(rate)

    @property
    def sink(self) -> Any:
        """The stream's sink (its counters and, with ``log_sends``, its send log), or None."""
        return self.stream.sink if self.stream is not None else None

    def _open(self, rate: int) -> None:
        from ..aio import AsyncStream

        s, t = self.settings, self.target
        self.rate = rate
        self._waiting, self._waiting_samples = collections.deque(), 0
        self._parts.clear()
        self.stream = AsyncStream(
            t.base_url, t.api_key, s.params, rate=rate, dtype="int16", live=True,
            frame_ms=s.frame_ms, gate=s.gate, gate_threshold=s.gate_threshold,
            gate_pre_roll_ms=s.gate_pre_roll_ms, gate_tail_ms=s.gate_tail_ms,
            gate_vad=s.gate_vad, gate_vad_model=s.gate_vad_model, quality=s.quality, buffer_seconds=s.ring_seconds, drain_timeout=s.drain_timeout,
            ping_interval=s.ping_interval, ping_timeout=s.ping_timeout,
            connect_timeout=s.connect_timeout, startup_timeout=s.connect_timeout,
            ca_file=t.ca_file, log_sends=s.log_sends,
        )  # fmt: skip
        self._task = asyncio.ensure_future(self._run(self.stream))

    async def _run(self, stream: AsyncStream) -> str | None:
        """Open the stream, hand it what waited, deliver its results; the error, if any."""
        try:
            async with stream:
                for block in self._waiting or ():  # what came while the session opened
                    self._join(stream, block)
                self._waiting = None
                self._sending = not self._ending
                if self._ending:
                    await self._end(stream)
                async for result in stream:
                    self._on_result(result)
            return None
        except NsAudioError as err:
            return str(err)
        except Exception as err:  # the call's outputs (a full disk...): the track fails
            log.debug("a track's stream failed", exc_info=err)
            return f"internal error: {type(err).__name__}: {err}"
        finally:
            if stream is self.stream:  # not one opened at a rate the audio did not have
                self._sending = False
                self._waiting = None

    async def _end(self, stream: AsyncStream) -> None:
        try:
            self._send_parts(stream)
            await stream.end()
        except NsAudioError:  # the stream failed: its task ends with the reason
            return
        if self._hurry:  # the gateway's drain ran out: the last results get a second more
            stream.sink.hurry(HURRY_S)

    def push(self, block: Block) -> None:
        """Audio at its stream position (a jump in ``start`` is a gap); never waits: a live
        stream drops its oldest audio instead, counted."""
        if self.stream is None or (block.rate != self.rate and not self.received_samples):
            if self._ending:
                return
            if self._task is not None:  # opened at the rate the platform said, not this one
                self._task.cancel()
                self._retired.add(self._task)
            self._sending = False  # the old stream may have been taking audio: the new one
            self._open(block.rate)  # takes it once entered, what waited first
        self.received_samples += len(block.data)
        if self._sending:
            assert self.stream is not None
            self._join(self.stream, block)
            return
        waiting = self._waiting
        if waiting is None:  # the stream failed to open, or has ended
            return
        waiting.append(block)
        self._waiting_samples += len(block)
        limit = self.settings.ring_seconds * block.rate
        while self._waiting_samples > limit:
            old = waiting.popleft()
            self._waiting_samples -= len(old)
            self.dropped_waiting += len(old)

    def _join(self, stream: AsyncStream, block: Block) -> None:
        """``block`` joins the blocks waiting for the stream's next frame; they go once they
        reach it (or at once: no frame due), and go first at a gap."""
        parts = self._parts
        if parts and block.start != self._parts_end:  # a gap: what waited goes as it is
            self._send_parts(stream)
        if not parts:
            self._parts_start = block.start
            # Read once: only this track feeds the stream, so it holds until they are sent.
            self._due = stream.frame_due
        parts.append(block.data)
        self._parts_end = block.start + len(block.data)
        if self._due is None or self._parts_end >= self._due:
            self._send_parts(stream)

    def _send_parts(self, stream: AsyncStream) -> None:
        """The joined blocks to the stream, as one chunk (nothing if the stream has ended:
        its task has the reason)."""
        parts = self._parts
        if not parts:
            return
        if stream.sink.finished:  # it failed: its task has the reason
            self._sending = False
            parts.clear()
            return
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        parts.clear()
        if self._decode is not None:
            data = self._decode(data)
        try:
            stream.send_nowait(data, start=self._parts_start)
        except NsAudioError:  # the stream ended with its reason: finish() says it
            self._sending = False

    async def finish(self, *, hurry: bool = False) -> TrackVerdict:
        """End of the track: the stages flushed, the last results awaited; the verdict."""
        if self._ending:
            raise RuntimeError("finish() twice")
        self._ending, self._hurry = True, hurry
        if self.stream is None or self._task is None:  # no audio ever came: no session
            return TrackVerdict(True, None, self._stats())
        if self._sending:
            self._sending = False
            await self._end(self.stream)
        # else still opening: _run ends the stream once it has handed over what waited.
        error = await asyncio.shield(self._task)
        await self._retire()
        dropped = self.dropped_waiting / (self.rate or 1)
        if error is None and dropped:
            error = (
                f"{dropped:.2f} s of audio was dropped before it could be sent (the first "
                "session took longer to open than the queue holds)"
            )
        return TrackVerdict(error is None, error, self._stats())

    async def abort(self) -> None:
        """Stop at once: no reconnect, no result after this."""
        self._ending = True
        self._sending = False
        self._parts.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])  # the stream closes its sockets (bounded)
        await self._retire()

    async def _retire(self) -> None:
        """Wait for the streams opened at a rate the audio did not have to close (bounded:
        a cancelled stream waits a few seconds at most for its sockets)."""
        if self._retired:
            await asyncio.wait(self._retired)
            self._retired.clear()

    def _stats(self) -> dict[str, Any]:
        rate = self.settings.params.rate
        received = round(self.received_samples / self.rate, 3) if self.rate else 0.0
        if self.stream is None:
            return {"received_s": received, "sent_s": 0.0, "reconnects": 0, "dropped_s": 0.0}
        stats = self.stream.stats()
        dropped = stats.get("dropped_samples", 0) / rate + self.dropped_waiting / (self.rate or 1)
        return {
            "received_s": received,
            "sent_s": round(stats.get("samples_sent", 0) / rate, 3),
            "reconnects": stats.get("reconnects", 0),
            "dropped_s": round(dropped, 3),
        }

    def send_delays_ms(self) -> list[float]:
        """Packet in -> frame written to the socket, in ms, for each frame (``log_sends``)."""
        log_ = self.sink.send_log if self.sink is not None else None
        if log_ is None:
            return []
        return [(sent - t_ns) / 1e6 for _, t_ns, sent in log_ if t_ns]

"""Frames to NeuralSpace VoiceAI over a WebSocket, transcripts back; no audio lost on a drop.

Threads: the pipeline's thread ``write()`` s frames into a bounded ring; the sender thread
paces them out, pings, reconnects and drains at the end; a receiver thread per session parses
results into a queue that ``results()`` iterates (or ``on_result`` is called).

Reconnect with replay: every frame sent is kept until a full result covers it. When a
session breaks, a new one is opened (capped, jittered exponential backoff), the unfinalised
audio is sent again from exactly where the last full result ended, and the new session's
times are offset by that position, so times stay absolute and nothing is lost or repeated.
(Where a live source's ring dropped frames, the session's clock skips less than the stream
did; each session keeps a timeline of those jumps to map its times back.)

Dead connections: pings every ``ping_interval``; no pong for ``ping_interval +
ping_timeout`` ends the session, and a send that cannot progress that long fails (a peer
that stopped reading must not block the sender for good).

End of stream: trailing silence lets the service's VAD close the last segment; then the sink
waits for the full result covering the last speech it sent (bounded by ``drain_timeout``),
and closes with code 1000.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..blocks import Frame
from ..errors import AuthenticationError, InputError, RingClosed, ServiceError
from ..neuralspace.connection import Closed, Connection, Connector, classify_close
from ..neuralspace.protocol import StreamParams, Transcript, TranscriptResult, parse_result
from ..ring import Ring
from .replay import ReplayBuffer, Timeline

__all__ = ["NeuralSpaceSink"]

log = logging.getLogger("nsaudio.neuralspace")

_END = object()
#: A close this soon after connecting, before any result, is the service refusing the session.
_EARLY_CLOSE_S = 3.0
#: A session up this long (or one that brought a full result) ends a run of failures: the
#: next failure starts with a fresh reconnect budget and backoff.
_HEALTHY_S = 10.0


class _Retry:
    """One run of failures with no healthy session between them: budget, backoff, token."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.attempt = 0
        self.fresh_token_tried = False


class NeuralSpaceSink:
    """Streams int16 LE frames to the service; see the module docstring for the threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        params: StreamParams | None = None,
        *,
        pace: float = 0.0,
        live: bool = False,
        ring_seconds: float = 10.0,
        trailing_silence: float = 1.2,
        drain_timeout: float = 30.0,
        idle_timeout: float = 5.0,
        settle: float = 0.5,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        reconnect_timeout: float = 60.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        replay_seconds: float = 300.0,
        on_result: Callable[[TranscriptResult], None] | None = None,
        connector: Connector | None = None,
        ca_file: str | None = None,
        token_duration: int = 3600,
        connect_timeout: float = 10.0,
    ) -> None:
        if pace < 0:
            raise InputError(f"pace must be 0 (as fast as possible) or positive, not {pace}")
        self.params = params or StreamParams()
        self.connector = connector or Connector(
            base_url, api_key, self.params, token_duration=token_duration,
            connect_timeout=connect_timeout, ca_file=ca_file,
        )  # fmt: skip
        self.pace = pace
        self.live = live
        self.ring_seconds = ring_seconds
        self.trailing_silence = trailing_silence
        self.drain_timeout = drain_timeout
        self.idle_timeout = idle_timeout
        self.settle = settle
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_timeout = reconnect_timeout
        self.backoff = backoff
        self.on_result = on_result
        self.rate = self.params.rate
        self.transcript = Transcript()
        self._results: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._replay = ReplayBuffer(round(replay_seconds * self.rate))
        self._final_pos = 0  # absolute sample position the last full result ends at
        self._next_pos = 0  # absolute position after the last frame sent
        self._timeline = Timeline(0)  # where the current session's audio sits in the stream
        self._last_speech_end: int | None = None
        self._last_msg = time.monotonic()
        self._conn: Connection | None = None
        self._receiver: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._lost: ServiceError | None = None
        self._retry: _Retry | None = None
        self._session_started = 0.0
        self._error: BaseException | None = None
        self._closing = False
        self._ring: Ring[Frame] | None = None
        # (frame start, frame t_ns, monotonic ns when sent) of recent frames, for latency figures
        self.send_log: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=200_000)
        self.counters = {
            "frames_sent": 0, "samples_sent": 0, "reconnects": 0, "malformed": 0,
            "replayed_samples": 0, "drain_timeouts": 0,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"NeuralSpaceSink({self.connector.base_url!r}, {self.params!r})"

    # -- the pipeline's side -------------------------------------------------------------

    def open(self, rate: int) -> None:
        if rate != self.rate:
            raise InputError(
                f"frames at {rate} Hz cannot go to a {self.params.format} stream ({self.rate} Hz)"
            )
        policy = "drop_oldest" if self.live else "block"
        self._ring = Ring.for_seconds(self.ring_seconds, rate, policy)
        self._start_session(self.connector.connect())  # auth and connection errors surface here
        self._sender = threading.Thread(
            target=self._sender_main, name="nsaudio-sender", daemon=True
        )
        self._sender.start()

    def write(self, frame: Frame) -> None:
        if self._ring is None:
            raise RuntimeError("NeuralSpaceSink.write() before open()")
        try:
            self._ring.put(frame)
        except RingClosed:
            self._raise_failure()
            raise

    def close(self) -> None:
        """End of stream: everything queued is sent, the last results awaited, then 1000."""
        if self._ring is not None:
            self._ring.close()
        if self._sender is not None:
            self._sender.join()
        self._raise_failure()

    def abort(self) -> None:
        if self._ring is not None:
            self._ring.abort()
        self._closing = True
        if self._conn is not None:
            self._conn.abort()
        if self._sender is not None and self._sender is not threading.current_thread():
            self._sender.join(timeout=5)
        self._results.put(_END)

    def hurry(self) -> None:
        """Stop pacing: what is queued, and the trailing silence, go out as fast as they can
        (the user stopped the stream and waits only for the last results)."""
        self.pace = 0.0

    def results(self) -> Iterator[TranscriptResult]:
        """Every result as it arrives (partials too), times absolute; ends with the stream."""
        while (item := self._results.get()) is not _END:
            yield item

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.counters)
        out["replay_dropped_samples"] = self._replay.dropped_samples
        if self._ring is not None:
            out["dropped_frames"] = self._ring.dropped
            out["ring_high_water"] = self._ring.high_water
        return out

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    # -- sessions ------------------------------------------------------------------------

    def _start_session(self, conn: Connection, start: int = 0) -> None:
        self._conn = conn
        self._timeline = Timeline(start)
        self._lost = None
        started = self._session_started = time.monotonic()
        # A peer that stops reading must fail our send in bounded time (the receiver keeps
        # waiting; the sender's pings judge liveness).
        conn.settimeout(self.ping_interval + self.ping_timeout if self.ping_interval > 0 else None)
        self._receiver = threading.Thread(
            target=self._receiver_main, args=(conn, self._timeline, started),
            name="nsaudio-receiver", daemon=True,
        )  # fmt: skip
        self._receiver.start()

    def _receiver_main(self, conn: Connection, timeline: Timeline, started: float) -> None:
        got_result = False
        while True:
            msg = conn.recv()
            if isinstance(msg, Closed):
                if self._closing and msg.code in (1000, None):
                    return
                early = not got_result and time.monotonic() - started < _EARLY_CLOSE_S
                err = classify_close(msg, early=early) or ServiceError(
                    "the service ended the session before the end of the stream"
                )
                if conn is self._conn:
                    self._lost = err
                    self._wake.set()
                return
            self._last_msg = time.monotonic()
            try:
                result = parse_result(msg)
            except ServiceError as err:
                self.counters["malformed"] += 1
                log.warning("skipped a malformed result: %s", err)
                continue
            result = dataclasses.replace(
                result,
                start_time=timeline.to_stream(result.start_time, self.rate, end=False),
                end_time=timeline.to_stream(result.end_time, self.rate, end=True),
            )
            got_result = True
            self._accept(result)

    def _accept(self, result: TranscriptResult) -> None:
        with self._lock:
            if not self.transcript.add(result):
                return
            if result.full:
                end = round(result.end_time * self.rate)
                if end > self._final_pos:
                    self._final_pos = end
                    self._retry = None  # progress: the service works again
                self._replay.finalised(self._final_pos)
        self._wake.set()
        if self.on_result is not None:
            self.on_result(result)
        self._results.put(result)

    def _reconnect(self, cause: ServiceError) -> None:
        """A new session, then the unfinalised audio again; raises when it is hopeless.

        The budget, the backoff and the one fresh-token retry span every session that fails
        before one proves healthy (see ``_HEALTHY_S``): a service that accepts each session
        and closes it at once must not be hammered forever.
        """
        now = time.monotonic()
        retry = self._retry
        if retry is None or now - self._session_started >= _HEALTHY_S:
            retry = self._retry = _Retry(now + self.reconnect_timeout)
        deadline = retry.deadline
        while True:
            if isinstance(cause, AuthenticationError) or not cause.retryable:
                if cause.status == 1008 and not retry.fresh_token_tried:
                    retry.fresh_token_tried = True
                    self.connector.token(fresh=True)
                    log.info("%s; trying once more with a fresh token", cause)
                else:
                    raise cause
            else:
                log.warning("%s; reconnecting", cause)
            self.counters["reconnects"] += 1
            old, self._conn = self._conn, None
            if old is not None:
                old.abort()
            if self._receiver is not None:
                self._receiver.join(timeout=5)
            base, cap = self.backoff
            delay = min(cap, base * 2**retry.attempt) * random.uniform(0.5, 1.0)
            retry.attempt += 1
            try:
                if retry.attempt > 1:
                    if time.monotonic() + delay > deadline:
                        raise ServiceError(
                            f"gave up reconnecting after {self.reconnect_timeout:g} s: {cause}",
                            retryable=False,
                        )
                    time.sleep(delay)
                conn = self.connector.connect()
            except AuthenticationError:
                raise
            except ServiceError as err:
                if not err.retryable:
                    raise
                cause = err
                continue
            with self._lock:
                start, pieces = self._replay.unfinalised(self._final_pos, self._next_pos)
                self.transcript.partial = None  # the new session says it again
            self._start_session(conn, start)
            try:
                for pos, pcm in pieces:
                    self._timeline.sending(pos, len(pcm) // 2)
                    conn.send(pcm)
                    self.counters["replayed_samples"] += len(pcm) // 2
            except ServiceError as err:
                cause = err
                continue
            log.info(
                "reconnected; re-sent %.2f s of unfinalised audio",
                sum(len(pcm) for _, pcm in pieces) / 2 / self.rate,
            )
            return

    # -- the sender thread ---------------------------------------------------------------

    def _sender_main(self) -> None:
        try:
            self._stream()
            self._send_trailing_silence()
            self._drain()
            self._closing = True
            if self._conn is not None:
                self._conn.close()
            if self._receiver is not None:
                self._receiver.join(timeout=5)
        except BaseException as err:
            self._error = err
            self._closing = True
            if self._ring is not None:
                self._ring.abort()
            if self._conn is not None:
                self._conn.abort()
        finally:
            self._results.put(_END)

    def _send(self, frame: Frame, *, remember: bool = True) -> None:
        if remember:
            with self._lock:
                self._replay.add(frame)
        self._next_pos = frame.end
        while True:
            if self._lost is not None:
                self._reconnect(self._lost)  # re-sends this frame with the rest of the replay
                break
            conn = self._conn
            try:
                if conn is None:
                    raise ServiceError("no session")
                self._timeline.sending(frame.start, frame.frames)
                conn.send(frame.pcm)
                break
            except ServiceError as err:
                # The receiver usually knows why (a close code, a message over the cap):
                # give it a moment to say so before falling back on the send error.
                if self._lost is None and conn is not None and self._receiver is not None:
                    conn.abort()
                    self._receiver.join(timeout=1.0)
                if self._lost is None:
                    self._lost = err
        self.counters["frames_sent"] += 1
        self.counters["samples_sent"] += frame.frames
        self.send_log.append((frame.start, frame.t_ns, time.monotonic_ns()))

    def _keepalive(self) -> None:
        conn = self._conn
        if conn is None or self.ping_interval <= 0:
            return
        now = time.monotonic()
        if now - conn.last_pong > self.ping_interval + self.ping_timeout:
            if self._lost is None:
                self._lost = ServiceError(
                    f"no pong for {now - conn.last_pong:.0f} s: the connection is dead"
                )
            conn.abort()
            return
        if now - getattr(conn, "last_ping", 0.0) >= self.ping_interval:
            conn.last_ping = now  # type: ignore[attr-defined]
            try:
                conn.ping()
            except ServiceError as err:
                self._lost = self._lost or err

    def _stream(self) -> None:
        assert self._ring is not None
        t0: int | None = None
        while True:
            frame = self._ring.get(timeout=0.5)
            self._keepalive()
            if self._lost is not None:
                self._reconnect(self._lost)
            if frame is None:
                if self._ring.at_end:
                    return
                continue
            if frame.speech:
                self._last_speech_end = frame.end
            if self.pace > 0:
                if t0 is None:
                    t0 = time.monotonic_ns() - round(frame.start * 1e9 / self.rate / self.pace)
                due = t0 + round(frame.end * 1e9 / self.rate / self.pace)
                delay = due - time.monotonic_ns()
                if delay > 0:
                    time.sleep(delay / 1e9)
            self._send(frame)

    def _send_trailing_silence(self) -> None:
        remaining = round(self.trailing_silence * self.rate)
        step = max(1, self.rate // 10)
        while remaining > 0:
            n = min(step, remaining)
            frame = Frame(
                bytes(2 * n), self._next_pos, self.rate, time.monotonic_ns(), speech=False
            )
            if self.pace > 0:
                time.sleep(n / self.rate / self.pace)
            self._send(frame)
            remaining -= n

    def _drain(self) -> None:
        """Wait for the full result covering the last speech sent, within the bounds."""
        end_sent = time.monotonic()
        deadline = end_sent + self.drain_timeout
        slack = self.rate  # a service's segment may end up to a second before our gate's
        if self._conn is not None and self.ping_interval > 0:
            self._conn.last_ping = 0.0  # type: ignore[attr-defined]  # ping now: is it alive?
        while True:
            self._keepalive()
            if self._lost is not None:
                self._reconnect(self._lost)
            now = time.monotonic()
            with self._lock:
                pending = self.transcript.partial is not None
                covered = (
                    self._last_speech_end is None
                    or self._final_pos >= self._last_speech_end - slack
                )
            idle = now - max(self._last_msg, end_sent)
            # A quiet service has nothing more to say only if it is alive: a pong since the
            # end was sent (else the keepalive finds the connection dead and we reconnect).
            conn = self._conn
            alive = self.ping_interval <= 0 or (conn is not None and conn.last_pong > end_sent)
            if not pending and covered and idle >= self.settle:
                return
            if not pending and alive and idle >= self.idle_timeout:
                if not covered:
                    log.warning(
                        "the service sent no final result for the last %.1f s of speech",
                        (self._last_speech_end or 0) / self.rate - self._final_pos / self.rate,
                    )
                return
            if now >= deadline:
                self.counters["drain_timeouts"] += 1
                log.warning("gave up waiting for the last result after %.0f s", self.drain_timeout)
                return
            self._wake.wait(0.1)
            self._wake.clear()

"""Frames to NeuralSpace VoiceAI over a WebSocket, transcripts back; no audio lost on a drop.

The I/O shell around :class:`~.session.SessionMachine`, which makes every decision (replay,
retry, liveness, drain, the end). Who owns what:

- The pipeline's thread ``write()`` s frames into a bounded ring and notifies the engine loop.
- The engine loop (:mod:`.loop`, one thread for every sink of the process) owns the sockets:
  it takes frames from the ring (paced for files), sends them, reads results, pings, opens
  sessions and carries out the machine's actions. Nothing else touches a socket.
- Results reach ``on_result`` (its own thread) or ``results()`` through :mod:`.delivery`,
  a bounded path: a slow or failing consumer never delays a pong or a send.

``close()`` returns when the stream is complete, or raises what went wrong (saying which
seconds went untranscribed); ``abort()`` stops everything at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..blocks import Frame
from ..errors import ConsumerError, InputError, NsAudioError, RingClosed, ServiceError
from ..neuralspace.connection import Connector, describe_end
from ..neuralspace.protocol import StreamParams, Transcript, TranscriptResult
from ..ring import Ring
from .delivery import Delivery
from .loop import EngineLoop
from .session import (
    Abandon,
    Action,
    Close,
    Deliver,
    Finish,
    Open,
    Outcome,
    Ping,
    Send,
    SessionMachine,
)

__all__ = ["NeuralSpaceSink"]

log = logging.getLogger("nsaudio.neuralspace")

#: Frames handed to a connection and not yet written before the sender waits.
SEND_BACKLOG = 4


class _Conn:
    """One open session on the loop: its socket, an ordered outbox and its tasks."""

    def __init__(self, ws: Any, number: int) -> None:
        from websockets.protocol import State

        self.ws = ws
        self.open_state = State.OPEN
        self.number = number
        self.outbox: collections.deque[Send] = collections.deque()
        self.has_work = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.tasks: list[asyncio.Task[Any]] = []

    def abort(self) -> None:
        self.outbox.clear()
        self.drained.set()  # whoever waits for room on this session goes on to the next
        for task in self.tasks:
            task.cancel()
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()


class NeuralSpaceSink:
    """Streams int16 LE frames to the service; see the module docstring for who owns what."""

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
        ping_interval: float = 2.5,
        ping_timeout: float = 7.0,
        reconnect_timeout: float = 60.0,
        startup_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        replay_seconds: float = 300.0,
        on_result: Callable[[TranscriptResult], None] | None = None,
        connector: Connector | None = None,
        ca_file: str | None = None,
        token_duration: int = 3600,
        connect_timeout: float = 10.0,
        keep_finals: int = 1000,
        log_sends: bool = False,
    ) -> None:
        if not pace >= 0:
            raise InputError(f"pace must be 0 (as fast as possible) or positive, not {pace}")
        if not ring_seconds > 0:
            raise InputError(f"ring_seconds must be positive, not {ring_seconds}")
        self.params = params or StreamParams()
        self.connector = connector or Connector(
            base_url, api_key, self.params, token_duration=token_duration,
            connect_timeout=connect_timeout, ca_file=ca_file,
        )  # fmt: skip
        self.pace = pace
        self.live = live
        self.ring_seconds = ring_seconds
        self.trailing_silence = trailing_silence
        self.on_result = on_result
        self.rate = self.params.rate
        try:
            self._machine = SessionMachine(
                self.rate, replay_seconds=replay_seconds, trailing_silence=trailing_silence,
                drain_timeout=drain_timeout, idle_timeout=idle_timeout, settle=settle,
                ping_interval=ping_interval, ping_timeout=ping_timeout,
                reconnect_timeout=reconnect_timeout, startup_timeout=startup_timeout,
                backoff=backoff, keep_finals=keep_finals, live=live,
            )  # fmt: skip
        except ValueError as err:
            raise InputError(str(err)) from None
        #: (frame start, frame t_ns, monotonic ns when written to the socket), if asked.
        self.send_log: collections.deque[tuple[int, int, int]] | None = (
            collections.deque(maxlen=200_000) if log_sends else None
        )
        self._ring: Ring[Frame] | None = None
        self._engine: EngineLoop | None = None
        self._delivery: Delivery | None = None
        self._conns: dict[int, _Conn] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._opened = threading.Event()  # the first session is open, or the run is over
        self._finished = threading.Event()
        self._outcome: Outcome | None = None
        self._waiting_ready = False
        self._parked = False  # the feeder waits for frames in the ring

    def __repr__(self) -> str:
        return f"NeuralSpaceSink({self.connector.base_url!r}, {self.params!r})"

    @property
    def transcript(self) -> Transcript:
        """The latest full results and the current partial (bounded: ``keep_finals``)."""
        return self._machine.transcript

    @property
    def counters(self) -> dict[str, int]:
        return self._machine.counters

    # -- the pipeline's side -------------------------------------------------------------

    def open(self, rate: int) -> None:
        """Open the first session (retrying within the start-up budget), or raise why not."""
        if rate != self.rate:
            raise InputError(
                f"frames at {rate} Hz cannot go to a {self.params.format} stream ({self.rate} Hz)"
            )
        if self._engine is not None:
            raise RuntimeError("NeuralSpaceSink.open() twice")
        policy = "drop_oldest" if self.live else "block"
        self._ring = Ring.for_seconds(self.ring_seconds, rate, policy)
        self._delivery = Delivery(self.on_result, self._consumer_failed)
        self._engine = EngineLoop.get()
        self._engine.submit(self._main())
        try:
            self._wait(self._opened)
        except BaseException:  # Ctrl-C while connecting: nothing may go on in the background
            self.abort()
            raise
        self._raise_failure()

    def write(self, frame: Frame) -> None:
        if self._ring is None or self._engine is None:
            raise RuntimeError("NeuralSpaceSink.write() before open()")
        try:
            self._ring.put(frame)
        except RingClosed:
            # Closed under us: the engine is finishing with the reason; wait for it to say.
            self._finished.wait(5)
            self._raise_failure()
            raise
        self._engine.notify(id(self), self._on_wake)

    def close(self) -> None:
        """End of stream: everything queued is sent, the last results awaited, then 1000."""
        if self._ring is None or self._engine is None:
            return
        self._ring.close()
        self._engine.notify(id(self), self._on_wake)
        try:
            self._wait(self._finished)
        except BaseException:
            self.abort()
            raise
        assert self._delivery is not None
        self._delivery.join()
        self._raise_failure()

    def abort(self) -> None:
        """Stop at once: no reconnect, and no ``on_result`` call once this returns."""
        if self._delivery is not None:
            self._delivery.stop()
        if self._ring is not None:
            self._ring.abort()
        if self._engine is not None and not self._finished.is_set():
            self._engine.call(self._apply_now, self._machine.abort)
            if threading.current_thread() is not self._engine.thread:
                self._finished.wait(5)
        if self._delivery is not None:
            self._delivery.end()
        if self._engine is None:
            self._finished.set()  # never opened: a results() waiting for it ends

    def hurry(self) -> None:
        """Stop pacing: what is queued, and the trailing silence, go out as fast as they can
        (the user stopped the stream and waits only for the last results)."""
        self.pace = 0.0
        if self._engine is not None:
            self._engine.call(self._apply_now, self._machine.hurry)
            self._engine.notify(id(self), self._on_wake)

    def results(self) -> Iterator[TranscriptResult]:
        """Every result as it arrives (partials too), times absolute; ends with the stream."""
        while self._delivery is None:
            if self._finished.wait(0.05):
                return
        yield from self._delivery

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self._machine.counters)
        out["replay_dropped_samples"] = self._machine.replay.dropped_samples
        out["results_dropped"] = self._delivery.dropped if self._delivery else 0
        if self._ring is not None:
            out["dropped_frames"] = self._ring.dropped  # frames (messages), not samples
            out["dropped_samples"] = self._ring.dropped_samples
            out["ring_high_water"] = self._ring.high_water
        return out

    def dropped_audio(self) -> tuple[int, list[tuple[int, int]]]:
        """Samples a live stream's ring dropped before they were sent (sending fell behind),
        and the stream positions of the first of them."""
        if self._ring is None:
            return 0, []
        return self._ring.dropped_samples, list(self._ring.dropped_spans)

    def _wait(self, event: threading.Event) -> None:
        # In slices, so that Ctrl-C reaches the main thread while it waits.
        while not event.wait(0.2):
            pass

    def _raise_failure(self) -> None:
        outcome = self._outcome
        if outcome is not None and outcome.error is not None:
            # A copy: the one raised collects the caller's frames in its traceback, and the
            # engine loop (which outlives this stream) must not keep those alive.
            error = copy.copy(outcome.error)
            error.__cause__ = outcome.error.__cause__
            raise error

    def _consumer_failed(self, err: BaseException) -> None:
        """On the delivery thread: the consumer raised; end the stream without it."""
        error = ConsumerError.of(err)
        if self._ring is not None:
            self._ring.abort()  # the pipeline stops at its next write
        if self._engine is not None:
            self._engine.call(self._apply_now, lambda now: self._machine.stop(error, now))

    # -- the engine loop's side ------------------------------------------------------------

    def _on_wake(self) -> None:
        if self._wake is None:
            return
        ring = self._ring
        if self._parked and ring is not None and self.pace == 0:
            # The feeder waits for frames and nothing is paced: take them on this turn of the
            # loop, without waking it (hundreds of live streams: one hop per frame saved).
            try:
                self._take_frames(ring)
            except BaseException as err:  # a callback of the loop's: nobody else would see it
                self._crash(err)
                return
            if not len(ring) and not ring.at_end:
                return
        self._wake.set()

    def _take_frames(self, ring: Ring[Frame]) -> None:
        machine = self._machine
        while machine.wants_frames:
            conn = self._conns.get(machine.session)
            if conn is not None and len(conn.outbox) >= SEND_BACKLOG:
                return
            frame = ring.get(timeout=0)
            if frame is None:
                return
            self._apply(machine.frame(frame, time.monotonic()))

    def _apply_now(self, event: Callable[[float], list[Action]]) -> None:
        try:
            self._apply(event(time.monotonic()))
        except BaseException as err:
            self._crash(err)

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        try:
            assert self._engine is not None
            self._engine.every_tick(id(self), self._tick)
            self._apply(self._machine.start(time.monotonic()))
            self._tasks.append(self._guard(self._feed()))
        except BaseException as err:  # a bug in the engine: end the stream, say so once
            self._crash(err)

    def _tick(self) -> None:
        try:
            self._apply(self._machine.tick(time.monotonic()))
        except BaseException as err:
            self._crash(err)

    def _guard(self, coro: Any) -> asyncio.Task[Any]:
        """``coro`` as a task whose failure ends the stream (reported once), never silently."""
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._crash(task.exception())  # type: ignore[arg-type]

    def _crash(self, err: BaseException) -> None:
        if self._machine.done:
            return
        log.debug("engine failure", exc_info=err)
        error = ServiceError(
            f"internal error in the session engine: {type(err).__name__}: {err}",
            retryable=False,
        )
        self._apply(self._machine.stop(error, time.monotonic()))

    def _apply(self, actions: list[Action]) -> None:
        if self._waiting_ready and self._wake is not None:
            self._wake.set()  # the machine moved: the feeder looks again
        for action in actions:
            if isinstance(action, Send):
                conn = self._conns.get(action.session)
                if conn is not None:
                    self._send(conn, action)
            elif isinstance(action, Deliver):
                assert self._delivery is not None
                if not self._delivery.put(action.result):
                    error = ConsumerError(
                        f"results were not taken: {self._delivery.capacity} waiting; "
                        "stopped the stream"
                    )
                    self._apply(self._machine.stop(error, time.monotonic()))
            elif isinstance(action, Ping):
                conn = self._conns.get(action.session)
                if conn is not None:
                    self._spawn(conn, self._ping(conn))
            elif isinstance(action, Open):
                self._tasks.append(self._guard(self._open(action)))
            elif isinstance(action, Close):
                conn = self._conns.pop(action.session, None)
                if conn is not None:
                    self._background(self._close(conn, action))
            elif isinstance(action, Abandon):
                conn = self._conns.pop(action.session, None)
                if conn is not None:
                    conn.abort()
            elif isinstance(action, Finish):
                self._finish(action.outcome)

    def _background(self, coro: Any) -> None:
        """A task that outlives the stream's own (a polite close), held until it ends."""
        task = asyncio.ensure_future(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _send(self, conn: _Conn, item: Send) -> None:
        """Write ``item`` now if the connection takes it, else queue it for the writer task.

        The direct path is websockets' own ``send()`` without its coroutine: the protocol
        frames the message and the transport takes the bytes, on this one thread.
        """
        ws = conn.ws
        if not conn.outbox and not ws.paused and ws.protocol.state is conn.open_state:
            if ws.transport.is_closing():
                return  # the reader reports how it ended
            ws.protocol.send_binary(item.pcm)
            ws.send_data()
            if self.send_log is not None and item.t_ns is not None:
                self.send_log.append((item.start, item.t_ns, time.monotonic_ns()))
            return
        conn.outbox.append(item)
        conn.drained.clear()
        conn.has_work.set()

    def _spawn(self, conn: _Conn, coro: Any) -> None:
        conn.tasks.append(self._guard(coro))

    def _finish(self, outcome: Outcome) -> None:
        self._outcome = outcome
        if self._engine is not None:
            self._engine.every_tick(id(self), None)
        for conn in self._conns.values():
            conn.abort()
        self._conns.clear()
        for task in self._tasks:
            task.cancel()
        if self._ring is not None and not outcome.ok:
            self._ring.abort()  # a writer waiting for room learns at once
        assert self._delivery is not None
        if outcome.aborted:
            self._delivery.stop()
        self._delivery.end()
        self._opened.set()
        self._finished.set()

    async def _open(self, action: Open) -> None:
        if action.delay > 0:
            await asyncio.sleep(action.delay)
        loop = asyncio.get_running_loop()
        try:
            try:
                token = await loop.run_in_executor(None, self.connector.token, action.fresh_token)
                ws, _ = await self.connector.open(token)
            except ServiceError as err:
                if err.status not in (401, 403) or action.fresh_token:
                    raise
                log.info("the service refused the token; trying a fresh one")
                token = await loop.run_in_executor(None, self.connector.token, True)
                ws, _ = await self.connector.open(token)
        except NsAudioError as err:
            if not isinstance(err, ServiceError):
                err = ServiceError(str(err), retryable=False)
            self._apply(self._machine.open_failed(action.session, err, time.monotonic()))
            return
        if action.session != self._machine.session or self._machine.done:
            self._background(ws.close())
            return
        conn = self._conns[action.session] = _Conn(ws, action.session)
        self._spawn(conn, self._read(conn))
        self._spawn(conn, self._write(conn))
        self._apply(self._machine.opened(action.session, time.monotonic()))
        self._opened.set()

    async def _read(self, conn: _Conn) -> None:
        from websockets.exceptions import ConnectionClosed

        error: BaseException | None = None
        try:
            async for message in conn.ws:
                self._apply(self._machine.message(conn.number, message, time.monotonic()))
        except ConnectionClosed as err:
            error = err
        end = describe_end(conn.ws, error)
        self._apply(
            self._machine.closed(
                conn.number, end.code, self.connector.redact(end.reason), time.monotonic(),
                local=end.local,
            )
        )  # fmt: skip

    async def _write(self, conn: _Conn) -> None:
        from websockets.exceptions import ConnectionClosed

        send_log = self.send_log
        try:
            while True:
                while conn.outbox:
                    item = conn.outbox.popleft()
                    await conn.ws.send(item.pcm)
                    if send_log is not None and item.t_ns is not None:
                        send_log.append((item.start, item.t_ns, time.monotonic_ns()))
                conn.drained.set()
                conn.has_work.clear()
                await conn.has_work.wait()
        except ConnectionClosed:
            pass  # the reader reports how it ended

    async def _ping(self, conn: _Conn) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            pong = await conn.ws.ping()
            await pong
            self._apply(self._machine.pong(conn.number, time.monotonic()))
            self._on_wake()  # the window may have room again

    async def _close(self, conn: _Conn, action: Close) -> None:
        with contextlib.suppress(Exception):
            await conn.ws.close(action.code, action.reason)
        conn.abort()
        # The reader may not run again once its task is cancelled: report the end here (a
        # second report of the same session is ignored).
        self._apply(
            self._machine.closed(conn.number, action.code, "", time.monotonic(), local=True)
        )

    async def _feed(self) -> None:
        """Frames from the ring to the machine, paced, then the trailing silence."""
        ring, machine, wake = self._ring, self._machine, self._wake
        assert ring is not None and wake is not None
        t0: int | None = None
        tail: collections.deque[Frame] | None = None
        while True:
            await self._until_ready()
            if tail is None:
                frame = ring.get(timeout=0)
                if frame is None:
                    if not ring.at_end:
                        wake.clear()
                        if not len(ring) and not ring.at_end:
                            self._parked = True
                            try:
                                await wake.wait()
                            finally:
                                self._parked = False
                        continue
                    tail = collections.deque(machine.trailing_silence_frames(time.monotonic_ns()))
                    continue
            elif tail:
                frame = tail.popleft()
            else:
                await self._until_sent()
                self._apply(machine.end_of_input(time.monotonic()))
                return
            if self.pace > 0:
                if t0 is None:
                    t0 = time.monotonic_ns() - round(frame.start * 1e9 / self.rate / self.pace)
                due = t0 + round(frame.end * 1e9 / self.rate / self.pace)
                await self._sleep_until(due)
            self._apply(machine.frame(frame, time.monotonic()))

    async def _until_ready(self) -> None:
        """Until a session is open, streaming, its window and its outbox have room."""
        machine = self._machine
        while True:
            if machine.wants_frames:
                conn = self._conns.get(machine.session)
                if conn is None or len(conn.outbox) < SEND_BACKLOG:
                    return
                await conn.drained.wait()
            else:
                assert self._wake is not None
                self._wake.clear()
                self._waiting_ready = True
                try:
                    if not machine.wants_frames:
                        await self._wake.wait()  # set by every machine event (see _apply)
                finally:
                    self._waiting_ready = False
        self._parked = False  # the feeder waits for frames in the ring

    async def _until_sent(self) -> None:
        """Until the open session has written every frame handed to it (or none is open)."""
        conn = self._conns.get(self._machine.session)
        if conn is not None:
            await conn.drained.wait()

    async def _sleep_until(self, due_ns: int) -> None:
        """Sleep until ``due_ns`` (monotonic), or until ``hurry()`` drops the pace."""
        assert self._wake is not None
        while self.pace > 0:
            delay = (due_ns - time.monotonic_ns()) / 1e9
            if delay <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(delay, 0.5))
